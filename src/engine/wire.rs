//! Peer-wire sessions: handshake, bitfields, choking, requests and pieces,
//! and the timers that keep them moving. While one connection's input is
//! handled its state is out of `Engine::peers` and put back after.

use super::action::{Action, LinkId};
use super::choker::{Candidate, Changes, Rule};
use super::extended::send_ext_handshake;
use super::peer::PeerConn;
use super::pending_writes::PendingWrites;
use super::picker::Received;
use super::storage::Storage;
use super::time::Time;
use super::torrent::{State, Torrent};
use super::{CHOKE_ROUND, Dial, Engine, queue_send};
use crate::bitfield::Bitfield;
use crate::limits::MAX_REQUEST_LEN;
use crate::rng::Rng;
use crate::wire::extension;
use crate::wire::peer::{Block, Handshake, InfoHash, Message, PeerId, piece_header};
use log::{debug, info, warn};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// A peer with requests outstanding and nothing received for this long is
/// dropped; its blocks go to others.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often to ask the tracker for more peers while downloading.
const PEER_QUERY_FEW: Duration = Duration::from_secs(2);
const PEER_QUERY_MANY: Duration = Duration::from_secs(15);
/// Listen addresses remembered from the tracker's answers, at most.
const MAX_KNOWN_LISTENS: usize = 10_000;
/// BEP 3 peers drop a session silent for two minutes.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Why a peer session must end.
type Verdict = Result<(), String>;

impl<S: Storage> Engine<S> {
    /// Dials peers of `hash` we are not yet connected to.
    pub(super) fn dial_peers(&mut self, hash: &InfoHash, addrs: &[SocketAddr]) {
        if self.torrents.get(hash).is_some_and(Torrent::fetching) {
            self.dial_within_max(hash, addrs);
        }
    }

    /// Dials those of `addrs` not connected, dialed or banned, while the
    /// torrent has fewer than `max_peers` sessions and dials.
    pub(super) fn dial_within_max(&mut self, hash: &InfoHash, addrs: &[SocketAddr]) {
        let Some(t) = self.torrents.get(hash) else {
            return;
        };
        let targets = self.new_dials(hash, t.peers(), |a| t.is_banned(a), addrs);
        self.dial_all(hash, targets);
    }

    /// Of `addrs`, those worth dialing for `hash`, whose sessions are
    /// `links`: not banned, not connected, not being dialed, and no more
    /// than `max_peers` sessions in all.
    pub(super) fn new_dials<'a>(
        &self,
        hash: &InfoHash,
        links: impl IntoIterator<Item = &'a LinkId> + Clone,
        banned: impl Fn(&SocketAddr) -> bool,
        addrs: &[SocketAddr],
    ) -> Vec<SocketAddr> {
        let dialing = self.dialing.iter().filter(|(h, _)| h == hash).count();
        let mut open = links.clone().into_iter().count() + dialing;
        let mut targets = Vec::new();
        for &addr in addrs {
            if open >= self.config.max_peers {
                break;
            }
            let connected = (links.clone().into_iter())
                .any(|c| self.peers.get(c).is_some_and(|p| p.addr() == addr));
            if banned(&addr) || connected || self.dialing.contains(&(*hash, addr)) {
                continue;
            }
            targets.push(addr);
            open += 1;
        }
        targets
    }

    pub(super) fn dial_all(&mut self, hash: &InfoHash, targets: Vec<SocketAddr>) {
        for addr in targets {
            self.dialing.insert((*hash, addr));
            self.dial(addr, Dial::Peer(*hash, addr));
        }
    }

    /// The tracker says the peer `id` listens at `addr`: a session that
    /// dialed in from that address with that id is known by it from now
    /// on (so it is not dialed again, and strikes stick to it).
    pub(super) fn learn_listen(&mut self, id: PeerId, addr: SocketAddr) {
        if self.listens.len() >= MAX_KNOWN_LISTENS && !self.listens.contains_key(&id) {
            self.listens.clear(); // a bound, not a cache worth keeping whole
        }
        self.listens.insert(id, addr);
        for p in self.peers.values_mut() {
            if p.dialed.is_none() && p.peer_id == Some(id) && p.remote.ip() == addr.ip() {
                p.listen = Some(addr);
            }
        }
    }

    pub(super) fn peer_opened(
        &mut self,
        now: Time,
        link: LinkId,
        hash: InfoHash,
        addr: SocketAddr,
    ) {
        let mut conn = Box::new(PeerConn::new(addr, Some(addr), now));
        conn.info_hash = Some(hash);
        let hs = self.handshake(hash);
        self.send(link, |buf| hs.encode(buf));
        self.peers.insert(link, conn);
    }

    pub(super) fn peer_input(&mut self, now: Time, link: LinkId, input: &[u8]) -> usize {
        let Some(mut conn) = self.peers.remove(&link) else {
            return input.len();
        };
        let (used, verdict) = self.peer_messages(now, link, &mut conn, input);
        match verdict {
            Ok(()) => {
                if let Some(t) = conn.info_hash.and_then(|h| self.torrents.get_mut(&h)) {
                    fill_requests(now, link, &mut conn, t, &mut self.actions, &mut self.rng);
                }
                self.peers.insert(link, conn);
            }
            Err(why) => {
                debug!("peer {link}: closing: {why}");
                self.forget_peer(link, conn);
                self.close(link);
            }
        }
        used
    }

    fn peer_messages(
        &mut self,
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        input: &[u8],
    ) -> (usize, Verdict) {
        let mut used = 0;
        if !conn.handshaken {
            match Handshake::decode(input) {
                Ok(None) => return (0, Ok(())),
                Ok(Some((hs, n))) => {
                    used = n;
                    if let Err(why) = self.on_handshake(now, link, conn, hs) {
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
                    if let Err(why) = self.on_message(now, link, conn, msg, &mut writes) {
                        break (used, Err(why));
                    }
                }
                Err(e) => break (input.len(), Err(e.to_string())),
            }
        };
        if !writes.is_empty() {
            self.write_blocks(writes, (link, conn.addr()));
        }
        (used, verdict)
    }

    /// Writes the blocks of one input buffer, then has the pieces they
    /// completed verified. `current` is the connection they came from.
    fn write_blocks(&mut self, writes: PendingWrites<'_>, current: (LinkId, SocketAddr)) {
        let mut failed = Vec::new();
        for mut run in writes.runs {
            let Some(file) = self.torrents.get(&run.file).map(|t| t.file) else {
                continue;
            };
            if let Err(e) = self.storage.write(file, run.offset, &mut run.bufs) {
                self.write_failed(&run.file, e);
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
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        hs: Handshake,
    ) -> Verdict {
        if conn.info_hash.is_some_and(|h| h != hs.info_hash) {
            return Err("answered with another info hash".into());
        }
        if hs.peer_id == self.peer_id {
            return Err("connected to ourselves".into());
        }
        let Some(t) = self.torrents.get(&hs.info_hash) else {
            return self.magnet_handshake(link, conn, &hs);
        };
        if matches!(t.state(), State::Checking { .. }) {
            return Err("file is being checked".into());
        }
        if conn.dialed.is_none() {
            conn.listen = self
                .listens
                .get(&hs.peer_id)
                .copied()
                .filter(|a| a.ip() == conn.remote.ip());
        }
        if t.is_banned(&conn.addr()) {
            return Err("peer is banned for sending corrupt data".into());
        }
        // Two connections between the same pair (both dialed at once):
        // keep the one dialed by the greater peer id, as the other side
        // will (libtorrent's rule: a peer with the opposite one would
        // close the other connection, and neither would be left).
        let me = self.peer_id;
        let dialer = |p: &PeerConn, their: &[u8; 20]| {
            if p.dialed.is_some() { me } else { *their }
        };
        let mine = dialer(conn, &hs.peer_id);
        let duplicate = t.peers().iter().copied().find(|c| {
            self.peers
                .get(c)
                .is_some_and(|p| p.peer_id == Some(hs.peer_id))
        });
        if let Some(other) = duplicate {
            let theirs = self.peers.get(&other).map(|p| dialer(p, &hs.peer_id));
            if theirs.is_some_and(|o| o >= mine) {
                return Err("duplicate connection".into());
            }
            self.drop_peer(other, "a duplicate connection");
        }
        let Some(t) = self.torrents.get_mut(&hs.info_hash) else {
            return Err("file gone".into());
        };
        let incoming = conn.info_hash.is_none();
        conn.info_hash = Some(hs.info_hash);
        conn.peer_id = Some(hs.peer_id);
        conn.fast = hs.supports_fast();
        conn.handshaken = true;
        conn.theirs = Some(Bitfield::new(t.info.num_pieces()));
        t.peer_joined(link);
        info!("peer {} joined {}", conn.addr(), t.info.name);
        // A seed shows each peer a few pieces at a time (see `reveal`), if
        // it has more than one: libtorrent drops a peer whose one `have`
        // makes it a seed while it wanted nothing from it (see
        // `Reveal::never_last_alone`), and one piece has nothing to ration.
        let seeding = t.is_complete() && t.info.num_pieces() > 1;
        if seeding {
            t.reveal.join(link);
        }
        let (fast, have) = (conn.fast, t.have().clone());
        if incoming {
            let ours = self.handshake(hs.info_hash);
            self.send(link, |buf| ours.encode(buf));
        }
        self.send(link, |buf| {
            let msg = match (fast, have.count()) {
                (true, 0) => Message::HaveNone,
                (true, _) if seeding => Message::HaveNone,
                (false, _) if seeding => return,
                (false, 0) => return,
                _ => Message::Bitfield(have.as_bytes()),
            };
            msg.encode(buf);
        });
        // After the piece set, which BEP 6 wants first.
        if hs.supports_extended()
            && let Some(t) = self.torrents.get(&hs.info_hash)
        {
            let (port, info) = (self.config.listen_port, t.info.clone());
            send_ext_handshake(&mut self.actions, link, port, Some(&info));
        }
        if let Some(port) = self.port_for(&hs) {
            self.send(link, |buf| buf.extend_from_slice(&port));
        }
        if let Some(t) = self.torrents.get_mut(&hs.info_hash) {
            reveal_more(now, link, conn, t, &mut self.actions, &mut self.rng);
        }
        Ok(())
    }

    /// Handles one message; received blocks are queued in `writes`.
    fn on_message<'a>(
        &mut self,
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        msg: Message<'a>,
        writes: &mut PendingWrites<'a>,
    ) -> Verdict {
        let Some(hash) = conn.info_hash else {
            return Err("message before handshake".into());
        };
        if let Message::Unknown {
            id: extension::EXTENDED,
            payload,
        } = msg
        {
            return self.on_extended(now, link, conn, payload);
        }
        let Some(t) = self.torrents.get_mut(&hash) else {
            return self.magnet_message(link, conn, msg);
        };
        match msg {
            Message::Unknown {
                id: crate::wire::peer::id::PORT,
                payload,
            } => self.heard_port(conn.addr(), payload),
            Message::KeepAlive
            | Message::Suggest(_)
            | Message::AllowedFast(_)
            | Message::Unknown { .. } => {}
            Message::Cancel(block) => {
                // BEP 6: a request withdrawn before we answered it still
                // gets its answer, a reject.
                if conn.upload.cancel(&block) && conn.fast {
                    self.send(link, |b| Message::Reject(block).encode(b));
                }
            }
            Message::Choke => {
                conn.peer_choking = true;
                // BEP 6: a peer with the fast extension answers every
                // request, with the block or a reject, also across a choke
                // (its unchoke may follow at once, and it serves what it
                // gets after); without it a choke drops them all.
                if !conn.fast {
                    t.picker.release_all(link);
                    conn.pipeline.dropped(None);
                }
            }
            Message::Unchoke => {
                conn.peer_choking = false;
                conn.last_progress = now;
            }
            Message::Interested => {
                conn.peer_interested = true;
                t.peer_interest(link, true);
                let wanting = conn.am_interested || wants_from_any(t, &self.peers);
                let free_ride = choke_rule(t) == Rule::TitForTat && wanting && withholds(conn, now);
                if !free_ride && t.choker.offer(link, choke_rule(t), t.interested(), now) {
                    self.send(link, |b| Message::Unchoke.encode(b));
                }
            }
            Message::NotInterested => {
                conn.peer_interested = false;
                t.peer_interest(link, false);
                if t.choker.release(link) {
                    t.reveal.choked(link);
                    queue_send(&mut self.actions, link, |b| Message::Choke.encode(b));
                    withdraw_requests(link, conn, &mut self.actions);
                }
            }
            Message::Have(piece) => {
                let theirs = conn.theirs.as_mut().ok_or("no bitfield")?;
                if piece >= theirs.len() {
                    return Err(format!("have for piece {piece} out of range"));
                }
                if theirs.set(piece) {
                    t.picker.add_have(piece);
                    t.reveal.announced(link, piece);
                    reveal_more(now, link, conn, t, &mut self.actions, &mut self.rng);
                }
            }
            Message::Bitfield(bytes) => {
                let bits =
                    Bitfield::from_bytes(bytes, t.info.num_pieces()).map_err(|e| e.to_string())?;
                replace_pieces(link, conn, t, bits)?;
                reveal_more(now, link, conn, t, &mut self.actions, &mut self.rng);
            }
            Message::HaveAll => replace_pieces(link, conn, t, Bitfield::full(t.info.num_pieces()))?,
            Message::HaveNone => replace_pieces(link, conn, t, Bitfield::new(t.info.num_pieces()))?,
            Message::Request(block) => match accept_request(now, link, conn, t, block)? {
                Asked::Queued { made_room } => {
                    if made_room {
                        reveal_more(now, link, conn, t, &mut self.actions, &mut self.rng);
                    }
                    answer_requests(now, link, conn, t, &self.peers, &mut self.actions);
                }
                Asked::Refused(Some(reject)) => self.actions.push_back(reject),
                Asked::Refused(None) => {}
            },
            Message::Reject(block) => {
                // Only what we asked for: rejects of anything else would
                // grow the list at the sender's will.
                if t.picker.release(link, &block) {
                    conn.refused.rejected(block.index, now);
                }
                conn.pipeline.dropped(Some(block));
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
                conn.pipeline.received(now, wanted);
                let received = t.picker.receive(link, index, begin, block.len());
                if received == Received::Unwanted {
                    return Ok(());
                }
                conn.last_progress = now;
                // Straight from the input buffer to the file: the kernel's
                // copy is the only one, and no piece is held in memory.
                writes.block(hash, t.info.geometry().offset(index, begin), block);
                conn.downloaded += u64::from(wanted.length);
                t.block_received(index, conn.addr(), wanted.length);
                match received {
                    Received::StoredCancel { cancel } => self.cancel_elsewhere(&cancel, wanted),
                    Received::PieceComplete { cancel } => {
                        self.cancel_elsewhere(&cancel, wanted);
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
    fn write_failed(&mut self, hash: &InfoHash, e: std::io::Error) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if t.failure().is_none() {
            log::error!("{}: cannot write: {e}", t.info.name);
            let path = self.storage.path(t.file);
            t.fail(
                crate::control::code::IO,
                format!("cannot write {}: {e}", path.display()),
            );
        }
        self.notify_watchers(hash);
    }

    fn cancel_elsewhere(&mut self, links: &[LinkId], block: Block) {
        for &c in links {
            if self.peers.contains_key(&c) {
                self.send(c, |b| Message::Cancel(block).encode(b));
            }
        }
    }

    /// `current` is the connection whose input is being handled: its
    /// state is out of `self.peers` meanwhile, but it is a suspect too.
    fn submit_verify(&mut self, hash: &InfoHash, piece: u32, current: (LinkId, SocketAddr)) {
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
                false => self.peers.get(&c).map(|p| p.addr()),
            })
            .collect();
        t.verifying(piece, suspects);
        let job = super::Job::Verify {
            tag,
            torrent: *hash,
            piece,
            expected,
            file: t.file,
            offset: t.info.geometry().piece_offset(piece),
            length: t.info.piece_size(piece),
        };
        self.tags.insert(tag, *hash);
        self.job(job);
    }

    /// Ends a peer session on our side.
    pub(super) fn drop_peer(&mut self, link: LinkId, why: &str) {
        if let Some(conn) = self.peers.remove(&link) {
            debug!("peer {link}: closing: {why}");
            self.forget_peer(link, conn);
            self.close(link);
        }
    }

    pub(super) fn peer_gone(&mut self, link: LinkId) {
        if let Some(conn) = self.peers.remove(&link) {
            self.forget_peer(link, conn);
        }
    }

    /// Takes back everything a session held: its pieces in the counts,
    /// its requests, its upload slot.
    fn forget_peer(&mut self, link: LinkId, conn: Box<PeerConn>) {
        let Some(hash) = conn.info_hash else {
            return;
        };
        if let Some(addr) = conn.dialed {
            self.dialing.remove(&(hash, addr));
        }
        self.magnet_peer_left(&hash, link);
        let Some(t) = self.torrents.get_mut(&hash) else {
            return;
        };
        if !conn.handshaken {
            return;
        }
        if let Some(theirs) = &conn.theirs {
            t.picker.remove_peer_pieces(theirs);
        }
        t.peer_left(link);
        debug!("peer {} left {}", conn.addr(), t.info.name);
    }

    /// Timers of the peer wire: stalled peers, request top-ups, choke
    /// rotation, peer discovery.
    pub(super) fn peers_tick(&mut self, now: Time) {
        let stalled: Vec<LinkId> = self
            .peers
            .iter()
            .filter(|(link, conn)| {
                let owes = conn
                    .info_hash
                    .and_then(|h| self.torrents.get(&h))
                    .is_some_and(|t| t.picker.in_flight(**link) > 0);
                owes && now.since(conn.last_progress) > STALL_TIMEOUT
            })
            .map(|(link, _)| *link)
            .collect();
        for link in stalled {
            if let Some(conn) = self.peers.get(&link) {
                warn!("peer {} stalled; dropping it", conn.addr());
            }
            self.drop_peer(link, "stalled");
        }
        self.answer_waiting(now);
        let Engine {
            peers,
            torrents,
            actions,
            rng,
            ..
        } = self;
        for (&link, conn) in peers.iter_mut().filter(|(_, c)| c.handshaken) {
            if let Some(t) = conn.info_hash.and_then(|h| torrents.get_mut(&h)) {
                fill_requests(now, link, conn, t, actions, rng);
                reveal_more(now, link, conn, t, actions, rng);
            }
        }
        self.fill_upload_slots(now);
        if now.since(self.last_choke_round) >= CHOKE_ROUND {
            self.last_choke_round = now;
            self.choke_round(now);
            self.check_files(now);
        }
        if now.since(self.last_keepalive) >= KEEPALIVE {
            self.last_keepalive = now;
            let live: Vec<LinkId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.handshaken)
                .map(|(l, _)| *l)
                .collect();
            for link in live {
                self.send(link, |b| Message::KeepAlive.encode(b));
            }
        }
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for hash in hashes {
            if let Some(t) = self.torrents.get_mut(&hash) {
                t.picker.forget_idle_partials();
            }
            self.query_peers(&hash, now);
            self.dial_known(now, &hash);
        }
        self.magnets_tick(now);
        self.pex_tick(now);
    }

    /// Asks the tracker for peers of a download when it is time to: soon
    /// while few peers are connected, rarely once there are enough.
    pub(super) fn query_peers(&mut self, hash: &InfoHash, now: Time) {
        let Some(t) = self.torrents.get_mut(hash) else {
            return;
        };
        if !self.trackers.iter().any(|tr| tr.connected())
            || !t.peer_query_due(now, PEER_QUERY_FEW, PEER_QUERY_MANY)
        {
            return;
        }
        self.ask_peers(now, *hash);
    }

    /// Stops sharing files whose size changed on disk (truncated or grown
    /// by another program): their pieces no longer match the metadata, and
    /// serving from a shrunk mapping would fail anyway.
    fn check_files(&mut self, now: Time) {
        let broken: Vec<InfoHash> = self
            .torrents
            .iter()
            .filter(|(_, t)| !self.storage.size_intact(t.file))
            .map(|(h, _)| *h)
            .collect();
        for hash in broken {
            let path = self
                .torrents
                .get(&hash)
                .map(|t| self.storage.path(t.file))
                .unwrap_or_default();
            warn!(
                "{} changed size on disk; no longer sharing it",
                path.display()
            );
            self.remove_torrent(
                now,
                &hash,
                crate::control::code::IO,
                format!("{} changed size on disk", path.display()),
            );
        }
    }

    /// Second copies held for first copies that stopped moving go once
    /// `FIRSTS_PATIENCE` is over, which no event of their own marks.
    fn answer_waiting(&mut self, now: Time) {
        let waiting: Vec<LinkId> = self
            .peers
            .iter()
            .filter(|(_, c)| c.upload.waiting() > 0)
            .map(|(l, _)| *l)
            .collect();
        for link in waiting {
            let Some(mut conn) = self.peers.remove(&link) else {
                continue;
            };
            if let Some(t) = conn.info_hash.and_then(|h| self.torrents.get_mut(&h)) {
                answer_requests(now, link, &mut conn, t, &self.peers, &mut self.actions);
            }
            self.peers.insert(link, conn);
        }
    }

    /// Gives free upload slots (freed by a peer that left or lost interest)
    /// to the best of the interested peers waiting for one.
    fn fill_upload_slots(&mut self, now: Time) {
        let mut changes = Vec::new();
        for t in self.torrents.values_mut() {
            let candidates = choke_candidates(t, &self.peers, now);
            let rule = choke_rule(t);
            let idle = upload_idle(t, &self.peers);
            changes.push(t.choker.fill(&candidates, rule, idle, now, &mut self.rng));
        }
        self.apply_chokes(changes);
    }

    /// Deals every file's upload slots again (see [`super::choker`]), then
    /// starts a new round of tit-for-tat scores.
    fn choke_round(&mut self, now: Time) {
        let Engine {
            torrents,
            peers,
            rng,
            ..
        } = self;
        let mut changes = Vec::new();
        for t in torrents.values_mut() {
            let candidates = choke_candidates(t, peers, now);
            changes.push(t.choker.round(&candidates, choke_rule(t), now, rng));
            for link in t.peers() {
                if let Some(p) = peers.get_mut(link) {
                    p.downloaded_at_round = p.downloaded;
                }
            }
        }
        self.apply_chokes(changes);
    }

    fn apply_chokes(&mut self, changes: Vec<Changes>) {
        for c in changes {
            for link in c.choke {
                self.send(link, |b| Message::Choke.encode(b));
                if let Some(conn) = self.peers.get_mut(&link) {
                    withdraw_requests(link, conn, &mut self.actions);
                    if let Some(t) = conn.info_hash.and_then(|h| self.torrents.get_mut(&h)) {
                        t.reveal.choked(link);
                    }
                }
            }
            for link in c.unchoke {
                self.send(link, |b| Message::Unchoke.encode(b));
            }
        }
    }
}

/// Whether every peer we unchoke has nothing waiting with us and nothing
/// of ours unsent: our upload could carry more than they ask.
fn upload_idle(t: &Torrent, peers: &BTreeMap<LinkId, Box<PeerConn>>) -> bool {
    t.peers().iter().all(|l| {
        !t.choker.is_unchoked(*l)
            || peers
                .get(l)
                .is_none_or(|p| p.upload.waiting() == 0 && p.upload.unsent() == 0)
    })
}

fn choke_rule(t: &Torrent) -> Rule {
    match t.is_complete() {
        true => Rule::Seeding,
        false => Rule::TitForTat,
    }
}

/// The interested peers of `t`, each with its score for the choker: what
/// it sent us this round while we download; while we seed, the pieces it
/// passed on against the bytes it got from us, so a peer that keeps what
/// we send falls behind.
fn choke_candidates(
    t: &Torrent,
    peers: &BTreeMap<LinkId, Box<PeerConn>>,
    now: Time,
) -> Vec<Candidate> {
    let rule = choke_rule(t);
    let piece = i64::from(t.info.piece_length);
    let wanting = wants_from_any(t, peers);
    t.peers()
        .iter()
        .filter_map(|&link| {
            let p = peers.get(&link).filter(|p| p.peer_interested)?;
            let score = match rule {
                Rule::TitForTat => (p.downloaded - p.downloaded_at_round + p.downloaded / 2) as i64,
                Rule::Seeding => t.reveal.spread(link) as i64 * piece - p.uploaded as i64,
            };
            let silent = withholds(p, now);
            Some(Candidate {
                link,
                score,
                withholds: rule == Rule::TitForTat && wanting && silent,
                earns_spare: !silent,
            })
        })
        .collect()
}

/// Whether a peer, known for a round, never sent us a byte: a free
/// rider, or one with nothing for us yet. Under tit-for-tat it gets only
/// optimistic turns while we want pieces from some peer (see
/// [`wants_from_any`]). Counting only peers that have pieces we want let
/// free riders that lag behind us take our free slots: 40 leechers at
/// 20 Mbit/s, 10 of them free riders, seeds 1, 3, 5: their median finish
/// 1.33, 1.23, 1.25 x the others' against 1.09, 1.09, 1.15, the others'
/// unchanged (44.4, 43.6, 44.4 s against 45.9, 43.8, 44.0 s).
fn withholds(p: &PeerConn, now: Time) -> bool {
    p.downloaded == 0 && now.since(p.met) >= CHOKE_ROUND
}

/// Whether we want pieces from some peer of `t`. When we want nothing
/// from anyone (ahead of all our peers, say), nobody can pay us back, and
/// withholding tells nothing: every interested peer is served alike.
fn wants_from_any(t: &Torrent, peers: &BTreeMap<LinkId, Box<PeerConn>>) -> bool {
    t.peers()
        .iter()
        .any(|l| peers.get(l).is_some_and(|p| p.am_interested))
}

/// Keeps as many blocks requested from an unchoking peer that has pieces
/// we need as its link's depth asks (see [`super::pipeline`]), and tells
/// it whether we are interested.
fn fill_requests(
    now: Time,
    link: LinkId,
    conn: &mut PeerConn,
    t: &mut Torrent,
    actions: &mut VecDeque<Action>,
    rng: &mut Rng,
) {
    let Some(theirs) = conn.theirs.as_ref() else {
        return;
    };
    let key = (t.picker.epoch(), t.settled().count(), theirs.count());
    let interesting = match conn.interest {
        Some((k, v)) if k == key => v,
        _ => {
            let v = t.picker.interesting(t.settled(), theirs);
            conn.interest = Some((key, v));
            v
        }
    };
    let wants = t.fetching() && interesting;
    let in_flight = t.picker.in_flight(link);
    if wants != conn.am_interested && (wants || in_flight == 0) {
        conn.am_interested = wants;
        let msg = match wants {
            true => Message::Interested,
            false => Message::NotInterested,
        };
        queue_send(actions, link, |b| msg.encode(b));
    }
    // One depth per top-up: it is float arithmetic, and this runs for
    // every input on every peer link.
    let depth = conn.pipeline.depth();
    let free = depth.saturating_sub(in_flight);
    if !wants || conn.peer_choking || free < super::pipeline::batch_of(depth) {
        return;
    }
    let askable = conn.refused.askable(theirs, now);
    let blocks = t.pick(link, &askable, free, rng);
    if in_flight == 0
        && let Some(&first) = blocks.first()
    {
        conn.last_progress = now;
        conn.pipeline.sent_to_idle(now, first);
    }
    queue_send(actions, link, |buf| {
        for b in &blocks {
            Message::Request(*b).encode(buf);
        }
    });
}

/// Adopts a peer's full piece set (bitfield, have-all, have-none), which
/// only makes sense before any have.
pub(super) fn replace_pieces(
    link: LinkId,
    conn: &mut PeerConn,
    t: &mut Torrent,
    bits: Bitfield,
) -> Verdict {
    if let Some(old) = &conn.theirs {
        if old.count() > 0 {
            return Err("second piece set after haves".into());
        }
        t.picker.remove_peer_pieces(old);
    }
    t.picker.add_peer_pieces(&bits);
    for p in bits.ones() {
        t.reveal.announced(link, p);
    }
    conn.theirs = Some(bits);
    Ok(())
}

/// Shows a peer of a seed more pieces once it runs short of pieces to ask
/// for (see [`super::reveal`]).
fn reveal_more(
    now: Time,
    link: LinkId,
    conn: &PeerConn,
    t: &mut Torrent,
    actions: &mut VecDeque<Action>,
    rng: &mut Rng,
) {
    let Some(theirs) = conn.theirs.as_ref() else {
        return;
    };
    let picker = &t.picker;
    let peer = super::reveal::Peer {
        interested: conn.peer_interested,
        unchoked: t.choker.is_unchoked(link),
        alone: !t.others_interested(link),
    };
    let shown = t
        .reveal
        .top_up(link, theirs, |p| picker.availability(p), peer, now, rng);
    if !shown.is_empty() {
        queue_send(actions, link, |b| {
            for &p in &shown {
                Message::Have(p).encode(b);
            }
        });
    }
}

/// What became of a request.
enum Asked {
    /// In the peer's queue (see [`super::upload`]); `made_room`: the seed
    /// may show the peer another piece.
    Queued { made_room: bool },
    /// Not served: a reject for a BEP 6 peer, else nothing.
    Refused(Option<Action>),
}

/// Takes a request into the peer's queue, or refuses it (we choke the
/// peer, lack the piece, or its queue is full). An invalid request from a
/// peer without the Fast extension is an error.
fn accept_request(
    now: Time,
    link: LinkId,
    conn: &mut PeerConn,
    t: &mut Torrent,
    block: Block,
) -> Result<Asked, String> {
    let valid = block.length <= MAX_REQUEST_LEN
        && t.info
            .geometry()
            .span(block.index, block.begin, block.length)
            .is_some();
    if !valid && !conn.fast {
        return Err(format!("invalid request {block:?}"));
    }
    let servable =
        valid && t.choker.is_unchoked(link) && t.have().get(block.index) && !conn.upload.is_full();
    if !servable {
        return Ok(Asked::Refused(conn.fast.then(|| reject(link, block))));
    }
    // Only a request we take makes its asker the piece's first getter.
    let made_room = t.reveal.requested(link, block.index, now);
    let first = t.reveal.first_copy(link, block.index, now);
    if conn.upload.ask(block, first).is_ok() && first {
        t.reveal.firsts_moved(now);
    }
    Ok(Asked::Queued { made_room })
}

fn reject(link: LinkId, block: Block) -> Action {
    let mut bytes = Vec::with_capacity(17);
    Message::Reject(block).encode(&mut bytes);
    Action::Send { link, bytes }
}

/// Hands the shell the blocks the peer asked for while it has room for
/// them: the header, then the file's bytes, sent without copying. A
/// seed's second copies wait while a piece was never asked for, or first
/// copies wait on any link (`peers` lacks `link`'s own session while it is
/// handled), unless first copies made no progress for `FIRSTS_PATIENCE`.
pub(super) fn answer_requests(
    now: Time,
    link: LinkId,
    conn: &mut PeerConn,
    t: &mut Torrent,
    peers: &BTreeMap<LinkId, Box<PeerConn>>,
    actions: &mut VecDeque<Action>,
) {
    if turn_seconds_away(now, link, conn, t) {
        for block in conn.upload.withdraw_seconds() {
            actions.push_back(reject(link, block));
        }
    }
    let mut firsts = Vec::new();
    // Its own first copies too: they may have been asked after the
    // second copy that waits, so behind it in the socket.
    let own_firsts = conn.upload.firsts() > 0;
    let seconds_wait = || {
        t.reveal.covers(link)
            && !t.reveal.seconds_released(now)
            && (own_firsts
                || !t.reveal.all_handed_once()
                || t.peers()
                    .iter()
                    .any(|l| *l != link && peers.get(l).is_some_and(|p| p.upload.firsts() > 0)))
    };
    while let Some((block, first)) = conn.upload.next(seconds_wait) {
        let Some(span) = t
            .info
            .geometry()
            .span(block.index, block.begin, block.length)
        else {
            // Checked when it was asked; never counted as handed.
            conn.upload.unmake();
            continue;
        };
        if first {
            firsts.push((block.index, block.length));
        }
        actions.push_back(Action::SendBlock {
            link,
            header: piece_header(block.index, block.begin, block.length),
            file: t.file,
            offset: span.start,
            len: block.length,
        });
    }
    for (piece, len) in firsts {
        t.reveal.first_handed(piece, len);
    }
}

/// Whether a seed rejects the second copies `link` asked for rather than
/// hold them or send them: first copies stalled while this peer holds one
/// up (shown a piece never asked of us that it did not ask for, or it
/// asked for part of a piece's first copy and not the rest). Its requests
/// are all taken by second copies it waits for, so it cannot ask for
/// those blocks; sending the second copies instead (what a stall
/// otherwise allows) spends our upload on pieces the swarm has, and a seed
/// that leaves after one copy of the file then strands the piece it never
/// sent whole. A BEP 6 peer asks elsewhere for what we reject (see
/// [`super::refused`]), and the room goes to the first copy.
fn turn_seconds_away(now: Time, link: LinkId, conn: &PeerConn, t: &Torrent) -> bool {
    conn.fast
        && conn.upload.seconds_waiting()
        && t.reveal.covers(link)
        && t.reveal.firsts_stalled(now)
        && t.reveal.holds_up_firsts(link)
}

/// We choked the peer: what it asked for and we did not hand over yet is
/// dropped, with a reject each when it speaks BEP 6 (it then asks
/// elsewhere at once).
fn withdraw_requests(link: LinkId, conn: &mut PeerConn, actions: &mut VecDeque<Action>) {
    for block in conn.upload.withdraw_all() {
        if conn.fast {
            actions.push_back(reject(link, block));
        }
    }
}
