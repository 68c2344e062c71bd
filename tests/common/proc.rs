//! A helper process (bench/lt_peer.py, aria2c) for the tests: stopped by
//! its pid when dropped (its stdin closed first: lt_peer.py exits when
//! stdin closes); its stdout lines arrive on a channel, its stderr is kept
//! and printed when a test fails.

use super::PYTHON;
use sta_kit::process::{Captured, Guard, Lines, Next};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct Proc {
    guard: Guard,
    lines: Lines,
    stderr: Captured,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard =
            Guard::spawn(name, cmd).unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let child = guard.child_mut();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        Proc {
            lines: Lines::spawn(stdout.expect("piped stdout")).expect("a stdout thread"),
            stderr: Captured::spawn(stderr.expect("piped stderr")).expect("a stderr thread"),
            guard,
        }
    }

    /// bench/lt_peer.py with `args` (its mode first).
    pub fn lt_peer<S: AsRef<OsStr>>(args: &[S]) -> Proc {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lt_peer.py");
        let mode = args
            .first()
            .map_or(String::new(), |m| m.as_ref().to_string_lossy().into_owned());
        Proc::spawn(
            &format!("lt_peer.py {mode}"),
            Command::new(PYTHON).arg(script).args(args),
        )
    }

    /// MODE (`seed` or `leech`) --torrent T --save DIR, peers from the
    /// tracker, announcing again every second.
    pub fn lt(mode: &str, torrent: &Path, save: &Path) -> Proc {
        Proc::lt_peer(&[
            OsStr::new(mode),
            OsStr::new("--timeout"),
            OsStr::new("60"),
            OsStr::new("--reannounce"),
            OsStr::new("1"),
            OsStr::new("--torrent"),
            torrent.as_os_str(),
            OsStr::new("--save"),
            save.as_os_str(),
        ])
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Writes `line` and a newline to its stdin (lt_peer.py reads
    /// commands there: `go`, `status`).
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.guard.child_mut().stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: cannot write to stdin: {e}", self.guard.name()));
    }

    /// True while it has not exited.
    pub fn running(&mut self) -> bool {
        self.guard.exit_status().is_none()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits for a stdout line starting with `prefix`; panics after
    /// `timeout` or if the process ends first.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        // The last lines seen (lt_peer.py's progress), for the message.
        let mut seen = std::collections::VecDeque::new();
        loop {
            match self.lines.next_by(deadline) {
                Next::Line(line) if line.starts_with(prefix) => return line,
                Next::Line(line) => {
                    if seen.len() == 5 {
                        seen.pop_front();
                    }
                    seen.push_back(line);
                }
                other => {
                    let exit = self.guard.exit_status();
                    panic!(
                        "{} printed no `{prefix}` within {timeout:?} ({other:?}); exit: \
                         {exit:?}; last lines: {seen:?}; stderr:\n{}",
                        self.guard.name(),
                        self.stderr()
                    )
                }
            }
        }
    }

    /// Every stdout line until the process exits (at most `timeout`),
    /// which must be a success.
    pub fn lines_to_end(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            match self.lines.next_by(deadline) {
                Next::Line(line) => out.push(line),
                Next::Closed => break,
                Next::TimedOut => panic!(
                    "{} still running after {timeout:?}; stderr:\n{}",
                    self.guard.name(),
                    self.stderr()
                ),
            }
        }
        let status = self.guard.wait_exit(super::READ_TIMEOUT);
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: {status:?}; stderr:\n{}",
            self.guard.name(),
            self.stderr()
        );
        out
    }

    /// Waits for the process to exit, at most `timeout`; panics otherwise.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.guard.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "{} still running after {timeout:?}; stderr:\n{}",
                self.guard.name(),
                self.stderr()
            )
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- {} stderr ----\n{}", self.guard.name(), self.stderr());
        }
    }
}
