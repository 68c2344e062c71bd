//! The engine's session with `sta-trackerd`: hello, announce every file,
//! report each verified piece, ask for peers and metadata. Responses come
//! in request order, so a queue of what each request was for is enough to
//! route them. The session reconnects with backoff and re-announces
//! everything, so a restarted tracker relearns the swarm; while up, it
//! sends keep-alives so that neither side finds it idle.

use super::action::LinkId;
use super::storage::Storage;
use super::time::Time;
use super::torrent::State;
use super::{Dial, Engine};
use crate::control::Code;
use crate::control::code;
use crate::limits::{MAX_LIST_PAGE, TRACKER_PROTOCOL_VERSION};
use crate::meta::Info;
use crate::wire::peer::InfoHash;
use crate::wire::tracker::{ErrorCode, ListEntry, Lookup, Pieces, Request, Response};
use log::{info, warn};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What a request sent to the tracker was for.
#[derive(Debug)]
pub enum Pending {
    Hello,
    /// Announce, have, leave: nothing to do with the answer but log errors.
    Update,
    Peers(InfoHash),
    /// A `get`: the download starts once the metadata comes.
    Meta {
        control: LinkId,
        out_dir: PathBuf,
        /// `get`'s globs: which files of a tree to fetch.
        only: Vec<String>,
        wanted: Lookup,
    },
    List {
        control: LinkId,
        entries: Vec<ListEntry>,
    },
    /// A `meta` request: the info dict goes back to the client.
    MetaOnly {
        control: LinkId,
        wanted: Lookup,
    },
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Peers wanted per get-peers request.
pub const PEERS_WANTED: u16 = 50;

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

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The session's link, while one is open or being opened.
    pub fn link(&self) -> Option<LinkId> {
        self.link
    }

    pub fn connected(&self) -> bool {
        self.link.is_some() && self.ready && !self.dialing
    }

    /// True while the first connection to the tracker is being made:
    /// requests that need it wait for it rather than fail.
    pub fn starting(&self) -> bool {
        !self.connected() && self.link.is_some()
    }
}

impl<S: Storage> Engine<S> {
    /// Sends `req` to the tracker, remembering what it was for. Dropped
    /// (with `false`) when the session is down.
    pub(super) fn tracker_send(&mut self, now: Time, req: &Request, why: Pending) -> bool {
        let Some(link) = self.tracker.link.filter(|_| self.tracker.connected()) else {
            return false;
        };
        self.send(link, |buf| req.encode(buf));
        *self.stats.tracker_requests.entry(req.kind()).or_default() += 1;
        if !matches!(req, Request::KeepAlive) {
            self.tracker.pending.push_back(why);
        }
        self.tracker.last_sent = now;
        true
    }

    pub(super) fn tracker_opened(&mut self, now: Time, link: LinkId) {
        let tr = &mut self.tracker;
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
    fn announce_request(&self, hash: &InfoHash) -> Option<Request> {
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
        Some(Request::Announce {
            info: t.info.bencoded.clone(),
            pieces,
        })
    }

    pub(super) fn announce(&mut self, now: Time, hash: &InfoHash) {
        if let Some(req) = self.announce_request(hash) {
            self.tracker_send(now, &req, Pending::Update);
        }
    }

    pub(super) fn ask_peers(&mut self, now: Time, hash: InfoHash) {
        let req = Request::GetPeers {
            info_hash: hash,
            max: PEERS_WANTED,
            piece: None,
        };
        self.tracker_send(now, &req, Pending::Peers(hash));
    }

    pub(super) fn tracker_input(&mut self, now: Time, input: &[u8]) -> usize {
        let mut used = 0;
        loop {
            match Response::decode(&input[used..]) {
                Ok(None) => return used,
                Ok(Some((Response::KeepAlive, n))) => used += n,
                Ok(Some((resp, n))) => {
                    used += n;
                    let why = self.tracker.pending.pop_front();
                    self.tracker_response(now, why, resp);
                }
                Err(e) => {
                    warn!("tracker sent a frame we cannot read ({e}); reconnecting");
                    self.tracker_reset(now);
                    return input.len();
                }
            }
        }
    }

    /// Ends the session on our side; it is dialed again after a backoff.
    fn tracker_reset(&mut self, now: Time) {
        if let Some(link) = self.tracker.link {
            self.close(link);
        }
        self.tracker_lost(now);
    }

    fn tracker_response(&mut self, now: Time, why: Option<Pending>, resp: Response) {
        if let Response::Error { code, .. } = &resp {
            *self.stats.tracker_errors.entry(code.0).or_default() += 1;
        }
        match (why, resp) {
            (
                Some(Pending::Hello),
                Response::Welcome {
                    idle_timeout_secs, ..
                },
            ) => {
                info!("connected to tracker {}", self.tracker.addr);
                self.tracker.ready = true;
                self.tracker.backoff = MIN_BACKOFF;
                self.tracker.idle_timeout = Duration::from_secs(idle_timeout_secs.max(1).into());
                self.unpark(now);
                let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
                for h in hashes {
                    self.announce(now, &h);
                    if let Some(t) = self.torrents.get_mut(&h) {
                        t.query_peers_now(now);
                    }
                }
            }
            (Some(Pending::Hello), other) => {
                warn!("tracker refused our hello: {other:?}");
                self.tracker_reset(now);
            }
            (Some(Pending::Peers(hash)), Response::Peers { peers, .. }) => {
                for p in &peers {
                    self.learn_listen(p.peer_id, p.addr);
                }
                let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
                self.dial_peers(&hash, &addrs);
            }
            (
                Some(Pending::Meta {
                    control,
                    out_dir,
                    only,
                    wanted,
                }),
                Response::Meta { info },
            ) => {
                if let Some(info) = self.checked_meta(control, &wanted, &info) {
                    self.start_download(now, control, info, out_dir, only);
                }
            }
            (Some(Pending::MetaOnly { control, wanted }), Response::Meta { info }) => {
                if let Some(info) = self.checked_meta(control, &wanted, &info) {
                    self.control_reply(control, crate::control::meta_line(&info));
                }
            }
            (
                Some(Pending::Meta { control, .. } | Pending::MetaOnly { control, .. }),
                Response::Error { code, message },
            ) => {
                let (kind, hint) = match code {
                    ErrorCode::FILE_NOT_FOUND => {
                        (code::NOT_FOUND, "; run `sta list` to see what is shared")
                    }
                    ErrorCode::AMBIGUOUS_NAME => (code::AMBIGUOUS, ""),
                    _ => (code::BAD_REQUEST, ""),
                };
                self.control_fail(control, kind, format!("{message}{hint}"));
            }
            (
                Some(Pending::List {
                    control,
                    mut entries,
                }),
                Response::ListPage {
                    total,
                    entries: page,
                },
            ) => {
                let got = page.len();
                entries.extend(page);
                if got > 0 && (entries.len() as u32) < total {
                    let req = Request::List {
                        offset: entries.len() as u32,
                        limit: MAX_LIST_PAGE,
                        filter: String::new(),
                    };
                    if !self.tracker_send(now, &req, Pending::List { control, entries }) {
                        let message = "lost the tracker while listing".into();
                        self.control_fail(control, code::TRACKER_UNREACHABLE, message);
                    }
                    return;
                }
                self.control_list_done(control, entries);
            }
            (Some(Pending::List { control, .. }), Response::Error { message, .. }) => {
                self.control_fail(control, code::BAD_REQUEST, message);
            }
            (Some(_), Response::Error { code, message }) => {
                warn!("tracker: {code}: {message}");
            }
            (Some(_), _) => {}
            (None, resp) => warn!("tracker sent an unrequested response: {resp:?}"),
        }
    }

    /// Metadata from the tracker, if it is what was asked for; else the
    /// control session is told why not.
    fn checked_meta(&mut self, control: LinkId, wanted: &Lookup, bytes: &[u8]) -> Option<Info> {
        match Info::from_bencoded(bytes) {
            Ok(info) if matches!(wanted, Lookup::Hash(h) if *h != info.info_hash) => {
                let message = "the tracker sent metadata for another file".into();
                self.control_fail(control, code::CORRUPT, message);
                None
            }
            Ok(info) => Some(info),
            Err(e) => {
                let message = format!("the tracker sent bad metadata: {e}");
                self.control_fail(control, code::CORRUPT, message);
                None
            }
        }
    }

    pub(super) fn tracker_lost(&mut self, now: Time) {
        let tr = &mut self.tracker;
        if tr.ready {
            warn!("lost the tracker {}; retrying", tr.addr);
        }
        tr.link = None;
        tr.dialing = false;
        tr.ready = false;
        tr.next_attempt = now + tr.backoff;
        tr.backoff = (tr.backoff * 2).min(MAX_BACKOFF);
        let pending = std::mem::take(&mut tr.pending);
        self.unpark(now);
        for p in pending {
            if let Pending::Meta { control, .. }
            | Pending::MetaOnly { control, .. }
            | Pending::List { control, .. } = p
            {
                let (code, message) = self.tracker_unreachable();
                self.control_fail(control, code, message);
            }
        }
    }

    /// Dials the tracker when it is time to (at once when `start`), and
    /// keeps an open session from looking idle.
    pub(super) fn tracker_tick(&mut self, now: Time, start: bool) {
        if self.tracker.link.is_none() {
            if start || now >= self.tracker.next_attempt {
                self.tracker.next_attempt = now + self.tracker.backoff;
                self.tracker.dialing = true;
                let link = self.dial(self.tracker.addr, Dial::Tracker);
                self.tracker.link = Some(link);
            }
            return;
        }
        if self.tracker.connected()
            && now.since(self.tracker.last_sent) > self.tracker.idle_timeout / 3
        {
            self.tracker_send(now, &Request::KeepAlive, Pending::Update);
        }
    }

    pub(super) fn tracker_unreachable(&self) -> (Code, String) {
        (
            code::TRACKER_UNREACHABLE,
            format!(
                "cannot reach the tracker at {}; check that sta-trackerd runs there (sta-peerd keeps retrying)",
                self.tracker.addr
            ),
        )
    }
}
