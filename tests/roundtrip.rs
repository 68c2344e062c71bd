//! Property tests without a property-test crate: a seeded xorshift PRNG
//! generates many messages and bencode values; each one must decode to
//! itself, use exactly the bytes it was encoded to, and survive being
//! concatenated with others and fed in chunks of any size.

use sta::limits::{
    BLOCK_SIZE, MAX_BENCODE_DEPTH, MAX_ERROR_MESSAGE, MAX_FILTER_LEN, MAX_NAME_LEN, MAX_PEER_FRAME,
    MAX_PIECE_LENGTH, MIN_PIECE_LENGTH,
};
use sta::meta::Info;
use sta::meta::bencode::{self, Value};
use sta::wire::peer::{self, Block, Handshake, Message};
use sta::wire::tracker::{
    ErrorCode, ListEntry, Lookup, PeerEntry, Pieces, Request, Response, encode_peers,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// xorshift64: small, deterministic, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Scramble the seed so that small seeds do not start in a run of
        // zero bits; xorshift needs a non-zero state.
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        for _ in 0..8 {
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    /// True with probability `num/den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    fn u8(&mut self) -> u8 {
        self.next() as u8
    }

    /// A u16 that is often at an edge (0, 1, max).
    fn u16(&mut self) -> u16 {
        match self.below(8) {
            0 => 0,
            1 => u16::MAX,
            _ => self.next() as u16,
        }
    }

    fn u32(&mut self) -> u32 {
        match self.below(8) {
            0 => 0,
            1 => u32::MAX,
            2 => self.below(16) as u32,
            _ => self.next() as u32,
        }
    }

    fn u64(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(1 << 40),
            _ => self.next(),
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        a.iter_mut().for_each(|b| *b = self.u8());
        a
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.range(0, max);
        (0..n).map(|_| self.u8()).collect()
    }

    /// Random bytes that live as long as the test: peer messages borrow.
    fn leaked(&mut self, max: usize) -> &'static [u8] {
        self.bytes(max).leak()
    }

    fn char(&mut self) -> char {
        match self.below(10) {
            0..=3 => (b' ' + self.below(95) as u8) as char,
            4 => self.below(0x80) as u8 as char,
            5 => ['é', 'ß', 'Ω', 'ж', '\u{7ff}'][self.below(5) as usize],
            6 => ['中', '€', '\u{fffd}', '\u{200b}', '\u{ffff}'][self.below(5) as usize],
            7 => ['😀', '𝄞', '\u{10000}', '\u{10ffff}'][self.below(4) as usize],
            _ => loop {
                if let Some(c) = char::from_u32(self.below(0x11_0000) as u32) {
                    break c;
                }
            },
        }
    }

    /// A string of at most `max` bytes of UTF-8, mixing 1- to 4-byte
    /// characters; often empty or exactly `max` bytes long.
    fn string(&mut self, max: usize) -> String {
        let target = match self.below(8) {
            0 => 0,
            1 => max,
            2 => self.range(0, 8.min(max)),
            _ => self.range(0, max),
        };
        let mut s = String::with_capacity(target);
        while s.len() < target {
            let c = self.char();
            s.push(if s.len() + c.len_utf8() <= target {
                c
            } else {
                'x'
            });
        }
        assert!(s.len() == target && s.len() <= max);
        s
    }

    fn addr(&mut self) -> SocketAddr {
        let ip = if self.chance(1, 2) {
            IpAddr::V4(Ipv4Addr::from(self.next() as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                (u128::from(self.next()) << 64) | u128::from(self.next()),
            ))
        };
        SocketAddr::new(ip, self.u16())
    }

    fn pieces(&mut self) -> Pieces {
        if self.chance(1, 3) {
            Pieces::All
        } else {
            let max = if self.chance(1, 10) { 5000 } else { 40 };
            Pieces::Bitfield(self.bytes(max))
        }
    }

    fn block(&mut self) -> Block {
        Block {
            index: self.u32(),
            begin: self.u32(),
            length: self.u32(),
        }
    }
}

fn request(rng: &mut Rng) -> Request {
    match rng.below(8) {
        0 => Request::KeepAlive,
        1 => Request::Hello {
            version: rng.u16(),
            peer_id: rng.array(),
            listen_port: rng.u16(),
        },
        2 => Request::Announce {
            info: if rng.chance(1, 2) {
                info(rng).bencoded
            } else {
                rng.bytes(3000)
            },
            pieces: rng.pieces(),
        },
        3 => Request::Have {
            info_hash: rng.array(),
            piece: rng.u32(),
        },
        4 => Request::List {
            offset: rng.u32(),
            limit: rng.u16(),
            filter: rng.string(MAX_FILTER_LEN),
        },
        5 => Request::GetMeta(if rng.chance(1, 2) {
            Lookup::Hash(rng.array())
        } else {
            Lookup::Name(rng.string(MAX_NAME_LEN))
        }),
        6 => Request::GetPeers {
            info_hash: rng.array(),
            max: rng.u16(),
            piece: rng.chance(1, 2).then(|| rng.u32()),
        },
        _ => Request::Leave {
            info_hash: rng.array(),
        },
    }
}

fn response(rng: &mut Rng) -> Response {
    match rng.below(8) {
        0 => Response::KeepAlive,
        1 => Response::Ack,
        2 => Response::Welcome {
            version: rng.u16(),
            idle_timeout_secs: rng.u32(),
        },
        3 => Response::Announced {
            info_hash: rng.array(),
        },
        4 => Response::ListPage {
            total: rng.u32(),
            entries: (0..rng.range(0, 12))
                .map(|_| ListEntry {
                    info_hash: rng.array(),
                    length: rng.u64(),
                    piece_length: rng.u32(),
                    peers: rng.u32(),
                    seeders: rng.u32(),
                    files: rng.u32(),
                    name: rng.string(MAX_NAME_LEN),
                })
                .collect(),
        },
        5 => Response::Meta {
            info: if rng.chance(1, 2) {
                info(rng).bencoded
            } else {
                rng.bytes(3000)
            },
        },
        6 => Response::Peers {
            info_hash: rng.array(),
            peers: (0..rng.range(0, 20))
                .map(|_| PeerEntry {
                    peer_id: rng.array(),
                    addr: rng.addr(),
                    pieces: rng.pieces(),
                })
                .collect(),
        },
        _ => Response::Error {
            code: match rng.below(3) {
                0 => ErrorCode::INVALID_PARAMETERS,
                1 => ErrorCode(rng.range(1, 11) as u16),
                _ => ErrorCode(rng.u16()),
            },
            message: rng.string(MAX_ERROR_MESSAGE),
        },
    }
}

const KNOWN_PEER_IDS: [u8; 14] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0d, 0x0e, 0x0f, 0x10, 0x11];

fn message(rng: &mut Rng) -> Message<'static> {
    match rng.below(17) {
        0 => Message::KeepAlive,
        1 => Message::Choke,
        2 => Message::Unchoke,
        3 => Message::Interested,
        4 => Message::NotInterested,
        5 => Message::Have(rng.u32()),
        6 => {
            let max = if rng.chance(1, 10) { 32 * 1024 } else { 64 };
            Message::Bitfield(rng.leaked(max))
        }
        7 => Message::Request(rng.block()),
        8 => Message::Piece {
            index: rng.u32(),
            begin: rng.u32(),
            block: match rng.below(10) {
                0 => vec![rng.u8(); MAX_PEER_FRAME as usize - 9].leak(),
                1..=3 => rng.leaked(2 * BLOCK_SIZE as usize),
                _ => rng.leaked(100),
            },
        },
        9 => Message::Cancel(rng.block()),
        10 => Message::Suggest(rng.u32()),
        11 => Message::HaveAll,
        12 => Message::HaveNone,
        13 => Message::Reject(rng.block()),
        14 => Message::AllowedFast(rng.u32()),
        _ => Message::Unknown {
            id: loop {
                let id = rng.u8();
                if !KNOWN_PEER_IDS.contains(&id) {
                    break id;
                }
            },
            payload: rng.leaked(200),
        },
    }
}

/// A valid file name: a random string without separators or control
/// characters, and not `.` or `..`.
fn file_name(rng: &mut Rng) -> String {
    loop {
        let s: String = rng
            .string(MAX_NAME_LEN)
            .chars()
            .map(|c| {
                if c.is_control() || c == '/' || c == '\\' {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if !s.is_empty() && s != "." && s != ".." {
            return s;
        }
    }
}

fn info(rng: &mut Rng) -> Info {
    let shift = rng.range(
        MIN_PIECE_LENGTH.trailing_zeros() as usize,
        MAX_PIECE_LENGTH.trailing_zeros() as usize,
    );
    let piece_length = 1u32 << shift;
    let count = rng.range(1, 40) as u64;
    let length = (count - 1) * u64::from(piece_length) + rng.range(1, piece_length as usize) as u64;
    let pieces: Vec<u8> = (0..count * 20).map(|_| rng.u8()).collect();
    Info::new(&file_name(rng), length, piece_length, pieces).expect("a valid info dict")
}

fn encoded_request(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

fn encoded_response(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

fn encoded_message(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

// ---------------------------------------------------- one message at a time

#[test]
fn requests_round_trip() {
    let mut rng = Rng::new(1);
    let mut seen = [0usize; 8];
    for _ in 0..5000 {
        let r = request(&mut rng);
        let buf = encoded_request(&r);
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, buf.len(), "length prefix of {r:?}");
        assert_eq!(Request::decode(&buf), Ok(Some((r.clone(), buf.len()))));
        // Encoding appends: the frame is the same after other bytes.
        let mut out = vec![0xee; 3];
        r.encode(&mut out);
        assert_eq!(out[3..], buf[..]);
        seen[buf.get(4).map_or(0, |&id| id as usize)] += 1;
    }
    assert!(seen.iter().all(|&n| n > 0), "every request kind: {seen:?}");
}

#[test]
fn responses_round_trip() {
    let mut rng = Rng::new(2);
    for _ in 0..5000 {
        let r = response(&mut rng);
        let buf = encoded_response(&r);
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, buf.len(), "length prefix of {r:?}");
        assert_eq!(Response::decode(&buf), Ok(Some((r.clone(), buf.len()))));
        let mut out = vec![0xee; 5];
        r.encode(&mut out);
        assert_eq!(out[5..], buf[..]);
    }
}

#[test]
fn peer_messages_round_trip() {
    let mut rng = Rng::new(3);
    let mut kinds = std::collections::HashSet::new();
    for _ in 0..5000 {
        let m = message(&mut rng);
        let buf = encoded_message(&m);
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, buf.len());
        assert!(len <= MAX_PEER_FRAME as usize);
        assert_eq!(Message::decode(&buf), Ok(Some((m, buf.len()))));
        let mut out = vec![0xee; 7];
        m.encode(&mut out);
        assert_eq!(out[7..], buf[..]);
        if let Message::Piece {
            index,
            begin,
            block,
        } = m
        {
            // The header served before a mapped block is the same bytes.
            assert_eq!(
                peer::piece_header(index, begin, block.len() as u32)[..],
                buf[..13]
            );
        }
        kinds.insert(std::mem::discriminant(&m));
    }
    assert_eq!(kinds.len(), 16, "every message variant was generated");
}

#[test]
fn handshakes_round_trip() {
    let mut rng = Rng::new(4);
    for _ in 0..1000 {
        let hs = if rng.chance(1, 2) {
            Handshake::new(rng.array(), rng.array())
        } else {
            Handshake {
                reserved: rng.array(),
                info_hash: rng.array(),
                peer_id: rng.array(),
            }
        };
        let mut buf = Vec::new();
        hs.encode(&mut buf);
        assert_eq!(buf.len(), peer::HANDSHAKE_LEN);
        assert_eq!(Handshake::decode(&buf), Ok(Some((hs, peer::HANDSHAKE_LEN))));
        assert_eq!(
            hs.supports_fast(),
            hs.reserved[peer::RESERVED_FAST.0] & peer::RESERVED_FAST.1 != 0
        );
    }
    assert!(Handshake::new([0; 20], [0; 20]).supports_fast());
}

#[test]
fn peers_encoded_from_borrowed_parts_match_the_response() {
    let mut rng = Rng::new(5);
    for _ in 0..200 {
        let info_hash = rng.array();
        let peers: Vec<PeerEntry> = (0..rng.range(0, 30))
            .map(|_| PeerEntry {
                peer_id: rng.array(),
                addr: rng.addr(),
                pieces: rng.pieces(),
            })
            .collect();
        let whole = encoded_response(&Response::Peers {
            info_hash,
            peers: peers.clone(),
        });
        let mut parts = vec![0xee];
        encode_peers(
            &mut parts,
            &info_hash,
            peers.iter().map(|p| {
                let bits = match &p.pieces {
                    Pieces::All => None,
                    Pieces::Bitfield(b) => Some(b.as_slice()),
                };
                (&p.peer_id, p.addr, bits)
            }),
        );
        assert_eq!(parts[1..], whole[..]);
    }
}

#[test]
fn error_messages_are_cut_on_a_char_boundary() {
    let mut rng = Rng::new(6);
    for _ in 0..500 {
        let message = rng.string(3 * MAX_ERROR_MESSAGE);
        let code = ErrorCode(rng.u16());
        let buf = encoded_response(&Response::Error {
            code,
            message: message.clone(),
        });
        let Ok(Some((
            Response::Error {
                code: c,
                message: m,
            },
            used,
        ))) = Response::decode(&buf)
        else {
            panic!("an error response must always decode");
        };
        assert_eq!((c, used), (code, buf.len()));
        assert!(m.len() <= MAX_ERROR_MESSAGE);
        assert!(message.starts_with(&m));
        // Nothing more is cut than the last, partial character.
        assert!(m.len() + 4 > message.len().min(MAX_ERROR_MESSAGE));
    }
}

// ------------------------------------------------------------- streams

/// Chunk sizes: mostly tiny (to stop inside prefixes and fields),
/// sometimes large.
fn chunk_len(rng: &mut Rng) -> usize {
    match rng.below(4) {
        0 => 1,
        1 => rng.range(1, 8),
        2 => rng.range(1, 200),
        _ => rng.range(1, 70_000),
    }
}

/// Feeds `stream` in random chunks into a growing buffer, as a reactor
/// would. After each chunk, `step` is called on what is buffered until it
/// returns `None` ("need more bytes"); `Some(used)` consumes a frame.
fn feed(rng: &mut Rng, stream: &[u8], mut step: impl FnMut(&[u8]) -> Option<usize>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    while fed < stream.len() {
        let end = (fed + chunk_len(rng)).min(stream.len());
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        let mut start = 0;
        while let Some(used) = step(&buf[start..]) {
            assert!(used > 0 && start + used <= buf.len());
            start += used;
        }
        buf.drain(..start);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
}

#[test]
fn request_stream_decodes_in_sequence_and_in_chunks() {
    let mut rng = Rng::new(7);
    let reqs: Vec<Request> = (0..1500).map(|_| request(&mut rng)).collect();
    let mut stream = Vec::new();
    for r in &reqs {
        r.encode(&mut stream);
    }
    let mut at = 0;
    for r in &reqs {
        let (got, used) = Request::decode(&stream[at..]).unwrap().unwrap();
        assert_eq!(&got, r);
        at += used;
    }
    assert_eq!(at, stream.len());
    for _ in 0..5 {
        let mut next = 0;
        feed(&mut rng, &stream, |buf| {
            let (got, used) = Request::decode(buf).expect("valid stream")?;
            assert_eq!(got, reqs[next], "frame {next}");
            next += 1;
            Some(used)
        });
        assert_eq!(next, reqs.len());
    }
}

#[test]
fn response_stream_decodes_in_sequence_and_in_chunks() {
    let mut rng = Rng::new(8);
    let resps: Vec<Response> = (0..1500).map(|_| response(&mut rng)).collect();
    let mut stream = Vec::new();
    for r in &resps {
        r.encode(&mut stream);
    }
    let mut at = 0;
    for r in &resps {
        let (got, used) = Response::decode(&stream[at..]).unwrap().unwrap();
        assert_eq!(&got, r);
        at += used;
    }
    assert_eq!(at, stream.len());
    for _ in 0..5 {
        let mut next = 0;
        feed(&mut rng, &stream, |buf| {
            let (got, used) = Response::decode(buf).expect("valid stream")?;
            assert_eq!(got, resps[next], "frame {next}");
            next += 1;
            Some(used)
        });
        assert_eq!(next, resps.len());
    }
}

#[test]
fn peer_stream_decodes_in_sequence_and_in_chunks() {
    let mut rng = Rng::new(9);
    let msgs: Vec<Message<'static>> = (0..3000).map(|_| message(&mut rng)).collect();
    let mut stream = Vec::new();
    for m in &msgs {
        m.encode(&mut stream);
    }
    let mut at = 0;
    for m in &msgs {
        let (got, used) = Message::decode(&stream[at..]).unwrap().unwrap();
        assert_eq!(&got, m);
        at += used;
    }
    assert_eq!(at, stream.len());
    for _ in 0..5 {
        let mut next = 0;
        feed(&mut rng, &stream, |buf| {
            let (got, used) = Message::decode(buf).expect("valid stream")?;
            assert_eq!(got, msgs[next], "frame {next}");
            next += 1;
            Some(used)
        });
        assert_eq!(next, msgs.len());
    }
}

#[test]
fn peer_session_with_handshake_in_chunks() {
    // A whole session as a peer sees it: a handshake, then messages.
    let mut rng = Rng::new(10);
    for _ in 0..50 {
        let hs = Handshake::new(rng.array(), rng.array());
        let msgs: Vec<Message<'static>> = (0..100).map(|_| message(&mut rng)).collect();
        let mut stream = Vec::new();
        hs.encode(&mut stream);
        for m in &msgs {
            m.encode(&mut stream);
        }
        let mut buf = Vec::new();
        let mut fed = 0;
        let mut got_hs = None;
        let mut next = 0;
        while fed < stream.len() {
            let end = (fed + chunk_len(&mut rng)).min(stream.len());
            buf.extend_from_slice(&stream[fed..end]);
            fed = end;
            let mut start = 0;
            if got_hs.is_none() {
                match Handshake::decode(&buf).unwrap() {
                    Some((h, used)) => {
                        got_hs = Some(h);
                        start = used;
                    }
                    None => continue,
                }
            }
            while let Some((m, used)) = Message::decode(&buf[start..]).unwrap() {
                assert_eq!(m, msgs[next]);
                next += 1;
                start += used;
            }
            buf.drain(..start);
        }
        assert_eq!(got_hs, Some(hs));
        assert_eq!(next, msgs.len());
        assert!(buf.is_empty());
    }
}

// ------------------------------------------------------------- bencode

fn bvalue(rng: &mut Rng, depth: usize) -> Value<'static> {
    let leaf = depth >= 6 || rng.chance(1, 2);
    if leaf {
        if rng.chance(1, 2) {
            Value::Int(match rng.below(6) {
                0 => 0,
                1 => i64::MIN,
                2 => i64::MAX,
                3 => rng.below(100) as i64 - 50,
                _ => rng.next() as i64,
            })
        } else {
            let max = if rng.chance(1, 20) { 2000 } else { 24 };
            Value::Bytes(rng.leaked(max))
        }
    } else if rng.chance(1, 2) {
        Value::List(
            (0..rng.range(0, 6))
                .map(|_| bvalue(rng, depth + 1))
                .collect(),
        )
    } else {
        let mut keys: Vec<&'static [u8]> = (0..rng.range(0, 6))
            .map(|_| {
                // Short keys from a small alphabet collide often, which
                // exercises the dedup and prefix ordering.
                let n = rng.range(0, 4);
                let key: Vec<u8> = (0..n)
                    .map(|_| match rng.below(4) {
                        0 => 0xff,
                        1 => 0,
                        _ => b'a' + rng.below(3) as u8,
                    })
                    .collect();
                &*key.leak()
            })
            .collect();
        keys.sort();
        keys.dedup();
        Value::Dict(
            keys.into_iter()
                .map(|k| (k, bvalue(rng, depth + 1)))
                .collect(),
        )
    }
}

#[test]
fn bencode_values_round_trip() {
    let mut rng = Rng::new(11);
    for _ in 0..5000 {
        let v = bvalue(&mut rng, 0);
        let bytes = v.to_bytes();
        assert_eq!(bencode::decode(&bytes), Ok(v.clone()));
        assert_eq!(bencode::decode(&bytes).unwrap().to_bytes(), bytes);
        // With something after it, decode_prefix stops at the value's end.
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"i1e");
        assert_eq!(bencode::decode_prefix(&longer), Ok((v, bytes.len())));
        // Any strict prefix is incomplete.
        let cut = rng.range(0, bytes.len() - 1);
        assert!(bencode::decode(&bytes[..cut]).is_err());
    }
}

#[test]
fn bencode_round_trips_at_the_depth_limit() {
    let mut rng = Rng::new(12);
    for _ in 0..200 {
        let mut v = bvalue(&mut rng, 6);
        for _ in 0..MAX_BENCODE_DEPTH {
            v = if rng.chance(1, 2) {
                Value::List(vec![v])
            } else {
                Value::Dict(vec![(b"k", v)])
            };
        }
        let bytes = v.to_bytes();
        assert_eq!(bencode::decode(&bytes), Ok(v));
    }
}

#[test]
fn info_dicts_round_trip() {
    let mut rng = Rng::new(13);
    for _ in 0..300 {
        let info = info(&mut rng);
        assert_eq!(Info::from_bencoded(&info.bencoded), Ok(info.clone()));
        let value = bencode::decode(&info.bencoded).unwrap();
        assert_eq!(Info::from_value(&value, value.to_bytes()), Ok(info.clone()));
        let total: u64 = (0..info.num_pieces())
            .map(|i| u64::from(info.piece_size(i)))
            .sum();
        assert_eq!(total, info.length);
        assert_eq!(info.piece_size(info.num_pieces()), 0);
        // As an announce, it comes back byte for byte.
        let r = Request::Announce {
            info: info.bencoded.clone(),
            pieces: Pieces::All,
        };
        let buf = encoded_request(&r);
        assert_eq!(Request::decode(&buf), Ok(Some((r, buf.len()))));
    }
}
