//! The life of a file in the daemon: hashing it to share it, opening a
//! download (fresh or resumed), verifying pieces as they complete, and
//! publishing the finished file.

use super::daemon::{Daemon, Session, Sharing};
use super::torrent::{State, Torrent};
use crate::bitfield::Bitfield;
use crate::hashpool::Job;
use crate::meta::Info;
use crate::meta::info::to_hex;
use crate::reactor::{ConnId, Ctx};
use crate::storage::{StorageError, Store};
use crate::wire::peer::{InfoHash, Message};
use crate::wire::tracker::Request;
use log::{error, info, warn};
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// Pieces per hash job: small enough to spread over every pool thread.
const PIECES_PER_JOB: u32 = 64;

impl Daemon {
    /// Hashes the file at `path` on the pool; it is shared once done.
    pub fn start_share(
        &mut self,
        path: PathBuf,
        control: Option<ConnId>,
    ) -> Result<(), (&'static str, String)> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or((
                "bad_name",
                format!("{} has no usable file name", path.display()),
            ))?
            .to_owned();
        crate::meta::info::check_name(&name).map_err(|e| ("bad_name", format!("'{name}': {e}")))?;
        let store = Store::open_shared(&path).map_err(|e| ("io", e.to_string()))?;
        let piece_length = self.config.piece_length;
        let pieces = store.length().div_ceil(u64::from(piece_length));
        if pieces > u64::from(crate::limits::MAX_PIECES) {
            return Err((
                "bad_request",
                format!(
                    "{} needs {pieces} pieces; use a larger --piece-size",
                    path.display()
                ),
            ));
        }
        let pieces = pieces as u32;
        let tag = self.new_tag();
        for start in (0..pieces).step_by(PIECES_PER_JOB as usize) {
            self.pool.submit(Job::Hash {
                tag,
                file: store.mapped(),
                length: store.length(),
                piece_length,
                pieces: start..(start + PIECES_PER_JOB).min(pieces),
            });
        }
        info!(
            "hashing {} ({} bytes, {pieces} pieces)",
            path.display(),
            store.length()
        );
        self.sharing.insert(
            tag,
            Sharing {
                path,
                store: Some(store),
                hashes: vec![0; pieces as usize * 20],
                left: pieces.div_ceil(PIECES_PER_JOB),
                failed: None,
                control,
            },
        );
        Ok(())
    }

    pub fn hashed(
        &mut self,
        ctx: &mut Ctx<Session>,
        tag: u64,
        pieces: Range<u32>,
        hashes: io::Result<Vec<u8>>,
    ) {
        if self.sharing.contains_key(&tag) {
            return self.share_hashed(ctx, tag, pieces, hashes);
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
                    t.have.set(piece);
                }
            }
        }
        if let State::Checking { left } = &mut t.state {
            *left -= 1;
            if *left == 0 {
                self.tags.remove(&tag);
                info!(
                    "{}: {} of {} pieces already verified on disk",
                    t.info.name,
                    t.have.count(),
                    t.info.num_pieces()
                );
                t.state = State::Downloading;
                self.after_piece_change(ctx, &hash);
                self.announce(ctx, &hash);
                self.query_peers(ctx, &hash, std::time::Instant::now());
            }
        }
    }

    fn share_hashed(
        &mut self,
        ctx: &mut Ctx<Session>,
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
                s.hashes[at..at + h.len()].copy_from_slice(&h);
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
        let result = self.finish_share(ctx, &mut s);
        if let Some(control) = s.control {
            match result {
                Ok(hash) => self.control_file_reply(ctx, control, &hash),
                Err(msg) => self.control_fail(ctx, control, "io", msg),
            }
        }
    }

    fn finish_share(
        &mut self,
        ctx: &mut Ctx<Session>,
        s: &mut Sharing,
    ) -> Result<InfoHash, String> {
        if let Some(e) = s.failed.take() {
            return Err(e);
        }
        let store = s.store.take().ok_or("share already finished")?;
        let name = s
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("no file name")?
            .to_owned();
        let info = Info::new(
            &name,
            store.length(),
            self.config.piece_length,
            std::mem::take(&mut s.hashes),
        )
        .map_err(|e| e.to_string())?;
        let hash = info.info_hash;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.torrents.entry(hash) {
            let n = info.num_pieces();
            let dir = s.path.parent().map(PathBuf::from).unwrap_or_default();
            let t = Torrent::new(
                Arc::new(info),
                store,
                Bitfield::full(n),
                State::Seeding,
                dir,
            );
            info!("sharing {} as {}", s.path.display(), to_hex(&hash));
            slot.insert(t);
            self.announce(ctx, &hash);
        }
        Ok(hash)
    }

    /// Opens (or resumes) the download of `info` into `out_dir`, and makes
    /// `control` follow it.
    pub fn start_download(
        &mut self,
        ctx: &mut Ctx<Session>,
        control: ConnId,
        info: Info,
        out_dir: PathBuf,
    ) {
        let hash = info.info_hash;
        if !self.torrents.contains_key(&hash)
            && let Err((code, message)) = self.open_download(ctx, info, out_dir)
        {
            return self.control_fail(ctx, control, code, message);
        }
        self.watch(ctx, control, hash);
    }

    /// Creates `NAME.part` (or re-checks an existing one) and starts
    /// fetching. The metadata goes next to it as `NAME.part.info`, so a
    /// restarted daemon can resume on its own.
    pub fn open_download(
        &mut self,
        ctx: &mut Ctx<Session>,
        info: Info,
        out_dir: PathBuf,
    ) -> Result<(), (&'static str, String)> {
        let hash = info.info_hash;
        let final_path = crate::storage::final_path(&out_dir, &info.name)
            .map_err(|e| ("bad_name", e.to_string()))?;
        if final_path.exists() {
            return Err(("exists", StorageError::Exists(final_path).to_string()));
        }
        let (store, resumed) = Store::open_part(&out_dir, &info.name, info.length)
            .map_err(|e| ("io", e.to_string()))?;
        let sidecar = crate::storage::info_path(&final_path);
        if let Err(e) = std::fs::write(&sidecar, &info.bencoded) {
            warn!(
                "cannot save {}: {e}; this download will not resume by itself",
                sidecar.display()
            );
        }
        let n = info.num_pieces();
        let state = if resumed {
            State::Checking {
                left: n.div_ceil(PIECES_PER_JOB),
            }
        } else {
            State::Downloading
        };
        let t = Torrent::new(Arc::new(info), store, Bitfield::new(n), state, out_dir);
        if !resumed {
            let tag = self.new_tag();
            self.tags.insert(tag, hash);
            self.pool.submit(Job::Allocate {
                tag,
                file: t.store.file(),
                length: t.info.length,
            });
        }
        if resumed {
            let tag = self.new_tag();
            self.tags.insert(tag, hash);
            for start in (0..n).step_by(PIECES_PER_JOB as usize) {
                self.pool.submit(Job::Hash {
                    tag,
                    file: t.store.mapped(),
                    length: t.info.length,
                    piece_length: t.info.piece_length,
                    pieces: start..(start + PIECES_PER_JOB).min(n),
                });
            }
            info!(
                "resuming {}: checking {}",
                t.info.name,
                t.store.path().display()
            );
        } else {
            info!("downloading {} ({} bytes)", t.info.name, t.info.length);
        }
        self.torrents.insert(hash, t);
        self.announce(ctx, &hash);
        self.query_peers(ctx, &hash, std::time::Instant::now());
        Ok(())
    }

    /// Resumes every download left in `dir` by an earlier run (each
    /// `NAME.part` with its `NAME.part.info`).
    pub fn resume_downloads(&mut self, ctx: &mut Ctx<Session>) {
        let dir = self.config.dir.clone();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_sidecar = path
                .to_str()
                .is_some_and(|p| p.ends_with(crate::storage::INFO_SUFFIX));
            if !is_sidecar {
                continue;
            }
            let info = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| Info::from_bencoded(&b).map_err(|e| e.to_string()))
            {
                Ok(info) => info,
                Err(e) => {
                    warn!("ignoring {}: {e}", path.display());
                    continue;
                }
            };
            if self.torrents.contains_key(&info.info_hash) {
                continue;
            }
            let name = info.name.clone();
            if let Err((_, e)) = self.open_download(ctx, info, dir.clone()) {
                warn!("cannot resume {name}: {e}");
            }
        }
    }

    /// The `.part` file got its disk space, or could not: a full disk
    /// ends the download now rather than at some later piece.
    pub fn allocated(&mut self, ctx: &mut Ctx<Session>, tag: u64, result: io::Result<()>) {
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
            t.failure = Some((
                "io",
                format!("cannot reserve space for {}: {e}", t.store.path().display()),
            ));
        }
        self.notify_watchers(ctx, &hash);
    }

    pub fn verified(
        &mut self,
        ctx: &mut Ctx<Session>,
        tag: u64,
        piece: u32,
        result: io::Result<bool>,
    ) {
        let Some(hash) = self.tags.remove(&tag) else {
            return;
        };
        let Some(t) = self.torrents.get_mut(&hash) else {
            return;
        };
        t.picker.verified(piece);
        let suspects = t.suspects.remove(&piece).unwrap_or_default();
        let credit = t.unverified.remove(&piece).unwrap_or_default();
        match result {
            Ok(true) => {
                t.have.set(piece);
                for (addr, bytes) in credit {
                    *t.from_peers.entry(addr).or_insert(0) += bytes;
                }
                let have = Message::Have(piece);
                // Peers that hold the piece already learn nothing from it
                // (BEP 3 allows leaving it out): seeders never get haves.
                let told = t
                    .peers
                    .iter()
                    .filter(|c| !self.peers.get(c).is_some_and(|p| p.has(piece)));
                for &c in told {
                    let mut buf = Vec::with_capacity(9);
                    have.encode(&mut buf);
                    ctx.send(c, buf);
                }
                let req = Request::Have {
                    info_hash: hash,
                    piece,
                };
                self.tracker_send(ctx, &req, super::tracker_link::Pending::Update);
                self.after_piece_change(ctx, &hash);
            }
            Ok(false) => {
                warn!(
                    "{}: piece {piece} failed its hash check; fetching it again",
                    t.info.name
                );
                for addr in suspects {
                    if t.strike(addr) {
                        warn!("{}: dropping {addr}, which sent corrupt data", t.info.name);
                        let culprits: Vec<ConnId> = t
                            .peers
                            .iter()
                            .copied()
                            .filter(|c| self.peers.get(c).is_some_and(|p| p.addr() == addr))
                            .collect();
                        for c in culprits {
                            ctx.close(c);
                        }
                    }
                }
            }
            Err(e) => {
                error!("{}: cannot read back piece {piece}: {e}", t.info.name);
                t.failure = Some((
                    "io",
                    format!("cannot read {}: {e}", t.store.path().display()),
                ));
                self.notify_watchers(ctx, &hash);
            }
        }
    }

    /// After pieces were added: publish the file if complete.
    fn after_piece_change(&mut self, ctx: &mut Ctx<Session>, hash: &InfoHash) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if !t.is_complete() || t.state == State::Seeding {
            return;
        }
        let name = t.info.name.clone();
        match t.store.finish(&t.out_dir, &name) {
            Ok(path) => {
                info!("{name}: complete and verified: {}", path.display());
                let _ = std::fs::remove_file(crate::storage::info_path(&path));
                t.state = State::Seeding;
                for &c in &t.peers {
                    let mut buf = Vec::new();
                    Message::NotInterested.encode(&mut buf);
                    ctx.send(c, buf);
                }
            }
            Err(e) => {
                error!("{name}: {e}");
                let kind = if matches!(e, StorageError::Exists(_)) {
                    "exists"
                } else {
                    "io"
                };
                t.failure = Some((kind, e.to_string()));
            }
        }
        self.notify_watchers(ctx, hash);
    }
}
