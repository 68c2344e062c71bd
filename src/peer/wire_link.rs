//! Peer-wire sessions: handshake, bitfields, choking, requests and pieces.
//! Each connection's state lives in `Daemon::peers` (so timers can visit
//! every peer); while one connection's input is handled its state is taken
//! out of the map and put back after.

use super::daemon::{Daemon, Session};
use super::pending_writes::PendingWrites;
use super::picker::Received;
use super::session::{MAX_IN_FLIGHT, PeerConn};
use super::torrent::State;
use crate::bitfield::Bitfield;
use crate::hashpool::Job;
use crate::limits::MAX_REQUEST_LEN;
use crate::reactor::{ConnId, Ctx, Flow, OutQueue};
use crate::wire::peer::{Block, Handshake, InfoHash, Message, piece_header};
use log::{debug, error, info, warn};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A peer with requests outstanding and nothing received for this long is
/// dropped; its blocks go to others.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Top up a peer's requests once this many are free, so requests go out
/// in batches rather than one per block received.
const REQUEST_BATCH: usize = 16;
/// How often to ask the tracker for more peers while downloading.
const PEER_QUERY_FEW: Duration = Duration::from_secs(2);
const PEER_QUERY_MANY: Duration = Duration::from_secs(15);
/// BEP 3 peers drop a session silent for two minutes.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Why a peer session must end.
type Verdict = Result<(), String>;

fn encode(msg: Message<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(17);
    msg.encode(&mut buf);
    buf
}

impl Daemon {
    /// Dials peers of `hash` we are not yet connected to.
    pub fn dial_peers(&mut self, ctx: &mut Ctx<Session>, hash: &InfoHash, addrs: &[SocketAddr]) {
        let Some(t) = self.torrents.get(hash) else {
            return;
        };
        if t.state != State::Downloading {
            return;
        }
        let mut open = t.peers.len() + self.dialing.iter().filter(|(h, _)| h == hash).count();
        for &addr in addrs {
            if open >= self.config.max_peers {
                break;
            }
            let connected = t
                .peers
                .iter()
                .any(|c| self.peers.get(c).is_some_and(|p| p.addr() == addr));
            if t.banned.contains(&addr) || connected || self.dialing.contains(&(*hash, addr)) {
                continue;
            }
            self.dialing.insert((*hash, addr));
            ctx.dial(addr, Session::Peer(Some((*hash, addr))));
            open += 1;
        }
    }

    pub fn peer_dialed(
        &mut self,
        id: ConnId,
        target: Option<(InfoHash, SocketAddr)>,
        out: &mut OutQueue,
    ) {
        let Some((hash, addr)) = target else {
            return;
        };
        let mut conn = PeerConn::new(addr, Some(addr), Instant::now());
        conn.info_hash = Some(hash);
        out.push_with(|buf| Handshake::new(hash, self.peer_id).encode(buf));
        self.peers.insert(id, conn);
    }

    pub fn peer_accepted(&mut self, id: ConnId, remote: SocketAddr) {
        self.peers
            .insert(id, PeerConn::new(remote, None, Instant::now()));
    }

    pub fn peer_data(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        let Some(mut conn) = self.peers.remove(&id) else {
            return Flow {
                used: input.len(),
                close: true,
            };
        };
        let (used, verdict) = self.peer_input(ctx, id, &mut conn, input, out);
        if verdict.is_ok() {
            self.fill_requests(id, &mut conn, out);
        }
        self.peers.insert(id, conn);
        match verdict {
            Ok(()) => Flow { used, close: false },
            Err(why) => {
                debug!("peer {id}: closing: {why}");
                Flow { used, close: true }
            }
        }
    }

    fn peer_input(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        conn: &mut PeerConn,
        input: &[u8],
        out: &mut OutQueue,
    ) -> (usize, Verdict) {
        let mut used = 0;
        if !conn.handshaken {
            match Handshake::decode(input) {
                Ok(None) => return (0, Ok(())),
                Ok(Some((hs, n))) => {
                    used = n;
                    if let Err(why) = self.on_handshake(ctx, id, conn, hs, out) {
                        return (used, Err(why));
                    }
                }
                Err(e) => return (input.len(), Err(e.to_string())),
            }
        }
        let mut writes = PendingWrites::default();
        let (used, verdict) = loop {
            match Message::decode(&input[used..]) {
                Ok(None) => break (used, Ok(())),
                Ok(Some((msg, n))) => {
                    used += n;
                    if let Err(why) = self.on_message(ctx, id, conn, msg, &mut writes, out) {
                        break (used, Err(why));
                    }
                }
                Err(e) => break (input.len(), Err(e.to_string())),
            }
        };
        if !writes.is_empty() {
            self.write_blocks(ctx, writes, (id, conn.addr()));
        }
        (used, verdict)
    }

    /// Writes the blocks of one input buffer, then has the pieces they
    /// completed verified. `current` is the connection they came from.
    fn write_blocks(
        &mut self,
        ctx: &mut Ctx<Session>,
        writes: PendingWrites<'_>,
        current: (ConnId, SocketAddr),
    ) {
        let mut failed = Vec::new();
        for mut run in writes.runs {
            let Some(t) = self.torrents.get(&run.file) else {
                continue;
            };
            if let Err(e) = t.store.write_vectored_at(&mut run.bufs, run.offset) {
                self.write_failed(ctx, &run.file, e);
                failed.push(run.file);
            }
        }
        for (file, piece) in writes.verify {
            if !failed.contains(&file) {
                self.submit_verify(&file, piece, current);
            }
        }
    }

    fn on_handshake(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        conn: &mut PeerConn,
        hs: Handshake,
        out: &mut OutQueue,
    ) -> Verdict {
        if conn.info_hash.is_some_and(|h| h != hs.info_hash) {
            return Err("answered with another info hash".into());
        }
        if hs.peer_id == self.peer_id {
            return Err("connected to ourselves".into());
        }
        let Some(t) = self.torrents.get_mut(&hs.info_hash) else {
            return Err("asked for a file we do not have".into());
        };
        if matches!(t.state, State::Checking { .. }) {
            return Err("file is being checked".into());
        }
        if t.banned.contains(&conn.addr()) {
            return Err("peer is banned for sending corrupt data".into());
        }
        // Two connections between the same pair (both dialed at once):
        // keep the one dialed by the lower peer id, as the other side will.
        let dialer = |p: &PeerConn, their: &[u8; 20]| {
            if p.dialed.is_some() {
                self.peer_id
            } else {
                *their
            }
        };
        let mine = dialer(conn, &hs.peer_id);
        let duplicate = t.peers.iter().copied().find(|c| {
            self.peers
                .get(c)
                .is_some_and(|p| p.peer_id == Some(hs.peer_id))
        });
        if let Some(other) = duplicate {
            let theirs = self.peers.get(&other).map(|p| dialer(p, &hs.peer_id));
            if theirs.is_some_and(|o| o <= mine) {
                return Err("duplicate connection".into());
            }
            ctx.close(other);
        }
        let incoming = conn.info_hash.is_none();
        conn.info_hash = Some(hs.info_hash);
        conn.peer_id = Some(hs.peer_id);
        conn.fast = hs.supports_fast();
        conn.handshaken = true;
        conn.theirs = Some(Bitfield::new(t.info.num_pieces()));
        t.peers.push(id);
        if incoming {
            out.push_with(|buf| Handshake::new(hs.info_hash, self.peer_id).encode(buf));
        }
        out.push_with(|buf| {
            let msg = match (conn.fast, t.have.count()) {
                (true, 0) => Message::HaveNone,
                (true, _) if t.have.is_complete() => Message::HaveAll,
                (false, 0) => return,
                _ => Message::Bitfield(t.have.as_bytes()),
            };
            msg.encode(buf);
        });
        info!("peer {} joined {}", conn.addr(), t.info.name);
        Ok(())
    }

    /// Handles one message; received blocks are queued in `writes`.
    fn on_message<'a>(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        conn: &mut PeerConn,
        msg: Message<'a>,
        writes: &mut PendingWrites<'a>,
        out: &mut OutQueue,
    ) -> Verdict {
        let Some(hash) = conn.info_hash else {
            return Err("message before handshake".into());
        };
        let slots = self.config.upload_slots;
        let Some(t) = self.torrents.get_mut(&hash) else {
            return Err("file gone".into());
        };
        match msg {
            Message::KeepAlive
            | Message::Suggest(_)
            | Message::AllowedFast(_)
            | Message::Unknown { .. } => {}
            Message::Cancel(_) => {} // blocks are queued at once; nothing to withdraw
            Message::Choke => {
                conn.peer_choking = true;
                for b in conn.requested.drain(..) {
                    t.picker.release(id, &b);
                }
            }
            Message::Unchoke => {
                conn.peer_choking = false;
                conn.last_progress = Instant::now();
            }
            Message::Interested => {
                conn.peer_interested = true;
                if conn.am_choking && t.unchoked < slots {
                    conn.am_choking = false;
                    conn.unchoked_at = Instant::now();
                    t.unchoked += 1;
                    out.push_with(|b| Message::Unchoke.encode(b));
                }
            }
            Message::NotInterested => {
                conn.peer_interested = false;
                if !conn.am_choking {
                    conn.am_choking = true;
                    t.unchoked = t.unchoked.saturating_sub(1);
                    out.push_with(|b| Message::Choke.encode(b));
                }
            }
            Message::Have(piece) => {
                let theirs = conn.theirs.as_mut().ok_or("no bitfield")?;
                if piece >= theirs.len() {
                    return Err(format!("have for piece {piece} out of range"));
                }
                if theirs.set(piece) {
                    t.picker.add_have(piece);
                }
            }
            Message::Bitfield(bytes) => {
                let bits =
                    Bitfield::from_bytes(bytes, t.info.num_pieces()).map_err(|e| e.to_string())?;
                replace_pieces(conn, t, bits)?;
            }
            Message::HaveAll => replace_pieces(conn, t, Bitfield::full(t.info.num_pieces()))?,
            Message::HaveNone => replace_pieces(conn, t, Bitfield::new(t.info.num_pieces()))?,
            Message::Request(block) => {
                if let Some(len) = serve(conn, t, block, out)? {
                    t.uploaded += u64::from(len);
                    conn.uploaded += u64::from(len);
                }
            }
            Message::Reject(block) => {
                if let Some(i) = conn.requested.iter().position(|b| *b == block) {
                    conn.requested.swap_remove(i);
                    t.picker.release(id, &block);
                }
            }
            Message::Piece {
                index,
                begin,
                block,
            } => {
                let wanted = Block {
                    index,
                    begin,
                    length: block.len() as u32,
                };
                let Some(i) = conn.requested.iter().position(|b| *b == wanted) else {
                    return Ok(()); // after a cancel or a choke: harmless
                };
                conn.requested.swap_remove(i);
                conn.last_progress = Instant::now();
                let received = t.picker.receive(id, index, begin, block.len());
                if received == Received::Unwanted {
                    return Ok(());
                }
                // Straight from the input buffer to the file: the kernel's
                // copy is the only one, and no piece is held in memory.
                let offset = u64::from(index) * u64::from(t.info.piece_length) + u64::from(begin);
                writes.block(hash, offset, block);
                conn.downloaded += u64::from(wanted.length);
                t.downloaded += u64::from(wanted.length);
                let by = t.unverified.entry(index).or_default();
                *by.entry(conn.addr()).or_insert(0) += u64::from(wanted.length);
                match received {
                    Received::StoredCancel { cancel } => {
                        self.cancel_elsewhere(ctx, &cancel, wanted)
                    }
                    Received::PieceComplete { cancel } => {
                        self.cancel_elsewhere(ctx, &cancel, wanted);
                        writes.piece_complete(hash, index);
                    }
                    Received::Stored | Received::Unwanted => {}
                }
            }
        }
        Ok(())
    }

    /// The `.part` file refused a block (disk full, I/O error): the
    /// download stops fetching and its watchers learn why.
    fn write_failed(&mut self, ctx: &mut Ctx<Session>, hash: &InfoHash, e: std::io::Error) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if t.failure.is_none() {
            error!("{}: cannot write: {e}", t.info.name);
            t.failure = Some((
                "io",
                format!("cannot write {}: {e}", t.store.path().display()),
            ));
        }
        self.notify_watchers(ctx, hash);
    }

    fn cancel_elsewhere(&mut self, ctx: &mut Ctx<Session>, conns: &[ConnId], block: Block) {
        for c in conns {
            if let Some(p) = self.peers.get_mut(c) {
                p.requested.retain(|b| *b != block);
                ctx.send(*c, encode(Message::Cancel(block)));
            }
        }
    }

    /// `current` is the connection whose input is being handled: its
    /// state is out of `self.peers` meanwhile, but it is a suspect too.
    fn submit_verify(&mut self, hash: &InfoHash, piece: u32, current: (ConnId, SocketAddr)) {
        let tag = self.new_tag();
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        let Some(part) = t.picker.take_complete(piece) else {
            return;
        };
        let Some(expected) = t
            .info
            .piece_hash(piece)
            .and_then(|h| <[u8; 20]>::try_from(h).ok())
        else {
            return;
        };
        let suspects = part
            .contributors
            .iter()
            .filter_map(|&c| match c == current.0 {
                true => Some(current.1),
                false => self.peers.get(&c).map(PeerConn::addr),
            })
            .collect();
        t.suspects.insert(piece, suspects);
        self.tags.insert(tag, *hash);
        self.pool.submit(Job::Verify {
            tag,
            piece,
            expected,
            file: t.store.mapped(),
            offset: u64::from(piece) * u64::from(t.info.piece_length),
            length: t.info.piece_size(piece),
        });
    }

    /// Keeps up to `MAX_IN_FLIGHT` blocks requested from an unchoking peer
    /// that has pieces we need, and tells it whether we are interested.
    pub fn fill_requests(&mut self, id: ConnId, conn: &mut PeerConn, out: &mut OutQueue) {
        let (Some(hash), Some(theirs)) = (conn.info_hash, conn.theirs.as_ref()) else {
            return;
        };
        let Some(t) = self.torrents.get_mut(&hash) else {
            return;
        };
        let wants = t.state == State::Downloading
            && t.failure.is_none()
            && t.picker.interesting(&t.have, theirs);
        if wants != conn.am_interested && (wants || conn.requested.is_empty()) {
            conn.am_interested = wants;
            let msg = if wants {
                Message::Interested
            } else {
                Message::NotInterested
            };
            out.push_with(|b| msg.encode(b));
        }
        if !wants || conn.peer_choking || MAX_IN_FLIGHT - conn.requested.len() < REQUEST_BATCH {
            return;
        }
        let free = MAX_IN_FLIGHT - conn.requested.len();
        let blocks = t.picker.pick(id, theirs, &t.have, free, &mut self.rng);
        if conn.requested.is_empty() && !blocks.is_empty() {
            conn.last_progress = Instant::now();
        }
        out.push_with(|buf| {
            for b in &blocks {
                Message::Request(*b).encode(buf);
            }
        });
        conn.requested.extend(blocks);
    }

    pub fn peer_closed(&mut self, id: ConnId, target: Option<(InfoHash, SocketAddr)>) {
        if let Some(key) = target {
            self.dialing.remove(&key);
        }
        let Some(mut conn) = self.peers.remove(&id) else {
            return;
        };
        let Some(t) = conn.info_hash.and_then(|h| self.torrents.get_mut(&h)) else {
            return;
        };
        if !conn.handshaken {
            return;
        }
        t.peers.retain(|&c| c != id);
        if let Some(theirs) = &conn.theirs {
            t.picker.remove_peer_pieces(theirs);
        }
        for b in conn.requested.drain(..) {
            t.picker.release(id, &b);
        }
        if !conn.am_choking {
            t.unchoked = t.unchoked.saturating_sub(1);
        }
        debug!("peer {} left {}", conn.addr(), t.info.name);
    }

    /// Timers of the peer wire: stalled peers, request top-ups, choke
    /// rotation, peer discovery.
    pub fn peers_tick(&mut self, ctx: &mut Ctx<Session>, now: Instant) {
        let ids: Vec<ConnId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(mut conn) = self.peers.remove(&id) else {
                continue;
            };
            if !conn.requested.is_empty() && now.duration_since(conn.last_progress) > STALL_TIMEOUT
            {
                warn!("peer {} stalled; dropping it", conn.addr());
                ctx.close(id);
            } else if conn.handshaken {
                let mut out = OutQueue::default();
                self.fill_requests(id, &mut conn, &mut out);
                let mut bytes = Vec::new();
                if !out.is_empty() {
                    // The queue was filled from owned bytes only.
                    let _ = out.flush(&mut bytes);
                    ctx.send(id, bytes);
                }
            }
            self.peers.insert(id, conn);
        }
        self.fill_upload_slots(ctx, now);
        if now.duration_since(self.last_choke_round) >= super::daemon::CHOKE_ROUND {
            self.last_choke_round = now;
            self.rotate_unchoked(ctx, now);
            self.check_files(ctx);
        }
        if now.duration_since(self.last_keepalive) >= KEEPALIVE {
            self.last_keepalive = now;
            for (&id, p) in &self.peers {
                if p.handshaken {
                    ctx.send(id, encode(Message::KeepAlive));
                }
            }
        }
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for hash in hashes {
            if let Some(t) = self.torrents.get_mut(&hash) {
                t.picker.forget_idle_partials();
            }
            self.query_peers(ctx, &hash, now);
        }
    }

    /// Asks the tracker for peers of a download when it is time to: soon
    /// while few peers are connected, rarely once there are enough.
    pub fn query_peers(&mut self, ctx: &mut Ctx<Session>, hash: &InfoHash, now: Instant) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if t.state != State::Downloading || now < t.next_peer_query || !self.tracker.connected() {
            return;
        }
        let few = t.peers.len() < 4;
        t.next_peer_query = now + if few { PEER_QUERY_FEW } else { PEER_QUERY_MANY };
        let req = crate::wire::tracker::Request::GetPeers {
            info_hash: *hash,
            max: super::tracker_link::PEERS_WANTED,
            piece: None,
        };
        self.tracker_send(ctx, &req, super::tracker_link::Pending::Peers(*hash));
    }

    /// Stops sharing files whose size changed on disk (truncated or grown
    /// by another program): their pieces no longer match the metadata, and
    /// serving from a shrunk mapping would fail anyway.
    fn check_files(&mut self, ctx: &mut Ctx<Session>) {
        let broken: Vec<InfoHash> = self
            .torrents
            .iter()
            .filter(|(_, t)| !t.store.size_intact())
            .map(|(h, _)| *h)
            .collect();
        for hash in broken {
            let Some(mut t) = self.torrents.remove(&hash) else {
                continue;
            };
            warn!(
                "{} changed size on disk; no longer sharing it",
                t.store.path().display()
            );
            for &c in &t.peers {
                ctx.close(c);
            }
            t.failure = Some((
                "io",
                format!("{} changed size on disk", t.store.path().display()),
            ));
            let req = crate::wire::tracker::Request::Leave { info_hash: hash };
            self.tracker_send(ctx, &req, super::tracker_link::Pending::Update);
            self.torrents.insert(hash, t);
            self.notify_watchers(ctx, &hash);
            self.torrents.remove(&hash);
        }
    }

    /// Gives free upload slots (freed by a peer that left or lost interest)
    /// to interested peers waiting for one.
    fn fill_upload_slots(&mut self, ctx: &mut Ctx<Session>, now: Instant) {
        let slots = self.config.upload_slots;
        for t in self.torrents.values_mut() {
            for &c in &t.peers {
                if t.unchoked >= slots {
                    break;
                }
                if let Some(p) = self
                    .peers
                    .get_mut(&c)
                    .filter(|p| p.peer_interested && p.am_choking)
                {
                    p.am_choking = false;
                    p.unchoked_at = now;
                    t.unchoked += 1;
                    ctx.send(c, encode(Message::Unchoke));
                }
            }
        }
    }

    /// When interested peers wait for a slot, the peer unchoked longest
    /// gives its slot to one of them, so every peer gets a turn.
    fn rotate_unchoked(&mut self, ctx: &mut Ctx<Session>, now: Instant) {
        let mut swaps = Vec::new();
        for t in self.torrents.values() {
            let states: Vec<(ConnId, &PeerConn)> = t
                .peers
                .iter()
                .filter_map(|c| self.peers.get(c).map(|p| (*c, p)))
                .collect();
            let waiting = states
                .iter()
                .find(|(_, p)| p.peer_interested && p.am_choking)
                .map(|(c, _)| *c);
            let longest = states
                .iter()
                .filter(|(_, p)| !p.am_choking)
                .min_by_key(|(_, p)| p.unchoked_at)
                .map(|(c, _)| *c);
            if let (Some(w), Some(l)) = (waiting, longest) {
                ctx.send(l, encode(Message::Choke));
                ctx.send(w, encode(Message::Unchoke));
                swaps.push((l, w));
            }
        }
        for (l, w) in swaps {
            if let Some(p) = self.peers.get_mut(&l) {
                p.am_choking = true;
            }
            if let Some(p) = self.peers.get_mut(&w) {
                p.am_choking = false;
                p.unchoked_at = now;
            }
        }
    }
}

/// Adopts a peer's full piece set (bitfield, have-all, have-none), which
/// only makes sense before any have.
fn replace_pieces(conn: &mut PeerConn, t: &mut super::torrent::Torrent, bits: Bitfield) -> Verdict {
    if let Some(old) = &conn.theirs {
        if old.count() > 0 {
            return Err("second piece set after haves".into());
        }
        t.picker.remove_peer_pieces(old);
    }
    t.picker.add_peer_pieces(&bits);
    conn.theirs = Some(bits);
    Ok(())
}

/// Queues the block for `block` (header, then the mapped bytes: no copy),
/// or a reject when we cannot serve it. Returns the bytes queued.
fn serve(
    conn: &PeerConn,
    t: &super::torrent::Torrent,
    block: Block,
    out: &mut OutQueue,
) -> Result<Option<u32>, String> {
    let valid = block.index < t.info.num_pieces()
        && block.length > 0
        && block.length <= MAX_REQUEST_LEN
        && u64::from(block.begin) + u64::from(block.length)
            <= u64::from(t.info.piece_size(block.index));
    if !valid && !conn.fast {
        return Err(format!("invalid request {block:?}"));
    }
    let offset = u64::from(block.index) * u64::from(t.info.piece_length) + u64::from(block.begin);
    let slice = (valid && !conn.am_choking && t.have.get(block.index))
        .then(|| t.store.slice(offset, block.length))
        .flatten();
    match slice {
        Some((shared, range)) => {
            out.push(&piece_header(block.index, block.begin, block.length));
            out.push_shared(shared, range);
            Ok(Some(block.length))
        }
        None if conn.fast => {
            out.push_with(|b| Message::Reject(block).encode(b));
            Ok(None)
        }
        None => Ok(None),
    }
}
