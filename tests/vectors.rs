//! Test vectors made by a client nobody here wrote: libtorrent-rasterbar
//! 2.0.8. `tests/data/info_hashes.json` and the `.torrent` files give the
//! info dicts and info hashes libtorrent computed for five files whose
//! content we regenerate; `libtorrent-2.0.8-seeder-session.txt` holds the
//! bytes of one real peer-wire session with a libtorrent seeder.

use sha1::{Digest, Sha1};
use sta::meta::Info;
use sta::meta::bencode::{self, Value};
use sta::wire::peer::{Block, Handshake, Message};
use std::path::PathBuf;

fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_data(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).unwrap_or_else(|e| panic!("reading tests/data/{name}: {e}"))
}

fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

fn hex_decode(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("hex is ASCII");
            u8::from_str_radix(text, 16).unwrap_or_else(|_| panic!("bad hex digits {text:?}"))
        })
        .collect()
}

/// One entry of `info_hashes.json`.
#[derive(Debug)]
struct Vector {
    name: String,
    length: u64,
    piece_length: u32,
    num_pieces: u64,
    info_hash: Vec<u8>,
    info_hash_hex: String,
    info_dict: Vec<u8>,
    first_piece_sha1: Vec<u8>,
    torrent_file: String,
}

/// The text after `"key":` in `object`, with surrounding blanks removed.
fn json_raw<'a>(object: &'a str, key: &str) -> &'a str {
    let tag = format!("\"{key}\"");
    let at = object
        .find(&tag)
        .unwrap_or_else(|| panic!("key {key:?} missing in {object}"));
    let rest = object[at + tag.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .unwrap_or_else(|| panic!("no ':' after {key:?}"))
        .trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        // Our strings hold no escapes: a name, hex, a file name, prose.
        let end = s.find('"').expect("unterminated string");
        assert!(!s[..end].contains('\\'), "escapes are not supported");
        &s[..end]
    } else {
        let end = rest
            .find(|c: char| c == ',' || c == '}' || c.is_whitespace())
            .unwrap_or(rest.len());
        &rest[..end]
    }
}

fn json_u64(object: &str, key: &str) -> u64 {
    let raw = json_raw(object, key);
    raw.parse()
        .unwrap_or_else(|_| panic!("{key}: {raw:?} is not an integer"))
}

/// Offset of the `}` closing the object `text` starts with; braces inside
/// strings (the payload recipe holds `{name}:{i}`) do not count.
fn object_end(text: &str) -> usize {
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '}' if !in_string => return i,
            _ => {}
        }
    }
    panic!("unterminated object");
}

/// A tiny reader for the fixed shape of `info_hashes.json`: an array of
/// flat objects whose values are strings or integers.
fn load_vectors() -> Vec<Vector> {
    let text = String::from_utf8(read_data("info_hashes.json")).expect("json is UTF-8");
    let body = text.trim();
    assert!(body.starts_with('[') && body.ends_with(']'), "not an array");
    let mut vectors = Vec::new();
    let mut rest = &body[1..body.len() - 1];
    while let Some(open) = rest.find('{') {
        let close = open + object_end(&rest[open..]);
        let object = &rest[open..=close];
        vectors.push(Vector {
            name: json_raw(object, "name").to_owned(),
            length: json_u64(object, "length"),
            piece_length: json_u64(object, "piece_length") as u32,
            num_pieces: json_u64(object, "num_pieces"),
            info_hash: hex_decode(json_raw(object, "info_hash_hex")),
            info_hash_hex: json_raw(object, "info_hash_hex").to_owned(),
            info_dict: hex_decode(json_raw(object, "info_dict_bencoded_hex")),
            first_piece_sha1: hex_decode(json_raw(object, "first_piece_sha1_hex")),
            torrent_file: json_raw(object, "torrent_file").to_owned(),
        });
        rest = &rest[close + 1..];
    }
    vectors
}

/// The content of a vector file: sha1("{name}:{i}") for i = 0, 1, ...,
/// concatenated and cut to `length` bytes.
fn payload(name: &str, length: u64) -> Vec<u8> {
    let length = length as usize;
    let mut out = Vec::with_capacity(length + 20);
    let mut i = 0u64;
    while out.len() < length {
        out.extend_from_slice(&sha1(format!("{name}:{i}").as_bytes()));
        i += 1;
    }
    out.truncate(length);
    out
}

fn piece_hashes(data: &[u8], piece_length: u32) -> Vec<u8> {
    data.chunks(piece_length as usize).flat_map(sha1).collect()
}

#[test]
fn json_holds_the_five_vectors() {
    let vectors = load_vectors();
    let names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "empty-ish.bin",
            "one-piece.bin",
            "exact.bin",
            "ragged.bin",
            "hello world.txt"
        ]
    );
    for v in &vectors {
        assert_eq!(v.info_hash.len(), 20, "{}", v.name);
        assert_eq!(v.first_piece_sha1.len(), 20, "{}", v.name);
        assert!(!v.info_dict.is_empty(), "{}", v.name);
    }
}

#[test]
fn info_dicts_and_hashes_match_libtorrent() {
    for v in load_vectors() {
        let data = payload(&v.name, v.length);
        assert_eq!(data.len() as u64, v.length);
        let pieces = piece_hashes(&data, v.piece_length);
        assert_eq!(pieces.len() as u64, v.num_pieces * 20, "{}", v.name);
        assert_eq!(pieces[..20], v.first_piece_sha1[..], "{}", v.name);

        let info = Info::new(&v.name, v.length, v.piece_length, pieces.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(info.bencoded, v.info_dict, "{}: bencoded info dict", v.name);
        assert_eq!(info.info_hash[..], v.info_hash[..], "{}: info hash", v.name);
        assert_eq!(sha1(&v.info_dict)[..], v.info_hash[..], "{}", v.name);
        assert_eq!(info.name, v.name);
        assert_eq!(info.length, v.length);
        assert_eq!(info.piece_length, v.piece_length);
        assert_eq!(u64::from(info.num_pieces()), v.num_pieces);
        assert_eq!(info.piece_hash(0), Some(&v.first_piece_sha1[..]));
        assert_eq!(info.piece_hash(info.num_pieces()), None);

        // Every piece's size, the last one short when the length is ragged.
        let mut total = 0u64;
        for (i, chunk) in data.chunks(v.piece_length as usize).enumerate() {
            let i = i as u32;
            assert_eq!(
                info.piece_size(i) as usize,
                chunk.len(),
                "{} piece {i}",
                v.name
            );
            assert_eq!(info.piece_hash(i), Some(&sha1(chunk)[..]));
            total += u64::from(info.piece_size(i));
        }
        assert_eq!(total, v.length);

        // Parsing libtorrent's bytes gives the same metadata.
        let parsed = Info::from_bencoded(&v.info_dict).expect("libtorrent's info dict");
        assert_eq!(parsed, info);
        assert_eq!(sta::meta::info::to_hex(&info.info_hash), v.info_hash_hex);
    }
}

#[test]
fn torrent_files_decode_reencode_and_hash_alike() {
    for v in load_vectors() {
        let bytes = read_data(&v.torrent_file);
        let value = bencode::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", v.torrent_file));
        assert_eq!(value.to_bytes(), bytes, "{}: re-encoding", v.torrent_file);
        let (prefix_value, used) = bencode::decode_prefix(&bytes).expect("prefix decode");
        assert_eq!(used, bytes.len());
        assert_eq!(prefix_value, value);

        let info_value = value.get(b"info").expect("a .torrent has an info dict");
        let info_bytes = info_value.to_bytes();
        assert_eq!(
            info_bytes, v.info_dict,
            "{}: info dict bytes",
            v.torrent_file
        );
        let info = Info::from_value(info_value, info_bytes).expect("valid info dict");
        assert_eq!(info.info_hash[..], v.info_hash[..], "{}", v.torrent_file);
        assert_eq!(info.name, v.name);
        assert_eq!(info.length, v.length);
        assert_eq!(
            sta::meta::info::from_hex(&v.info_hash_hex),
            Some(info.info_hash)
        );
    }
}

/// One frame of the session transcript: who sent it, what the comment
/// says it is, and its bytes.
#[derive(Debug)]
struct Frame {
    sent: bool,
    label: String,
    bytes: Vec<u8>,
}

fn load_session() -> Vec<Frame> {
    let text = String::from_utf8(read_data("libtorrent-2.0.8-seeder-session.txt"))
        .expect("transcript is UTF-8");
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim();
            let (sent, label) = if let Some(l) = comment.strip_prefix("sent ") {
                (true, l)
            } else if let Some(l) = comment.strip_prefix("recv ") {
                (false, l)
            } else {
                panic!("comment neither sent nor recv: {comment}");
            };
            frames.push(Frame {
                sent,
                label: label.to_owned(),
                bytes: Vec::new(),
            });
        } else {
            let frame = frames.last_mut().expect("hex before any comment");
            frame.bytes.extend(hex_decode(line));
        }
    }
    assert!(frames.iter().all(|f| !f.bytes.is_empty()));
    frames
}

fn one_piece() -> Vector {
    load_vectors()
        .into_iter()
        .find(|v| v.name == "one-piece.bin")
        .expect("one-piece.bin vector")
}

#[test]
fn libtorrent_session_decodes_and_reencodes() {
    let vector = one_piece();
    let content = payload(&vector.name, vector.length);
    let frames = load_session();
    assert_eq!(frames.len(), 10);

    // The two handshakes.
    for frame in &frames[..2] {
        assert!(frame.label.starts_with("handshake"), "{}", frame.label);
        assert_eq!(frame.bytes.len(), 68);
        let (hs, used) = Handshake::decode(&frame.bytes)
            .expect("valid handshake")
            .expect("complete handshake");
        assert_eq!(used, 68);
        assert_eq!(hs.info_hash[..], vector.info_hash[..]);
        assert!(hs.supports_fast(), "{}: Fast bit", frame.label);
        // libtorrent also sets the BEP 10 (LTEP) bit in byte 5.
        assert_eq!(hs.reserved[5] & 0x10, 0x10);
        let mut out = Vec::new();
        hs.encode(&mut out);
        assert_eq!(out, frame.bytes);
        // Every prefix is "need more bytes", never an error.
        for k in 0..68 {
            assert_eq!(Handshake::decode(&frame.bytes[..k]), Ok(None), "prefix {k}");
        }
    }
    assert!(frames[0].sent && !frames[1].sent);

    let mut seen_piece = false;
    for frame in &frames[2..] {
        let (msg, used) = Message::decode(&frame.bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", frame.label))
            .unwrap_or_else(|| panic!("{}: incomplete", frame.label));
        assert_eq!(used, frame.bytes.len(), "{}: whole frame used", frame.label);
        let mut out = Vec::new();
        msg.encode(&mut out);
        assert_eq!(out, frame.bytes, "{}: re-encoding", frame.label);

        let label = frame.label.as_str();
        match msg {
            Message::Interested => assert_eq!(label, "interested"),
            Message::Unknown { id, payload } => {
                assert!(label.starts_with("extended"), "{label}");
                assert_eq!(id, 20);
                // BEP 10: extended id 0 is the handshake, a bencoded dict.
                assert_eq!(payload[0], 0);
                let dict = bencode::decode(&payload[1..]).expect("LTEP handshake dict");
                assert_eq!(dict.to_bytes(), payload[1..]);
                assert_eq!(
                    dict.get(b"v").and_then(Value::as_bytes),
                    Some(&b"stabench-lt/2.0.8.0"[..])
                );
                assert_eq!(dict.get(b"metadata_size").and_then(Value::as_int), Some(91));
            }
            Message::HaveAll => assert_eq!(label, "have all"),
            Message::Unchoke => assert_eq!(label, "unchoke"),
            Message::AllowedFast(index) => {
                assert_eq!(label, "allowed fast");
                assert_eq!(index, 0);
            }
            Message::Request(block) => {
                assert!(label.starts_with("request"), "{label}");
                assert_eq!(
                    block,
                    Block {
                        index: 0,
                        begin: 0,
                        length: 1000
                    }
                );
            }
            Message::Piece {
                index,
                begin,
                block,
            } => {
                assert_eq!(label, "piece");
                assert_eq!((index, begin), (0, 0));
                assert_eq!(block.len(), 1000);
                assert_eq!(sha1(block)[..], vector.first_piece_sha1[..]);
                assert_eq!(block, &content[..]);
                seen_piece = true;
            }
            other => panic!("{label}: unexpected {other:?}"),
        }
    }
    assert!(seen_piece);
}

#[test]
fn libtorrent_stream_decodes_in_sequence() {
    // What the client received, as one byte stream: the seeder's handshake
    // then its messages, back to back, fed in small chunks.
    let frames = load_session();
    let recv: Vec<&Frame> = frames.iter().filter(|f| !f.sent).collect();
    let stream: Vec<u8> = recv.iter().flat_map(|f| f.bytes.iter().copied()).collect();

    for chunk in [1usize, 3, 7, 64, 1000, stream.len()] {
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut handshake = None;
        let mut labels = Vec::new();
        while fed < stream.len() || !buf.is_empty() {
            let end = (fed + chunk).min(stream.len());
            buf.extend_from_slice(&stream[fed..end]);
            fed = end;
            loop {
                if handshake.is_none() {
                    match Handshake::decode(&buf).expect("handshake") {
                        Some((hs, used)) => {
                            handshake = Some(hs);
                            buf.drain(..used);
                        }
                        None => break,
                    }
                    continue;
                }
                let Some((msg, used)) = Message::decode(&buf).expect("message") else {
                    break;
                };
                let mut out = Vec::new();
                msg.encode(&mut out);
                assert_eq!(out, buf[..used]);
                labels.push(format!("{msg:?}").chars().take(12).collect::<String>());
                buf.drain(..used);
            }
            if fed == stream.len() {
                assert!(buf.is_empty(), "leftover bytes with chunk {chunk}");
                break;
            }
        }
        assert!(handshake.is_some());
        assert_eq!(labels.len(), recv.len() - 1, "chunk {chunk}: {labels:?}");
    }
}
