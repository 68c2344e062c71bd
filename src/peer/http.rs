//! `sta-peerd`'s HTTP listener (`--http`): `/metrics` rendered from the
//! engine's counters, the `/api/v1/` read views, and the write actions
//! (share, get, remove) handed to the engine as control requests once
//! their bearer token checks out. See spec/http.md.

use crate::control::{Code, ControlRequest};
use crate::engine::{ApiReply, Engine, Metrics, Storage, Time};
use crate::http::auth::{self, Auth};
use crate::http::prometheus::{Exposition, Kind};
use crate::http::response::PROMETHEUS;
use crate::http::{Method, Request, Response};
use crate::meta::info::from_hex;
use serde::Deserialize;
use std::path::PathBuf;

/// Gauges the shell knows and the engine does not.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellGauges {
    /// Jobs handed to the hash pool and not yet finished.
    pub hash_queue: usize,
}

/// Answers one request; `token` is the configured API token, if any.
pub fn respond<S: Storage>(
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
        _ => match path.strip_prefix("/api/v1/files/") {
            Some(_) if !read => method_not_allowed("GET, HEAD"),
            Some(hex) => match from_hex(hex) {
                None => Response::error(
                    400,
                    "bad_request",
                    "expected /api/v1/files/ and 40 hex digits",
                ),
                Some(hash) => match engine.api_file(&hash) {
                    Some(detail) => Response::json(200, &detail),
                    None => Response::error(
                        404,
                        "not_found",
                        "this daemon neither shares nor fetches that file",
                    ),
                },
            },
            None => not_found(),
        },
    }
}

pub fn not_found() -> Response {
    Response::error(404, "not_found", "no such path; see spec/http.md")
}

pub fn method_not_allowed(allow: &'static str) -> Response {
    Response::error(405, "method_not_allowed", &format!("use {allow}")).with_header("Allow", allow)
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
            Ok((ControlRequest::Get { target: b.target, out_dir, only: b.only }, echo))
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
