//! BEP 9 `ut_metadata`: the info dict over the peer wire, both ways.
//!
//! Serving: any peer of a torrent we hold the dict of may ask for its
//! 16 KiB pieces; a private torrent's dict (BEP 27) is not offered, as
//! libtorrent does not either: it comes from its tracker or `.torrent`.
//!
//! Fetching, for a download that has only its info hash (a *magnet*, see
//! `magnet`): one peer at a time, which advertised `ut_metadata` and a
//! `metadata_size` of at most `MAX_METADATA_SIZE`, is asked for every
//! piece, so a dict whose SHA1 is not the info hash names its sender,
//! which is banned from this download and dropped; a peer that rejects,
//! disagrees with itself about the size or stays silent for
//! `METADATA_TIMEOUT` is not asked again, and the next peer is. Nothing is
//! allocated but the pieces that came. Once the dict checks, the download
//! starts as if a tracker had sent it, and the magnet's sessions become
//! the download's peers.

use super::action::LinkId;
use super::extended::send_ext_handshake;
use super::peer::PeerConn;
use super::storage::Storage;
use super::time::Time;
use super::{Engine, queue_send};
use crate::control::code;
use crate::limits::MAX_METADATA_SIZE;
use crate::meta::Info;
use crate::meta::info::to_hex;
use crate::wire::ut_metadata::{MetadataMsg, piece_count, piece_span};
use log::{debug, info, warn};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// A peer asked for metadata pieces that sends none for this long is
/// given up on, and the next peer asked.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// Metadata requests kept in flight to the peer fetched from (libtorrent
/// keeps 2; a few more hide the round trip on a large dict).
const METADATA_IN_FLIGHT: u32 = 4;

/// The peer the dict is being fetched from, and what it sent so far.
pub(super) struct Source {
    pub link: LinkId,
    pub addr: SocketAddr,
    size: u64,
    got: BTreeMap<u32, Vec<u8>>,
    /// Pieces asked for so far: 0..asked.
    asked: u32,
    pub deadline: Time,
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
}
