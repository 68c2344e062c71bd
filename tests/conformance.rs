//! Conformance: the hex examples of `spec/*.md` against the codec.
//!
//! Every fenced block whose info string is `hex KIND NAME` is decoded with
//! the decoder for KIND and compared with the entry NAME of [`table`];
//! valid units are re-encoded and must give back the same bytes. The table
//! and the spec must name exactly the same examples, so neither can drift.
//! The `limits` block is checked against `sta::limits` and `src/limits.rs`,
//! the `error-codes` block against `ErrorCode::name`.

use sta::limits;
use sta::meta::bencode::{self, BencodeError, Value};
use sta::meta::files::Listing;
use sta::meta::info::{self, FileError, NameError};
use sta::meta::paths::PathError;
use sta::meta::{FileEntry, Info, InfoError};
use sta::wire::FrameTooLarge;
use sta::wire::krpc::{self, Body as KBody, Query as KQuery, Response as KResponse};
use sta::wire::peer::{self, Block, Handshake, Message, PeerError};
use sta::wire::pex::{FLAG_REACHABLE, FLAG_SEED, Pex};
use sta::wire::tracker::{
    ErrorCode, ListEntry, Lookup, PeerEntry, Pieces, Request, Response, Vouched,
};
use sta::wire::ut_metadata::MetadataMsg;
use sta::wire::utp::{self, Header as UtpHeader, Kind as UtpKind, UtpError};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// Reading the spec

/// One `hex KIND NAME` block of the spec.
struct Example {
    place: String,
    kind: String,
    name: String,
    bytes: Vec<u8>,
}

/// A fenced block of any info string, with its raw lines.
struct Fenced {
    place: String,
    info: String,
    lines: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(file name, text)` of every `spec/*.md`, sorted by name.
fn spec_files() -> Vec<(String, String)> {
    let dir = root().join("spec");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("spec dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("spec file is UTF-8");
            (file_name(&p), text)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no spec/*.md found");
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every fenced block opened by exactly three backticks. Blocks inside a
/// longer fence (```` in README.md, which shows the block format) are
/// quoted text, not examples.
fn fenced_blocks() -> Vec<Fenced> {
    let mut out = Vec::new();
    for (file, text) in spec_files() {
        let mut open: Option<(usize, Fenced)> = None;
        for (n, line) in text.lines().enumerate() {
            let ticks = line.len() - line.trim_start_matches('`').len();
            match &mut open {
                None if ticks >= 3 => {
                    let block = Fenced {
                        place: format!("spec/{file}:{}", n + 1),
                        info: line[ticks..].trim().to_owned(),
                        lines: Vec::new(),
                    };
                    open = Some((ticks, block));
                }
                None => {}
                Some((fence, _)) if ticks >= *fence && line.trim_matches('`').is_empty() => {
                    let (fence, block) = open.take().unwrap();
                    if fence == 3 {
                        out.push(block);
                    }
                }
                Some((_, block)) => block.lines.push(line.to_owned()),
            }
        }
        if let Some((_, block)) = open {
            panic!("{}: fenced block never closed", block.place);
        }
    }
    out
}

fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    for block in fenced_blocks() {
        let words: Vec<&str> = block.info.split_whitespace().collect();
        if words.first() != Some(&"hex") {
            continue;
        }
        let [_, kind, name] = words[..] else {
            panic!("{}: info string must be `hex KIND NAME`", block.place);
        };
        let bytes = parse_hex(&block.lines, &block.place);
        out.push(Example {
            place: block.place,
            kind: kind.to_owned(),
            name: name.to_owned(),
            bytes,
        });
    }
    out
}

fn parse_hex(lines: &[String], place: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in lines {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for pair in line.split_whitespace() {
            let ok = pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit());
            assert!(ok, "{place}: `{pair}` is not a hex byte");
            bytes.push(u8::from_str_radix(pair, 16).unwrap());
        }
    }
    bytes
}

/// The `NAME = value` lines of the only block with info string `tag`.
fn key_values(tag: &str) -> BTreeMap<String, String> {
    let blocks: Vec<Fenced> = fenced_blocks()
        .into_iter()
        .filter(|b| b.info == tag)
        .collect();
    assert_eq!(blocks.len(), 1, "expected exactly one `{tag}` block");
    let mut out = BTreeMap::new();
    for line in blocks[0].lines.iter().map(|l| l.trim()) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("`{tag}` line `{line}` is not NAME = value"));
        let old = out.insert(k.trim().to_owned(), v.trim().to_owned());
        assert!(old.is_none(), "`{tag}`: {} listed twice", k.trim());
    }
    out
}

// ---------------------------------------------------------------------------
// What each example must decode to

#[derive(Debug)]
enum Expect {
    TrackerRequest(Request),
    TrackerResponse(Response),
    /// `Request::decode` must fail with this error code.
    TrackerRequestError(u16),
    Handshake(Handshake),
    Peer(Message<'static>),
    PeerError(PeerError),
    Bencode(Result<Value<'static>, BencodeError>),
    Info(Result<InfoOk, InfoError>),
    /// A KRPC datagram: decodes to this and re-encodes to the same bytes.
    Krpc(krpc::Message<'static>),
    /// A KRPC datagram refused with this error kind and reply code.
    KrpcError(krpc::ErrorKind, Option<i64>),
    /// A uTP header (BEP 29) with no extension and no payload, or the
    /// error `utp::decode` must give.
    Utp(Result<UtpHeader, UtpError>),
    /// A peer-wire frame carrying a BEP 9 `ut_metadata` message.
    UtMetadata(MetadataMsg<'static>),
    /// One whose `ut_metadata` body is refused (and ignored).
    UtMetadataError,
    /// A peer-wire frame carrying a BEP 11 `ut_pex` message.
    UtPex(Pex),
    UtPexError,
}

#[derive(Debug)]
struct InfoOk {
    name: &'static str,
    length: u64,
    piece_length: u32,
    num_pieces: u32,
    info_hash: &'static str,
    /// A tree's files, in list order: (path, length, offset, pad). `None`
    /// for one file.
    tree: Option<Vec<TreeFile>>,
}

type TreeFile = (&'static [&'static str], u64, u64, bool);

impl Expect {
    fn kind(&self) -> &'static str {
        match self {
            Expect::TrackerRequest(_) => "tracker-request",
            Expect::TrackerResponse(_) => "tracker-response",
            Expect::TrackerRequestError(_) => "tracker-request-error",
            Expect::Handshake(_) => "peer-handshake",
            Expect::Peer(_) => "peer",
            Expect::PeerError(_) => "peer-error",
            Expect::Bencode(_) => "bencode",
            Expect::Info(_) => "info-dict",
            Expect::Krpc(_) => "krpc",
            Expect::KrpcError(..) => "krpc-error",
            Expect::Utp(_) => "utp",
            Expect::UtMetadata(_) => "ut-metadata",
            Expect::UtMetadataError => "ut-metadata-error",
            Expect::UtPex(_) => "ut-pex",
            Expect::UtPexError => "ut-pex-error",
        }
    }
}

const HELLO_HASH: &str = "40df99cba56286d8a877cbeeb80ad1ae5816e2ac";
const EXACT_HASH: &str = "7fe0207f8afe9c3434460fb5f9e70794b47db130";
const RAGGED_HASH: &str = "a145e709d0b1422ea9d9916b123137db1a0bd6f6";
const ONE_PIECE_HASH: &str = "c4cb89b1c43d9c648b32e9a3d723e6e2b194189b";
/// tracker.md's directory `photos` (3 files); src/tracker/core_tests.rs
/// checks that its info dict has this hash.
const PHOTOS_HASH: &str = "078989fc626fc79a112f6cd82f611dfcbf7f954d";

fn h(hex: &str) -> [u8; 20] {
    info::from_hex(hex).expect("40 hex digits")
}

/// A 20-byte peer id from 20 ASCII characters.
fn pid(s: &str) -> [u8; 20] {
    s.as_bytes().try_into().expect("peer id of 20 bytes")
}

/// The info dict inside a `.torrent` of tests/data (`d4:info<dict>e`).
fn torrent_info(file: &str) -> Vec<u8> {
    let path = root().join("tests/data").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let inner = bytes
        .strip_prefix(b"d4:info")
        .and_then(|b| b.strip_suffix(b"e"))
        .expect("a torrent holding only an info dict");
    inner.to_vec()
}

fn err(code: ErrorCode, message: &str) -> Expect {
    Expect::TrackerResponse(Response::Error {
        code,
        message: message.to_owned(),
    })
}

fn bytes(s: &'static str) -> Value<'static> {
    Value::Bytes(s.as_bytes())
}

fn nested_lists(n: usize) -> Value<'static> {
    let mut v = Value::List(Vec::new());
    for _ in 1..n {
        v = Value::List(vec![v]);
    }
    v
}

fn info_ok(
    name: &'static str,
    length: u64,
    piece_length: u32,
    num_pieces: u32,
    info_hash: &'static str,
) -> Expect {
    Expect::Info(Ok(InfoOk {
        name,
        length,
        piece_length,
        num_pieces,
        info_hash,
        tree: None,
    }))
}

/// A valid tree of piece length 16 KiB.
fn tree_ok(
    name: &'static str,
    length: u64,
    num_pieces: u32,
    info_hash: &'static str,
    files: &[TreeFile],
) -> Expect {
    Expect::Info(Ok(InfoOk {
        name,
        length,
        piece_length: 16384,
        num_pieces,
        info_hash,
        tree: Some(files.to_vec()),
    }))
}

const NODE_A: &[u8; 20] = b"abcdefghij0123456789";
const NODE_M: &[u8; 20] = b"mnopqrstuvwxyz123456";

/// A KRPC message of transaction "aa".
fn kmsg(body: KBody<'static>) -> krpc::Message<'static> {
    krpc::Message {
        tid: b"aa",
        body,
        ip: None,
    }
}

const EXTENDED_PAYLOAD: &[u8] = b"\x00d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e\
11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei91e\
4:reqqi2000e11:upload_onlyi1e1:v19:stabench-lt/2.0.8.06:yourip4:\x7f\x00\x00\x01e";

fn table() -> Vec<(&'static str, Expect)> {
    use Expect::*;
    let block = Block {
        index: 1,
        begin: 16384,
        length: 16384,
    };
    let bad_len = |id, len| PeerError(self::PeerError::BadLength { id, len });
    let bad_name = |e| Info(Err(InfoError::BadName(e)));
    let bad_file = |index, error| Info(Err(InfoError::BadFile { index, error }));
    let bad_component = |c: &str, e| {
        Info(Err(InfoError::BadFile {
            index: 1,
            error: FileError::Path(PathError::Component(c.to_owned(), e)),
        }))
    };
    vec![
        // framing.md
        ("keep-alive", TrackerRequest(Request::KeepAlive)),
        ("tracker-frame-too-large", TrackerRequestError(5)),
        (
            "peer-frame-too-large",
            PeerError(self::PeerError::FrameTooLarge(FrameTooLarge {
                len: 262_145,
                max: 262_144,
            })),
        ),
        // tracker.md: requests
        (
            "hello",
            TrackerRequest(Request::Hello {
                version: 1,
                peer_id: pid("-ST0100-000000000001"),
                listen_port: 6881,
            }),
        ),
        (
            "announce-seeder",
            TrackerRequest(Request::Announce {
                info: torrent_info("hello_world.txt.torrent"),
                pieces: Pieces::All,
            }),
        ),
        (
            "announce-partial",
            TrackerRequest(Request::Announce {
                info: torrent_info("exact.bin.torrent"),
                pieces: Pieces::Bitfield(vec![0x80]),
            }),
        ),
        (
            "have",
            TrackerRequest(Request::Have {
                info_hash: h(HELLO_HASH),
                piece: 5,
            }),
        ),
        (
            "list",
            TrackerRequest(Request::List {
                offset: 0,
                limit: 100,
                filter: "iso".into(),
            }),
        ),
        (
            "list-everything-page-2",
            TrackerRequest(Request::List {
                offset: 1000,
                limit: 1000,
                filter: String::new(),
            }),
        ),
        (
            "get-meta-by-hash",
            TrackerRequest(Request::GetMeta(Lookup::Hash(h(HELLO_HASH)))),
        ),
        (
            "get-meta-by-name",
            TrackerRequest(Request::GetMeta(Lookup::Name("hello world.txt".into()))),
        ),
        (
            "get-peers",
            TrackerRequest(Request::GetPeers {
                info_hash: h(HELLO_HASH),
                max: 50,
                piece: None,
            }),
        ),
        (
            "get-peers-for-piece",
            TrackerRequest(Request::GetPeers {
                info_hash: h(EXACT_HASH),
                max: 200,
                piece: Some(3),
            }),
        ),
        (
            "leave",
            TrackerRequest(Request::Leave {
                info_hash: h(HELLO_HASH),
            }),
        ),
        (
            "vouch",
            TrackerRequest(Request::Vouch {
                info_hash: h(HELLO_HASH),
                peers: vec![Vouched {
                    peer_id: *b"-LT2080-MunAyFca4prF",
                    addr: "192.168.1.20:51413".parse().unwrap(),
                    seeder: true,
                }],
            }),
        ),
        ("accept-dials", TrackerRequest(Request::AcceptDials)),
        // tracker.md: responses
        ("ack", TrackerResponse(Response::Ack)),
        (
            "dial",
            TrackerResponse(Response::Dial {
                info_hash: h(HELLO_HASH),
                addr: "192.168.1.20:51413".parse().unwrap(),
            }),
        ),
        (
            "welcome",
            TrackerResponse(Response::Welcome {
                version: 1,
                idle_timeout_secs: 120,
            }),
        ),
        (
            "announced",
            TrackerResponse(Response::Announced {
                info_hash: h(HELLO_HASH),
            }),
        ),
        (
            "list-page",
            TrackerResponse(Response::ListPage {
                total: 2,
                entries: vec![
                    ListEntry {
                        info_hash: h(EXACT_HASH),
                        length: 65536,
                        piece_length: 32768,
                        peers: 3,
                        seeders: 1,
                        files: 1,
                        name: "exact.bin".into(),
                    },
                    ListEntry {
                        info_hash: h(HELLO_HASH),
                        length: 23,
                        piece_length: 16384,
                        peers: 1,
                        seeders: 1,
                        files: 1,
                        name: "hello world.txt".into(),
                    },
                ],
            }),
        ),
        (
            "list-page-directory",
            TrackerResponse(Response::ListPage {
                total: 1,
                entries: vec![ListEntry {
                    info_hash: h(PHOTOS_HASH),
                    length: 6000,
                    piece_length: 16384,
                    peers: 2,
                    seeders: 1,
                    files: 3,
                    name: "photos".into(),
                }],
            }),
        ),
        (
            "list-page-past-the-end",
            TrackerResponse(Response::ListPage {
                total: 5,
                entries: vec![],
            }),
        ),
        (
            "meta",
            TrackerResponse(Response::Meta {
                info: torrent_info("hello_world.txt.torrent"),
            }),
        ),
        (
            "peers",
            TrackerResponse(Response::Peers {
                info_hash: h(EXACT_HASH),
                peers: vec![
                    PeerEntry {
                        peer_id: pid("-ST0100-000000000002"),
                        addr: "192.168.1.10:6881".parse().unwrap(),
                        pieces: Pieces::All,
                    },
                    PeerEntry {
                        peer_id: pid("-LT2080-MunAyFca4prF"),
                        addr: "[2001:db8::7]:51413".parse().unwrap(),
                        pieces: Pieces::Bitfield(vec![0x80]),
                    },
                ],
            }),
        ),
        (
            "peers-none",
            TrackerResponse(Response::Peers {
                info_hash: h(HELLO_HASH),
                peers: vec![],
            }),
        ),
        (
            "keep-alive-from-tracker",
            TrackerResponse(Response::KeepAlive),
        ),
        (
            "error-file-not-found",
            err(ErrorCode::FILE_NOT_FOUND, "file not found"),
        ),
        (
            "error-invalid-parameters",
            err(ErrorCode::INVALID_PARAMETERS, "invalid parameters"),
        ),
        (
            "error-piece-out-of-range",
            err(ErrorCode::PIECE_OUT_OF_RANGE, "piece index out of range"),
        ),
        (
            "error-ambiguous-name",
            err(
                ErrorCode::AMBIGUOUS_NAME,
                &format!("'disk.img' names 2 files: {EXACT_HASH}, {RAGGED_HASH}; ask by info hash"),
            ),
        ),
        (
            "error-frame-too-large",
            err(ErrorCode::FRAME_TOO_LARGE, "frame too large"),
        ),
        (
            "error-unknown-message",
            err(ErrorCode::UNKNOWN_MESSAGE, "unknown message id 0x0a"),
        ),
        (
            "error-unsupported-version",
            err(ErrorCode::UNSUPPORTED_VERSION, "unsupported version"),
        ),
        (
            "error-limit-reached",
            err(ErrorCode::LIMIT_REACHED, "limit reached"),
        ),
        (
            "error-hello-required",
            err(ErrorCode::HELLO_REQUIRED, "hello required"),
        ),
        (
            "error-invalid-metadata",
            err(ErrorCode::INVALID_METADATA, "invalid metadata"),
        ),
        (
            "error-idle-timeout",
            err(ErrorCode::IDLE_TIMEOUT, "idle timeout"),
        ),
        ("error-banned", err(ErrorCode::BANNED, "banned")),
        (
            "error-rate-limited",
            err(ErrorCode::RATE_LIMITED, "rate limited"),
        ),
        (
            "error-private-file",
            err(ErrorCode::PRIVATE_FILE, "private file"),
        ),
        ("error-unknown-code", err(ErrorCode(300), "")),
        // tracker.md: refused requests
        ("hello-truncated", TrackerRequestError(2)),
        ("hello-trailing-byte", TrackerRequestError(2)),
        ("unknown-request-id", TrackerRequestError(6)),
        ("response-id-as-request", TrackerRequestError(6)),
        ("list-bad-utf8", TrackerRequestError(2)),
        ("list-filter-too-long", TrackerRequestError(2)),
        ("get-meta-bad-tag", TrackerRequestError(2)),
        ("get-peers-bad-filter-tag", TrackerRequestError(2)),
        ("announce-bad-pieces-tag", TrackerRequestError(2)),
        ("announce-info-beyond-frame", TrackerRequestError(2)),
        // peer.md: handshakes
        (
            "handshake-sta",
            Handshake(peer::Handshake::new(
                h(HELLO_HASH),
                pid("-ST0100-000000000001"),
            )),
        ),
        (
            "handshake-to-libtorrent",
            Handshake(peer::Handshake {
                reserved: [0, 0, 0, 0, 0, 0x10, 0, 0x04],
                info_hash: h(ONE_PIECE_HASH),
                peer_id: pid("-VEC001-000000000000"),
            }),
        ),
        (
            "handshake-from-libtorrent",
            Handshake(peer::Handshake {
                reserved: [0, 0, 0, 0, 0, 0x10, 0, 0x05],
                info_hash: h(ONE_PIECE_HASH),
                peer_id: pid("-LT2080-MunAyFca4prF"),
            }),
        ),
        (
            "handshake-http-request",
            PeerError(self::PeerError::BadHandshake),
        ),
        (
            "handshake-wrong-protocol",
            PeerError(self::PeerError::BadHandshake),
        ),
        // peer.md: messages
        ("keep-alive-peer", Peer(Message::KeepAlive)),
        ("choke", Peer(Message::Choke)),
        ("unchoke", Peer(Message::Unchoke)),
        ("interested", Peer(Message::Interested)),
        ("not-interested", Peer(Message::NotInterested)),
        ("peer-have", Peer(Message::Have(5))),
        ("bitfield", Peer(Message::Bitfield(&[0xf8]))),
        ("request", Peer(Message::Request(block))),
        (
            "request-from-capture",
            Peer(Message::Request(Block {
                index: 0,
                begin: 0,
                length: 1000,
            })),
        ),
        (
            "piece",
            Peer(Message::Piece {
                index: 0,
                begin: 0,
                block: b"data",
            }),
        ),
        ("cancel", Peer(Message::Cancel(block))),
        ("suggest", Peer(Message::Suggest(2))),
        ("have-all", Peer(Message::HaveAll)),
        ("have-none", Peer(Message::HaveNone)),
        ("reject", Peer(Message::Reject(block))),
        ("allowed-fast", Peer(Message::AllowedFast(0))),
        (
            "extended-from-libtorrent",
            Peer(Message::Unknown {
                id: 20,
                payload: EXTENDED_PAYLOAD,
            }),
        ),
        (
            "extension-handshake-sta",
            Peer(Message::Unknown {
                id: 20,
                payload: b"\x00d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e4:reqqi256e1:v9:STA 0.1.0e",
            }),
        ),
        ("metadata-request", UtMetadata(MetadataMsg::Request(0))),
        (
            "metadata-data",
            UtMetadata(MetadataMsg::Data {
                piece: 1,
                total_size: 16389,
                data: b"d4:xe",
            }),
        ),
        ("metadata-reject", UtMetadata(MetadataMsg::Reject(3))),
        ("metadata-unknown-type", UtMetadataError),
        (
            "pex-from-libtorrent",
            UtPex(Pex {
                added: vec![
                    (addr("10.0.0.1:6881"), FLAG_SEED | FLAG_REACHABLE),
                    (addr("[2001:db8::1]:51413"), 0),
                ],
                dropped: vec![addr("10.0.0.2:6882")],
            }),
        ),
        ("pex-torn-address", UtPexError),
        (
            "unknown-port",
            Peer(Message::Unknown {
                id: 9,
                payload: &[0x1a, 0xe1],
            }),
        ),
        ("choke-with-payload", bad_len(0, 1)),
        ("have-short", bad_len(4, 3)),
        ("request-long", bad_len(6, 13)),
        ("piece-without-begin", bad_len(7, 4)),
        ("have-all-with-payload", bad_len(0x0e, 1)),
        // metadata.md: bencode
        ("int", Bencode(Ok(Value::Int(42)))),
        ("int-negative", Bencode(Ok(Value::Int(-7)))),
        ("int-zero", Bencode(Ok(Value::Int(0)))),
        ("int-max", Bencode(Ok(Value::Int(i64::MAX)))),
        ("string", Bencode(Ok(bytes("spam")))),
        ("string-empty", Bencode(Ok(bytes("")))),
        (
            "bencode-list",
            Bencode(Ok(Value::List(vec![bytes("spam"), Value::Int(42)]))),
        ),
        (
            "dict",
            Bencode(Ok(Value::Dict(vec![
                (b"cow".as_slice(), bytes("moo")),
                (b"spam".as_slice(), bytes("eggs")),
            ]))),
        ),
        ("nested-33-lists", Bencode(Ok(nested_lists(33)))),
        ("nested-34-lists", Bencode(Err(BencodeError::TooDeep))),
        (
            "int-leading-zero",
            Bencode(Err(BencodeError::BadInteger { at: 1 })),
        ),
        (
            "int-negative-zero",
            Bencode(Err(BencodeError::BadInteger { at: 1 })),
        ),
        (
            "int-empty",
            Bencode(Err(BencodeError::BadInteger { at: 1 })),
        ),
        (
            "int-overflow",
            Bencode(Err(BencodeError::BadInteger { at: 1 })),
        ),
        (
            "string-length-leading-zero",
            Bencode(Err(BencodeError::BadInteger { at: 0 })),
        ),
        (
            "string-negative-length",
            Bencode(Err(BencodeError::Unexpected { at: 0 })),
        ),
        ("string-short", Bencode(Err(BencodeError::UnexpectedEnd))),
        (
            "list-unterminated",
            Bencode(Err(BencodeError::UnexpectedEnd)),
        ),
        (
            "dict-unsorted",
            Bencode(Err(BencodeError::UnsortedKey { at: 7 })),
        ),
        (
            "dict-repeated-key",
            Bencode(Err(BencodeError::UnsortedKey { at: 7 })),
        ),
        (
            "dict-integer-key",
            Bencode(Err(BencodeError::Unexpected { at: 1 })),
        ),
        (
            "trailing-data",
            Bencode(Err(BencodeError::TrailingData { at: 3 })),
        ),
        // metadata.md: info dicts (the first five made by libtorrent 2.0.8,
        // hashes from tests/data/info_hashes.json)
        (
            "info-empty-ish",
            info_ok(
                "empty-ish.bin",
                1,
                16384,
                1,
                "e1d2bdaa7f588efe09b179642513cbb305285ecb",
            ),
        ),
        (
            "info-one-piece",
            info_ok("one-piece.bin", 1000, 16384, 1, ONE_PIECE_HASH),
        ),
        (
            "info-exact",
            info_ok("exact.bin", 65536, 32768, 2, EXACT_HASH),
        ),
        (
            "info-ragged",
            info_ok("ragged.bin", 2_633_785, 524_288, 6, RAGGED_HASH),
        ),
        (
            "info-hello-world",
            info_ok("hello world.txt", 23, 16384, 1, HELLO_HASH),
        ),
        (
            "info-extra-key",
            info_ok(
                "hello world.txt",
                23,
                16384,
                1,
                "cd4e98c34d8b8dfc5af5d874485f1d2decfc31eb",
            ),
        ),
        (
            "info-ssl-cert",
            info_ok(
                "hello world.txt",
                23,
                16384,
                1,
                "4ff1481c63bafe55891f024ffa6b4b7301361f3f",
            ),
        ),
        (
            "info-ssl-cert-empty",
            Expect::Info(Err(InfoError::Missing("ssl-cert"))),
        ),
        (
            "info-utf8-name",
            info_ok(
                "café.txt",
                1,
                16384,
                1,
                "f387dd4e9649f0c53bfd97c9afb1b5554c86a74a",
            ),
        ),
        ("info-name-dot-dot", bad_name(NameError::DotName)),
        ("info-name-dot", bad_name(NameError::DotName)),
        ("info-name-slash", bad_name(NameError::Separator)),
        ("info-name-backslash", bad_name(NameError::Separator)),
        ("info-name-empty", bad_name(NameError::Empty)),
        ("info-name-control", bad_name(NameError::ControlCharacter)),
        ("info-name-not-utf8", bad_name(NameError::NotUtf8)),
        (
            "info-piece-length-not-power-of-two",
            Info(Err(InfoError::PieceLengthNotPowerOfTwo(20000))),
        ),
        (
            "info-piece-length-too-small",
            Info(Err(InfoError::PieceLengthOutOfRange(8192))),
        ),
        (
            "info-piece-length-too-large",
            Info(Err(InfoError::PieceLengthOutOfRange(33_554_432))),
        ),
        ("info-length-zero", Info(Err(InfoError::BadLength(0)))),
        ("info-length-negative", Info(Err(InfoError::BadLength(-5)))),
        (
            "info-pieces-not-multiple-of-20",
            Info(Err(InfoError::PiecesNotMultipleOf20(19))),
        ),
        (
            "info-piece-count-mismatch",
            Info(Err(InfoError::PieceCountMismatch {
                expected: 2,
                found: 1,
            })),
        ),
        (
            "info-too-many-pieces",
            Info(Err(InfoError::TooManyPieces(262_145))),
        ),
        ("info-empty-files", Info(Err(InfoError::NoFiles))),
        // metadata.md: trees
        (
            "info-tree-two-files",
            tree_ok(
                "dir",
                8,
                1,
                "3b4c6a546b79632708803ecf98263ec97dc93a23",
                &[(&["a.txt"], 3, 0, false), (&["sub", "b.bin"], 5, 3, false)],
            ),
        ),
        (
            "info-tree-empty-file",
            tree_ok(
                "dir",
                1,
                1,
                "76fb98f52246cba096c589aa32c9698516f2d2e9",
                &[
                    (&["empty"], 0, 0, false),
                    (&["données", "日本.txt"], 1, 0, false),
                ],
            ),
        ),
        (
            "info-tree-pad",
            tree_ok(
                "dir",
                32771,
                3,
                "6d7636ab64cbab11a2bcb49bfa636d4dd12a1230",
                &[
                    (&["a"], 5, 0, false),
                    (&[".pad", "16379"], 16379, 5, true),
                    (&["b"], 5, 16384, false),
                    (&[".pad", "16379"], 16379, 16389, true),
                    (&["c"], 3, 32768, false),
                ],
            ),
        ),
        ("info-tree-dot-dot", bad_component("..", NameError::DotName)),
        ("info-tree-dot", bad_component(".", NameError::DotName)),
        (
            "info-tree-absolute",
            bad_component("/etc", NameError::Separator),
        ),
        (
            "info-tree-slash",
            bad_component("sub/b.bin", NameError::Separator),
        ),
        (
            "info-tree-backslash",
            bad_component("..\\b.bin", NameError::Separator),
        ),
        (
            "info-tree-empty-component",
            bad_component("", NameError::Empty),
        ),
        (
            "info-tree-empty-path",
            bad_file(1, FileError::Path(PathError::Empty)),
        ),
        (
            "info-tree-control",
            bad_component("b\nc", NameError::ControlCharacter),
        ),
        ("info-tree-not-utf8", bad_file(1, FileError::NotUtf8)),
        (
            "info-tree-too-deep",
            bad_file(1, FileError::Path(PathError::TooDeep(65))),
        ),
        (
            "info-tree-duplicate",
            Info(Err(InfoError::BadPath(PathError::Duplicate(
                "sub/b.bin".into(),
            )))),
        ),
        (
            "info-tree-file-is-directory",
            Info(Err(InfoError::BadPath(PathError::FileIsDirectory(
                "a.txt".into(),
            )))),
        ),
        ("info-tree-symlink", bad_file(1, FileError::Symlink)),
        (
            "info-tree-negative-length",
            bad_file(1, FileError::BadLength(-5)),
        ),
        (
            "info-tree-length-as-string",
            bad_file(1, FileError::Missing("length")),
        ),
        ("info-tree-entry-not-dict", bad_file(1, FileError::NotADict)),
        (
            "info-tree-path-as-string",
            bad_file(1, FileError::Missing("path")),
        ),
        ("info-tree-all-empty", Info(Err(InfoError::BadLength(0)))),
        (
            "info-tree-files-not-list",
            Info(Err(InfoError::Missing("files"))),
        ),
        (
            "info-tree-length-and-files",
            Info(Err(InfoError::LengthAndFiles)),
        ),
        (
            "info-missing-pieces",
            Info(Err(InfoError::Missing("pieces"))),
        ),
        (
            "info-length-as-string",
            Info(Err(InfoError::Missing("length"))),
        ),
        ("info-not-a-dict", Info(Err(InfoError::NotADict))),
        ("utp-syn", Utp(Ok(utp_syn()))),
        (
            "utp-reset",
            Utp(Ok(UtpHeader::reset_for(&utp_syn(), 1_000_250, 7))),
        ),
        ("utp-version-0", Utp(Err(UtpError::BadVersion(0)))),
        (
            "info-unsorted-keys",
            Info(Err(InfoError::Bencode(BencodeError::UnsortedKey {
                at: 10,
            }))),
        ),
        // bittorrent.md: DHT
        (
            "krpc-ping",
            Krpc(kmsg(KBody::Query(KQuery::Ping { id: *NODE_A }))),
        ),
        (
            "krpc-ping-response",
            Krpc(kmsg(KBody::Response(KResponse {
                id: *NODE_M,
                ..KResponse::default()
            }))),
        ),
        (
            "krpc-find-node",
            Krpc(kmsg(KBody::Query(KQuery::FindNode {
                id: *NODE_A,
                target: *NODE_M,
            }))),
        ),
        (
            "krpc-find-node-response",
            Krpc(kmsg(KBody::Response(KResponse {
                id: *b"0123456789abcdefghij",
                nodes: vec![(*NODE_M, "10.0.0.2:6881".parse().unwrap())],
                ..KResponse::default()
            }))),
        ),
        (
            "krpc-get-peers",
            Krpc(kmsg(KBody::Query(KQuery::GetPeers {
                id: *NODE_A,
                info_hash: *NODE_M,
            }))),
        ),
        (
            "krpc-get-peers-values",
            Krpc(kmsg(KBody::Response(KResponse {
                id: *NODE_A,
                nodes: Vec::new(),
                values: vec![
                    "10.0.0.3:6881".parse().unwrap(),
                    "10.0.0.4:6882".parse().unwrap(),
                ],
                token: Some(b"aoeusnth"),
            }))),
        ),
        (
            "krpc-announce-peer",
            Krpc(kmsg(KBody::Query(KQuery::AnnouncePeer {
                id: *NODE_A,
                info_hash: *NODE_M,
                port: 6881,
                implied_port: true,
                token: b"aoeusnth",
            }))),
        ),
        (
            "krpc-error",
            Krpc(kmsg(KBody::Error {
                code: 203,
                message: b"Protocol Error",
            })),
        ),
        (
            "krpc-unknown-method",
            KrpcError(krpc::ErrorKind::UnknownMethod, Some(204)),
        ),
        (
            "krpc-short-id",
            KrpcError(krpc::ErrorKind::Invalid("id"), Some(203)),
        ),
    ]
}

/// bittorrent.md's uTP SYN.
fn utp_syn() -> UtpHeader {
    UtpHeader {
        kind: UtpKind::Syn,
        extension: 0,
        connection_id: 12345,
        timestamp_us: 1_000_000,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr: 1,
        ack_nr: 0,
    }
}

// ---------------------------------------------------------------------------
// Checking

type Decoded<T, E> = Result<Option<(T, usize)>, E>;

/// A valid unit: every proper prefix needs more bytes, the whole decodes
/// using exactly all bytes, and the same holds with a next frame behind it.
/// `decode` returns the decoded value and the bytes it used.
fn decode_whole<'a, T, E: Debug>(
    bytes: &'a [u8],
    decode: impl Fn(&'a [u8]) -> Decoded<T, E>,
    used_of: impl Fn(&[u8]) -> Result<Option<usize>, E>,
) -> Result<T, String> {
    for k in 0..bytes.len() {
        match used_of(&bytes[..k]) {
            Ok(None) => {}
            Ok(Some(used)) => {
                return Err(format!(
                    "a prefix of {k} bytes already decodes (used {used})"
                ));
            }
            Err(e) => return Err(format!("a prefix of {k} bytes is refused: {e:?}")),
        }
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0, 0, 0, 0]);
    match used_of(&longer) {
        Ok(Some(used)) if used == bytes.len() => {}
        other => return Err(format!("followed by a keep-alive, decodes as {other:?}")),
    }
    match decode(bytes) {
        Ok(Some((v, used))) if used == bytes.len() => Ok(v),
        Ok(Some((_, used))) => Err(format!("used {used} of {} bytes", bytes.len())),
        Ok(None) => Err("needs more bytes".into()),
        Err(e) => Err(format!("refused: {e:?}")),
    }
}

/// `decode_whole` for a decoder function `$f`.
macro_rules! whole {
    ($b:expr, $f:path) => {
        decode_whole($b, $f, |x: &[u8]| $f(x).map(|o| o.map(|(_, used)| used)))
    };
}

fn same<T: PartialEq + Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}:\n   got {got:?}\n  want {want:?}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x} "))
        .collect::<String>()
}

fn same_bytes(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}:\n   got {}\n  want {}",
            hex(got),
            hex(want)
        ))
    }
}

fn addr(s: &str) -> std::net::SocketAddr {
    s.parse().expect("an address")
}

/// An extended message frame: its extended id and body.
fn extended(b: &[u8]) -> Result<(u8, &[u8]), String> {
    match whole!(b, Message::decode)? {
        Message::Unknown { id: 20, payload } if !payload.is_empty() => {
            Ok((payload[0], &payload[1..]))
        }
        other => Err(format!("not an extended message: {other:?}")),
    }
}

fn check(ex: &Example, want: &Expect) -> Result<(), String> {
    let b = &ex.bytes[..];
    match want {
        Expect::UtMetadata(want) => {
            let (id, body) = extended(b)?;
            let got = MetadataMsg::decode(body).map_err(|e| format!("refused: {e}"))?;
            same("decoded", &got, want)?;
            let mut out = Vec::new();
            want.encode(id, &mut out);
            same_bytes("encoded", &out, b)
        }
        Expect::UtMetadataError => {
            let (_, body) = extended(b)?;
            match MetadataMsg::decode(body) {
                Err(_) => Ok(()),
                Ok(m) => Err(format!("accepted: {m:?}")),
            }
        }
        Expect::UtPex(want) => {
            let (id, body) = extended(b)?;
            let got = Pex::decode(body).map_err(|e| format!("refused: {e}"))?;
            same("decoded", &got, want)?;
            let mut out = Vec::new();
            want.encode(id, &mut out);
            same_bytes("encoded", &out, b)
        }
        Expect::UtPexError => {
            let (_, body) = extended(b)?;
            match Pex::decode(body) {
                Err(_) => Ok(()),
                Ok(m) => Err(format!("accepted: {m:?}")),
            }
        }
        Expect::TrackerRequest(want) => {
            let got = whole!(b, Request::decode)?;
            same("decoded", &got, want)?;
            let mut out = Vec::new();
            want.encode(&mut out);
            same_bytes("encoded", &out, b)
        }
        Expect::TrackerResponse(want) => {
            let got = whole!(b, Response::decode)?;
            same("decoded", &got, want)?;
            let mut out = Vec::new();
            want.encode(&mut out);
            same_bytes("encoded", &out, b)
        }
        Expect::TrackerRequestError(code) => match Request::decode(b) {
            Err(e) => {
                same("error code", e.code, ErrorCode(*code))?;
                // Code 5 loses the stream; every other refusal skips the frame.
                let used = if *code == 5 { None } else { Some(b.len()) };
                same("bytes to skip", e.used, used)
            }
            Ok(got) => Err(format!("accepted: {got:?}")),
        },
        Expect::Handshake(want) => {
            let got = whole!(b, Handshake::decode)?;
            same("decoded", &got, want)?;
            let mut out = Vec::new();
            want.encode(&mut out);
            same_bytes("encoded", &out, b)?;
            same(
                "supports_fast",
                got.supports_fast(),
                got.reserved[7] & 0x04 != 0,
            )
        }
        Expect::Peer(want) => {
            let got = whole!(b, Message::decode)?;
            same("decoded", &got, want)?;
            let mut out = Vec::new();
            want.encode(&mut out);
            same_bytes("encoded", &out, b)?;
            if let Message::Piece {
                index,
                begin,
                block,
            } = got
            {
                let header = peer::piece_header(index, begin, block.len() as u32);
                same_bytes("piece_header", &header, &b[..13])?;
            }
            Ok(())
        }
        Expect::PeerError(want) => {
            let got = if *want == PeerError::BadHandshake {
                Handshake::decode(b).map(|o| o.map(|(hs, n)| format!("{hs:?} using {n}")))
            } else {
                Message::decode(b).map(|o| o.map(|(m, n)| format!("{m:?} using {n}")))
            };
            same("result", got, Err(*want))
        }
        Expect::Bencode(want) => {
            same("decoded", &bencode::decode(b), want)?;
            if let Ok(v) = want {
                same_bytes("encoded", &v.to_bytes(), b)?;
            }
            Ok(())
        }
        Expect::Krpc(want) => {
            same("decoded", &krpc::Message::decode(b), &Ok(want.clone()))?;
            same_bytes("encoded", &want.to_vec(), b)
        }
        Expect::KrpcError(kind, code) => match krpc::Message::decode(b) {
            Err(e) => {
                same("error", e.kind, *kind)?;
                same("reply code", e.reply_code(), *code)
            }
            Ok(got) => Err(format!("accepted: {got:?}")),
        },
        Expect::Utp(Err(want)) => same("result", utp::decode(b).err(), Some(*want)),
        Expect::Utp(Ok(want)) => {
            let got = utp::decode(b).map_err(|e| format!("refused: {e}"))?;
            same("header", &got.header, want)?;
            same("rest", got.extensions.len() + got.payload.len(), 0)?;
            same_bytes("encoded", &want.encode(), b)
        }
        Expect::Info(Err(want)) => same("result", Info::from_bencoded(b).err(), Some(want.clone())),
        Expect::Info(Ok(want)) => {
            let got = Info::from_bencoded(b).map_err(|e| format!("refused: {e:?}"))?;
            same("name", got.name.as_str(), want.name)?;
            same("length", got.length, want.length)?;
            same("piece length", got.piece_length, want.piece_length)?;
            same("piece count", got.num_pieces(), want.num_pieces)?;
            same(
                "info hash",
                info::to_hex(&got.info_hash).as_str(),
                want.info_hash,
            )?;
            same_bytes("kept bytes", &got.bencoded, b)?;
            same("ssl-cert", got.ssl_cert(), ssl_cert_of(b).as_deref())?;
            let keys = match bencode::decode(b) {
                Ok(Value::Dict(entries)) => entries.len(),
                _ => 0,
            };
            if let Some(tree) = &want.tree {
                return check_tree(&got, tree, keys, b);
            }
            same("is_multi", got.is_multi(), false)?;
            same(
                "files",
                files_of(&got),
                vec![(String::new(), want.length, 0, false)],
            )?;
            // Without extra keys, building the dict from its fields must
            // give back the same bytes (and so the same hash).
            if keys == 4 {
                let built = Info::new(
                    &got.name,
                    got.length,
                    got.piece_length,
                    got.pieces().to_vec(),
                )
                .map_err(|e| format!("Info::new refused: {e:?}"))?;
                same_bytes("Info::new", &built.bencoded, b)?;
            }
            Ok(())
        }
    }
}

/// Each file of `info` as (path joined with `/`, length, offset, pad).
fn files_of(info: &Info) -> Vec<(String, u64, u64, bool)> {
    let file = |f: FileEntry| (info.path(&f).to_string(), f.length, f.offset, f.pad);
    info.files().iter().map(file).collect()
}

/// A valid tree: its files as listed, and, with the four keys and no pad
/// file (so no `attr`), `Info::new_tree` builds the same bytes.
fn check_tree(got: &Info, want: &[TreeFile], keys: usize, b: &[u8]) -> Result<(), String> {
    same("is_multi", got.is_multi(), true)?;
    let files: Vec<(String, u64, u64, bool)> = want
        .iter()
        .map(|&(path, length, offset, pad)| (path.join("/"), length, offset, pad))
        .collect();
    same("files", files_of(got), files.clone())?;
    let real = want.iter().filter(|f| !f.3).count();
    same("file_count", got.file_count(), real)?;
    if keys == 4 && real == want.len() {
        let list: Listing = files
            .into_iter()
            .map(|(path, length, ..)| (path, length))
            .collect();
        let built = Info::new_tree(&got.name, &list, got.piece_length, got.pieces().to_vec())
            .map_err(|e| format!("Info::new_tree refused: {e:?}"))?;
        same_bytes("Info::new_tree", &built.bencoded, b)?;
    }
    Ok(())
}

#[test]
fn spec_examples_match_the_codec() {
    let examples = examples();
    let table: BTreeMap<&str, Expect> = table().into_iter().collect();
    let mut failures = Vec::new();
    for ex in &examples {
        let Some(want) = table.get(ex.name.as_str()) else {
            continue; // reported by spec_and_table_name_the_same_examples
        };
        if want.kind() != ex.kind {
            failures.push(format!(
                "{} {}: spec says kind {}, table says {}",
                ex.place,
                ex.name,
                ex.kind,
                want.kind()
            ));
            continue;
        }
        if let Err(why) = check(ex, want) {
            failures.push(format!("{} {} ({}): {why}", ex.place, ex.name, ex.kind));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples disagree with the codec:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

#[test]
fn spec_and_table_name_the_same_examples() {
    const KINDS: [&str; 15] = [
        "ut-metadata",
        "ut-metadata-error",
        "ut-pex",
        "ut-pex-error",
        "tracker-request",
        "tracker-response",
        "tracker-request-error",
        "peer-handshake",
        "peer",
        "peer-error",
        "bencode",
        "info-dict",
        "krpc",
        "krpc-error",
        "utp",
    ];
    let mut problems = Vec::new();
    let mut in_spec: BTreeMap<String, String> = BTreeMap::new();
    for ex in examples() {
        if !KINDS.contains(&ex.kind.as_str()) {
            problems.push(format!("{}: unknown kind {}", ex.place, ex.kind));
        }
        if ex.bytes.is_empty() {
            problems.push(format!("{}: {} has no bytes", ex.place, ex.name));
        }
        if let Some(first) = in_spec.insert(ex.name.clone(), ex.place.clone()) {
            problems.push(format!(
                "{}: name {} already used at {first}",
                ex.place, ex.name
            ));
        }
    }
    let mut in_table = BTreeSet::new();
    for (name, _) in table() {
        if !in_table.insert(name) {
            problems.push(format!("table: {name} listed twice"));
        }
        if !in_spec.contains_key(name) {
            problems.push(format!("table: {name} has no example in spec/"));
        }
    }
    for (name, place) in &in_spec {
        if !in_table.contains(name.as_str()) {
            problems.push(format!("{place}: {name} has no entry in the test table"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every message of both protocols has at least one example.
#[test]
fn every_message_has_an_example() {
    let table = table();
    let mut seen = BTreeSet::new();
    for (_, want) in &table {
        let tag = match want {
            Expect::TrackerRequest(r) => format!("req {}", variant(r)),
            Expect::TrackerResponse(Response::Error { code, .. }) => format!("error {}", code.0),
            Expect::TrackerResponse(r) => format!("resp {}", variant(r)),
            Expect::Peer(m) => format!("peer {}", variant(m)),
            Expect::Handshake(_) => "handshake".into(),
            _ => continue,
        };
        seen.insert(tag);
    }
    let mut wanted: Vec<String> = [
        "req KeepAlive",
        "req Hello",
        "req Announce",
        "req Have",
        "req List",
        "req GetMeta",
        "req GetPeers",
        "req Leave",
        "resp KeepAlive",
        "resp Ack",
        "resp Welcome",
        "resp Announced",
        "resp ListPage",
        "resp Meta",
        "resp Peers",
        "handshake",
        "peer KeepAlive",
        "peer Choke",
        "peer Unchoke",
        "peer Interested",
        "peer NotInterested",
        "peer Have",
        "peer Bitfield",
        "peer Request",
        "peer Piece",
        "peer Cancel",
        "peer Suggest",
        "peer HaveAll",
        "peer HaveNone",
        "peer Reject",
        "peer AllowedFast",
        "peer Unknown",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wanted.extend((1..=11).map(|c| format!("error {c}")));
    let missing: Vec<&String> = wanted.iter().filter(|w| !seen.contains(*w)).collect();
    assert!(missing.is_empty(), "no example for {missing:?}");
}

/// The variant name of a value, from its `Debug` form.
fn variant(v: &impl Debug) -> String {
    let text = format!("{v:?}");
    let end = text
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .unwrap_or(text.len());
    text[..end].to_owned()
}

#[test]
fn error_code_names_match_the_spec() {
    let spec = key_values("error-codes");
    let known = [
        ErrorCode::FILE_NOT_FOUND,
        ErrorCode::INVALID_PARAMETERS,
        ErrorCode::PIECE_OUT_OF_RANGE,
        ErrorCode::AMBIGUOUS_NAME,
        ErrorCode::FRAME_TOO_LARGE,
        ErrorCode::UNKNOWN_MESSAGE,
        ErrorCode::UNSUPPORTED_VERSION,
        ErrorCode::LIMIT_REACHED,
        ErrorCode::HELLO_REQUIRED,
        ErrorCode::INVALID_METADATA,
        ErrorCode::IDLE_TIMEOUT,
        ErrorCode::BANNED,
        ErrorCode::RATE_LIMITED,
        ErrorCode::PRIVATE_FILE,
    ];
    let codes: BTreeSet<u16> = spec
        .keys()
        .map(|k| {
            k.parse()
                .unwrap_or_else(|_| panic!("error code {k} is not a number"))
        })
        .collect();
    let consts: BTreeSet<u16> = known.iter().map(|c| c.0).collect();
    assert_eq!(codes, consts, "codes in spec vs ErrorCode constants");
    for (code, name) in &spec {
        let code: u16 = code.parse().unwrap();
        assert_eq!(ErrorCode(code).name(), name, "name of error code {code}");
    }
}

/// The `ssl-cert` of an info dict, read with the generic decoder: what
/// `Info::ssl_cert` must give.
fn ssl_cert_of(b: &[u8]) -> Option<Vec<u8>> {
    let v = bencode::decode(b).ok()?;
    v.get(b"ssl-cert")
        .and_then(Value::as_bytes)
        .map(<[u8]>::to_vec)
}

/// The constants of `src/limits.rs`, by a line scan of
/// `pub const NAME: TYPE = a * b * ...;`.
fn limits_in_source() -> BTreeMap<String, u64> {
    let path = root().join("src/limits.rs");
    let text = std::fs::read_to_string(&path).expect("src/limits.rs");
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let Some(decl) = line.strip_prefix("pub const ") else {
            continue;
        };
        let (name, rest) = decl.split_once(':').expect("pub const NAME: TYPE = EXPR;");
        let expr = rest
            .split_once('=')
            .and_then(|(_, e)| e.trim().strip_suffix(';'))
            .unwrap_or_else(|| panic!("cannot read the value of {name}"));
        let value = expr
            .split('*')
            .map(|f| {
                let f = f.trim().replace('_', "");
                f.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name}: `{f}` is not a plain integer"))
            })
            .product();
        out.insert(name.trim().to_owned(), value);
    }
    out
}

fn limits_in_crate() -> BTreeMap<String, u64> {
    use limits::*;
    [
        ("MAX_TRACKER_FRAME", u64::from(MAX_TRACKER_FRAME)),
        ("MAX_PEER_FRAME", u64::from(MAX_PEER_FRAME)),
        ("BLOCK_SIZE", u64::from(BLOCK_SIZE)),
        ("MAX_REQUEST_LEN", u64::from(MAX_REQUEST_LEN)),
        ("MIN_PIECE_LENGTH", u64::from(MIN_PIECE_LENGTH)),
        ("MAX_PIECE_LENGTH", u64::from(MAX_PIECE_LENGTH)),
        ("DEFAULT_PIECE_LENGTH", u64::from(DEFAULT_PIECE_LENGTH)),
        ("MAX_PIECES", u64::from(MAX_PIECES)),
        ("MAX_NAME_LEN", MAX_NAME_LEN as u64),
        ("MAX_SSL_CERT", MAX_SSL_CERT as u64),
        ("MAX_FILES", u64::from(MAX_FILES)),
        ("MAX_PATH_DEPTH", MAX_PATH_DEPTH as u64),
        ("MAX_PATH_LEN", MAX_PATH_LEN as u64),
        ("MAX_BENCODE_DEPTH", MAX_BENCODE_DEPTH as u64),
        ("MAX_FILTER_LEN", MAX_FILTER_LEN as u64),
        ("MAX_LIST_PAGE", u64::from(MAX_LIST_PAGE)),
        ("MAX_METADATA_SIZE", MAX_METADATA_SIZE),
        ("MAX_PEX_PEERS", MAX_PEX_PEERS as u64),
        ("MAX_KNOWN_PEERS", MAX_KNOWN_PEERS as u64),
        ("MAX_PEERS_PER_ANSWER", u64::from(MAX_PEERS_PER_ANSWER)),
        ("MAX_VOUCHED_PER_REQUEST", MAX_VOUCHED_PER_REQUEST as u64),
        ("MAX_VOUCHED_PER_FILE", MAX_VOUCHED_PER_FILE as u64),
        ("MAX_DIALS_PER_ANNOUNCE", MAX_DIALS_PER_ANNOUNCE as u64),
        ("DIAL_PUSH_INTERVAL_SECS", DIAL_PUSH_INTERVAL_SECS),
        ("DIAL_PUSH_DELAY_MS", DIAL_PUSH_DELAY_MS),
        ("MAX_PUSHED_DIALS", MAX_PUSHED_DIALS as u64),
        (
            "MAX_RATE_TRACKED_ADDRESSES",
            MAX_RATE_TRACKED_ADDRESSES as u64,
        ),
        ("MAX_ERROR_MESSAGE", MAX_ERROR_MESSAGE as u64),
        ("MAX_KRPC_DATAGRAM", MAX_KRPC_DATAGRAM as u64),
        ("MAX_KRPC_TID", MAX_KRPC_TID as u64),
        ("MAX_KRPC_TOKEN", MAX_KRPC_TOKEN as u64),
        ("DHT_K", DHT_K as u64),
        ("DHT_MAX_HASHES", DHT_MAX_HASHES as u64),
        ("DHT_MAX_PEERS_PER_HASH", DHT_MAX_PEERS_PER_HASH as u64),
        ("DHT_MAX_VALUES", DHT_MAX_VALUES as u64),
        ("DHT_QUERIES_PER_SEC", DHT_QUERIES_PER_SEC),
        ("DHT_QUERY_BURST", DHT_QUERY_BURST),
        ("DHT_MAX_RATE_TRACKED", DHT_MAX_RATE_TRACKED as u64),
        ("DHT_MAX_LOOKUPS", DHT_MAX_LOOKUPS as u64),
        ("DHT_LOOKUP_CANDIDATES", DHT_LOOKUP_CANDIDATES as u64),
        ("DHT_MAX_TRANSACTIONS", DHT_MAX_TRANSACTIONS as u64),
        ("DHT_MAX_SAVED_NODES", DHT_MAX_SAVED_NODES as u64),
        ("MAX_UTP_RESETS_PER_SEC", u64::from(MAX_UTP_RESETS_PER_SEC)),
        (
            "TRACKER_PROTOCOL_VERSION",
            u64::from(TRACKER_PROTOCOL_VERSION),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[test]
fn limits_match_the_spec() {
    let spec: BTreeMap<String, u64> = key_values("limits")
        .into_iter()
        .map(|(k, v)| {
            let n = v
                .parse()
                .unwrap_or_else(|_| panic!("limits.md: {k} = `{v}` is not a plain integer"));
            (k, n)
        })
        .collect();
    let source = limits_in_source();
    assert_eq!(spec, source, "spec/limits.md vs src/limits.rs");
    assert_eq!(
        limits_in_crate(),
        source,
        "this test's table vs src/limits.rs (add new constants to limits_in_crate)"
    );
}
