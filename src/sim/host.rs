//! One simulated machine: an engine (absent while the host is down), the
//! disk it keeps across restarts, the connections its links ride on, and
//! what its control sessions were told.

use super::net::{ConnId, HostId, LinkSpec};
use super::store::SimStorage;
use crate::engine::{Engine, LinkId, Time};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

/// The outcome of the `get` a host was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Running,
    /// The `done` event came at this time.
    Done(Time),
    /// The final reply was a failure: its JSON line.
    Failed(String),
}

pub struct Host<S: SimStorage> {
    pub id: HostId,
    pub listen: SocketAddr,
    pub spec: LinkSpec,
    pub engine: Option<Engine<S>>,
    /// The disk while the engine is down.
    pub parked: Option<S>,
    /// Sends corrupt blocks: every block it serves is forged.
    pub liar: bool,
    /// Never uploads (its engine has no upload slot): for the choker's
    /// tests.
    pub free_rider: bool,
    /// Bumped at every restart: events for an earlier engine are stale.
    pub epoch: u32,
    /// The connection and side of each engine link.
    pub links: HashMap<LinkId, (ConnId, usize)>,
    /// Control sessions open on the engine.
    pub controls: HashSet<LinkId>,
    pub outcome: Outcome,
    /// When the current `get` was asked for.
    pub asked: Option<Time>,
    /// The time of the engine timer event scheduled last.
    pub timer: Option<Time>,
    /// When the host's hash pool is free again.
    pub hash_free: Time,
    /// Block payload bytes received, and the part of it that duplicated
    /// blocks already received (end-game).
    pub block_bytes: u64,
    pub dup_bytes: u64,
    /// Blocks received, by (piece, begin), when duplicates are counted.
    pub seen: Option<HashSet<(u32, u32)>>,
}

impl<S: SimStorage> Host<S> {
    pub fn new(id: HostId, listen: SocketAddr, spec: LinkSpec) -> Host<S> {
        Host {
            id,
            listen,
            spec,
            engine: None,
            parked: Some(S::default()),
            liar: false,
            free_rider: false,
            epoch: 0,
            links: HashMap::new(),
            controls: HashSet::new(),
            outcome: Outcome::Running,
            asked: None,
            timer: None,
            hash_free: Time::ZERO,
            block_bytes: 0,
            dup_bytes: 0,
            seen: None,
        }
    }

    /// The disk, whether the engine runs or not.
    pub fn storage(&self) -> Option<&S> {
        match &self.engine {
            Some(e) => Some(e.storage()),
            None => self.parked.as_ref(),
        }
    }

    pub fn storage_mut(&mut self) -> Option<&mut S> {
        match &mut self.engine {
            Some(e) => Some(e.storage_mut()),
            None => self.parked.as_mut(),
        }
    }

    /// Notes a control reply: the final line of a `get` settles its
    /// outcome; progress events are not kept (a long run has millions).
    pub fn control_output(&mut self, now: Time, bytes: &[u8]) {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            // The bulk of what a get says; skipped cheaply.
            if line.starts_with(b"{\"event\":\"progress\"") {
                continue;
            }
            if contains(line, b"\"event\":\"done\"") {
                self.outcome = Outcome::Done(now);
            } else if contains(line, b"\"ok\":false") {
                self.outcome = Outcome::Failed(String::from_utf8_lossy(line).into_owned());
            }
        }
    }

    /// Records a received block; `header` is its piece-message header.
    pub fn block_received(&mut self, header: &[u8; 13], len: u32) {
        self.block_bytes += u64::from(len);
        if let Some(seen) = &mut self.seen {
            let n = |i: usize| {
                u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]])
            };
            if !seen.insert((n(5), n(9))) {
                self.dup_bytes += u64::from(len);
            }
        }
    }

    pub fn finish_time(&self) -> Option<Time> {
        match self.outcome {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
