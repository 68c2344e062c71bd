//! The HTTP API's views of the engine (`crate::api`): what it holds,
//! each file's peers and pieces, where its bytes came from. Read-only,
//! built at the moment of the request from the engine's own state.

use super::Engine;
use super::storage::Storage;
use super::time::Time;
use super::torrent::Torrent;
use crate::api::{
    ApiError, DaemonInfo, FileDetail, FileSummary, PeerStatus, PeerSummary, Source, TrackerLink,
    Traffic, client_of, hex,
};
use crate::wire::peer::InfoHash;

impl<S: Storage> Engine<S> {
    /// `GET /api/v1/status`.
    pub fn api_status(&self, now: Time) -> PeerStatus {
        let mut files: Vec<FileSummary> = self.torrents.values().map(|t| self.summary(t)).collect();
        files.sort_by(|a, b| a.name.cmp(&b.name).then(a.info_hash.cmp(&b.info_hash)));
        let mut totals = Traffic::default();
        for f in &files {
            totals.bytes_uploaded += f.traffic.bytes_uploaded;
            totals.bytes_downloaded += f.traffic.bytes_downloaded;
            totals.rate_up += f.traffic.rate_up;
            totals.rate_down += f.traffic.rate_down;
        }
        totals.bytes_uploaded += self.stats.retired_uploaded;
        totals.bytes_downloaded += self.stats.retired_downloaded;
        let trackers: Vec<TrackerLink> = self
            .tracker_states()
            .into_iter()
            .map(|(addr, connected)| TrackerLink {
                addr: addr.to_string(),
                connected,
            })
            .collect();
        let main = self.main_tracker();
        PeerStatus {
            daemon: DaemonInfo {
                program: "sta-peerd",
                version: env!("CARGO_PKG_VERSION"),
                peer_id: hex(&self.peer_id),
                client: client_of(&self.peer_id),
                listen: self.config.listen.to_string(),
                uptime_seconds: now.as_secs_f64(),
            },
            tracker: TrackerLink {
                addr: main.0.to_string(),
                connected: main.1,
            },
            trackers,
            totals,
            files,
        }
    }

    /// `GET /api/v1/files/INFOHASH`, if this engine holds that file.
    pub fn api_file(&self, hash: &InfoHash) -> Option<FileDetail> {
        let t = self.torrents.get(hash)?;
        let pieces = t.info.num_pieces();
        let mut peers: Vec<PeerSummary> = t
            .peers()
            .iter()
            .filter_map(|&link| {
                let p = self.peers.get(&link)?;
                let (rate_up, rate_down) = self.link_rates(link);
                Some(PeerSummary {
                    addr: p.addr().to_string(),
                    remote: p.remote.to_string(),
                    incoming: p.dialed.is_none(),
                    peer_id: p.peer_id.map(|id| hex(&id)),
                    client: p.peer_id.as_ref().and_then(client_of),
                    pieces: p
                        .theirs
                        .as_ref()
                        .map_or_else(String::new, |b| hex(b.as_bytes())),
                    pieces_held: p.theirs.as_ref().map_or(0, |b| b.count()),
                    seed: p.is_seed(),
                    bytes_sent: p.uploaded,
                    bytes_received: p.downloaded,
                    rate_up,
                    rate_down,
                    am_choking: !t.choker.is_unchoked(link),
                    am_interested: p.am_interested,
                    peer_choking: p.peer_choking,
                    peer_interested: p.peer_interested,
                })
            })
            .collect();
        peers.sort_by(|a, b| a.addr.cmp(&b.addr));
        let mut sources: Vec<Source> = t
            .from_peers()
            .map(|(addr, bytes)| Source {
                addr: addr.to_string(),
                bytes,
            })
            .collect();
        sources.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.addr.cmp(&b.addr)));
        Some(FileDetail {
            file: self.summary(t),
            have_bitfield: hex(t.have().as_bytes()),
            availability: (0..pieces).map(|p| t.picker.availability(p)).collect(),
            peers,
            sources,
        })
    }

    fn summary(&self, t: &Torrent) -> FileSummary {
        let (state, error) = match t.failure() {
            Some((code, message)) => (
                "failed",
                Some(ApiError {
                    code: code.as_str().to_owned(),
                    message: message.clone(),
                }),
            ),
            None => (t.state().name(), None),
        };
        FileSummary {
            info_hash: hex(&t.info.info_hash),
            name: t.info.name.clone(),
            state,
            error,
            path: self.storage.path(t.file).display().to_string(),
            length: t.info.length,
            piece_length: t.info.piece_length,
            pieces: t.info.num_pieces(),
            have: t.have().count(),
            files: t.info.files().iter().filter(|f| !f.pad).count() as u32,
            peers: t.peers().len() as u32,
            traffic: Traffic {
                bytes_uploaded: t.uploaded(),
                bytes_downloaded: t.downloaded(),
                rate_up: self.upload_rate(&t.info.info_hash),
                rate_down: t.rate(),
            },
        }
    }
}
