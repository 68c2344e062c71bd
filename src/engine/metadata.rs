//! BEP 9 `ut_metadata`: the info dict over the peer wire, both ways.
//!
//! Serving: any peer of a torrent we hold the dict of may ask for its
//! 16 KiB pieces; a private torrent's dict (BEP 27) is not offered, as
//! libtorrent does not either: it comes from its tracker or `.torrent`.
//!
//! Fetching: a `get` of an info hash whose metadata no tracker has (or
//! with no tracker at all) becomes a *magnet*: sessions with the peers we
//! know of (`x.pe`, PEX, DHT, see `book`) carry only handshakes and
//! extended messages until one peer, which advertised `ut_metadata` and a
//! `metadata_size` of at most `MAX_METADATA_SIZE`, has sent every piece.
//! One peer at a time is asked for the whole dict, so a dict whose SHA1 is
//! not the info hash names its sender, which is banned from this download
//! and dropped; a peer that rejects, disagrees with itself about the size
//! or stays silent for `METADATA_TIMEOUT` is not asked again, and the next
//! peer is. Nothing is allocated but the pieces that came. Once the dict
//! checks, the download starts as if a tracker had sent it, and the
//! sessions become the download's peers.

use super::action::LinkId;
use super::book::PeerSource;
use super::extended::send_ext_handshake;
use super::peer::PeerConn;
use super::storage::Storage;
use super::time::Time;
use super::{Dial, Engine, queue_send};
use crate::control::code;
use crate::limits::MAX_METADATA_SIZE;
use crate::meta::Info;
use crate::meta::info::to_hex;
use crate::wire::peer::{Handshake, InfoHash, Message};
use crate::wire::ut_metadata::{MetadataMsg, piece_count, piece_span};
use log::{debug, info, warn};
use sha1::{Digest, Sha1};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A peer asked for metadata pieces that sends none for this long is
/// given up on, and the next peer asked.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// A fetch with no peer left to ask, none being dialed and none known
/// to dial, fails after this long (DHT or PEX may still bring one).
pub const MAGNET_PATIENCE: Duration = Duration::from_secs(60);
/// Metadata requests kept in flight to the peer fetched from (libtorrent
/// keeps 2; a few more hide the round trip on a large dict).
const METADATA_IN_FLIGHT: u32 = 4;

/// A download that has only its info hash so far.
pub(super) struct Magnet {
    pub out_dir: PathBuf,
    pub only: Vec<String>,
    /// The `get` sessions waiting for it.
    pub controls: Vec<LinkId>,
    /// Handshaken sessions for this info hash.
    pub links: BTreeSet<LinkId>,
    source: Option<Source>,
    /// Peers given up on: rejected, timed out, claimed too much.
    tried: BTreeSet<SocketAddr>,
    /// Peers that sent a wrong dict.
    banned: BTreeSet<SocketAddr>,
    /// Last time the fetch had a peer to ask, dial or wait for.
    hopeful: Time,
}

/// The peer the dict is being fetched from, and what it sent so far.
struct Source {
    link: LinkId,
    addr: SocketAddr,
    size: u64,
    got: BTreeMap<u32, Vec<u8>>,
    /// Pieces asked for so far: 0..asked.
    asked: u32,
    deadline: Time,
}

impl Source {
    fn pieces(&self) -> u32 {
        piece_count(self.size) as u32
    }

    /// Requests for the next pieces, up to `METADATA_IN_FLIGHT` out.
    fn more(&mut self, now: Time) -> Vec<u32> {
        let out = self.asked - self.got.len() as u32;
        let n = METADATA_IN_FLIGHT
            .saturating_sub(out)
            .min(self.pieces() - self.asked);
        self.deadline = now + METADATA_TIMEOUT;
        let next: Vec<u32> = (self.asked..self.asked + n).collect();
        self.asked += n;
        next
    }
}

/// Why a peer that sent a piece is no longer fetched from.
enum Outcome {
    More(Vec<u32>),
    Complete(Vec<u8>),
    GiveUp(String),
}

impl<S: Storage> Engine<S> {
    /// `get HASH` with no tracker metadata: fetch the dict from peers,
    /// first from `peers` (a magnet's `x.pe`).
    pub(super) fn start_magnet(
        &mut self,
        now: Time,
        control: LinkId,
        hash: InfoHash,
        out_dir: PathBuf,
        only: Vec<String>,
        peers: &[SocketAddr],
    ) {
        let m = self.magnets.entry(hash).or_insert_with(|| {
            info!(
                "{}: fetching its info dict from peers (BEP 9)",
                to_hex(&hash)
            );
            Magnet {
                out_dir,
                only,
                controls: Vec::new(),
                links: BTreeSet::new(),
                source: None,
                tried: BTreeSet::new(),
                banned: BTreeSet::new(),
                hopeful: now,
            }
        });
        m.controls.push(control);
        self.add_peers(now, hash, peers, PeerSource::Magnet);
    }

    /// The session a magnet's dict is being fetched from.
    #[cfg(test)]
    pub(super) fn magnet_source_link(&self, hash: &InfoHash) -> Option<LinkId> {
        self.magnets.get(hash)?.source.as_ref().map(|s| s.link)
    }

    /// Whether a magnet of `hash` has anyone to ask: peers given with the
    /// `get`, or known already (from PEX or a DHT lookup, through
    /// `add_peers`). A DHT, when there is one, makes this true for
    /// every hash (its lookup brings peers).
    pub(super) fn peers_may_come(&self, hash: &InfoHash, given: &[SocketAddr]) -> bool {
        !given.is_empty() || self.books.get(hash).is_some_and(|b| !b.is_empty())
    }

    /// The magnets, for `status`.
    pub(super) fn magnets_report(&self) -> Vec<crate::control::MetadataFetch> {
        self.magnets
            .iter()
            .map(|(hash, m)| crate::control::MetadataFetch {
                info_hash: *hash,
                peers: m.links.len() as u32,
                known: self.books.get(hash).map_or(0, |b| b.len() as u32),
            })
            .collect()
    }

    /// True if `hash` is a download waiting for its info dict.
    pub(super) fn is_magnet(&self, hash: &InfoHash) -> bool {
        self.magnets.contains_key(hash)
    }

    /// Dials peers of a magnet, up to `max_peers` sessions.
    pub(super) fn dial_magnet(&mut self, hash: &InfoHash, addrs: &[SocketAddr]) {
        let Some(m) = self.magnets.get(hash) else {
            return;
        };
        let mut open = m.links.len() + self.dialing.iter().filter(|(h, _)| h == hash).count();
        let mut targets = Vec::new();
        for &addr in addrs {
            if open >= self.config.max_peers {
                break;
            }
            let connected = m
                .links
                .iter()
                .any(|c| self.peers.get(c).is_some_and(|p| p.addr() == addr));
            if m.banned.contains(&addr) || connected || self.dialing.contains(&(*hash, addr)) {
                continue;
            }
            targets.push(addr);
            open += 1;
        }
        for addr in targets {
            self.dialing.insert((*hash, addr));
            self.dial(addr, Dial::Peer(*hash, addr));
        }
    }

    /// A peer's handshake for a magnet: the session carries extended
    /// messages until the dict is here. We hold no piece yet.
    pub(super) fn magnet_handshake(
        &mut self,
        link: LinkId,
        conn: &mut PeerConn,
        hs: &Handshake,
    ) -> Result<(), String> {
        let Some(m) = self.magnets.get_mut(&hs.info_hash) else {
            return Err("asked for a file we do not have".into());
        };
        if m.banned.contains(&conn.addr()) {
            return Err("peer is banned for sending a wrong info dict".into());
        }
        if m.links.len() >= self.config.max_peers {
            return Err("enough peers for this file".into());
        }
        let incoming = conn.info_hash.is_none();
        conn.info_hash = Some(hs.info_hash);
        conn.peer_id = Some(hs.peer_id);
        conn.fast = hs.supports_fast();
        conn.handshaken = true;
        m.links.insert(link);
        let me = self.peer_id;
        if incoming {
            self.send(link, |b| Handshake::new(hs.info_hash, me).encode(b));
        }
        if conn.fast {
            self.send(link, |b| Message::HaveNone.encode(b));
        }
        if hs.supports_extended() {
            send_ext_handshake(&mut self.actions, link, self.config.listen_port, None);
        }
        debug!(
            "peer {} joined the metadata fetch of {}",
            conn.addr(),
            to_hex(&hs.info_hash)
        );
        Ok(())
    }

    /// A message on a magnet's session: pieces are remembered for when the
    /// piece count is known; requests are refused (we hold nothing).
    pub(super) fn magnet_message(
        &mut self,
        link: LinkId,
        conn: &mut PeerConn,
        msg: Message<'_>,
    ) -> Result<(), String> {
        let hash = conn.info_hash.ok_or("message before handshake")?;
        if !self.magnets.contains_key(&hash) {
            return Err("file gone".into());
        }
        match msg {
            Message::Bitfield(bytes) => conn.ext.early.bitfield(bytes),
            Message::HaveAll => conn.ext.early.have_all(),
            Message::Have(p) => conn.ext.early.have(p),
            Message::Interested => conn.peer_interested = true,
            Message::NotInterested => conn.peer_interested = false,
            Message::Choke => conn.peer_choking = true,
            Message::Unchoke => conn.peer_choking = false,
            Message::Request(block) if conn.fast => {
                self.send(link, |b| Message::Reject(block).encode(b));
            }
            _ => {}
        }
        Ok(())
    }

    /// A `ut_metadata` message from a peer.
    pub(super) fn on_metadata(
        &mut self,
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        msg: MetadataMsg<'_>,
    ) -> Result<(), String> {
        match msg {
            MetadataMsg::Request(piece) => {
                self.serve_metadata(link, conn, piece);
                Ok(())
            }
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => self.metadata_data(now, link, conn, piece, total_size, data),
            MetadataMsg::Reject(piece) => {
                self.metadata_refused(link, conn, &format!("rejected metadata piece {piece}"));
                Ok(())
            }
        }
    }

    /// Answers a request for a piece of the dict: the piece, or a reject
    /// when we do not hold it (or it is private, or out of range).
    fn serve_metadata(&mut self, link: LinkId, conn: &PeerConn, piece: u32) {
        let Some(id) = conn.ext.ut_metadata else {
            return; // it cannot read our answer
        };
        let info = conn
            .info_hash
            .and_then(|h| self.torrents.get(&h))
            .map(|t| t.info.clone())
            .filter(|i| !i.private());
        let size = info.as_ref().map_or(0, |i| i.bencoded.len() as u64);
        let span = piece_span(size, piece);
        self.send(link, |b| match (&info, span) {
            (Some(info), Some(span)) => MetadataMsg::Data {
                piece,
                total_size: size,
                data: &info.bencoded[span],
            }
            .encode(id, b),
            _ => MetadataMsg::Reject(piece).encode(id, b),
        });
    }

    /// Starts fetching the dict from `conn` if it has it and no peer is
    /// being fetched from.
    pub(super) fn magnet_source(&mut self, now: Time, link: LinkId, conn: &PeerConn) {
        let Some(hash) = conn.info_hash else {
            return;
        };
        let Engine {
            magnets, actions, ..
        } = self;
        let Some(m) = magnets.get_mut(&hash) else {
            return;
        };
        let addr = conn.addr();
        if m.source.is_some() || m.tried.contains(&addr) || m.banned.contains(&addr) {
            return;
        }
        let (Some(id), Some(size)) = (conn.ext.ut_metadata, conn.ext.metadata_size) else {
            return;
        };
        if size > MAX_METADATA_SIZE {
            warn!(
                "peer {addr} says the info dict of {} is {size} bytes, over MAX_METADATA_SIZE ({MAX_METADATA_SIZE}); not fetching it from that peer",
                to_hex(&hash)
            );
            m.tried.insert(addr);
            return;
        }
        let mut source = Source {
            link,
            addr,
            size,
            got: BTreeMap::new(),
            asked: 0,
            deadline: now,
        };
        let pieces = source.more(now);
        debug!(
            "fetching the {size}-byte info dict of {} from {addr}",
            to_hex(&hash)
        );
        m.source = Some(source);
        queue_send(actions, link, |b| {
            for p in pieces {
                MetadataMsg::Request(p).encode(id, b);
            }
        });
    }

    /// A piece of a dict arrived.
    fn metadata_data(
        &mut self,
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        piece: u32,
        total_size: u64,
        data: &[u8],
    ) -> Result<(), String> {
        let Some(hash) = conn.info_hash else {
            return Ok(());
        };
        let Some(source) = self
            .magnets
            .get_mut(&hash)
            .and_then(|m| m.source.as_mut())
            .filter(|s| s.link == link)
        else {
            return Ok(()); // unasked for, or late: ignored
        };
        let outcome = if total_size != source.size {
            Outcome::GiveUp(format!(
                "sent a metadata piece of a {total_size}-byte dict after announcing {} bytes",
                source.size
            ))
        } else if piece >= source.asked || source.got.contains_key(&piece) {
            Outcome::More(Vec::new())
        } else if piece_span(source.size, piece).map(|s| s.len()) != Some(data.len()) {
            Outcome::GiveUp(format!("sent metadata piece {piece} of the wrong length"))
        } else {
            source.got.insert(piece, data.to_vec());
            if source.got.len() as u32 == source.pieces() {
                let got = std::mem::take(&mut source.got);
                Outcome::Complete(got.into_values().flatten().collect())
            } else {
                Outcome::More(source.more(now))
            }
        };
        match outcome {
            Outcome::More(pieces) => {
                if let Some(id) = conn.ext.ut_metadata {
                    self.send(link, |b| {
                        for p in pieces {
                            MetadataMsg::Request(p).encode(id, b);
                        }
                    });
                }
                Ok(())
            }
            Outcome::GiveUp(why) => {
                self.metadata_refused(link, conn, &why);
                Ok(())
            }
            Outcome::Complete(dict) => self.metadata_complete(now, link, conn, dict),
        }
    }

    /// The peer fetched from will not (or cannot) send the dict: ask
    /// another.
    fn metadata_refused(&mut self, link: LinkId, conn: &PeerConn, why: &str) {
        let Some(m) = conn.info_hash.and_then(|h| self.magnets.get_mut(&h)) else {
            return;
        };
        if m.source.as_ref().is_some_and(|s| s.link == link) {
            debug!("peer {}: {why}; asking another peer", conn.addr());
            m.source = None;
            m.tried.insert(conn.addr());
        }
    }

    /// Every piece came: the dict is checked against the info hash.
    fn metadata_complete(
        &mut self,
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        dict: Vec<u8>,
    ) -> Result<(), String> {
        let Some(hash) = conn.info_hash else {
            return Ok(());
        };
        let sha1: [u8; 20] = Sha1::digest(&dict).into();
        if sha1 != hash {
            if let Some(m) = self.magnets.get_mut(&hash) {
                m.source = None;
                m.banned.insert(conn.addr());
            }
            if let Some(b) = self.books.get_mut(&hash) {
                b.forget(&conn.addr());
            }
            warn!(
                "peer {} sent an info dict whose SHA1 is {}, not {}; banned from this download",
                conn.addr(),
                to_hex(&sha1),
                to_hex(&hash)
            );
            return Err("sent a wrong info dict".into());
        }
        let Some(m) = self.magnets.remove(&hash) else {
            return Ok(());
        };
        let info = match Info::from_bencoded(&dict) {
            Ok(info) => info,
            Err(e) => {
                let message = format!(
                    "the info dict of {} (from peer {}, its SHA1 matches) cannot be used: {e}",
                    to_hex(&hash),
                    conn.addr()
                );
                warn!("{message}");
                for c in m.controls {
                    self.control_fail(c, code::CORRUPT, message.clone());
                }
                for l in m.links.iter().filter(|&&l| l != link) {
                    self.drop_peer(*l, "its download failed");
                }
                return Err("its download failed".into());
            }
        };
        info!(
            "{}: got its info dict ({} bytes) from peer {}",
            info.name,
            dict.len(),
            conn.addr()
        );
        for c in &m.controls {
            self.start_download(now, *c, info.clone(), m.out_dir.clone(), m.only.clone());
        }
        if m.controls.is_empty() {
            // Its `get` went away: the download goes on, as any other.
            if let Err((_, why)) = self.open_download(now, info, m.out_dir.clone(), m.only.clone())
            {
                warn!("cannot start the download: {why}");
            }
        }
        for l in m.links.iter().filter(|&&l| l != link) {
            if let Some(mut other) = self.peers.remove(l) {
                let verdict = self.adopt(*l, &mut other);
                self.peers.insert(*l, other);
                if let Err(why) = verdict {
                    self.drop_peer(*l, &why);
                }
            }
        }
        self.adopt(link, conn)
    }

    /// Makes a magnet's session a peer of the download its dict opened.
    fn adopt(&mut self, link: LinkId, conn: &mut PeerConn) -> Result<(), String> {
        let hash = conn.info_hash.ok_or("no info hash")?;
        let port = self.config.listen_port;
        let Some(t) = self.torrents.get_mut(&hash) else {
            return Err("its download did not start".into());
        };
        if t.state() != super::torrent::State::Downloading {
            // Being checked (a resumed `.part`): dialed again after.
            return Err("file is being checked".into());
        }
        let bits = conn.ext.early.resolve(t.info.num_pieces())?;
        conn.theirs = Some(crate::bitfield::Bitfield::new(t.info.num_pieces()));
        t.peer_joined(link);
        if conn.peer_interested {
            t.peer_interest(link, true);
        }
        super::wire::replace_pieces(link, conn, t, bits)?;
        let info = t.info.clone();
        // A second handshake now offers what the dict allows (BEP 10).
        send_ext_handshake(&mut self.actions, link, port, Some(&info));
        Ok(())
    }

    /// A session of a magnet ended.
    pub(super) fn magnet_peer_left(&mut self, hash: &InfoHash, link: LinkId) {
        if let Some(m) = self.magnets.get_mut(hash) {
            m.links.remove(&link);
            if m.source.as_ref().is_some_and(|s| s.link == link) {
                m.source = None;
            }
        }
    }

    /// Timers of magnets: a silent source is given up on, another peer
    /// asked, more peers dialed; a fetch with no hope left fails.
    pub(super) fn magnets_tick(&mut self, now: Time) {
        let hashes: Vec<InfoHash> = self.magnets.keys().copied().collect();
        for hash in hashes {
            self.dial_known(now, &hash);
            let Some(m) = self.magnets.get_mut(&hash) else {
                continue;
            };
            if let Some(s) = m.source.as_ref().filter(|s| now >= s.deadline) {
                debug!("peer {} sent no metadata for {METADATA_TIMEOUT:?}", s.addr);
                m.tried.insert(s.addr);
                m.source = None;
            }
            let links: Vec<LinkId> = m.links.iter().copied().collect();
            for link in links {
                if let Some(conn) = self.peers.remove(&link) {
                    self.magnet_source(now, link, &conn);
                    self.peers.insert(link, conn);
                }
            }
            self.magnet_hope(now, &hash);
        }
    }

    /// Fails a magnet that has had no peer to ask for `MAGNET_PATIENCE`.
    fn magnet_hope(&mut self, now: Time, hash: &InfoHash) {
        // `dialing` also holds the peers connected to; `dials`, only the
        // connections not yet up.
        let dialing = self
            .dials
            .values()
            .any(|d| matches!(d, Dial::Peer(h, _) if h == hash));
        let Some(m) = self.magnets.get_mut(hash) else {
            return;
        };
        let askable = m.links.iter().any(|l| {
            self.peers
                .get(l)
                .is_some_and(|c| c.ext.ut_metadata.is_some() && !m.tried.contains(&c.addr()))
        });
        if m.source.is_some() || dialing || askable {
            m.hopeful = now;
            return;
        }
        if now.since(m.hopeful) < MAGNET_PATIENCE {
            return;
        }
        let Some(m) = self.magnets.remove(hash) else {
            return;
        };
        let message = format!(
            "no peer sent the info dict of {} in {} s: no tracker has it, and of the peers known (magnet x.pe, PEX{}) none that has it could be reached; give peers with the magnet's x.pe, or a tracker that has the file",
            to_hex(hash),
            MAGNET_PATIENCE.as_secs(),
            ", DHT"
        );
        warn!("{message}");
        for c in m.controls {
            self.control_fail(c, code::NOT_FOUND, message.clone());
        }
        for l in m.links {
            self.drop_peer(l, "its metadata fetch failed");
        }
        self.books.remove(hash);
    }
}
