//! The BitTorrent UDP tracker protocol (BEP 15), sans-IO: datagrams in,
//! typed requests out, and replies encoded into a caller's buffer. Nothing
//! here allocates more than the datagram it was given can hold.

use crate::wire::tracker::{InfoHash, PeerId};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The magic constant a connect request carries as its connection id.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Info hashes one scrape may ask about (what fits a 1500-byte MTU reply).
pub const MAX_SCRAPE_HASHES: usize = 74;

pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
pub const ACTION_ERROR: u32 = 3;

/// BEP 15 announce events (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    Completed,
    Started,
    Stopped,
}

impl Event {
    fn from_u32(n: u32) -> Option<Event> {
        Some(match n {
            0 => Event::None,
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => return None,
        })
    }

    fn to_u32(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    /// IPv4 address the client asks to be announced at (0 = the source).
    pub ip: u32,
    pub key: u32,
    /// Peers wanted; -1 (or any negative) = the tracker's default.
    pub num_want: i32,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction_id: u32,
    },
    Announce(Announce),
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        info_hashes: Vec<InfoHash>,
    },
}

/// Why a datagram is not a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Shorter than the action it names needs (or than 16 bytes).
    TooShort,
    /// A connect request without the protocol magic.
    BadProtocolId,
    UnknownAction(u32),
    BadEvent(u32),
    /// A scrape of no info hash, or of more than [`MAX_SCRAPE_HASHES`].
    BadScrapeCount,
}

/// A datagram that is not a request. With a transaction id, an error reply
/// may be sent; without one (fewer than 16 bytes, or a connect without the
/// magic, which may not be BEP 15 at all) it should be dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub transaction_id: Option<u32>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::TooShort => f.write_str("request too short"),
            ErrorKind::BadProtocolId => f.write_str("bad protocol id"),
            ErrorKind::UnknownAction(a) => write!(f, "unknown action {a}"),
            ErrorKind::BadEvent(e) => write!(f, "unknown event {e}"),
            ErrorKind::BadScrapeCount => write!(
                f,
                "a scrape asks about 1 to {MAX_SCRAPE_HASHES} info hashes"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(b, at)) << 32) | u64::from(u32_at(b, at + 4))
}
fn hash_at(b: &[u8], at: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    h.copy_from_slice(&b[at..at + 20]);
    h
}

/// Length of an announce request before any BEP 41 options.
pub const ANNOUNCE_LEN: usize = 98;

impl Request {
    /// Parses one datagram. Bytes past a connect or announce request (BEP 41
    /// options) are ignored; a scrape's hashes are the whole 20-byte groups
    /// after its header.
    pub fn parse(b: &[u8]) -> Result<Request, ParseError> {
        if b.len() < 16 {
            return Err(ParseError {
                kind: ErrorKind::TooShort,
                transaction_id: None,
            });
        }
        let connection_id = u64_at(b, 0);
        let action = u32_at(b, 8);
        let transaction_id = u32_at(b, 12);
        let err = |kind| ParseError {
            kind,
            transaction_id: Some(transaction_id),
        };
        match action {
            ACTION_CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(ParseError {
                        kind: ErrorKind::BadProtocolId,
                        transaction_id: None,
                    });
                }
                Ok(Request::Connect { transaction_id })
            }
            ACTION_ANNOUNCE => {
                if b.len() < ANNOUNCE_LEN {
                    return Err(err(ErrorKind::TooShort));
                }
                let event = u32_at(b, 80);
                Ok(Request::Announce(Announce {
                    connection_id,
                    transaction_id,
                    info_hash: hash_at(b, 16),
                    peer_id: hash_at(b, 36),
                    downloaded: u64_at(b, 56),
                    left: u64_at(b, 64),
                    uploaded: u64_at(b, 72),
                    event: Event::from_u32(event).ok_or(err(ErrorKind::BadEvent(event)))?,
                    ip: u32_at(b, 84),
                    key: u32_at(b, 88),
                    num_want: u32_at(b, 92) as i32,
                    port: u16_at(b, 96),
                }))
            }
            ACTION_SCRAPE => {
                let n = (b.len() - 16) / 20;
                if n == 0 || n > MAX_SCRAPE_HASHES {
                    return Err(err(ErrorKind::BadScrapeCount));
                }
                let info_hashes = (0..n).map(|i| hash_at(b, 16 + 20 * i)).collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            other => Err(err(ErrorKind::UnknownAction(other))),
        }
    }

    /// Appends the datagram of this request to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce(a) => {
                out.extend_from_slice(&a.connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&a.transaction_id.to_be_bytes());
                out.extend_from_slice(&a.info_hash);
                out.extend_from_slice(&a.peer_id);
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&a.event.to_u32().to_be_bytes());
                out.extend_from_slice(&a.ip.to_be_bytes());
                out.extend_from_slice(&a.key.to_be_bytes());
                out.extend_from_slice(&a.num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes {
                    out.extend_from_slice(h);
                }
            }
        }
    }
}

/// Seeders, completed downloads and leechers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    pub seeders: u32,
    pub completed: u32,
    pub leechers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    /// Peers are 6-byte (IPv4) or 18-byte (IPv6) entries: all of one
    /// family, the family of the socket the request came in on.
    Announce {
        transaction_id: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        peers: Vec<SocketAddr>,
    },
    Scrape {
        transaction_id: u32,
        stats: Vec<ScrapeStats>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

/// Appends a compact peer (BEP 23 / BEP 7): address bytes, then port.
pub fn push_compact(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Why a datagram is not a reply (for clients and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    TooShort,
    UnknownAction(u32),
    /// Peer bytes that are a whole number of neither 6- nor 18-byte entries
    /// of the family asked for.
    BadPeers,
    BadScrape,
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                encode_announce_header(out, *transaction_id, *interval, *leechers, *seeders);
                for p in peers {
                    push_compact(out, p);
                }
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    out.extend_from_slice(&s.seeders.to_be_bytes());
                    out.extend_from_slice(&s.completed.to_be_bytes());
                    out.extend_from_slice(&s.leechers.to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
    }

    /// Parses a reply; `ipv6` says which peer size an announce reply uses.
    pub fn parse(b: &[u8], ipv6: bool) -> Result<Response, ResponseError> {
        if b.len() < 8 {
            return Err(ResponseError::TooShort);
        }
        let transaction_id = u32_at(b, 4);
        match u32_at(b, 0) {
            ACTION_CONNECT if b.len() >= 16 => Ok(Response::Connect {
                transaction_id,
                connection_id: u64_at(b, 8),
            }),
            ACTION_ANNOUNCE if b.len() >= 20 => {
                let size = if ipv6 { 18 } else { 6 };
                let rest = &b[20..];
                if !rest.len().is_multiple_of(size) {
                    return Err(ResponseError::BadPeers);
                }
                let peers = rest.chunks_exact(size).map(parse_compact).collect();
                Ok(Response::Announce {
                    transaction_id,
                    interval: u32_at(b, 8),
                    leechers: u32_at(b, 12),
                    seeders: u32_at(b, 16),
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let rest = &b[8..];
                if !rest.len().is_multiple_of(12) {
                    return Err(ResponseError::BadScrape);
                }
                let stats = rest
                    .chunks_exact(12)
                    .map(|c| ScrapeStats {
                        seeders: u32_at(c, 0),
                        completed: u32_at(c, 4),
                        leechers: u32_at(c, 8),
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(&b[8..]).into_owned(),
            }),
            ACTION_CONNECT | ACTION_ANNOUNCE => Err(ResponseError::TooShort),
            other => Err(ResponseError::UnknownAction(other)),
        }
    }
}

/// The 20 bytes before an announce reply's peers; the tracker appends the
/// compact peers itself, without collecting them first.
pub fn encode_announce_header(
    out: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) {
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&leechers.to_be_bytes());
    out.extend_from_slice(&seeders.to_be_bytes());
}

/// Reads one 6- or 18-byte compact peer.
pub fn parse_compact(c: &[u8]) -> SocketAddr {
    if c.len() == 6 {
        let ip = [c[0], c[1], c[2], c[3]];
        SocketAddr::from((ip, u16_at(c, 4)))
    } else {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&c[..16]);
        SocketAddr::from((ip, u16_at(c, 16)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce() -> Announce {
        Announce {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 7,
            info_hash: [0xab; 20],
            peer_id: *b"-TR3000-000000000001",
            downloaded: 1,
            left: u64::MAX,
            uploaded: 3,
            event: Event::Started,
            ip: 0,
            key: 99,
            num_want: -1,
            port: 6881,
        }
    }

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Connect { transaction_id: 5 },
            Request::Announce(announce()),
            Request::Scrape {
                connection_id: 9,
                transaction_id: 1,
                info_hashes: vec![[1; 20], [2; 20]],
            },
        ];
        for req in reqs {
            let mut out = Vec::new();
            req.encode(&mut out);
            assert_eq!(Request::parse(&out), Ok(req));
        }
    }

    #[test]
    fn connect_bytes_match_bep15() {
        let mut out = Vec::new();
        Request::Connect {
            transaction_id: 0xdead_beef,
        }
        .encode(&mut out);
        assert_eq!(
            out,
            [
                0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef
            ]
        );
    }

    #[test]
    fn malformed_requests_are_typed() {
        assert_eq!(Request::parse(&[0; 15]).unwrap_err().transaction_id, None);
        // Connect without the magic: no reply.
        let bad = Request::parse(&[0; 16]).unwrap_err();
        assert_eq!(bad.kind, ErrorKind::BadProtocolId);
        assert_eq!(bad.transaction_id, None);
        let mut a = Vec::new();
        Request::Announce(announce()).encode(&mut a);
        let short = Request::parse(&a[..97]).unwrap_err();
        assert_eq!(short.kind, ErrorKind::TooShort);
        assert_eq!(short.transaction_id, Some(7));
        a[83] = 9;
        assert_eq!(Request::parse(&a).unwrap_err().kind, ErrorKind::BadEvent(9));
        let mut s = vec![0u8; 16];
        s[11] = 2;
        assert_eq!(
            Request::parse(&s).unwrap_err().kind,
            ErrorKind::BadScrapeCount
        );
        s.resize(16 + 20 * 75, 0);
        assert_eq!(
            Request::parse(&s).unwrap_err().kind,
            ErrorKind::BadScrapeCount
        );
        s[11] = 77;
        assert_eq!(
            Request::parse(&s).unwrap_err().kind,
            ErrorKind::UnknownAction(77)
        );
        // Extra bytes after an announce (BEP 41 options) are ignored.
        let mut long = Vec::new();
        Request::Announce(announce()).encode(&mut long);
        long.extend_from_slice(&[2, 3, b'/', b'a', b'b']);
        assert!(matches!(Request::parse(&long), Ok(Request::Announce(_))));
    }

    #[test]
    fn responses_round_trip() {
        let v4 = vec![
            SocketAddr::from(([10, 0, 0, 1], 6881)),
            SocketAddr::from(([192, 168, 1, 2], 1)),
        ];
        let v6 = vec![SocketAddr::from(([1u16, 2, 3, 4, 5, 6, 7, 8], 51413))];
        let cases = [
            (
                Response::Connect {
                    transaction_id: 1,
                    connection_id: 2,
                },
                false,
            ),
            (
                Response::Announce {
                    transaction_id: 3,
                    interval: 60,
                    leechers: 1,
                    seeders: 2,
                    peers: v4,
                },
                false,
            ),
            (
                Response::Announce {
                    transaction_id: 3,
                    interval: 60,
                    leechers: 0,
                    seeders: 1,
                    peers: v6,
                },
                true,
            ),
            (
                Response::Scrape {
                    transaction_id: 4,
                    stats: vec![ScrapeStats {
                        seeders: 1,
                        completed: 2,
                        leechers: 3,
                    }],
                },
                false,
            ),
            (
                Response::Error {
                    transaction_id: 5,
                    message: "bad connection id".into(),
                },
                false,
            ),
        ];
        for (resp, ipv6) in cases {
            let mut out = Vec::new();
            resp.encode(&mut out);
            assert_eq!(Response::parse(&out, ipv6), Ok(resp));
        }
        assert_eq!(
            Response::parse(&[0, 0, 0, 1, 0, 0, 0, 0], false),
            Err(ResponseError::TooShort)
        );
    }

    #[test]
    fn any_input_parses_or_fails_without_panic() {
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..20_000 {
            let len = rng.below(200);
            let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if len >= 12 && rng.below(2) == 0 {
                b[8..12].copy_from_slice(&(rng.below(4) as u32).to_be_bytes());
            }
            if let Ok(req) = Request::parse(&b) {
                let mut out = Vec::new();
                req.encode(&mut out);
                assert_eq!(Request::parse(&out), Ok(req));
            }
            let _ = Response::parse(&b, rng.below(2) == 0);
        }
    }
}
