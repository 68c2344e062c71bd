//! Accepted bencode re-encodes to exactly its input; an accepted info dict
//! keeps its exact bytes and hashes them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use sta::meta::{Info, bencode};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = bencode::decode(data) {
        assert_eq!(value.to_bytes(), data, "{value:?}");
    }
    if let Ok(info) = Info::from_bencoded(data) {
        assert_eq!(info.bencoded, data);
        let hash: [u8; 20] = Sha1::digest(data).into();
        assert_eq!(info.info_hash, hash);
    }
});
