//! The engine's sessions with its `sta-trackerd`s: hello, announce every
//! file, report each verified piece, ask for peers and metadata. There may
//! be several trackers; each gets a session of its own and hears every
//! announce, have and leave, so that any one of them can answer for the
//! whole swarm while the others are down (spec/tracker.md, "Several
//! trackers"). Responses come in request order, so a queue per session of
//! what each request was for is enough to route them. A session reconnects
//! with backoff and re-announces everything, so a restarted tracker
//! relearns the swarm; while up, it sends keep-alives so that neither side
//! finds it idle.

use super::action::{Action, LinkId};
use super::query::QueryId;
use super::storage::Storage;
use super::time::Time;
use super::torrent::State;
use super::{Dial, Engine};
use crate::control::Code;
use crate::control::code;
use crate::limits::TRACKER_PROTOCOL_VERSION;
use crate::meta::Info;
use crate::wire::peer::InfoHash;
use crate::wire::tracker::{Pieces, Request, Response, announce_frame};
use log::{info, warn};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Which of the engine's trackers: an index into its list.
pub type TrackerId = usize;

/// What a request sent to a tracker was for.
#[derive(Debug)]
pub enum Pending {
    Hello,
    /// Announce, have, leave: nothing to do with the answer but log errors.
    Update,
    Peers(InfoHash),
    /// A page of a `list` query, after `got` entries from this tracker.
    List {
        query: QueryId,
        got: u32,
    },
    /// The metadata asked for by a `get` or `meta` query.
    Meta(QueryId),
    /// AcceptDials: an older tracker refuses it (unknown message), and
    /// then simply sends no Dial.
    AcceptDials,
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Peers wanted per get-peers request.
pub const PEERS_WANTED: u16 = 50;

/// One tracker's session.
pub struct TrackerClient {
    addr: SocketAddr,
    /// The session, once dialed (it may not be up yet).
    link: Option<LinkId>,
    dialing: bool,
    /// The hello was answered: requests may flow.
    ready: bool,
    pending: VecDeque<Pending>,
    backoff: Duration,
    next_attempt: Time,
    last_sent: Time,
    idle_timeout: Duration,
}

impl TrackerClient {
    pub fn new(addr: SocketAddr, now: Time) -> TrackerClient {
        TrackerClient {
            addr,
            link: None,
            dialing: false,
            ready: false,
            pending: VecDeque::new(),
            backoff: MIN_BACKOFF,
            next_attempt: now,
            last_sent: now,
            idle_timeout: Duration::from_secs(120),
        }
    }

    pub fn connected(&self) -> bool {
        self.link.is_some() && self.ready && !self.dialing
    }

    /// True while a connection to the tracker is being made: requests
    /// that need it may wait for it rather than fail.
    pub fn starting(&self) -> bool {
        !self.connected() && self.link.is_some()
    }
}

impl<S: Storage> Engine<S> {
    /// The tracker whose session runs on `link`.
    pub(super) fn tracker_of(&self, link: LinkId) -> Option<TrackerId> {
        self.trackers.iter().position(|t| t.link == Some(link))
    }

    /// True when at least one tracker session is up.
    pub(super) fn any_tracker(&self) -> bool {
        self.trackers.iter().any(TrackerClient::connected)
    }

    /// True when no session is up but one is being made: requests that
    /// need a tracker wait for it.
    pub(super) fn trackers_starting(&self) -> bool {
        !self.any_tracker() && self.trackers.iter().any(TrackerClient::starting)
    }

    /// The trackers whose sessions are up.
    pub(super) fn live_trackers(&self) -> Vec<TrackerId> {
        (0..self.trackers.len())
            .filter(|&i| self.trackers[i].connected())
            .collect()
    }

    /// Sends `req` to tracker `i`, remembering what it was for. Dropped
    /// (with `false`) when its session is down.
    pub(super) fn tracker_send(
        &mut self,
        now: Time,
        i: TrackerId,
        req: &Request,
        why: Pending,
    ) -> bool {
        let Some(link) = self.tracker_link(i) else {
            return false;
        };
        self.send(link, |buf| req.encode(buf));
        let why = (!matches!(req, Request::KeepAlive)).then_some(why);
        self.tracker_sent(now, i, req.kind(), why);
        true
    }

    /// Tracker `i`'s session, if it is up.
    fn tracker_link(&self, i: TrackerId) -> Option<LinkId> {
        self.trackers
            .get(i)
            .filter(|t| t.connected())
            .and_then(|t| t.link)
    }

    /// Counts a request of `kind` sent to tracker `i`, whose answer `why`
    /// awaits (none for a keep-alive).
    fn tracker_sent(&mut self, now: Time, i: TrackerId, kind: &'static str, why: Option<Pending>) {
        *self.stats.tracker_requests.entry(kind).or_default() += 1;
        let tr = &mut self.trackers[i];
        tr.pending.extend(why);
        tr.last_sent = now;
    }

    /// Sends an update (announce, have, leave) to every live tracker.
    pub(super) fn tracker_broadcast(&mut self, now: Time, req: &Request) {
        for i in self.live_trackers() {
            self.tracker_send(now, i, req, Pending::Update);
        }
    }

    pub(super) fn tracker_opened(&mut self, now: Time, i: TrackerId, link: LinkId) {
        let Some(tr) = self.trackers.get_mut(i) else {
            return;
        };
        tr.dialing = false;
        tr.ready = false;
        tr.pending.clear();
        tr.pending.push_back(Pending::Hello);
        tr.last_sent = now;
        let hello = Request::Hello {
            version: TRACKER_PROTOCOL_VERSION,
            peer_id: self.peer_id,
            listen_port: self.config.listen_port,
        };
        self.send(link, |buf| hello.encode(buf));
        *self.stats.tracker_requests.entry("hello").or_default() += 1;
    }

    /// The announce for one file, with what we hold of it.
    fn announce_pieces(&self, hash: &InfoHash) -> Option<(Arc<Info>, Pieces)> {
        let t = self.torrents.get(hash)?;
        if matches!(t.state(), State::Checking { .. })
            || t.have().count() == 0 && t.state() != State::Downloading
        {
            return None;
        }
        let pieces = match t.have().is_complete() {
            true => Pieces::All,
            false => Pieces::Bitfield(t.have().as_bytes().to_vec()),
        };
        Some((t.info.clone(), pieces))
    }

    /// Announces one file to tracker `i`. The frame is written from the
    /// torrent's own dict: a `Request` would hold a copy of it.
    fn announce_to(&mut self, now: Time, i: TrackerId, hash: &InfoHash) {
        let (Some(link), Some((info, pieces))) = (self.tracker_link(i), self.announce_pieces(hash))
        else {
            return;
        };
        let (head, tail) = announce_frame(info.bencoded.len(), &pieces);
        self.actions.push_back(Action::SendInfo {
            link,
            head,
            info,
            tail,
        });
        self.tracker_sent(now, i, "announce", Some(Pending::Update));
    }

    /// Announces one file to every live tracker.
    pub(super) fn announce(&mut self, now: Time, hash: &InfoHash) {
        for i in self.live_trackers() {
            self.announce_to(now, i, hash);
        }
    }

    fn get_peers(hash: InfoHash) -> Request {
        Request::GetPeers {
            info_hash: hash,
            max: PEERS_WANTED,
            piece: None,
        }
    }

    /// Asks every live tracker for peers of a file: each may know peers
    /// the others do not (BitTorrent clients announce to one at a time).
    pub(super) fn ask_peers(&mut self, now: Time, hash: InfoHash) {
        for i in self.live_trackers() {
            self.tracker_send(now, i, &Self::get_peers(hash), Pending::Peers(hash));
        }
    }

    pub(super) fn tracker_input(&mut self, now: Time, i: TrackerId, input: &[u8]) -> usize {
        let mut used = 0;
        loop {
            match Response::decode(&input[used..]) {
                Ok(None) => return used,
                Ok(Some((Response::KeepAlive, n))) => used += n,
                // Unsolicited: it answers no request, so it takes no
                // place in the queue of pending ones.
                Ok(Some((Response::Dial { info_hash, addr }, n))) => {
                    used += n;
                    self.tracker_dial(now, info_hash, addr);
                }
                Ok(Some((resp, n))) => {
                    used += n;
                    let why = self.trackers[i].pending.pop_front();
                    self.tracker_response(now, i, why, resp);
                    if self.trackers[i].link.is_none() {
                        // The response ended the session (a refused hello).
                        return input.len();
                    }
                }
                Err(e) => {
                    warn!(
                        "tracker {} sent a frame we cannot read ({e}); reconnecting",
                        self.trackers[i].addr
                    );
                    self.tracker_reset(now, i);
                    return input.len();
                }
            }
        }
    }

    /// Ends a session on our side; it is dialed again after a backoff.
    fn tracker_reset(&mut self, now: Time, i: TrackerId) {
        if let Some(link) = self.trackers[i].link {
            self.close(link);
        }
        self.tracker_lost(now, i);
    }

    fn tracker_response(&mut self, now: Time, i: TrackerId, why: Option<Pending>, resp: Response) {
        if let Response::Error { code, .. } = &resp {
            *self.stats.tracker_errors.entry(code.0).or_default() += 1;
        }
        match (why, resp) {
            (
                Some(Pending::Hello),
                Response::Welcome {
                    idle_timeout_secs, ..
                },
            ) => self.tracker_welcomed(now, i, idle_timeout_secs),
            (Some(Pending::Hello), other) => {
                warn!(
                    "tracker {} refused our hello: {other:?}",
                    self.trackers[i].addr
                );
                self.tracker_reset(now, i);
            }
            (Some(Pending::Peers(hash)), Response::Peers { peers, .. }) => {
                for p in &peers {
                    self.learn_listen(p.peer_id, p.addr);
                }
                let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
                self.dial_peers(&hash, &addrs);
            }
            (Some(Pending::List { query, got }), resp) => {
                self.list_answer(now, i, query, got, resp)
            }
            (Some(Pending::Meta(query)), resp) => self.meta_answer(now, query, resp),
            (Some(Pending::AcceptDials), Response::Error { code, .. }) => info!(
                "tracker {} sends no Dials (error {code}): an older sta-trackerd",
                self.trackers[i].addr
            ),
            (Some(_), Response::Error { code, message }) => {
                warn!("tracker {}: {code}: {message}", self.trackers[i].addr);
            }
            (Some(_), _) => {}
            (None, resp) => warn!(
                "tracker {} sent an unrequested response: {resp:?}",
                self.trackers[i].addr
            ),
        }
    }

    /// A session is up: the tracker hears of every file we hold, as if it
    /// had never seen us (it may have restarted), and the trackers are
    /// asked for peers.
    fn tracker_welcomed(&mut self, now: Time, i: TrackerId, idle_timeout_secs: u32) {
        let tr = &mut self.trackers[i];
        info!("connected to tracker {}", tr.addr);
        tr.ready = true;
        tr.backoff = MIN_BACKOFF;
        tr.idle_timeout = Duration::from_secs(idle_timeout_secs.max(1).into());
        self.unpark(now);
        // Before the announces, so that no BitTorrent client announcing
        // meanwhile is missed. Not in a TLS swarm: its clients (libtorrent
        // SSL torrents; Transmission has none) reach us over TCP, with no
        // uTP to refuse, and a second session dialed to an SSL peer left
        // libtorrent's download of its last piece stalled (tls_interop).
        if self.swarm_ca.is_none() {
            self.tracker_send(now, i, &Request::AcceptDials, Pending::AcceptDials);
        }
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for h in hashes {
            self.announce_to(now, i, &h);
            // Asked at the next tick rather than now, so that the peers
            // announced by that tick are among the answer.
            if let Some(t) = self.torrents.get_mut(&h) {
                t.query_peers_now(now);
            }
        }
        self.vouch_to(now, i);
    }

    pub(super) fn tracker_lost(&mut self, now: Time, i: TrackerId) {
        let Some(tr) = self.trackers.get_mut(i) else {
            return;
        };
        if tr.ready {
            warn!("lost the tracker {}; retrying", tr.addr);
        }
        tr.link = None;
        tr.dialing = false;
        tr.ready = false;
        tr.next_attempt = now + tr.backoff;
        tr.backoff = (tr.backoff * 2).min(MAX_BACKOFF);
        let pending = std::mem::take(&mut tr.pending);
        for p in pending {
            if let Pending::List { query, .. } | Pending::Meta(query) = p {
                self.query_lost(now, query);
            }
        }
        self.unpark(now);
    }

    /// Dials each tracker when it is time to (at once when `start`), and
    /// keeps open sessions from looking idle.
    pub(super) fn tracker_tick(&mut self, now: Time, start: bool) {
        for i in 0..self.trackers.len() {
            let tr = &mut self.trackers[i];
            if tr.link.is_none() {
                if start || now >= tr.next_attempt {
                    tr.next_attempt = now + tr.backoff;
                    tr.dialing = true;
                    let addr = tr.addr;
                    let link = self.dial(addr, Dial::Tracker(i));
                    self.trackers[i].link = Some(link);
                }
                continue;
            }
            if tr.connected() && now.since(tr.last_sent) > tr.idle_timeout / 3 {
                self.tracker_send(now, i, &Request::KeepAlive, Pending::Update);
            }
        }
        self.query_tick(now);
    }

    pub(super) fn tracker_unreachable(&self) -> (Code, String) {
        /// What a daemon with no `--tracker` says to what needs one.
        const NO_TRACKER: &str = "this sta-peerd runs with no tracker (no --tracker given): there is no catalog to list or to look names up in; get a file by its info hash or magnet link with peers to fetch it from (x.pe), and share files by giving their magnet links to the other peers (`sta status --json`)";
        let addrs: Vec<String> = self.trackers.iter().map(|t| t.addr.to_string()).collect();
        let message = match addrs.len() {
            0 => NO_TRACKER.to_owned(),
            1 => format!(
                "cannot reach the tracker at {}; check that sta-trackerd runs there (sta-peerd keeps retrying)",
                addrs[0]
            ),
            _ => format!(
                "cannot reach any of the trackers {}; check that sta-trackerd runs there (sta-peerd keeps retrying)",
                addrs.join(", ")
            ),
        };
        (code::TRACKER_UNREACHABLE, message)
    }

    /// The tracker a status shows first: the first with a session up,
    /// else the first configured.
    pub(super) fn main_tracker(&self) -> (SocketAddr, bool) {
        let first = self.trackers.iter().find(|t| t.connected());
        match first.or(self.trackers.first()) {
            Some(t) => (t.addr, t.connected()),
            None => (self.config.listen, false), // no trackers: never built
        }
    }

    /// The trackers with their session states, in configured order.
    pub(super) fn tracker_states(&self) -> Vec<(SocketAddr, bool)> {
        self.trackers
            .iter()
            .map(|t| (t.addr, t.connected()))
            .collect()
    }
}
