//! Helpers shared by the end-to-end tests: run a daemon binary on an
//! ephemeral port and stop it for sure, talk to a tracker over a real TCP
//! socket with the crate's own codec, and build files with real piece
//! hashes. Every wait has a deadline, so a broken daemon fails a test
//! instead of hanging it. Processes, files and waits come from `sta_kit`,
//! shared with the benchmarks and `sta demo`; what is here turns its
//! errors into test failures.

#![allow(dead_code)] // each test binary uses its own subset

use sha1::{Digest, Sha1};
use sta::control::{ControlError, FileReport, FileState, Progress, Reply, StatusReport};
use sta::meta::{Geometry, Info};
use sta::wire::tracker::{ErrorCode, InfoHash, Lookup, PeerId, Pieces, Request, Response};
use sta_kit::process::{Captured, Guard, Lines, Next, program_name, without_env_prefix};
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub mod netns;
pub mod proc;
pub mod tls;

pub use sta_kit::random::random_bytes;

/// How long a daemon may take to print its address.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one read may block before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a daemon may take to exit after SIGTERM.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------ daemon

/// A daemon process listening on an ephemeral port. Dropping it sends
/// SIGTERM and waits (then SIGKILL if it does not exit in time); if the
/// test is panicking, the daemon's stderr is printed to help diagnose.
pub struct Daemon {
    guard: Guard,
    /// The address from its `listening on ADDR` line.
    pub addr: SocketAddr,
    log: Captured,
    /// Stdout lines after the first.
    stdout: Lines,
}

impl Daemon {
    /// Starts `bin` with `args` and waits for the line `listening on ADDR`
    /// on its stdout. The caller passes the listen flag (port 0).
    pub fn spawn(bin: &str, args: &[&str]) -> Daemon {
        Daemon::spawn_env(bin, args, &[])
    }

    /// Like [`Daemon::spawn`], with extra environment variables. Variables
    /// `STA_*` inherited from the test's own environment are removed, so a
    /// developer's settings cannot change what a test sees.
    pub fn spawn_env(bin: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        without_env_prefix(&mut cmd, "STA_");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let name = program_name(OsStr::new(bin));
        let mut guard =
            Guard::spawn(&name, &mut cmd).unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let child = guard.child_mut();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let log = Captured::spawn(stderr.expect("piped stderr")).expect("a stderr thread");
        // Every stdout line is read (so the daemon never blocks on a full
        // pipe); the first one here, the others by `next_stdout_line`
        // (sta-peerd prints `control on PATH`).
        let stdout = Lines::spawn(stdout.expect("piped stdout")).expect("a stdout thread");
        let mut daemon = Daemon {
            guard,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
            stdout,
        };
        let line = match daemon.stdout.next_by(Instant::now() + STARTUP_TIMEOUT) {
            Next::Line(line) => line,
            other => panic!(
                "{name} printed no address within {STARTUP_TIMEOUT:?} ({other:?}); exit: {:?}; \
                 stderr:\n{}",
                daemon.exited(),
                daemon.log()
            ),
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"));
        daemon.addr = addr;
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The next line the daemon prints on stdout (after `listening on`),
    /// waiting at most `timeout`.
    pub fn next_stdout_line(&mut self, timeout: Duration) -> Option<String> {
        match self.stdout.next_by(Instant::now() + timeout) {
            Next::Line(line) => Some(line),
            Next::TimedOut | Next::Closed => None,
        }
    }

    /// SIGKILL (by pid) and reap: the daemon gets no chance to clean up.
    pub fn sigkill(&mut self) {
        let _ = self.guard.kill();
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// `Some(status)` if the daemon has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.guard.exit_status()
    }

    /// Panics if the daemon has exited (it crashed or stopped early).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited unexpectedly: {status}; stderr:\n{}",
                self.guard.name(),
                self.log()
            );
        }
    }

    /// Sends SIGTERM (by pid), unless it has exited.
    pub fn sigterm(&mut self) {
        self.guard.terminate();
    }

    /// Waits for the daemon to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.guard.wait_exit(timeout)
    }

    /// SIGTERM, then the exit status; panics if it does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        self.sigterm();
        match self.wait_exit(EXIT_TIMEOUT) {
            Some(status) => status,
            None => {
                self.sigkill();
                panic!(
                    "{} did not exit within {EXIT_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                    self.guard.name(),
                    self.log()
                );
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.guard.stop(EXIT_TIMEOUT);
        }
        if thread::panicking() {
            eprintln!("---- {} stderr ----\n{}", self.guard.name(), self.log());
        }
    }
}

/// Starts `sta-trackerd` on 127.0.0.1 port 0 with extra flags.
pub fn tracker(extra: &[&str]) -> Daemon {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Daemon::spawn(env!("CARGO_BIN_EXE_sta-trackerd"), &args)
}

/// Polls `check` until it returns `Some`, at most `timeout`; panics with
/// `what` otherwise. For conditions no event tells us about (another
/// session's close reaching the tracker, for instance).
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    sta_kit::wait::poll_until(timeout, Duration::from_millis(10), check)
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

// ------------------------------------------------------------------ client

/// A blocking tracker-protocol client over a plain TCP socket. Every read
/// has a timeout; failures panic with what was expected.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// What [`Client::next`] found on the socket.
#[derive(Debug)]
pub enum Incoming {
    Frame(Response),
    Eof,
    /// The connection was reset (or another socket error).
    Failed(io::Error),
    /// Nothing arrived before the read timeout.
    TimedOut,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn set_read_timeout(&mut self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    pub fn send(&mut self, req: &Request) {
        let mut out = Vec::new();
        req.encode(&mut out);
        self.send_raw(&out);
    }

    /// Encodes several requests and writes them with one call (pipelining).
    pub fn send_all(&mut self, reqs: &[Request]) {
        let mut out = Vec::new();
        for r in reqs {
            r.encode(&mut out);
        }
        self.send_raw(&out);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes: {e}", bytes.len()));
    }

    /// Reads the next frame, EOF, a socket error or a timeout. Bytes from
    /// the tracker that do not decode are a test failure.
    pub fn next(&mut self) -> Incoming {
        loop {
            match Response::decode(&self.buf) {
                Ok(Some((resp, used))) => {
                    self.buf.drain(..used);
                    return Incoming::Frame(resp);
                }
                Ok(None) => {}
                Err(e) => panic!("the tracker sent bytes that do not decode: {e}"),
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    assert!(
                        self.buf.is_empty(),
                        "EOF after a partial frame of {} bytes",
                        self.buf.len()
                    );
                    return Incoming::Eof;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Incoming::TimedOut;
                }
                Err(e) => return Incoming::Failed(e),
            }
        }
    }

    /// The next response; panics on EOF, error or timeout.
    pub fn recv(&mut self) -> Response {
        match self.next() {
            Incoming::Frame(r) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Sends `req` and returns its response.
    pub fn call(&mut self, req: &Request) -> Response {
        self.send(req);
        self.recv()
    }

    /// The next response must be an `Error` with `code`; returns its message.
    pub fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv() {
            Response::Error { code: got, message } => {
                assert_eq!(got, code, "wrong error code; message: {message}");
                message
            }
            other => panic!("expected error {code}, got {other:?}"),
        }
    }

    /// Sends `req`; its answer must be the error `code`.
    pub fn call_err(&mut self, req: &Request, code: ErrorCode) -> String {
        self.send(req);
        self.expect_error(code)
    }

    /// The tracker must close the session with no further frame (a reset
    /// counts as closed too: the tracker may drop unread input).
    pub fn expect_closed(&mut self) {
        match self.next() {
            Incoming::Eof | Incoming::Failed(_) => {}
            other => panic!("expected the session to be closed, got {other:?}"),
        }
    }

    /// The tracker must close the session cleanly (FIN, not a reset) with
    /// no further frame.
    pub fn expect_eof(&mut self) {
        match self.next() {
            Incoming::Eof => {}
            other => panic!("expected EOF, got {other:?}"),
        }
    }

    /// Nothing may arrive within `wait` (for requests that get no answer).
    pub fn expect_silence(&mut self, wait: Duration) {
        self.set_read_timeout(wait);
        let got = self.next();
        self.set_read_timeout(READ_TIMEOUT);
        assert!(
            matches!(got, Incoming::TimedOut),
            "expected nothing, got {got:?}"
        );
    }

    pub fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }

    // Typed shortcuts for the requests every test makes.

    /// Hello with version 1; the answer must be Welcome.
    pub fn hello(&mut self, peer_id: PeerId, listen_port: u16) -> u32 {
        match self.call(&hello(peer_id, listen_port)) {
            Response::Welcome {
                version,
                idle_timeout_secs,
            } => {
                assert_eq!(version, 1);
                idle_timeout_secs
            }
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Announce; the answer must be Announced with the file's info hash.
    pub fn announce(&mut self, info: &Info, pieces: Pieces) {
        let got = self.call(&Request::Announce {
            info: info.bencoded.clone(),
            pieces,
        });
        assert_eq!(
            got,
            Response::Announced {
                info_hash: info.info_hash
            }
        );
    }

    pub fn list(&mut self, offset: u32, limit: u16, filter: &str) -> ListPage {
        match self.call(&Request::List {
            offset,
            limit,
            filter: filter.into(),
        }) {
            Response::ListPage { total, entries } => ListPage { total, entries },
            other => panic!("expected ListPage, got {other:?}"),
        }
    }

    pub fn get_peers(
        &mut self,
        info_hash: InfoHash,
        max: u16,
        piece: Option<u32>,
    ) -> Vec<sta::wire::tracker::PeerEntry> {
        match self.call(&Request::GetPeers {
            info_hash,
            max,
            piece,
        }) {
            Response::Peers {
                info_hash: got,
                peers,
            } => {
                assert_eq!(got, info_hash, "Peers answer for another file");
                peers
            }
            other => panic!("expected Peers, got {other:?}"),
        }
    }

    pub fn get_meta(&mut self, lookup: Lookup) -> Vec<u8> {
        match self.call(&Request::GetMeta(lookup)) {
            Response::Meta { info } => info,
            other => panic!("expected Meta, got {other:?}"),
        }
    }

    pub fn have(&mut self, info_hash: InfoHash, piece: u32) {
        assert_eq!(
            self.call(&Request::Have { info_hash, piece }),
            Response::Ack
        );
    }

    pub fn leave(&mut self, info_hash: InfoHash) {
        assert_eq!(self.call(&Request::Leave { info_hash }), Response::Ack);
    }
}

pub struct ListPage {
    pub total: u32,
    pub entries: Vec<sta::wire::tracker::ListEntry>,
}

impl ListPage {
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }
}

pub fn hello(peer_id: PeerId, listen_port: u16) -> Request {
    Request::Hello {
        version: 1,
        peer_id,
        listen_port,
    }
}

/// A recognisable peer id: `-ST0100-` and the number in 12 digits.
pub fn peer_id(n: u64) -> PeerId {
    let s = format!("-ST0100-{n:012}");
    s.as_bytes().try_into().expect("20 bytes")
}

// ------------------------------------------------------------------- files

pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

/// The info dict of `data` cut in pieces of `piece_length`, each hashed.
pub fn info_for(name: &str, data: &[u8], piece_length: u32) -> Info {
    let pieces: Vec<u8> = data.chunks(piece_length as usize).flat_map(sha1).collect();
    Info::new(name, data.len() as u64, piece_length, pieces)
        .unwrap_or_else(|e| panic!("info for {name}: {e}"))
}

/// A file of `length` bytes (contents from `seed`), 16 KiB pieces.
pub fn make_file(name: &str, length: usize, seed: u64) -> Info {
    info_for(name, &random_bytes(length, seed), 16 * 1024)
}

/// A BEP 3 bitfield of `n` pieces with the pieces in `held` set.
pub fn bitfield(n: u32, held: &[u32]) -> Vec<u8> {
    let mut bits = vec![0u8; n.div_ceil(8) as usize];
    for &i in held {
        assert!(i < n);
        bits[(i / 8) as usize] |= 0x80 >> (i % 8);
    }
    bits
}

/// A raw frame: length prefix, `id`, `payload`.
pub fn frame(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(id);
    out.extend_from_slice(payload);
    out
}

/// Lower-case hex, as the tracker prints info hashes.
pub fn hex(bytes: &[u8]) -> String {
    sta::wire::text::to_hex(bytes)
}

// ------------------------------------------------------------- temp dirs

/// A fresh directory, removed (with everything in it) on drop.
pub struct TempDir(sta_kit::files::TempDir);

impl TempDir {
    /// A new directory under `std::env::temp_dir()`, named after `tag`,
    /// this process and a counter, so parallel tests never share one.
    pub fn new(tag: &str) -> TempDir {
        TempDir::under(&std::env::temp_dir(), tag)
    }

    /// Like [`TempDir::new`], but in `/dev/shm` when it exists (RAM, so
    /// large files are written and read fast), else in the temp dir.
    pub fn in_shm(tag: &str) -> TempDir {
        TempDir::under(&sta_kit::files::shm_or_temp(), tag)
    }

    fn under(base: &Path, tag: &str) -> TempDir {
        let dir = sta_kit::files::TempDir::create(base, &format!("sta-e2e-{tag}"));
        TempDir(dir.unwrap_or_else(|e| panic!("a temp dir in {}: {e}", base.display())))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// `self/name`, created as a directory.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let p = self.0.subdir(name);
        p.unwrap_or_else(|e| panic!("create {name} in {}: {e}", self.path().display()))
    }
}

// ------------------------------------------------------------ big files

/// Writes `length` pseudo-random bytes from `seed` to `path`.
pub fn write_random_file(path: &Path, length: u64, seed: u64) {
    sta_kit::random::write_random_file(path, length, seed)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The info dict of the file at `path` with pieces of `piece_length`,
/// read in chunks (for files too big to hold twice in memory).
pub fn info_of_file(path: &Path, piece_length: u32) -> Info {
    let mut file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let length = file.metadata().unwrap().len();
    let name = path.file_name().unwrap().to_str().unwrap();
    let geometry = Geometry::new(piece_length, length);
    let mut buf = vec![0u8; piece_length as usize];
    let mut hashes = Vec::new();
    for piece in 0..geometry.num_pieces() {
        let n = geometry.piece_size(piece) as usize;
        file.read_exact(&mut buf[..n]).unwrap();
        hashes.extend_from_slice(&sha1(&buf[..n]));
    }
    Info::new(name, length, piece_length, hashes).unwrap_or_else(|e| panic!("info: {e}"))
}

/// Panics unless the files at `want` and `got` have the same bytes (the
/// message gives the first differing offset, not megabytes of bytes).
pub fn assert_same_file(want: &Path, got: &Path) {
    let len = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .len()
    };
    let (la, lb) = (len(want), len(got));
    assert_eq!(
        la,
        lb,
        "{} has {lb} bytes, {} has {la}",
        got.display(),
        want.display()
    );
    match sta_kit::files::first_difference(want, got, &AtomicBool::new(false)) {
        Ok(None) => {}
        Ok(Some(at)) => panic!(
            "{} differs from {} at byte {at}",
            got.display(),
            want.display()
        ),
        Err(e) => panic!("comparing {} with {}: {e}", got.display(), want.display()),
    }
}

// ----------------------------------------------------------------- peerd

/// A running `sta-peerd` on 127.0.0.1, port 0. Dropping it sends SIGTERM
/// (by pid) and waits, as for every [`Daemon`].
pub struct Peerd {
    pub daemon: Daemon,
    /// Its peer-wire address (`listening on ADDR`).
    pub listen: SocketAddr,
    /// Its control socket (`control on PATH`).
    pub control: PathBuf,
    /// Its `--dir`, canonical.
    pub dir: PathBuf,
}

/// Starts `sta-peerd --tracker TRACKER --dir DIR --share FILE...` on
/// 127.0.0.1 port 0.
pub fn spawn_peerd(tracker: SocketAddr, dir: &Path, shares: &[&Path]) -> Peerd {
    spawn_peerd_with(tracker, dir, shares, &[])
}

/// [`spawn_peerd`] with extra flags (`--piece-size`, `--upload-slots`...).
///
/// Returns once the daemon has a session with the tracker: a daemon that
/// just printed its address may still be dialing it, and a `get` or
/// `list` sent then is refused with `tracker_unreachable`.
pub fn spawn_peerd_with(
    tracker: SocketAddr,
    dir: &Path,
    shares: &[&Path],
    extra: &[&str],
) -> Peerd {
    let p = spawn_peerd_unready(tracker, dir, shares, extra);
    wait_for(
        &format!("sta-peerd {} to connect to the tracker", p.listen),
        STARTUP_TIMEOUT,
        || p.status().tracker_connected.then_some(()),
    );
    p
}

/// Like [`spawn_peerd_with`], but returns as soon as the daemon prints its
/// addresses, tracker or not.
pub fn spawn_peerd_unready(
    tracker: SocketAddr,
    dir: &Path,
    shares: &[&Path],
    extra: &[&str],
) -> Peerd {
    spawn_peerd_of(Some(tracker), dir, shares, extra)
}

/// A `sta-peerd` with no `--tracker` at all: it finds files and peers
/// only through peers (magnet `x.pe`, PEX).
pub fn spawn_peerd_trackerless(dir: &Path, shares: &[&Path], extra: &[&str]) -> Peerd {
    spawn_peerd_of(None, dir, shares, extra)
}

fn spawn_peerd_of(
    tracker: Option<SocketAddr>,
    dir: &Path,
    shares: &[&Path],
    extra: &[&str],
) -> Peerd {
    let dir_s = dir.to_str().expect("UTF-8 temp dir").to_owned();
    let mut args: Vec<String> = ["--listen", "127.0.0.1:0", "--dir", &dir_s]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(t) = tracker {
        args.push("--tracker".into());
        args.push(t.to_string());
    }
    for s in shares {
        args.push("--share".into());
        args.push(s.to_str().expect("UTF-8 path").to_owned());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut daemon = Daemon::spawn(env!("CARGO_BIN_EXE_sta-peerd"), &args);
    let line = daemon.next_stdout_line(STARTUP_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "sta-peerd printed no `control on` line; stderr:\n{}",
            daemon.log()
        )
    });
    let control = PathBuf::from(
        line.strip_prefix("control on ")
            .unwrap_or_else(|| panic!("sta-peerd: unexpected second line {line:?}")),
    );
    Peerd {
        listen: daemon.addr,
        control,
        dir: std::fs::canonicalize(dir).unwrap(),
        daemon,
    }
}

impl Peerd {
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Sends one request line on the control socket; returns the progress
    /// events and the final reply.
    pub fn request(&self, line: &str) -> (Vec<Progress>, Reply) {
        let mut c = ControlConn::open(&self.control, line.as_bytes());
        let mut events = Vec::new();
        loop {
            match c.next_reply() {
                Some(Reply::Progress(p)) => events.push(p),
                Some(other) => return (events, other),
                None => panic!("control socket closed before a final reply to {line:?}"),
            }
        }
    }

    /// `status`, parsed.
    pub fn status(&self) -> StatusReport {
        match self.request("status\n").1 {
            Reply::Ok(v) => StatusReport::from_json(&v).expect("status report"),
            other => panic!("status failed: {other:?}"),
        }
    }

    /// The status of its file named `name`, if it holds one.
    pub fn file(&self, name: &str) -> Option<FileReport> {
        self.status().files.into_iter().find(|f| f.name == name)
    }

    /// Waits until it seeds `name` (hashing a shared file takes a while).
    pub fn wait_seeding(&self, name: &str, timeout: Duration) -> FileReport {
        wait_for(&format!("{} to seed {name}", self.listen), timeout, || {
            self.file(name).filter(|f| f.state == FileState::Seeding)
        })
    }

    /// Runs `sta --control SOCKET ARGS...`.
    pub fn sta<S: AsRef<OsStr>>(&self, args: &[S]) -> StaRun {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--control"), self.control.as_os_str()];
        all.extend(args.iter().map(AsRef::as_ref));
        run_sta(&all, STA_TIMEOUT)
    }

    /// SIGKILL: the daemon dies without cleaning anything up.
    pub fn kill(&mut self) {
        self.daemon.sigkill();
    }
}

// --------------------------------------------------------------- control

/// How long a control reply line may take. Generous: a daemon may stall
/// for seconds on a loaded machine (preallocating a large `.part` on tmpfs
/// runs on its event loop), and a `get` sends nothing else meanwhile.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

/// One control-socket conversation: a request line sent, reply lines read
/// with a timeout on each ([`CONTROL_TIMEOUT`]).
pub struct ControlConn {
    reader: BufReader<UnixStream>,
}

impl ControlConn {
    /// Connects to `path` and writes `bytes` (normally one request line).
    pub fn open(path: &Path, bytes: &[u8]) -> ControlConn {
        let mut stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_read_timeout(Some(CONTROL_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(CONTROL_TIMEOUT)).unwrap();
        stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to {}: {e}", path.display()));
        ControlConn {
            reader: BufReader::new(stream),
        }
    }

    /// Like [`ControlConn::open`], for input the daemon may answer and
    /// hang up on before it has all arrived (garbage, an over-long line):
    /// a write cut short by the daemon's close is not a failure.
    pub fn open_flood(path: &Path, bytes: &[u8]) -> ControlConn {
        let mut stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_read_timeout(Some(CONTROL_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(CONTROL_TIMEOUT)).unwrap();
        match stream.write_all(bytes) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {}
            Err(e) => panic!("write to {}: {e}", path.display()),
        }
        // Done writing; the daemon may have closed already.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        ControlConn {
            reader: BufReader::new(stream),
        }
    }

    /// The next reply line without its `\n`; `None` at EOF (or a reset).
    /// Panics on a read timeout or a line cut short.
    pub fn next_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => {
                assert!(line.ends_with('\n'), "reply cut short: {line:?}");
                line.pop();
                Some(line)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
            Err(e) => panic!("reading a control reply: {e}"),
        }
    }

    /// The next reply, parsed; `None` at EOF.
    pub fn next_reply(&mut self) -> Option<Reply> {
        let line = self.next_line()?;
        Some(Reply::parse(&line).unwrap_or_else(|e| panic!("bad reply {line:?}: {e}")))
    }
}

/// The error of a final reply; panics on success.
pub fn expect_error(reply: Reply) -> ControlError {
    match reply {
        Reply::Err(e) => e,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

// ------------------------------------------------------------------- sta

/// How long one `sta` command may run.
pub const STA_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `sta --control SOCKET ARGS` on another thread, for at most
/// `timeout`.
pub fn sta_in_background_for(
    control: &Path,
    args: &[&str],
    timeout: Duration,
) -> thread::JoinHandle<StaRun> {
    let mut all = vec![
        OsStr::new("--control").to_owned(),
        control.as_os_str().to_owned(),
    ];
    all.extend(args.iter().map(|s| OsStr::new(s).to_owned()));
    thread::spawn(move || {
        let args: Vec<&OsStr> = all.iter().map(|s| s.as_os_str()).collect();
        run_sta(&args, timeout)
    })
}

/// What a `sta` run did.
#[derive(Debug)]
pub struct StaRun {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl StaRun {
    /// Panics unless it exited 0.
    pub fn ok(self) -> StaRun {
        assert_eq!(self.code, Some(0), "sta failed: {self:?}");
        self
    }
}

/// Runs the `sta` binary with `args`, with no `STA_*` variables from our
/// environment; kills it and panics if it runs longer than `timeout`.
pub fn run_sta(args: &[&OsStr], timeout: Duration) -> StaRun {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sta"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    without_env_prefix(&mut cmd, "STA_");
    let mut sta = Guard::spawn("sta", &mut cmd).expect("start sta");
    let child = sta.child_mut();
    let out = Captured::spawn(child.stdout.take().expect("piped stdout")).expect("a thread");
    let err = Captured::spawn(child.stderr.take().expect("piped stderr")).expect("a thread");
    let Some(status) = sta.wait_exit(timeout) else {
        let _ = sta.kill();
        panic!(
            "sta {args:?} still running after {timeout:?}; stderr so far:\n{}",
            err.text()
        );
    };
    StaRun {
        code: status.code(),
        stdout: out.text_at_end(READ_TIMEOUT),
        stderr: err.text_at_end(READ_TIMEOUT),
    }
}

// ------------------------------------------------------- tracker catalog

/// Waits until the tracker's catalog lists `name` with `seeders` seeders
/// (at least) and `peers` peers holding some of it (at least).
pub fn wait_catalog(tracker: SocketAddr, name: &str, peers: u32, seeders: u32, timeout: Duration) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut c = Client::connect(tracker);
    c.hello(
        peer_id(900_000 + N.fetch_add(1, Ordering::Relaxed) as u64),
        1,
    );
    wait_for(
        &format!("the catalog to list {name} with {peers} peers, {seeders} seeders"),
        timeout,
        || {
            let page = c.list(0, 100, name);
            page.entries
                .iter()
                .any(|e| e.name == name && e.peers >= peers && e.seeders >= seeders)
                .then_some(())
        },
    );
}

/// Sends SIGHUP to `pid` (a daemon's reload), by pid as everywhere.
pub fn sighup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -HUP {pid}");
}

/// The python3 with libtorrent: the system one (Debian's package).
pub const PYTHON: &str = "/usr/bin/python3";

/// Fails, saying how to install it, when libtorrent's Python binding is
/// missing: a test that needs it never passes without it.
pub fn need_libtorrent() {
    let probe = Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "this test needs libtorrent's Python binding for {PYTHON}: \
             `apt-get install python3-libtorrent` ({other:?})"
        ),
    }
}

/// A tracker whose UDP BitTorrent tracker is on (the default), on the
/// port of its TCP listener, announcing every second.
pub fn bt_tracker() -> Daemon {
    let mut t = tracker(&["--announce-interval", "1"]);
    let line = t
        .next_stdout_line(Duration::from_secs(5))
        .expect("udp listening line");
    assert_eq!(line, format!("udp listening on {}", t.addr));
    t
}
