//! BEP 10, the extension protocol: peer-wire message 20, whose first
//! payload byte is an extended message id (0 = the extension handshake)
//! followed by a bencoded dict. The handshake's `m` maps the names of the
//! extended messages a side reads to the ids it wants them sent with; STA
//! offers `ut_metadata` (BEP 9, [`super::ut_metadata`]) and, for torrents
//! that are not private, `ut_pex` (BEP 11, [`super::pex`]). It also reads
//! `p`, the port a peer listens on (so a peer that dialed us can be dialed
//! and vouched for, spec/tracker.md), `v`, its client name,
//! `metadata_size`, and `reqq`, how many requests it queues.

use crate::meta::bencode::{self, Value};

/// The peer-wire message id of every extended message.
pub const EXTENDED: u8 = 20;
/// The extended id of the extension handshake.
pub const HANDSHAKE: u8 = 0;
/// The `reqq` STA states: the requests it queues from one peer (its
/// upload queue's bound, `engine::upload::MAX_ASKED`).
pub const REQQ: usize = 256;
/// Longest client name kept from `v` (longer ones are cut).
pub const MAX_CLIENT_NAME: usize = 64;
/// The extended id STA reads `ut_metadata` messages with (its `m`).
pub const OUR_UT_METADATA: u8 = 1;
/// The extended id STA reads `ut_pex` messages with (its `m`).
pub const OUR_UT_PEX: u8 = 2;

/// What a peer's extension handshake says that STA uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// `p`: the TCP port it listens on, when given and in 1..=65535.
    pub port: Option<u16>,
    /// `v`: its client name and version, when it is UTF-8.
    pub client: Option<String>,
    /// `m.ut_metadata`: the id to send it `ut_metadata` messages with
    /// (1..=255; 0 or absent: it does not read them).
    pub ut_metadata: Option<u8>,
    /// `m.ut_pex`: likewise for `ut_pex`.
    pub ut_pex: Option<u8>,
    /// `metadata_size`: the length of the info dict, when it has it.
    pub metadata_size: Option<u64>,
    /// `reqq`: how many requests it queues (an integer > 0).
    pub reqq: Option<u32>,
}

/// What our extension handshake offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer<'a> {
    pub port: u16,
    pub client: &'a str,
    /// Offer `ut_pex` (false for a private torrent, BEP 27).
    pub pex: bool,
    /// The info dict's length, when we hold it.
    pub metadata_size: Option<u64>,
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

/// An extended id from `m`: 1..=255 (0 means "disabled", BEP 10).
fn ext_id(m: Option<&Value<'_>>, name: &[u8]) -> Option<u8> {
    m?.get(name)
        .and_then(Value::as_int)
        .and_then(|i| u8::try_from(i).ok())
        .filter(|&i| i != 0)
}

impl ExtHandshake {
    /// Reads the payload of an extended message (its extended id first).
    /// `Ok(None)`: another extended message, not the handshake.
    pub fn decode(payload: &[u8]) -> Result<Option<ExtHandshake>, ExtError> {
        let Some((&ext_id_byte, dict)) = payload.split_first() else {
            return Err(ExtError("an extended message without its id".into()));
        };
        if ext_id_byte != HANDSHAKE {
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
        let m = value.get(b"m").filter(|m| matches!(m, Value::Dict(_)));
        let metadata_size = value
            .get(b"metadata_size")
            .and_then(Value::as_int)
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n > 0);
        let reqq = value
            .get(b"reqq")
            .and_then(Value::as_int)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n > 0);
        Ok(Some(ExtHandshake {
            port,
            client,
            ut_metadata: ext_id(m, b"ut_metadata"),
            ut_pex: ext_id(m, b"ut_pex"),
            metadata_size,
            reqq,
        }))
    }

    /// Appends our extension handshake, framed: the extended messages we
    /// read, the info dict's size when we hold it, our listen port, how
    /// many requests we queue (`REQQ`) and our client name (keys in
    /// bencode's sorted order).
    pub fn encode(offer: &Offer<'_>, out: &mut Vec<u8>) {
        let mut dict = Vec::with_capacity(80 + offer.client.len());
        dict.extend_from_slice(b"d1:md11:ut_metadatai");
        dict.extend_from_slice(OUR_UT_METADATA.to_string().as_bytes());
        dict.push(b'e');
        if offer.pex {
            dict.extend_from_slice(b"6:ut_pexi");
            dict.extend_from_slice(OUR_UT_PEX.to_string().as_bytes());
            dict.push(b'e');
        }
        dict.push(b'e');
        if let Some(size) = offer.metadata_size {
            dict.extend_from_slice(b"13:metadata_sizei");
            dict.extend_from_slice(size.to_string().as_bytes());
            dict.push(b'e');
        }
        dict.extend_from_slice(b"1:pi");
        dict.extend_from_slice(offer.port.to_string().as_bytes());
        dict.extend_from_slice(b"e4:reqqi");
        dict.extend_from_slice(REQQ.to_string().as_bytes());
        dict.extend_from_slice(b"e1:v");
        Value::Bytes(offer.client.as_bytes()).encode(&mut dict);
        dict.push(b'e');
        out.extend_from_slice(&(dict.len() as u32 + 2).to_be_bytes());
        out.push(EXTENDED);
        out.push(HANDSHAKE);
        out.extend_from_slice(&dict);
    }
}

/// Appends an extended message framed for the peer: `ext_id` is the id
/// the peer's `m` gave for it, `body` its bencoded (and raw) bytes.
pub fn frame(ext_id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32 + 2).to_be_bytes());
    out.push(EXTENDED);
    out.push(ext_id);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::peer::Message;

    fn offer(pex: bool, metadata_size: Option<u64>) -> Offer<'static> {
        Offer {
            port: 6881,
            client: "STA 0.1.0",
            pex,
            metadata_size,
        }
    }

    #[test]
    fn ours_reads_back_and_is_a_peer_message() {
        let mut out = Vec::new();
        ExtHandshake::encode(&offer(true, Some(31235)), &mut out);
        assert_eq!(
            &out[4..],
            &b"\x14\x00d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e4:reqqi256e1:v9:STA 0.1.0e"[..]
        );
        let Ok(Some((Message::Unknown { id, payload }, n))) = Message::decode(&out) else {
            panic!("a peer-wire frame");
        };
        assert_eq!((id, n), (EXTENDED, out.len()));
        let got = ExtHandshake::decode(payload).unwrap().unwrap();
        assert_eq!(got.port, Some(6881));
        assert_eq!(got.client.as_deref(), Some("STA 0.1.0"));
        assert_eq!(got.ut_metadata, Some(OUR_UT_METADATA));
        assert_eq!(got.ut_pex, Some(OUR_UT_PEX));
        assert_eq!(got.metadata_size, Some(31235));
        assert_eq!(got.reqq, Some(REQQ as u32));
        // A private torrent's, or one whose dict we are still fetching.
        let mut out = Vec::new();
        ExtHandshake::encode(&offer(false, None), &mut out);
        let got = ExtHandshake::decode(&out[5..]).unwrap().unwrap();
        assert_eq!((got.ut_pex, got.metadata_size), (None, None));
        assert_eq!(got.ut_metadata, Some(OUR_UT_METADATA));
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
        for dict in [
            &b"d1:md11:ut_metadatai0eee"[..],
            b"d1:md11:ut_metadatai256eee",
            b"d1:md11:ut_metadatai-1eee",
            b"d1:ml11:ut_metadataee",
            b"d13:metadata_sizei-5ee",
        ] {
            let mut p = vec![0];
            p.extend_from_slice(dict);
            let hs = read(&p).unwrap().unwrap();
            assert_eq!((hs.ut_metadata, hs.metadata_size), (None, None), "{dict:?}");
        }
        for dict in [
            &b"d4:reqqi0ee"[..],
            b"d4:reqqi-3ee",
            b"d4:reqqi4294967296ee",
            b"d4:reqq3:500e",
        ] {
            let mut p = vec![0];
            p.extend_from_slice(dict);
            assert_eq!(read(&p).unwrap().unwrap().reqq, None, "{dict:?}");
        }
        let long = format!("d1:v{}:{}e", 200, "x".repeat(200));
        let mut p = vec![0];
        p.extend_from_slice(long.as_bytes());
        let client = read(&p).unwrap().unwrap().client.unwrap();
        assert_eq!(client.len(), MAX_CLIENT_NAME);
    }
}
