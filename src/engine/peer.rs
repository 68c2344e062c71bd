//! The state of one peer-wire connection, as BEP 3 defines it: who is
//! interested and which pieces the remote has. Whether we choke it belongs
//! to the torrent's [`super::choker::Choker`], which blocks we asked it for
//! to its [`super::picker::Picker`].

use super::time::Time;
use crate::bitfield::Bitfield;
use crate::wire::peer::{InfoHash, PeerId};
use std::net::SocketAddr;

pub struct PeerConn {
    /// The remote socket address.
    pub remote: SocketAddr,
    /// The address we dialed (the peer's listen address), if we dialed.
    pub dialed: Option<SocketAddr>,
    /// Where a peer that dialed in listens, once learned from the tracker
    /// or its extension handshake (BEP 10 `p`).
    pub listen: Option<SocketAddr>,
    /// Its client, from its extension handshake (BEP 10 `v`).
    pub client: Option<String>,
    pub info_hash: Option<InfoHash>,
    pub peer_id: Option<PeerId>,
    pub handshaken: bool,
    pub fast: bool,
    pub theirs: Option<Bitfield>,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    pub downloaded: u64,
    /// `downloaded` at the last choke round: what it sent us since is
    /// its tit-for-tat score.
    pub downloaded_at_round: u64,
    pub uploaded: u64,
    /// When a block last arrived, or when requests were last sent to an
    /// idle peer: requests outstanding far longer mean a stalled peer.
    pub last_progress: Time,
    /// When the session began.
    pub met: Time,
    /// Whether the remote has pieces we need, as last computed, with what
    /// it was computed from: (picker epoch, pieces we have, pieces it has).
    /// Pieces only get added, so equal counts mean equal sets.
    pub interest: Option<((u64, u32, u32), bool)>,
    /// What its BEP 10 extended messages said and what we told it.
    pub ext: super::extended::PeerExt,
    /// Its requests waiting for an answer, and what of ours left the host.
    pub upload: super::upload::Upload,
    /// How many blocks we keep requested from it.
    pub pipeline: super::pipeline::Pipeline,
    /// Pieces it rejected lately, asked elsewhere for a while.
    pub refused: super::refused::Refused,
}

impl PeerConn {
    pub fn new(remote: SocketAddr, dialed: Option<SocketAddr>, now: Time) -> PeerConn {
        PeerConn {
            remote,
            dialed,
            listen: None,
            client: None,
            info_hash: None,
            peer_id: None,
            handshaken: false,
            fast: false,
            theirs: None,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            downloaded: 0,
            downloaded_at_round: 0,
            uploaded: 0,
            last_progress: now,
            met: now,
            interest: None,
            ext: Default::default(),
            upload: Default::default(),
            pipeline: Default::default(),
            refused: Default::default(),
        }
    }

    /// The address that identifies this peer for strikes and statistics:
    /// where it listens, when known (we dialed it, or the tracker told us
    /// where a peer of its id and address listens), else its remote
    /// address (for a peer that dialed in, a port that changes with each
    /// connection).
    pub fn addr(&self) -> SocketAddr {
        self.dialed.or(self.listen).unwrap_or(self.remote)
    }

    /// The remote said it holds every piece.
    pub fn is_seed(&self) -> bool {
        self.theirs.as_ref().is_some_and(Bitfield::is_complete)
    }
}
