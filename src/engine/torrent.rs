//! One file the engine shares or downloads: its metadata, which pieces are
//! verified, who is helping, and where it stands. Its state changes only
//! through the transition methods, each named for what happened.

use super::action::{FileId, LinkId};
use super::choker::Choker;
use super::picker::Picker;
use super::time::Time;
use crate::bitfield::Bitfield;
use crate::control::Code;
use crate::meta::Info;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Pieces of an existing `.part` are being re-verified; `left` hash
    /// jobs remain.
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
    pub file: FileId,
    have: Bitfield,
    state: State,
    /// Set when the download cannot go on (disk full, I/O error);
    /// reported to watchers, cleared by [`Torrent::retry`].
    failure: Option<(Code, String)>,
    /// Where the finished file lands.
    pub out_dir: PathBuf,
    pub picker: Picker,
    pub choker: Choker,
    /// Peer sessions of this file that completed the handshake.
    pub peers: Vec<LinkId>,
    /// Control sessions following a `get` of this file.
    pub watchers: Vec<LinkId>,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Verified bytes received from each peer (by its listen address when
    /// known, else its remote address).
    pub from_peers: HashMap<SocketAddr, u64>,
    /// Bytes of pieces not yet verified, by sender: moved to `from_peers`
    /// when the piece verifies, dropped when it fails.
    pub unverified: HashMap<u32, HashMap<SocketAddr, u64>>,
    strikes: HashMap<SocketAddr, u32>,
    banned: HashSet<SocketAddr>,
    pub next_peer_query: Time,
    /// Verified bytes and when, sampled each tick, for the rate.
    pub rate: RateMeter,
    /// For each piece being verified, who sent its blocks.
    pub suspects: HashMap<u32, Vec<SocketAddr>>,
}

impl Torrent {
    pub fn new(
        info: Arc<Info>,
        file: FileId,
        have: Bitfield,
        state: State,
        out_dir: PathBuf,
        upload_slots: usize,
    ) -> Torrent {
        let picker = Picker::new(info.geometry());
        Torrent {
            info,
            file,
            have,
            state,
            failure: None,
            out_dir,
            picker,
            choker: Choker::new(upload_slots),
            peers: Vec::new(),
            watchers: Vec::new(),
            uploaded: 0,
            downloaded: 0,
            from_peers: HashMap::new(),
            unverified: HashMap::new(),
            strikes: HashMap::new(),
            banned: HashSet::new(),
            next_peer_query: Time::ZERO,
            rate: RateMeter::default(),
            suspects: HashMap::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn failure(&self) -> Option<&(Code, String)> {
        self.failure.as_ref()
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_complete()
    }

    /// Fetching goes on: downloading, and nothing failed.
    pub fn fetching(&self) -> bool {
        self.state == State::Downloading && self.failure.is_none()
    }

    pub fn bytes_have(&self) -> u64 {
        self.have
            .ones()
            .map(|p| u64::from(self.info.piece_size(p)))
            .sum()
    }

    /// Chooses up to `max` blocks to request from `link`, which holds
    /// `theirs` (see [`Picker::pick`]).
    pub fn pick(
        &mut self,
        link: LinkId,
        theirs: &Bitfield,
        max: usize,
        rng: &mut crate::rng::Rng,
    ) -> Vec<crate::wire::peer::Block> {
        self.picker.pick(link, theirs, &self.have, max, rng)
    }

    /// A resume check found `piece` intact on disk.
    pub fn piece_found(&mut self, piece: u32) {
        self.have.set(piece);
    }

    /// One resume-check job ended; true when it was the last, and the
    /// torrent now downloads what is missing.
    pub fn check_job_done(&mut self) -> bool {
        let State::Checking { left } = &mut self.state else {
            return false;
        };
        *left = left.saturating_sub(1);
        if *left > 0 {
            return false;
        }
        self.state = State::Downloading;
        true
    }

    /// A downloaded piece matched its hash.
    pub fn piece_verified(&mut self, piece: u32) {
        self.have.set(piece);
    }

    /// Every piece verified and the file is under its final name.
    pub fn published(&mut self) {
        self.state = State::Seeding;
    }

    /// The download cannot go on; the first reason is kept.
    pub fn fail(&mut self, code: Code, message: String) {
        if self.failure.is_none() {
            self.failure = Some((code, message));
        }
    }

    /// The user asked again after a failure (space freed, say): pieces
    /// in progress are fetched again whole; verified pieces are kept.
    /// True when there was a failure to clear.
    pub fn retry(&mut self) -> bool {
        if self.failure.take().is_none() {
            return false;
        }
        self.picker.drop_partials();
        self.unverified.clear();
        true
    }

    /// The file is gone from under us or the user removed it.
    pub fn abandon(&mut self, code: Code, message: String) {
        self.failure = Some((code, message));
    }

    pub fn is_banned(&self, addr: &SocketAddr) -> bool {
        self.banned.contains(addr)
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
    samples: Vec<(Time, u64)>,
}

const RATE_WINDOW: Duration = Duration::from_secs(3);

impl RateMeter {
    pub fn sample(&mut self, now: Time, total: u64) {
        self.samples.push((now, total));
        self.samples.retain(|(t, _)| now.since(*t) <= RATE_WINDOW);
    }

    pub fn rate(&self) -> u64 {
        match (self.samples.first(), self.samples.last()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                ((b1 - b0) as f64 / t1.since(*t0).as_secs_f64()) as u64
            }
            _ => 0,
        }
    }
}
