//! The control protocol between `sta` (the CLI) and `sta-peerd`, sans-IO.
//! `spec/control.md` is its specification.
//!
//! The client sends one request line; the daemon answers with JSON objects,
//! one per line. This module parses and writes request lines, finds lines
//! in a read buffer, and builds and reads the replies, so the daemon and
//! the CLI agree by construction.

use crate::json;
use crate::meta::info::{InfoHash, from_hex, to_hex};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::ffi::OsStr;
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest request line, its `\n` included. A client that sends this many
/// bytes without a newline gets a `bad_request` error and is disconnected.
pub const MAX_CONTROL_LINE: usize = 4096;

/// Longest reply line the CLI accepts, its `\n` included (a catalog of
/// about 200 000 files). Beyond that the daemon is presumed broken.
pub const MAX_REPLY_LINE: usize = 64 * 1024 * 1024;

/// Most `peer` words one `get` carries (a magnet's `x.pe`); the request
/// line's 4096 bytes hold about 90 anyway.
pub const MAX_GET_PEERS: usize = 100;

/// Name of the control socket in the daemon's directory.
pub const SOCKET_NAME: &str = "sta-peerd.sock";

/// Error codes of `{"ok":false,"error":{"code":...}}` (spec/control.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Unparsable line, unknown command, wrong arguments, line too long.
    BadRequest,
    /// No such file in the catalog (or no such local path).
    NotFound,
    /// A name matches several files; use the info hash.
    Ambiguous,
    /// The file name is not acceptable (see spec/metadata.md).
    BadName,
    /// A different file already exists at the destination.
    Exists,
    TrackerUnreachable,
    /// A local read, write or mapping failed.
    Io,
    /// Data failed verification beyond recovery.
    Corrupt,
    /// The download was cancelled with `remove`.
    Removed,
    /// What a client reads when the daemon sends a code it does not know.
    Unknown,
}

impl Code {
    /// Every code the protocol defines.
    pub const ALL: [Code; 9] = [
        Code::BadRequest,
        Code::NotFound,
        Code::Ambiguous,
        Code::BadName,
        Code::Exists,
        Code::TrackerUnreachable,
        Code::Io,
        Code::Corrupt,
        Code::Removed,
    ];

    /// The code as it travels in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::NotFound => "not_found",
            Code::Ambiguous => "ambiguous",
            Code::BadName => "bad_name",
            Code::Exists => "exists",
            Code::TrackerUnreachable => "tracker_unreachable",
            Code::Io => "io",
            Code::Corrupt => "corrupt",
            Code::Removed => "removed",
            Code::Unknown => "unknown",
        }
    }

    /// The code a JSON string names; [`Code::Unknown`] for one this build
    /// does not know (a newer daemon's).
    pub fn parse(s: &str) -> Code {
        Code::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Code::Unknown)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        Ok(Code::parse(&String::deserialize(d)?))
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Short names of the codes, as the rest of the code base spells them.
pub mod code {
    use super::Code;
    pub const BAD_REQUEST: Code = Code::BadRequest;
    pub const NOT_FOUND: Code = Code::NotFound;
    pub const AMBIGUOUS: Code = Code::Ambiguous;
    pub const BAD_NAME: Code = Code::BadName;
    pub const EXISTS: Code = Code::Exists;
    pub const TRACKER_UNREACHABLE: Code = Code::TrackerUnreachable;
    pub const IO: Code = Code::Io;
    pub const CORRUPT: Code = Code::Corrupt;
    pub const REMOVED: Code = Code::Removed;
    pub const UNKNOWN: Code = Code::Unknown;
    pub const ALL: [Code; 9] = Code::ALL;
}

// ---------------------------------------------------------------------------
// Errors

/// A failed request: a code from [`code`] and a message that tells the user
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlError {
    pub code: Code,
    pub message: String,
}

impl ControlError {
    pub fn new(code: Code, message: impl Into<String>) -> ControlError {
        ControlError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ControlError {
        ControlError::new(code::BAD_REQUEST, message)
    }

    /// `{"ok":false,"error":{"code":CODE,"message":S}}`, without the `\n`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct ErrorAnswer<'a> {
            ok: bool,
            error: &'a ControlError,
        }
        json::to_string(&ErrorAnswer {
            ok: false,
            error: self,
        })
    }

    /// [`to_json`](Self::to_json) plus `\n`: a reply line.
    pub fn to_line(&self) -> String {
        self.to_json() + "\n"
    }

    /// Reads the `error` object of a failure reply. A code this build does
    /// not know becomes [`code::UNKNOWN`]; the message is kept.
    pub fn from_json(error: &Value) -> Option<ControlError> {
        ControlError::deserialize(error).ok()
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ControlError {}

// ---------------------------------------------------------------------------
// Requests

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    /// `share PATH`: hash the file at this absolute path and announce it.
    Share(PathBuf),
    /// `list`: the tracker's catalog.
    List,
    /// `get TARGET [OUTDIR]`: download a file. `target` is an info hash when
    /// [`info_hash_target`] says so, else a file name. `out_dir` is
    /// absolute; `None` means the daemon's directory.
    Get {
        target: String,
        out_dir: Option<PathBuf>,
        /// Globs over the paths of a tree's files: fetch only the files
        /// one matches (all files when empty).
        only: Vec<String>,
        /// Peers to fetch the file (and its info dict, when no tracker
        /// has it) from: a magnet link's `x.pe`.
        peers: Vec<SocketAddr>,
    },
    /// `meta TARGET`: the bencoded info dict of a file, by info hash or
    /// name: from this daemon if it holds the file, else from the tracker.
    Meta { target: String },
    /// `get-torrent PATH [OUTDIR]`: download the file described by the
    /// `.torrent` file at this absolute path (its info dict is the
    /// metadata; peers still come from the tracker).
    GetTorrent {
        torrent: PathBuf,
        out_dir: Option<PathBuf>,
        only: Vec<String>,
    },
    /// `remove TARGET [delete]`: stop sharing or fetching a file held by
    /// this daemon (by info hash or name); with `delete`, delete its bytes
    /// (the `.part` of a download, or the shared file itself).
    Remove { target: String, delete: bool },
    /// `status`: this daemon's state.
    Status,
    /// `stop`: answer `{"ok":true}`, then exit.
    Stop,
    /// `limits [upload RATE] [download RATE]`: set the rate limits given
    /// (bytes per second, 0 for none), answer all of them.
    Limits {
        upload: Option<u64>,
        download: Option<u64>,
    },
}

const USAGE: &str = "requests are `share PATH`, `list`, `get NAME_OR_INFOHASH [OUTDIR]`, \
     `meta NAME_OR_INFOHASH`, `get-torrent PATH [OUTDIR]`, `remove NAME_OR_INFOHASH [delete]`, `status`, `stop` and `limits [upload RATE] [download RATE]`";

impl ControlRequest {
    /// Parses a request line, with or without its `\n` (a `\r` before it is
    /// tolerated too). Every error has code `bad_request`.
    pub fn parse(line: &[u8]) -> Result<ControlRequest, ControlError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() >= MAX_CONTROL_LINE {
            return Err(too_long());
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| ControlError::bad_request("the request line is not valid UTF-8"))?;
        if text.is_empty() {
            return Err(ControlError::bad_request(format!("empty request; {USAGE}")));
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(ControlError::bad_request(format!(
                "the request line contains the control character U+{:04X}; \
                 percent-encode it (%{:02X})",
                c as u32, c as u32
            )));
        }
        let words: Vec<&str> = text.split(' ').collect();
        if words.iter().any(|w| w.is_empty()) {
            return Err(ControlError::bad_request(
                "words must be separated by single spaces, with none at the start or end \
                 (encode a space inside an argument as %20)",
            ));
        }
        let (command, args) = (words[0], &words[1..]);
        let arity = |min: usize, max: usize, usage: &str| {
            if (min..=max).contains(&args.len()) {
                Ok(())
            } else {
                Err(ControlError::bad_request(format!(
                    "wrong number of arguments to `{command}`; usage: `{usage}`"
                )))
            }
        };
        match command {
            "share" => {
                arity(1, 1, "share PATH")?;
                Ok(ControlRequest::Share(absolute_path(args[0], "share PATH")?))
            }
            "list" => {
                arity(0, 0, "list")?;
                Ok(ControlRequest::List)
            }
            "get" => {
                let usage = "get NAME_OR_INFOHASH [OUTDIR] [only GLOB]... [peer ADDR:PORT]...";
                arity(1, usize::MAX, usage)?;
                let target = name_arg(args[0])?;
                let (rest, peers) = peer_options(&args[1..], usage)?;
                let (out_dir, only) = get_options(rest, usage)?;
                Ok(ControlRequest::Get {
                    target,
                    out_dir,
                    only,
                    peers,
                })
            }
            "meta" => {
                arity(1, 1, "meta NAME_OR_INFOHASH")?;
                Ok(ControlRequest::Meta {
                    target: name_arg(args[0])?,
                })
            }
            "get-torrent" => {
                let usage = "get-torrent PATH [OUTDIR] [only GLOB]...";
                arity(1, usize::MAX, usage)?;
                let (out_dir, only) = get_options(&args[1..], usage)?;
                Ok(ControlRequest::GetTorrent {
                    torrent: absolute_path(args[0], usage)?,
                    out_dir,
                    only,
                })
            }
            "remove" => {
                let usage = "remove NAME_OR_INFOHASH [delete]";
                arity(1, 2, usage)?;
                let delete = match args.get(1) {
                    None => false,
                    Some(&"delete") => true,
                    Some(_) => {
                        return Err(ControlError::bad_request(format!(
                            "the second argument of `remove` can only be `delete`; usage: `{usage}`"
                        )));
                    }
                };
                Ok(ControlRequest::Remove {
                    target: name_arg(args[0])?,
                    delete,
                })
            }
            "status" => {
                arity(0, 0, "status")?;
                Ok(ControlRequest::Status)
            }
            "stop" => {
                arity(0, 0, "stop")?;
                Ok(ControlRequest::Stop)
            }
            "limits" => limits_args(args),
            _ => {
                let shown: String = command.chars().take(32).collect();
                Err(ControlError::bad_request(format!(
                    "unknown request `{shown}`; {USAGE}"
                )))
            }
        }
    }

    /// The request line, `\n` included, arguments percent-encoded. Parsing
    /// it gives back `self` (when paths are absolute and the line fits in
    /// [`MAX_CONTROL_LINE`]; a longer line is refused by the daemon).
    pub fn to_line(&self) -> String {
        let mut line = match self {
            ControlRequest::Share(path) => format!("share {}", encode_path(path)),
            ControlRequest::List => "list".to_owned(),
            ControlRequest::Get {
                target,
                out_dir,
                only,
                peers,
            } => {
                let mut s = format!("get {}", percent_encode(target.as_bytes()));
                push_get_options(&mut s, out_dir, only);
                for p in peers {
                    s.push_str(&format!(" peer {p}"));
                }
                s
            }
            ControlRequest::Meta { target } => {
                format!("meta {}", percent_encode(target.as_bytes()))
            }
            ControlRequest::GetTorrent {
                torrent,
                out_dir,
                only,
            } => {
                let mut s = format!("get-torrent {}", encode_path(torrent));
                push_get_options(&mut s, out_dir, only);
                s
            }
            ControlRequest::Remove { target, delete } => {
                let mut s = format!("remove {}", percent_encode(target.as_bytes()));
                if *delete {
                    s.push_str(" delete");
                }
                s
            }
            ControlRequest::Status => "status".to_owned(),
            ControlRequest::Stop => "stop".to_owned(),
            ControlRequest::Limits { upload, download } => {
                let mut s = "limits".to_owned();
                for (word, rate) in [("upload", upload), ("download", download)] {
                    if let Some(rate) = rate {
                        s.push_str(&format!(" {word} {rate}"));
                    }
                }
                s
            }
        };
        line.push('\n');
        line
    }
}

/// `[upload RATE] [download RATE]`, in this order, after `limits`.
fn limits_args(args: &[&str]) -> Result<ControlRequest, ControlError> {
    let usage = || {
        ControlError::bad_request(
            "usage: `limits [upload RATE] [download RATE]`, RATE in bytes per second \
             (0 for no limit)",
        )
    };
    let mut upload = None;
    let mut download = None;
    let mut words = args.iter();
    while let Some(&word) = words.next() {
        let rate = words.next().ok_or_else(usage)?;
        let rate = crate::ratelimit::parse_rate(rate).map_err(ControlError::bad_request)?;
        match word {
            "upload" if upload.is_none() && download.is_none() => upload = Some(rate),
            "download" if download.is_none() => download = Some(rate),
            _ => return Err(usage()),
        }
    }
    Ok(ControlRequest::Limits { upload, download })
}

/// The info hash a `get` target names, if it is exactly 40 hex digits
/// (either case). Anything else is a file name.
pub fn info_hash_target(target: &str) -> Option<InfoHash> {
    from_hex(target)
}

/// A `get` or `meta` target: percent-decoded, UTF-8.
/// `[OUTDIR] [only GLOB]...` after the target of `get` and `get-torrent`.
fn get_options(args: &[&str], usage: &str) -> Result<(Option<PathBuf>, Vec<String>), ControlError> {
    let mut out_dir = None;
    let mut only = Vec::new();
    let mut rest = args.iter();
    if let Some(first) = args.first()
        && *first != "only"
    {
        out_dir = Some(absolute_path(first, usage)?);
        rest.next();
    }
    while let Some(word) = rest.next() {
        let glob = match (*word, rest.next()) {
            ("only", Some(glob)) => name_arg(glob)?,
            _ => return Err(ControlError::bad_request(format!("usage: {usage}"))),
        };
        if glob.is_empty() {
            return Err(ControlError::bad_request(
                "an empty `only` glob matches nothing",
            ));
        }
        only.push(glob);
    }
    Ok((out_dir, only))
}

/// The `peer ADDR:PORT` words that end a `get`, and the words before.
fn peer_options<'a, 'b>(
    args: &'a [&'b str],
    usage: &str,
) -> Result<(&'a [&'b str], Vec<SocketAddr>), ControlError> {
    let mut end = args.len();
    while end >= 2 && args[end - 2] == "peer" {
        end -= 2;
    }
    let mut peers = Vec::new();
    for pair in args[end..].chunks(2) {
        let addr = pair[1].parse().map_err(|_| {
            ControlError::bad_request(format!(
                "`peer {}` is not an IP address and port; usage: `{usage}`",
                pair[1].chars().take(64).collect::<String>()
            ))
        })?;
        if peers.len() >= MAX_GET_PEERS {
            return Err(ControlError::bad_request(format!(
                "more than {MAX_GET_PEERS} peers given to `get`"
            )));
        }
        peers.push(addr);
    }
    Ok((&args[..end], peers))
}

fn push_get_options(s: &mut String, out_dir: &Option<PathBuf>, only: &[String]) {
    if let Some(dir) = out_dir {
        s.push(' ');
        s.push_str(&encode_path(dir));
    }
    for glob in only {
        s.push_str(" only ");
        s.push_str(&percent_encode(glob.as_bytes()));
    }
}

fn name_arg(word: &str) -> Result<String, ControlError> {
    String::from_utf8(percent_decode(word)?)
        .map_err(|_| ControlError::bad_request("the file name is not valid UTF-8 once decoded"))
}

fn too_long() -> ControlError {
    ControlError::bad_request(format!(
        "request line longer than {MAX_CONTROL_LINE} bytes; closing the connection"
    ))
}

fn encode_path(path: &Path) -> String {
    percent_encode(path.as_os_str().as_bytes())
}

fn absolute_path(word: &str, usage: &str) -> Result<PathBuf, ControlError> {
    let bytes = percent_decode(word)?;
    if bytes.contains(&0) {
        return Err(ControlError::bad_request(
            "a path cannot contain a NUL byte",
        ));
    }
    let path = PathBuf::from(OsStr::from_bytes(&bytes));
    if !path.is_absolute() {
        return Err(ControlError::bad_request(format!(
            "path '{}' is not absolute; `{usage}` needs an absolute path",
            path.display()
        )));
    }
    Ok(path)
}

/// Percent-encodes every byte that is not printable ASCII, plus space and
/// `%`. The result is printable ASCII with no spaces.
pub fn percent_encode(bytes: &[u8]) -> String {
    crate::wire::text::percent_encode(bytes, crate::wire::text::Keep::Graphic)
}

/// Decodes `%XX` (either case) to the byte it names; other characters stand
/// for themselves. A `%` not followed by two hex digits is an error.
pub fn percent_decode(word: &str) -> Result<Vec<u8>, ControlError> {
    use crate::wire::text::Plus;
    crate::wire::text::percent_decode(word.as_bytes(), Plus::Plus).map_err(|e| {
        ControlError::bad_request(format!(
            "bad percent-encoding at byte {} of '{}': '%' must be followed by two \
             hex digits (write a literal '%' as %25)",
            e.at,
            word.chars().take(64).collect::<String>()
        ))
    })
}

/// Finds the first complete line in `buf`.
///
/// Returns `Ok(None)` while no `\n` has arrived, `Ok(Some((line, used)))`
/// when one has, where `line` excludes the `\n` and `used` includes it, and
/// an error (`bad_request`; reply, then close) when [`MAX_CONTROL_LINE`]
/// bytes have arrived without a `\n`.
pub fn next_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ControlError> {
    let window = &buf[..buf.len().min(MAX_CONTROL_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(Some((&buf[..i], i + 1))),
        None if buf.len() >= MAX_CONTROL_LINE => Err(too_long()),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// Replies: what the daemon reports, as typed values
//
// Every type derives (or implements) serde's traits with the field names of
// spec/control.md, in the spec's order; `crate::json` writes them (with the
// spec's escapes) and reads them. Numbers are exact `u64`s, never `f64`s.

/// What the daemon is doing with a local file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Seeding,
    Downloading,
    /// Hashing: being shared, or resumed after a restart.
    Checking,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Seeding => "seeding",
            FileState::Downloading => "downloading",
            FileState::Checking => "checking",
        }
    }
}

/// Bytes received from one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBytes {
    #[serde(deserialize_with = "de_addr")]
    pub addr: SocketAddr,
    pub bytes: u64,
}

/// FILE of the spec: one file this daemon holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    pub name: String,
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_info_hash")]
    pub info_hash: InfoHash,
    /// Where the file is (the `.part` file while downloading). Written as
    /// UTF-8, lossily if the path is not.
    #[serde(serialize_with = "ser_lossy_path")]
    pub path: PathBuf,
    pub length: u64,
    pub piece_length: u32,
    pub pieces: u32,
    pub have: u32,
    pub state: FileState,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Peers connected for this file now.
    pub peers: u32,
    /// Where the downloaded bytes came from.
    pub from_peers: Vec<PeerBytes>,
}

/// CATALOG_ENTRY of the spec: one file the tracker knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_info_hash")]
    pub info_hash: InfoHash,
    pub length: u64,
    pub piece_length: u32,
    pub peers: u32,
    pub seeders: u32,
    /// Files a download creates (pad files not counted): 1 for a single
    /// file. JSON `file_count`; a daemon that does not send it means 1.
    #[serde(default = "one")]
    pub file_count: u32,
    /// This daemon holds (or is fetching) the file.
    pub local: bool,
}

fn one() -> u32 {
    1
}

/// A `progress` event of a `get` (written after `"event":"progress"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_info_hash")]
    pub info_hash: InfoHash,
    pub name: String,
    pub have: u32,
    pub pieces: u32,
    /// Verified bytes.
    pub bytes: u64,
    pub length: u64,
    /// Bytes per second, averaged over the last few seconds. A daemon may
    /// send a fractional rate; it is rounded.
    #[serde(deserialize_with = "de_rate")]
    pub rate: u64,
    pub peers: u32,
    /// No connected peer has a piece we miss.
    pub waiting: bool,
    /// Wanted files (pad files not counted), and of those, complete ones.
    pub files: u32,
    pub files_done: u32,
}

/// The `tracker` address of a daemon run with no `--tracker`.
pub const NO_TRACKER: &str = "none";

/// The answer to `status`. JSON: the status object of the spec without
/// `ok` (as `sta status --json` prints it); [`status_line`] adds `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub peer_id: [u8; 20],
    pub listen: SocketAddr,
    /// `ADDR:PORT` as configured (may be a host name): the first tracker
    /// with a session up, else the first configured.
    pub tracker_addr: String,
    /// A session with some tracker is up.
    pub tracker_connected: bool,
    /// Every tracker, in configured order.
    pub trackers: Vec<TrackerState>,
    pub files: Vec<FileReport>,
    /// Downloads still fetching their info dict from peers (BEP 9).
    pub fetching: Vec<MetadataFetch>,
}

/// A download that has only its info hash so far, in a status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataFetch {
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_info_hash")]
    pub info_hash: [u8; 20],
    /// Peers connected for it now.
    pub peers: u32,
    /// Peers known for it (given, or from PEX or a DHT).
    pub known: u32,
}

/// One tracker in a status report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerState {
    pub addr: String,
    pub connected: bool,
}

/// The status object as it travels, with `files` of any serializable type
/// (`sta status --json` adds a magnet link to each).
#[derive(Serialize, Deserialize)]
pub struct StatusObject<F> {
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_peer_id")]
    peer_id: [u8; 20],
    #[serde(deserialize_with = "de_listen")]
    listen: SocketAddr,
    tracker: TrackerState,
    /// Absent from daemons older than several trackers.
    #[serde(default)]
    trackers: Vec<TrackerState>,
    files: F,
    /// Absent from daemons older than metadata from peers.
    #[serde(default)]
    fetching: Vec<MetadataFetch>,
}

impl StatusReport {
    /// The status object with `files` in place of this report's files.
    pub fn object_with<F: Serialize>(&self, files: F) -> StatusObject<F> {
        StatusObject {
            peer_id: self.peer_id,
            listen: self.listen,
            tracker: TrackerState {
                addr: self.tracker_addr.clone(),
                connected: self.tracker_connected,
            },
            trackers: self.trackers.clone(),
            files,
            fetching: self.fetching.clone(),
        }
    }
}

impl Serialize for StatusReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.object_with(&self.files).serialize(s)
    }
}

impl<'de> Deserialize<'de> for StatusReport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StatusReport, D::Error> {
        let o = StatusObject::<Vec<FileReport>>::deserialize(d)?;
        let trackers = match o.trackers.is_empty() {
            true => vec![o.tracker.clone()],
            false => o.trackers,
        };
        Ok(StatusReport {
            peer_id: o.peer_id,
            listen: o.listen,
            tracker_addr: o.tracker.addr,
            tracker_connected: o.tracker.connected,
            trackers,
            files: o.files,
            fetching: o.fetching,
        })
    }
}

fn ser_hex<S: Serializer>(bytes: &[u8; 20], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&to_hex(bytes))
}

fn ser_lossy_path<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// A string field, parsed by `parse`; the error names the field and what
/// it should be, as `"info_hash" is not 40 hex digits`.
fn de_parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    field: &str,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, D::Error> {
    let s = String::deserialize(d)
        .map_err(|e| de::Error::custom(format_args!("\"{field}\" is not {what}: {e}")))?;
    parse(&s).ok_or_else(|| de::Error::custom(format_args!("\"{field}\" is not {what}")))
}

fn de_info_hash<'de, D: Deserializer<'de>>(d: D) -> Result<InfoHash, D::Error> {
    de_parsed(d, "info_hash", "40 hex digits", from_hex)
}

fn de_peer_id<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 20], D::Error> {
    de_parsed(d, "peer_id", "40 hex digits", from_hex)
}

fn de_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    de_parsed(d, "addr", "an ADDR:PORT", |s| s.parse().ok())
}

fn de_listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    de_parsed(d, "listen", "an ADDR:PORT", |s| s.parse().ok())
}

/// A whole number of bytes per second, exact; a fractional one rounded.
fn de_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let bad = || de::Error::custom("\"rate\" is not a number of bytes per second");
    let n = serde_json::Number::deserialize(d).map_err(|_: D::Error| bad())?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|r| *r >= 0.0 && r.is_finite())
                .map(|r| r.round() as u64)
        })
        .ok_or_else(bad)
}

/// A reply line the daemon sent, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `{"event":"progress",...}`: more lines follow.
    Progress(Progress),
    /// `{"ok":true,...}` (a `done` event included): the whole object.
    /// This is the last line of the answer.
    Ok(Value),
    /// `{"ok":false,"error":{...}}`: the last line of the answer.
    Err(ControlError),
}

impl Reply {
    /// Reads one reply line (without its `\n`). Unknown fields are ignored;
    /// an error means the daemon broke the protocol.
    pub fn parse(line: &str) -> Result<Reply, String> {
        let v = json::parse(line).map_err(|e| format!("invalid JSON: {e}"))?;
        if v.get("event").and_then(Value::as_str) == Some("progress") {
            return Progress::from_json(&v).map(Reply::Progress);
        }
        match v.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(Reply::Ok(v)),
            Some(false) => v
                .get("error")
                .and_then(ControlError::from_json)
                .map(Reply::Err)
                .ok_or_else(|| "failure reply without a valid \"error\" object".to_owned()),
            None => Err("reply has neither \"ok\" nor a known \"event\"".to_owned()),
        }
    }
}

/// `{"ok":true}` plus `\n`.
pub fn ok_line() -> String {
    "{\"ok\":true}\n".to_owned()
}

/// `{["event":E,]"ok":true,"file":FILE}`: answers to `share`, `remove`,
/// and the end of `get`.
#[derive(Serialize)]
struct FileAnswer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'static str>,
    ok: bool,
    file: &'a FileReport,
}

/// Answer to `share`: `{"ok":true,"file":FILE}` plus `\n`.
pub fn shared_line(file: &FileReport) -> String {
    line(&FileAnswer {
        event: None,
        ok: true,
        file,
    })
}

/// Answer to `remove` of a download still fetching its info dict:
/// `{"ok":true,"fetching":FETCH}` plus `\n`, the fetch as it was.
pub fn fetch_removed_line(fetch: &MetadataFetch) -> String {
    #[derive(Serialize)]
    struct FetchAnswer<'a> {
        ok: bool,
        fetching: &'a MetadataFetch,
    }
    line(&FetchAnswer {
        ok: true,
        fetching: fetch,
    })
}

/// Answer to `list`: `{"ok":true,"files":[CATALOG_ENTRY,...]}` plus `\n`.
pub fn list_line(entries: &[CatalogEntry]) -> String {
    #[derive(Serialize)]
    struct ListAnswer<'a> {
        ok: bool,
        files: &'a [CatalogEntry],
    }
    line(&ListAnswer {
        ok: true,
        files: entries,
    })
}

/// A progress event of `get`, plus `\n`.
pub fn progress_line(p: &Progress) -> String {
    #[derive(Serialize)]
    struct ProgressEvent<'a> {
        event: &'static str,
        #[serde(flatten)]
        progress: &'a Progress,
    }
    line(&ProgressEvent {
        event: "progress",
        progress: p,
    })
}

/// The last line of a successful `get`:
/// `{"event":"done","ok":true,"file":FILE}` plus `\n`.
pub fn done_line(file: &FileReport) -> String {
    line(&FileAnswer {
        event: Some("done"),
        ok: true,
        file,
    })
}

/// Answer to `meta`:
/// `{"ok":true,"name":S,"info_hash":HEX40,"info":HEX}` plus `\n`, where
/// `info` is the bencoded info dict in lower-case hex.
pub fn meta_line(info: &crate::meta::Info) -> String {
    #[derive(Serialize)]
    struct MetaAnswer<'a> {
        ok: bool,
        name: &'a str,
        #[serde(serialize_with = "ser_hex")]
        info_hash: &'a InfoHash,
        info: String,
    }
    line(&MetaAnswer {
        ok: true,
        name: &info.name,
        info_hash: &info.info_hash,
        info: to_hex(&info.bencoded),
    })
}

/// Reads the answer to `meta`: the info dict, checked against the
/// `info_hash` the daemon gave.
pub fn info_of_meta(v: &Value) -> Result<crate::meta::Info, String> {
    #[derive(Deserialize)]
    struct MetaAnswer {
        #[serde(deserialize_with = "de_info_hash")]
        info_hash: InfoHash,
        info: String,
    }
    let m = MetaAnswer::deserialize(v).map_err(|e| format!("meta: {e}"))?;
    let bytes = hex_bytes(&m.info).ok_or_else(|| "meta: \"info\" is not hex digits".to_owned())?;
    let info = crate::meta::Info::from_bencoded(&bytes).map_err(|e| format!("meta: {e}"))?;
    if info.info_hash != m.info_hash {
        return Err("meta: the info dict does not have the info hash given with it".into());
    }
    Ok(info)
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    crate::wire::text::from_hex(s)
}

/// The rate limits of a `limits` answer, in bytes per second, 0 for no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    pub upload: u64,
    pub download: u64,
}

/// Answer to `limits`:
/// `{"ok":true,"limits":{"upload":N,"download":N}}` plus `\n`, in bytes
/// per second, 0 for no limit.
pub fn limits_line(upload: u64, download: u64) -> String {
    #[derive(Serialize)]
    struct LimitsAnswer {
        ok: bool,
        limits: RateLimits,
    }
    line(&LimitsAnswer {
        ok: true,
        limits: RateLimits { upload, download },
    })
}

/// Reads the answer to `limits`: (upload, download).
pub fn limits_of(v: &Value) -> Result<(u64, u64), String> {
    #[derive(Deserialize)]
    struct LimitsAnswer {
        limits: RateLimits,
    }
    let a = LimitsAnswer::deserialize(v).map_err(|e| format!("limits: {e}"))?;
    Ok((a.limits.upload, a.limits.download))
}

/// Answer to `status`: `{"ok":true,...}` plus `\n`.
pub fn status_line(s: &StatusReport) -> String {
    #[derive(Serialize)]
    struct StatusAnswer<'a> {
        ok: bool,
        #[serde(flatten)]
        status: &'a StatusReport,
    }
    line(&StatusAnswer {
        ok: true,
        status: s,
    })
}

fn line<T: Serialize>(v: &T) -> String {
    let mut s = json::to_string(v);
    s.push('\n');
    s
}

/// `T` read from a JSON value, the error prefixed with `what`.
fn from_value<'a, T: Deserialize<'a>>(v: &'a Value, what: &str) -> Result<T, String> {
    T::deserialize(v).map_err(|e| format!("{what}: {e}"))
}

impl FileReport {
    /// Reads a FILE object. Unknown fields are ignored; missing ones are
    /// errors.
    pub fn from_json(v: &Value) -> Result<FileReport, String> {
        from_value(v, "file")
    }
}

impl CatalogEntry {
    /// Reads a CATALOG_ENTRY object (without `file_count`: one file).
    pub fn from_json(v: &Value) -> Result<CatalogEntry, String> {
        from_value(v, "catalog entry")
    }

    /// A directory: more than one file (spec/tracker.md, ListPage).
    pub fn is_dir(&self) -> bool {
        self.file_count > 1
    }

    /// Number of pieces, `ceil(length / piece_length)`.
    pub fn pieces(&self) -> u64 {
        match self.piece_length {
            0 => 0,
            p => self.length.div_ceil(u64::from(p)),
        }
    }
}

impl Progress {
    /// Reads a progress event (its `event` field is not checked here).
    pub fn from_json(v: &Value) -> Result<Progress, String> {
        from_value(v, "progress")
    }
}

impl StatusReport {
    /// Reads the answer to `status` (its `ok`, if any, is ignored).
    pub fn from_json(v: &Value) -> Result<StatusReport, String> {
        from_value(v, "status")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<ControlRequest, ControlError> {
        ControlRequest::parse(line.as_bytes())
    }

    fn bad(line: &[u8]) -> String {
        match ControlRequest::parse(line) {
            Ok(r) => panic!("{line:?} parsed as {r:?}"),
            Err(e) => {
                assert_eq!(e.code, code::BAD_REQUEST, "{e:?}");
                e.message
            }
        }
    }

    fn round_trip(req: ControlRequest) {
        let line = req.to_line();
        assert!(line.ends_with('\n'));
        let body = &line[..line.len() - 1];
        assert!(
            body.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
            "{line:?}"
        );
        assert_eq!(ControlRequest::parse(line.as_bytes()), Ok(req.clone()));
        let (found, used) = next_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(used, line.len());
        assert_eq!(ControlRequest::parse(found), Ok(req));
    }

    #[test]
    fn requests_round_trip() {
        round_trip(ControlRequest::List);
        round_trip(ControlRequest::Status);
        round_trip(ControlRequest::Stop);
        round_trip(ControlRequest::Share("/data/vm images/disk 1.qcow2".into()));
        round_trip(ControlRequest::Share("/tmp/100%/a+b=c&d?.iso".into()));
        round_trip(ControlRequest::Share(
            OsStr::from_bytes(b"/tmp/\xff\xfe not utf8\n\t").into(),
        ));
        round_trip(ControlRequest::Get {
            target: "café ☃.tar".into(),
            out_dir: None,
            only: Vec::new(),
            peers: Vec::new(),
        });
        round_trip(ControlRequest::Get {
            target: "0123456789abcdef0123456789ABCDEF01234567".into(),
            out_dir: Some("/srv/out dir".into()),
            only: Vec::new(),
            peers: Vec::new(),
        });
        round_trip(ControlRequest::Meta {
            target: "café ☃.tar".into(),
        });
        round_trip(ControlRequest::GetTorrent {
            torrent: "/tmp/a b.torrent".into(),
            out_dir: None,
            only: Vec::new(),
        });
        round_trip(ControlRequest::GetTorrent {
            torrent: "/tmp/x.torrent".into(),
            out_dir: Some("/srv/out dir".into()),
            only: Vec::new(),
        });
        round_trip(ControlRequest::Get {
            target: "tree".into(),
            out_dir: None,
            only: vec!["sub dir/*.bin".into(), "**/日本".into()],
            peers: Vec::new(),
        });
        round_trip(ControlRequest::GetTorrent {
            torrent: "/tmp/x.torrent".into(),
            out_dir: Some("/o".into()),
            only: vec!["a".into()],
        });
        round_trip(ControlRequest::Get {
            target: "%%%".into(),
            out_dir: Some("/".into()),
            only: Vec::new(),
            peers: Vec::new(),
        });
        round_trip(ControlRequest::Get {
            target: "0123456789abcdef0123456789abcdef01234567".into(),
            out_dir: Some("/o".into()),
            only: vec!["a".into()],
            peers: vec![
                "10.0.0.1:6881".parse().unwrap(),
                "[::1]:51413".parse().unwrap(),
            ],
        });
        round_trip(ControlRequest::Get {
            target: "0123456789abcdef0123456789abcdef01234567".into(),
            out_dir: None,
            only: Vec::new(),
            peers: vec!["127.0.0.1:1".parse().unwrap()],
        });
    }

    #[test]
    fn lines_are_readable() {
        assert_eq!(
            ControlRequest::Share("/data/my file.iso".into()).to_line(),
            "share /data/my%20file.iso\n"
        );
        assert_eq!(
            ControlRequest::Get {
                target: "50%.bin".into(),
                out_dir: Some("/out".into()),
                only: Vec::new(),
                peers: Vec::new(),
            }
            .to_line(),
            "get 50%25.bin /out\n"
        );
        assert_eq!(
            parse("get caf%c3%a9 /x%2Fy\r\n"),
            Ok(ControlRequest::Get {
                target: "café".into(),
                out_dir: Some("/x/y".into()),
                only: Vec::new(),
                peers: Vec::new(),
            })
        );
        // Raw UTF-8 is as good as its encoding.
        assert_eq!(
            parse("share /données/été.iso"),
            Ok(ControlRequest::Share("/données/été.iso".into()))
        );
        assert_eq!(
            info_hash_target("0123456789ABCDEF0123456789abcdef01234567").map(|h| h[0]),
            Some(0x01)
        );
        assert_eq!(info_hash_target("disk.img"), None);
    }

    #[test]
    fn garbage_is_refused() {
        for line in [
            &b""[..],
            b"\n",
            b" list",
            b"list ",
            b"get  a",
            b"LIST",
            b"lis",
            b"list extra",
            b"status now",
            b"stop 1",
            b"share",
            b"share /a /b",
            b"get",
            b"get a /b /c",
            b"get a\tb",
            b"meta",
            b"meta a b",
            b"meta a%FF",
            b"get-torrent",
            b"get-torrent x.torrent",
            b"get-torrent /x.torrent out",
            b"get-torrent /a /b /c",
            b"list\0",
            b"\xff\xfe",
            b"share /a\x1b[31m",
            b"get \xc3",
            b"\r\n",
        ] {
            bad(line);
        }
        assert!(bad(b"frobnicate x").contains("unknown request `frobnicate`"));
        assert!(bad(b"list extra").contains("usage: `list`"));
        assert!(bad(b"share").contains("usage: `share PATH`"));
    }

    #[test]
    fn remove_parses_with_and_without_delete() {
        let parse = |l: &[u8]| ControlRequest::parse(l);
        let plain = ControlRequest::Remove {
            target: "a b".into(),
            delete: false,
        };
        assert_eq!(parse(b"remove a%20b\n"), Ok(plain.clone()));
        let delete = ControlRequest::Remove {
            target: "a b".into(),
            delete: true,
        };
        assert_eq!(parse(b"remove a%20b delete"), Ok(delete.clone()));
        for req in [plain, delete] {
            assert_eq!(parse(req.to_line().as_bytes()), Ok(req));
        }
        assert_eq!(parse(b"remove a now").unwrap_err().code, code::BAD_REQUEST);
        assert_eq!(parse(b"remove").unwrap_err().code, code::BAD_REQUEST);
    }

    #[test]
    fn limits_parse_with_units_and_answer_both() {
        let parse = |l: &[u8]| ControlRequest::parse(l);
        let limits = |upload, download| ControlRequest::Limits { upload, download };
        assert_eq!(parse(b"limits\n"), Ok(limits(None, None)));
        assert_eq!(
            parse(b"limits upload 20M"),
            Ok(limits(Some(20_000_000), None))
        );
        assert_eq!(parse(b"limits download 0"), Ok(limits(None, Some(0))));
        assert_eq!(
            parse(b"limits upload 1Mi download 1500000"),
            Ok(limits(Some(1 << 20), Some(1_500_000)))
        );
        for req in [
            limits(None, None),
            limits(Some(5), Some(0)),
            limits(None, Some(7)),
        ] {
            assert_eq!(parse(req.to_line().as_bytes()), Ok(req));
        }
        for bad in [
            &b"limits upload"[..],
            b"limits upload x",
            b"limits download 1 upload 2",
            b"limits upload 1 upload 2",
            b"limits sideways 1",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, code::BAD_REQUEST);
        }
        let line = limits_line(20_000_000, 0);
        assert_eq!(
            line,
            "{\"ok\":true,\"limits\":{\"upload\":20000000,\"download\":0}}\n"
        );
        let Ok(Reply::Ok(v)) = Reply::parse(line.trim_end()) else {
            panic!("{line}");
        };
        assert_eq!(limits_of(&v), Ok((20_000_000, 0)));
    }

    #[test]
    fn bad_percent_encoding_is_refused() {
        for line in [
            "get %",
            "get a%",
            "get a%4",
            "get a%zz",
            "get a%4g",
            "share /a%2",
            "get ok /a%%",
        ] {
            assert!(bad(line.as_bytes()).contains("percent-encoding"), "{line}");
        }
        // Decodes to bytes that are not UTF-8: fine for a path, not a name.
        assert!(parse("share /a%FF").is_ok());
        assert!(bad(b"get a%FF").contains("UTF-8"));
        assert!(bad(b"share /a%00b").contains("NUL"));
        assert_eq!(percent_decode("%41%2a%2A"), Ok(b"A**".to_vec()));
    }

    #[test]
    fn relative_paths_are_refused() {
        for line in [
            "share file.iso",
            "share ./file.iso",
            "share ~/file.iso",
            "share %2E%2E/x",
            "get x out",
            "get x ./out",
        ] {
            assert!(bad(line.as_bytes()).contains("not absolute"), "{line}");
        }
        assert!(parse("share %2Fabs").is_ok());
    }

    #[test]
    fn next_line_finds_lines_and_bounds_them() {
        assert_eq!(next_line(b""), Ok(None));
        assert_eq!(next_line(b"lis"), Ok(None));
        assert_eq!(next_line(b"list\nstat"), Ok(Some((&b"list"[..], 5))));
        assert_eq!(next_line(b"\n"), Ok(Some((&b""[..], 1))));
        // A line of exactly MAX_CONTROL_LINE bytes, `\n` included, is fine.
        let mut longest = vec![b'a'; MAX_CONTROL_LINE - 1];
        longest.push(b'\n');
        assert_eq!(
            next_line(&longest),
            Ok(Some((&longest[..MAX_CONTROL_LINE - 1], MAX_CONTROL_LINE)))
        );
        let partial = vec![b'a'; MAX_CONTROL_LINE - 1];
        assert_eq!(next_line(&partial), Ok(None));
        let mut over = vec![b'a'; MAX_CONTROL_LINE];
        assert!(next_line(&over).is_err());
        over.push(b'\n');
        let e = next_line(&over).unwrap_err();
        assert_eq!(e.code, code::BAD_REQUEST);
        assert!(e.message.contains("4096"));
        // parse applies the same bound to a line given whole.
        let long = format!("share /{}", "a".repeat(MAX_CONTROL_LINE));
        assert!(bad(long.as_bytes()).contains("longer than"));
    }

    #[test]
    fn parse_never_panics() {
        let seeds: [&[u8]; 4] = [
            b"get caf%C3%A9 /out%20dir\n",
            b"share /a/b\r\n",
            b"list\n",
            b"get 0123456789abcdef0123456789abcdef01234567\n",
        ];
        for seed in seeds {
            for end in 0..=seed.len() {
                let _ = ControlRequest::parse(&seed[..end]);
                let _ = next_line(&seed[..end]);
            }
            for i in 0..seed.len() {
                for b in [0u8, b' ', b'%', b'\n', 0xff, 0xc3, b'/', b'0'] {
                    let mut m = seed.to_vec();
                    m[i] = b;
                    let _ = ControlRequest::parse(&m);
                }
            }
        }
    }

    #[test]
    fn errors_are_json() {
        let e = ControlError::new(
            code::NOT_FOUND,
            "no file named 'x\"y' in the catalog; run `sta list` to see what is shared",
        );
        assert_eq!(
            e.to_json(),
            r#"{"ok":false,"error":{"code":"not_found","message":"no file named 'x\"y' in the catalog; run `sta list` to see what is shared"}}"#
        );
        assert_eq!(e.to_line(), e.to_json() + "\n");
        assert_eq!(Reply::parse(&e.to_json()), Ok(Reply::Err(e)));
        let odd = r#"{"ok":false,"error":{"code":"new_code","message":"m"}}"#;
        assert_eq!(
            Reply::parse(odd),
            Ok(Reply::Err(ControlError::new(code::UNKNOWN, "m")))
        );
        assert!(Reply::parse(r#"{"ok":false}"#).is_err());
        assert!(Reply::parse(r#"{"hello":1}"#).is_err());
        assert!(Reply::parse("not json").is_err());
    }

    fn sample_file() -> FileReport {
        FileReport {
            name: "disk \"1\".img".into(),
            info_hash: [0xab; 20],
            path: "/srv/sta/disk \"1\".img".into(),
            length: 5 * 1024 * 1024 * 1024 + 1,
            piece_length: 524_288,
            pieces: 10_241,
            have: 17,
            state: FileState::Downloading,
            uploaded: 0,
            downloaded: 17 * 524_288,
            peers: 2,
            from_peers: vec![
                PeerBytes {
                    addr: "10.0.0.2:6881".parse().unwrap(),
                    bytes: 9 * 524_288,
                },
                PeerBytes {
                    addr: "[fe80::1]:7000".parse().unwrap(),
                    bytes: 8 * 524_288,
                },
            ],
        }
    }

    #[test]
    fn replies_round_trip() {
        let file = sample_file();
        let Ok(Reply::Ok(v)) = Reply::parse(shared_line(&file).trim_end()) else {
            panic!("share reply");
        };
        assert_eq!(
            FileReport::from_json(v.get("file").unwrap()),
            Ok(file.clone())
        );

        let Ok(Reply::Ok(v)) = Reply::parse(done_line(&file).trim_end()) else {
            panic!("done reply");
        };
        assert_eq!(v.get("event").and_then(Value::as_str), Some("done"));
        assert_eq!(
            FileReport::from_json(v.get("file").unwrap()),
            Ok(file.clone())
        );

        let entry = CatalogEntry {
            name: "a".into(),
            info_hash: [1; 20],
            length: 1_048_577,
            piece_length: 524_288,
            peers: 3,
            seeders: 1,
            file_count: 3,
            local: true,
        };
        assert_eq!(entry.pieces(), 3);
        assert!(entry.is_dir());
        let Ok(Reply::Ok(v)) = Reply::parse(list_line(&[entry.clone(), entry.clone()]).trim_end())
        else {
            panic!("list reply");
        };
        let files = v.get("files").and_then(Value::as_array).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(CatalogEntry::from_json(&files[1]), Ok(entry));
        // A daemon from before `file_count`: one file.
        let old = r#"{"name":"a","info_hash":"0101010101010101010101010101010101010101","length":1,"piece_length":16384,"peers":1,"seeders":1,"local":false}"#;
        let old = CatalogEntry::from_json(&json::parse(old).unwrap()).unwrap();
        assert_eq!((old.file_count, old.is_dir()), (1, false));

        let p = Progress {
            info_hash: [2; 20],
            name: "b".into(),
            have: 1,
            pieces: 4,
            bytes: 524_288,
            length: 2_000_000,
            rate: 123_456_789,
            peers: 3,
            waiting: false,
            files: 12,
            files_done: 5,
        };
        let line = progress_line(&p);
        assert!(line.starts_with(r#"{"event":"progress","info_hash":"0202"#));
        assert_eq!(Reply::parse(line.trim_end()), Ok(Reply::Progress(p)));

        let s = StatusReport {
            peer_id: [0x2d; 20],
            listen: "0.0.0.0:6881".parse().unwrap(),
            tracker_addr: "tracker.lab:6969".into(),
            tracker_connected: false,
            trackers: vec![TrackerState {
                addr: "tracker.lab:6969".into(),
                connected: false,
            }],
            files: vec![file],
            fetching: vec![MetadataFetch {
                info_hash: [7; 20],
                peers: 1,
                known: 2,
            }],
        };
        let Ok(Reply::Ok(v)) = Reply::parse(status_line(&s).trim_end()) else {
            panic!("status reply");
        };
        assert_eq!(StatusReport::from_json(&v), Ok(s));
        assert_eq!(
            Reply::parse(ok_line().trim_end()),
            Ok(Reply::Ok(serde_json::json!({"ok": true})))
        );
    }

    #[test]
    fn meta_replies_round_trip() {
        let info = crate::meta::Info::new("a b", 20_000, 16_384, vec![3; 40]).unwrap();
        let Ok(Reply::Ok(v)) = Reply::parse(meta_line(&info).trim_end()) else {
            panic!("meta reply");
        };
        assert_eq!(info_of_meta(&v), Ok(info));
        let wrong =
            r#"{"ok":true,"info_hash":"0000000000000000000000000000000000000000","info":"6465"}"#;
        let Ok(Reply::Ok(v)) = Reply::parse(wrong) else {
            panic!("parse");
        };
        assert!(info_of_meta(&v).is_err());
    }

    #[test]
    fn replies_are_checked() {
        let mut v = json::parse(&json::to_string(&sample_file())).unwrap();
        v.as_object_mut().map(|o| o.remove("have"));
        assert_eq!(
            FileReport::from_json(&v),
            Err("file: missing field `have`".into())
        );
        let wrong = r#"{"event":"progress","info_hash":"xyz","name":"b","have":1,"pieces":4,"bytes":0,"length":1,"rate":0,"peers":0,"waiting":true,"files":1,"files_done":0}"#;
        assert!(Reply::parse(wrong).unwrap_err().contains("info_hash"));
        let frac = wrong
            .replace("\"xyz\"", &format!("\"{}\"", "0".repeat(40)))
            .replace("\"rate\":0", "\"rate\":12.6");
        let Ok(Reply::Progress(p)) = Reply::parse(&frac) else {
            panic!("fractional rate");
        };
        assert_eq!(p.rate, 13);
    }

    /// The reply lines, byte for byte as spec/control.md has them (and as
    /// the hand-written writer wrote them before serde_json).
    #[test]
    fn reply_lines_are_byte_exact() {
        let mut file = sample_file();
        file.name = "a\u{1b}[1m\u{85}\u{8}\u{c}é\t".into();
        file.path = "/srv/x y".into();
        let hash = "ab".repeat(20);
        let file_json = format!(
            concat!(
                r#"{{"name":"a\u001b[1m\u0085\u0008\u000cé\t","info_hash":"{}","path":"/srv/x y","#,
                r#""length":5368709121,"piece_length":524288,"pieces":10241,"have":17,"#,
                r#""state":"downloading","uploaded":0,"downloaded":8912896,"peers":2,"#,
                r#""from_peers":[{{"addr":"10.0.0.2:6881","bytes":4718592}},"#,
                r#"{{"addr":"[fe80::1]:7000","bytes":4194304}}]}}"#
            ),
            hash
        );
        assert_eq!(
            shared_line(&file),
            format!("{{\"ok\":true,\"file\":{file_json}}}\n")
        );
        assert_eq!(
            done_line(&file),
            format!("{{\"event\":\"done\",\"ok\":true,\"file\":{file_json}}}\n")
        );
        let s = StatusReport {
            peer_id: [0x2d; 20],
            listen: "[::]:6881".parse().unwrap(),
            tracker_addr: "tracker.lab:6969".into(),
            tracker_connected: true,
            trackers: vec![TrackerState {
                addr: "tracker.lab:6969".into(),
                connected: true,
            }],
            files: vec![file],
            fetching: Vec::new(),
        };
        assert_eq!(
            status_line(&s),
            format!(
                r#"{{"ok":true,"peer_id":"{}","listen":"[::]:6881","tracker":{{"addr":"tracker.lab:6969","connected":true}},"trackers":[{{"addr":"tracker.lab:6969","connected":true}}],"files":[{file_json}],"fetching":[]}}"#,
                "2d".repeat(20)
            ) + "\n"
        );
        let entry = CatalogEntry {
            name: "ubuntu-24.04.iso".into(),
            info_hash: [1; 20],
            length: 6_114_656_256,
            piece_length: 524_288,
            peers: 12,
            seeders: 4,
            file_count: 1,
            local: false,
        };
        assert_eq!(
            list_line(&[entry]),
            format!(
                r#"{{"ok":true,"files":[{{"name":"ubuntu-24.04.iso","info_hash":"{}","length":6114656256,"piece_length":524288,"peers":12,"seeders":4,"file_count":1,"local":false}}]}}"#,
                "01".repeat(20)
            ) + "\n"
        );
        assert_eq!(list_line(&[]), "{\"ok\":true,\"files\":[]}\n");
        let p = Progress {
            info_hash: [2; 20],
            name: "b".into(),
            have: 4898,
            pieces: 11663,
            bytes: 2_568_011_776,
            length: 6_114_656_256,
            rate: 123_400_000,
            peers: 3,
            waiting: false,
            files: 1,
            files_done: 0,
        };
        assert_eq!(
            progress_line(&p),
            format!(
                r#"{{"event":"progress","info_hash":"{}","name":"b","have":4898,"pieces":11663,"bytes":2568011776,"length":6114656256,"rate":123400000,"peers":3,"waiting":false,"files":1,"files_done":0}}"#,
                "02".repeat(20)
            ) + "\n"
        );
        let info = crate::meta::Info::new("hello world.txt", 23, 16384, vec![3; 20]).unwrap();
        assert_eq!(
            meta_line(&info),
            format!(
                r#"{{"ok":true,"name":"hello world.txt","info_hash":"{}","info":"{}"}}"#,
                to_hex(&info.info_hash),
                to_hex(&info.bencoded)
            ) + "\n"
        );
        assert_eq!(
            ControlError::new(code::BAD_NAME, "bad name 'a\nb\u{7f}'").to_line(),
            "{\"ok\":false,\"error\":{\"code\":\"bad_name\",\"message\":\"bad name 'a\\nb\\u007f'\"}}\n"
        );
    }

    /// Lengths, byte counts and rates are exact u64s on the wire, above
    /// 2^53 too (they used to pass through f64).
    #[test]
    fn u64_values_round_trip_exactly() {
        for n in [(1u64 << 53) + 1, u64::MAX - 1, u64::MAX] {
            let mut file = sample_file();
            file.length = n;
            file.uploaded = n - 1;
            file.downloaded = n;
            file.from_peers[0].bytes = n;
            let line = shared_line(&file);
            assert!(line.contains(&format!("\"length\":{n},")), "{line}");
            let Ok(Reply::Ok(v)) = Reply::parse(line.trim_end()) else {
                panic!("share reply");
            };
            assert_eq!(FileReport::from_json(&v["file"]), Ok(file));
            let p = Progress {
                info_hash: [2; 20],
                name: "b".into(),
                have: 0,
                pieces: u32::MAX,
                bytes: n,
                length: n,
                rate: n,
                peers: 0,
                waiting: true,
                files: 1,
                files_done: 0,
            };
            let line = progress_line(&p);
            assert!(line.contains(&format!("\"rate\":{n},")), "{line}");
            assert_eq!(Reply::parse(line.trim_end()), Ok(Reply::Progress(p)));
        }
        // Too big for its field: an error, not a wrapped or rounded value.
        let mut v = json::parse(&json::to_string(&sample_file())).unwrap();
        v["pieces"] = (1u64 << 32).into();
        let e = FileReport::from_json(&v).unwrap_err();
        assert!(e.contains("u32"), "{e}");
        v["pieces"] = 1.5.into();
        assert!(FileReport::from_json(&v).is_err());
    }

    #[test]
    fn odd_replies_are_refused() {
        let line = shared_line(&sample_file());
        // A duplicate key, known or not.
        let dup = line.replacen("\"ok\":true,", "\"ok\":true,\"ok\":false,", 1);
        assert!(
            Reply::parse(dup.trim_end())
                .unwrap_err()
                .contains("duplicate key")
        );
        let dup = line.replacen("\"ok\":true,", "\"x\":1,\"x\":1,", 1);
        assert!(Reply::parse(dup.trim_end()).is_err());
        // Unknown fields are ignored, in every object.
        let more = line
            .replacen("{\"name\"", "{\"new\":[{}],\"name\"", 1)
            .replacen("\"bytes\"", "\"later\":null,\"bytes\"", 1);
        let Ok(Reply::Ok(v)) = Reply::parse(more.trim_end()) else {
            panic!("{more}");
        };
        assert_eq!(FileReport::from_json(&v["file"]), Ok(sample_file()));
        let e = FileReport::from_json(&serde_json::json!({"name": 1})).unwrap_err();
        assert!(e.starts_with("file: "), "{e}");
        let bad_addr = line.replacen("10.0.0.2:6881", "10.0.0.2", 1);
        let Ok(Reply::Ok(v)) = Reply::parse(bad_addr.trim_end()) else {
            panic!("{bad_addr}");
        };
        let e = FileReport::from_json(&v["file"]).unwrap_err();
        assert!(e.contains("\"addr\" is not an ADDR:PORT"), "{e}");
    }
}
