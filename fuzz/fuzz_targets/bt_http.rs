//! Every HTTP request head parses, asks for more, or fails without panic;
//! a parsed head never claims more bytes than it was given, and an
//! incomplete one is shorter than the head limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::wire::bt_http::{MAX_REQUEST_HEAD, parse_request};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(Some((_, used))) => assert!(used > 0 && used <= data.len()),
        Ok(None) => assert!(data.len() < MAX_REQUEST_HEAD),
        Err(_) => {}
    }
});
