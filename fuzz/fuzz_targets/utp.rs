//! Every datagram decodes as a uTP header or fails with a typed error,
//! without panic; a decoded header re-encodes to the datagram's first 20
//! bytes, and its extensions and payload are the rest. The peer port's
//! sorter and responder take any datagram without panic, and answer at
//! most one 20-byte reset.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::peer::udp::Udp;
use sta::wire::utp::{self, HEADER_LEN};
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = utp::decode(data) {
        assert_eq!(&p.header.encode()[..], &data[..HEADER_LEN]);
        assert_eq!(HEADER_LEN + p.extensions.len() + p.payload.len(), data.len());
        assert!(utp::looks_like_utp(data));
    }
    let now = Instant::now();
    let mut reply = Vec::new();
    Udp::new(now).datagram(now, "10.0.0.1:6881".parse().unwrap(), data, &mut reply);
    assert!(reply.is_empty() || reply.len() == HEADER_LEN);
});
