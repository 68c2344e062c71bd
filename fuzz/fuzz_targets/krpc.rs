//! Every datagram decodes or is refused without panic; a refusal names a
//! reply code only for a query with a transaction id; a decoded message
//! re-encodes to bytes that decode to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sta::wire::krpc::Message;

fuzz_target!(|data: &[u8]| {
    match Message::decode(data) {
        Ok(msg) => {
            let out = msg.to_vec();
            assert_eq!(Message::decode(&out).as_ref(), Ok(&msg), "{msg:?}");
        }
        Err(e) => {
            if e.reply_code().is_some() {
                assert!(e.query && e.tid.is_some(), "{e:?}");
            }
        }
    }
});
