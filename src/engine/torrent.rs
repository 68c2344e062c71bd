//! One file the engine shares or downloads: its metadata, which pieces are
//! verified, who is helping, and where it stands. Its state changes only
//! through the transition methods, each named for what happened.

use super::action::{FileId, LinkId};
use super::choker::Choker;
use super::picker::Picker;
use super::reveal::Reveal;
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
    /// Pieces held or not wanted (`--only` left out every file they
    /// touch): what the picker need not fetch. Equal to `have` without
    /// `--only`.
    settled: Bitfield,
    /// Pieces no wanted file touches, if only some files are wanted.
    unwanted: Option<Bitfield>,
    /// Which of `info.files()` are wanted (`None`: all).
    wanted_files: Option<Vec<bool>>,
    state: State,
    /// Set when the download cannot go on (disk full, I/O error);
    /// reported to watchers, cleared by [`Torrent::retry`].
    failure: Option<(Code, String)>,
    /// Where the finished file lands.
    out_dir: PathBuf,
    pub picker: Picker,
    pub choker: Choker,
    pub reveal: Reveal,
    /// Peer sessions of this file that completed the handshake.
    peers: Vec<LinkId>,
    /// Sessions that told us they are interested.
    interested: HashSet<LinkId>,
    /// Control sessions following a `get` of this file.
    watchers: Vec<LinkId>,
    uploaded: u64,
    downloaded: u64,
    /// Verified bytes received from each peer (by its listen address when
    /// known, else its remote address).
    from_peers: HashMap<SocketAddr, u64>,
    /// Bytes of pieces not yet verified, by sender: moved to `from_peers`
    /// when the piece verifies, dropped when it fails.
    unverified: HashMap<u32, HashMap<SocketAddr, u64>>,
    strikes: HashMap<SocketAddr, u32>,
    banned: HashSet<SocketAddr>,
    next_peer_query: Time,
    /// Verified bytes and when, sampled each tick, for the rate.
    rate: RateMeter,
    /// For each piece being verified, who sent its blocks.
    suspects: HashMap<u32, Vec<SocketAddr>>,
}

impl Torrent {
    /// Whether this file may be found or announced other than through its
    /// trackers. False for a private file (BEP 27): DHT and PEX, when they
    /// come, must skip it (neither exists yet).
    pub fn dht_pex_allowed(&self) -> bool {
        !self.info.private()
    }

    pub fn new(
        info: Arc<Info>,
        file: FileId,
        have: Bitfield,
        state: State,
        out_dir: PathBuf,
        upload_slots: usize,
    ) -> Torrent {
        let picker = Picker::new(info.geometry());
        let reveal = Reveal::new(&info.geometry());
        Torrent {
            info,
            file,
            settled: have.clone(),
            unwanted: None,
            wanted_files: None,
            have,
            state,
            failure: None,
            out_dir,
            picker,
            choker: Choker::new(upload_slots),
            reveal,
            peers: Vec::new(),
            interested: HashSet::new(),
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

    pub fn out_dir(&self) -> &std::path::Path {
        &self.out_dir
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

    /// Every wanted piece is held.
    pub fn is_complete(&self) -> bool {
        self.settled.is_complete()
    }

    /// Pieces held or not wanted: what need not be fetched.
    pub fn settled(&self) -> &Bitfield {
        &self.settled
    }

    /// Fetches only the pieces that the wanted entries of `info.files()`
    /// touch; `None`: every piece.
    pub fn want_only(&mut self, wanted: Option<Vec<bool>>) {
        self.settled = self.have.clone();
        self.unwanted = wanted.as_ref().map(|w| {
            let g = self.info.geometry();
            let mut unwanted = Bitfield::full(g.num_pieces());
            for (f, _) in self.info.files().iter().zip(w).filter(|(_, w)| **w) {
                for p in pieces_of(&g, &f) {
                    unwanted.clear(p);
                }
            }
            unwanted
        });
        if let Some(u) = &self.unwanted {
            for p in u.ones() {
                self.settled.set(p);
            }
        }
        self.wanted_files = wanted;
    }

    /// Wanted files (pad files not counted), and how many are complete.
    pub fn files_done(&self) -> (u32, u32) {
        let g = self.info.geometry();
        let (mut files, mut done) = (0, 0);
        for (i, f) in self.info.files().iter().enumerate() {
            let wanted = self
                .wanted_files
                .as_ref()
                .is_none_or(|w| w.get(i) == Some(&true));
            if f.pad || !wanted {
                continue;
            }
            files += 1;
            if pieces_of(&g, &f).all(|p| self.have.get(p)) {
                done += 1;
            }
        }
        (files, done)
    }

    /// Whether `piece` is one a wanted file needs.
    pub fn wants(&self, piece: u32) -> bool {
        self.unwanted.as_ref().is_none_or(|u| !u.get(piece))
    }

    /// Bytes of the wanted pieces (of the whole share without `--only`).
    pub fn bytes_wanted(&self) -> u64 {
        (0..self.info.num_pieces())
            .filter(|&p| self.wants(p))
            .map(|p| u64::from(self.info.piece_size(p)))
            .sum()
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

    // ---------------------------------------------------------- sessions

    /// Sessions of this file that completed the handshake.
    pub fn peers(&self) -> &[LinkId] {
        &self.peers
    }

    pub fn peer_joined(&mut self, link: LinkId) {
        self.peers.push(link);
    }

    /// A session ended: it no longer counts, and its slot and requests
    /// are freed.
    pub fn peer_left(&mut self, link: LinkId) {
        self.peers.retain(|&c| c != link);
        self.interested.remove(&link);
        self.picker.release_all(link);
        self.choker.release(link);
        self.reveal.leave(link);
    }

    /// The peer said it is interested in us, or no longer.
    pub fn peer_interest(&mut self, link: LinkId, interested: bool) {
        match interested {
            true => self.interested.insert(link),
            false => self.interested.remove(&link),
        };
    }

    /// Sessions interested in us.
    pub fn interested(&self) -> usize {
        self.interested.len()
    }

    /// Some session other than `link` is interested in us.
    pub fn others_interested(&self, link: LinkId) -> bool {
        self.interested.iter().any(|&l| l != link)
    }

    /// Whether to ask the tracker for peers now; if so, when next: soon
    /// while few peers are connected, rarely once there are enough.
    pub fn peer_query_due(&mut self, now: Time, few: Duration, many: Duration) -> bool {
        if !self.fetching() || now < self.next_peer_query {
            return false;
        }
        self.next_peer_query = now + if self.peers.len() < 4 { few } else { many };
        true
    }

    /// Ask the tracker for peers at the next chance.
    pub fn query_peers_now(&mut self, now: Time) {
        self.next_peer_query = now;
    }

    // ---------------------------------------------------------- watchers

    /// Control sessions following a `get` of this file.
    pub fn watchers(&self) -> &[LinkId] {
        &self.watchers
    }

    pub fn watch(&mut self, control: LinkId) {
        self.watchers.push(control);
    }

    pub fn unwatch(&mut self, control: LinkId) {
        self.watchers.retain(|&c| c != control);
    }

    /// The watchers, to be answered once and forgotten.
    pub fn take_watchers(&mut self) -> Vec<LinkId> {
        std::mem::take(&mut self.watchers)
    }

    // ---------------------------------------------------------- traffic

    pub fn uploaded(&self) -> u64 {
        self.uploaded
    }

    pub fn downloaded(&self) -> u64 {
        self.downloaded
    }

    /// Block bytes for a peer left the host.
    pub fn served(&mut self, len: u64) {
        self.uploaded += len;
    }

    /// A block of `piece` from `from` was accepted (not yet verified).
    pub fn block_received(&mut self, piece: u32, from: SocketAddr, len: u32) {
        self.downloaded += u64::from(len);
        let by = self.unverified.entry(piece).or_default();
        *by.entry(from).or_insert(0) += u64::from(len);
    }

    /// `piece` goes to verification; these sent its blocks.
    pub fn verifying(&mut self, piece: u32, suspects: Vec<SocketAddr>) {
        self.suspects.insert(piece, suspects);
    }

    /// `piece` was checked: its senders are credited if it matched, and
    /// returned, as suspects, if it did not.
    pub fn piece_checked(&mut self, piece: u32, matched: bool) -> Vec<SocketAddr> {
        self.picker.verified(piece);
        let suspects = self.suspects.remove(&piece).unwrap_or_default();
        let credit = self.unverified.remove(&piece).unwrap_or_default();
        if matched {
            self.have.set(piece);
            self.settled.set(piece);
            for (addr, bytes) in credit {
                *self.from_peers.entry(addr).or_insert(0) += bytes;
            }
        }
        suspects
    }

    /// Verified bytes received from each peer.
    pub fn from_peers(&self) -> impl Iterator<Item = (SocketAddr, u64)> + '_ {
        self.from_peers.iter().map(|(a, b)| (*a, *b))
    }

    /// Samples the verified bytes for the rate; returns them.
    pub fn sample_rate(&mut self, now: Time) -> u64 {
        let bytes = self.bytes_have();
        self.rate.sample(now, bytes);
        bytes
    }

    pub fn rate(&self) -> u64 {
        self.rate.rate()
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
        self.picker.pick(link, theirs, &self.settled, max, rng)
    }

    /// A resume check found `piece` intact on disk.
    pub fn piece_found(&mut self, piece: u32) {
        self.have.set(piece);
        self.settled.set(piece);
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

/// The pieces holding any byte of file `f` (none for an empty file).
fn pieces_of(g: &crate::meta::Geometry, f: &crate::meta::FileEntry) -> std::ops::Range<u32> {
    let pl = u64::from(g.piece_length().max(1));
    match f.length {
        0 => 0..0,
        n => (f.offset / pl) as u32..(f.offset + n).div_ceil(pl) as u32,
    }
}
