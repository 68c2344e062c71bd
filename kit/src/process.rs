//! Child processes that cannot outlive their owner: [`Guard`] stops its
//! child by pid (SIGTERM, then SIGKILL) when dropped, and [`Lines`] reads
//! the child's stdout on a thread so that a wait can have a deadline.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long a dropped guard lets its child exit after SIGTERM.
pub const DROP_GRACE: Duration = Duration::from_secs(5);
/// How often exits are polled for.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// How a child ended when asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited by itself, or on SIGTERM.
    Exited(ExitStatus),
    /// It was still running at the deadline and got SIGKILL.
    Killed(ExitStatus),
}

/// A child process, stopped by its pid when the guard is dropped.
///
/// Signals go only to a child not yet reaped: a reaped pid may already
/// belong to another process.
#[derive(Debug)]
pub struct Guard {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Guard {
    /// Starts `cmd`; `name` is what messages call it.
    pub fn spawn(name: &str, cmd: &mut Command) -> io::Result<Guard> {
        let child = cmd.spawn()?;
        Ok(Guard::new(name, child))
    }

    pub fn new(name: &str, child: Child) -> Guard {
        Guard {
            name: name.to_owned(),
            child,
            exited: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its exit status once it has exited (reaping it), `None` while it
    /// runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Sends `signal` unless the child has been reaped; true if sent.
    pub fn signal(&mut self, signal: libc::c_int) -> bool {
        if self.exit_status().is_some() {
            return false;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return false;
        };
        // SAFETY: kill(2) only sends a signal, to our own unreaped child.
        unsafe { libc::kill(pid, signal) == 0 }
    }

    /// Asks the child to stop: closes its stdin, if piped (some children,
    /// such as `bench/lt_peer.py`, stop at EOF), and sends SIGTERM.
    pub fn terminate(&mut self) {
        drop(self.child.stdin.take());
        self.signal(libc::SIGTERM);
    }

    /// Waits for the child to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(EXIT_POLL);
        }
    }

    /// SIGKILL and reap: the child gets no chance to clean up.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.exit_status() {
            return Ok(status);
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        self.exited = Some(status);
        Ok(status)
    }

    /// Waits until `deadline` for the child to exit, then kills it. With
    /// [`Guard::terminate`] first, stops many children in one grace period.
    pub fn reap_by(&mut self, deadline: Instant) -> io::Result<Stopped> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.wait_exit(left) {
            Some(status) => Ok(Stopped::Exited(status)),
            None => self.kill().map(Stopped::Killed),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub fn stop(&mut self, grace: Duration) -> io::Result<Stopped> {
        self.terminate();
        self.reap_by(Instant::now() + grace)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.stop(DROP_GRACE);
        }
    }
}

/// Removes from `cmd`'s environment every variable whose name starts with
/// `prefix` (e.g. `STA_`), so that the caller's settings cannot change
/// what the child does.
/// Starts `program` as a daemon the caller watches: stdout read line by
/// line, stderr into `log`, `stdin` as given, no `STA_*` variable of the
/// caller's, a process group of its own (the caller, not the terminal's
/// Ctrl-C, decides when it stops), and told to stop if the caller dies.
pub fn spawn_watched(
    name: &str,
    program: &std::path::Path,
    args: &[std::ffi::OsString],
    stdin: std::process::Stdio,
    log: &std::path::Path,
) -> Result<(Guard, Lines), String> {
    let stderr =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .process_group(0);
    without_env_prefix(&mut cmd, "STA_");
    die_with_parent(&mut cmd);
    let mut guard = Guard::spawn(name, &mut cmd)
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let stdout = guard
        .child_mut()
        .stdout
        .take()
        .ok_or("a child's stdout was not captured")?;
    let lines = Lines::spawn(stdout).map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok((guard, lines))
}

pub fn without_env_prefix<'a>(cmd: &'a mut Command, prefix: &str) -> &'a mut Command {
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(prefix.as_bytes()) {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Makes the child get SIGTERM when this process dies, even by SIGKILL,
/// so that no child is left behind by a harness that could not clean up.
/// A no-op outside Linux.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs between fork and exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd
}

/// Whether a process `pid` exists (zombies included).
pub fn exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// What waiting for a line found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Line(String),
    /// Nothing before the deadline.
    TimedOut,
    /// The stream ended (the child closed its stdout, or exited).
    Closed,
}

/// The lines of a stream (a child's stdout), read by a thread of their
/// own: the child never blocks on a full pipe, and a reader can wait
/// with a deadline. Clones share the stream (each line goes to one), so
/// that a wait can borrow the owner of the lines mutably, to check on its
/// children.
#[derive(Debug, Clone)]
pub struct Lines {
    rx: Arc<Mutex<Receiver<String>>>,
}

impl Lines {
    /// Starts the thread that reads `stream` until its end (or until a
    /// line is not UTF-8).
    pub fn spawn(stream: impl Read + Send + 'static) -> io::Result<Lines> {
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("kit-lines".into())
            .spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Lines {
            rx: Arc::new(Mutex::new(rx)),
        })
    }

    /// The next line, waiting at most until `deadline`.
    pub fn next_by(&self, deadline: Instant) -> Next {
        let left = deadline.saturating_duration_since(Instant::now());
        // A panic elsewhere cannot leave the receiver half-updated.
        let rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        match rx.recv_timeout(left) {
            Ok(line) => Next::Line(line),
            Err(RecvTimeoutError::Timeout) => Next::TimedOut,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    /// The next line before `deadline`, calling `check` every `poll`
    /// meanwhile: a check that fails (a child died, a signal came) ends
    /// the wait with its error. [`Next::Closed`] comes only once every line
    /// before the end has been returned.
    pub fn next_checked<E>(
        &self,
        deadline: Instant,
        poll: Duration,
        mut check: impl FnMut() -> Result<(), E>,
    ) -> Result<Next, E> {
        loop {
            check()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(Next::TimedOut);
            }
            match self.next_by(deadline.min(now + poll)) {
                Next::TimedOut => {}
                next => return Ok(next),
            }
        }
    }

    /// The rest of the first line that starts with `prefix`, as
    /// [`Lines::next_checked`] waits; lines before it are skipped.
    pub fn wait_prefix<E>(
        &self,
        prefix: &str,
        deadline: Instant,
        poll: Duration,
        mut check: impl FnMut() -> Result<(), E>,
    ) -> Result<Next, E> {
        loop {
            match self.next_checked(deadline, poll, &mut check)? {
                Next::Line(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(Next::Line(rest.to_owned()));
                    }
                }
                other => return Ok(other),
            }
        }
    }
}

/// Everything a stream (a child's stderr) writes, kept in memory by a
/// thread of its own, to show when something fails.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    shared: Arc<(Mutex<Capture>, Condvar)>,
}

#[derive(Debug, Default)]
struct Capture {
    bytes: Vec<u8>,
    ended: bool,
}

impl Captured {
    pub fn spawn(mut stream: impl Read + Send + 'static) -> io::Result<Captured> {
        let captured = Captured::default();
        let sink = captured.clone();
        thread::Builder::new()
            .name("kit-capture".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().bytes.extend_from_slice(&buf[..n]);
                }
                sink.lock().ended = true;
                sink.shared.1.notify_all();
            })?;
        Ok(captured)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Capture> {
        // A panic elsewhere cannot leave the bytes half-updated.
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What it wrote so far, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Everything it wrote, once the stream has ended (a child that exited
    /// may leave bytes in the pipe for a moment), or what came within
    /// `timeout` if it has not.
    pub fn text_at_end(&self, timeout: Duration) -> String {
        let guard = self.lock();
        let (guard, _) = self
            .shared
            .1
            .wait_timeout_while(guard, timeout, |c| !c.ended)
            .unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&guard.bytes).into_owned()
    }
}

/// The program name of a path, for messages: `sta-peerd` for
/// `target/release/sta-peerd`.
pub fn program_name(program: &OsStr) -> String {
    std::path::Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).stdout(Stdio::piped());
        cmd
    }

    #[test]
    fn lines_arrive_and_the_stream_closes() {
        let mut g = Guard::spawn("sh", &mut sh("echo one; echo two")).unwrap();
        let lines = Lines::spawn(g.child_mut().stdout.take().unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let got = lines.wait_prefix("tw", deadline, Duration::from_millis(5), || Ok::<_, ()>(()));
        assert_eq!(got, Ok(Next::Line("o".to_owned())));
        assert_eq!(lines.next_by(deadline), Next::Closed);
        assert!(
            g.wait_exit(Duration::from_secs(10))
                .is_some_and(|s| s.success())
        );
        assert!(!g.signal(libc::SIGTERM), "a reaped child gets no signal");
    }

    #[test]
    fn stderr_is_captured() {
        let mut cmd = sh("echo oops >&2");
        cmd.stderr(Stdio::piped());
        let mut g = Guard::spawn("sh", &mut cmd).unwrap();
        let err = Captured::spawn(g.child_mut().stderr.take().unwrap()).unwrap();
        assert!(g.wait_exit(Duration::from_secs(10)).is_some());
        let text =
            crate::wait::poll_until(Duration::from_secs(10), Duration::from_millis(5), || {
                Some(err.text()).filter(|t| !t.is_empty())
            });
        assert_eq!(text.as_deref(), Some("oops\n"));
    }

    #[test]
    fn a_failed_check_ends_the_wait() {
        let mut g = Guard::spawn("sleep", &mut sh("exec sleep 30")).unwrap();
        let lines = Lines::spawn(g.child_mut().stdout.take().unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        let got = lines.next_checked(deadline, Duration::from_millis(1), || {
            n += 1;
            if n > 3 { Err("stop") } else { Ok(()) }
        });
        assert_eq!(got, Err("stop"));
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            lines.next_checked(soon, Duration::from_millis(5), || Ok::<_, ()>(())),
            Ok(Next::TimedOut)
        );
        let pid = g.pid();
        assert!(matches!(
            g.stop(Duration::from_secs(10)),
            Ok(Stopped::Exited(_))
        ));
        assert!(!exists(pid));
    }

    #[test]
    fn a_child_ignoring_sigterm_is_killed() {
        let mut cmd = sh("trap '' TERM; echo ready; exec sleep 30");
        let mut g = Guard::spawn("stubborn", &mut cmd).unwrap();
        let lines = Lines::spawn(g.child_mut().stdout.take().unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        assert_eq!(lines.next_by(deadline), Next::Line("ready".into()));
        let stopped = g.stop(Duration::from_millis(100)).unwrap();
        assert!(matches!(stopped, Stopped::Killed(_)), "{stopped:?}");
    }

    #[test]
    fn a_dropped_guard_stops_its_child() {
        let g = Guard::spawn("sleep", &mut sh("exec sleep 30")).unwrap();
        let pid = g.pid();
        assert!(exists(pid));
        drop(g);
        assert!(!exists(pid));
    }

    #[test]
    fn env_prefix_is_removed() {
        // HOME is set in any login environment; where it is not, the
        // test shows nothing but cannot fail.
        let mut cmd = sh("echo ${HOME:-unset}");
        without_env_prefix(&mut cmd, "HOM");
        let out = cmd.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "unset\n");
        assert_eq!(
            program_name(OsStr::new("target/release/sta-peerd")),
            "sta-peerd"
        );
    }
}
