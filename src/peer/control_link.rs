//! The control socket: `sta` sends one request per line and reads JSON
//! lines back (see `spec/control.md`). A `get` keeps its session open and
//! receives progress events until the file is verified or fails.

use super::daemon::{Daemon, Session};
use super::torrent::{State, Torrent};
use super::tracker_link::Pending;
use crate::control::{
    CatalogEntry, ControlError, ControlRequest, FileReport, FileState, PeerBytes, Progress,
    StatusReport, code, done_line, info_hash_target, list_line, meta_line, next_line, ok_line,
    progress_line, shared_line, status_line,
};
use crate::limits::MAX_LIST_PAGE;
use crate::reactor::{ConnId, Ctx, Flow, OutQueue};
use crate::wire::peer::InfoHash;
use crate::wire::tracker::{ListEntry, Lookup, Request};
use std::path::PathBuf;
use std::time::Instant;

/// A control session: whether its one request arrived, and the download
/// it follows, if any.
#[derive(Debug, Default)]
pub struct ControlState {
    pub requested: bool,
    pub watching: Option<InfoHash>,
}

impl Daemon {
    /// Reads the one request of a control session. Anything after the
    /// first line is ignored; the session closes after its final reply.
    pub fn control_data(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        let ignore_rest = Flow {
            used: input.len(),
            close: false,
        };
        if self.controls.get(&id).is_some_and(|c| c.requested) {
            return ignore_rest;
        }
        let reply = match next_line(input) {
            Ok(None) => {
                return Flow {
                    used: 0,
                    close: false,
                };
            }
            Ok(Some((line, _))) => {
                if let Some(c) = self.controls.get_mut(&id) {
                    c.requested = true;
                }
                match ControlRequest::parse(line) {
                    Ok(req) => self.control_request(ctx, id, req),
                    Err(e) => Some(e.to_line()),
                }
            }
            Err(e) => Some(e.to_line()),
        };
        match reply {
            Some(line) => {
                out.push(line.as_bytes());
                Flow {
                    used: input.len(),
                    close: true,
                }
            }
            None => ignore_rest,
        }
    }

    /// Carries out a request. Returns its final reply when it is known at
    /// once; `None` when it comes later (after hashing, the tracker's
    /// answer, or the download), through [`Daemon::control_reply`].
    pub fn control_request(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        req: ControlRequest,
    ) -> Option<String> {
        let result = match req {
            ControlRequest::Share(path) => self.start_share(path, Some(id)),
            ControlRequest::List if self.tracker_starting() => {
                return self.park(id, ControlRequest::List);
            }
            ControlRequest::List => self.control_list(ctx, id),
            ControlRequest::Get { target, out_dir } if self.tracker_starting() => {
                return self.park(id, ControlRequest::Get { target, out_dir });
            }
            ControlRequest::Get { target, out_dir } => self.control_get(ctx, id, target, out_dir),
            ControlRequest::Meta { target } => match self.local_meta(&target) {
                Ok(Some(line)) => return Some(line),
                Ok(None) if self.tracker_starting() => {
                    return self.park(id, ControlRequest::Meta { target });
                }
                Ok(None) => self.control_meta(ctx, id, target),
                Err(e) => Err(e),
            },
            ControlRequest::GetTorrent { torrent, out_dir } => {
                self.control_get_torrent(ctx, id, torrent, out_dir)
            }
            ControlRequest::Status => return Some(status_line(&self.status())),
            ControlRequest::Stop => {
                ctx.stop();
                return Some(ok_line());
            }
        };
        result
            .err()
            .map(|(code, message)| ControlError::new(code, message).to_line())
    }

    /// True while the first connection to the tracker is being made:
    /// requests that need it wait for it rather than fail.
    fn tracker_starting(&self) -> bool {
        !self.tracker.connected() && (self.tracker.dialing || self.tracker.conn.is_some())
    }

    fn park(&mut self, id: ConnId, req: ControlRequest) -> Option<String> {
        self.parked.push((id, req));
        None
    }

    /// Replays requests parked while the tracker link came up, or fails
    /// them when it could not.
    pub fn unpark(&mut self, ctx: &mut Ctx<Session>) {
        for (id, req) in std::mem::take(&mut self.parked) {
            if !self.controls.contains_key(&id) {
                continue; // the client left meanwhile
            }
            let reply = if self.tracker.connected() {
                self.control_request(ctx, id, req)
            } else {
                let (code, message) = self.tracker_unreachable();
                Some(ControlError::new(code, message).to_line())
            };
            if let Some(line) = reply {
                self.control_reply(ctx, id, line);
            }
        }
    }

    /// Sends the final reply of a session answered later, then closes it.
    pub fn control_reply(&mut self, ctx: &mut Ctx<Session>, control: ConnId, line: String) {
        if let Some(c) = self.controls.get_mut(&control) {
            c.watching = None;
        }
        ctx.send(control, line.into_bytes());
        ctx.close(control);
    }

    /// Sends `req` to the tracker for a control session, or says why not.
    fn ask_tracker(
        &mut self,
        ctx: &mut Ctx<Session>,
        req: &Request,
        why: Pending,
    ) -> Result<(), (&'static str, String)> {
        if self.tracker_send(ctx, req, why) {
            Ok(())
        } else {
            Err(self.tracker_unreachable())
        }
    }

    /// Where a download lands: the given directory or the daemon's own,
    /// which must exist.
    fn out_dir(&self, out_dir: Option<PathBuf>) -> Result<PathBuf, (&'static str, String)> {
        let out_dir = out_dir.unwrap_or_else(|| self.config.dir.clone());
        if out_dir.is_dir() {
            Ok(out_dir)
        } else {
            Err((
                code::IO,
                format!("{} is not a directory; create it first", out_dir.display()),
            ))
        }
    }

    pub fn tracker_unreachable(&self) -> (&'static str, String) {
        (
            code::TRACKER_UNREACHABLE,
            format!(
                "cannot reach the tracker at {}; check that sta-trackerd runs there (sta-peerd keeps retrying)",
                self.tracker.addr
            ),
        )
    }

    fn control_list(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
    ) -> Result<(), (&'static str, String)> {
        let req = Request::List {
            offset: 0,
            limit: MAX_LIST_PAGE,
            filter: String::new(),
        };
        let why = Pending::List {
            control: id,
            entries: Vec::new(),
        };
        self.ask_tracker(ctx, &req, why)
    }

    fn control_get(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        target: String,
        out_dir: Option<PathBuf>,
    ) -> Result<(), (&'static str, String)> {
        let out_dir = self.out_dir(out_dir)?;
        let wanted = match info_hash_target(&target) {
            Some(hash) if self.torrents.contains_key(&hash) => {
                self.watch(ctx, id, hash);
                return Ok(());
            }
            Some(hash) => Lookup::Hash(hash),
            None => {
                if let Err(e) = crate::meta::info::check_name(&target) {
                    return Err((
                        code::BAD_NAME,
                        format!("'{target}' is not a file name: {e}"),
                    ));
                }
                let local = self
                    .torrents
                    .iter()
                    .find(|(_, t)| t.info.name == target && t.out_dir == out_dir);
                if let Some((hash, _)) = local {
                    let hash = *hash;
                    self.watch(ctx, id, hash);
                    return Ok(());
                }
                Lookup::Name(target)
            }
        };
        let why = Pending::Meta {
            control: id,
            out_dir,
            wanted: wanted.clone(),
        };
        self.ask_tracker(ctx, &Request::GetMeta(wanted), why)
    }

    /// The answer to `meta TARGET` when this daemon holds the file (by
    /// info hash, or the only file it holds with that name); `None` when
    /// the tracker must be asked.
    fn local_meta(&self, target: &str) -> Result<Option<String>, (&'static str, String)> {
        if let Some(hash) = info_hash_target(target)
            && let Some(t) = self.torrents.get(&hash)
        {
            return Ok(Some(meta_line(&t.info)));
        }
        if info_hash_target(target).is_none()
            && let Err(e) = crate::meta::info::check_name(target)
        {
            return Err((
                code::BAD_NAME,
                format!("'{target}' is not a file name: {e}"),
            ));
        }
        let mut named = self.torrents.values().filter(|t| t.info.name == target);
        Ok(match (named.next(), named.next()) {
            (Some(t), None) => Some(meta_line(&t.info)),
            _ => None,
        })
    }

    fn control_meta(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        target: String,
    ) -> Result<(), (&'static str, String)> {
        let wanted = match info_hash_target(&target) {
            Some(hash) => Lookup::Hash(hash),
            None => Lookup::Name(target),
        };
        let why = Pending::MetaOnly {
            control: id,
            wanted: wanted.clone(),
        };
        self.ask_tracker(ctx, &Request::GetMeta(wanted), why)
    }

    /// `get-torrent PATH [OUTDIR]`: the `.torrent` file's info dict is the
    /// metadata, so the tracker is not asked for it (it is told of the
    /// file by the download's announce, and gives peers as usual).
    fn control_get_torrent(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        torrent: PathBuf,
        out_dir: Option<PathBuf>,
    ) -> Result<(), (&'static str, String)> {
        use crate::meta::torrent::{MAX_TORRENT_FILE, Torrent};
        use std::io::Read;
        let out_dir = self.out_dir(out_dir)?;
        let read_err = |e: std::io::Error| {
            let c = if e.kind() == std::io::ErrorKind::NotFound {
                code::NOT_FOUND
            } else {
                code::IO
            };
            (c, format!("cannot read {}: {e}", torrent.display()))
        };
        let mut bytes = Vec::new();
        std::fs::File::open(&torrent)
            .and_then(|f| f.take(MAX_TORRENT_FILE + 1).read_to_end(&mut bytes))
            .map_err(read_err)?;
        if bytes.len() as u64 > MAX_TORRENT_FILE {
            return Err((
                code::BAD_REQUEST,
                format!(
                    "{} is larger than {MAX_TORRENT_FILE} bytes; it is not a single-file torrent STA can use",
                    torrent.display()
                ),
            ));
        }
        let info = Torrent::read(&bytes)
            .map_err(|e| (code::BAD_REQUEST, format!("{}: {e}", torrent.display())))?
            .info;
        self.start_download(ctx, id, info, out_dir);
        Ok(())
    }

    /// Makes `control` follow the download of `hash` (answered at once if
    /// the file is already complete).
    pub fn watch(&mut self, ctx: &mut Ctx<Session>, control: ConnId, hash: InfoHash) {
        if let Some(t) = self.torrents.get_mut(&hash) {
            t.watchers.push(control);
            self.set_watching(control, hash);
            self.notify_watchers(ctx, &hash);
        }
    }

    pub fn set_watching(&mut self, control: ConnId, hash: InfoHash) {
        if let Some(c) = self.controls.get_mut(&control) {
            c.watching = Some(hash);
        }
    }

    /// Tells the watchers of `hash` that it finished or failed.
    pub fn notify_watchers(&mut self, ctx: &mut Ctx<Session>, hash: &InfoHash) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        let line = if let Some((code, message)) = &t.failure {
            ControlError::new(code, message.clone()).to_line()
        } else if t.state == State::Seeding {
            done_line(&file_report(t))
        } else {
            return;
        };
        for control in std::mem::take(&mut t.watchers) {
            self.control_reply(ctx, control, line.clone());
        }
    }

    pub fn control_fail(
        &mut self,
        ctx: &mut Ctx<Session>,
        control: ConnId,
        code: &'static str,
        message: String,
    ) {
        self.control_reply(ctx, control, ControlError::new(code, message).to_line());
    }

    pub fn control_file_reply(&mut self, ctx: &mut Ctx<Session>, control: ConnId, hash: &InfoHash) {
        if let Some(t) = self.torrents.get(hash) {
            let line = shared_line(&file_report(t));
            self.control_reply(ctx, control, line);
        }
    }

    pub fn control_list_done(
        &mut self,
        ctx: &mut Ctx<Session>,
        control: ConnId,
        entries: Vec<ListEntry>,
    ) {
        let entries: Vec<CatalogEntry> = entries
            .into_iter()
            .map(|e| CatalogEntry {
                local: self.torrents.contains_key(&e.info_hash),
                name: e.name,
                info_hash: e.info_hash,
                length: e.length,
                piece_length: e.piece_length,
                peers: e.peers,
                seeders: e.seeders,
            })
            .collect();
        self.control_reply(ctx, control, list_line(&entries));
    }

    pub fn control_opened(&mut self, id: ConnId) {
        self.controls.insert(id, ControlState::default());
    }

    pub fn control_closed(&mut self, id: ConnId) {
        if let Some(ControlState {
            watching: Some(hash),
            ..
        }) = self.controls.remove(&id)
            && let Some(t) = self.torrents.get_mut(&hash)
        {
            t.watchers.retain(|&c| c != id);
        }
        for s in self.sharing.values_mut() {
            if s.control == Some(id) {
                s.control = None;
            }
        }
    }

    /// True once `id` sent its request: it waits for the answer (hashing,
    /// the tracker, a whole download) and is silent on purpose, so it must
    /// not be closed as idle.
    pub fn control_waiting(&self, id: ConnId) -> bool {
        self.controls.get(&id).is_some_and(|c| c.requested)
    }

    /// Samples rates and sends progress events to every watcher.
    pub fn control_tick(&mut self, ctx: &mut Ctx<Session>, now: Instant) {
        for t in self.torrents.values_mut() {
            let bytes = t.bytes_have();
            t.rate.sample(now, bytes);
            if t.watchers.is_empty() || t.state == State::Seeding {
                continue;
            }
            let missing_somewhere =
                t.info.num_pieces() - t.have.count() - t.picker.unavailable(&t.have);
            let p = Progress {
                info_hash: t.info.info_hash,
                name: t.info.name.clone(),
                have: t.have.count(),
                pieces: t.info.num_pieces(),
                bytes,
                length: t.info.length,
                rate: t.rate.rate(),
                peers: t.peers.len() as u32,
                waiting: matches!(t.state, State::Downloading) && missing_somewhere == 0,
            };
            let line = progress_line(&p);
            for &c in &t.watchers {
                ctx.send(c, line.clone().into_bytes());
            }
        }
    }

    pub fn status(&self) -> StatusReport {
        let mut files: Vec<FileReport> = self.torrents.values().map(file_report).collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        StatusReport {
            peer_id: self.peer_id,
            listen: self.config.listen,
            tracker_addr: self.tracker.addr.to_string(),
            tracker_connected: self.tracker.connected(),
            files,
        }
    }
}

pub fn file_report(t: &Torrent) -> FileReport {
    let mut from_peers: Vec<PeerBytes> = t
        .from_peers
        .iter()
        .map(|(addr, bytes)| PeerBytes {
            addr: *addr,
            bytes: *bytes,
        })
        .collect();
    from_peers.sort_by_key(|p| p.addr);
    FileReport {
        name: t.info.name.clone(),
        info_hash: t.info.info_hash,
        path: t.store.path().to_owned(),
        length: t.info.length,
        piece_length: t.info.piece_length,
        pieces: t.info.num_pieces(),
        have: t.have.count(),
        state: match t.state {
            State::Checking { .. } => FileState::Checking,
            State::Downloading => FileState::Downloading,
            State::Seeding => FileState::Seeding,
        },
        uploaded: t.uploaded,
        downloaded: t.downloaded,
        peers: t.peers.len() as u32,
        from_peers,
    }
}
