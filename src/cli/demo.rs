//! `sta demo`: STA at work on one machine with nothing to set up. Starts a
//! `sta-trackerd` and four `sta-peerd` as child processes on 127.0.0.1 in
//! a fresh temporary directory; three peers share their own copy of a
//! generated file, the fourth downloads it through its control socket with
//! the progress bar of `sta get`. Then the download is checked byte for
//! byte, the rate and the bytes per seeder are printed, and every process
//! and file is cleaned up, also on SIGINT, SIGTERM or SIGHUP.
//!
//! With `--http PORT` the downloader also serves its status page there;
//! the demo prints its URL, waits for Enter (or a few seconds) before the
//! download, and keeps the swarm running after it until interrupted, so
//! that the page can be watched.
//!
//! Phases go to stdout, the progress bar to stderr (as for `sta get`).

use crate::cli::client::{CallError, Client, Event, file_of, seeders_listed};
use crate::cli::format::{human_bytes, parse_size, size_text, table};
use crate::cli::progress::ProgressView;
use crate::control::{ControlRequest, FileReport};
use crate::meta::info::to_hex;
use serde_json::Value;
use sta_kit::files::{CompareError, TempDir, first_difference, free_bytes};
use sta_kit::process::{Guard, Lines, Next, Stopped, spawn_watched};
use sta_kit::random::{Prng, WriteError, write_random};
use std::ffi::OsString;
use std::fmt::Display;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

pub const HELP: &str = "\
sta demo [--size SIZE] [--http PORT]

Shows STA at work on this machine, with nothing to set up. Starts a
sta-trackerd and four sta-peerd daemons as real processes on 127.0.0.1
(ports chosen by the system), in a fresh temporary directory (under
/dev/shm when it has room). Three peers each share their own copy of a
generated file, demo.bin; the fourth downloads it from all three at once
through its control socket, with the progress bar of `sta get`. The demo
then compares the download with the source byte for byte, prints the time,
the rate and how many bytes came from each seeder, stops every process and
removes the directory, also when interrupted (Ctrl-C).

sta-trackerd and sta-peerd must be next to sta: `cargo build --release`.
The temporary directory needs room for four copies of the file.

    --size SIZE   size of demo.bin: bytes, or a number with K, M or G
                  (powers of 1024), e.g. 64M, 1G [default: 256M]
    --http PORT   the downloader serves its status page and JSON API on
                  http://127.0.0.1:PORT/ (or ADDR:PORT; 0: a free port);
                  the demo prints the URL, starts the download when you
                  press Enter (after 5 s without a terminal) and keeps the
                  swarm running afterwards until Ctrl-C; each seeder then
                  uploads at most 8 MB/s, so that the download can be
                  watched (256 MiB: about 11 s)
    -h, --help    print this help

Exit status: 0 the download was verified (with --http: and the demo was
then stopped with Ctrl-C), 1 something failed (the message says what), 2
wrong usage, 130 interrupted before the end.
";

const FILE_NAME: &str = "demo.bin";
const DEFAULT_SIZE: u64 = 256 << 20;
const SEEDERS: usize = 3;
/// How long a daemon may take to print that it is ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the tracker may take to list every seeder.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the daemons may take to exit after SIGTERM, before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the wait loops look at the signal flag and the children.
const POLL: Duration = Duration::from_millis(100);
/// Room kept free beyond the four copies.
const MARGIN: u64 = 64 << 20;
/// With `--http` and no terminal, how long the demo waits before the
/// download, for a browser to open the page.
const HTTP_START_DELAY: Duration = Duration::from_secs(5);
/// With `--http`, each seeder's `--max-upload-rate` (bytes per second):
/// 256 MiB from three of them then take about 11 s, long enough to watch
/// the pieces arrive on the page (without a limit, loopback takes 1 s).
const WATCHED_SEEDER_RATE: u64 = 8_000_000;

/// What the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    size: u64,
    /// `--http`: where the downloader serves its status page.
    http: Option<SocketAddr>,
}

/// Runs `sta demo` with the words after `demo`.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let options = match parse_args(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("sta demo: {message}; see `sta demo --help`");
            return ExitCode::from(2);
        }
    };
    let stop = match signal_flag() {
        Ok(flag) => flag,
        Err(e) => {
            eprintln!("sta demo: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut demo = Demo::new(stop);
    let outcome = demo.run(options);
    if matches!(outcome, Err(Failure::Interrupted)) {
        eprintln!("sta demo: interrupted; stopping every process and removing the files");
    }
    let cleaned = demo.cleanup();
    exit_code(outcome, cleaned)
}

fn exit_code(outcome: Result<(), Failure>, cleaned: Result<(), String>) -> ExitCode {
    if let Err(e) = &cleaned {
        eprintln!("sta demo: {e}");
    }
    match outcome {
        Err(Failure::Interrupted) => ExitCode::from(130),
        Err(Failure::Failed(message)) => {
            eprintln!("sta demo: {message}");
            ExitCode::FAILURE
        }
        Ok(()) if cleaned.is_err() => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

/// Why the demo stops short.
#[derive(Debug)]
enum Failure {
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// Something went wrong; the message says what.
    Failed(String),
}

type Step<T> = Result<T, Failure>;

fn failed(message: impl Into<String>) -> Failure {
    Failure::Failed(message.into())
}

/// Prints a line on stdout; a closed stdout must not stop the cleanup.
fn say(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

// ------------------------------------------------------------- arguments

/// The options, or `None` for `--help`.
fn parse_args(args: Vec<OsString>) -> Result<Option<Options>, String> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        return Ok(None);
    }
    let cause = |e| match e {
        pico_args::Error::Utf8ArgumentParsingFailed { cause, .. } => cause,
        e => e.to_string(),
    };
    let size = args
        .opt_value_from_fn("--size", parse_size)
        .map_err(cause)?;
    let http = args
        .opt_value_from_fn("--http", |s: &str| {
            crate::http::parse_listen(s).map_err(|e| format!("--http: {e}"))
        })
        .map_err(cause)?;
    if let Some(extra) = args.finish().first() {
        return Err(format!("unexpected argument '{}'", extra.to_string_lossy()));
    }
    Ok(Some(Options {
        size: size.unwrap_or(DEFAULT_SIZE),
        http,
    }))
}

/// A flag raised by SIGINT, SIGTERM or SIGHUP, which then no longer end
/// the process: the wait loops poll it and clean up.
fn signal_flag() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

// ------------------------------------------------------------------ demo

/// What runs and what is on disk, so that all of it can be cleaned up.
struct Demo {
    stop: Arc<AtomicBool>,
    dir: Option<TempDir>,
    procs: Vec<Proc>,
}

/// A started daemon, as the demo knows it.
struct Peer {
    name: String,
    addr: SocketAddr,
    dir: PathBuf,
    client: Client,
    /// The URL of its status page, with `--http`.
    page: Option<String>,
}

impl Demo {
    fn new(stop: Arc<AtomicBool>) -> Demo {
        Demo {
            stop,
            dir: None,
            procs: Vec::new(),
        }
    }

    fn run(&mut self, options: Options) -> Step<()> {
        let size = options.size;
        let (tracker_bin, peerd_bin) = find_binaries()?;
        let dir = self.make_dir(size)?;
        let names = peer_names();
        let files = self.generate(&dir, &names[..SEEDERS], size)?;
        let tracker = self.start_tracker(&tracker_bin, &dir)?;
        let mut seeders = self.start_peers(&peerd_bin, &dir, tracker, &names, options.http)?;
        let downloader = seeders
            .pop()
            .ok_or_else(|| failed("no downloader was started"))?;
        let shared = self.share(&seeders, &files, size)?;
        self.wait_for_seeders(&downloader, &shared)?;
        if let Some(url) = &downloader.page {
            let rate = WATCHED_SEEDER_RATE * SEEDERS as u64;
            say(format_args!(
                "  each seeder uploads at most {}/s (--max-upload-rate), so the download lasts about {} s",
                human_bytes(WATCHED_SEEDER_RATE),
                (size / rate).max(1)
            ));
            self.wait_for_viewer(url)?;
        }
        let got = self.download(&downloader, &shared, size)?;
        self.verify(&shared.path, &got.path)?;
        say("bytes per peer:");
        say(peer_table(&got, &seeders));
        if let Some(url) = &downloader.page {
            self.keep_running(url)?;
        }
        Ok(())
    }

    /// Says where the status page is, then waits for Enter on a terminal
    /// (a few seconds otherwise) so that it can be opened before the
    /// download.
    fn wait_for_viewer(&mut self, url: &str) -> Step<()> {
        say(format_args!("status page: open {url} in a browser"));
        let deadline = if std::io::stdin().is_terminal() {
            say("  press Enter to start the download");
            None
        } else {
            say(format_args!(
                "  the download starts in {} s",
                HTTP_START_DELAY.as_secs()
            ));
            Some(Instant::now() + HTTP_START_DELAY)
        };
        let enter = deadline.is_none().then(stdin_line);
        loop {
            self.check_stop()?;
            self.check_children()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            if let Some(rx) = &enter {
                match rx.recv_timeout(POLL) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    Err(RecvTimeoutError::Timeout) => {}
                }
            } else {
                thread::sleep(POLL);
            }
        }
    }

    /// After the download, with `--http`: the swarm keeps running (the
    /// downloader now seeds too) until Ctrl-C, which ends the demo
    /// normally.
    fn keep_running(&mut self, url: &str) -> Step<()> {
        say(format_args!(
            "the swarm keeps running for the status page at {url}; press Ctrl-C to stop it"
        ));
        loop {
            self.check_children()?;
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep(POLL);
        }
    }

    fn check_stop(&self) -> Step<()> {
        if self.stop.load(Ordering::SeqCst) {
            Err(Failure::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Creates the temporary directory (mode 0700) where it has room.
    fn make_dir(&mut self, size: u64) -> Step<PathBuf> {
        let needed = size
            .checked_mul(SEEDERS as u64 + 1)
            .and_then(|n| n.checked_add(MARGIN))
            .ok_or_else(|| failed("--size is too large"))?;
        let base = pick_base(needed)?;
        let dir = TempDir::create(&base, "sta-demo").map_err(|e| {
            failed(format!(
                "cannot create a fresh directory in {}: {e}",
                base.display()
            ))
        })?;
        let path = dir.path().to_path_buf();
        say(format_args!("working in {}", path.display()));
        self.dir = Some(dir);
        Ok(path)
    }

    /// Writes one copy of the file per seeder, each in its own directory.
    fn generate(&self, dir: &Path, seeders: &[String], size: u64) -> Step<Vec<PathBuf>> {
        let started = Instant::now();
        let mut paths = Vec::new();
        for name in seeders {
            let peer_dir = dir.join(name);
            std::fs::create_dir(&peer_dir)
                .map_err(|e| failed(format!("cannot create {}: {e}", peer_dir.display())))?;
            paths.push(peer_dir.join(FILE_NAME));
        }
        say(format_args!(
            "generating {FILE_NAME} ({}, pseudo-random), one copy per seeder...",
            size_text(size)
        ));
        write_copies(&paths, size, &self.stop)?;
        say(format_args!(
            "  done in {:.2} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(paths)
    }

    fn start_tracker(&mut self, program: &Path, dir: &Path) -> Step<SocketAddr> {
        say("starting tracker on 127.0.0.1 (port chosen by the system)...");
        let args = ["--listen", "127.0.0.1:0", "--log-level", "warn"];
        let i = self.spawn("tracker", program, &args.map(OsString::from), dir)?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let addr = self.ready_addr(i, deadline)?;
        say(format_args!(
            "  tracker pid {} listening on {addr}",
            self.procs[i].pid()
        ));
        Ok(addr)
    }

    /// Starts every peer at once, then waits for each to be ready. The
    /// last one (the downloader) gets `--http` when `http` is set.
    fn start_peers(
        &mut self,
        program: &Path,
        dir: &Path,
        tracker: SocketAddr,
        names: &[String],
        http: Option<SocketAddr>,
    ) -> Step<Vec<Peer>> {
        say(format_args!(
            "starting {} peers: {SEEDERS} seeders and 1 downloader...",
            names.len()
        ));
        let mut started = Vec::new();
        for (n, name) in names.iter().enumerate() {
            let peer_dir = dir.join(name);
            std::fs::DirBuilder::new()
                .recursive(true)
                .create(&peer_dir)
                .map_err(|e| failed(format!("cannot create {}: {e}", peer_dir.display())))?;
            let downloader = n + 1 == names.len();
            let mut args = peer_args(tracker, &peer_dir, http.filter(|_| downloader));
            if http.is_some() && !downloader {
                args.push("--max-upload-rate".into());
                args.push(WATCHED_SEEDER_RATE.to_string().into());
            }
            let http = http.filter(|_| downloader);
            started.push((
                self.spawn(name, program, &args, dir)?,
                peer_dir,
                http.is_some(),
            ));
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        started
            .into_iter()
            .map(|(i, peer_dir, http)| self.peer_ready(i, peer_dir, http, deadline))
            .collect()
    }

    fn peer_ready(&mut self, i: usize, dir: PathBuf, http: bool, deadline: Instant) -> Step<Peer> {
        let addr = self.ready_addr(i, deadline)?;
        let socket = PathBuf::from(self.wait_line(i, "control on ", deadline)?);
        let page = if http {
            let text = self.wait_line(i, "http listening on ", deadline)?;
            let at: SocketAddr = text.parse().map_err(|_| {
                failed(format!(
                    "{} printed `http listening on {text}`, which is not ADDR:PORT",
                    self.procs[i].name()
                ))
            })?;
            Some(page_url(at))
        } else {
            None
        };
        let p = &self.procs[i];
        say(format_args!(
            "  {} pid {} listening on {addr}, control socket {}",
            p.name(),
            p.pid(),
            socket.display()
        ));
        if let Some(url) = &page {
            say(format_args!(
                "  {} serves its status page at {url}",
                p.name()
            ));
        }
        Ok(Peer {
            name: p.name().to_owned(),
            addr,
            dir,
            client: Client::from_socket(socket),
            page,
        })
    }

    fn ready_addr(&mut self, i: usize, deadline: Instant) -> Step<SocketAddr> {
        let text = self.wait_line(i, "listening on ", deadline)?;
        text.parse().map_err(|_| {
            failed(format!(
                "{} printed `listening on {text}`, which is not ADDR:PORT",
                self.procs[i].name()
            ))
        })
    }

    /// The rest of the first stdout line of process `i` that starts with
    /// `prefix`.
    fn wait_line(&mut self, i: usize, prefix: &str, deadline: Instant) -> Step<String> {
        let lines = self.procs[i].lines.clone();
        let next = lines.wait_prefix(prefix, deadline, POLL, || {
            self.check_stop()?;
            self.check_children()
        })?;
        match next {
            Next::Line(rest) => Ok(rest),
            Next::TimedOut => Err(failed(format!(
                "{} did not print `{prefix}...` within {} s{}",
                self.procs[i].name(),
                STARTUP_TIMEOUT.as_secs(),
                self.procs[i].log_tail()
            ))),
            Next::Closed => {
                // It is exiting, most likely: say how it ended.
                let _ = self.procs[i].guard.wait_exit(STOP_TIMEOUT);
                self.check_children()?;
                Err(failed(format!(
                    "{} closed its stdout before printing `{prefix}...`{}",
                    self.procs[i].name(),
                    self.procs[i].log_tail()
                )))
            }
        }
    }

    /// Fails when a daemon exited: none should before the cleanup.
    fn check_children(&mut self) -> Step<()> {
        for p in &mut self.procs {
            if let Some(status) = p.guard.exit_status() {
                return Err(failed(format!(
                    "{} (pid {}) exited unexpectedly ({status}){}",
                    p.name(),
                    p.pid(),
                    p.log_tail()
                )));
            }
        }
        Ok(())
    }

    /// Starts `program` with its stdout read by a thread and its stderr
    /// in `dir/NAME.log`; returns its index in `self.procs`.
    ///
    /// The child has stdin closed, none of the caller's `STA_*` settings,
    /// a process group of its own (the demo, not the terminal's Ctrl-C,
    /// decides when it stops), and is told to stop if the demo dies.
    fn spawn(&mut self, name: &str, program: &Path, args: &[OsString], dir: &Path) -> Step<usize> {
        let log = dir.join(format!("{name}.log"));
        let (guard, lines) =
            spawn_watched(name, program, args, Stdio::null(), &log).map_err(failed)?;
        self.procs.push(Proc { guard, log, lines });
        Ok(self.procs.len() - 1)
    }

    /// Has each seeder share its copy, all at once; returns the file as
    /// the first seeder reports it.
    fn share(&mut self, seeders: &[Peer], files: &[PathBuf], size: u64) -> Step<FileReport> {
        say(format_args!(
            "{SEEDERS} seeders sharing {FILE_NAME} ({})...",
            size_text(size)
        ));
        let started = Instant::now();
        let pending: Vec<Receiver<Event>> = seeders
            .iter()
            .zip(files)
            .map(|(s, f)| call_in_background(&s.client, ControlRequest::Share(f.clone())))
            .collect::<Step<_>>()?;
        let deadline = Instant::now() + budget(size);
        let mut reports = Vec::new();
        for (seeder, rx) in seeders.iter().zip(&pending) {
            let v = self.final_reply(rx, deadline, &format!("share on {}", seeder.name))?;
            reports.push(file_of(&v).map_err(|e| call_failed(&seeder.name, &e))?);
        }
        let file = same_file(reports)?;
        say(format_args!(
            "  hashed in {:.2} s: {} pieces of {}, info hash {}",
            started.elapsed().as_secs_f64(),
            file.pieces,
            size_text(u64::from(file.piece_length)),
            to_hex(&file.info_hash)
        ));
        Ok(file)
    }

    /// The final reply on `rx`, ignoring progress events.
    fn final_reply(&mut self, rx: &Receiver<Event>, deadline: Instant, what: &str) -> Step<Value> {
        loop {
            match self.next_event(rx, deadline, what)? {
                Event::Progress(_) => {}
                Event::Done(result) => return result.map_err(|e| failed(format!("{what}: {e}"))),
            }
        }
    }

    /// The next event on `rx`, watching the signal flag, the children and
    /// the deadline.
    fn next_event(&mut self, rx: &Receiver<Event>, deadline: Instant, what: &str) -> Step<Event> {
        loop {
            self.check_stop()?;
            self.check_children()?;
            if Instant::now() >= deadline {
                return Err(failed(format!("{what} is taking too long; giving up")));
            }
            match rx.recv_timeout(POLL) {
                Ok(event) => return Ok(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(failed(format!("{what}: the request ended without a reply")));
                }
            }
        }
    }

    /// Waits until the tracker, asked through the downloader, lists the
    /// file with every seeder.
    fn wait_for_seeders(&mut self, downloader: &Peer, file: &FileReport) -> Step<()> {
        let deadline = Instant::now() + CATALOG_TIMEOUT;
        loop {
            let rx = call_in_background(&downloader.client, ControlRequest::List)?;
            let seen = match self.next_event(&rx, deadline, "waiting for the catalog")? {
                Event::Done(Ok(v)) => seeders_listed(&v, file),
                // The downloader may not have its tracker session yet.
                _ => 0,
            };
            if seen >= SEEDERS as u32 {
                say(format_args!(
                    "  the tracker lists {FILE_NAME} with {seen} seeders"
                ));
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "the tracker lists {seen} seeder(s) of {FILE_NAME} after {} s, not {SEEDERS}",
                    CATALOG_TIMEOUT.as_secs()
                )));
            }
            self.pause(POLL)?;
        }
    }

    fn pause(&self, d: Duration) -> Step<()> {
        thread::sleep(d);
        self.check_stop()
    }

    /// Downloads the file into the downloader's directory, showing the
    /// progress bar; prints the time and rate.
    fn download(&mut self, downloader: &Peer, file: &FileReport, size: u64) -> Step<FileReport> {
        say(format_args!(
            "downloading {FILE_NAME} to {} from {SEEDERS} seeders at once...",
            downloader.name
        ));
        let request = ControlRequest::Get {
            target: to_hex(&file.info_hash),
            out_dir: Some(downloader.dir.clone()),
            only: Vec::new(),
            peers: Vec::new(),
        };
        let started = Instant::now();
        let rx = call_in_background(&downloader.client, request)?;
        let mut view = ProgressView::new(std::io::stderr().is_terminal());
        let result = self.follow(&rx, budget(size), &mut view);
        view.clear();
        let got = result?;
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        say(format_args!(
            "  downloaded {} in {secs:.2} s: {}/s",
            size_text(got.length),
            human_bytes((got.length as f64 / secs) as u64)
        ));
        Ok(got)
    }

    /// Shows the progress events on `rx` until the `done` reply.
    fn follow(
        &mut self,
        rx: &Receiver<Event>,
        budget: Duration,
        view: &mut ProgressView,
    ) -> Step<FileReport> {
        let deadline = Instant::now() + budget;
        loop {
            match self.next_event(rx, deadline, "the download")? {
                Event::Progress(p) => view.update(&p),
                Event::Done(Ok(v)) => {
                    return file_of(&v).map_err(|e| call_failed("downloader", &e));
                }
                Event::Done(Err(e)) => return Err(call_failed("downloader", &e)),
            }
        }
    }

    fn verify(&self, source: &Path, copy: &Path) -> Step<()> {
        match compare_files(source, copy, &self.stop)? {
            None => {
                say("verified: identical to the source, byte for byte");
                Ok(())
            }
            Some(offset) => Err(failed(format!(
                "{} differs from {} at byte {offset}",
                copy.display(),
                source.display()
            ))),
        }
    }

    /// Stops every process and removes the directory; says what failed.
    fn cleanup(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !self.procs.is_empty() {
            let (n, started) = (self.procs.len(), Instant::now());
            say(format_args!("stopping {n} processes (SIGTERM)..."));
            problems.extend(self.stop_processes());
            say(format_args!(
                "  stopped in {:.2} s",
                started.elapsed().as_secs_f64()
            ));
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            match dir.remove() {
                Ok(()) => say(format_args!("removed {}", path.display())),
                Err(e) => problems.push(format!("cannot remove {}: {e}", path.display())),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// SIGTERM to all, then wait for each until a shared deadline; SIGKILL
    /// for those still running.
    fn stop_processes(&mut self) -> Vec<String> {
        for p in self.procs.iter_mut().rev() {
            p.guard.terminate();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut problems = Vec::new();
        for p in self.procs.iter_mut().rev() {
            match p.guard.reap_by(deadline) {
                Ok(Stopped::Exited(_)) => {}
                Ok(Stopped::Killed(_)) => say(format_args!(
                    "  {} (pid {}) ignored SIGTERM for {} s; killed it",
                    p.name(),
                    p.pid(),
                    STOP_TIMEOUT.as_secs()
                )),
                Err(e) => {
                    let (name, pid) = (p.name(), p.pid());
                    problems.push(format!("cannot stop {name} (pid {pid}): {e}"));
                }
            }
        }
        self.procs.clear();
        problems
    }
}

impl Drop for Demo {
    /// A safety net (a panic): `run` cleans up explicitly.
    fn drop(&mut self) {
        let _ = self.cleanup();
    }
}

fn peer_names() -> Vec<String> {
    let mut names: Vec<String> = (1..=SEEDERS).map(|i| format!("seeder{i}")).collect();
    names.push("downloader".to_owned());
    names
}

fn peer_args(tracker: SocketAddr, dir: &Path, http: Option<SocketAddr>) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--tracker", &tracker.to_string()]
        .into_iter()
        .chain(["--listen", "127.0.0.1:0", "--log-level", "warn", "--dir"])
        .map(OsString::from)
        .collect();
    args.push(dir.as_os_str().to_owned());
    if let Some(addr) = http {
        args.push("--http".into());
        args.push(addr.to_string().into());
    }
    args
}

/// `http://ADDR/`, with a loopback name for an unspecified address (the
/// page is reachable there too).
fn page_url(addr: SocketAddr) -> String {
    let shown = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        a => a,
    };
    format!("http://{shown}/")
}

/// One line read from stdin on a thread of its own: the receiver gets
/// `()` then (or is disconnected at EOF or on an error).
fn stdin_line() -> Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("demo-stdin".into())
        .spawn(move || {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                let _ = tx.send(());
            }
        });
    // Without the thread the receiver is disconnected: the demo goes on.
    drop(spawned);
    rx
}

/// Time allowed for hashing or downloading `size` bytes: generous, so that
/// only a stuck daemon hits it.
fn budget(size: u64) -> Duration {
    Duration::from_secs(60 + size / 5_000_000)
}

fn call_failed(who: &str, e: &CallError) -> Failure {
    failed(format!("{who}: {e}"))
}

/// The three seeders must describe the same file.
fn same_file(reports: Vec<FileReport>) -> Step<FileReport> {
    let mut reports = reports.into_iter();
    let first = reports
        .next()
        .ok_or_else(|| failed("no seeder shared the file"))?;
    if let Some(other) = reports.find(|r| r.info_hash != first.info_hash) {
        return Err(failed(format!(
            "the seeders' copies hash differently ({} and {})",
            to_hex(&first.info_hash),
            to_hex(&other.info_hash)
        )));
    }
    Ok(first)
}

/// One row per seeder (even one that sent nothing), then any address the
/// downloader got bytes from that is no seeder's listening address.
fn peer_table(got: &FileReport, seeders: &[Peer]) -> String {
    let row = |name: &str, addr: String, bytes: u64| {
        let share = match got.length {
            0 => 0.0,
            n => bytes as f64 * 100.0 / n as f64,
        };
        vec![
            name.to_owned(),
            addr,
            bytes.to_string(),
            human_bytes(bytes),
            format!("{share:.1}%"),
        ]
    };
    let from = |addr: SocketAddr| {
        got.from_peers
            .iter()
            .filter(|p| p.addr == addr)
            .map(|p| p.bytes)
            .sum::<u64>()
    };
    let mut rows: Vec<Vec<String>> = seeders
        .iter()
        .map(|s| row(&s.name, s.addr.to_string(), from(s.addr)))
        .collect();
    for p in &got.from_peers {
        if !seeders.iter().any(|s| s.addr == p.addr) {
            rows.push(row("other", p.addr.to_string(), p.bytes));
        }
    }
    let text = table(
        &["PEER", "ADDRESS", "BYTES", "SIZE", "SHARE"],
        &[false, false, true, true, true],
        rows,
    );
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ------------------------------------------------------- control requests

/// Sends `request` from a thread, so that the caller can keep watching
/// the signal flag; its events arrive on the receiver.
fn call_in_background(client: &Client, request: ControlRequest) -> Step<Receiver<Event>> {
    let (tx, rx) = mpsc::channel();
    client
        .call_on_thread(request, move |event| {
            let _ = tx.send(event);
        })
        .map_err(|e| failed(format!("cannot start a thread: {e}")))?;
    Ok(rx)
}

// ------------------------------------------------------------- processes

/// A child daemon.
struct Proc {
    guard: Guard,
    /// Its stderr.
    log: PathBuf,
    /// Its stdout, line by line.
    lines: Lines,
}

impl Proc {
    fn name(&self) -> &str {
        self.guard.name()
    }

    fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// The end of its log, to explain a failure.
    fn log_tail(&self) -> String {
        sta_kit::files::log_tail(&self.log, "  ")
    }
}

/// `sta-trackerd` and `sta-peerd` next to the running `sta`. Under
/// `cargo run --bin sta`, which builds only `sta`, they are built first, so
/// that the README's one command works on a fresh checkout.
fn find_binaries() -> Step<(PathBuf, PathBuf)> {
    let exe = std::env::current_exe()
        .map_err(|e| failed(format!("cannot find the sta executable: {e}")))?;
    let paths = (
        exe.with_file_name("sta-trackerd"),
        exe.with_file_name("sta-peerd"),
    );
    if !(paths.0.is_file() && paths.1.is_file()) {
        build_daemons(&exe)?;
    }
    for path in [&paths.0, &paths.1] {
        if !path.is_file() {
            return Err(failed(format!(
                "{} is missing; build the daemons with `cargo build --release` \
                 (or run `cargo run --release --bin sta -- demo`)",
                path.display()
            )));
        }
    }
    Ok(paths)
}

/// Builds the daemons with the cargo that runs us (`cargo run` sets
/// `CARGO` and `CARGO_MANIFEST_DIR`), in the profile of our own build.
fn build_daemons(exe: &Path) -> Step<()> {
    let (Some(cargo), Some(manifest)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Ok(()); // not under cargo: find_binaries says what to do
    };
    let release = exe.parent().and_then(Path::file_name) == Some(std::ffi::OsStr::new("release"));
    say("building sta-trackerd and sta-peerd...");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(manifest)
        .args(["build", "--bin", "sta-trackerd", "--bin", "sta-peerd"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .map_err(|e| failed(format!("cannot run cargo to build the daemons: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(format!("building the daemons failed ({status})")))
    }
}

// ----------------------------------------------------------------- files

/// `/dev/shm` when it exists and has `needed` bytes free, else the system
/// temporary directory if it has (or if its room cannot be known).
fn pick_base(needed: u64) -> Step<PathBuf> {
    let shm = Path::new("/dev/shm");
    let shm_free = free_bytes(shm).filter(|_| shm.is_dir());
    if shm_free.is_some_and(|free| free >= needed) {
        return Ok(shm.to_path_buf());
    }
    let tmp = std::env::temp_dir();
    match free_bytes(&tmp) {
        Some(free) if free < needed => {
            let shm_note = shm_free.map_or(String::new(), |f| {
                format!(", {} in {}", human_bytes(f), shm.display())
            });
            Err(failed(format!(
                "not enough room: the demo needs {} (four copies of the file) and has {} in {}{shm_note}; \
                 try a smaller --size",
                human_bytes(needed),
                human_bytes(free),
                tmp.display(),
            )))
        }
        _ => Ok(tmp),
    }
}

/// Writes the same `size` pseudo-random bytes to every path.
fn write_copies(paths: &[PathBuf], size: u64, stop: &AtomicBool) -> Step<()> {
    let mut files: Vec<File> = paths
        .iter()
        .map(File::create_new)
        .collect::<Result<_, _>>()
        .map_err(|e| failed(format!("cannot create {FILE_NAME}: {e}")))?;
    let mut rng = Prng::from_entropy();
    write_random(&mut files, size, &mut rng, || stop.load(Ordering::SeqCst)).map_err(|e| match e {
        WriteError::Stopped => Failure::Interrupted,
        WriteError::Io { index, error } => {
            failed(format!("cannot write {}: {error}", paths[index].display()))
        }
    })
}

/// The first offset where the files differ, or `None` when identical.
fn compare_files(a: &Path, b: &Path, stop: &AtomicBool) -> Step<Option<u64>> {
    first_difference(a, b, stop).map_err(|e| match e {
        CompareError::Interrupted => Failure::Interrupted,
        CompareError::Io(message) => failed(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_parse() {
        let args = |a: &[&str]| parse_args(a.iter().map(OsString::from).collect());
        let size = |size| Ok(Some(Options { size, http: None }));
        assert_eq!(args(&[]), size(DEFAULT_SIZE));
        assert_eq!(args(&["--size", "8M"]), size(8 << 20));
        assert_eq!(args(&["--help"]), Ok(None));
        assert!(args(&["--size", "x"]).is_err());
        assert!(args(&["extra"]).unwrap_err().contains("extra"));
        let http = args(&["--http", "8080"]).unwrap().unwrap().http;
        assert_eq!(http, Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
        let http = args(&["--http", "0.0.0.0:0"]).unwrap().unwrap().http;
        assert_eq!(http.map(page_url), Some("http://127.0.0.1:0/".to_owned()));
        assert!(args(&["--http", "x"]).unwrap_err().contains("--http"));
    }
}
