//! `sta demo` for real: a tracker and four peer daemons as child processes,
//! a generated file shared by three and downloaded by the fourth. Checks
//! what it prints, and that it leaves no process and no file behind, also
//! when interrupted midway; with `--http`, that the downloader's status
//! page is up before the download and the swarm after it, until SIGINT.

use sta_kit::process::{Captured, Guard, Lines, Next, exists};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a whole demo may take here.
const DEMO_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the demo may take to exit after SIGINT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `sta demo`, its stdout line by line; stopped if dropped
/// alive.
struct Demo {
    guard: Guard,
    lines: Lines,
    stderr: Captured,
}

impl Demo {
    fn start(size: &str) -> Demo {
        Demo::start_with(&["--size", size])
    }

    fn start_with(args: &[&str]) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sta"));
        cmd.arg("demo")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = Guard::spawn("sta demo", &mut cmd).expect("start sta demo");
        let child = guard.child_mut();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        Demo {
            lines: Lines::spawn(stdout.expect("stdout")).expect("a stdout thread"),
            stderr: Captured::spawn(stderr.expect("stderr")).expect("a stderr thread"),
            guard,
        }
    }

    /// The rest of the next stdout line starting with `prefix` (lines
    /// before it go to `seen`); panics if stdout closes first.
    fn wait_prefix(&self, prefix: &str, deadline: Instant, seen: &mut Vec<String>) -> String {
        loop {
            let line = self
                .next_line(deadline)
                .unwrap_or_else(|| panic!("the demo ended before `{prefix}`:\n{seen:?}"));
            let rest = line.strip_prefix(prefix).map(str::to_owned);
            seen.push(line);
            if let Some(rest) = rest {
                return rest;
            }
        }
    }

    /// The next stdout line, `None` once stdout is closed.
    fn next_line(&self, deadline: Instant) -> Option<String> {
        match self.lines.next_by(deadline) {
            Next::Line(line) => Some(line),
            Next::Closed => None,
            Next::TimedOut => panic!("sta demo printed nothing in time"),
        }
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        self.guard
            .wait_exit(timeout)
            .unwrap_or_else(|| panic!("sta demo did not exit in time"))
    }

    /// Waits for the exit, returning (status, stdout, stderr).
    fn finish(mut self, timeout: Duration, mut out: Vec<String>) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        while let Some(line) = self.next_line(deadline) {
            out.push(line);
        }
        let status = self.wait(timeout);
        let err = self.stderr.text_at_end(timeout);
        (status, out.join("\n") + "\n", err)
    }
}

/// The directory from `working in DIR`.
fn announced_dir(out: &str) -> PathBuf {
    out.lines()
        .find_map(|l| l.strip_prefix("working in "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no `working in DIR` line in:\n{out}"))
}

/// Every `NAME pid N` the demo printed.
fn announced_pids(out: &str) -> Vec<(String, u32)> {
    out.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "pid")?;
            let pid = words.get(at + 1)?.parse().ok()?;
            Some((words.get(at.checked_sub(1)?)?.to_string(), pid))
        })
        .collect()
}

/// The BYTES column of the `seederN` rows of the table.
fn seeder_bytes(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let name = words.first().filter(|w| w.starts_with("seeder"))?;
            words.get(1)?.parse::<std::net::SocketAddr>().ok()?;
            let bytes = words.get(2)?.parse().ok()?;
            Some((name.to_string(), bytes))
        })
        .collect()
}

#[test]
fn demo_downloads_verifies_and_cleans_up() {
    let demo = Demo::start("8M");
    let (status, out, err) = demo.finish(DEMO_TIMEOUT, Vec::new());
    assert!(status.success(), "{status}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("verified: identical"), "{out}");
    assert!(out.contains("3 seeders sharing demo.bin (8 MiB)"), "{out}");
    assert!(out.contains("MB/s"), "{out}");

    let rows = seeder_bytes(&out);
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["seeder1", "seeder2", "seeder3"], "{out}");
    let total: u64 = rows.iter().map(|(_, b)| b).sum();
    assert_eq!(total, 8 << 20, "{out}");

    let pids = announced_pids(&out);
    assert_eq!(pids.len(), 5, "{out}");
    for (name, pid) in pids {
        assert!(!exists(pid), "{name} (pid {pid}) still runs");
    }
    let dir = announced_dir(&out);
    assert!(!dir.exists(), "{} was left behind", dir.display());
    assert!(out.contains(&format!("removed {}", dir.display())), "{out}");
}

#[test]
fn interrupted_demo_stops_its_children_and_removes_its_files() {
    let mut demo = Demo::start("512M");
    let deadline = Instant::now() + DEMO_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let line = demo
            .next_line(deadline)
            .unwrap_or_else(|| panic!("the demo ended before downloading:\n{seen:?}"));
        let downloading = line.starts_with("downloading");
        seen.push(line);
        if downloading {
            break;
        }
    }
    assert!(demo.guard.signal(libc::SIGINT), "the demo is gone");

    let (status, out, err) = demo.finish(EXIT_TIMEOUT, seen);
    assert_eq!(status.code(), Some(130), "{status}\n{out}\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !out.contains("verified"),
        "the download finished first:\n{out}"
    );

    let pids = announced_pids(&out);
    assert_eq!(pids.len(), 5, "{out}");
    for (name, pid) in pids {
        assert!(!exists(pid), "{name} (pid {pid}) still runs");
    }
    let dir = announced_dir(&out);
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

/// One `GET path` on `url`'s address: (status line, body).
fn http_get(url: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let addr = url
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not an http://ADDR/ URL: {url:?}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[test]
fn demo_with_http_serves_the_page_and_runs_until_interrupted() {
    let mut demo = Demo::start_with(&["--size", "8M", "--http", "0"]);
    let deadline = Instant::now() + DEMO_TIMEOUT;
    let mut seen = Vec::new();
    let url = demo.wait_prefix("status page: open ", deadline, &mut seen);
    let url = url
        .strip_suffix(" in a browser")
        .unwrap_or_else(|| panic!("{url:?}"))
        .to_owned();
    // Before the download (the demo waits, stdin is no terminal).
    let (status, page) = http_get(&url, "/");
    assert_eq!(status, "HTTP/1.1 200 OK", "{page}");
    assert!(page.contains("<title>STA status</title>"), "{page}");

    demo.wait_prefix("the swarm keeps running", deadline, &mut seen);
    let (status, json) = http_get(&url, "/api/v1/status");
    assert_eq!(status, "HTTP/1.1 200 OK", "{json}");
    assert!(json.contains("\"name\":\"demo.bin\""), "{json}");
    assert!(json.contains("\"state\":\"seeding\""), "{json}");

    assert!(demo.guard.signal(libc::SIGINT), "the demo is gone");
    let (status, out, err) = demo.finish(EXIT_TIMEOUT, seen);
    assert!(status.success(), "{status}\n{out}\n{err}");
    assert!(out.contains("verified: identical"), "{out}");
    for (name, pid) in announced_pids(&out) {
        assert!(!exists(pid), "{name} (pid {pid}) still runs");
    }
    let dir = announced_dir(&out);
    assert!(!dir.exists(), "{} was left behind", dir.display());
}
