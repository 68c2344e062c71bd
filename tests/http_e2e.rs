//! The daemons' HTTP listeners (`--http`) end to end: a real sta-trackerd
//! and two sta-peerd on loopback, a file shared by one and fetched by the
//! other through `POST /api/v1/get`, then `/metrics` (Prometheus text,
//! names by convention, counters that grow), `/api/v1/status`,
//! `/api/v1/files/HASH`, the tracker's catalog and swarm, tokens (401,
//! 403) and the codec's refusals over a real socket.

mod common;

use common::{Daemon, Peerd, STARTUP_TIMEOUT, TempDir, wait_for, write_random_file};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// One HTTP exchange: status, headers (names in lower case), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `code` of an API error body.
    fn error_code(&self) -> String {
        let v = self.json();
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {v}"))
            .to_owned()
    }
}

/// Sends `raw` and reads the whole answer (the server closes after it).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let reply = exchange_head(addr, raw);
    let length: usize = reply.header("content-length").unwrap().parse().unwrap();
    assert_eq!(
        length,
        reply.body.len(),
        "Content-Length of {}",
        reply.status
    );
    reply
}

/// Like [`exchange`], for a HEAD request: the body is left out.
fn exchange_head(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw).unwrap();
    // Read until the head and Content-Length bytes of body are in (the
    // server drains what a refused client still sends, so it may not
    // close first), or until it closes.
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let head_only = raw.starts_with(b"HEAD ");
            if let Some(n) = length
                && (head_only || bytes.len() >= end + 4 + n)
            {
                break;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read from {addr}: {e}"),
        }
    }
    let text = String::from_utf8(bytes).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> Reply {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, raw.as_bytes())
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let r = get(addr, path);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

/// A scrape of `/metrics`: each sample by its name and labels as written,
/// checked against the text format and STA's naming conventions.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series}; have {:?}", self.samples.keys()))
    }

    fn opt(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }
}

fn scrape(addr: SocketAddr, prefix: &str) -> Scrape {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut helps = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in r.body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "{line}");
            assert!(helps.insert(name.to_owned()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helps.contains(name), "TYPE before HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(name.starts_with(prefix), "{name} lacks the prefix {prefix}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            match kind {
                "counter" => assert!(name.ends_with("_total"), "counter {name}"),
                _ => assert!(!name.ends_with("_total"), "{kind} {name}"),
            }
            for unit in ["_ms", "_milliseconds", "_kb", "_kib", "_mb", "_bits"] {
                assert!(!name.contains(unit), "{name}: base units only");
            }
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "{line}");
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "twice: {line}"
        );
    }
    Scrape { samples, types }
}

/// The address after `prefix` in the next stdout lines of `daemon`.
fn address_line(daemon: &mut Daemon, prefix: &str) -> SocketAddr {
    loop {
        let line = daemon
            .next_stdout_line(STARTUP_TIMEOUT)
            .unwrap_or_else(|| panic!("no `{prefix}` line; stderr:\n{}", daemon.log()));
        if let Some(addr) = line.strip_prefix(prefix) {
            return addr.trim().parse().expect("an address");
        }
    }
}

fn peerd(tracker: SocketAddr, dir: &Path, shares: &[&Path], extra: &[&str]) -> (Peerd, SocketAddr) {
    let mut p = common::spawn_peerd_with(tracker, dir, shares, extra);
    let http = address_line(&mut p.daemon, "http listening on ");
    (p, http)
}

#[test]
fn monitoring_and_api_end_to_end() {
    let tmp = TempDir::new("http");
    let (a_dir, b_dir) = (tmp.subdir("a"), tmp.subdir("b"));
    let source = a_dir.join("data.bin");
    let length: u64 = 3 * 1024 * 1024 + 1234;
    write_random_file(&source, length, 16);
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "a-token\nsecond line ignored\n").unwrap();
    let token_arg = token_file.to_str().unwrap();

    let mut tracker = common::tracker(&["--http", "127.0.0.1:0"]);
    let tracker_http = address_line(&mut tracker, "api listening on ");
    let before = scrape(tracker_http, "sta_tracker_");

    // A: a bare port means 127.0.0.1:PORT.
    let port = sta_kit::net::free_tcp_port().unwrap().to_string();
    let (a, a_http) = peerd(
        tracker.addr,
        &a_dir,
        &[&source],
        &[
            "--http",
            &port,
            "--api-token-file",
            token_arg,
            "--piece-size",
            "262144",
        ],
    );
    assert_eq!(a_http.to_string(), format!("127.0.0.1:{port}"));
    let (b, b_http) = peerd(
        tracker.addr,
        &b_dir,
        &[],
        &["--http", "127.0.0.1:0", "--api-token-file", token_arg],
    );

    // A's status: the file it shares, seeding.
    let status = wait_for("A to seed", TIMEOUT, || {
        let s = get_json(a_http, "/api/v1/status");
        (s["files"][0]["state"] == "seeding").then_some(s)
    });
    assert_eq!(status["daemon"]["program"], "sta-peerd");
    assert_eq!(status["daemon"]["listen"], a.listen.to_string());
    assert_eq!(status["tracker"]["connected"], true);
    let file = &status["files"][0];
    assert_eq!(file["name"], "data.bin");
    assert_eq!(file["length"], length);
    let pieces = length.div_ceil(262_144);
    assert_eq!(file["pieces"], pieces);
    assert_eq!(file["have"], pieces);
    let hash = file["info_hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 40);

    // Write requests: no token, a wrong one, a wrong method, a bad body.
    let get_body = r#"{"target":"data.bin"}"#;
    let r = post(b_http, "/api/v1/get", None, get_body);
    assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"));
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = post(b_http, "/api/v1/get", Some("a-tokeN"), get_body);
    assert_eq!(r.status, 401);
    let r = get(b_http, "/api/v1/get");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (405, "method_not_allowed")
    );
    assert_eq!(r.header("allow"), Some("POST"));
    let r = post(b_http, "/api/v1/get", Some("a-token"), r#"{"tar":"x"}"#);
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_request"));
    let r = post(
        b_http,
        "/api/v1/share",
        Some("a-token"),
        r#"{"path":"rel/x"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        get_json(b_http, "/api/v1/status")["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // With the token: accepted, and the download runs.
    let r = post(b_http, "/api/v1/get", Some("a-token"), get_body);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["ok"], true);
    wait_for("B to finish", TIMEOUT, || {
        let s = get_json(b_http, "/api/v1/status");
        (s["files"][0]["state"] == "seeding").then_some(())
    });
    common::assert_same_file(&source, &b_dir.join("data.bin"));

    // B's view of the file: every piece, A as its peer and its source.
    let d = get_json(b_http, &format!("/api/v1/files/{hash}"));
    assert_eq!(d["file"]["have"], pieces);
    assert_eq!(d["file"]["bytes_downloaded"], length);
    let full = sta::bitfield::Bitfield::full(pieces as u32);
    assert_eq!(d["have_bitfield"], sta::api::hex(full.as_bytes()));
    assert_eq!(d["availability"].as_array().unwrap().len() as u64, pieces);
    assert!(d["availability"].as_array().unwrap().iter().all(|n| n == 1));
    let peers = d["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "{d}");
    let pa = &peers[0];
    assert_eq!(pa["addr"], a.listen.to_string());
    assert_eq!(pa["seed"], true);
    assert_eq!(pa["pieces"], sta::api::hex(full.as_bytes()));
    assert_eq!(pa["bytes_received"], length);
    assert!(pa["client"].as_str().unwrap().starts_with("-ST"), "{pa}");
    for flag in [
        "am_choking",
        "am_interested",
        "peer_choking",
        "peer_interested",
    ] {
        assert!(pa[flag].is_boolean(), "{flag} in {pa}");
    }
    assert_eq!(
        d["sources"],
        serde_json::json!([{"addr": a.listen.to_string(), "bytes": length}])
    );
    let r = get(b_http, &format!("/api/v1/files/{}", "0".repeat(40)));
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = get(b_http, "/api/v1/files/xyz");
    assert_eq!(r.status, 400);

    // Metrics of both peers.
    let mb = scrape(b_http, "sta_peer_");
    assert_eq!(mb.value("sta_peer_pieces_verified_total"), pieces as f64);
    assert_eq!(mb.value("sta_peer_pieces_failed_total"), 0.0);
    assert_eq!(mb.value("sta_peer_peers_banned_total"), 0.0);
    assert_eq!(mb.value("sta_peer_downloaded_bytes_total"), length as f64);
    let by_file =
        format!("sta_peer_file_downloaded_bytes_total{{info_hash=\"{hash}\",name=\"data.bin\"}}");
    assert_eq!(mb.value(&by_file), length as f64);
    assert_eq!(mb.value("sta_peer_files{state=\"seeding\"}"), 1.0);
    assert_eq!(mb.value("sta_peer_connected_peers"), 1.0);
    assert_eq!(mb.value("sta_peer_tracker_connected"), 1.0);
    assert!(mb.value("sta_peer_tracker_requests_total{kind=\"have\"}") >= pieces as f64);
    assert_eq!(
        mb.value("sta_peer_tracker_requests_total{kind=\"get_meta\"}"),
        1.0
    );
    assert!(mb.opt("sta_peer_hash_queue_jobs").is_some());
    assert_eq!(mb.types["sta_peer_uploaded_bytes_total"], "counter");
    let ma = wait_for("A's upload to be counted", TIMEOUT, || {
        let m = scrape(a_http, "sta_peer_");
        (m.value("sta_peer_uploaded_bytes_total") >= length as f64).then_some(m)
    });
    assert_eq!(ma.value("sta_peer_downloaded_bytes_total"), 0.0);

    // The tracker: both peers hold the file, and its counters grew.
    let catalog = wait_for("two seeders in the catalog", TIMEOUT, || {
        let c = get_json(tracker_http, "/api/v1/catalog");
        (c["files"][0]["seeders"] == 2).then_some(c)
    });
    assert_eq!(catalog["total"], 1);
    let entry = &catalog["files"][0];
    assert_eq!(entry["info_hash"], hash.as_str());
    assert_eq!(entry["name"], "data.bin");
    assert_eq!(entry["length"], length);
    assert_eq!(entry["peers"], 2);
    assert_eq!(entry["files"], 1);
    // The same catalog through B, which asks the tracker.
    let through_b = get_json(b_http, "/api/v1/catalog");
    let e = &through_b["files"][0];
    assert_eq!(
        (e["info_hash"].as_str(), e["local"].as_bool()),
        (Some(hash.as_str()), Some(true))
    );
    assert_eq!(
        (e["peers"].as_u64(), e["pieces"].as_u64()),
        (Some(2), Some(pieces))
    );
    assert_eq!(through_b["total"], 1);
    let swarm = get_json(tracker_http, &format!("/api/v1/swarms/{hash}"));
    let addrs: BTreeSet<&str> = swarm["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["seeder"], true, "{h}");
            assert_eq!(h["pieces"], sta::api::hex(full.as_bytes()));
            assert_eq!(h["peer_id"].as_str().unwrap().len(), 40);
            h["addr"].as_str().unwrap()
        })
        .collect();
    let (la, lb) = (a.listen.to_string(), b.listen.to_string());
    assert_eq!(addrs, BTreeSet::from([la.as_str(), lb.as_str()]));
    let r = get(tracker_http, &format!("/api/v1/swarms/{}", "1".repeat(40)));
    assert_eq!(r.status, 404);
    let status = get_json(tracker_http, "/api/v1/status");
    assert_eq!(
        (status["sessions"].as_u64(), status["entries"].as_u64()),
        (Some(2), Some(2))
    );

    let after = scrape(tracker_http, "sta_tracker_");
    assert_eq!(after.value("sta_tracker_sessions"), 2.0);
    assert_eq!(after.value("sta_tracker_catalog_files"), 1.0);
    assert_eq!(after.value("sta_tracker_catalog_entries"), 2.0);
    let have = "sta_tracker_requests_total{protocol=\"sta\",kind=\"have\"}";
    assert!(after.value(have) >= pieces as f64);
    assert!(before.opt(have).is_none());
    let count = "sta_tracker_request_duration_seconds_count{protocol=\"sta\"}";
    assert!(after.value(count) > before.value(count));
    assert_eq!(
        after.value("sta_tracker_request_duration_seconds_bucket{protocol=\"sta\",le=\"+Inf\"}"),
        after.value(count)
    );
    assert_eq!(
        after.types["sta_tracker_request_duration_seconds"],
        "histogram"
    );
    for (series, value) in &before.samples {
        if after
            .types
            .get(series.split('{').next().unwrap())
            .is_some_and(|t| t == "counter")
        {
            assert!(after.value(series) >= *value, "{series} went down");
        }
    }

    // Remove through the API: the file leaves B's status.
    let r = post(
        b_http,
        "/api/v1/remove",
        Some("a-token"),
        &format!(r#"{{"target":"{hash}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["removed"]["info_hash"], hash.as_str());
    assert!(
        get_json(b_http, "/api/v1/status")["files"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = post(
        b_http,
        "/api/v1/remove",
        Some("a-token"),
        &format!(r#"{{"target":"{hash}"}}"#),
    );
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    // Bytes already counted stay counted.
    let mb2 = scrape(b_http, "sta_peer_");
    assert_eq!(mb2.value("sta_peer_downloaded_bytes_total"), length as f64);
    assert!(mb2.opt(&by_file).is_none());
    drop((a, b, tracker));
}

/// Unknown paths, wrong methods, and what the codec refuses, over real
/// sockets; a daemon with no token refuses every write with 403, and one
/// given its token in the environment takes it.
#[test]
fn refusals_and_tokens() {
    let mut tracker = common::tracker(&["--http", "127.0.0.1:0"]);
    let tracker_http = address_line(&mut tracker, "api listening on ");
    let tmp = TempDir::new("http-refusals");
    let (p, http) = peerd(tracker.addr, tmp.path(), &[], &["--http", "127.0.0.1:0"]);

    let r = get(http, "/nope");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    // A loopback listener refuses another host name (DNS rebinding).
    for addr in [http, tracker_http] {
        let r = exchange(
            addr,
            b"GET /api/v1/status HTTP/1.1\r\nHost: rebound.example:80\r\n\r\n",
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (421, "misdirected_request")
        );
    }
    let r = get(tracker_http, "/api/v1/nope");
    assert_eq!(r.status, 404);
    let r = exchange(http, b"DELETE /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 405);
    let r = exchange(
        tracker_http,
        b"PUT /api/v1/catalog HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    let r = exchange_head(http, b"HEAD /api/v1/status HTTP/1.1\r\n\r\n");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(r.header("content-length").unwrap().parse::<u32>().unwrap() > 0);
    let r = post(http, "/api/v1/share", Some("x"), r#"{"path":"/tmp"}"#);
    assert_eq!((r.status, r.error_code().as_str()), (403, "forbidden"));
    assert!(r.body.contains("--api-token-file"), "{}", r.body);

    // The codec's limits, on both daemons.
    for addr in [http, tracker_http] {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(17 * 1024));
        assert_eq!(exchange(addr, big.as_bytes()).status, 431);
        let r = exchange(
            addr,
            b"POST /api/v1/share HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n",
        );
        assert_eq!(r.status, 413);
        let r = exchange(
            addr,
            b"POST /api/v1/share HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(r.status, 411);
        assert_eq!(exchange(addr, b"GARBAGE\r\n\r\n").status, 400);
    }
    let catalog = get_json(tracker_http, "/api/v1/catalog?offset=0&limit=5");
    assert_eq!(catalog["files"], serde_json::json!([]));
    assert_eq!(get(tracker_http, "/api/v1/catalog?limit=x").status, 400);
    drop(p);

    // The token from the environment.
    let dir = tmp.subdir("env");
    let mut d = Daemon::spawn_env(
        env!("CARGO_BIN_EXE_sta-peerd"),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tracker",
            &tracker.addr.to_string(),
            "--dir",
            dir.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ],
        &[("STA_PEERD_API_TOKEN", "env-token")],
    );
    let http = address_line(&mut d, "http listening on ");
    let shared = dir.join("x.bin");
    write_random_file(&shared, 1000, 3);
    let body = format!(
        r#"{{"path":"{}"}}"#,
        shared.canonicalize().unwrap().display()
    );
    assert_eq!(
        post(http, "/api/v1/share", Some("other"), &body).status,
        401
    );
    let r = post(http, "/api/v1/share", Some("env-token"), &body);
    assert_eq!(r.status, 202, "{}", r.body);
    wait_for("the share to be hashed", TIMEOUT, || {
        let s = get_json(http, "/api/v1/status");
        (s["files"][0]["state"] == "seeding").then_some(())
    });
    tracker.assert_running();
}

/// The request examples of spec/http.md (`text http-request NAME`, lines
/// sent with CRLF up to the blank line, then the body as written) parse
/// whole, with the body their Content-Length gives.
#[test]
fn spec_examples_parse() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/http.md"))
        .expect("spec/http.md");
    let mut found = 0;
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```text http-request ") else {
            continue;
        };
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let blank = block
            .iter()
            .position(|l| l.is_empty())
            .unwrap_or(block.len());
        let mut raw: String = block[..blank].iter().map(|l| format!("{l}\r\n")).collect();
        raw.push_str("\r\n");
        let body = block.get(blank + 1..).unwrap_or(&[]).join("\n");
        raw.push_str(&body);
        let (req, used) = sta::http::parse(raw.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: incomplete"));
        assert_eq!(used, raw.len(), "{name}");
        assert_eq!(req.body, body.as_bytes(), "{name}");
        found += 1;
    }
    assert!(found >= 2, "only {found} examples in spec/http.md");
}
