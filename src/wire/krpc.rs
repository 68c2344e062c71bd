//! KRPC, the DHT's message format (BEP 5), sans-IO: one bencoded dict per
//! UDP datagram. Decoding borrows from the datagram and checks sizes before
//! anything is kept, so a peer can make us allocate only in proportion to
//! the bytes it actually sent (at most [`MAX_KRPC_DATAGRAM`]). Encoding
//! writes into a caller's buffer, keys in the sorted order bencode needs.
//!
//! A query names its method (`ping`, `find_node`, `get_peers`,
//! `announce_peer`); a response carries no method, so the caller matches it
//! to its query by transaction id and reads the fields it expects.

use crate::limits::{MAX_KRPC_DATAGRAM, MAX_KRPC_TID, MAX_KRPC_TOKEN};
use crate::meta::bencode::{self, BencodeError, Value};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A DHT node's 160-bit id, in the same space as info hashes.
pub type NodeId = [u8; 20];

/// Bytes of one compact node (id, IPv4 address, port).
pub const COMPACT_NODE_LEN: usize = 26;
/// Bytes of one compact peer (IPv4 address, port).
pub const COMPACT_PEER_LEN: usize = 6;

/// BEP 5 error codes.
pub const ERROR_GENERIC: i64 = 201;
pub const ERROR_SERVER: i64 = 202;
pub const ERROR_PROTOCOL: i64 = 203;
pub const ERROR_METHOD_UNKNOWN: i64 = 204;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query<'a> {
    Ping {
        id: NodeId,
    },
    FindNode {
        id: NodeId,
        target: NodeId,
    },
    GetPeers {
        id: NodeId,
        info_hash: NodeId,
    },
    AnnouncePeer {
        id: NodeId,
        info_hash: NodeId,
        port: u16,
        /// The peer's port is the datagram's source port, not `port`.
        implied_port: bool,
        token: &'a [u8],
    },
}

impl Query<'_> {
    /// The querying node's id.
    pub fn id(&self) -> &NodeId {
        match self {
            Query::Ping { id }
            | Query::FindNode { id, .. }
            | Query::GetPeers { id, .. }
            | Query::AnnouncePeer { id, .. } => id,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Query::Ping { .. } => "ping",
            Query::FindNode { .. } => "find_node",
            Query::GetPeers { .. } => "get_peers",
            Query::AnnouncePeer { .. } => "announce_peer",
        }
    }
}

/// A response's fields; which are present depends on the query answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response<'a> {
    pub id: NodeId,
    /// Compact IPv4 nodes (`nodes`), in the order sent.
    pub nodes: Vec<(NodeId, SocketAddrV4)>,
    /// Compact IPv4 peers (`values`); entries of another length (IPv6,
    /// BEP 32) are skipped.
    pub values: Vec<SocketAddrV4>,
    pub token: Option<&'a [u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Query(Query<'a>),
    Response(Response<'a>),
    Error { code: i64, message: &'a [u8] },
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Transaction id, echoed by the answer (at most [`MAX_KRPC_TID`]).
    pub tid: &'a [u8],
    pub body: Body<'a>,
    /// BEP 42 `ip`: the address the sender saw our datagram come from.
    pub ip: Option<SocketAddrV4>,
}

/// Why a datagram is not a KRPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Longer than [`MAX_KRPC_DATAGRAM`].
    TooLarge(usize),
    Bencode(BencodeError),
    NotADict,
    /// A required key is absent or of the wrong type.
    Missing(&'static str),
    /// A key of the right type with a bad length or value.
    Invalid(&'static str),
    /// `y` is none of `q`, `r`, `e`.
    UnknownType,
    /// A query whose `q` we do not implement.
    UnknownMethod,
}

/// A refused datagram. [`DecodeError::reply_code`] says whether an error
/// message may be sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError<'a> {
    pub kind: ErrorKind,
    /// The transaction id, when one was read.
    pub tid: Option<&'a [u8]>,
    /// The datagram said it was a query (`y` = `q`).
    pub query: bool,
}

impl DecodeError<'_> {
    /// The KRPC error code to answer with: 204 for an unknown method, 203
    /// for any other malformed query. `None` (drop silently) for anything
    /// not a query with a transaction id: answering a broken response or
    /// error could start a loop between two nodes.
    pub fn reply_code(&self) -> Option<i64> {
        if !self.query || self.tid.is_none() {
            return None;
        }
        Some(match self.kind {
            ErrorKind::UnknownMethod => ERROR_METHOD_UNKNOWN,
            _ => ERROR_PROTOCOL,
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::TooLarge(n) => {
                write!(f, "datagram of {n} bytes exceeds {MAX_KRPC_DATAGRAM}")
            }
            ErrorKind::Bencode(e) => write!(f, "bad bencode: {e}"),
            ErrorKind::NotADict => f.write_str("not a dict"),
            ErrorKind::Missing(k) => write!(f, "missing or mistyped key {k}"),
            ErrorKind::Invalid(k) => write!(f, "invalid value for {k}"),
            ErrorKind::UnknownType => f.write_str("unknown message type"),
            ErrorKind::UnknownMethod => f.write_str("unknown method"),
        }
    }
}

impl fmt::Display for DecodeError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for DecodeError<'_> {}

fn id_of(v: Option<&Value<'_>>, key: &'static str) -> Result<NodeId, ErrorKind> {
    let b = v.and_then(Value::as_bytes).ok_or(ErrorKind::Missing(key))?;
    b.try_into().map_err(|_| ErrorKind::Invalid(key))
}

/// Reads a compact IPv4 address and port.
pub fn compact_peer(b: &[u8]) -> Option<SocketAddrV4> {
    let b: &[u8; COMPACT_PEER_LEN] = b.try_into().ok()?;
    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    Some(SocketAddrV4::new(ip, u16::from_be_bytes([b[4], b[5]])))
}

/// Writes a compact IPv4 address and port.
pub fn put_compact_peer(out: &mut Vec<u8>, a: &SocketAddrV4) {
    out.extend_from_slice(&a.ip().octets());
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// Splits a compact node list; trailing bytes short of a node are ignored.
pub fn compact_nodes(b: &[u8]) -> Vec<(NodeId, SocketAddrV4)> {
    b.chunks_exact(COMPACT_NODE_LEN)
        .filter_map(|c| {
            let (id, addr) = c.split_at(20);
            Some((id.try_into().ok()?, compact_peer(addr)?))
        })
        .collect()
}

impl<'a> Message<'a> {
    /// Decodes one datagram.
    pub fn decode(b: &'a [u8]) -> Result<Message<'a>, DecodeError<'a>> {
        let mut err = DecodeError {
            kind: ErrorKind::NotADict,
            tid: None,
            query: false,
        };
        if b.len() > MAX_KRPC_DATAGRAM {
            err.kind = ErrorKind::TooLarge(b.len());
            return Err(err);
        }
        // The tree is bounded by the datagram: every value takes at least
        // two of its bytes.
        let top = bencode::decode(b).map_err(|e| DecodeError {
            kind: ErrorKind::Bencode(e),
            ..err
        })?;
        if !matches!(top, Value::Dict(_)) {
            return Err(err);
        }
        err.query = top.get(b"y").and_then(Value::as_bytes) == Some(b"q");
        let tid = top.get(b"t").and_then(Value::as_bytes);
        match tid {
            Some(t) if t.len() <= MAX_KRPC_TID => err.tid = Some(t),
            Some(_) => {
                return Err(DecodeError {
                    kind: ErrorKind::Invalid("t"),
                    ..err
                });
            }
            None => {
                return Err(DecodeError {
                    kind: ErrorKind::Missing("t"),
                    ..err
                });
            }
        }
        let fail = |kind| DecodeError { kind, ..err };
        let ip = match top.get(b"ip").and_then(Value::as_bytes) {
            Some(raw) => compact_peer(raw),
            None => None,
        };
        let body = match top.get(b"y").and_then(Value::as_bytes) {
            Some(b"q") => Body::Query(decode_query(&top).map_err(fail)?),
            Some(b"r") => Body::Response(decode_response(&top).map_err(fail)?),
            Some(b"e") => decode_error(&top).map_err(fail)?,
            Some(_) => return Err(fail(ErrorKind::UnknownType)),
            None => return Err(fail(ErrorKind::Missing("y"))),
        };
        Ok(Message {
            tid: tid.unwrap_or_default(),
            body,
            ip,
        })
    }
}

fn decode_query<'a>(top: &Value<'a>) -> Result<Query<'a>, ErrorKind> {
    let method = top
        .get(b"q")
        .and_then(Value::as_bytes)
        .ok_or(ErrorKind::Missing("q"))?;
    let a = top.get(b"a").ok_or(ErrorKind::Missing("a"))?;
    if !matches!(a, Value::Dict(_)) {
        return Err(ErrorKind::Missing("a"));
    }
    let id = id_of(a.get(b"id"), "id")?;
    Ok(match method {
        b"ping" => Query::Ping { id },
        b"find_node" => Query::FindNode {
            id,
            target: id_of(a.get(b"target"), "target")?,
        },
        b"get_peers" => Query::GetPeers {
            id,
            info_hash: id_of(a.get(b"info_hash"), "info_hash")?,
        },
        b"announce_peer" => {
            let port = a
                .get(b"port")
                .and_then(Value::as_int)
                .ok_or(ErrorKind::Missing("port"))?;
            let implied_port = match a.get(b"implied_port") {
                None => false,
                Some(v) => v.as_int().ok_or(ErrorKind::Missing("implied_port"))? != 0,
            };
            // With implied_port the port is ignored, so any value passes.
            let port = match u16::try_from(port) {
                Ok(p) if p != 0 || implied_port => p,
                _ if implied_port => 0,
                _ => return Err(ErrorKind::Invalid("port")),
            };
            let token = a
                .get(b"token")
                .and_then(Value::as_bytes)
                .ok_or(ErrorKind::Missing("token"))?;
            if token.len() > MAX_KRPC_TOKEN {
                return Err(ErrorKind::Invalid("token"));
            }
            Query::AnnouncePeer {
                id,
                info_hash: id_of(a.get(b"info_hash"), "info_hash")?,
                port,
                implied_port,
                token,
            }
        }
        _ => return Err(ErrorKind::UnknownMethod),
    })
}

fn decode_response<'a>(top: &Value<'a>) -> Result<Response<'a>, ErrorKind> {
    let r = top.get(b"r").ok_or(ErrorKind::Missing("r"))?;
    if !matches!(r, Value::Dict(_)) {
        return Err(ErrorKind::Missing("r"));
    }
    let id = id_of(r.get(b"id"), "id")?;
    let nodes = match r.get(b"nodes") {
        None => Vec::new(),
        Some(v) => compact_nodes(v.as_bytes().ok_or(ErrorKind::Missing("nodes"))?),
    };
    let values = match r.get(b"values") {
        None => Vec::new(),
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|v| v.as_bytes().and_then(compact_peer))
            .collect(),
        Some(_) => return Err(ErrorKind::Missing("values")),
    };
    let token = match r.get(b"token") {
        None => None,
        Some(v) => {
            let t = v.as_bytes().ok_or(ErrorKind::Missing("token"))?;
            if t.len() > MAX_KRPC_TOKEN {
                return Err(ErrorKind::Invalid("token"));
            }
            Some(t)
        }
    };
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

fn decode_error<'a>(top: &Value<'a>) -> Result<Body<'a>, ErrorKind> {
    let Some(Value::List(items)) = top.get(b"e") else {
        return Err(ErrorKind::Missing("e"));
    };
    let code = items
        .first()
        .and_then(Value::as_int)
        .ok_or(ErrorKind::Invalid("e"))?;
    let message = items.get(1).and_then(Value::as_bytes).unwrap_or_default();
    Ok(Body::Error { code, message })
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

fn put_key_bytes(out: &mut Vec<u8>, key: &str, b: &[u8]) {
    put_bytes(out, key.as_bytes());
    put_bytes(out, b);
}

impl Message<'_> {
    /// Appends the datagram to `out`; keys in sorted order, so a decoded
    /// message re-encodes to the bytes it came from when the sender
    /// wrote no key we skip.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'd');
        match &self.body {
            Body::Query(q) => {
                put_bytes(out, b"a");
                encode_args(out, q);
            }
            Body::Error { code, message } => {
                put_bytes(out, b"e");
                out.push(b'l');
                put_int(out, *code);
                put_bytes(out, message);
                out.push(b'e');
            }
            Body::Response(_) => {}
        }
        if let Some(ip) = &self.ip {
            let mut raw = Vec::with_capacity(COMPACT_PEER_LEN);
            put_compact_peer(&mut raw, ip);
            put_key_bytes(out, "ip", &raw);
        }
        match &self.body {
            Body::Query(q) => put_key_bytes(out, "q", q.method().as_bytes()),
            Body::Response(r) => {
                put_bytes(out, b"r");
                encode_response(out, r);
            }
            Body::Error { .. } => {}
        }
        put_key_bytes(out, "t", self.tid);
        let y: &[u8] = match self.body {
            Body::Query(_) => b"q",
            Body::Response(_) => b"r",
            Body::Error { .. } => b"e",
        };
        put_key_bytes(out, "y", y);
        out.push(b'e');
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn encode_args(out: &mut Vec<u8>, q: &Query<'_>) {
    out.push(b'd');
    put_key_bytes(out, "id", q.id());
    match q {
        Query::Ping { .. } => {}
        Query::FindNode { target, .. } => put_key_bytes(out, "target", target),
        Query::GetPeers { info_hash, .. } => put_key_bytes(out, "info_hash", info_hash),
        Query::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            ..
        } => {
            if *implied_port {
                put_bytes(out, b"implied_port");
                put_int(out, 1);
            }
            put_key_bytes(out, "info_hash", info_hash);
            put_bytes(out, b"port");
            put_int(out, i64::from(*port));
            put_key_bytes(out, "token", token);
        }
    }
    out.push(b'e');
}

fn encode_response(out: &mut Vec<u8>, r: &Response<'_>) {
    out.push(b'd');
    put_key_bytes(out, "id", &r.id);
    if !r.nodes.is_empty() {
        put_bytes(out, b"nodes");
        let len = r.nodes.len() * COMPACT_NODE_LEN;
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b':');
        for (id, addr) in &r.nodes {
            out.extend_from_slice(id);
            put_compact_peer(out, addr);
        }
    }
    if let Some(token) = r.token {
        put_key_bytes(out, "token", token);
    }
    if !r.values.is_empty() {
        put_bytes(out, b"values");
        out.push(b'l');
        for v in &r.values {
            out.extend_from_slice(b"6:");
            put_compact_peer(out, v);
        }
        out.push(b'e');
    }
    out.push(b'e');
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: NodeId = *b"abcdefghij0123456789";
    const HASH: NodeId = *b"mnopqrstuvwxyz123456";

    fn round_trip(m: &Message<'_>) {
        let bytes = m.to_vec();
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(m), "{bytes:?}");
    }

    #[test]
    fn bep5_examples_decode() {
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        let m = Message::decode(ping).unwrap();
        assert_eq!(m.tid, b"aa");
        assert_eq!(m.body, Body::Query(Query::Ping { id: ID }));
        assert_eq!(m.to_vec(), ping);
        let err = b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
        let m = Message::decode(err).unwrap();
        assert_eq!(
            m.body,
            Body::Error {
                code: 201,
                message: b"A Generic Error Ocurred"
            }
        );
        assert_eq!(m.to_vec(), err);
        let announce = b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
        let m = Message::decode(announce).unwrap();
        assert_eq!(
            m.body,
            Body::Query(Query::AnnouncePeer {
                id: ID,
                info_hash: HASH,
                port: 6881,
                implied_port: true,
                token: b"aoeusnth"
            })
        );
        assert_eq!(m.to_vec(), announce);
    }

    #[test]
    fn every_kind_round_trips() {
        let addr = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 7), 6881);
        for body in [
            Body::Query(Query::FindNode {
                id: ID,
                target: HASH,
            }),
            Body::Query(Query::GetPeers {
                id: ID,
                info_hash: HASH,
            }),
            Body::Query(Query::AnnouncePeer {
                id: ID,
                info_hash: HASH,
                port: 1,
                implied_port: false,
                token: b"tok",
            }),
            Body::Response(Response {
                id: ID,
                nodes: vec![(HASH, addr), (ID, addr)],
                values: vec![addr],
                token: Some(b"tk"),
            }),
            Body::Response(Response {
                id: ID,
                ..Response::default()
            }),
        ] {
            round_trip(&Message {
                tid: b"xy",
                body: body.clone(),
                ip: None,
            });
            round_trip(&Message {
                tid: b"",
                body,
                ip: Some(addr),
            });
        }
    }

    #[test]
    fn bad_queries_get_203_or_204_and_the_rest_is_dropped() {
        let code = |b: &[u8]| Message::decode(b).err().and_then(|e| e.reply_code());
        // Unknown method: 204.
        assert_eq!(
            code(b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe"),
            Some(204)
        );
        // Short id: 203.
        assert_eq!(code(b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe"), Some(203));
        // announce_peer without a token: 203.
        assert_eq!(
            code(b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1ee1:q13:announce_peer1:t2:aa1:y1:qe"),
            Some(203)
        );
        // A broken response, no transaction id, not bencode: dropped.
        assert_eq!(code(b"d1:rd2:id1:xe1:t2:aa1:y1:re"), None);
        assert_eq!(
            code(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe"),
            None
        );
        assert_eq!(code(b"d1:t"), None);
        assert_eq!(code(b"le"), None);
        let big = vec![b'x'; MAX_KRPC_DATAGRAM + 1];
        assert_eq!(
            Message::decode(&big).err().map(|e| e.kind),
            Some(ErrorKind::TooLarge(MAX_KRPC_DATAGRAM + 1))
        );
    }

    #[test]
    fn odd_compact_entries_are_skipped() {
        let mut r = b"d1:rd2:id20:abcdefghij01234567895:nodes27:".to_vec();
        r.extend_from_slice(&[7u8; 27]);
        r.extend_from_slice(b"6:valuesl6:\x0a\x00\x00\x01\x1a\xe118:");
        r.extend_from_slice(&[0u8; 18]);
        r.extend_from_slice(b"ee1:t1:a1:y1:re");
        let m = Message::decode(&r).unwrap();
        let Body::Response(resp) = m.body else {
            panic!("not a response")
        };
        assert_eq!(resp.nodes.len(), 1);
        assert_eq!(resp.values, ["10.0.0.1:6881".parse().unwrap()]);
    }
}
