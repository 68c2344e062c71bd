//! Control requests that the trackers answer (`list`, and `get` or `meta`
//! of a file this daemon does not hold). Each goes to every live tracker
//! and the answers are merged: a list is the union of their catalogs, a
//! metadata lookup takes the first good answer. A tracker that dies is
//! left out, and one that stays silent is not waited for past
//! `QUERY_PATIENCE`, so one tracker down or hung never fails a request
//! that another can answer.

use super::Engine;
use super::action::LinkId;
use super::storage::Storage;
use super::time::Time;
use super::tracker::{Pending, TrackerId};
use crate::control::code;
use crate::limits::MAX_LIST_PAGE;
use crate::meta::Info;
use crate::wire::peer::InfoHash;
use crate::wire::tracker::{ErrorCode, ListEntry, Lookup, Request, Response};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub type QueryId = u64;

type Refusal = (crate::control::Code, String);

/// How long a query waits for the trackers still silent after the last
/// answer (or since it was sent): a live session answers in milliseconds,
/// so this only matters for a tracker that hangs with its socket open.
pub const QUERY_PATIENCE: Duration = Duration::from_secs(10);

/// Most entries a `list` gathers over all trackers: a tracker's default
/// `max_files`, so that a tracker claiming an endless catalog cannot make
/// the daemon page (and hold) it forever.
pub const MAX_LISTED: usize = 1_000_000;

/// What a query asks for.
pub(super) enum Ask {
    /// `list`: the catalog so far, by info hash.
    List(BTreeMap<InfoHash, ListEntry>),
    /// `get`: the download starts once the metadata comes.
    Get {
        out_dir: PathBuf,
        /// `get`'s globs: which files of a tree to fetch.
        only: Vec<String>,
        wanted: Lookup,
        /// Peers given with `get` (a magnet's `x.pe`).
        peers: Vec<std::net::SocketAddr>,
    },
    /// `meta`: the info dict goes back to the client.
    Meta { wanted: Lookup },
}

/// A control request out at the trackers.
pub(super) struct Query {
    control: LinkId,
    ask: Ask,
    /// Trackers that have not answered yet.
    waiting: usize,
    /// Trackers that answered without an error.
    answered: usize,
    deadline: Time,
    /// The most telling error a tracker gave.
    error: Option<Refusal>,
}

impl Query {
    fn wanted(&self) -> Option<&Lookup> {
        match &self.ask {
            Ask::List(_) => None,
            Ask::Get { wanted, .. } | Ask::Meta { wanted } => Some(wanted),
        }
    }

    /// Keeps the error that says most: "not found" from one tracker is
    /// less telling than another's "ambiguous" or "corrupt".
    fn note_error(&mut self, error: Refusal) {
        let weak = |e: &Refusal| e.0 == code::NOT_FOUND;
        if self.error.as_ref().is_none_or(weak) {
            self.error = Some(error);
        }
    }
}

fn first_page() -> Request {
    Request::List {
        offset: 0,
        limit: MAX_LIST_PAGE,
        filter: String::new(),
    }
}

/// Merges one tracker's entry into the union: trackers may know different
/// peers of a file, so the larger counts are the better guess.
fn merge(entries: &mut BTreeMap<InfoHash, ListEntry>, e: ListEntry) {
    match entries.get_mut(&e.info_hash) {
        Some(known) => {
            known.peers = known.peers.max(e.peers);
            known.seeders = known.seeders.max(e.seeders);
        }
        None => {
            entries.insert(e.info_hash, e);
        }
    }
}

impl<S: Storage> Engine<S> {
    /// Sends a query to every live tracker, or says why it cannot be.
    pub(super) fn query_start(
        &mut self,
        now: Time,
        control: LinkId,
        ask: Ask,
    ) -> Result<(), Refusal> {
        let id = self.next_query;
        self.next_query += 1;
        let req = match &ask {
            Ask::List(_) => first_page(),
            Ask::Get { wanted, .. } | Ask::Meta { wanted } => Request::GetMeta(wanted.clone()),
        };
        let mut sent = 0;
        let ask = match ask {
            // No tracker to ask: an info hash is fetched from peers.
            Ask::Get {
                out_dir,
                only,
                wanted: Lookup::Hash(hash),
                peers,
            } if self.live_trackers().is_empty() && self.peers_may_come(&hash, &peers) => {
                self.start_magnet(now, control, hash, out_dir, only, &peers);
                return Ok(());
            }
            other => other,
        };
        for i in self.live_trackers() {
            let why = match ask {
                Ask::List(_) => Pending::List { query: id, got: 0 },
                _ => Pending::Meta(id),
            };
            sent += usize::from(self.tracker_send(now, i, &req, why));
        }
        if sent == 0 {
            return Err(self.tracker_unreachable());
        }
        let query = Query {
            control,
            ask,
            waiting: sent,
            answered: 0,
            deadline: now + QUERY_PATIENCE,
            error: None,
        };
        self.queries.insert(id, query);
        Ok(())
    }

    /// A page of tracker `i`'s catalog for a `list`.
    pub(super) fn list_answer(
        &mut self,
        now: Time,
        i: TrackerId,
        id: QueryId,
        got: u32,
        resp: Response,
    ) {
        let Some(q) = self.queries.get_mut(&id) else {
            return; // answered already, or given up on
        };
        let (total, page) = match resp {
            Response::ListPage { total, entries } => (total, entries),
            Response::Error { message, .. } => {
                return self.query_answered(now, id, Some((code::BAD_REQUEST, message)));
            }
            other => {
                let message = format!("the tracker answered a list with {other:?}");
                return self.query_answered(now, id, Some((code::BAD_REQUEST, message)));
            }
        };
        let Ask::List(entries) = &mut q.ask else {
            return;
        };
        let n = page.len() as u32;
        for e in page {
            merge(entries, e);
        }
        let got = got.saturating_add(n);
        if n > 0 && got < total && entries.len() < MAX_LISTED {
            q.deadline = now + QUERY_PATIENCE;
            let req = Request::List {
                offset: got,
                limit: MAX_LIST_PAGE,
                filter: String::new(),
            };
            if self.tracker_send(now, i, &req, Pending::List { query: id, got }) {
                return;
            }
            // The session went down between pages: what came is kept.
        }
        self.query_answered(now, id, None);
    }

    /// A tracker's answer to a metadata lookup.
    pub(super) fn meta_answer(&mut self, now: Time, id: QueryId, resp: Response) {
        let Some(q) = self.queries.get(&id) else {
            return;
        };
        let error = match resp {
            Response::Meta { info } => match checked_meta(q.wanted(), info) {
                Ok(info) => return self.query_found(now, id, info),
                Err(e) => e,
            },
            Response::Error { code, message } => {
                let (kind, hint) = match code {
                    ErrorCode::FILE_NOT_FOUND => {
                        (code::NOT_FOUND, "; run `sta list` to see what is shared")
                    }
                    ErrorCode::AMBIGUOUS_NAME => (code::AMBIGUOUS, ""),
                    _ => (code::BAD_REQUEST, ""),
                };
                (kind, format!("{message}{hint}"))
            }
            other => (
                code::BAD_REQUEST,
                format!("the tracker answered a metadata request with {other:?}"),
            ),
        };
        self.query_answered(now, id, Some(error));
    }

    /// Good metadata came: the query is done, whatever the others say.
    fn query_found(&mut self, now: Time, id: QueryId, info: Info) {
        let Some(q) = self.queries.remove(&id) else {
            return;
        };
        match q.ask {
            Ask::Get {
                out_dir,
                only,
                peers,
                ..
            } => {
                let hash = info.info_hash;
                self.start_download(now, q.control, info, out_dir, only);
                self.add_peers(now, hash, &peers, super::book::PeerSource::Magnet);
            }
            Ask::Meta { .. } => self.control_reply(q.control, crate::control::meta_line(&info)),
            Ask::List(_) => {}
        }
    }

    /// One tracker has said all it will for this query (`error` if it
    /// refused or sent nonsense).
    fn query_answered(&mut self, now: Time, id: QueryId, error: Option<Refusal>) {
        let Some(q) = self.queries.get_mut(&id) else {
            return;
        };
        q.waiting = q.waiting.saturating_sub(1);
        q.deadline = now + QUERY_PATIENCE;
        match error {
            Some(e) => q.note_error(e),
            None => q.answered += 1,
        }
        if q.waiting == 0 {
            self.query_finish(now, id);
        }
    }

    /// A tracker's session died before it answered.
    pub(super) fn query_lost(&mut self, now: Time, id: QueryId) {
        let Some(q) = self.queries.get_mut(&id) else {
            return;
        };
        q.waiting = q.waiting.saturating_sub(1);
        if q.waiting == 0 {
            self.query_finish(now, id);
        }
    }

    /// Every tracker asked has answered, died or run out of time: the
    /// client gets what came.
    fn query_finish(&mut self, now: Time, id: QueryId) {
        let Some(q) = self.queries.remove(&id) else {
            return;
        };
        let not_found = q.error.as_ref().is_none_or(|e| e.0 == code::NOT_FOUND);
        match (q.ask, q.answered, q.error) {
            // No tracker has the metadata of this info hash: its peers may
            // (when there are some to ask; else the tracker's answer).
            (
                Ask::Get {
                    out_dir,
                    only,
                    wanted: Lookup::Hash(hash),
                    peers,
                },
                _,
                _,
            ) if not_found && self.peers_may_come(&hash, &peers) => {
                self.start_magnet(now, q.control, hash, out_dir, only, &peers)
            }
            (Ask::List(entries), 1.., _) => {
                let mut entries: Vec<ListEntry> = entries.into_values().collect();
                entries.sort_by(|a, b| (&a.name, a.info_hash).cmp(&(&b.name, b.info_hash)));
                self.control_list_done(q.control, entries);
            }
            (_, _, Some((kind, message))) => self.control_fail(q.control, kind, message),
            _ => {
                let (kind, message) = self.tracker_unreachable();
                self.control_fail(q.control, kind, message);
            }
        }
    }

    /// Gives up on the trackers that stay silent too long.
    pub(super) fn query_tick(&mut self, now: Time) {
        let late: Vec<QueryId> = self
            .queries
            .iter()
            .filter(|(_, q)| now >= q.deadline)
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            self.query_finish(now, id);
        }
    }
}

/// Metadata from a tracker, if it is what was asked for.
fn checked_meta(wanted: Option<&Lookup>, bytes: Vec<u8>) -> Result<Info, Refusal> {
    match Info::from_vec(bytes) {
        Ok(info) if matches!(wanted, Some(Lookup::Hash(h)) if *h != info.info_hash) => Err((
            code::CORRUPT,
            "the tracker sent metadata for another file".into(),
        )),
        Ok(info) => Ok(info),
        Err(e) => Err((code::CORRUPT, format!("the tracker sent bad metadata: {e}"))),
    }
}
