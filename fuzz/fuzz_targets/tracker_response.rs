//! Every response decoded from a stream re-encodes to exactly its frame.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::wire::tracker::Response;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let used = match Response::decode(rest) {
            Ok(Some((resp, used))) => {
                let mut out = Vec::new();
                resp.encode(&mut out);
                assert_eq!(out, &rest[..used], "{resp:?}");
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
