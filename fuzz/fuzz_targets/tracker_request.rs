//! Every request decoded from a stream re-encodes to exactly its frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::wire::tracker::Request;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let used = match Request::decode(rest) {
            Ok(Some((req, used))) => {
                let mut out = Vec::new();
                req.encode(&mut out);
                assert_eq!(out, &rest[..used], "{req:?}");
                used
            }
            Ok(None) => break,
            Err(e) => match e.used {
                Some(used) => used,
                None => break, // fatal: the stream is lost
            },
        };
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
});
