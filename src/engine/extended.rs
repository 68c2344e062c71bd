//! BEP 10 extended messages on a peer session: the extension handshake
//! (what a peer offers and where it listens) and the dispatch of the
//! messages STA offers, `ut_metadata` (see `metadata`) and `ut_pex` (see
//! `pex`). None of them is needed for the session itself: a malformed one
//! goes unread, and the session goes on.

use super::action::LinkId;
use super::peer::PeerConn;
use super::storage::Storage;
use super::time::Time;
use super::{Engine, queue_send};
use crate::bitfield::Bitfield;
use crate::meta::Info;
use crate::wire::extension::{ExtHandshake, HANDSHAKE, OUR_UT_METADATA, OUR_UT_PEX, Offer};
use crate::wire::ut_metadata::MetadataMsg;
use log::debug;
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;

/// What our extension handshake calls us (BEP 10 `v`).
pub const CLIENT_NAME: &str = concat!("STA ", env!("CARGO_PKG_VERSION"));

/// Most `have`s remembered from a peer while its torrent's info dict is
/// still fetched (more than that many pieces: the bitfield says it).
const MAX_EARLY_HAVES: usize = 4096;

/// What a session learned from and did with extended messages.
#[derive(Debug, Default)]
pub struct PeerExt {
    /// The ids its `m` gave `ut_metadata` and `ut_pex`.
    pub ut_metadata: Option<u8>,
    pub ut_pex: Option<u8>,
    /// Its `metadata_size`.
    pub metadata_size: Option<u64>,
    /// PEX: the listen addresses it was told of, and when it may be told
    /// again (see `pex`).
    pub pex_told: BTreeSet<SocketAddr>,
    pub pex_next: Option<Time>,
    /// When it last sent us a PEX message we read.
    pub pex_heard: Option<Time>,
    /// Its piece set, while the torrent's info dict (and so its piece
    /// count) is still fetched from peers.
    pub early: EarlyPieces,
}

/// A piece set announced before the piece count is known.
#[derive(Debug, Default)]
pub struct EarlyPieces {
    bitfield: Option<Vec<u8>>,
    all: bool,
    haves: BTreeSet<u32>,
}

impl EarlyPieces {
    pub fn bitfield(&mut self, bytes: &[u8]) {
        self.bitfield = Some(bytes.to_vec());
    }

    pub fn have_all(&mut self) {
        self.all = true;
    }

    pub fn have(&mut self, piece: u32) {
        if self.haves.len() < MAX_EARLY_HAVES {
            self.haves.insert(piece);
        }
    }

    /// The piece set once the count is known, or why it is wrong.
    pub fn resolve(&self, pieces: u32) -> Result<Bitfield, String> {
        let mut bits = match (&self.bitfield, self.all) {
            (_, true) => Bitfield::full(pieces),
            (Some(b), false) => Bitfield::from_bytes(b, pieces).map_err(|e| e.to_string())?,
            (None, false) => Bitfield::new(pieces),
        };
        for &p in &self.haves {
            if p >= pieces {
                return Err(format!("have for piece {p} out of range"));
            }
            bits.set(p);
        }
        Ok(bits)
    }
}

/// Our extension handshake for a session of a torrent whose dict is
/// `info` (`None`: still being fetched).
pub fn send_ext_handshake(
    actions: &mut VecDeque<super::Action>,
    link: LinkId,
    port: u16,
    info: Option<&Info>,
) {
    let offer = Offer {
        port,
        client: CLIENT_NAME,
        pex: info.is_some_and(|i| !i.private()),
        metadata_size: info
            .filter(|i| !i.private())
            .map(|i| i.bencoded.len() as u64),
    };
    queue_send(actions, link, |b| ExtHandshake::encode(&offer, b));
}

impl<S: Storage> Engine<S> {
    /// A peer's extended message (`payload`: its extended id, then body).
    pub(super) fn on_extended(
        &mut self,
        now: Time,
        link: LinkId,
        conn: &mut PeerConn,
        payload: &[u8],
    ) -> Result<(), String> {
        let Some((&id, body)) = payload.split_first() else {
            return Ok(());
        };
        match id {
            HANDSHAKE => match ExtHandshake::decode(payload) {
                Ok(Some(hs)) => self.on_ext_handshake(now, link, conn, hs),
                Ok(None) => {}
                Err(e) => debug!("peer {}: {e}; ignored", conn.addr()),
            },
            OUR_UT_METADATA => match MetadataMsg::decode(body) {
                Ok(msg) => return self.on_metadata(now, link, conn, msg),
                Err(e) => debug!("peer {}: {e}; ignored", conn.addr()),
            },
            OUR_UT_PEX => self.on_pex(now, conn, body),
            _ => {}
        }
        Ok(())
    }

    /// Its handshake tells where a peer that dialed us listens, and which
    /// extended messages it reads.
    fn on_ext_handshake(&mut self, now: Time, link: LinkId, conn: &mut PeerConn, hs: ExtHandshake) {
        if conn.dialed.is_none()
            && let Some(port) = hs.port
        {
            conn.listen = Some(SocketAddr::new(conn.remote.ip(), port));
        }
        conn.client = hs.client;
        conn.ext.ut_metadata = hs.ut_metadata;
        conn.ext.ut_pex = hs.ut_pex;
        conn.ext.metadata_size = hs.metadata_size;
        if let Some(reqq) = hs.reqq {
            conn.pipeline.set_reqq(reqq as usize);
        }
        if conn.ext.ut_pex.is_some() && conn.ext.pex_next.is_none() {
            conn.ext.pex_next = Some(now + super::pex::PEX_FIRST);
        }
        self.magnet_source(now, link, conn);
    }
}
