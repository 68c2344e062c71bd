//! Malformed, truncated, oversized and hostile input: each case expects
//! its own specific error, never a panic, never a huge allocation.

use sta::limits::{
    MAX_BENCODE_DEPTH, MAX_ERROR_MESSAGE, MAX_FILES, MAX_FILTER_LEN, MAX_NAME_LEN, MAX_PATH_DEPTH,
    MAX_PATH_LEN, MAX_PEER_FRAME, MAX_PIECE_LENGTH, MAX_PIECES, MAX_TRACKER_FRAME,
    MIN_PIECE_LENGTH,
};
use sta::meta::bencode::{self, BencodeError, Value};
use sta::meta::info::{FileError, NameError};
use sta::meta::paths::PathError;
use sta::meta::{FileEntry, Info, InfoError};
use sta::wire::FrameTooLarge;
use sta::wire::peer::{self, Block, Handshake, Message, PeerError};
use sta::wire::tracker::{
    DecodeError, ErrorCode, ListEntry, Lookup, PeerEntry, Pieces, Request, Response, req, resp,
};

// ---------------------------------------------------------------- helpers

/// A frame: length prefix, then `id` and `payload`.
fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(id);
    out.extend_from_slice(payload);
    out
}

fn u16be(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

fn request_bytes(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

fn response_bytes(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

fn message_bytes(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

fn request_err(buf: &[u8]) -> DecodeError {
    match Request::decode(buf) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

fn response_err(buf: &[u8]) -> DecodeError {
    match Response::decode(buf) {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

/// Asserts a recoverable error with `code` that skips exactly `buf.len()`.
fn assert_frame_error(e: &DecodeError, code: ErrorCode, buf: &[u8]) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.used, Some(buf.len()), "{e}");
    assert!(!e.is_fatal());
    assert!(!e.message.is_empty());
    assert_eq!(
        e.to_response(),
        Response::Error {
            code,
            message: e.message.clone()
        }
    );
}

fn invalid_request(buf: &[u8]) {
    assert_frame_error(&request_err(buf), ErrorCode::INVALID_PARAMETERS, buf);
}

fn invalid_response(buf: &[u8]) {
    assert_frame_error(&response_err(buf), ErrorCode::INVALID_PARAMETERS, buf);
}

fn sample_requests() -> Vec<Request> {
    vec![
        Request::KeepAlive,
        Request::Hello {
            version: 1,
            peer_id: [7; 20],
            listen_port: 6881,
        },
        Request::Announce {
            info: b"d4:infoi1ee".to_vec(),
            pieces: Pieces::Bitfield(vec![0xf0, 0x80]),
        },
        Request::Announce {
            info: vec![1, 2, 3],
            pieces: Pieces::All,
        },
        Request::Have {
            info_hash: [1; 20],
            piece: 9,
        },
        Request::List {
            offset: 5,
            limit: 100,
            filter: "vidéo".into(),
        },
        Request::GetMeta(Lookup::Hash([2; 20])),
        Request::GetMeta(Lookup::Name("ubuntu.iso".into())),
        Request::GetPeers {
            info_hash: [3; 20],
            max: 50,
            piece: Some(4),
        },
        Request::GetPeers {
            info_hash: [3; 20],
            max: 50,
            piece: None,
        },
        Request::Leave { info_hash: [4; 20] },
    ]
}

fn sample_responses() -> Vec<Response> {
    vec![
        Response::KeepAlive,
        Response::Ack,
        Response::Welcome {
            version: 1,
            idle_timeout_secs: 120,
        },
        Response::Announced { info_hash: [5; 20] },
        Response::ListPage {
            total: 2,
            entries: vec![ListEntry {
                info_hash: [6; 20],
                length: 1 << 40,
                piece_length: 1 << 19,
                peers: 3,
                seeders: 1,
                files: 1,
                name: "a.bin".into(),
            }],
        },
        Response::Meta {
            info: b"d6:lengthi1ee".to_vec(),
        },
        Response::Peers {
            info_hash: [8; 20],
            peers: vec![
                PeerEntry {
                    peer_id: [9; 20],
                    addr: "10.0.0.1:6881".parse().unwrap(),
                    pieces: Pieces::All,
                },
                PeerEntry {
                    peer_id: [10; 20],
                    addr: "[2001:db8::1]:51413".parse().unwrap(),
                    pieces: Pieces::Bitfield(vec![0xaa]),
                },
            ],
        },
        Response::Error {
            code: ErrorCode::FILE_NOT_FOUND,
            message: "no such file".into(),
        },
        Response::Dial {
            info_hash: [8; 20],
            addr: "[2001:db8::1]:51413".parse().unwrap(),
        },
    ]
}

fn sample_messages() -> Vec<Message<'static>> {
    let b = Block {
        index: 1,
        begin: 16384,
        length: 16384,
    };
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(3),
        Message::Bitfield(&[0xff, 0x80]),
        Message::Request(b),
        Message::Piece {
            index: 1,
            begin: 0,
            block: b"block bytes",
        },
        Message::Cancel(b),
        Message::Suggest(2),
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(b),
        Message::AllowedFast(7),
        Message::Unknown {
            id: 20,
            payload: b"\0de",
        },
    ]
}

// ---------------------------------------------------------- truncation

#[test]
fn every_prefix_of_a_tracker_frame_needs_more_bytes() {
    for r in sample_requests() {
        let buf = request_bytes(&r);
        for k in 0..buf.len() {
            assert_eq!(Request::decode(&buf[..k]), Ok(None), "{r:?} prefix {k}");
        }
        assert_eq!(Request::decode(&buf), Ok(Some((r, buf.len()))));
    }
    for r in sample_responses() {
        let buf = response_bytes(&r);
        for k in 0..buf.len() {
            assert_eq!(Response::decode(&buf[..k]), Ok(None), "{r:?} prefix {k}");
        }
        assert_eq!(Response::decode(&buf), Ok(Some((r, buf.len()))));
    }
}

#[test]
fn every_prefix_of_a_peer_frame_needs_more_bytes() {
    for m in sample_messages() {
        let buf = message_bytes(&m);
        for k in 0..buf.len() {
            assert_eq!(Message::decode(&buf[..k]), Ok(None), "{m:?} prefix {k}");
        }
        assert_eq!(Message::decode(&buf), Ok(Some((m, buf.len()))));
    }
    let mut hs = Vec::new();
    Handshake::new([1; 20], [2; 20]).encode(&mut hs);
    for k in 0..hs.len() {
        assert_eq!(
            Handshake::decode(&hs[..k]),
            Ok(None),
            "handshake prefix {k}"
        );
    }
}

// ------------------------------------------------------ oversized frames

#[test]
fn tracker_frame_too_large_is_fatal() {
    for len in [MAX_TRACKER_FRAME + 1, u32::MAX] {
        // The length prefix alone is enough to refuse: no waiting for (or
        // allocating) the claimed bytes.
        let mut buf = len.to_be_bytes().to_vec();
        for extra in [&[][..], &[req::HELLO][..], &[0u8; 100][..]] {
            buf.truncate(4);
            buf.extend_from_slice(extra);
            for e in [request_err(&buf), response_err(&buf)] {
                assert_eq!(e.code, ErrorCode::FRAME_TOO_LARGE, "{e}");
                assert_eq!(e.used, None);
                assert!(e.is_fatal());
                assert!(e.message.contains(&len.to_string()), "{}", e.message);
            }
        }
    }
    // Exactly the limit is allowed: it only needs more bytes.
    let at_limit = MAX_TRACKER_FRAME.to_be_bytes();
    assert_eq!(Request::decode(&at_limit), Ok(None));
    assert_eq!(Response::decode(&at_limit), Ok(None));
}

#[test]
fn peer_frame_too_large_is_fatal() {
    for len in [MAX_PEER_FRAME + 1, u32::MAX] {
        let mut buf = len.to_be_bytes().to_vec();
        buf.push(peer::id::PIECE);
        assert_eq!(
            Message::decode(&buf),
            Err(PeerError::FrameTooLarge(FrameTooLarge {
                len,
                max: MAX_PEER_FRAME
            }))
        );
        assert_eq!(
            Message::decode(&buf[..4]),
            Err(PeerError::FrameTooLarge(FrameTooLarge {
                len,
                max: MAX_PEER_FRAME
            }))
        );
    }
    assert_eq!(Message::decode(&MAX_PEER_FRAME.to_be_bytes()), Ok(None));
    // A piece message filling the largest frame decodes.
    let block = vec![0x5a; MAX_PEER_FRAME as usize - 9];
    let buf = message_bytes(&Message::Piece {
        index: 0,
        begin: 0,
        block: &block,
    });
    assert_eq!(buf.len(), 4 + MAX_PEER_FRAME as usize);
    assert!(matches!(
        Message::decode(&buf),
        Ok(Some((Message::Piece { .. }, n))) if n == buf.len()
    ));
}

// --------------------------------------------------- unknown message ids

#[test]
fn unknown_tracker_requests_are_skipped_with_an_error() {
    let next = request_bytes(&Request::Leave { info_hash: [4; 20] });
    let known = [
        req::HELLO,
        req::ANNOUNCE,
        req::HAVE,
        req::LIST,
        req::GET_META,
        req::GET_PEERS,
        req::LEAVE,
        req::VOUCH,
        req::ACCEPT_DIALS,
    ];
    for id in (0..=255u8).filter(|id| !known.contains(id)) {
        for payload in [&[][..], &[1, 2, 3][..]] {
            let bad = frame(id, payload);
            let e = request_err(&bad);
            assert_frame_error(&e, ErrorCode::UNKNOWN_MESSAGE, &bad);
            // The stream stays in step: the next frame decodes.
            let mut stream = bad.clone();
            stream.extend_from_slice(&next);
            let e = request_err(&stream);
            assert_eq!(e.code, ErrorCode::UNKNOWN_MESSAGE);
            let used = e.used.unwrap();
            assert_eq!(
                Request::decode(&stream[used..]),
                Ok(Some((Request::Leave { info_hash: [4; 20] }, next.len())))
            );
        }
    }
}

#[test]
fn unknown_tracker_responses_are_skipped_with_an_error() {
    let next = response_bytes(&Response::Ack);
    let known = [
        resp::ACK,
        resp::WELCOME,
        resp::ANNOUNCED,
        resp::LIST_PAGE,
        resp::META,
        resp::PEERS,
        resp::DIAL,
        resp::ERROR,
    ];
    for id in (0..=255u8).filter(|id| !known.contains(id)) {
        let bad = frame(id, &[9; 5]);
        let e = response_err(&bad);
        assert_frame_error(&e, ErrorCode::UNKNOWN_MESSAGE, &bad);
        let mut stream = bad.clone();
        stream.extend_from_slice(&next);
        let used = response_err(&stream).used.unwrap();
        assert_eq!(
            Response::decode(&stream[used..]),
            Ok(Some((Response::Ack, next.len())))
        );
    }
}

// ----------------------------------------------- malformed tracker frames

#[test]
fn tracker_frames_with_trailing_bytes_are_refused() {
    for r in sample_requests() {
        if r == Request::KeepAlive {
            continue;
        }
        let mut buf = request_bytes(&r);
        buf.push(0);
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        let e = request_err(&buf);
        assert_frame_error(&e, ErrorCode::INVALID_PARAMETERS, &buf);
        assert!(e.message.contains("trailing"), "{r:?}: {}", e.message);
    }
    for r in sample_responses() {
        // Meta takes the rest of the frame: it has no trailing bytes.
        if matches!(r, Response::KeepAlive | Response::Meta { .. }) {
            continue;
        }
        let mut buf = response_bytes(&r);
        buf.push(0);
        let len = (buf.len() - 4) as u32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        let e = response_err(&buf);
        assert_frame_error(&e, ErrorCode::INVALID_PARAMETERS, &buf);
        assert!(e.message.contains("trailing"), "{r:?}: {}", e.message);
    }
}

#[test]
fn truncated_payload_inside_an_intact_frame_is_invalid() {
    // Cut the payload short and fix the length prefix to match: the frame
    // is complete, its content is not.
    for r in sample_requests() {
        let full = request_bytes(&r);
        for cut in 5..full.len() {
            let mut buf = full[..cut].to_vec();
            let len = (cut - 4) as u32;
            buf[..4].copy_from_slice(&len.to_be_bytes());
            let e = request_err(&buf);
            assert_frame_error(&e, ErrorCode::INVALID_PARAMETERS, &buf);
        }
    }
    for r in sample_responses() {
        if matches!(r, Response::Meta { .. } | Response::Ack) {
            continue; // any payload length is a valid Meta
        }
        let full = response_bytes(&r);
        for cut in 5..full.len() {
            let mut buf = full[..cut].to_vec();
            let len = (cut - 4) as u32;
            buf[..4].copy_from_slice(&len.to_be_bytes());
            let e = response_err(&buf);
            assert_frame_error(&e, ErrorCode::INVALID_PARAMETERS, &buf);
        }
    }
}

#[test]
fn counts_and_lengths_beyond_the_frame_are_invalid() {
    // Announce claiming a 4 GiB info dict in a 9-byte frame.
    let mut payload = u32::MAX.to_be_bytes().to_vec();
    payload.extend_from_slice(b"d1e0");
    invalid_request(&frame(req::ANNOUNCE, &payload));
    // A bitfield claiming more bytes than follow.
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend_from_slice(b"de");
    payload.push(1);
    payload.extend_from_slice(&u32::MAX.to_be_bytes());
    payload.push(0xff);
    invalid_request(&frame(req::ANNOUNCE, &payload));
    // A list page announcing 65535 entries and holding none.
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&u16::MAX.to_be_bytes());
    invalid_response(&frame(resp::LIST_PAGE, &payload));
    // A peers answer announcing 65535 peers and holding none.
    let mut payload = [0u8; 20].to_vec();
    payload.extend_from_slice(&u16::MAX.to_be_bytes());
    invalid_response(&frame(resp::PEERS, &payload));
}

#[test]
fn invalid_utf8_is_refused() {
    let bad_utf8: [&[u8]; 4] = [b"\xff", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf"];
    for s in bad_utf8 {
        // List filter.
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&10u16.to_be_bytes());
        payload.extend_from_slice(&u16be(s.len()));
        payload.extend_from_slice(s);
        invalid_request(&frame(req::LIST, &payload));
        // GetMeta by name.
        let mut payload = vec![1];
        payload.extend_from_slice(&u16be(s.len()));
        payload.extend_from_slice(s);
        invalid_request(&frame(req::GET_META, &payload));
        // Error message.
        let mut payload = 2u16.to_be_bytes().to_vec();
        payload.extend_from_slice(&u16be(s.len()));
        payload.extend_from_slice(s);
        invalid_response(&frame(resp::ERROR, &payload));
    }
}

#[test]
fn strings_longer_than_their_limit_are_refused() {
    let list = |n: usize| {
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&10u16.to_be_bytes());
        payload.extend_from_slice(&u16be(n));
        payload.extend(std::iter::repeat_n(b'x', n));
        frame(req::LIST, &payload)
    };
    let get_meta = |n: usize| {
        let mut payload = vec![1];
        payload.extend_from_slice(&u16be(n));
        payload.extend(std::iter::repeat_n(b'x', n));
        frame(req::GET_META, &payload)
    };
    let error = |n: usize| {
        let mut payload = 1u16.to_be_bytes().to_vec();
        payload.extend_from_slice(&u16be(n));
        payload.extend(std::iter::repeat_n(b'x', n));
        frame(resp::ERROR, &payload)
    };
    // At the limit: fine.
    let ok = list(MAX_FILTER_LEN);
    assert!(
        matches!(Request::decode(&ok), Ok(Some((Request::List { filter, .. }, _))) if filter.len() == MAX_FILTER_LEN)
    );
    let ok = get_meta(MAX_NAME_LEN);
    assert!(
        matches!(Request::decode(&ok), Ok(Some((Request::GetMeta(Lookup::Name(n)), _))) if n.len() == MAX_NAME_LEN)
    );
    let ok = error(MAX_ERROR_MESSAGE);
    assert!(
        matches!(Response::decode(&ok), Ok(Some((Response::Error { message, .. }, _))) if message.len() == MAX_ERROR_MESSAGE)
    );
    // One byte over: refused.
    invalid_request(&list(MAX_FILTER_LEN + 1));
    invalid_request(&get_meta(MAX_NAME_LEN + 1));
    invalid_response(&error(MAX_ERROR_MESSAGE + 1));
    // A list entry name over the limit.
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&1u16.to_be_bytes());
    payload.extend_from_slice(&[0; 20 + 8 + 4 + 4 + 4]);
    payload.extend_from_slice(&u16be(MAX_NAME_LEN + 1));
    payload.extend(std::iter::repeat_n(b'n', MAX_NAME_LEN + 1));
    invalid_response(&frame(resp::LIST_PAGE, &payload));
}

#[test]
fn bad_tags_are_refused() {
    // Pieces tag other than 0 (all) and 1 (bitfield), in an announce...
    for tag in [2u8, 3, 0x80, 0xff] {
        let mut payload = 2u32.to_be_bytes().to_vec();
        payload.extend_from_slice(b"de");
        payload.push(tag);
        invalid_request(&frame(req::ANNOUNCE, &payload));
        // ... and in a peer entry.
        let mut payload = [0u8; 20].to_vec();
        payload.extend_from_slice(&1u16.to_be_bytes());
        payload.extend_from_slice(&[1; 20]);
        payload.extend_from_slice(&[4, 127, 0, 0, 1, 0x1a, 0xe1]);
        payload.push(tag);
        invalid_response(&frame(resp::PEERS, &payload));
    }
    // GetMeta lookup tag other than 0 (hash) and 1 (name).
    for tag in [2u8, 0xff] {
        let mut payload = vec![tag];
        payload.extend_from_slice(&[0; 20]);
        invalid_request(&frame(req::GET_META, &payload));
    }
    // GetPeers piece flag other than 0 and 1.
    let mut payload = [0u8; 20].to_vec();
    payload.extend_from_slice(&10u16.to_be_bytes());
    payload.push(2);
    payload.extend_from_slice(&0u32.to_be_bytes());
    invalid_request(&frame(req::GET_PEERS, &payload));
    // Address family other than 4 and 6.
    for family in [0u8, 5, 46] {
        let mut payload = [0u8; 20].to_vec();
        payload.extend_from_slice(&1u16.to_be_bytes());
        payload.extend_from_slice(&[1; 20]);
        payload.push(family);
        payload.extend_from_slice(&[0; 18]);
        payload.push(0);
        invalid_response(&frame(resp::PEERS, &payload));
    }
}

// -------------------------------------------------- malformed peer frames

#[test]
fn peer_fixed_size_messages_with_wrong_length() {
    let cases: [(u8, usize); 13] = [
        (peer::id::CHOKE, 0),
        (peer::id::UNCHOKE, 0),
        (peer::id::INTERESTED, 0),
        (peer::id::NOT_INTERESTED, 0),
        (peer::id::HAVE_ALL, 0),
        (peer::id::HAVE_NONE, 0),
        (peer::id::HAVE, 4),
        (peer::id::SUGGEST, 4),
        (peer::id::ALLOWED_FAST, 4),
        (peer::id::REQUEST, 12),
        (peer::id::CANCEL, 12),
        (peer::id::REJECT, 12),
        // A piece needs at least index and begin.
        (peer::id::PIECE, 8),
    ];
    for (id, good) in cases {
        for len in [0, 1, 3, 4, 5, 7, 8, 11, 12, 13, 100] {
            let buf = frame(id, &vec![0; len]);
            let ok = if id == peer::id::PIECE {
                len >= good
            } else {
                len == good
            };
            let got = Message::decode(&buf);
            if ok {
                assert!(
                    matches!(got, Ok(Some((_, n))) if n == buf.len()),
                    "{id} {len}"
                );
            } else {
                assert_eq!(
                    got,
                    Err(PeerError::BadLength { id, len }),
                    "id {id} len {len}"
                );
            }
        }
    }
}

#[test]
fn peer_unknown_ids_are_skipped() {
    let known = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 0x0d, 0x0e, 0x0f, 0x10, 0x11];
    let next = message_bytes(&Message::Have(42));
    for id in (0..=255u8).filter(|id| !known.contains(id)) {
        for payload in [&[][..], &[0x1a, 0xe1][..], &[0u8; 300][..]] {
            let mut buf = frame(id, payload);
            let first = buf.len();
            buf.extend_from_slice(&next);
            assert_eq!(
                Message::decode(&buf),
                Ok(Some((Message::Unknown { id, payload }, first)))
            );
            assert_eq!(
                Message::decode(&buf[first..]),
                Ok(Some((Message::Have(42), next.len())))
            );
        }
    }
}

#[test]
fn bad_handshakes_are_refused_early() {
    // Wrong pstrlen: refused on the first byte.
    for n in [0u8, 1, 18, 20, 0x47, 0xff] {
        assert_eq!(Handshake::decode(&[n]), Err(PeerError::BadHandshake), "{n}");
    }
    // Wrong protocol string: refused as soon as a byte differs.
    assert_eq!(
        Handshake::decode(&[19, b'B', b'x']),
        Err(PeerError::BadHandshake)
    );
    assert_eq!(Handshake::decode(&[19, b'b']), Err(PeerError::BadHandshake));
    assert_eq!(Handshake::decode(&[19, b'B', b'i']), Ok(None));
    assert_eq!(
        Handshake::decode(b"GET / HTTP/1.1\r\n"),
        Err(PeerError::BadHandshake)
    );
    let mut hs = Vec::new();
    Handshake::new([1; 20], [2; 20]).encode(&mut hs);
    for at in 1..20 {
        let mut bad = hs.clone();
        bad[at] ^= 0x20;
        for k in at + 1..=bad.len() {
            assert_eq!(
                Handshake::decode(&bad[..k]),
                Err(PeerError::BadHandshake),
                "byte {at} changed, {k} bytes seen"
            );
        }
        // Before the bad byte arrives, it only needs more.
        assert_eq!(Handshake::decode(&bad[..at]), Ok(None));
    }
    // A valid handshake followed by more bytes uses only 68.
    hs.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(Handshake::decode(&hs), Ok(Some((_, 68)))));
}

// ---------------------------------------------------------------- bencode

fn bdecode_err(input: &[u8]) -> BencodeError {
    match bencode::decode(input) {
        Err(e) => e,
        Ok(v) => panic!("{:?} decoded to {v:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn bencode_integers_must_be_canonical() {
    for (input, at) in [
        (&b"i03e"[..], 1),
        (b"i-0e", 1),
        (b"i e", 1),
        (b"ie", 1),
        (b"i-e", 1),
        (b"i--1e", 1),
        (b"i+1e", 1),
        (b"i1 e", 1),
        (b"i00e", 1),
        (b"i-01e", 1),
        (b"i0x10e", 1),
        (b"i9223372036854775808e", 1),
        (b"i-9223372036854775809e", 1),
        (b"i99999999999999999999999e", 1),
        (b"03:abc", 0),
        (b"00:", 0),
        (b"1 :a", 0),
        (b"99999999999999999999:x", 0),
        (b"l03:abce", 1),
        (b"li01ee", 2),
    ] {
        assert_eq!(
            bdecode_err(input),
            BencodeError::BadInteger { at },
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(bencode::decode(b"i0e"), Ok(Value::Int(0)));
    assert_eq!(bencode::decode(b"i-1e"), Ok(Value::Int(-1)));
    assert_eq!(
        bencode::decode(b"i-9223372036854775808e"),
        Ok(Value::Int(i64::MIN))
    );
    assert_eq!(
        bencode::decode(b"i9223372036854775807e"),
        Ok(Value::Int(i64::MAX))
    );
    assert_eq!(bencode::decode(b"0:"), Ok(Value::Bytes(b"")));
}

#[test]
fn bencode_dict_keys_must_be_sorted_unique_bytes() {
    // Unsorted.
    assert_eq!(
        bdecode_err(b"d1:bi1e1:ai2ee"),
        BencodeError::UnsortedKey { at: 7 }
    );
    // Sorted by bytes, not by length: "b" > "aa".
    assert_eq!(
        bdecode_err(b"d1:bi1e2:aai2ee"),
        BencodeError::UnsortedKey { at: 7 }
    );
    // Duplicate.
    assert_eq!(
        bdecode_err(b"d1:ai1e1:ai2ee"),
        BencodeError::UnsortedKey { at: 7 }
    );
    assert_eq!(
        bdecode_err(b"d0:i1e0:i2ee"),
        BencodeError::UnsortedKey { at: 6 }
    );
    // Non-bytes keys.
    assert_eq!(bdecode_err(b"di1ei2ee"), BencodeError::Unexpected { at: 1 });
    assert_eq!(bdecode_err(b"dlei2ee"), BencodeError::Unexpected { at: 1 });
    assert_eq!(bdecode_err(b"ddei2ee"), BencodeError::Unexpected { at: 1 });
    // A key with no value.
    assert_eq!(bdecode_err(b"d1:ae"), BencodeError::Unexpected { at: 4 });
    assert_eq!(bdecode_err(b"d1:a"), BencodeError::UnexpectedEnd);
    // Sorted: fine, and a prefix sorts first.
    assert!(bencode::decode(b"d1:ai1e2:aai2e1:bi3ee").is_ok());
}

#[test]
fn bencode_refuses_trailing_garbage() {
    assert_eq!(bdecode_err(b"i1ex"), BencodeError::TrailingData { at: 3 });
    assert_eq!(bdecode_err(b"i1ei2e"), BencodeError::TrailingData { at: 3 });
    assert_eq!(bdecode_err(b"dee"), BencodeError::TrailingData { at: 2 });
    assert_eq!(bdecode_err(b"1:ab"), BencodeError::TrailingData { at: 3 });
    assert_eq!(bdecode_err(b"le\n"), BencodeError::TrailingData { at: 2 });
    // decode_prefix reports what it used and leaves the rest.
    assert_eq!(bencode::decode_prefix(b"i1ex"), Ok((Value::Int(1), 3)));
}

#[test]
fn bencode_truncated_input() {
    for input in [
        &b""[..],
        b"i",
        b"i12",
        b"l",
        b"li1e",
        b"d",
        b"d1:a",
        b"d1:ai1e",
        b"1",
        b"12",
        b"5:abc",
        b"lll",
    ] {
        assert_eq!(
            bdecode_err(input),
            BencodeError::UnexpectedEnd,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // A huge claimed length is an error straight away, with nothing
    // allocated for it (strings borrow from the input anyway).
    assert_eq!(bdecode_err(b"999999999999:x"), BencodeError::UnexpectedEnd);
    assert_eq!(
        bdecode_err(b"9223372036854775807:x"),
        BencodeError::UnexpectedEnd
    );
    assert_eq!(
        bdecode_err(b"l999999999999:xe"),
        BencodeError::UnexpectedEnd
    );
    assert_eq!(
        bdecode_err(b"d3:key999999999999:xe"),
        BencodeError::UnexpectedEnd
    );
}

#[test]
fn bencode_refuses_stray_bytes() {
    for (input, at) in [
        (&b"x"[..], 0),
        (b"-1:a", 0),
        (b"e", 0),
        (b" i1e", 0),
        (b"lxe", 1),
        (b"l1:ax", 4),
    ] {
        assert_eq!(
            bdecode_err(input),
            BencodeError::Unexpected { at },
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn bencode_nesting_is_capped() {
    // A value may sit inside at most MAX_BENCODE_DEPTH containers.
    let nested = |containers: usize, open: &[u8], inner: &[u8]| {
        let mut v = Vec::new();
        for _ in 0..containers {
            v.extend_from_slice(open);
        }
        v.extend_from_slice(inner);
        v.extend(std::iter::repeat_n(b'e', containers));
        v
    };
    for (open, inner) in [(&b"l"[..], &b"i1e"[..]), (b"d1:k", b"0:")] {
        let ok = nested(MAX_BENCODE_DEPTH, open, inner);
        let v = bencode::decode(&ok).expect("at the depth limit");
        assert_eq!(v.to_bytes(), ok);
        let deep = nested(MAX_BENCODE_DEPTH + 1, open, inner);
        assert_eq!(bdecode_err(&deep), BencodeError::TooDeep);
    }
    // Far too deep (and unterminated): refused without overflowing the
    // stack, before the missing end is noticed.
    let mut hostile = vec![b'l'; 1_000_000];
    assert_eq!(bdecode_err(&hostile), BencodeError::TooDeep);
    hostile.extend(std::iter::repeat_n(b'e', 1_000_000));
    assert_eq!(bdecode_err(&hostile), BencodeError::TooDeep);
}

// ---------------------------------------------------------- info dicts

const HASH: [u8; 20] = [0xab; 20];

/// A bencoded info dict from (key, value) pairs, sorted for the caller.
fn dict(mut entries: Vec<(&'static [u8], Value<'static>)>) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Value::Dict(entries).to_bytes()
}

/// A valid one-piece info dict with `change` applied to its entries.
fn info_with(change: impl FnOnce(&mut Vec<(&'static [u8], Value<'static>)>)) -> Vec<u8> {
    let mut entries: Vec<(&'static [u8], Value<'static>)> = vec![
        (b"length", Value::Int(1000)),
        (b"name", Value::Bytes(b"file.bin")),
        (b"piece length", Value::Int(MIN_PIECE_LENGTH.into())),
        (b"pieces", Value::Bytes(&HASH)),
    ];
    change(&mut entries);
    dict(entries)
}

fn set(
    entries: &mut Vec<(&'static [u8], Value<'static>)>,
    key: &'static [u8],
    value: Value<'static>,
) {
    entries.retain(|(k, _)| *k != key);
    entries.push((key, value));
}

fn info_err(bytes: &[u8]) -> InfoError {
    match Info::from_bencoded(bytes) {
        Err(e) => e,
        Ok(info) => panic!("accepted {info:?}"),
    }
}

#[test]
fn the_base_info_dict_is_valid() {
    let info = Info::from_bencoded(&info_with(|_| {})).expect("valid");
    assert_eq!(info.name, "file.bin");
    assert_eq!(info.num_pieces(), 1);
    // Keys we do not use are kept and count in the hash.
    let with_private = info_with(|e| set(e, b"private", Value::Int(1)));
    let private = Info::from_bencoded(&with_private).expect("valid");
    assert_ne!(private.info_hash, info.info_hash);
    assert_eq!(private.bencoded, with_private);
}

#[test]
fn forbidden_names() {
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let cases: [(&str, NameError); 12] = [
        ("a/b", NameError::Separator),
        ("/etc", NameError::Separator),
        ("a\\b", NameError::Separator),
        ("..", NameError::DotName),
        (".", NameError::DotName),
        ("", NameError::Empty),
        ("a\u{1}b", NameError::ControlCharacter),
        ("a\nb", NameError::ControlCharacter),
        ("nul\0", NameError::ControlCharacter),
        ("del\u{7f}", NameError::ControlCharacter),
        ("c1\u{85}", NameError::ControlCharacter),
        (&long, NameError::TooLong(MAX_NAME_LEN + 1)),
    ];
    for (name, want) in cases {
        let e = Info::new(name, 1000, MIN_PIECE_LENGTH, HASH.to_vec()).unwrap_err();
        assert_eq!(e, InfoError::BadName(want), "Info::new({name:?})");
        let bytes = info_with(|e| set(e, b"name", Value::Bytes(name.as_bytes().to_vec().leak())));
        assert_eq!(info_err(&bytes), InfoError::BadName(want), "{name:?}");
        assert_eq!(sta::meta::info::check_name(name), Err(want));
    }
    // 255 bytes (multi-byte characters included) is the longest name.
    let at_limit = "é".repeat(MAX_NAME_LEN / 2) + "x";
    assert_eq!(at_limit.len(), MAX_NAME_LEN);
    assert!(Info::new(&at_limit, 1000, MIN_PIECE_LENGTH, HASH.to_vec()).is_ok());
    let over = "é".repeat(MAX_NAME_LEN / 2 + 1);
    assert_eq!(
        Info::new(&over, 1000, MIN_PIECE_LENGTH, HASH.to_vec()),
        Err(InfoError::BadName(NameError::TooLong(MAX_NAME_LEN + 1)))
    );
    // Dots inside a name are fine; only "." and ".." are refused.
    for name in ["...", ".hidden", "a..b", "..a"] {
        assert!(Info::new(name, 1000, MIN_PIECE_LENGTH, HASH.to_vec()).is_ok());
    }
    // Invalid UTF-8 can only come from the wire.
    for bad in [&b"\xff"[..], b"caf\xe9", b"\xc3", b"\xed\xa0\x80"] {
        let bytes = info_with(|e| set(e, b"name", Value::Bytes(bad)));
        assert_eq!(info_err(&bytes), InfoError::BadName(NameError::NotUtf8));
    }
}

#[test]
fn piece_length_rules() {
    for (pl, want) in [
        (0, InfoError::PieceLengthNotPowerOfTwo(0)),
        (-16384, InfoError::PieceLengthNotPowerOfTwo(-16384)),
        (3 * 16384, InfoError::PieceLengthNotPowerOfTwo(3 * 16384)),
        (16385, InfoError::PieceLengthNotPowerOfTwo(16385)),
        (i64::MIN, InfoError::PieceLengthNotPowerOfTwo(i64::MIN)),
        (i64::MAX, InfoError::PieceLengthNotPowerOfTwo(i64::MAX)),
        (1, InfoError::PieceLengthOutOfRange(1)),
        (8192, InfoError::PieceLengthOutOfRange(8192)),
        (
            i64::from(MIN_PIECE_LENGTH) / 2,
            InfoError::PieceLengthOutOfRange(i64::from(MIN_PIECE_LENGTH) / 2),
        ),
        (
            i64::from(MAX_PIECE_LENGTH) * 2,
            InfoError::PieceLengthOutOfRange(i64::from(MAX_PIECE_LENGTH) * 2),
        ),
        (1 << 62, InfoError::PieceLengthOutOfRange(1 << 62)),
    ] {
        let bytes = info_with(|e| set(e, b"piece length", Value::Int(pl)));
        assert_eq!(info_err(&bytes), want, "piece length {pl}");
    }
    // Through Info::new as well.
    assert_eq!(
        Info::new("f", 1000, 3 << 14, HASH.to_vec()),
        Err(InfoError::PieceLengthNotPowerOfTwo(3 << 14))
    );
    assert_eq!(
        Info::new("f", 1000, MIN_PIECE_LENGTH / 2, HASH.to_vec()),
        Err(InfoError::PieceLengthOutOfRange(
            (MIN_PIECE_LENGTH / 2).into()
        ))
    );
    // Both ends of the range are accepted.
    for pl in [MIN_PIECE_LENGTH, MAX_PIECE_LENGTH] {
        assert!(Info::new("f", 1000, pl, HASH.to_vec()).is_ok(), "{pl}");
    }
}

#[test]
fn pieces_rules() {
    for n in [1usize, 19, 21, 39, 41] {
        let bytes = info_with(|e| set(e, b"pieces", Value::Bytes(vec![0; n].leak())));
        assert_eq!(info_err(&bytes), InfoError::PiecesNotMultipleOf20(n));
    }
    // One hash too few, one too many, none at all.
    let two_pieces = i64::from(MIN_PIECE_LENGTH) + 1;
    let bytes = info_with(|e| set(e, b"length", Value::Int(two_pieces)));
    assert_eq!(
        info_err(&bytes),
        InfoError::PieceCountMismatch {
            expected: 2,
            found: 1
        }
    );
    let bytes = info_with(|e| set(e, b"pieces", Value::Bytes(&[0; 40])));
    assert_eq!(
        info_err(&bytes),
        InfoError::PieceCountMismatch {
            expected: 1,
            found: 2
        }
    );
    let bytes = info_with(|e| set(e, b"pieces", Value::Bytes(b"")));
    assert_eq!(
        info_err(&bytes),
        InfoError::PieceCountMismatch {
            expected: 1,
            found: 0
        }
    );
    assert_eq!(
        Info::new("f", two_pieces as u64, MIN_PIECE_LENGTH, HASH.to_vec()),
        Err(InfoError::PieceCountMismatch {
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn length_rules() {
    for n in [0, -1, i64::MIN] {
        let bytes = info_with(|e| set(e, b"length", Value::Int(n)));
        assert_eq!(info_err(&bytes), InfoError::BadLength(n));
    }
    assert_eq!(
        Info::new("f", 0, MIN_PIECE_LENGTH, Vec::new()),
        Err(InfoError::BadLength(0))
    );
    assert_eq!(
        Info::new("f", u64::MAX, MIN_PIECE_LENGTH, Vec::new()),
        Err(InfoError::BadLength(i64::MAX))
    );
}

#[test]
fn too_many_pieces() {
    let pl = u64::from(MIN_PIECE_LENGTH);
    let max = u64::from(MAX_PIECES);
    // One byte more than MAX_PIECES pieces can hold.
    let length = max * pl + 1;
    let bytes = info_with(|e| set(e, b"length", Value::Int(length as i64)));
    assert_eq!(info_err(&bytes), InfoError::TooManyPieces(max + 1));
    let bytes = info_with(|e| set(e, b"length", Value::Int(i64::MAX)));
    assert_eq!(
        info_err(&bytes),
        InfoError::TooManyPieces((i64::MAX as u64).div_ceil(pl))
    );
    // Exactly MAX_PIECES pieces is allowed.
    let info = Info::new(
        "big",
        max * pl,
        MIN_PIECE_LENGTH,
        vec![0; MAX_PIECES as usize * 20],
    )
    .expect("MAX_PIECES pieces");
    assert_eq!(info.num_pieces(), MAX_PIECES);
    assert_eq!(info.piece_size(MAX_PIECES - 1), MIN_PIECE_LENGTH);
}

#[test]
fn multi_file_and_missing_keys() {
    let files = Value::List(vec![Value::Dict(vec![
        (b"length", Value::Int(1000)),
        (b"path", Value::List(vec![Value::Bytes(b"a")])),
    ])]);
    let bytes = info_with(|e| {
        e.retain(|(k, _)| *k != b"length");
        e.push((b"files", files.clone()));
    });
    let tree = Info::from_bencoded(&bytes).expect("a tree of one file");
    assert!(tree.is_multi());
    assert_eq!(tree.path(&tree.files().get(0).unwrap()).to_string(), "a");
    let bytes = info_with(|e| e.push((b"files", files.clone())));
    assert_eq!(info_err(&bytes), InfoError::LengthAndFiles);

    for key in [&b"length"[..], b"name", b"piece length", b"pieces"] {
        let want = InfoError::Missing(std::str::from_utf8(key).unwrap().to_owned().leak());
        let bytes = info_with(|e| e.retain(|(k, _)| *k != key));
        assert_eq!(info_err(&bytes), want, "without {key:?}");
        // Present with the wrong type counts as missing.
        let wrong = if key == b"length" || key == b"piece length" {
            Value::Bytes(b"1000")
        } else {
            Value::Int(1)
        };
        let key: &'static [u8] = key.to_vec().leak();
        let bytes = info_with(|e| set(e, key, wrong));
        assert_eq!(info_err(&bytes), want, "{key:?} of the wrong type");
    }
    assert_eq!(info_err(b"de"), InfoError::Missing("name"));
}

#[test]
fn info_that_is_not_a_dict_or_not_bencode() {
    assert_eq!(info_err(b"le"), InfoError::NotADict);
    assert_eq!(info_err(b"i1e"), InfoError::NotADict);
    assert_eq!(info_err(b"4:spam"), InfoError::NotADict);
    assert_eq!(
        info_err(b"d4:name"),
        InfoError::Bencode(BencodeError::UnexpectedEnd)
    );
    let mut trailing = info_with(|_| {});
    let at = trailing.len();
    trailing.push(b'x');
    assert_eq!(
        info_err(&trailing),
        InfoError::Bencode(BencodeError::TrailingData { at })
    );
    // Unsorted keys are refused: re-encoding would change the info hash.
    let unsorted =
        b"d4:name1:f6:lengthi1000e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    assert!(matches!(
        info_err(unsorted),
        InfoError::Bencode(BencodeError::UnsortedKey { .. })
    ));
}

// ----------------------------------------------------------------- trees

/// One entry of `files`.
fn file(length: i64, path: &[&str]) -> Value<'static> {
    let path = path
        .iter()
        .map(|c| Value::Bytes(c.as_bytes().to_vec().leak()))
        .collect();
    Value::Dict(vec![
        (b"length", Value::Int(length)),
        (b"path", Value::List(path)),
    ])
}

/// `file` with a BEP 47 `attr`.
fn file_attr(attr: &'static str, length: i64, path: &[&str]) -> Value<'static> {
    let Value::Dict(mut entries) = file(length, path) else {
        unreachable!()
    };
    entries.insert(0, (b"attr", Value::Bytes(attr.as_bytes())));
    Value::Dict(entries)
}

/// An info dict of the tree `dir` holding `files`, with as many (zero)
/// piece hashes of 16 KiB pieces as their lengths need.
fn tree(files: Vec<Value<'static>>) -> Vec<u8> {
    let total: i64 = files
        .iter()
        .filter_map(|f| f.get(b"length").and_then(Value::as_int))
        .filter(|&n| n > 0)
        .fold(0i64, i64::saturating_add);
    let pieces = (total as u64)
        .div_ceil(MIN_PIECE_LENGTH.into())
        .min(1 << 20) as usize;
    dict(vec![
        (b"files", Value::List(files)),
        (b"name", Value::Bytes(b"dir")),
        (b"piece length", Value::Int(MIN_PIECE_LENGTH.into())),
        (b"pieces", Value::Bytes(vec![0; pieces * 20].leak())),
    ])
}

/// `tree` of a plain first file `a.txt`, then `second`.
fn after_a(second: Value<'static>) -> Vec<u8> {
    tree(vec![file(3, &["a.txt"]), second])
}

fn tree_ok(bytes: &[u8]) -> Info {
    match Info::from_bencoded(bytes) {
        Ok(info) => info,
        Err(e) => panic!("refused: {e}"),
    }
}

fn bad_file(index: usize, error: FileError) -> InfoError {
    InfoError::BadFile { index, error }
}

fn bad_component(c: &str, e: NameError) -> InfoError {
    bad_file(1, FileError::Path(PathError::Component(c.to_owned(), e)))
}

#[test]
fn tree_components_must_be_plain_names() {
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let cases: &[(&[&str], InfoError)] = &[
        (&[".."], bad_component("..", NameError::DotName)),
        (
            &["..", "etc", "passwd"],
            bad_component("..", NameError::DotName),
        ),
        (
            &["a", "..", "..", "b"],
            bad_component("..", NameError::DotName),
        ),
        (&["a", ".."], bad_component("..", NameError::DotName)),
        (&["."], bad_component(".", NameError::DotName)),
        (&["a", ".", "b"], bad_component(".", NameError::DotName)),
        (
            &["/etc", "passwd"],
            bad_component("/etc", NameError::Separator),
        ),
        (&["/"], bad_component("/", NameError::Separator)),
        (&["a/b"], bad_component("a/b", NameError::Separator)),
        (
            &["a/../../b"],
            bad_component("a/../../b", NameError::Separator),
        ),
        (&["a", "b/"], bad_component("b/", NameError::Separator)),
        (&["..\\x"], bad_component("..\\x", NameError::Separator)),
        (&["C:\\x"], bad_component("C:\\x", NameError::Separator)),
        (
            &["\\\\server"],
            bad_component("\\\\server", NameError::Separator),
        ),
        (&[""], bad_component("", NameError::Empty)),
        (&["", "a"], bad_component("", NameError::Empty)),
        (&["a", "", "b"], bad_component("", NameError::Empty)),
        (&["a", ""], bad_component("", NameError::Empty)),
        (&["a\0"], bad_component("a\0", NameError::ControlCharacter)),
        (
            &["a\nb"],
            bad_component("a\nb", NameError::ControlCharacter),
        ),
        (
            &["tab\t"],
            bad_component("tab\t", NameError::ControlCharacter),
        ),
        (
            &["esc\u{1b}[2J"],
            bad_component("esc\u{1b}[2J", NameError::ControlCharacter),
        ),
        (
            &["del\u{7f}"],
            bad_component("del\u{7f}", NameError::ControlCharacter),
        ),
        (
            &["c1\u{85}"],
            bad_component("c1\u{85}", NameError::ControlCharacter),
        ),
        (
            &["ok", &long],
            bad_component(&long, NameError::TooLong(MAX_NAME_LEN + 1)),
        ),
        (&[], bad_file(1, FileError::Path(PathError::Empty))),
    ];
    for (path, want) in cases {
        assert_eq!(&info_err(&after_a(file(5, path))), want, "{path:?}");
        // As the first file too, with the index it has there.
        let first = info_err(&tree(vec![file(5, path), file(3, &["a.txt"])]));
        let InfoError::BadFile { index: 0, error } = first else {
            panic!("{path:?}: {first:?}");
        };
        assert_eq!(&bad_file(1, error), want, "{path:?} first");
    }
    // Names that only look odd are fine.
    for path in [
        &["..."][..],
        &[".hidden", "a..b"],
        &["..a", "b.."],
        &["~", "$HOME"],
        &["C:"],
        &["con", "nul.txt"],
        &["space ", " lead"],
        &["données", "日本語.bin"],
    ] {
        tree_ok(&after_a(file(5, path)));
    }
    // A component of 255 bytes is the longest.
    let at_limit = "é".repeat(MAX_NAME_LEN / 2) + "x";
    tree_ok(&after_a(file(5, &[&at_limit])));
}

#[test]
fn tree_components_must_be_utf8_byte_strings() {
    for bad in [
        &b"\xff"[..],
        b"caf\xe9",
        b"\xc3",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
    ] {
        let entry = Value::Dict(vec![
            (b"length", Value::Int(5)),
            (
                b"path",
                Value::List(vec![Value::Bytes(b"ok"), Value::Bytes(bad)]),
            ),
        ]);
        assert_eq!(info_err(&after_a(entry)), bad_file(1, FileError::NotUtf8));
    }
    // Not UTF-8 is found before a path rule: "..", then an invalid byte.
    let entry = Value::Dict(vec![
        (b"length", Value::Int(5)),
        (
            b"path",
            Value::List(vec![Value::Bytes(b".."), Value::Bytes(b"\xff")]),
        ),
    ]);
    assert_eq!(info_err(&after_a(entry)), bad_file(1, FileError::NotUtf8));
    // A component that is not a byte string, a path that is not a list.
    for path in [
        Value::List(vec![Value::Bytes(b"a"), Value::Int(1)]),
        Value::List(vec![Value::List(vec![Value::Bytes(b"a")])]),
        Value::Bytes(b"a/b"),
        Value::Int(0),
    ] {
        let entry = Value::Dict(vec![(b"length", Value::Int(5)), (b"path", path.clone())]);
        assert_eq!(
            info_err(&after_a(entry)),
            bad_file(1, FileError::Missing("path")),
            "{path:?}"
        );
    }
    let entry = Value::Dict(vec![(b"length", Value::Int(5))]);
    assert_eq!(
        info_err(&after_a(entry)),
        bad_file(1, FileError::Missing("path"))
    );
}

#[test]
fn tree_depth_and_length_limits() {
    let deep = vec!["d"; MAX_PATH_DEPTH];
    let info = tree_ok(&after_a(file(5, &deep)));
    assert_eq!(
        info.path(&info.files().get(1).unwrap())
            .components()
            .count(),
        MAX_PATH_DEPTH
    );
    let deeper = vec!["d"; MAX_PATH_DEPTH + 1];
    assert_eq!(
        info_err(&after_a(file(5, &deeper))),
        bad_file(1, FileError::Path(PathError::TooDeep(MAX_PATH_DEPTH + 1)))
    );
    // Far deeper than the limit: refused by count, before any component.
    let very = vec![".."; 10_000];
    assert_eq!(
        info_err(&after_a(file(5, &very))),
        bad_file(1, FileError::Path(PathError::TooDeep(10_000)))
    );
    // MAX_PATH_LEN bytes joined by '/' is the longest: 11 components of
    // 255 bytes, one of 254, one of 1, and 12 slashes.
    let mut path: Vec<String> = vec!["x".repeat(MAX_NAME_LEN); 11];
    path.push("x".repeat(MAX_NAME_LEN - 1));
    path.push("y".into());
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    assert_eq!(refs.join("/").len(), MAX_PATH_LEN);
    tree_ok(&after_a(file(5, &refs)));
    path[12].push('z');
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    assert_eq!(
        info_err(&after_a(file(5, &refs))),
        bad_file(1, FileError::Path(PathError::TooLong(MAX_PATH_LEN + 1)))
    );
}

#[test]
fn tree_collisions_are_refused() {
    let dup = |p: &str| InfoError::BadPath(PathError::Duplicate(p.into()));
    let dir = |p: &str| InfoError::BadPath(PathError::FileIsDirectory(p.into()));
    let cases: Vec<(Vec<Value<'static>>, InfoError)> = vec![
        (vec![file(1, &["a"]), file(1, &["a"])], dup("a")),
        (
            vec![file(1, &["x", "a"]), file(1, &["y"]), file(1, &["x", "a"])],
            dup("x/a"),
        ),
        // Empty files collide too.
        (vec![file(0, &["e"]), file(1, &["e"])], dup("e")),
        (vec![file(1, &["a"]), file(1, &["a", "b"])], dir("a")),
        (vec![file(1, &["a", "b"]), file(1, &["a"])], dir("a")),
        (
            vec![file(1, &["a", "b", "c"]), file(1, &["a", "b"])],
            dir("a/b"),
        ),
        (
            vec![file(1, &["a", "b"]), file(1, &["a", "b", "c", "d"])],
            dir("a/b"),
        ),
        // A pad file is no excuse for a real file to collide.
        (
            vec![
                file(1, &["a"]),
                file_attr("p", 1, &[".pad", "1"]),
                file(1, &["a"]),
            ],
            dup("a"),
        ),
    ];
    for (files, want) in cases {
        let what = format!("{files:?}");
        assert_eq!(info_err(&tree(files)), want, "{what}");
    }
    // Not collisions: same name in two directories, a name that is a
    // prefix of another's but not a whole component, byte-distinct
    // spellings (no Unicode normalisation, no case folding).
    for files in [
        vec![file(1, &["x", "a"]), file(1, &["y", "a"])],
        vec![
            file(1, &["a"]),
            file(1, &["ab", "c"]),
            file(1, &["a.d", "e"]),
        ],
        vec![
            file(1, &["a", "b"]),
            file(1, &["a", "c"]),
            file(1, &["a", "d", "e"]),
        ],
        vec![file(1, &["caf\u{e9}"]), file(1, &["cafe\u{301}"])],
        vec![file(1, &["A"]), file(1, &["a"])],
    ] {
        let info = tree_ok(&tree(files.clone()));
        assert_eq!(info.file_count(), files.len());
    }
}

#[test]
fn pad_files_are_exempt_from_collisions_only() {
    // libtorrent names pad files by their length, so they repeat; a pad
    // file may also share a path with a real file or its directory.
    let info = tree_ok(&tree(vec![
        file(1, &["a"]),
        file_attr("p", 16383, &[".pad", "16383"]),
        file(1, &["b"]),
        file_attr("p", 16383, &[".pad", "16383"]),
        file_attr("p", 1, &["a"]),
        file_attr("p", 1, &["b", "c"]),
        file(1, &[".pad"]),
    ]));
    assert_eq!(info.files().len(), 7);
    assert_eq!(info.file_count(), 3);
    let pads: Vec<bool> = info.files().iter().map(|f| f.pad).collect();
    assert_eq!(pads, [false, true, false, true, true, true, false]);
    assert_eq!(info.files().get(2).unwrap().offset, 16384);
    // Their paths still obey the component rules.
    assert_eq!(
        info_err(&after_a(file_attr("p", 1, &["..", "x"]))),
        bad_component("..", NameError::DotName)
    );
    assert_eq!(
        info_err(&after_a(file_attr("p", 1, &[]))),
        bad_file(1, FileError::Path(PathError::Empty))
    );
}

#[test]
fn symlinks_are_refused_other_attrs_ignored() {
    for attr in ["l", "lx", "xl", "pl", "hlx"] {
        assert_eq!(
            info_err(&after_a(file_attr(attr, 0, &["link"]))),
            bad_file(1, FileError::Symlink),
            "attr {attr}"
        );
    }
    // Refused whatever the path: the symlink is found before the path rules.
    assert_eq!(
        info_err(&after_a(file_attr("l", 0, &[".."]))),
        bad_file(1, FileError::Symlink)
    );
    for attr in ["", "x", "h", "xh", "?"] {
        let info = tree_ok(&after_a(file_attr(attr, 5, &["f"])));
        assert!(!info.files().get(1).unwrap().pad, "attr {attr:?}");
    }
    // An attr that is not a byte string is ignored.
    let Value::Dict(mut entries) = file(5, &["f"]) else {
        unreachable!()
    };
    entries.insert(0, (b"attr", Value::Int(1)));
    tree_ok(&after_a(Value::Dict(entries)));
}

#[test]
fn tree_lengths() {
    for n in [-1, -5, i64::MIN] {
        assert_eq!(
            info_err(&after_a(file(n, &["b"]))),
            bad_file(1, FileError::BadLength(n))
        );
    }
    let entry = Value::Dict(vec![
        (b"length", Value::Bytes(b"5")),
        (b"path", Value::List(vec![Value::Bytes(b"b")])),
    ]);
    assert_eq!(
        info_err(&after_a(entry)),
        bad_file(1, FileError::Missing("length"))
    );
    // Only empty files: nothing to download.
    assert_eq!(
        info_err(&tree(vec![file(0, &["a"]), file(0, &["b"])])),
        InfoError::BadLength(0)
    );
    // A sum beyond i64, found when it happens (before file 2 is read).
    assert_eq!(
        info_err(&tree(vec![
            file(i64::MAX, &["a"]),
            file(1, &["b"]),
            Value::Int(0),
        ])),
        InfoError::BadLength(i64::MAX)
    );
    // i64::MAX in all is within range but far beyond MAX_PIECES.
    assert!(matches!(
        info_err(&tree(vec![file(i64::MAX - 1, &["a"]), file(1, &["b"])])),
        InfoError::TooManyPieces(_)
    ));
    // Offsets run on through empty files.
    let info = tree_ok(&tree(vec![
        file(10, &["a"]),
        file(0, &["b"]),
        file(0, &["c"]),
        file(7, &["d"]),
    ]));
    let at: Vec<(u64, u64)> = info.files().iter().map(|f| (f.offset, f.length)).collect();
    assert_eq!(at, [(0, 10), (10, 0), (10, 0), (10, 7)]);
    assert_eq!(info.length, 17);
}

#[test]
fn tree_shape_errors() {
    let files = vec![file(3, &["a.txt"])];
    let both = info_with(|e| e.push((b"files", Value::List(files.clone()))));
    assert_eq!(info_err(&both), InfoError::LengthAndFiles);
    // Both, whatever their types.
    let both = info_with(|e| {
        set(e, b"length", Value::Bytes(b"x"));
        e.push((b"files", Value::Int(1)));
    });
    assert_eq!(info_err(&both), InfoError::LengthAndFiles);
    for not_a_list in [Value::Int(1), Value::Bytes(b"a"), Value::Dict(Vec::new())] {
        let bytes = info_with(|e| {
            e.retain(|(k, _)| *k != b"length");
            e.push((b"files", not_a_list));
        });
        assert_eq!(info_err(&bytes), InfoError::Missing("files"));
    }
    assert_eq!(info_err(&tree(Vec::new())), InfoError::NoFiles);
    for entry in [Value::Int(1), Value::Bytes(b"a"), Value::List(Vec::new())] {
        assert_eq!(
            info_err(&after_a(entry.clone())),
            bad_file(1, FileError::NotADict),
            "{entry:?}"
        );
    }
    assert_eq!(
        info_err(&tree(vec![Value::Dict(Vec::new())])),
        bad_file(0, FileError::Missing("length"))
    );
    // The first bad entry is the one reported.
    assert_eq!(
        info_err(&tree(vec![
            file(1, &["ok"]),
            file(1, &[".."]),
            file(-1, &["x"])
        ])),
        bad_component("..", NameError::DotName)
    );
    // Entry errors come before collisions, whatever their order.
    assert_eq!(
        info_err(&tree(vec![
            file(1, &["a"]),
            file(1, &["a"]),
            file(-1, &["x"])
        ])),
        bad_file(2, FileError::BadLength(-1))
    );
    // A tree's name obeys the name rules, and is checked first.
    let bytes = dict(vec![
        (b"files", Value::List(vec![file(1, &[".."])])),
        (b"name", Value::Bytes(b"..")),
        (b"piece length", Value::Int(MIN_PIECE_LENGTH.into())),
        (b"pieces", Value::Bytes(&HASH)),
    ]);
    assert_eq!(info_err(&bytes), InfoError::BadName(NameError::DotName));
}

/// `n` entries `de` (empty dicts) as the whole `files` list, written
/// directly: reading any of them would fail.
fn empty_entries(n: usize) -> Vec<u8> {
    let mut out = b"d5:filesl".to_vec();
    for _ in 0..n {
        out.extend_from_slice(b"de");
    }
    out.extend_from_slice(b"e4:name3:dir12:piece lengthi16384e6:pieces20:");
    out.extend_from_slice(&HASH);
    out.push(b'e');
    out
}

#[test]
fn too_many_files_are_refused_by_count() {
    let max = MAX_FILES as usize;
    // One entry too many: refused before any entry is read (each of them
    // would be refused for its missing length).
    assert_eq!(
        info_err(&empty_entries(max + 1)),
        InfoError::TooManyFiles(max + 1)
    );
    // MAX_FILES entries pass the count and are read.
    assert_eq!(
        info_err(&empty_entries(max)),
        bad_file(0, FileError::Missing("length"))
    );
}

/// A bencoded tree of `n` one-byte files, `d<i % 100>/<i % 7>/f<i>`,
/// written directly.
fn many_files(n: usize) -> Vec<u8> {
    let mut out = b"d5:filesl".to_vec();
    for i in 0..n {
        let (d, e, f) = (
            format!("d{}", i % 100),
            format!("{}", i % 7),
            format!("f{i}"),
        );
        out.extend_from_slice(
            format!(
                "d6:lengthi1e4:pathl{}:{d}{}:{e}{}:{f}ee",
                d.len(),
                e.len(),
                f.len()
            )
            .as_bytes(),
        );
    }
    let pieces = n.div_ceil(MIN_PIECE_LENGTH as usize);
    out.extend_from_slice(
        format!("e4:name3:dir12:piece lengthi16384e6:pieces{}:", pieces * 20).as_bytes(),
    );
    out.resize(out.len() + pieces * 20, 0);
    out.push(b'e');
    out
}

#[test]
fn a_hundred_thousand_files_parse_quickly() {
    let bytes = many_files(100_000);
    let start = std::time::Instant::now();
    let info = tree_ok(&bytes);
    let took = start.elapsed();
    assert_eq!(info.file_count(), 100_000);
    assert_eq!(info.length, 100_000);
    let last = &info.files().get(99_999).unwrap();
    assert_eq!(info.path(last).to_string(), "d99/4/f99999");
    assert_eq!(last.offset, 99_999);
    if !cfg!(debug_assertions) {
        // A guard against quadratic work (minutes), not a benchmark: it
        // takes about 0.1 s, and a loaded CI machine must not fail it.
        assert!(took.as_secs() < 10, "100,000 files took {took:?}");
    }
}

/// The worst shape for the collision check: every file as deep and long
/// as allowed, no two sharing a directory, as many as an 8 MiB tracker
/// frame or `.torrent` holds.
#[test]
fn the_longest_deepest_paths_parse_quickly() {
    let component_len = MAX_PATH_LEN / MAX_PATH_DEPTH - 1; // 47
    let mut out = b"d5:filesl".to_vec();
    let mut n = 0usize;
    while out.len() < 8 << 20 {
        out.extend_from_slice(b"d6:lengthi1e4:pathl");
        for depth in 0..MAX_PATH_DEPTH {
            let c = format!("{n:0>w$}{depth:03}", w = component_len - 3);
            out.extend_from_slice(format!("{}:{c}", c.len()).as_bytes());
        }
        out.extend_from_slice(b"ee");
        n += 1;
    }
    let pieces = n.div_ceil(MIN_PIECE_LENGTH as usize);
    out.extend_from_slice(
        format!("e4:name3:dir12:piece lengthi16384e6:pieces{}:", pieces * 20).as_bytes(),
    );
    out.resize(out.len() + pieces * 20, 0);
    out.push(b'e');
    let start = std::time::Instant::now();
    let info = tree_ok(&out);
    let took = start.elapsed();
    assert_eq!(info.file_count(), n);
    assert_eq!(
        info.path(&info.files().get(0).unwrap()).to_string().len(),
        MAX_PATH_LEN - 1
    );
    eprintln!("{n} files of {MAX_PATH_DEPTH} components: {took:?}");
    if !cfg!(debug_assertions) {
        // Against quadratic work, not a benchmark (see above).
        assert!(took.as_secs() < 10, "{n} deep files took {took:?}");
    }
}

/// Every path of 1 to 3 components drawn from tricky pieces: whatever is
/// accepted lands strictly inside `<out>/<name>`, one plain component per
/// element, and every way out is refused.
#[test]
fn no_accepted_path_leaves_the_output_dir() {
    use std::path::{Component, Path};
    let pieces = [
        "..",
        ".",
        "",
        "/",
        "\\",
        "a",
        "a/..",
        "/..",
        "..\\",
        "\0",
        "...",
        "~",
        "C:",
        "a/",
        "/a",
        ". ",
        " ..",
        "%2e%2e",
        "\u{2215}",
        "\u{ff0e}\u{ff0e}",
        "\n..",
    ];
    let mut paths: Vec<Vec<&str>> = pieces.iter().map(|p| vec![*p]).collect();
    for depth in 2..=3 {
        let shorter: Vec<Vec<&str>> = paths
            .iter()
            .filter(|p| p.len() == depth - 1)
            .cloned()
            .collect();
        for p in shorter {
            for c in pieces {
                let mut q = p.clone();
                q.push(c);
                paths.push(q);
            }
        }
    }
    let top = Path::new("/srv/out").join("dir");
    let (mut accepted, mut refused) = (0, 0);
    for path in &paths {
        let Ok(info) = Info::from_bencoded(&tree(vec![file(1, path)])) else {
            refused += 1;
            continue;
        };
        accepted += 1;
        let got: Vec<&str> = info
            .path(&info.files().get(0).unwrap())
            .components()
            .collect();
        assert_eq!(&got, path);
        let mut at = top.clone();
        for c in got {
            let parts: Vec<Component<'_>> = Path::new(c).components().collect();
            assert_eq!(parts, [Component::Normal(c.as_ref())], "{path:?}");
            at.push(c);
        }
        assert!(at.starts_with(&top), "{path:?} -> {}", at.display());
        let below: Vec<Component<'_>> = at.strip_prefix(&top).unwrap().components().collect();
        assert_eq!(below.len(), path.len(), "{path:?}");
        assert!(
            below.iter().all(|c| matches!(c, Component::Normal(_))),
            "{path:?}"
        );
    }
    // The plain ones get through; everything with "..", ".", an empty
    // component, a separator or a control character does not.
    let plain = [
        "a",
        "...",
        "~",
        "C:",
        ". ",
        " ..",
        "%2e%2e",
        "\u{2215}",
        "\u{ff0e}\u{ff0e}",
    ];
    let expected: usize = (1..=3).map(|d| plain.len().pow(d)).sum();
    assert_eq!(accepted, expected);
    assert_eq!(accepted + refused, paths.len());
}

#[test]
fn unknown_keys_of_a_file_are_kept_and_hashed() {
    let plain = tree_ok(&after_a(file(5, &["b"])));
    let Value::Dict(mut entries) = file(5, &["b"]) else {
        unreachable!()
    };
    entries.insert(
        1,
        (b"md5sum", Value::Bytes(b"00000000000000000000000000000000")),
    );
    // `path.utf-8` is not read instead of `path`: a bad `path` stays bad.
    entries.push((b"path.utf-8", Value::List(vec![Value::Bytes(b"c")])));
    let bytes = after_a(Value::Dict(entries.clone()));
    let extra = tree_ok(&bytes);
    assert_eq!(extra.bencoded, bytes);
    assert_ne!(extra.info_hash, plain.info_hash);
    let listed = |info: &Info| -> Vec<(String, u64)> {
        let file = |f: FileEntry| (info.path(&f).to_string(), f.length);
        info.files().iter().map(file).collect()
    };
    assert_eq!(listed(&extra), listed(&plain));
    entries[2].1 = Value::List(vec![Value::Bytes(b"..")]);
    assert_eq!(
        info_err(&after_a(Value::Dict(entries))),
        bad_component("..", NameError::DotName)
    );
}
