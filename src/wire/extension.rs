//! BEP 10, the extension protocol: peer-wire message 20, whose first
//! payload byte is an extended message id (0 = the extension handshake)
//! followed by a bencoded dict. STA sends and reads only the handshake, for
//! what it says about the peer: `p`, the port it listens on (so a peer
//! that dialed us can be dialed and vouched for, spec/tracker.md), and
//! `v`, its client name. It offers no extended messages (`m` is empty), so
//! a peer sends it none; others are skipped like unknown messages.

use crate::meta::bencode::{self, Value};

/// The peer-wire message id of every extended message.
pub const EXTENDED: u8 = 20;
/// The extended id of the extension handshake.
pub const HANDSHAKE: u8 = 0;
/// Longest client name kept from `v` (longer ones are cut).
pub const MAX_CLIENT_NAME: usize = 64;

/// What a peer's extension handshake says that STA uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// `p`: the TCP port it listens on, when given and in 1..=65535.
    pub port: Option<u16>,
    /// `v`: its client name and version, when it is UTF-8.
    pub client: Option<String>,
}

/// Why an extension handshake was not read. The session goes on: the
/// handshake only adds knowledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtError(pub String);

impl std::fmt::Display for ExtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ExtHandshake {
    /// Reads the payload of an extended message (its extended id first).
    /// `Ok(None)`: another extended message, not the handshake.
    pub fn decode(payload: &[u8]) -> Result<Option<ExtHandshake>, ExtError> {
        let Some((&ext_id, dict)) = payload.split_first() else {
            return Err(ExtError("an extended message without its id".into()));
        };
        if ext_id != HANDSHAKE {
            return Ok(None);
        }
        let value =
            bencode::decode(dict).map_err(|e| ExtError(format!("extension handshake: {e}")))?;
        if !matches!(value, Value::Dict(_)) {
            return Err(ExtError("extension handshake is not a dict".into()));
        }
        let port = value
            .get(b"p")
            .and_then(Value::as_int)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0);
        let client = value
            .get(b"v")
            .and_then(Value::as_bytes)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| v.chars().take(MAX_CLIENT_NAME).collect());
        Ok(Some(ExtHandshake { port, client }))
    }

    /// Appends our extension handshake, framed: no extended messages
    /// offered, our listen port and client name.
    pub fn encode(port: u16, client: &str, out: &mut Vec<u8>) {
        let mut dict = Vec::with_capacity(32 + client.len());
        dict.extend_from_slice(b"d1:mde1:pi");
        dict.extend_from_slice(port.to_string().as_bytes());
        dict.extend_from_slice(b"e1:v");
        Value::Bytes(client.as_bytes()).encode(&mut dict);
        dict.push(b'e');
        out.extend_from_slice(&(dict.len() as u32 + 2).to_be_bytes());
        out.push(EXTENDED);
        out.push(HANDSHAKE);
        out.extend_from_slice(&dict);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::peer::Message;

    #[test]
    fn ours_reads_back_and_is_a_peer_message() {
        let mut out = Vec::new();
        ExtHandshake::encode(6881, "STA 0.1.0", &mut out);
        assert_eq!(&out[4..], b"\x14\x00d1:mde1:pi6881e1:v9:STA 0.1.0e");
        let Ok(Some((Message::Unknown { id, payload }, n))) = Message::decode(&out) else {
            panic!("a peer-wire frame");
        };
        assert_eq!((id, n), (EXTENDED, out.len()));
        let got = ExtHandshake::decode(payload).unwrap().unwrap();
        assert_eq!(got.port, Some(6881));
        assert_eq!(got.client.as_deref(), Some("STA 0.1.0"));
    }

    #[test]
    fn odd_or_hostile_handshakes_are_read_leniently_or_refused() {
        let read = |b: &[u8]| ExtHandshake::decode(b);
        // Another extended message: not ours to read.
        assert_eq!(read(b"\x03anything"), Ok(None));
        assert!(read(b"").is_err());
        assert!(read(b"\x00not bencode").is_err());
        assert!(read(b"\x00li1ee").is_err());
        // Out-of-range or mistyped fields are left out.
        for dict in [
            &b"d1:pi0ee"[..],
            b"d1:pi65536ee",
            b"d1:pi-1ee",
            b"d1:p4:6881e",
        ] {
            let mut p = vec![0];
            p.extend_from_slice(dict);
            assert_eq!(read(&p).unwrap().unwrap().port, None, "{dict:?}");
        }
        let long = format!("d1:v{}:{}e", 200, "x".repeat(200));
        let mut p = vec![0];
        p.extend_from_slice(long.as_bytes());
        let client = read(&p).unwrap().unwrap().client.unwrap();
        assert_eq!(client.len(), MAX_CLIENT_NAME);
    }
}
