//! Every BEP 15 datagram parses or fails without panic; a parsed request
//! re-encodes to the bytes it came from (up to ignored trailing options),
//! and any reply bytes parse without panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::wire::bt_udp::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::parse(data) {
        let mut out = Vec::new();
        req.encode(&mut out);
        assert!(out.len() <= data.len(), "{req:?}");
        assert_eq!(out, &data[..out.len()], "{req:?}");
        assert_eq!(Request::parse(&out), Ok(req));
    }
    let _ = Response::parse(data, false);
    let _ = Response::parse(data, true);
});
