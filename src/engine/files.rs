//! The life of a file in the engine: hashing it to share it, opening a
//! download (fresh or resumed), verifying pieces as they complete,
//! publishing the finished file, and removing it.

use super::action::{Action, LinkId};
use super::storage::Storage;
use super::time::Time;
use super::torrent::{State, Torrent};
use super::{Engine, Job, Sharing};
use crate::bitfield::Bitfield;
use crate::control::Code;
use crate::control::code;
use crate::meta::Info;
use crate::meta::info::to_hex;
use crate::storage::StorageError;
use crate::wire::peer::{InfoHash, Message};
use crate::wire::tracker::Request;
use log::{error, info, warn};
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// Which of `info.files()` the globs of `get --only` select (`None`:
/// every file, when there are no globs). A single file is matched by its
/// name; pad files are never wanted.
fn wanted_files(info: &Info, only: &[String]) -> Result<Option<Vec<bool>>, Refusal> {
    if only.is_empty() {
        return Ok(None);
    }
    let wanted: Vec<bool> = info
        .files()
        .iter()
        .map(|f| {
            let path = match info.is_multi() {
                true => info.path(&f).to_string(),
                false => info.name.clone(),
            };
            !f.pad && only.iter().any(|g| crate::meta::glob::matches(g, &path))
        })
        .collect();
    if !wanted.contains(&true) {
        return Err((
            code::NOT_FOUND,
            format!(
                "no file of {} matches --only {}; see `sta ls {}`",
                info.name,
                only.join(" --only "),
                info.name
            ),
        ));
    }
    Ok(Some(wanted))
}

/// The metadata kept beside a download so a restarted daemon resumes it:
/// the info dict itself, or, for a `get --only`, a dict of it and the
/// globs (`d4:infod...e4:onlyl...ee`).
mod resume {
    use crate::meta::Info;
    use crate::meta::bencode::{self, Value};

    /// The dict itself is borrowed, not copied, when there are no globs.
    pub fn encode<'a>(info: &'a Info, only: &[String]) -> std::borrow::Cow<'a, [u8]> {
        if only.is_empty() {
            return std::borrow::Cow::Borrowed(&info.bencoded);
        }
        let mut out = b"d4:info".to_vec();
        out.extend_from_slice(&info.bencoded);
        let globs = only.iter().map(|g| Value::Bytes(g.as_bytes())).collect();
        out.extend_from_slice(b"4:only");
        out.extend_from_slice(&Value::List(globs).to_bytes());
        out.push(b'e');
        std::borrow::Cow::Owned(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<(Info, Vec<String>), String> {
        if let Ok(info) = Info::from_bencoded(bytes) {
            return Ok((info, Vec::new()));
        }
        let v = bencode::decode(bytes).map_err(|e| e.to_string())?;
        let info = v
            .get(b"info")
            .ok_or("neither an info dict nor a saved download")?;
        let info = Info::from_value(info, info.to_bytes()).map_err(|e| e.to_string())?;
        let mut only = Vec::new();
        if let Some(Value::List(globs)) = v.get(b"only") {
            for g in globs {
                let g = g.as_bytes().and_then(|b| std::str::from_utf8(b).ok());
                only.push(g.ok_or("a saved --only glob is not UTF-8")?.to_owned());
            }
        }
        Ok((info, only))
    }
}

#[cfg(test)]
pub(super) use resume::decode as resume_decode;

/// Pieces per hash job: small enough to spread over every pool thread.
const PIECES_PER_JOB: u32 = 64;

type Refusal = (Code, String);

impl<S: Storage> Engine<S> {
    /// Hashes the file at `path` on the pool; it is shared once done.
    pub(super) fn start_share(
        &mut self,
        path: PathBuf,
        control: Option<LinkId>,
    ) -> Result<(), Refusal> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or((
                code::BAD_NAME,
                format!("{} has no usable file name", path.display()),
            ))?
            .to_owned();
        crate::meta::info::check_name(&name)
            .map_err(|e| (code::BAD_NAME, format!("'{name}': {e}")))?;
        let piece_length = self.config.piece_length;
        let (file, length) = self
            .storage
            .open_shared(&path, piece_length)
            .map_err(|e| (code::IO, e.to_string()))?;
        let tree = self.storage.tree(file).map(|info| info.files().len());
        let pieces = crate::meta::Geometry::new(piece_length, length).piece_count();
        if pieces > u64::from(crate::limits::MAX_PIECES) {
            let _ = self.storage.close(file, false);
            return Err((
                code::BAD_REQUEST,
                format!(
                    "{} needs {pieces} pieces; use a larger --piece-size",
                    path.display()
                ),
            ));
        }
        let pieces = pieces as u32;
        let tag = self.new_tag();
        for start in (0..pieces).step_by(PIECES_PER_JOB as usize) {
            self.job(Job::Hash {
                tag,
                file,
                length,
                piece_length,
                pieces: start..(start + PIECES_PER_JOB).min(pieces),
            });
        }
        match &tree {
            Some(files) => info!(
                "hashing {} ({files} files, {length} bytes, {pieces} pieces)",
                path.display(),
            ),
            None => info!(
                "hashing {} ({length} bytes, {pieces} pieces)",
                path.display()
            ),
        }
        self.sharing.insert(
            tag,
            Sharing {
                path,
                file: Some(file),
                length,
                tree,
                hashes: vec![0; pieces as usize * 20],
                left: pieces.div_ceil(PIECES_PER_JOB),
                failed: None,
                control,
            },
        );
        Ok(())
    }

    pub(super) fn hashed(
        &mut self,
        now: Time,
        tag: u64,
        pieces: Range<u32>,
        hashes: io::Result<Vec<u8>>,
    ) {
        if self.sharing.contains_key(&tag) {
            return self.share_hashed(now, tag, pieces, hashes);
        }
        let Some(hash) = self.tags.get(&tag).copied() else {
            return;
        };
        let Some(t) = self.torrents.get_mut(&hash) else {
            return;
        };
        // A resume check: keep the pieces whose bytes match.
        if let Ok(hashes) = hashes {
            for (piece, got) in pieces.zip(hashes.chunks_exact(20)) {
                if t.info.piece_hash(piece) == Some(got) {
                    t.piece_found(piece);
                }
            }
        }
        if t.check_job_done() {
            self.tags.remove(&tag);
            info!(
                "{}: {} of {} pieces already verified on disk",
                t.info.name,
                t.have().count(),
                t.info.num_pieces()
            );
            self.after_piece_change(&hash);
            self.announce(now, &hash);
            self.query_peers(&hash, now);
        }
    }

    fn share_hashed(
        &mut self,
        now: Time,
        tag: u64,
        pieces: Range<u32>,
        hashes: io::Result<Vec<u8>>,
    ) {
        let Some(s) = self.sharing.get_mut(&tag) else {
            return;
        };
        match hashes {
            Ok(h) => {
                let at = pieces.start as usize * 20;
                if let Some(dst) = s.hashes.get_mut(at..at + h.len()) {
                    dst.copy_from_slice(&h);
                }
            }
            Err(e) => s.failed = Some(format!("cannot read {}: {e}", s.path.display())),
        }
        s.left -= 1;
        if s.left > 0 {
            return;
        }
        let Some(mut s) = self.sharing.remove(&tag) else {
            return;
        };
        let result = self.finish_share(now, &mut s);
        if let Some(control) = s.control {
            match result {
                Ok(hash) => self.control_file_reply(control, &hash),
                Err(msg) => self.control_fail(control, code::IO, msg),
            }
        }
    }

    fn finish_share(&mut self, now: Time, s: &mut Sharing) -> Result<InfoHash, String> {
        let file = s.file.take().ok_or("share already finished")?;
        if let Some(e) = s.failed.take() {
            let _ = self.storage.close(file, false);
            return Err(e);
        }
        let name = s
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("no file name")?
            .to_owned();
        let hashes = std::mem::take(&mut s.hashes);
        let piece_length = self.config.piece_length;
        let info = match s.tree {
            Some(_) => self.storage.finish_tree(file, &hashes),
            None => Some(Info::new(&name, s.length, piece_length, hashes).map(Arc::new)),
        };
        let Some(info) = info else {
            return Err(format!("{} is no longer open", s.path.display()));
        };
        let info = info
            .and_then(|info| match &self.swarm_ca {
                Some(ca) => info.with_ssl_cert(&ca.pem).map(Arc::new),
                None => Ok(info),
            })
            .and_then(|info| match self.config.private_shares && !info.private() {
                true => info.with_private().map(Arc::new),
                false => Ok(info),
            });
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                let _ = self.storage.close(file, false);
                return Err(e.to_string());
            }
        };
        let hash = info.info_hash;
        if self.torrents.contains_key(&hash) {
            // Already shared or downloaded here: keep the one we have.
            let _ = self.storage.close(file, false);
            return Ok(hash);
        }
        let n = info.num_pieces();
        let dir = s.path.parent().map(PathBuf::from).unwrap_or_default();
        self.storage.adopt(file, &info);
        let t = Torrent::new(
            info,
            file,
            Bitfield::full(n),
            State::Seeding,
            dir,
            self.config.upload_slots,
        );
        info!("sharing {} as {}", s.path.display(), to_hex(&hash));
        self.torrents.insert(hash, t);
        self.announce(now, &hash);
        Ok(hash)
    }

    /// Opens (or resumes, or retries) the download of `info` into
    /// `out_dir`, and makes `control` follow it.
    pub(super) fn start_download(
        &mut self,
        now: Time,
        control: LinkId,
        info: Info,
        out_dir: PathBuf,
        only: Vec<String>,
    ) {
        let hash = info.info_hash;
        if !self.torrents.contains_key(&hash)
            && let Err((code, message)) = self.open_download(now, info, out_dir, only)
        {
            return self.control_fail(control, code, message);
        }
        self.retry(now, &hash);
        self.watch(control, hash);
    }

    /// Creates `NAME.part` (or re-checks an existing one) and starts
    /// fetching. The metadata goes next to it as `NAME.part.info`, so a
    /// restarted daemon can resume on its own.
    pub(super) fn open_download(
        &mut self,
        now: Time,
        info: Info,
        out_dir: PathBuf,
        only: Vec<String>,
    ) -> Result<(), Refusal> {
        let hash = info.info_hash;
        if let Some(why) = self.ssl_refusal(&info) {
            return Err((code::BAD_REQUEST, why));
        }
        let final_path = crate::storage::final_path(&out_dir, &info.name)
            .map_err(|e| (code::BAD_NAME, e.to_string()))?;
        if self.storage.exists(&final_path) {
            return Err((code::EXISTS, StorageError::Exists(final_path).to_string()));
        }
        let wanted = wanted_files(&info, &only)?;
        let info = Arc::new(info);
        let (file, resumed) = self
            .storage
            .open_part(&out_dir, &info, wanted.as_deref())
            .map_err(|e| (code::IO, e.to_string()))?;
        if let Err(e) = self
            .storage
            .save_resume(&final_path, &resume::encode(&info, &only))
        {
            warn!(
                "cannot save the metadata of {}: {e}; this download will not resume by itself",
                info.name
            );
        }
        let n = info.num_pieces();
        let state = match resumed {
            true => State::Checking {
                left: n.div_ceil(PIECES_PER_JOB),
            },
            false => State::Downloading,
        };
        let slots = self.config.upload_slots;
        let mut t = Torrent::new(info, file, Bitfield::new(n), state, out_dir, slots);
        t.want_only(wanted);
        let tag = self.new_tag();
        self.tags.insert(tag, hash);
        if resumed {
            for start in (0..n).step_by(PIECES_PER_JOB as usize) {
                self.job(Job::Hash {
                    tag,
                    file,
                    length: t.info.length,
                    piece_length: t.info.piece_length,
                    pieces: start..(start + PIECES_PER_JOB).min(n),
                });
            }
            let path = self.storage.path(file);
            info!("resuming {}: checking {}", t.info.name, path.display());
        } else {
            self.job(Job::Allocate {
                tag,
                file,
                length: t.info.length,
            });
            info!("downloading {} ({} bytes)", t.info.name, t.info.length);
        }
        self.torrents.insert(hash, t);
        self.announce(now, &hash);
        self.query_peers(&hash, now);
        Ok(())
    }

    /// A download that failed (disk full, say) is asked for again: check
    /// the space anew and fetch what is missing, keeping verified pieces.
    pub(super) fn retry(&mut self, now: Time, hash: &InfoHash) {
        let tag = self.new_tag();
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if !t.retry() {
            return;
        }
        info!(
            "{}: trying again; {} pieces kept",
            t.info.name,
            t.have().count()
        );
        let job = Job::Allocate {
            tag,
            file: t.file,
            length: t.info.length,
        };
        t.query_peers_now(now);
        self.tags.insert(tag, *hash);
        self.job(job);
        self.query_peers(hash, now);
    }

    /// Resumes every download left in the directory by an earlier run
    /// (each `NAME.part` with its `NAME.part.info`).
    pub(super) fn resume_downloads(&mut self, now: Time) {
        let dir = self.config.dir.clone();
        for (path, bytes) in self.storage.resumable(&dir) {
            let saved = bytes
                .map_err(|e| e.to_string())
                .and_then(|b| resume::decode(&b));
            let (info, only) = match saved {
                Ok(saved) => saved,
                Err(e) => {
                    warn!("ignoring {}: {e}", path.display());
                    continue;
                }
            };
            if self.torrents.contains_key(&info.info_hash) {
                continue;
            }
            let name = info.name.clone();
            if let Err((_, e)) = self.open_download(now, info, dir.clone(), only) {
                warn!("cannot resume {name}: {e}");
            }
        }
    }

    /// The `.part` file got its disk space, or could not: a full disk
    /// ends the download now rather than at some later piece.
    pub(super) fn allocated(&mut self, tag: u64, result: io::Result<()>) {
        let Some(hash) = self.tags.remove(&tag) else {
            return;
        };
        let Err(e) = result else {
            return;
        };
        if let Some(t) = self.torrents.get_mut(&hash) {
            error!(
                "{}: cannot reserve {} bytes: {e}",
                t.info.name, t.info.length
            );
            let path = self.storage.path(t.file);
            t.fail(
                code::IO,
                format!("cannot reserve space for {}: {e}", path.display()),
            );
        }
        self.notify_watchers(&hash);
    }

    pub(super) fn verified(&mut self, now: Time, tag: u64, piece: u32, result: io::Result<bool>) {
        let Some(hash) = self.tags.remove(&tag) else {
            return;
        };
        let Some(t) = self.torrents.get_mut(&hash) else {
            return;
        };
        let suspects = t.piece_checked(piece, matches!(result, Ok(true)));
        match result {
            Ok(true) => {
                self.stats.pieces_verified += 1;
                // Seeders learn nothing from a have (BEP 3 allows leaving
                // it out). A peer that showed us only some pieces may be a
                // seed showing a few at a time (see `reveal`): it is told
                // even of a piece it showed us, as the piece may have come
                // from another peer.
                let told: Vec<LinkId> = t
                    .peers()
                    .iter()
                    .copied()
                    .filter(|c| !self.peers.get(c).is_some_and(|p| p.is_seed()))
                    .collect();
                // Nothing waits on a have: it may share a packet with
                // what the peer gets next (Action::SendLater).
                for link in told {
                    let mut bytes = Vec::with_capacity(9);
                    Message::Have(piece).encode(&mut bytes);
                    self.actions.push_back(Action::SendLater { link, bytes });
                }
                let req = Request::Have {
                    info_hash: hash,
                    piece,
                };
                self.tracker_broadcast(now, &req);
                self.after_piece_change(&hash);
            }
            Ok(false) => {
                warn!(
                    "{}: piece {piece} failed its hash check; fetching it again",
                    t.info.name
                );
                self.stats.pieces_failed += 1;
                let mut culprits = Vec::new();
                for addr in suspects {
                    if t.strike(addr) {
                        self.stats.peers_banned += 1;
                        warn!("{}: dropping {addr}, which sent corrupt data", t.info.name);
                        culprits.extend(
                            t.peers()
                                .iter()
                                .copied()
                                .filter(|c| self.peers.get(c).is_some_and(|p| p.addr() == addr)),
                        );
                    }
                }
                for c in culprits {
                    self.drop_peer(c, "sent corrupt data");
                }
            }
            Err(e) => {
                error!("{}: cannot read back piece {piece}: {e}", t.info.name);
                let path = self.storage.path(t.file);
                t.fail(code::IO, format!("cannot read {}: {e}", path.display()));
                self.notify_watchers(&hash);
            }
        }
    }

    /// After pieces were added: publish the file if complete.
    fn after_piece_change(&mut self, hash: &InfoHash) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if !t.is_complete() || t.state() == State::Seeding {
            return;
        }
        let name = t.info.name.clone();
        match self.storage.finish(t.file, t.out_dir(), &name) {
            Ok(path) => {
                info!("{name}: complete and verified: {}", path.display());
                self.storage.drop_resume(&path);
                t.published();
                let peers = t.peers().to_vec();
                for c in peers {
                    self.send(c, |b| Message::NotInterested.encode(b));
                }
            }
            Err(e) => {
                error!("{name}: {e}");
                let kind = match e {
                    StorageError::Exists(_) => code::EXISTS,
                    _ => code::IO,
                };
                t.fail(kind, e.to_string());
            }
        }
        self.notify_watchers(hash);
    }

    /// Stops sharing or fetching `hash`: its peers are dropped, the
    /// tracker told, its watchers answered with `why`.
    pub(super) fn remove_torrent(
        &mut self,
        now: Time,
        hash: &InfoHash,
        code: Code,
        why: String,
    ) -> Option<Torrent> {
        let peers = self.torrents.get(hash)?.peers().to_vec();
        for c in peers {
            self.drop_peer(c, "file removed");
        }
        if let Some(t) = self.torrents.get_mut(hash) {
            t.abandon(code, why);
        }
        self.notify_watchers(hash);
        let req = Request::Leave { info_hash: *hash };
        self.tracker_broadcast(now, &req);
        self.tags.retain(|_, h| h != hash);
        self.books.remove(hash);
        let t = self.torrents.remove(hash)?;
        self.stats.retired_uploaded += t.uploaded();
        self.stats.retired_downloaded += t.downloaded();
        Some(t)
    }
}
