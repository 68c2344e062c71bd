//! `sta-peerd`'s HTTP listener (`--http`): the status page at `/`
//! (`http::status_page`), `/metrics` rendered from the engine's counters,
//! the `/api/v1/` read views, and the write actions
//! (share, get, remove) handed to the engine as control requests once
//! their bearer token checks out. See spec/http.md.

use crate::control::{Code, ControlRequest};
use crate::engine::{ApiReply, Engine, LinkId, Metrics, Storage, Time};
use crate::http::auth::{self, Auth};
use crate::http::prometheus::{Exposition, Kind};
use crate::http::response::PROMETHEUS;
use crate::http::{Method, Request, Response, hash_under, method_not_allowed, not_found};
use serde::Deserialize;
use std::path::PathBuf;

/// Gauges the shell knows and the engine does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellGauges {
    /// Jobs handed to the hash pool and not yet finished.
    pub hash_queue: usize,
}

/// What [`respond`] came to.
#[derive(Debug)]
pub enum Answer {
    Now(Response),
    /// The engine answers later, with a control reply line on this link
    /// (then closed): turn it into the response with [`deferred_reply`].
    Later(LinkId),
}

/// Answers one request; `token` is the configured API token, if any.
pub fn respond<S: Storage>(
    engine: &mut Engine<S>,
    now: Time,
    req: &Request,
    token: Option<&str>,
    gauges: ShellGauges,
) -> Answer {
    if req.path == "/api/v1/catalog" {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Answer::Now(method_not_allowed("GET, HEAD"));
        }
        return match engine.api_deferred(now, ControlRequest::List) {
            Ok(link) => Answer::Later(link),
            Err(reply) => Answer::Now(catalog_reply(reply)),
        };
    }
    Answer::Now(respond_now(engine, now, req, token, gauges))
}

/// The response to `/api/v1/catalog` from the control reply line of
/// `list` (spec/control.md): the tracker's catalog, each entry marked
/// `local` when this daemon holds it.
pub fn deferred_reply(line: &[u8]) -> Response {
    catalog_reply(ApiReply::parse(&String::from_utf8_lossy(line)))
}

fn catalog_reply(reply: ApiReply) -> Response {
    match reply {
        ApiReply::Failed { code, message } => {
            Response::error(status_of(code), code.as_str(), &message)
        }
        ApiReply::Done(v) => {
            let empty = Vec::new();
            let entries = v.get("files").and_then(|f| f.as_array()).unwrap_or(&empty);
            let files: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let n = |k: &str| e.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
                    let pieces = match n("piece_length") {
                        0 => 0,
                        p => n("length").div_ceil(p),
                    };
                    serde_json::json!({
                        "info_hash": e.get("info_hash"),
                        "name": e.get("name"),
                        "length": n("length"),
                        "piece_length": n("piece_length"),
                        "pieces": pieces,
                        "files": e.get("file_count").and_then(|x| x.as_u64()).unwrap_or(1),
                        "peers": n("peers"),
                        "seeders": n("seeders"),
                        "local": e.get("local").and_then(|x| x.as_bool()).unwrap_or(false),
                    })
                })
                .collect();
            Response::json(
                200,
                &serde_json::json!({ "total": files.len(), "files": files }),
            )
        }
    }
}

fn respond_now<S: Storage>(
    engine: &mut Engine<S>,
    now: Time,
    req: &Request,
    token: Option<&str>,
    gauges: ShellGauges,
) -> Response {
    let path = req.path.as_str();
    let read = matches!(req.method, Method::Get | Method::Head);
    match path {
        "/" | "/metrics" | "/api/v1/status" if !read => method_not_allowed("GET, HEAD"),
        "/" => crate::http::status_page::response(),
        "/metrics" => Response::new(
            200,
            PROMETHEUS,
            render_metrics(&engine.metrics(now), gauges).into_bytes(),
        ),
        "/api/v1/status" => Response::json(200, &engine.api_status(now)),
        "/api/v1/share" | "/api/v1/get" | "/api/v1/remove" => {
            if req.method != Method::Post {
                return method_not_allowed("POST");
            }
            if let Some(refusal) = check_token(req, token) {
                return refusal;
            }
            action(engine, now, path, &req.body)
        }
        _ => match hash_under(path, "/api/v1/files/") {
            Some(_) if !read => method_not_allowed("GET, HEAD"),
            Some(Err(r)) => r,
            Some(Ok(hash)) => match engine.api_file(&hash) {
                Some(detail) => Response::json(200, &detail),
                None => Response::error(
                    404,
                    "not_found",
                    "this daemon neither shares nor fetches that file",
                ),
            },
            None => not_found(),
        },
    }
}

/// The refusal of a write request, or `None` when its token is right.
pub fn check_token(req: &Request, token: Option<&str>) -> Option<Response> {
    match auth::check(req.header("authorization"), token) {
        Auth::Granted => None,
        Auth::Refused => Some(
            Response::error(
                401,
                "unauthorized",
                "send Authorization: Bearer TOKEN with the API token",
            )
            .with_header("WWW-Authenticate", "Bearer realm=\"sta\""),
        ),
        Auth::NoToken => Some(Response::error(
            403,
            "forbidden",
            "no API token is configured: start the daemon with --api-token-file PATH \
             (or set STA_PEERD_API_TOKEN) to allow write requests",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetBody {
    target: String,
    out_dir: Option<PathBuf>,
    #[serde(default)]
    only: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    target: String,
    #[serde(default)]
    delete: bool,
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes)
        .map_err(|e| Response::error(400, "bad_request", &format!("request body: {e}")))
}

fn absolute(path: PathBuf, what: &str) -> Result<PathBuf, Response> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Response::error(
            400,
            "bad_request",
            &format!("{what} must be an absolute path"),
        ))
    }
}

fn action<S: Storage>(engine: &mut Engine<S>, now: Time, path: &str, bytes: &[u8]) -> Response {
    let parsed = match path {
        "/api/v1/share" => body::<ShareBody>(bytes)
            .and_then(|b| absolute(b.path, "path"))
            .map(|p| (ControlRequest::Share(p.clone()), serde_json::json!({"ok": true, "accepted": "share", "path": p}))),
        "/api/v1/get" => body::<GetBody>(bytes).and_then(|b| {
            let out_dir = b.out_dir.map(|d| absolute(d, "out_dir")).transpose()?;
            let echo = serde_json::json!({"ok": true, "accepted": "get", "target": b.target, "out_dir": out_dir});
            Ok((ControlRequest::Get { target: b.target, out_dir, only: b.only, peers: Vec::new() }, echo))
        }),
        _ => body::<RemoveBody>(bytes).map(|b| {
            (ControlRequest::Remove { target: b.target, delete: b.delete }, serde_json::Value::Null)
        }),
    };
    let (req, accepted) = match parsed {
        Ok(p) => p,
        Err(r) => return r,
    };
    match engine.api_request(now, req) {
        None => Response::json(202, &accepted),
        Some(ApiReply::Failed { code, message }) => {
            Response::error(status_of(code), code.as_str(), &message)
        }
        Some(ApiReply::Done(value)) => {
            let file = value.get("file");
            let field = |k: &str| file.and_then(|f| f.get(k)).cloned().unwrap_or_default();
            let answer = match path {
                "/api/v1/remove" => serde_json::json!({
                    "ok": true,
                    "removed": {"info_hash": field("info_hash"), "name": field("name"), "path": field("path")},
                }),
                _ => match file {
                    Some(_) => serde_json::json!({
                        "ok": true,
                        "file": {"info_hash": field("info_hash"), "name": field("name"), "path": field("path"), "state": field("state")},
                    }),
                    None => accepted,
                },
            };
            Response::json(200, &answer)
        }
    }
}

/// The HTTP status of a control error code.
pub fn status_of(code: Code) -> u16 {
    use crate::control::code;
    match code {
        code::NOT_FOUND => 404,
        code::BAD_REQUEST | code::BAD_NAME => 400,
        code::AMBIGUOUS | code::EXISTS => 409,
        code::TRACKER_UNREACHABLE => 503,
        _ => 500,
    }
}

/// The engine's counters in the Prometheus text format.
pub fn render_metrics(m: &Metrics, gauges: ShellGauges) -> String {
    let mut e = Exposition::new();
    e.family(
        "sta_peer_sessions",
        Kind::Gauge,
        "Open sessions by kind (peer wire, control socket and API actions in progress).",
    )
    .sample("sta_peer_sessions", &[("kind", "peer")], m.peer_sessions)
    .sample(
        "sta_peer_sessions",
        &[("kind", "control")],
        m.control_sessions,
    );
    e.single(
        "sta_peer_tracker_connected",
        Kind::Gauge,
        "1 while the tracker session is up.",
        u64::from(m.tracker_connected),
    );
    e.family("sta_peer_files", Kind::Gauge, "Files held, by state.");
    for (state, n) in &m.files {
        e.sample("sta_peer_files", &[("state", state)], *n);
    }
    e.single(
        "sta_peer_connected_peers",
        Kind::Gauge,
        "Peer sessions past the handshake.",
        m.connected_peers,
    );
    e.single(
        "sta_peer_uploaded_bytes_total",
        Kind::Counter,
        "Block bytes sent to peers.",
        m.uploaded,
    );
    e.single(
        "sta_peer_downloaded_bytes_total",
        Kind::Counter,
        "Block bytes received from peers (verified or not).",
        m.downloaded,
    );
    for (name, help, pick) in [
        (
            "sta_peer_file_uploaded_bytes_total",
            "Block bytes sent to peers, by file held.",
            true,
        ),
        (
            "sta_peer_file_downloaded_bytes_total",
            "Block bytes received from peers, by file held.",
            false,
        ),
    ] {
        e.family(name, Kind::Counter, help);
        for f in &m.by_file {
            let hash = crate::api::hex(&f.info_hash);
            let v = if pick { f.uploaded } else { f.downloaded };
            e.sample(name, &[("info_hash", &hash), ("name", &f.name)], v);
        }
    }
    e.single(
        "sta_peer_pieces_verified_total",
        Kind::Counter,
        "Downloaded pieces that matched their SHA1.",
        m.pieces_verified,
    );
    e.single(
        "sta_peer_pieces_failed_total",
        Kind::Counter,
        "Downloaded pieces that failed their SHA1 check.",
        m.pieces_failed,
    );
    e.single(
        "sta_peer_peers_banned_total",
        Kind::Counter,
        "Peers banned for sending corrupt data.",
        m.peers_banned,
    );
    e.single(
        "sta_peer_hash_queue_jobs",
        Kind::Gauge,
        "Jobs waiting for or running on the hash pool.",
        gauges.hash_queue,
    );
    e.family(
        "sta_peer_tracker_requests_total",
        Kind::Counter,
        "Requests sent to the tracker, by kind.",
    );
    for (kind, n) in &m.tracker_requests {
        e.sample("sta_peer_tracker_requests_total", &[("kind", kind)], *n);
    }
    e.family(
        "sta_peer_tracker_errors_total",
        Kind::Counter,
        "Error responses from the tracker, by error code (spec/tracker.md).",
    );
    for (code, n) in &m.tracker_errors {
        e.sample(
            "sta_peer_tracker_errors_total",
            &[("code", &code.to_string())],
            *n,
        );
    }
    e.single(
        "sta_peer_uptime_seconds",
        Kind::Gauge,
        "Seconds since the daemon started.",
        m.uptime_secs,
    );
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Config, MemStorage};

    fn engine() -> Engine<MemStorage> {
        let config = Config {
            trackers: vec!["10.0.0.1:6969".parse().unwrap()],
            listen_port: 6881,
            listen: "10.0.0.2:6881".parse().unwrap(),
            dir: "/dl".into(),
            piece_length: 32 * 1024,
            max_peers: 50,
            upload_slots: 2,
            private_shares: false,
        };
        Engine::new(
            config,
            MemStorage::default(),
            crate::rng::Rng::new(1),
            Time::ZERO,
        )
    }

    fn ask(e: &mut Engine<MemStorage>, raw: &str, token: Option<&str>) -> Response {
        let (req, _) = crate::http::parse(raw.as_bytes()).unwrap().unwrap();
        match respond(e, Time::ZERO, &req, token, ShellGauges { hash_queue: 3 }) {
            Answer::Now(r) => r,
            Answer::Later(link) => panic!("deferred on {link}"),
        }
    }

    #[test]
    fn routes_methods_and_tokens() {
        let mut e = engine();
        let r = ask(&mut e, "GET /metrics HTTP/1.1\r\n\r\n", None);
        assert_eq!((r.status, r.content_type), (200, PROMETHEUS));
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.contains("\nsta_peer_hash_queue_jobs 3\n"), "{text}");
        let r = ask(&mut e, "GET /api/v1/status HTTP/1.1\r\n\r\n", None);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["daemon"]["program"], "sta-peerd");
        assert_eq!(v["tracker"]["connected"], false);
        let statuses = [
            (
                "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                None,
                405,
            ),
            ("GET /api/v1/share HTTP/1.1\r\n\r\n", Some("t"), 405),
            ("GET /api/v1/files/zz HTTP/1.1\r\n\r\n", None, 400),
            (
                "GET /api/v1/files/0000000000000000000000000000000000000000 HTTP/1.1\r\n\r\n",
                None,
                404,
            ),
            ("GET /api/v2/status HTTP/1.1\r\n\r\n", None, 404),
            (
                "POST /api/v1/share HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
                None,
                403,
            ),
            (
                "POST /api/v1/share HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
                Some("t"),
                401,
            ),
            (
                "POST /api/v1/share HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 2\r\n\r\n{}",
                Some("t"),
                400,
            ),
            (
                "POST /api/v1/remove HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 16\r\n\r\n{\"target\":\"f.b\"}",
                Some("t"),
                404,
            ),
            (
                "POST /api/v1/get HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 16\r\n\r\n{\"target\":\"f.b\"}",
                Some("t"),
                503,
            ),
        ];
        for (raw, token, status) in statuses {
            let r = ask(&mut e, raw, token);
            assert_eq!(
                r.status,
                status,
                "{raw}: {}",
                String::from_utf8_lossy(&r.body)
            );
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert!(v["error"]["code"].is_string(), "{v}");
        }
    }

    #[test]
    fn the_catalog_comes_from_the_list_reply() {
        let line = br#"{"ok":true,"files":[{"name":"d","info_hash":"ab","length":100,"piece_length":32,"peers":2,"seeders":1,"file_count":3,"local":true}]}"#;
        let r = deferred_reply(line);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"total": 1, "files": [{"info_hash": "ab", "name": "d", "length": 100,
                "piece_length": 32, "pieces": 4, "files": 3, "peers": 2, "seeders": 1, "local": true}]})
        );
        let r = deferred_reply(
            br#"{"ok":false,"error":{"code":"tracker_unreachable","message":"down"}}"#,
        );
        assert_eq!(r.status, 503);
        let mut e = engine();
        let (req, _) = crate::http::parse(b"GET /api/v1/catalog HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        let answer = respond(&mut e, Time::ZERO, &req, None, ShellGauges::default());
        assert!(
            matches!(answer, Answer::Now(r) if r.status == 503),
            "no tracker session"
        );
    }

    #[test]
    fn file_names_are_escaped_in_labels() {
        let mut m = engine().metrics(Time::ZERO);
        m.by_file.push(crate::engine::stats::FileTraffic {
            info_hash: [0xab; 20],
            name: "a \"b\"\\\nc".into(),
            uploaded: 5,
            downloaded: 7,
        });
        let text = render_metrics(&m, ShellGauges::default());
        let label = format!(
            "{{info_hash=\"{}\",name=\"a \\\"b\\\"\\\\\\nc\"}}",
            "ab".repeat(20)
        );
        assert!(
            text.contains(&format!("sta_peer_file_uploaded_bytes_total{label} 5\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("sta_peer_file_downloaded_bytes_total{label} 7\n")),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("sta_peer_"), "{line}");
        }
    }
}
