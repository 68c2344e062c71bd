//! `sta-trackerd`'s monitoring listener (`--http`): `/metrics` from the
//! core's counters, the `/api/v1/` views of the catalog and swarms, and
//! the status page at `/` (`http::status_page`).
//! Read-only: the tracker has no write request. See spec/http.md.

use super::Tracker;
use super::catalog::FileEntry;
use super::stats::PROTOCOLS;
use crate::api::{self, CatalogEntry, Holder, Swarm, TrackerDaemon, TrackerStatus, client_of, hex};
use crate::bitfield::Bitfield;
use crate::http::prometheus::{Exposition, Kind};
use crate::http::response::PROMETHEUS;
use crate::http::{
    Exchange, Method, Request, Response, hash_under, method_not_allowed, not_found, query_param,
};
use crate::reactor::{Flow, OutQueue};
use std::net::SocketAddr;
use std::time::Instant;

/// Entries one `/api/v1/catalog` page holds at most (and by default).
pub const MAX_CATALOG_PAGE: usize = 1000;

/// The monitoring listener's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The reactor listener it accepts on.
    pub listener: usize,
    /// The API token (no request needs it yet).
    pub token: Option<String>,
    /// When the daemon started, for the uptime.
    pub started: Instant,
    /// The STA listener's address, for the status.
    pub listen: SocketAddr,
    /// The API listener is on loopback (Host names refused: see
    /// [`crate::http::Exchange::on_loopback`]).
    pub loopback: bool,
}

impl Tracker {
    /// One monitoring request: answer it and close.
    pub(super) fn api_http(
        &mut self,
        exchange: &mut Exchange,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        let step = exchange.input(input, |req| Some(self.api_respond(req)));
        if let Some(reply) = &step.reply {
            out.push(reply);
        }
        Flow {
            used: step.used,
            close: step.close,
        }
    }

    pub fn api_respond(&self, req: &Request) -> Response {
        if !matches!(req.method, Method::Get | Method::Head) {
            return match self.route(req) {
                Some(_) => method_not_allowed("GET, HEAD"),
                None => not_found(),
            };
        }
        self.route(req).unwrap_or_else(not_found)
    }

    fn route(&self, req: &Request) -> Option<Response> {
        Some(match req.path.as_str() {
            "/" => crate::http::status_page::response(),
            "/metrics" => Response::new(200, PROMETHEUS, self.render_metrics().into_bytes()),
            "/api/v1/status" => Response::json(200, &self.api_status()),
            "/api/v1/catalog" => match self.api_catalog(&req.query) {
                Ok(c) => Response::json(200, &c),
                Err(r) => r,
            },
            path => match hash_under(path, "/api/v1/swarms/")? {
                Err(r) => r,
                Ok(hash) => match self.api_swarm(&hash) {
                    Some(s) => Response::json(200, &s),
                    None => Response::error(404, "not_found", "no peer holds that file"),
                },
            },
        })
    }

    fn uptime(&self) -> f64 {
        self.api
            .as_ref()
            .map_or(0.0, |a| a.started.elapsed().as_secs_f64())
    }

    /// (peer, file) pairs in the catalog.
    fn entries(&self) -> usize {
        self.catalog().ordered().map(|e| e.holders.len()).sum()
    }

    pub fn api_status(&self) -> TrackerStatus {
        TrackerStatus {
            daemon: TrackerDaemon {
                program: "sta-trackerd",
                version: env!("CARGO_PKG_VERSION"),
                listen: self
                    .api
                    .as_ref()
                    .map_or_else(String::new, |a| a.listen.to_string()),
                uptime_seconds: self.uptime(),
            },
            sessions: self.sessions(),
            files: self.catalog().len(),
            entries: self.entries(),
            bittorrent_peers: self.swarms().peers(),
        }
    }

    /// A page of the catalog, by name: `?offset=N&limit=N`.
    pub fn api_catalog(&self, query: &str) -> Result<api::Catalog, Response> {
        let number = |name: &str, default: usize| match query_param(query, name) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                Response::error(
                    400,
                    "bad_request",
                    &format!("{name} must be a whole number"),
                )
            }),
        };
        let offset = number("offset", 0)?;
        let limit = number("limit", MAX_CATALOG_PAGE)?.min(MAX_CATALOG_PAGE);
        Ok(api::Catalog {
            total: self.catalog().len(),
            offset,
            files: self
                .catalog()
                .ordered()
                .skip(offset)
                .take(limit)
                .map(catalog_entry)
                .collect(),
        })
    }

    /// Who holds `hash`: STA sessions with their pieces, then BitTorrent
    /// peers; `None` when nobody does.
    pub fn api_swarm(&self, hash: &[u8; 20]) -> Option<Swarm> {
        let entry = self.catalog().get(hash);
        let bt = self.swarms().get(hash);
        if entry.is_none() && bt.is_none() {
            return None;
        }
        let mut holders = Vec::new();
        let mut availability = Vec::new();
        if let Some(e) = entry {
            let pieces = e.info.num_pieces();
            let full = Bitfield::full(pieces);
            availability = vec![0u32; pieces as usize];
            for (i, h) in e.holders.iter().enumerate() {
                let identity = self.catalog().conn_of(h).and_then(|c| self.identity(c));
                let (peer_id, addr) = match identity {
                    Some((id, addr)) => (Some(id), addr.to_string()),
                    None => (None, String::new()),
                };
                for (p, n) in availability.iter_mut().enumerate() {
                    *n += u32::from(e.has(i, p as u32));
                }
                holders.push(Holder {
                    kind: "sta",
                    addr,
                    peer_id: peer_id.map_or_else(String::new, |id| hex(&id)),
                    client: peer_id.as_ref().and_then(client_of),
                    pieces: hex(e.bits(i).unwrap_or(full.as_bytes())),
                    pieces_held: h.count(),
                    seeder: h.is_seeder(),
                });
            }
        }
        for p in bt.map_or(&[][..], |s| &s.peers[..]) {
            holders.push(Holder {
                kind: "bittorrent",
                addr: p.addr.to_string(),
                peer_id: hex(&p.peer_id),
                client: client_of(&p.peer_id),
                pieces: String::new(),
                pieces_held: 0,
                seeder: p.seeder,
            });
        }
        Some(Swarm {
            info_hash: hex(hash),
            file: entry.map(catalog_entry),
            holders,
            availability,
        })
    }

    /// The core's counters in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let mut e = Exposition::new();
        e.single(
            "sta_tracker_sessions",
            Kind::Gauge,
            "Open STA protocol sessions.",
            self.sessions(),
        );
        e.single(
            "sta_tracker_catalog_files",
            Kind::Gauge,
            "Files in the catalog.",
            self.catalog().len(),
        );
        e.single(
            "sta_tracker_catalog_entries",
            Kind::Gauge,
            "(peer, file) pairs in the catalog: sessions holding a file.",
            self.entries(),
        );
        e.single(
            "sta_tracker_bittorrent_peers",
            Kind::Gauge,
            "BitTorrent peers (UDP and HTTP announces) across all swarms.",
            self.swarms().peers(),
        );
        let s = &self.stats;
        e.family(
            "sta_tracker_requests_total",
            Kind::Counter,
            "Requests answered, by protocol (sta, udp, http) and kind.",
        );
        for (kind, n) in super::stats::STA_KINDS.iter().zip(&s.sta) {
            if *n > 0 {
                e.sample(
                    "sta_tracker_requests_total",
                    &[("protocol", "sta"), ("kind", kind)],
                    *n,
                );
            }
        }
        for ((protocol, kind), n) in &s.requests {
            e.sample(
                "sta_tracker_requests_total",
                &[("protocol", protocol), ("kind", kind)],
                *n,
            );
        }
        e.family("sta_tracker_errors_total", Kind::Counter, "Error answers, by protocol and code (STA error code, `failure`, `malformed` or HTTP status).");
        for ((protocol, code), n) in &s.errors {
            e.sample(
                "sta_tracker_errors_total",
                &[("protocol", protocol), ("code", code)],
                *n,
            );
        }
        e.histogram(
            "sta_tracker_request_duration_seconds",
            "Time to decode and answer one request, by protocol.",
            "protocol",
            PROTOCOLS.iter().copied().zip(&s.latency),
        );
        e.single(
            "sta_tracker_uptime_seconds",
            Kind::Gauge,
            "Seconds since the daemon started.",
            self.uptime(),
        );
        e.finish()
    }
}

fn catalog_entry(e: &FileEntry) -> CatalogEntry {
    CatalogEntry {
        info_hash: hex(&e.info.info_hash),
        name: e.info.name.clone(),
        length: e.info.length,
        piece_length: e.info.piece_length,
        pieces: e.info.num_pieces(),
        files: e.info.file_count() as u32,
        peers: e.holders.len() as u32,
        seeders: e.seeders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Info;
    use crate::rng::Rng;
    use crate::tracker::Config;
    use crate::wire::tracker::{Pieces, Request as StaRequest};

    /// A tracker where session 1 holds pieces 0 and 2 of a 3-piece file
    /// and session 2 all of it; one request is malformed.
    fn tracker() -> (Tracker, Info) {
        let mut t = Tracker::new(Config::default(), Rng::new(1));
        let info = Info::new("a \"b\"", 3 * 16384, 16384, vec![7; 60]).unwrap();
        for (conn, pieces) in [(1, Pieces::Bitfield(vec![0b1010_0000])), (2, Pieces::All)] {
            t.connect(conn, [10, 0, 0, conn as u8].into());
            let mut out = Vec::new();
            let hello = StaRequest::Hello {
                version: 1,
                peer_id: [conn as u8; 20],
                listen_port: 6000 + conn as u16,
            };
            t.handle(conn, hello, &mut out);
            let announce = StaRequest::Announce {
                info: info.bencoded.clone(),
                pieces,
            };
            t.handle(conn, announce, &mut out);
            t.stats.observe("sta", 0.000_03);
        }
        t.stats.sta_request(None);
        t.stats.error("sta", 6);
        (t, info)
    }

    fn ask(t: &Tracker, raw: &str) -> Response {
        let (req, _) = crate::http::parse(raw.as_bytes()).unwrap().unwrap();
        t.api_respond(&req)
    }

    #[test]
    fn catalog_swarm_and_routes() {
        let (t, info) = tracker();
        let c = t.api_catalog("").unwrap();
        assert_eq!((c.total, c.files.len()), (1, 1));
        assert_eq!((c.files[0].peers, c.files[0].seeders), (2, 1));
        assert!(t.api_catalog("offset=1").unwrap().files.is_empty());
        assert!(t.api_catalog("limit=-1").is_err());
        let s = t.api_swarm(&info.info_hash).unwrap();
        assert_eq!(s.availability, vec![2, 1, 2]);
        let by_addr: Vec<(&str, &str, bool)> = s
            .holders
            .iter()
            .map(|h| (h.addr.as_str(), h.pieces.as_str(), h.seeder))
            .collect();
        assert!(
            by_addr.contains(&("10.0.0.1:6001", "a0", false)),
            "{by_addr:?}"
        );
        assert!(
            by_addr.contains(&("10.0.0.2:6002", "e0", true)),
            "{by_addr:?}"
        );
        assert!(t.api_swarm(&[0; 20]).is_none());
        let status = t.api_status();
        assert_eq!((status.sessions, status.files, status.entries), (2, 1, 2));

        assert_eq!(
            ask(&t, "GET /api/v1/catalog?limit=5 HTTP/1.1\r\n\r\n").status,
            200
        );
        assert_eq!(
            ask(&t, "GET /api/v1/swarms/00 HTTP/1.1\r\n\r\n").status,
            400
        );
        assert_eq!(
            ask(&t, "DELETE /api/v1/status HTTP/1.1\r\n\r\n").status,
            405
        );
        assert_eq!(ask(&t, "DELETE /nope HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(ask(&t, "GET /api/v1/files/x HTTP/1.1\r\n\r\n").status, 404);
    }

    #[test]
    fn metrics_render_the_core_counters() {
        let (t, _) = tracker();
        let text = t.render_metrics();
        for line in [
            "sta_tracker_sessions 2",
            "sta_tracker_catalog_files 1",
            "sta_tracker_catalog_entries 2",
            "sta_tracker_requests_total{protocol=\"sta\",kind=\"hello\"} 2",
            "sta_tracker_requests_total{protocol=\"sta\",kind=\"announce\"} 2",
            "sta_tracker_requests_total{protocol=\"sta\",kind=\"malformed\"} 1",
            "sta_tracker_errors_total{protocol=\"sta\",code=\"6\"} 1",
            "sta_tracker_request_duration_seconds_bucket{protocol=\"sta\",le=\"0.000025\"} 0",
            "sta_tracker_request_duration_seconds_bucket{protocol=\"sta\",le=\"0.00005\"} 2",
            "sta_tracker_request_duration_seconds_count{protocol=\"sta\"} 2",
            "sta_tracker_request_duration_seconds_count{protocol=\"udp\"} 0",
            "# TYPE sta_tracker_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
