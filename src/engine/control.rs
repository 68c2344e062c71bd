//! Control sessions: `sta` sends one request per line and reads JSON lines
//! back (see `spec/control.md`). A `get` keeps its session open and
//! receives progress events until the file is verified or fails.

use super::action::LinkId;
use super::query::Ask;
use super::storage::Storage;
use super::time::Time;
use super::torrent::{State, Torrent};
use super::{Action, Engine};
use crate::control::Code;
use crate::control::{
    CatalogEntry, ControlError, ControlRequest, FileReport, FileState, PeerBytes, Progress,
    StatusReport, code, done_line, info_hash_target, limits_line, list_line, meta_line, next_line,
    ok_line, progress_line, shared_line, status_line,
};
use crate::wire::peer::InfoHash;
use crate::wire::tracker::{ListEntry, Lookup};
use std::path::PathBuf;

type Refusal = (Code, String);

/// A control reply, as the HTTP API reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiReply {
    /// The control protocol's final reply (`{"ok":true,...}`).
    Done(serde_json::Value),
    Failed {
        code: Code,
        message: String,
    },
}

impl ApiReply {
    /// Reads a control reply line.
    pub fn parse(line: &str) -> ApiReply {
        let value: serde_json::Value = match serde_json::from_str(line.trim_end()) {
            Ok(v) => v,
            Err(e) => {
                return ApiReply::Failed {
                    code: code::UNKNOWN,
                    message: format!("unreadable reply: {e}"),
                };
            }
        };
        match value.get("error") {
            Some(e) => ApiReply::Failed {
                code: Code::parse(e.get("code").and_then(|c| c.as_str()).unwrap_or("")),
                message: e
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("")
                    .to_owned(),
            },
            None => ApiReply::Done(value),
        }
    }
}

/// A control session: whether its one request arrived, and the download
/// it follows, if any.
#[derive(Debug, Default)]
pub struct ControlState {
    requested: bool,
    watching: Option<InfoHash>,
}

impl<S: Storage> Engine<S> {
    /// Reads the one request of a control session. Anything after the
    /// first line is ignored; the session closes after its final reply.
    pub(super) fn control_input(&mut self, now: Time, link: LinkId, input: &[u8]) -> usize {
        if self.control_waiting(link) {
            return input.len();
        }
        let reply = match next_line(input) {
            Ok(None) => return 0,
            Ok(Some((line, _))) => {
                if let Some(c) = self.controls.get_mut(&link) {
                    c.requested = true;
                }
                match ControlRequest::parse(line) {
                    Ok(req) => self.control_request(now, link, req),
                    Err(e) => Some(e.to_line()),
                }
            }
            Err(e) => Some(e.to_line()),
        };
        if let Some(line) = reply {
            self.control_reply(link, line);
        }
        input.len()
    }

    /// Carries out a request. Returns its final reply when it is known at
    /// once; `None` when it comes later (after hashing, the tracker's
    /// answer, or the download), through [`Engine::control_reply`].
    fn control_request(&mut self, now: Time, link: LinkId, req: ControlRequest) -> Option<String> {
        let needs_tracker = matches!(
            req,
            ControlRequest::List | ControlRequest::Get { .. } | ControlRequest::Meta { .. }
        );
        if needs_tracker && self.trackers_starting() && !self.answers_locally(&req) {
            self.parked.push((link, req));
            return None;
        }
        let result = match req {
            ControlRequest::Share(path) => self.start_share(path, Some(link)),
            ControlRequest::List => self.control_list(now, link),
            ControlRequest::Get {
                target,
                out_dir,
                only,
                peers,
            } => self.control_get(now, link, target, (out_dir, only), peers),
            ControlRequest::Meta { target } => match self.local_meta(&target) {
                Ok(Some(line)) => return Some(line),
                Ok(None) => self.control_meta(now, link, target),
                Err(e) => Err(e),
            },
            ControlRequest::GetTorrent {
                torrent,
                out_dir,
                only,
            } => self.control_get_torrent(now, link, torrent, out_dir, only),
            ControlRequest::Remove { target, delete } => {
                return Some(self.control_remove(now, &target, delete));
            }
            ControlRequest::Status => return Some(status_line(&self.status())),
            ControlRequest::Stop => {
                self.actions.push_back(Action::Stop);
                return Some(ok_line());
            }
            ControlRequest::Limits { upload, download } => {
                let (up, down) = self.rates();
                if upload.is_some() || download.is_some() {
                    self.set_rates(upload.unwrap_or(up), download.unwrap_or(down));
                }
                let (up, down) = self.rates();
                return Some(limits_line(up, down));
            }
        };
        result
            .err()
            .map(|(code, message)| ControlError::new(code, message).to_line())
    }

    /// A request of the HTTP API (share, get, remove, list), carried out
    /// as a control request whose session has no connection: its final
    /// reply, when it comes later (a share hashed, a download done), goes
    /// nowhere. Returns the reply if it is known at once, else `None`
    /// (accepted, under way).
    pub fn api_request(&mut self, now: Time, req: ControlRequest) -> Option<ApiReply> {
        self.api_deferred(now, req).err()
    }

    /// Like [`Engine::api_request`], for a caller that waits for the final
    /// reply: `Ok(link)` when it comes later, as the control reply line
    /// sent on `link` (then closed); `Err` with the reply known at once.
    pub fn api_deferred(&mut self, now: Time, req: ControlRequest) -> Result<LinkId, ApiReply> {
        let link = self.control_opened(now);
        if let Some(c) = self.controls.get_mut(&link) {
            c.requested = true;
        }
        let Some(line) = self.control_request(now, link, req) else {
            return Ok(link);
        };
        self.control_reply(link, line.clone());
        Err(ApiReply::parse(&line))
    }

    /// A `meta` this daemon answers itself needs no tracker.
    fn answers_locally(&self, req: &ControlRequest) -> bool {
        matches!(req, ControlRequest::Meta { target } if !matches!(self.local_meta(target), Ok(None)))
    }

    /// Replays requests parked while the tracker session came up, or
    /// fails them when it could not.
    pub(super) fn unpark(&mut self, now: Time) {
        for (link, req) in std::mem::take(&mut self.parked) {
            if !self.controls.contains_key(&link) {
                continue; // the client left meanwhile
            }
            // With no tracker up, what needs one fails (and a `get` of an
            // info hash turns to its peers).
            let reply = self.control_request(now, link, req);
            if let Some(line) = reply {
                self.control_reply(link, line);
            }
        }
    }

    /// Sends the final reply of a session, then closes it.
    pub(super) fn control_reply(&mut self, control: LinkId, line: String) {
        if let Some(c) = self.controls.remove(&control) {
            if let Some(t) = c.watching.and_then(|h| self.torrents.get_mut(&h)) {
                t.unwatch(control);
            }
            self.send(control, |b| b.extend_from_slice(line.as_bytes()));
            self.close(control);
        }
    }

    /// Where a download lands: the given directory (created if missing,
    /// as `aria2c -d` and `wget -P` do) or the daemon's own.
    fn out_dir(&mut self, out_dir: Option<PathBuf>) -> Result<PathBuf, Refusal> {
        let Some(dir) = out_dir else {
            return Ok(self.config.dir.clone());
        };
        self.storage
            .create_dir(&dir)
            .map_err(|e| (code::IO, format!("cannot create {}: {e}", dir.display())))?;
        Ok(dir)
    }

    fn control_list(&mut self, now: Time, link: LinkId) -> Result<(), Refusal> {
        self.query_start(now, link, Ask::List(Default::default()))
    }

    /// The local file a target names: by info hash, or the only file this
    /// daemon holds under that name (in `out_dir`, when given).
    fn local_target(&self, target: &str, out_dir: Option<&PathBuf>) -> Option<InfoHash> {
        if let Some(hash) = info_hash_target(target) {
            return self.torrents.contains_key(&hash).then_some(hash);
        }
        let mut named = self
            .torrents
            .iter()
            .filter(|(_, t)| t.info.name == target && out_dir.is_none_or(|d| t.out_dir() == d));
        match (named.next(), named.next()) {
            (Some((hash, _)), None) => Some(*hash),
            _ => None,
        }
    }

    fn check_target(target: &str) -> Result<(), Refusal> {
        if info_hash_target(target).is_none()
            && let Err(e) = crate::meta::info::check_name(target)
        {
            return Err((
                code::BAD_NAME,
                format!("'{target}' is not a file name: {e}"),
            ));
        }
        Ok(())
    }

    /// `get TARGET`: from this daemon if it holds the file; else the
    /// trackers are asked for its metadata; an info hash none of them
    /// knows (or with no tracker) is fetched from peers (BEP 9).
    fn control_get(
        &mut self,
        now: Time,
        link: LinkId,
        target: String,
        (out_dir, only): (Option<PathBuf>, Vec<String>),
        peers: Vec<std::net::SocketAddr>,
    ) -> Result<(), Refusal> {
        Self::check_target(&target)?;
        let out_dir = self.out_dir(out_dir)?;
        if let Some(hash) = self.local_target(&target, Some(&out_dir)) {
            self.retry_and_watch(now, link, hash);
            self.add_peers(now, hash, &peers, super::book::PeerSource::Magnet);
            return Ok(());
        }
        let wanted = match info_hash_target(&target) {
            Some(hash) if self.trackers.is_empty() => {
                if !self.peers_may_come(&hash, &peers) {
                    return Err(no_peer_to_ask(&hash));
                }
                self.start_magnet(now, link, hash, out_dir, only, &peers);
                return Ok(());
            }
            Some(hash) => Lookup::Hash(hash),
            None => Lookup::Name(target),
        };
        let ask = Ask::Get {
            out_dir,
            only,
            wanted,
            peers,
        };
        self.query_start(now, link, ask)
    }

    fn retry_and_watch(&mut self, now: Time, link: LinkId, hash: InfoHash) {
        self.retry(now, &hash);
        self.watch(link, hash);
    }

    /// The answer to `meta TARGET` when this daemon holds the file (by
    /// info hash, or the only file it holds with that name); `None` when
    /// the tracker must be asked.
    fn local_meta(&self, target: &str) -> Result<Option<String>, Refusal> {
        Self::check_target(target)?;
        Ok(self
            .local_target(target, None)
            .and_then(|h| self.torrents.get(&h))
            .map(|t| meta_line(&t.info)))
    }

    fn control_meta(&mut self, now: Time, link: LinkId, target: String) -> Result<(), Refusal> {
        let wanted = match info_hash_target(&target) {
            Some(hash) => Lookup::Hash(hash),
            None => Lookup::Name(target),
        };
        self.query_start(now, link, Ask::Meta { wanted })
    }

    /// `get-torrent PATH [OUTDIR]`: the `.torrent` file's info dict is the
    /// metadata, so the tracker is not asked for it (it is told of the
    /// file by the download's announce, and gives peers as usual).
    fn control_get_torrent(
        &mut self,
        now: Time,
        link: LinkId,
        torrent: PathBuf,
        out_dir: Option<PathBuf>,
        only: Vec<String>,
    ) -> Result<(), Refusal> {
        use crate::meta::torrent::{MAX_TORRENT_FILE, Torrent};
        let out_dir = self.out_dir(out_dir)?;
        let bytes = self
            .storage
            .read_small(&torrent, MAX_TORRENT_FILE)
            .map_err(|e| {
                let c = match e.kind() {
                    std::io::ErrorKind::NotFound => code::NOT_FOUND,
                    std::io::ErrorKind::InvalidData => code::BAD_REQUEST,
                    _ => code::IO,
                };
                (c, format!("cannot read {}: {e}", torrent.display()))
            })?;
        let info = Torrent::read(&bytes)
            .map_err(|e| (code::BAD_REQUEST, format!("{}: {e}", torrent.display())))?
            .info;
        self.start_download(now, link, info, out_dir, only);
        Ok(())
    }

    /// `remove TARGET [delete]`: stop sharing or fetching a file; the
    /// tracker learns at once. With `delete`, its bytes go too.
    fn control_remove(&mut self, now: Time, target: &str, delete: bool) -> String {
        if let Err((c, m)) = Self::check_target(target) {
            return ControlError::new(c, m).to_line();
        }
        // A download still fetching its info dict has no file yet.
        if let Some(hash) = info_hash_target(target)
            && let Some(was) =
                self.end_magnet(&hash, code::REMOVED, "removed with `sta remove`".into())
        {
            log::info!(
                "{}: fetch of the info dict removed",
                crate::meta::info::to_hex(&hash)
            );
            return crate::control::fetch_removed_line(&was);
        }
        let Some(hash) = self.local_target(target, None) else {
            let message = format!(
                "this daemon neither shares nor fetches '{target}'; `sta status` lists what it holds (use the info hash when two files share a name)"
            );
            return ControlError::new(code::NOT_FOUND, message).to_line();
        };
        let Some(t) = self.remove_torrent(
            now,
            &hash,
            code::REMOVED,
            "removed with `sta remove`".into(),
        ) else {
            return ControlError::new(code::NOT_FOUND, "file gone").to_line();
        };
        let report = file_report(&t, self.storage.path(t.file));
        // A cancelled download must not come back at the next start.
        if t.state() != State::Seeding
            && let Ok(p) = crate::storage::final_path(t.out_dir(), &t.info.name)
        {
            self.storage.drop_resume(&p);
        }
        if let Err(e) = self.storage.close(t.file, delete) {
            let message = format!("removed, but cannot delete {}: {e}", report.path.display());
            return ControlError::new(code::IO, message).to_line();
        }
        log::info!(
            "{}: removed{}",
            t.info.name,
            if delete { " and deleted" } else { "" }
        );
        shared_line(&report)
    }

    /// Makes `control` follow the download of `hash` (answered at once if
    /// the file is already complete or failed).
    pub(super) fn watch(&mut self, control: LinkId, hash: InfoHash) {
        let Some(t) = self.torrents.get_mut(&hash) else {
            return;
        };
        if let Some(c) = self.controls.get_mut(&control) {
            t.watch(control);
            c.watching = Some(hash);
        }
        self.notify_watchers(&hash);
    }

    /// Tells the watchers of `hash` that it finished or failed.
    pub(super) fn notify_watchers(&mut self, hash: &InfoHash) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        let line = if let Some((code, message)) = t.failure() {
            ControlError::new(*code, message.clone()).to_line()
        } else if t.state() == State::Seeding {
            done_line(&file_report(t, self.storage.path(t.file)))
        } else {
            return;
        };
        for control in t.take_watchers() {
            self.control_reply(control, line.clone());
        }
    }

    pub(super) fn control_fail(&mut self, control: LinkId, code: Code, message: String) {
        self.control_reply(control, ControlError::new(code, message).to_line());
    }

    pub(super) fn control_file_reply(&mut self, control: LinkId, hash: &InfoHash) {
        if let Some(t) = self.torrents.get(hash) {
            let line = shared_line(&file_report(t, self.storage.path(t.file)));
            self.control_reply(control, line);
        }
    }

    pub(super) fn control_list_done(&mut self, control: LinkId, entries: Vec<ListEntry>) {
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
                file_count: e.files,
            })
            .collect();
        self.control_reply(control, list_line(&entries));
    }

    pub(super) fn control_gone(&mut self, link: LinkId) {
        if let Some(ControlState {
            watching: Some(hash),
            ..
        }) = self.controls.remove(&link)
            && let Some(t) = self.torrents.get_mut(&hash)
        {
            t.unwatch(link);
        }
        for s in self.sharing.values_mut() {
            if s.control == Some(link) {
                s.control = None;
            }
        }
    }

    /// True once `link` sent its request: it waits for the answer
    /// (hashing, the tracker, a whole download) and is silent on purpose.
    pub(super) fn control_waiting(&self, link: LinkId) -> bool {
        self.controls.get(&link).is_some_and(|c| c.requested)
    }

    /// Samples rates and sends progress events to every watcher.
    pub(super) fn control_tick(&mut self, now: Time) {
        let mut lines = Vec::new();
        for t in self.torrents.values_mut() {
            let bytes = t.sample_rate(now);
            if t.watchers().is_empty() || t.state() == State::Seeding {
                continue;
            }
            let have = t.have().count();
            let settled = t.settled().count();
            let missing_somewhere =
                t.info.num_pieces() - settled - t.picker.unavailable(t.settled());
            let (files, files_done) = t.files_done();
            let pieces = t.info.num_pieces() - (settled - have);
            let p = Progress {
                info_hash: t.info.info_hash,
                name: t.info.name.clone(),
                have,
                pieces,
                bytes,
                length: t.bytes_wanted(),
                files,
                files_done,
                rate: t.rate(),
                peers: t.peers().len() as u32,
                waiting: t.state() == State::Downloading && missing_somewhere == 0,
            };
            lines.push((t.watchers().to_vec(), progress_line(&p)));
        }
        for (watchers, line) in lines {
            for c in watchers {
                self.send(c, |b| b.extend_from_slice(line.as_bytes()));
            }
        }
    }

    pub fn status(&self) -> StatusReport {
        let mut files: Vec<FileReport> = self
            .torrents
            .values()
            .map(|t| file_report(t, self.storage.path(t.file)))
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let trackers = self
            .tracker_states()
            .into_iter()
            .map(|(addr, connected)| crate::control::TrackerState {
                addr: addr.to_string(),
                connected,
            })
            .collect();
        let (main, tracker_connected) = self.main_tracker();
        let tracker_addr = match self.trackers.is_empty() {
            true => crate::control::NO_TRACKER.to_owned(),
            false => main.to_string(),
        };
        StatusReport {
            peer_id: self.peer_id,
            listen: self.config.listen,
            tracker_addr,
            tracker_connected,
            trackers,
            files,
            fetching: self.magnets_report(),
        }
    }
}

/// Why a `get` of an info hash cannot even start with no tracker.
fn no_peer_to_ask(hash: &InfoHash) -> Refusal {
    (
        code::NOT_FOUND,
        format!(
            "this sta-peerd has no tracker and knows no peer of {}: give peers to fetch it from (a magnet link with x.pe=HOST:PORT)",
            crate::meta::info::to_hex(hash)
        ),
    )
}

fn file_report(t: &Torrent, path: PathBuf) -> FileReport {
    let mut from_peers: Vec<PeerBytes> = t
        .from_peers()
        .map(|(addr, bytes)| PeerBytes { addr, bytes })
        .collect();
    from_peers.sort_by_key(|p| p.addr);
    FileReport {
        name: t.info.name.clone(),
        info_hash: t.info.info_hash,
        path,
        length: t.info.length,
        piece_length: t.info.piece_length,
        pieces: t.info.num_pieces(),
        have: t.have().count(),
        state: match t.state() {
            State::Checking { .. } => FileState::Checking,
            State::Downloading => FileState::Downloading,
            State::Seeding => FileState::Seeding,
        },
        uploaded: t.uploaded(),
        downloaded: t.downloaded(),
        peers: t.peers().len() as u32,
        from_peers,
    }
}
