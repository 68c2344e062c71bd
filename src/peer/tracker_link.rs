//! The daemon's session with `sta-trackerd`: hello, announce every file,
//! report each verified piece, ask for peers and metadata. Responses come
//! in request order, so a queue of what each request was for is enough to
//! route them. The link reconnects with backoff and re-announces
//! everything, so a restarted tracker relearns the swarm.

use super::daemon::{Daemon, Session};
use super::torrent::State;
use crate::limits::{MAX_LIST_PAGE, TRACKER_PROTOCOL_VERSION};
use crate::meta::Info;
use crate::reactor::{ConnId, Ctx, Flow, OutQueue};
use crate::wire::tracker::{ListEntry, Lookup, Pieces, Request, Response};
use log::{info, warn};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a request sent to the tracker was for.
#[derive(Debug)]
pub enum Pending {
    Hello,
    /// Announce, have, leave: nothing to do with the answer but log errors.
    Update,
    Peers([u8; 20]),
    Meta {
        control: ConnId,
        out_dir: PathBuf,
        wanted: Lookup,
    },
    List {
        control: ConnId,
        entries: Vec<ListEntry>,
    },
    /// A `meta` request: the info dict goes back to the client.
    MetaOnly {
        control: ConnId,
        wanted: Lookup,
    },
}

pub struct TrackerLink {
    pub addr: SocketAddr,
    pub conn: Option<ConnId>,
    /// A dial is under way.
    pub dialing: bool,
    /// The hello was answered: requests may flow.
    pub ready: bool,
    pub pending: VecDeque<Pending>,
    pub backoff: Duration,
    pub next_attempt: Instant,
    pub last_sent: Instant,
    pub idle_timeout: Duration,
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Peers wanted per get-peers request.
pub const PEERS_WANTED: u16 = 50;

impl TrackerLink {
    pub fn new(addr: SocketAddr) -> TrackerLink {
        TrackerLink {
            addr,
            conn: None,
            dialing: false,
            ready: false,
            pending: VecDeque::new(),
            backoff: MIN_BACKOFF,
            next_attempt: Instant::now(),
            last_sent: Instant::now(),
            idle_timeout: Duration::from_secs(120),
        }
    }

    pub fn connected(&self) -> bool {
        self.conn.is_some() && self.ready
    }
}

impl Daemon {
    /// Sends `req` to the tracker, remembering what it was for. Dropped
    /// (with `false`) when the link is down.
    pub fn tracker_send(&mut self, ctx: &mut Ctx<Session>, req: &Request, why: Pending) -> bool {
        let Some(id) = self.tracker.conn.filter(|_| self.tracker.ready) else {
            return false;
        };
        let mut buf = Vec::new();
        req.encode(&mut buf);
        ctx.send(id, buf);
        self.tracker.pending.push_back(why);
        self.tracker.last_sent = Instant::now();
        true
    }

    pub fn tracker_dialed(&mut self, id: ConnId, out: &mut OutQueue) {
        self.tracker.dialing = false;
        self.tracker.conn = Some(id);
        self.tracker.ready = false;
        self.tracker.pending.clear();
        self.tracker.pending.push_back(Pending::Hello);
        out.push_with(|buf| {
            Request::Hello {
                version: TRACKER_PROTOCOL_VERSION,
                peer_id: self.peer_id,
                listen_port: self.config.listen_port,
            }
            .encode(buf)
        });
    }

    /// The announce for one file, with what we hold of it.
    pub fn announce_request(&self, hash: &[u8; 20]) -> Option<Request> {
        let t = self.torrents.get(hash)?;
        if matches!(t.state, State::Checking { .. })
            || t.have.count() == 0 && t.state != State::Downloading
        {
            return None;
        }
        let pieces = if t.have.is_complete() {
            Pieces::All
        } else {
            Pieces::Bitfield(t.have.as_bytes().to_vec())
        };
        Some(Request::Announce {
            info: t.info.bencoded.clone(),
            pieces,
        })
    }

    pub fn announce(&mut self, ctx: &mut Ctx<Session>, hash: &[u8; 20]) {
        if let Some(req) = self.announce_request(hash) {
            self.tracker_send(ctx, &req, Pending::Update);
        }
    }

    pub fn tracker_data(&mut self, ctx: &mut Ctx<Session>, input: &[u8]) -> Flow {
        let mut used = 0;
        loop {
            match Response::decode(&input[used..]) {
                Ok(None) => return Flow { used, close: false },
                Ok(Some((Response::KeepAlive, n))) => used += n,
                Ok(Some((resp, n))) => {
                    used += n;
                    let why = self.tracker.pending.pop_front();
                    self.tracker_response(ctx, why, resp);
                }
                Err(e) => {
                    warn!("tracker sent a frame we cannot read ({e}); reconnecting");
                    return Flow { used, close: true };
                }
            }
        }
    }

    fn tracker_response(&mut self, ctx: &mut Ctx<Session>, why: Option<Pending>, resp: Response) {
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
                self.unpark(ctx);
                let hashes: Vec<[u8; 20]> = self.torrents.keys().copied().collect();
                for h in hashes {
                    self.announce(ctx, &h);
                    if let Some(t) = self.torrents.get_mut(&h) {
                        t.next_peer_query = Instant::now();
                    }
                }
            }
            (Some(Pending::Hello), other) => {
                warn!("tracker refused our hello: {other:?}");
                if let Some(id) = self.tracker.conn {
                    ctx.close(id);
                }
            }
            (Some(Pending::Peers(hash)), Response::Peers { peers, .. }) => {
                let addrs: Vec<SocketAddr> = peers.iter().map(|p| p.addr).collect();
                self.dial_peers(ctx, &hash, &addrs);
            }
            (
                Some(Pending::Meta {
                    control,
                    out_dir,
                    wanted,
                }),
                Response::Meta { info },
            ) => match Info::from_bencoded(&info) {
                Ok(info) if matches!(&wanted, Lookup::Hash(h) if *h != info.info_hash) => {
                    self.control_fail(
                        ctx,
                        control,
                        "corrupt",
                        "the tracker sent metadata for another file".into(),
                    );
                }
                Ok(info) => self.start_download(ctx, control, info, out_dir),
                Err(e) => self.control_fail(
                    ctx,
                    control,
                    "corrupt",
                    format!("the tracker sent bad metadata: {e}"),
                ),
            },
            (Some(Pending::MetaOnly { control, wanted }), Response::Meta { info }) => {
                match Info::from_bencoded(&info) {
                    Ok(info) if matches!(&wanted, Lookup::Hash(h) if *h != info.info_hash) => {
                        self.control_fail(
                            ctx,
                            control,
                            "corrupt",
                            "the tracker sent metadata for another file".into(),
                        );
                    }
                    Ok(info) => self.control_reply(ctx, control, crate::control::meta_line(&info)),
                    Err(e) => self.control_fail(
                        ctx,
                        control,
                        "corrupt",
                        format!("the tracker sent bad metadata: {e}"),
                    ),
                }
            }
            (
                Some(Pending::Meta { control, .. } | Pending::MetaOnly { control, .. }),
                Response::Error { code, message },
            ) => {
                let kind = match code {
                    crate::wire::tracker::ErrorCode::FILE_NOT_FOUND => "not_found",
                    crate::wire::tracker::ErrorCode::AMBIGUOUS_NAME => "ambiguous",
                    _ => "bad_request",
                };
                let hint = match kind {
                    "not_found" => "; run `sta list` to see what is shared",
                    _ => "",
                };
                self.control_fail(ctx, control, kind, format!("{message}{hint}"));
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
                    if self.tracker_send(ctx, &req, Pending::List { control, entries }) {
                        return;
                    }
                    return self.control_fail(
                        ctx,
                        control,
                        "tracker_unreachable",
                        "lost the tracker while listing".into(),
                    );
                }
                self.control_list_done(ctx, control, entries);
            }
            (Some(Pending::List { control, .. }), Response::Error { message, .. }) => {
                self.control_fail(ctx, control, "bad_request", message);
            }
            (Some(_), Response::Error { code, message }) => {
                warn!("tracker: {code}: {message}");
            }
            (Some(_), _) => {}
            (None, resp) => warn!("tracker sent an unrequested response: {resp:?}"),
        }
    }

    pub fn tracker_closed(&mut self, ctx: &mut Ctx<Session>) {
        if self.tracker.ready {
            warn!("lost the tracker {}; retrying", self.tracker.addr);
        }
        self.tracker.conn = None;
        self.tracker.dialing = false;
        self.tracker.ready = false;
        let pending = std::mem::take(&mut self.tracker.pending);
        self.tracker.next_attempt = Instant::now() + self.tracker.backoff;
        self.tracker.backoff = (self.tracker.backoff * 2).min(MAX_BACKOFF);
        self.unpark(ctx);
        for p in pending {
            if let Pending::Meta { control, .. }
            | Pending::MetaOnly { control, .. }
            | Pending::List { control, .. } = p
            {
                let (code, message) = self.tracker_unreachable();
                self.control_fail(ctx, control, code, message);
            }
        }
    }

    /// Dials the tracker now (at start-up) rather than at the first tick.
    pub fn tracker_start(&mut self, ctx: &mut Ctx<Session>) {
        self.tracker.next_attempt = Instant::now();
        self.tracker_tick(ctx, Instant::now());
    }

    pub fn tracker_tick(&mut self, ctx: &mut Ctx<Session>, now: Instant) {
        if self.tracker.conn.is_none() && !self.tracker.dialing {
            if now >= self.tracker.next_attempt {
                self.tracker.next_attempt = now + self.tracker.backoff;
                self.tracker.dialing = true;
                ctx.dial(self.tracker.addr, Session::Tracker);
            }
            return;
        }
        if self.tracker.conn.is_none() {
            return;
        }
        if self.tracker.ready
            && now.duration_since(self.tracker.last_sent) > self.tracker.idle_timeout / 3
        {
            self.tracker_send(ctx, &Request::KeepAlive, Pending::Update);
            // A keep-alive gets no response: take back its queue entry.
            self.tracker.pending.pop_back();
        }
    }
}
