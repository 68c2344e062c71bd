//! Counters of what the engine did, kept as plain state where things
//! happen (a piece verified, a peer banned, a tracker request sent), and
//! the rate meters the API reports. [`Engine::metrics`] hands them out
//! with the gauges of the moment; the shell only renders them.

use super::Engine;
use super::action::LinkId;
use super::storage::Storage;
use super::time::Time;
use super::torrent::RateMeter;
use crate::wire::peer::InfoHash;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
pub struct Stats {
    pub pieces_verified: u64,
    /// Pieces whose bytes did not match their SHA1.
    pub pieces_failed: u64,
    pub peers_banned: u64,
    /// Requests sent to the tracker, by kind (`hello`, `announce`, ...).
    pub tracker_requests: BTreeMap<&'static str, u64>,
    /// Error responses from the tracker, by error code.
    pub tracker_errors: BTreeMap<u16, u64>,
    /// Bytes of files no longer held, so totals never go down.
    pub retired_uploaded: u64,
    pub retired_downloaded: u64,
    /// Upload rate of each file, sampled each tick.
    pub(super) up: HashMap<InfoHash, RateMeter>,
    /// Download rate of each file, for its picker's end-game.
    pub(super) down: HashMap<InfoHash, RateMeter>,
    /// Upload and download rates of each peer session.
    pub(super) links: HashMap<LinkId, (RateMeter, RateMeter)>,
    /// When the meters are next sampled.
    next_sample: Time,
}

/// How often the rate meters are sampled: enough for their window of a
/// few seconds, and cheap for a simulator running thousands of engines.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One file's traffic, for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTraffic {
    pub info_hash: InfoHash,
    pub name: String,
    pub uploaded: u64,
    pub downloaded: u64,
}

/// What `/metrics` shows of an engine at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub peer_sessions: usize,
    pub control_sessions: usize,
    pub tracker_connected: bool,
    /// Files by state: checking, downloading, seeding (failed ones count
    /// under `failed`).
    pub files: BTreeMap<&'static str, usize>,
    /// Peer sessions past the handshake.
    pub connected_peers: usize,
    pub uploaded: u64,
    pub downloaded: u64,
    pub by_file: Vec<FileTraffic>,
    pub pieces_verified: u64,
    pub pieces_failed: u64,
    pub peers_banned: u64,
    pub tracker_requests: BTreeMap<&'static str, u64>,
    pub tracker_errors: BTreeMap<u16, u64>,
    pub uptime_secs: f64,
}

impl<S: Storage> Engine<S> {
    /// The counters and gauges at `now`.
    pub fn metrics(&self, now: Time) -> Metrics {
        let mut files: BTreeMap<&'static str, usize> =
            ["checking", "downloading", "seeding", "failed"]
                .into_iter()
                .map(|s| (s, 0))
                .collect();
        let mut by_file = Vec::new();
        for t in self.torrents.values() {
            let state = if t.failure().is_some() {
                "failed"
            } else {
                t.state().name()
            };
            *files.entry(state).or_default() += 1;
            by_file.push(FileTraffic {
                info_hash: t.info.info_hash,
                name: t.info.name.clone(),
                uploaded: t.uploaded(),
                downloaded: t.downloaded(),
            });
        }
        let s = &self.stats;
        Metrics {
            peer_sessions: self.peers.len(),
            control_sessions: self.controls.len(),
            tracker_connected: self.any_tracker(),
            files,
            connected_peers: self.peers.values().filter(|p| p.handshaken).count(),
            uploaded: s.retired_uploaded + by_file.iter().map(|f| f.uploaded).sum::<u64>(),
            downloaded: s.retired_downloaded + by_file.iter().map(|f| f.downloaded).sum::<u64>(),
            by_file,
            pieces_verified: s.pieces_verified,
            pieces_failed: s.pieces_failed,
            peers_banned: s.peers_banned,
            tracker_requests: s.tracker_requests.clone(),
            tracker_errors: s.tracker_errors.clone(),
            uptime_secs: now.as_secs_f64(),
        }
    }

    /// Samples the rate meters (each second, from the tick).
    pub(super) fn sample_meters(&mut self, now: Time) {
        let stats = &mut self.stats;
        if now < stats.next_sample {
            return;
        }
        stats.next_sample = now + SAMPLE_EVERY;
        stats.up.retain(|h, _| self.torrents.contains_key(h));
        stats.down.retain(|h, _| self.torrents.contains_key(h));
        for (hash, t) in self.torrents.iter_mut() {
            stats.up.entry(*hash).or_default().sample(now, t.uploaded());
            let down = stats.down.entry(*hash).or_default();
            down.sample(now, t.downloaded());
            t.picker.set_download_rate(down.rate());
        }
        stats.links.retain(|l, _| self.peers.contains_key(l));
        for (link, p) in &self.peers {
            let (up, down) = stats.links.entry(*link).or_default();
            up.sample(now, p.uploaded);
            down.sample(now, p.downloaded);
        }
    }

    /// The upload rate of file `hash`, bytes per second.
    pub(super) fn upload_rate(&self, hash: &InfoHash) -> u64 {
        self.stats.up.get(hash).map_or(0, RateMeter::rate)
    }

    /// The (upload, download) rates of a peer session.
    pub(super) fn link_rates(&self, link: LinkId) -> (u64, u64) {
        self.stats
            .links
            .get(&link)
            .map_or((0, 0), |(u, d)| (u.rate(), d.rate()))
    }
}
