//! The status page (`GET /` of `sta-peerd --http`) in a real browser:
//! Debian's headless Chromium loads it from a leecher in the middle of a
//! download and the test reads the DOM the page's JavaScript built from
//! the JSON API: the file, its progress, its peers, where its bytes came
//! from. Two loads at two moments of the download must show two progress
//! values, the second higher; a screenshot of the page is kept as
//! `target/status-page.png` (and of the tracker's, below, as
//! `target/status-page-tracker.png`).
//!
//! A download on loopback takes a second, less than one Chromium run, so
//! the test holds the two seeders still (SIGSTOP) while Chromium reads the
//! page and lets them run (SIGCONT) for a few milliseconds between loads:
//! each load sees a known, unfinished moment of the download. The pauses
//! stay far below the engine's stall timeout (30 s).
//!
//! Then the tracker's page (`sta-trackerd --http`) must show the file in
//! its catalog with every holder.
//!
//! Needs `chromium` (`apt-get install chromium`); fails without it.

mod common;

use common::*;
use sta::control::{ControlRequest, Reply};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const FILE: &str = "page.bin";
const SIZE: u64 = 128 << 20;
/// 512 pieces: a piece map of one cell per piece.
const PIECE_FLAG: &str = "262144";
const SEED_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one Chromium run may take (it starts in 1-3 s).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// Virtual time Chromium gives the page: a few polls of the API.
const VIRTUAL_MS: u32 = 4000;
const GET_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn status_page_shows_a_download_progressing() {
    let started = Instant::now();
    let browser = chromium();
    let mut t = tracker(&["--http", "127.0.0.1:0"]);
    let tracker_page = format!("http://{}/", prefixed_addr(&mut t, "api listening on "));
    let tmp = TempDir::in_shm("status-page");
    let src = tmp.subdir("src").join(FILE);
    write_random_file(&src, SIZE, 16);
    let flags = ["--piece-size", PIECE_FLAG];
    let s1 = spawn_peerd_with(t.addr, &tmp.subdir("s1"), &[&src], &flags);
    let s2 = spawn_peerd_with(t.addr, &tmp.subdir("s2"), &[&src], &flags);
    s1.wait_seeding(FILE, SEED_TIMEOUT);
    let info_hash = hex(&s2.wait_seeding(FILE, SEED_TIMEOUT).info_hash);
    wait_catalog(t.addr, FILE, 2, 2, SEED_TIMEOUT);
    let mut leecher = spawn_peerd_with(t.addr, &tmp.subdir("l"), &[], &["--http", "127.0.0.1:0"]);
    let http = http_addr(&mut leecher);
    let url = format!("http://{http}/");
    let ready = started.elapsed();

    // The page comes from the binary, whole, with a policy that forbids
    // loading anything from elsewhere.
    let (head, body) = http_get(http, "/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(head.contains("default-src 'none'"), "{head}");
    assert_eq!(body, include_str!("../src/http/status_page.html"));

    // Seeders held still, the download asked for: nothing moves yet.
    let mut hold = Hold::new(&[s1.pid(), s2.pid()]);
    let out = tmp.subdir("out");
    let get = ControlRequest::Get {
        target: info_hash.clone(),
        out_dir: Some(out.clone()),
        only: Vec::new(),
        peers: Vec::new(),
    };
    let mut control = ControlConn::open(&leecher.control, get.to_line().as_bytes());
    let have = |p: &Peerd| p.file(FILE).map_or(0, |f| f.have);
    let pieces = 512;

    let first = hold.step_until(|| have(&leecher), 0);
    assert!(
        first < pieces / 2,
        "{first} of {pieces} pieces after the first step"
    );
    let profile = tmp.subdir("chromium");
    let browser_started = Instant::now();
    let dom1 = dump_dom(&browser, &profile, &url);
    let shown1 = page_have(&dom1, &info_hash);
    assert!(
        shown1 >= first && shown1 < pieces,
        "the page shows {shown1} pieces; the daemon had {first}"
    );
    for s in [&s1, &s2] {
        let addr = format!("class=\"peer\" data-addr=\"{}\"", s.listen);
        assert!(
            dom1.contains(&addr),
            "no peer row for seeder {}:\n{dom1}",
            s.listen
        );
    }
    assert!(dom1.contains(FILE), "the file's name is missing:\n{dom1}");
    let entry =
        format!("class=\"catalog-entry\" data-info-hash=\"{info_hash}\" data-local=\"true\"");
    assert!(
        dom1.contains(&entry),
        "the tracker's catalog is missing:\n{dom1}"
    );
    assert!(
        dom1.contains("class=\"source\""),
        "no source of verified bytes:\n{dom1}"
    );

    let second = hold.step_until(|| have(&leecher), shown1);
    let screenshot = screenshot_path();
    take_screenshot(&browser, &profile, &url, &screenshot);
    let dom2 = dump_dom(&browser, &profile, &url);
    let browser_time = browser_started.elapsed();
    let shown2 = page_have(&dom2, &info_hash);
    assert!(
        shown2 > shown1 && shown2 >= second,
        "the page showed {shown1} then {shown2} pieces (the daemon had {second})"
    );
    assert!(shown2 < pieces, "the download ended before the second load");
    eprintln!("the page showed {shown1} then {shown2} of {pieces} pieces");

    drop(hold);
    let reply = follow_get(&mut control, Instant::now() + GET_TIMEOUT);
    assert!(matches!(reply, Reply::Ok(_)), "get: {reply:?}");
    assert_same_file(&src, &out.join(FILE));

    // The tracker's page: its catalog, and the file's holders (the
    // leecher, done, is one of them now).
    let catalog = dump_dom(&browser, &profile, &tracker_page);
    let tracker_shot = screenshot.with_file_name("status-page-tracker.png");
    take_screenshot(&browser, &profile, &tracker_page, &tracker_shot);
    let row = format!(
        "class=\"file\" tabindex=\"0\" aria-selected=\"true\" data-info-hash=\"{info_hash}\""
    );
    assert!(
        catalog.contains(&row),
        "the tracker's page lacks the file:\n{catalog}"
    );
    for addr in [s1.listen, s2.listen, leecher.listen] {
        let row = format!("class=\"peer\" data-addr=\"{addr}\"");
        assert!(
            catalog.contains(&row),
            "the tracker's page lacks holder {addr}:\n{catalog}"
        );
    }
    assert!(catalog.contains("STA tracker"), "{catalog}");

    let size = std::fs::metadata(&screenshot).map_or(0, |m| m.len());
    assert!(size > 10_000, "{} has {size} bytes", screenshot.display());
    eprintln!(
        "status page test: {:.1} s in all ({:.1} s to start the swarm, {:.1} s of Chromium); screenshot {}",
        started.elapsed().as_secs_f64(),
        ready.as_secs_f64(),
        browser_time.as_secs_f64(),
        screenshot.display()
    );
}

// ------------------------------------------------------------- seeders

/// Processes held with SIGSTOP, let go (SIGCONT) on drop, so that a
/// failing test never leaves one stopped.
struct Hold {
    pids: Vec<i32>,
}

impl Hold {
    fn new(pids: &[u32]) -> Hold {
        let hold = Hold {
            pids: pids.iter().map(|&p| p as i32).collect(),
        };
        hold.signal(libc::SIGSTOP);
        hold
    }

    fn signal(&self, signal: i32) {
        for &pid in &self.pids {
            // SAFETY: kill(2) on the pid of a child we started and have
            // not reaped (the Daemon guards reap them later).
            let rc = unsafe { libc::kill(pid, signal) };
            assert_eq!(
                rc,
                0,
                "kill({pid}, {signal}): {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// Lets the processes run for short, growing slices until `have()`
    /// exceeds `above`, waiting after each for the blocks in flight to
    /// land; returns the new value.
    fn step_until(&mut self, have: impl Fn() -> u32, above: u32) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut slice = Duration::from_millis(5);
        loop {
            self.signal(libc::SIGCONT);
            thread::sleep(slice);
            self.signal(libc::SIGSTOP);
            thread::sleep(Duration::from_millis(300));
            let now = have();
            if now > above {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "the download made no progress in 60 s"
            );
            slice = (slice * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: as in `signal`; a failure here changes nothing.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

fn follow_get(c: &mut ControlConn, deadline: Instant) -> Reply {
    loop {
        assert!(
            Instant::now() < deadline,
            "the download did not finish in time"
        );
        match c.next_reply() {
            Some(Reply::Progress(_)) => {}
            Some(other) => return other,
            None => panic!("the control socket closed before the reply to get"),
        }
    }
}

// ---------------------------------------------------------------- http

/// The `http listening on ADDR` line sta-peerd prints after its others.
fn http_addr(p: &mut Peerd) -> SocketAddr {
    prefixed_addr(&mut p.daemon, "http listening on ")
}

/// The address on the first stdout line that starts with `prefix`
/// (lines before it skipped).
fn prefixed_addr(d: &mut Daemon, prefix: &str) -> SocketAddr {
    loop {
        let line = d
            .next_stdout_line(STARTUP_TIMEOUT)
            .unwrap_or_else(|| panic!("no `{prefix}ADDR` line; stderr:\n{}", d.log()));
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("unexpected line {line:?}"));
        }
    }
}

/// One GET, `Connection: close`: the head and the body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let text = String::from_utf8(bytes).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_owned(), body.to_owned())
}

// ------------------------------------------------------------- browser

/// Debian's `chromium` on the PATH.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("chromium is not installed: this test needs it (apt-get install chromium)")
        })
}

/// `target/status-page.png`: under `CARGO_TARGET_DIR` when set, else the
/// package's `target/`.
fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    target.join("status-page.png")
}

/// Runs headless Chromium on `url` with `extra` flags; its stdout.
fn run_browser(browser: &Path, profile: &Path, url: &str, extra: &[String]) -> String {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        &format!("--virtual-time-budget={VIRTUAL_MS}"),
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill(); // by pid
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?} on {url}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "chromium failed ({status}) on {url}; stderr:\n{err}"
    );
    eprintln!(
        "chromium {:?} in {:.1} s",
        extra,
        started.elapsed().as_secs_f64()
    );
    out
}

/// The page's DOM once its scripts ran for [`VIRTUAL_MS`] of virtual time.
fn dump_dom(browser: &Path, profile: &Path, url: &str) -> String {
    let dom = run_browser(browser, profile, url, &["--dump-dom".to_owned()]);
    assert!(
        dom.contains("<title>STA status</title>"),
        "not the status page:\n{dom}"
    );
    assert!(
        dom.contains("data-state=\"live\""),
        "the page never reached the API:\n{dom}"
    );
    dom
}

fn take_screenshot(browser: &Path, profile: &Path, url: &str, png: &Path) {
    let _ = std::fs::remove_file(png);
    run_browser(
        browser,
        profile,
        url,
        &[format!("--screenshot={}", png.display())],
    );
    assert!(png.is_file(), "chromium wrote no {}", png.display());
}

/// The `data-have` of the file's row in the page's files table.
fn page_have(dom: &str, info_hash: &str) -> u32 {
    let anchor = format!("data-info-hash=\"{info_hash}\"");
    let at = dom
        .find(&anchor)
        .unwrap_or_else(|| panic!("no row for {info_hash} in the page:\n{dom}"));
    let start = dom[..at].rfind('<').unwrap_or(0);
    let end = at + dom[at..].find('>').unwrap_or(dom.len() - at);
    let tag = &dom[start..end];
    tag.split_once("data-have=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no data-have in {tag:?}"))
}
