//! A handshake and every message after it re-encode to exactly their bytes;
//! an extended message (BEP 10) is read without panic, and a port read
//! from an extension handshake is never 0.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::wire::extension::{EXTENDED, ExtHandshake};
use sta::wire::peer::{Handshake, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((hs, used))) = Handshake::decode(data) else {
        return;
    };
    let mut out = Vec::new();
    hs.encode(&mut out);
    assert_eq!(out, &data[..used], "{hs:?}");
    let mut rest = &data[used..];
    // Every peer-wire error ends the session, so the loop stops on one.
    while let Ok(Some((msg, used))) = Message::decode(rest) {
        let mut out = Vec::new();
        msg.encode(&mut out);
        assert_eq!(out, &rest[..used], "{msg:?}");
        assert!(used > 0);
        if let Message::Unknown {
            id: EXTENDED,
            payload,
        } = msg
            && let Ok(Some(ext)) = ExtHandshake::decode(payload)
        {
            assert_ne!(ext.port, Some(0));
        }
        rest = &rest[used..];
    }
});
