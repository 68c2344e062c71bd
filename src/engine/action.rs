//! What the engine asks of its caller: bytes to send, blocks of a file to
//! send without copying, connections to open or close, work for the hash
//! pool, and stopping. And what the caller reports back when a job ends.

use crate::meta::Info;
use crate::wire::peer::InfoHash;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

/// Identifies one connection of the engine (peer, tracker or control
/// session) for as long as it lives. Never reused, so a late event for a
/// closed link cannot reach a new one.
pub type LinkId = u64;

/// A file of the engine's storage, as [`super::Storage`] numbers them.
pub type FileId = u64;

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Queue `bytes` on `link`.
    Send { link: LinkId, bytes: Vec<u8> },
    /// Queue `bytes` on `link`, in order with the rest, but without hurry:
    /// the shell may hold them until the link sends something else or a
    /// short delay passes, so that news no reply waits on (a have per
    /// verified piece, to every peer) shares packets instead of costing a
    /// packet and a wakeup of the peer each.
    SendLater { link: LinkId, bytes: Vec<u8> },
    /// Queue `header` on `link`, then `len` bytes of `file` at `offset`
    /// (a piece message: the shell sends the mapped bytes, no copy).
    SendBlock {
        link: LinkId,
        header: [u8; 13],
        file: FileId,
        offset: u64,
        len: u32,
    },
    /// Queue `head`, the bencoded dict of `info`, then `tail` on `link` (a
    /// tracker announce: the shell sends the dict the torrent keeps, not a
    /// copy of it, which for a tree of 100,000 files is 4 MiB).
    SendInfo {
        link: LinkId,
        head: Vec<u8>,
        info: Arc<Info>,
        tail: Vec<u8>,
    },
    /// Open a TCP connection to `addr` as `link`; answer with
    /// `Engine::link_opened` or `Engine::link_closed`.
    Dial { link: LinkId, addr: SocketAddr },
    /// Close `link` once what is queued on it is sent; answer with
    /// `Engine::link_closed`.
    Close { link: LinkId },
    /// Run `job` off the event loop; answer with `Engine::job_done`.
    Job(Job),
    /// Limit the bytes sent to and received from peers, all links
    /// together, to these many per second (0: no limit), from now on.
    SetRates { upload: u64, download: u64 },
    /// The daemon was asked to stop.
    Stop,
}

impl Action {
    /// The bytes a `Send`, `SendLater` or `SendInfo` queues, end to end,
    /// and where: for the simulator and tests, where a copy costs nothing.
    pub fn bytes_sent(&self) -> Option<(LinkId, Vec<u8>)> {
        match self {
            Action::Send { link, bytes } | Action::SendLater { link, bytes } => {
                Some((*link, bytes.clone()))
            }
            Action::SendInfo {
                link,
                head,
                info,
                tail,
            } => Some((*link, [&head[..], &info.bencoded, tail].concat())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Make sure `length` bytes of disk are there for `file`.
    Allocate { tag: u64, file: FileId, length: u64 },
    /// Hash pieces `pieces` of `file` (`length` bytes, `piece_length` per
    /// piece): to share it, or to re-check a `.part` on resume.
    Hash {
        tag: u64,
        file: FileId,
        length: u64,
        piece_length: u32,
        pieces: Range<u32>,
    },
    /// Check the `length` bytes of `file` at `offset` (downloaded piece
    /// `piece` of `torrent`) against `expected`.
    Verify {
        tag: u64,
        torrent: InfoHash,
        piece: u32,
        expected: [u8; 20],
        file: FileId,
        offset: u64,
        length: u32,
    },
}

impl Job {
    /// The file the job reads or reserves.
    pub fn file(&self) -> FileId {
        match self {
            Job::Allocate { file, .. } | Job::Hash { file, .. } | Job::Verify { file, .. } => *file,
        }
    }
}

#[derive(Debug)]
pub enum JobDone {
    Allocated {
        tag: u64,
        result: io::Result<()>,
    },
    Hashed {
        tag: u64,
        pieces: Range<u32>,
        /// Concatenated 20-byte hashes of `pieces`.
        hashes: io::Result<Vec<u8>>,
    },
    Verified {
        tag: u64,
        piece: u32,
        /// `Ok(true)`: matched; `Ok(false)`: hash mismatch.
        result: io::Result<bool>,
    },
}
