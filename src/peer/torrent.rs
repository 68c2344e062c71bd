//! One file the daemon shares or downloads: its metadata, the bytes on
//! disk, which pieces are verified, and who is helping.

use super::picker::Picker;
use crate::bitfield::Bitfield;
use crate::meta::Info;
use crate::reactor::ConnId;
use crate::storage::Store;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Pieces of an existing `.part` are being re-verified.
    Checking {
        left: u32,
    },
    Downloading,
    Seeding,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Checking { .. } => "checking",
            State::Downloading => "downloading",
            State::Seeding => "seeding",
        }
    }
}

/// Hash failures a peer may cause before it is dropped and never dialed
/// again for this file.
pub const MAX_STRIKES: u32 = 2;

pub struct Torrent {
    pub info: Arc<Info>,
    pub store: Store,
    pub have: Bitfield,
    pub state: State,
    /// Where the finished file lands.
    pub out_dir: PathBuf,
    pub picker: Picker,
    /// Peer sessions of this file that completed the handshake.
    pub peers: Vec<ConnId>,
    /// Control connections following a `get` of this file.
    pub watchers: Vec<ConnId>,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Verified bytes received from each peer (by its listen address when
    /// known, else its remote address).
    pub from_peers: HashMap<SocketAddr, u64>,
    /// Bytes of pieces not yet verified, by sender: moved to `from_peers`
    /// when the piece verifies, dropped when it fails.
    pub unverified: HashMap<u32, HashMap<SocketAddr, u64>>,
    pub strikes: HashMap<SocketAddr, u32>,
    pub banned: HashSet<SocketAddr>,
    pub next_peer_query: Instant,
    /// Verified bytes and when, sampled each tick, for the rate.
    pub rate: RateMeter,
    /// Set when the file could not be published; reported to watchers.
    pub failure: Option<(&'static str, String)>,
    /// Peers we unchoke now (at most the upload slots).
    pub unchoked: usize,
    /// For each piece being verified, who sent its blocks.
    pub suspects: HashMap<u32, Vec<SocketAddr>>,
}

impl Torrent {
    pub fn new(
        info: Arc<Info>,
        store: Store,
        have: Bitfield,
        state: State,
        out_dir: PathBuf,
    ) -> Torrent {
        let picker = Picker::new(info.piece_length, info.length, info.num_pieces());
        Torrent {
            info,
            store,
            have,
            state,
            out_dir,
            picker,
            peers: Vec::new(),
            watchers: Vec::new(),
            uploaded: 0,
            downloaded: 0,
            from_peers: HashMap::new(),
            unverified: HashMap::new(),
            strikes: HashMap::new(),
            banned: HashSet::new(),
            next_peer_query: Instant::now(),
            rate: RateMeter::default(),
            failure: None,
            unchoked: 0,
            suspects: HashMap::new(),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_complete()
    }

    pub fn bytes_have(&self) -> u64 {
        self.have
            .ones()
            .map(|p| u64::from(self.info.piece_size(p)))
            .sum()
    }

    /// Counts a failed piece against `addr`; true when this strike bans it.
    pub fn strike(&mut self, addr: SocketAddr) -> bool {
        let n = self.strikes.entry(addr).or_insert(0);
        *n += 1;
        *n >= MAX_STRIKES && self.banned.insert(addr)
    }
}

/// Bytes per second over a sliding window of a few seconds.
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: Vec<(Instant, u64)>,
}

const RATE_WINDOW: Duration = Duration::from_secs(3);

impl RateMeter {
    pub fn sample(&mut self, now: Instant, total: u64) {
        self.samples.push((now, total));
        self.samples
            .retain(|(t, _)| now.duration_since(*t) <= RATE_WINDOW);
    }

    pub fn rate(&self) -> u64 {
        match (self.samples.first(), self.samples.last()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                ((b1 - b0) as f64 / t1.duration_since(*t0).as_secs_f64()) as u64
            }
            _ => 0,
        }
    }
}
