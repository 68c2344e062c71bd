//! Downloads that have only their info hash so far (a magnet link, or a
//! `get` of an info hash that no tracker has the metadata of, or with no
//! tracker at all). Their sessions, with the peers we know of (`x.pe`,
//! PEX, DHT, see `book`), carry only handshakes and extended messages
//! until the info dict has come over `ut_metadata` (see `metadata`); the
//! peers' piece sets are kept meanwhile. A magnet with no peer left to
//! ask, dial or wait for fails after `MAGNET_PATIENCE`.

use super::action::LinkId;
use super::book::PeerSource;
use super::extended::send_ext_handshake;
use super::metadata::{METADATA_TIMEOUT, Source};
use super::peer::PeerConn;
use super::storage::Storage;
use super::time::Time;
use super::{Dial, Engine};
use crate::control::{Code, code};
use crate::meta::info::to_hex;
use crate::wire::peer::{Handshake, InfoHash, Message};
use log::{debug, info, warn};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A fetch with no peer left to ask, none being dialed and none known
/// to dial, fails after this long (DHT or PEX may still bring one).
pub const MAGNET_PATIENCE: Duration = Duration::from_secs(60);

/// A download that has only its info hash so far.
pub(super) struct Magnet {
    pub out_dir: PathBuf,
    pub only: Vec<String>,
    /// The `get` sessions waiting for it.
    pub controls: Vec<LinkId>,
    /// Handshaken sessions for this info hash.
    pub links: BTreeSet<LinkId>,
    /// The peer the dict is being fetched from.
    pub source: Option<Source>,
    /// Peers given up on: rejected, timed out, claimed too much.
    pub tried: BTreeSet<SocketAddr>,
    /// Peers that sent a wrong dict.
    pub banned: BTreeSet<SocketAddr>,
    /// Last time the fetch had a peer to ask, dial or wait for.
    hopeful: Time,
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
        !given.is_empty() || self.books.get(hash).is_some_and(|b| !b.is_empty()) || self.dht_on()
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
        let targets = self.new_dials(hash, &m.links, |a| m.banned.contains(a), addrs);
        self.dial_all(hash, targets);
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
        let message = format!(
            "no peer sent the info dict of {} in {} s: no tracker has it, and of the peers known (magnet x.pe, PEX, DHT) none that has it could be reached; give peers with the magnet's x.pe, or a tracker that has the file",
            to_hex(hash),
            MAGNET_PATIENCE.as_secs(),
        );
        warn!("{message}");
        self.end_magnet(hash, code::NOT_FOUND, message);
    }

    /// Ends the fetch of `hash`'s info dict: its `get`s fail with `code`
    /// and `message`, its sessions close. Returns what it was, if it was.
    pub(super) fn end_magnet(
        &mut self,
        hash: &InfoHash,
        code: Code,
        message: String,
    ) -> Option<crate::control::MetadataFetch> {
        let m = self.magnets.remove(hash)?;
        let was = crate::control::MetadataFetch {
            info_hash: *hash,
            peers: m.links.len() as u32,
            known: self.books.get(hash).map_or(0, |b| b.len() as u32),
        };
        for c in m.controls {
            self.control_fail(c, code, message.clone());
        }
        for l in m.links {
            self.drop_peer(l, "its metadata fetch ended");
        }
        self.books.remove(hash);
        Some(was)
    }
}
