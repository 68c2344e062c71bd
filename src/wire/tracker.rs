//! The tracker protocol: STA's own, over a persistent TCP session, in the
//! common framing. A peer sends requests; the tracker answers each one, in
//! order, with exactly one response (possibly an `Error`). Messages here own
//! their bytes: they are small, rare next to piece traffic, and the catalog
//! keeps them anyway.

use super::cursor::Cursor;
use super::{LEN_PREFIX, begin_frame, finish_frame, split_frame};
use crate::limits::{MAX_ERROR_MESSAGE, MAX_FILTER_LEN, MAX_NAME_LEN, MAX_TRACKER_FRAME};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use super::{InfoHash, PeerId};

/// Request ids (peer -> tracker).
pub mod req {
    pub const HELLO: u8 = 0x01;
    pub const ANNOUNCE: u8 = 0x02;
    pub const HAVE: u8 = 0x03;
    pub const LIST: u8 = 0x04;
    pub const GET_META: u8 = 0x05;
    pub const GET_PEERS: u8 = 0x06;
    pub const LEAVE: u8 = 0x07;
    pub const VOUCH: u8 = 0x08;
    pub const ACCEPT_DIALS: u8 = 0x09;
}

/// Response ids (tracker -> peer).
pub mod resp {
    pub const ACK: u8 = 0x80;
    pub const WELCOME: u8 = 0x81;
    pub const ANNOUNCED: u8 = 0x82;
    pub const LIST_PAGE: u8 = 0x84;
    pub const META: u8 = 0x85;
    pub const PEERS: u8 = 0x86;
    pub const DIAL: u8 = 0x87;
    pub const ERROR: u8 = 0xff;
}

/// Which pieces a peer holds: all of them (a seeder, no bitfield sent), or
/// a BEP 3 bitfield (high bit of byte 0 is piece 0, spare bits zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pieces {
    All,
    Bitfield(Vec<u8>),
}

/// How `GetMeta` names a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Hash(InfoHash),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    KeepAlive,
    Hello {
        version: u16,
        peer_id: PeerId,
        listen_port: u16,
    },
    /// `info` is the bencoded BEP 3 info dict; the tracker derives the info
    /// hash from it, so a peer cannot announce metadata under a false id.
    Announce {
        info: Vec<u8>,
        pieces: Pieces,
    },
    Have {
        info_hash: InfoHash,
        piece: u32,
    },
    List {
        offset: u32,
        limit: u16,
        filter: String,
    },
    GetMeta(Lookup),
    GetPeers {
        info_hash: InfoHash,
        max: u16,
        piece: Option<u32>,
    },
    Leave {
        info_hash: InfoHash,
    },
    /// The BitTorrent peers of a file this session is connected to (and
    /// dialed, so their addresses are where they listen): replaces what
    /// it vouched for that file before.
    Vouch {
        info_hash: InfoHash,
        peers: Vec<Vouched>,
    },
    /// The session may be sent `Dial` messages unasked (an older tracker
    /// answers it with error 6, and sends none).
    AcceptDials,
}

/// A BitTorrent peer a session vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vouched {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub seeder: bool,
}

impl Vouched {
    /// Its bytes at least: peer id, an IPv4 address, the seeder flag.
    pub const MIN_LEN: usize = 28;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub info_hash: InfoHash,
    pub length: u64,
    pub piece_length: u32,
    pub peers: u32,
    pub seeders: u32,
    /// Files a download creates, pad files not counted: 1 for a single
    /// file; for a directory (an info dict with `files`), its files.
    pub files: u32,
    pub name: String,
}

impl ListEntry {
    /// The bytes an entry takes at least: its fixed fields and an empty
    /// name's length.
    pub const MIN_LEN: usize = 46;

    /// Shown as a directory: more than one file. (A directory of a single
    /// file lists as a file; its info dict tells the two apart.)
    pub fn is_dir(&self) -> bool {
        self.files > 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub pieces: Pieces,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    KeepAlive,
    Ack,
    Welcome {
        version: u16,
        idle_timeout_secs: u32,
    },
    Announced {
        info_hash: InfoHash,
    },
    ListPage {
        total: u32,
        entries: Vec<ListEntry>,
    },
    Meta {
        info: Vec<u8>,
    },
    Peers {
        info_hash: InfoHash,
        peers: Vec<PeerEntry>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Unsolicited, only to a session that sent `AcceptDials`, and no
    /// answer to any request: a BitTorrent client just announced a file
    /// the session seeds; dialing it is the only way to reach a client
    /// that cannot dial us (Transmission 3.00 with uTP on).
    Dial {
        info_hash: InfoHash,
        addr: SocketAddr,
    },
}

/// Error codes of the `Error` response. A code we do not know is kept as
/// is, so newer trackers can add codes without breaking older peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

impl ErrorCode {
    pub const FILE_NOT_FOUND: ErrorCode = ErrorCode(1);
    pub const INVALID_PARAMETERS: ErrorCode = ErrorCode(2);
    pub const PIECE_OUT_OF_RANGE: ErrorCode = ErrorCode(3);
    pub const AMBIGUOUS_NAME: ErrorCode = ErrorCode(4);
    pub const FRAME_TOO_LARGE: ErrorCode = ErrorCode(5);
    pub const UNKNOWN_MESSAGE: ErrorCode = ErrorCode(6);
    pub const UNSUPPORTED_VERSION: ErrorCode = ErrorCode(7);
    pub const LIMIT_REACHED: ErrorCode = ErrorCode(8);
    pub const HELLO_REQUIRED: ErrorCode = ErrorCode(9);
    pub const INVALID_METADATA: ErrorCode = ErrorCode(10);
    pub const IDLE_TIMEOUT: ErrorCode = ErrorCode(11);
    pub const BANNED: ErrorCode = ErrorCode(12);
    pub const RATE_LIMITED: ErrorCode = ErrorCode(13);
    pub const PRIVATE_FILE: ErrorCode = ErrorCode(14);

    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "file not found",
            2 => "invalid parameters",
            3 => "piece index out of range",
            4 => "ambiguous name",
            5 => "frame too large",
            6 => "unknown message",
            7 => "unsupported version",
            8 => "limit reached",
            9 => "hello required",
            10 => "invalid metadata",
            11 => "idle timeout",
            12 => "banned",
            13 => "rate limited",
            14 => "private file",
            _ => "unknown error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// A frame that could not be decoded. `used` says what may follow: with
/// `Some(n)` the framing is intact, the tracker answers with this error and
/// goes on after skipping `n` bytes; with `None` the stream is lost (the
/// frame is too large), so the error is sent and the session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    pub used: Option<usize>,
}

impl DecodeError {
    pub fn is_fatal(&self) -> bool {
        self.used.is_none()
    }

    /// The error response a tracker sends for this decode error.
    pub fn to_response(&self) -> Response {
        Response::Error {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for DecodeError {}

type Decoded<T> = Result<Option<(T, usize)>, DecodeError>;

/// Splits off the next frame and hands its id and payload to `body`,
/// turning `None` from it into an "invalid parameters" error.
fn decode_with<T>(
    buf: &[u8],
    keep_alive: T,
    body: impl FnOnce(u8, &mut Cursor<'_>) -> Result<Option<T>, DecodeError>,
) -> Decoded<T> {
    let (frame, used) = match split_frame(buf, MAX_TRACKER_FRAME) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(DecodeError {
                code: ErrorCode::FRAME_TOO_LARGE,
                message: e.to_string(),
                used: None,
            });
        }
    };
    let Some((&id, payload)) = frame.split_first() else {
        return Ok(Some((keep_alive, used)));
    };
    let mut c = Cursor::new(payload);
    let frame_error = |code, message: String| DecodeError {
        code,
        message,
        used: Some(used),
    };
    match body(id, &mut c).map_err(|e| DecodeError {
        used: Some(used),
        ..e
    })? {
        Some(msg) if c.is_empty() => Ok(Some((msg, used))),
        Some(_) => Err(frame_error(
            ErrorCode::INVALID_PARAMETERS,
            format!("message 0x{id:02x} has {} trailing bytes", c.remaining()),
        )),
        None => Err(frame_error(
            ErrorCode::INVALID_PARAMETERS,
            format!("message 0x{id:02x} is truncated or malformed"),
        )),
    }
}

fn unknown(id: u8) -> DecodeError {
    DecodeError {
        code: ErrorCode::UNKNOWN_MESSAGE,
        message: format!("unknown message id 0x{id:02x}"),
        used: None, // filled in by decode_with
    }
}

impl Request {
    /// The request's kind in snake case (`get_peers`), as metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::KeepAlive => "keepalive",
            Request::Hello { .. } => "hello",
            Request::Announce { .. } => "announce",
            Request::Have { .. } => "have",
            Request::List { .. } => "list",
            Request::GetMeta(_) => "get_meta",
            Request::GetPeers { .. } => "get_peers",
            Request::Leave { .. } => "leave",
            Request::Vouch { .. } => "vouch",
            Request::AcceptDials => "accept_dials",
        }
    }

    /// Decodes the next request from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Decoded<Request> {
        decode_with(buf, Request::KeepAlive, |id, c| {
            Ok(match id {
                req::HELLO => (|| {
                    Some(Request::Hello {
                        version: c.u16()?,
                        peer_id: c.array()?,
                        listen_port: c.u16()?,
                    })
                })(),
                req::ANNOUNCE => (|| {
                    let n = c.u32()? as usize;
                    let info = c.bytes(n)?.to_vec();
                    Some(Request::Announce {
                        info,
                        pieces: read_pieces(c)?,
                    })
                })(),
                req::HAVE => (|| {
                    Some(Request::Have {
                        info_hash: c.array()?,
                        piece: c.u32()?,
                    })
                })(),
                req::LIST => (|| {
                    Some(Request::List {
                        offset: c.u32()?,
                        limit: c.u16()?,
                        filter: read_str(c, MAX_FILTER_LEN)?,
                    })
                })(),
                req::GET_META => (|| {
                    Some(Request::GetMeta(match c.u8()? {
                        0 => Lookup::Hash(c.array()?),
                        1 => Lookup::Name(read_str(c, MAX_NAME_LEN)?),
                        _ => return None,
                    }))
                })(),
                req::GET_PEERS => (|| {
                    let info_hash = c.array()?;
                    let max = c.u16()?;
                    let piece = match c.u8()? {
                        0 => None,
                        1 => Some(c.u32()?),
                        _ => return None,
                    };
                    Some(Request::GetPeers {
                        info_hash,
                        max,
                        piece,
                    })
                })(),
                req::LEAVE => c.array().map(|info_hash| Request::Leave { info_hash }),
                req::VOUCH => (|| {
                    let info_hash = c.array()?;
                    let count = c.u16()?;
                    let most = c.remaining() / Vouched::MIN_LEN;
                    let mut peers = Vec::with_capacity(usize::from(count).min(most));
                    for _ in 0..count {
                        peers.push(Vouched {
                            peer_id: c.array()?,
                            addr: read_addr(c)?,
                            seeder: match c.u8()? {
                                0 => false,
                                1 => true,
                                _ => return None,
                            },
                        });
                    }
                    Some(Request::Vouch { info_hash, peers })
                })(),
                req::ACCEPT_DIALS => Some(Request::AcceptDials),
                _ => return Err(unknown(id)),
            })
        })
    }

    /// Appends this request, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let id = match self {
            Request::KeepAlive => {
                out.extend_from_slice(&[0; 4]);
                return;
            }
            Request::Hello { .. } => req::HELLO,
            Request::Announce { .. } => req::ANNOUNCE,
            Request::Have { .. } => req::HAVE,
            Request::List { .. } => req::LIST,
            Request::GetMeta(_) => req::GET_META,
            Request::GetPeers { .. } => req::GET_PEERS,
            Request::Leave { .. } => req::LEAVE,
            Request::Vouch { .. } => req::VOUCH,
            Request::AcceptDials => req::ACCEPT_DIALS,
        };
        let at = begin_frame(out, id);
        match self {
            Request::KeepAlive | Request::AcceptDials => {}
            Request::Hello {
                version,
                peer_id,
                listen_port,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(peer_id);
                out.extend_from_slice(&listen_port.to_be_bytes());
            }
            Request::Announce { info, pieces } => announce_body(out, info, pieces),
            Request::Have { info_hash, piece } => {
                out.extend_from_slice(info_hash);
                out.extend_from_slice(&piece.to_be_bytes());
            }
            Request::List {
                offset,
                limit,
                filter,
            } => {
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&limit.to_be_bytes());
                write_str(out, filter);
            }
            Request::GetMeta(Lookup::Hash(h)) => {
                out.push(0);
                out.extend_from_slice(h);
            }
            Request::GetMeta(Lookup::Name(name)) => {
                out.push(1);
                write_str(out, name);
            }
            Request::GetPeers {
                info_hash,
                max,
                piece,
            } => {
                out.extend_from_slice(info_hash);
                out.extend_from_slice(&max.to_be_bytes());
                match piece {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        out.extend_from_slice(&p.to_be_bytes());
                    }
                }
            }
            Request::Leave { info_hash } => out.extend_from_slice(info_hash),
            Request::Vouch { info_hash, peers } => {
                out.extend_from_slice(info_hash);
                out.extend_from_slice(&(peers.len() as u16).to_be_bytes());
                for p in peers {
                    out.extend_from_slice(&p.peer_id);
                    write_addr(out, p.addr);
                    out.push(u8::from(p.seeder));
                }
            }
        }
        finish_frame(out, at);
    }
}

impl Response {
    /// Decodes the next response from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Decoded<Response> {
        decode_with(buf, Response::KeepAlive, |id, c| {
            Ok(match id {
                resp::ACK => Some(Response::Ack),
                resp::WELCOME => (|| {
                    Some(Response::Welcome {
                        version: c.u16()?,
                        idle_timeout_secs: c.u32()?,
                    })
                })(),
                resp::ANNOUNCED => c.array().map(|info_hash| Response::Announced { info_hash }),
                resp::LIST_PAGE => (|| {
                    let total = c.u32()?;
                    let count = c.u16()?;
                    // Never trust the count beyond what the frame can
                    // actually hold.
                    let most = c.remaining() / ListEntry::MIN_LEN;
                    let mut entries = Vec::with_capacity((count as usize).min(most));
                    for _ in 0..count {
                        entries.push(ListEntry {
                            info_hash: c.array()?,
                            length: c.u64()?,
                            piece_length: c.u32()?,
                            peers: c.u32()?,
                            seeders: c.u32()?,
                            files: c.u32()?,
                            name: read_str(c, MAX_NAME_LEN)?,
                        });
                    }
                    Some(Response::ListPage { total, entries })
                })(),
                resp::META => Some(Response::Meta {
                    info: c.rest().to_vec(),
                }),
                resp::PEERS => (|| {
                    let info_hash = c.array()?;
                    let count = c.u16()?;
                    let mut peers = Vec::with_capacity((count as usize).min(c.remaining() / 28));
                    for _ in 0..count {
                        peers.push(PeerEntry {
                            peer_id: c.array()?,
                            addr: read_addr(c)?,
                            pieces: read_pieces(c)?,
                        });
                    }
                    Some(Response::Peers { info_hash, peers })
                })(),
                resp::DIAL => (|| {
                    Some(Response::Dial {
                        info_hash: c.array()?,
                        addr: read_addr(c)?,
                    })
                })(),
                resp::ERROR => (|| {
                    Some(Response::Error {
                        code: ErrorCode(c.u16()?),
                        message: read_str(c, MAX_ERROR_MESSAGE)?,
                    })
                })(),
                _ => return Err(unknown(id)),
            })
        })
    }

    /// Appends this response, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let id = match self {
            Response::KeepAlive => {
                out.extend_from_slice(&[0; 4]);
                return;
            }
            Response::Ack => resp::ACK,
            Response::Welcome { .. } => resp::WELCOME,
            Response::Announced { .. } => resp::ANNOUNCED,
            Response::ListPage { .. } => resp::LIST_PAGE,
            Response::Meta { .. } => resp::META,
            Response::Peers { .. } => resp::PEERS,
            Response::Error { .. } => resp::ERROR,
            Response::Dial { .. } => resp::DIAL,
        };
        let at = begin_frame(out, id);
        match self {
            Response::KeepAlive | Response::Ack => {}
            Response::Welcome {
                version,
                idle_timeout_secs,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&idle_timeout_secs.to_be_bytes());
            }
            Response::Announced { info_hash } => out.extend_from_slice(info_hash),
            Response::ListPage { total, entries } => {
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
                for e in entries {
                    out.extend_from_slice(&e.info_hash);
                    out.extend_from_slice(&e.length.to_be_bytes());
                    out.extend_from_slice(&e.piece_length.to_be_bytes());
                    out.extend_from_slice(&e.peers.to_be_bytes());
                    out.extend_from_slice(&e.seeders.to_be_bytes());
                    out.extend_from_slice(&e.files.to_be_bytes());
                    write_str(out, &e.name);
                }
            }
            Response::Meta { info } => out.extend_from_slice(info),
            Response::Peers { info_hash, peers } => {
                out.extend_from_slice(info_hash);
                out.extend_from_slice(&(peers.len() as u16).to_be_bytes());
                for p in peers {
                    write_peer(out, p);
                }
            }
            Response::Error { code, message } => {
                out.extend_from_slice(&code.0.to_be_bytes());
                write_str(out, truncate_utf8(message, MAX_ERROR_MESSAGE));
            }
            Response::Dial { info_hash, addr } => {
                out.extend_from_slice(info_hash);
                write_addr(out, *addr);
            }
        }
        finish_frame(out, at);
    }
}

fn write_peer(out: &mut Vec<u8>, p: &PeerEntry) {
    let bits = match &p.pieces {
        Pieces::All => None,
        Pieces::Bitfield(b) => Some(b.as_slice()),
    };
    write_peer_parts(out, &p.peer_id, p.addr, bits);
}

fn write_peer_parts(out: &mut Vec<u8>, peer_id: &PeerId, addr: SocketAddr, bits: Option<&[u8]>) {
    out.extend_from_slice(peer_id);
    write_addr(out, addr);
    match bits {
        None => write_pieces(out, &Pieces::All),
        Some(bits) => {
            out.push(1);
            out.extend_from_slice(&(bits.len() as u32).to_be_bytes());
            out.extend_from_slice(bits);
        }
    }
}

/// Appends a `Peers` response built from borrowed parts (peer id, address,
/// bitfield or `None` for a seeder): the same bytes as `Response::Peers`,
/// without cloning every bitfield into owned entries first.
pub fn encode_peers<'a>(
    out: &mut Vec<u8>,
    info_hash: &InfoHash,
    peers: impl ExactSizeIterator<Item = (&'a PeerId, SocketAddr, Option<&'a [u8]>)>,
) {
    let at = begin_frame(out, resp::PEERS);
    out.extend_from_slice(info_hash);
    out.extend_from_slice(&(peers.len() as u16).to_be_bytes());
    for (peer_id, addr, bits) in peers {
        write_peer_parts(out, peer_id, addr, bits);
    }
    finish_frame(out, at);
}

fn read_str(c: &mut Cursor<'_>, max: usize) -> Option<String> {
    let n = c.u16()? as usize;
    if n > max {
        return None;
    }
    String::from_utf8(c.bytes(n)?.to_vec()).ok()
}

/// Writes a `str` field. Callers keep strings within their field's limit;
/// clamping to what the `u16` length can say keeps even a bug from
/// producing a frame whose length prefix lies.
fn write_str(out: &mut Vec<u8>, s: &str) {
    let s = truncate_utf8(s, u16::MAX as usize);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn read_pieces(c: &mut Cursor<'_>) -> Option<Pieces> {
    match c.u8()? {
        0 => Some(Pieces::All),
        1 => {
            let n = c.u32()? as usize;
            Some(Pieces::Bitfield(c.bytes(n)?.to_vec()))
        }
        _ => None,
    }
}

/// An Announce frame of an info dict of `info_len` bytes, as the bytes
/// before the dict and those after it: a sender that keeps the dict sends
/// it from there, with no [`Request`] owning a copy (the dict of a tree
/// can take MiBs).
pub fn announce_frame(info_len: usize, pieces: &Pieces) -> (Vec<u8>, Vec<u8>) {
    let mut tail = Vec::new();
    write_pieces(&mut tail, pieces);
    let mut head = Vec::with_capacity(LEN_PREFIX + 1 + 4);
    let len = 1 + 4 + info_len + tail.len();
    head.extend_from_slice(&(len as u32).to_be_bytes());
    head.push(req::ANNOUNCE);
    head.extend_from_slice(&(info_len as u32).to_be_bytes());
    (head, tail)
}

fn announce_body(out: &mut Vec<u8>, info: &[u8], pieces: &Pieces) {
    out.extend_from_slice(&(info.len() as u32).to_be_bytes());
    out.extend_from_slice(info);
    write_pieces(out, pieces);
}

fn write_pieces(out: &mut Vec<u8>, pieces: &Pieces) {
    match pieces {
        Pieces::All => out.push(0),
        Pieces::Bitfield(bits) => {
            out.push(1);
            out.extend_from_slice(&(bits.len() as u32).to_be_bytes());
            out.extend_from_slice(bits);
        }
    }
}

fn read_addr(c: &mut Cursor<'_>) -> Option<SocketAddr> {
    let ip = match c.u8()? {
        4 => IpAddr::V4(Ipv4Addr::from(c.array::<4>()?)),
        6 => IpAddr::V6(Ipv6Addr::from(c.array::<16>()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, c.u16()?))
}

fn write_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(files: u32, name: &str) -> Response {
        Response::ListPage {
            total: 1,
            entries: vec![ListEntry {
                info_hash: [9; 20],
                length: 6000,
                piece_length: 16384,
                peers: 2,
                seeders: 1,
                files,
                name: name.into(),
            }],
        }
    }

    /// The parts of an announce around its dict are the frame
    /// `Request::encode` writes whole.
    #[test]
    fn an_announce_in_parts_is_the_announce_whole() {
        let info = b"d4:name1:ae".to_vec();
        for pieces in [Pieces::All, Pieces::Bitfield(vec![0b1010_0000, 1])] {
            let (head, tail) = announce_frame(info.len(), &pieces);
            let mut whole = Vec::new();
            let req = Request::Announce {
                info: info.clone(),
                pieces,
            };
            req.encode(&mut whole);
            assert_eq!([&head[..], &info, &tail].concat(), whole);
            assert_eq!(Request::decode(&whole), Ok(Some((req, whole.len()))));
        }
    }

    /// spec/tracker.md, ListPage: `files` at offset 40 of an entry, `name`
    /// at 44; an entry is at least `MIN_LEN` bytes.
    #[test]
    fn list_entry_files_sit_between_seeders_and_name() {
        let mut out = Vec::new();
        page(3, "photos").encode(&mut out);
        let entry = &out[4 + 1 + 6..];
        assert_eq!(entry.len(), ListEntry::MIN_LEN + 6);
        assert_eq!(&entry[36..40], &1u32.to_be_bytes());
        assert_eq!(&entry[40..44], &3u32.to_be_bytes());
        assert_eq!(&entry[44..46], &6u16.to_be_bytes());
        assert_eq!(&entry[46..], b"photos");
        assert_eq!(
            Response::decode(&out),
            Ok(Some((page(3, "photos"), out.len())))
        );

        let mut out = Vec::new();
        page(1, "").encode(&mut out);
        assert_eq!(out.len(), 4 + 1 + 6 + ListEntry::MIN_LEN);
    }

    /// An entry cut anywhere, `files` included, is malformed, never read
    /// short.
    #[test]
    fn a_truncated_entry_is_malformed() {
        let mut out = Vec::new();
        page(3, "photos").encode(&mut out);
        for cut in 4 + 1 + 6..out.len() {
            let mut frame = out[..cut].to_vec();
            frame[..4].copy_from_slice(&((cut - 4) as u32).to_be_bytes());
            assert!(Response::decode(&frame).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn more_than_one_file_is_a_directory() {
        let Response::ListPage { entries, .. } = page(2, "d") else {
            unreachable!()
        };
        assert!(entries[0].is_dir());
        let Response::ListPage { entries, .. } = page(1, "f") else {
            unreachable!()
        };
        assert!(!entries[0].is_dir());
    }
}
