//! The payload of a BEP 10 extended message (its extended id, then its
//! body), read as each message STA offers: the extension handshake, BEP 9
//! `ut_metadata` and BEP 11 `ut_pex`. None panics; what is accepted stays
//! within the limits (a metadata piece of 1..=16 KiB, at most
//! `MAX_PEX_PEERS` peers per list, no port 0 added) and re-encodes to a
//! message that reads back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::limits::MAX_PEX_PEERS;
use sta::wire::extension::ExtHandshake;
use sta::wire::pex::Pex;
use sta::wire::ut_metadata::{METADATA_PIECE, MetadataMsg, piece_span};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(hs)) = ExtHandshake::decode(data) {
        assert_ne!(hs.port, Some(0));
        assert_ne!(hs.ut_metadata, Some(0));
        assert_ne!(hs.ut_pex, Some(0));
    }
    let Some((_, body)) = data.split_first() else {
        return;
    };
    if let Ok(msg) = MetadataMsg::decode(body) {
        if let MetadataMsg::Data {
            piece,
            total_size,
            data,
        } = msg
        {
            assert!(!data.is_empty() && data.len() <= METADATA_PIECE);
            let _ = piece_span(total_size, piece);
        }
        let mut out = Vec::new();
        msg.encode(7, &mut out);
        assert_eq!(MetadataMsg::decode(&out[6..]), Ok(msg));
    }
    if let Ok(pex) = Pex::decode(body) {
        assert!(pex.added.len() <= 2 * MAX_PEX_PEERS);
        assert!(pex.dropped.len() <= 2 * MAX_PEX_PEERS);
        assert!(pex.added.iter().all(|(a, _)| a.port() != 0));
        let mut out = Vec::new();
        pex.encode(7, &mut out);
        assert_eq!(Pex::decode(&out[6..]).as_ref(), Ok(&pex));
    }
});
