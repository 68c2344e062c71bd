//! Every input to the daemons' HTTP listener parses, asks for more, or is
//! refused with a status, without panic; a request never claims more
//! bytes than it was given nor a body over the limit, and the bytes it
//! used alone give the same request (parsing is incremental).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::http::{MAX_BODY, MAX_HEAD, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Some((req, used))) => {
            assert!(used > 0 && used <= data.len());
            assert!(req.body.len() <= MAX_BODY && used <= MAX_HEAD + MAX_BODY);
            assert_eq!(parse(&data[..used]), Ok(Some((req, used))));
        }
        Ok(None) => assert!(data.len() < MAX_HEAD + MAX_BODY),
        Err(e) => assert!((400..600).contains(&e.status)),
    }
});
