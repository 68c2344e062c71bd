//! `sta-bench swarm --kill-trackers`: swarm (a) (1 seed + 7 leechers, 50
//! Mbit/s up each) with three `sta-trackerd` on the unshaped h0 (ports
//! 6969, 6970, 6971; every `sta-peerd` is given all three). Runs with no
//! tracker killed alternate with runs in which each tracker in turn is
//! SIGKILLed (by pid) during the race, at 15 %, 40 % and 65 % of F/u, and
//! started again on the same address [`DOWN_FOR`] later: never two down at
//! once, each one killed once. The figure is the last leecher's time, kill
//! against no kill (issue 14: at most 1.1 x).
//!
//! Also measured: how long a restarted tracker takes to learn the catalog
//! back, i.e. until its `--http` API (`/api/v1/swarms/HASH`) lists the
//! file with every peer of the swarm (the seed and the 7 leechers), from
//! the moment it says it is listening. The API is reachable only inside
//! the namespaces: a probe thread joins h0's network namespace (setns
//! moves only the calling thread) and polls it over HTTP.

use crate::Failure;
use crate::harness::{Bench, remove_dir};
use crate::hosts::Hosts;
use crate::swarm::{Ctx, Figures, SWARM_NAME, Setup};
use crate::swarm_sta::StaRun;
use crate::{STARTUP, Step, failed, say};
use sta::cli::client::{Client, Event, seeders_listed};
use sta::cli::format::size_text;
use sta::control::{ControlRequest, FileReport};
use sta::meta::info::to_hex;
use sta_kit::procfs::loadavg;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Trackers of a run, all on h0.
pub const TRACKERS: usize = 3;
/// When each tracker is killed, in F/u (tracker i at `KILL_AT[i]`).
const KILL_AT: [f64; TRACKERS] = [0.15, 0.40, 0.65];
/// How long a killed tracker stays down before it is started again (the
/// kills are 0.25 x F/u = 2.7 s apart at 64 MiB: never two down at once).
const DOWN_FOR: Duration = Duration::from_secs(2);
/// A restarted tracker that has not listed every peer after this long has
/// not learned the catalog back.
const RELEARN_LIMIT: Duration = Duration::from_secs(60);
/// When the `list` of a down tracker's window is sent, after the kill.
const LIST_AFTER: Duration = Duration::from_millis(500);
const PROBE_POLL: Duration = Duration::from_millis(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The STA (and BEP 15) port of tracker 0; tracker i is on this + i.
const TRACKER_PORT0: u16 = 6969;
/// The `--http` API port of tracker 0; tracker i is on this + i.
const API_PORT0: u16 = 8069;

fn tracker_addr(i: usize) -> String {
    format!("{}:{}", Hosts::ip(0), TRACKER_PORT0 + i as u16)
}

fn api_addr(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Hosts::ip(0), API_PORT0 + i as u16))
}

/// One kill of a run; seconds after the first `get` unless said.
#[derive(Clone, Debug, Default)]
pub struct Kill {
    pub tracker: usize,
    pub at: Duration,
    pub killed: Option<f64>,
    /// The restarted tracker said it was listening.
    pub back: Option<f64>,
    /// Seconds after `back` until its API listed the file at all, and with
    /// every peer.
    pub listed: Option<f64>,
    pub relearned: Option<f64>,
    /// The most holders it listed (when it never listed them all).
    pub most: usize,
    /// Its probe has answered.
    pub probed: bool,
    /// A `list` sent to a leecher [`LIST_AFTER`] after the kill (the
    /// tracker still down): seconds it took, and whether it listed the
    /// file with a seeder (or its error).
    pub list: Option<(f64, Result<bool, String>)>,
    list_sent: bool,
}

/// What a probe thread found.
struct Probe {
    /// Index into the kills, or `None` for the check before the race.
    kill: Option<usize>,
    tracker: usize,
    first: Option<f64>,
    all: Option<f64>,
    most: usize,
    error: Option<String>,
}

/// The trackers of a run and, in a kill run, the plan and what happened.
pub struct Killer {
    /// `self.procs` id of each tracker's current process.
    ids: Vec<Option<usize>>,
    tag: String,
    namespace: PathBuf,
    pub kills: Vec<Kill>,
    hash: String,
    /// Holders a restarted tracker must list: the seed and the leechers.
    peers: usize,
    tx: Sender<Probe>,
    rx: Receiver<Probe>,
    /// A leecher's control client and the file, for the `list`s.
    lister: Option<(Client, FileReport)>,
    list_sent_at: Vec<Option<Instant>>,
    list_tx: Sender<(usize, Instant, Event)>,
    list_rx: Receiver<(usize, Instant, Event)>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Killer {
    fn new(kill: bool, setup: &Setup, size: u64, hosts: &Hosts, tag: &str) -> Killer {
        let (tx, rx) = mpsc::channel();
        let (list_tx, list_rx) = mpsc::channel();
        let kills = if kill {
            (0..TRACKERS)
                .map(|i| Kill {
                    tracker: i,
                    at: Duration::from_secs_f64(KILL_AT[i] * setup.f_over_u(size)),
                    ..Kill::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        Killer {
            ids: vec![None; TRACKERS],
            tag: tag.to_owned(),
            namespace: PathBuf::from("/run/netns").join(hosts.namespace(0)),
            kills,
            hash: String::new(),
            peers: setup.leechers() + 1,
            tx,
            rx,
            lister: None,
            list_sent_at: vec![None; TRACKERS],
            list_tx,
            list_rx,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }

    /// A thread that polls tracker `tracker`'s API until it lists `want`
    /// holders of the file (or [`RELEARN_LIMIT`]), timed from `from`.
    fn probe(&mut self, kill: Option<usize>, tracker: usize, want: usize, from: Instant) {
        let ns = self.namespace.clone();
        let addr = api_addr(tracker);
        let path = format!("/api/v1/swarms/{}", self.hash);
        let (tx, stop) = (self.tx.clone(), Arc::clone(&self.stop));
        let spawned = thread::Builder::new()
            .name(format!("probe-t{tracker}"))
            .spawn(move || {
                let mut p = Probe {
                    kill,
                    tracker,
                    first: None,
                    all: None,
                    most: 0,
                    error: None,
                };
                if let Err(e) = poll_holders(&ns, addr, &path, want, from, &stop, &mut p) {
                    p.error = Some(e);
                }
                let _ = tx.send(p);
            });
        match spawned {
            Ok(h) => self.threads.push(h),
            Err(e) => {
                let _ = self.tx.send(Probe {
                    kill,
                    tracker,
                    first: None,
                    all: None,
                    most: 0,
                    error: Some(format!("cannot start a probe thread: {e}")),
                });
            }
        }
    }

    /// Stops and joins the probe threads.
    fn stop_probes(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }

    fn take(&mut self, p: Probe) -> Result<(), String> {
        if let Some(e) = p.error {
            return Err(format!("probing tracker {}: {e}", p.tracker));
        }
        if let Some(k) = p.kill.and_then(|i| self.kills.get_mut(i)) {
            k.listed = p.first;
            k.relearned = p.all;
            k.most = p.most;
            k.probed = true;
        }
        Ok(())
    }

    /// The `list` replies.
    fn take_lists(&mut self) {
        while let Ok((n, at, ev)) = self.list_rx.try_recv() {
            let Some(k) = self.kills.get_mut(n) else {
                continue;
            };
            match ev {
                Event::Progress(_) => {}
                Event::Done(r) => {
                    let took = self.list_sent_at[n]
                        .map_or(f64::NAN, |s| at.duration_since(s).as_secs_f64());
                    let file = self.lister.as_ref().map(|(_, f)| f);
                    let outcome = match (r, file) {
                        (Ok(v), Some(f)) => Ok(seeders_listed(&v, f) > 0),
                        (Ok(_), None) => Ok(false),
                        (Err(e), _) => Err(e.to_string()),
                    };
                    k.list = Some((took, outcome));
                }
            }
        }
    }

    fn down(&self) -> bool {
        self.ids.iter().any(Option::is_none)
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        self.stop_probes();
    }
}

/// Polls `GET path` on `addr` from inside the network namespace `ns` until
/// the swarm there has `want` STA holders or the limit.
fn poll_holders(
    ns: &std::path::Path,
    addr: SocketAddr,
    path: &str,
    want: usize,
    from: Instant,
    stop: &AtomicBool,
    p: &mut Probe,
) -> Result<(), String> {
    let f = File::open(ns).map_err(|e| format!("{}: {e}", ns.display()))?;
    // SAFETY: a valid descriptor of a network namespace; setns changes
    // only this thread's namespace, and this thread makes no other use of
    // the network than the probes below.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns: {}", std::io::Error::last_os_error()));
    }
    let end = from + RELEARN_LIMIT;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        // A refused or failed request is a tracker not (yet) there.
        if let Ok(n) = holders(addr, path) {
            let at = from.elapsed().as_secs_f64();
            p.most = p.most.max(n);
            if n > 0 && p.first.is_none() {
                p.first = Some(at);
            }
            if n >= want {
                p.all = Some(at);
                return Ok(());
            }
        }
        thread::sleep(PROBE_POLL);
    }
    Ok(())
}

/// STA holders of the swarm at `path` (0 on a 404: nobody holds it).
fn holders(addr: SocketAddr, path: &str) -> Result<usize, String> {
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(PROBE_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let status = head.split(' ').nth(1).unwrap_or("");
    match status {
        "404" => Ok(0),
        "200" => {
            let v: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
            Ok(v["holders"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|h| h["kind"] == "sta").count()))
        }
        other => Err(format!("HTTP {other}")),
    }
}

/// One run's outcome.
struct KillRecord {
    kill: bool,
    run: usize,
    outcome: Result<(Figures, Vec<Kill>), String>,
}

impl Bench {
    /// The whole tracker-kill benchmark.
    pub fn kill_bench(&mut self, size: u64, runs: usize) -> Step<()> {
        let started = Instant::now();
        let setup = Setup::of('a');
        say("sta-bench swarm --kill-trackers: 3 trackers, each killed in turn, vs none killed");
        crate::harness::machine_lines();
        say(format_args!("load:    {}", loadavg()));
        say(format_args!(
            "work:    {} file, 512 KiB pieces, {runs} run(s) of each, swarm (a): {}",
            size_text(size),
            setup.title
        ));
        self.swarm_preflight()?;
        let work = self.make_work_dir()?;
        let src_dir = work.join("src");
        crate::harness::mkdir(&src_dir)?;
        let src = src_dir.join(SWARM_NAME);
        self.generate(&src, size)?;
        let ctx = Ctx {
            torrent: src.clone(),
            src,
            size,
        };
        let fu = setup.f_over_u(size);
        say(format_args!(
            "trackers: {}; every sta-peerd is given all three",
            (0..TRACKERS)
                .map(tracker_addr)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        say(format_args!(
            "kills:   tracker i SIGKILLed at {} x F/u (F/u = {fu:.2} s), restarted on its \
             address {} s later",
            KILL_AT.map(|x| format!("{x:.2}")).join(", "),
            DOWN_FOR.as_secs()
        ));
        let mut records = Vec::new();
        for run in 1..=runs {
            for kill in [false, true] {
                let load = loadavg();
                let outcome = self.kill_run(&setup, kill, run, &ctx)?;
                let r = KillRecord { kill, run, outcome };
                say(format_args!(
                    "  {} [load before: {load}]",
                    record_line(&r, fu)
                ));
                records.push(r);
            }
        }
        say("");
        say(format_args!(
            "==== results ({:.0} s in all; load average now {}) ====",
            started.elapsed().as_secs_f64(),
            loadavg()
        ));
        say(kill_table(&records, fu));
        for r in &records {
            if let Err(m) = &r.outcome {
                let m = format!("{} run {}: {m}", mode(r.kill), r.run);
                say(format_args!("FAILED: {m}"));
                self.problems.push(m);
            }
        }
        Ok(())
    }

    /// One run on fresh hosts, as `one_run`: a failure is its outcome.
    fn kill_run(
        &mut self,
        setup: &Setup,
        kill: bool,
        run: usize,
        ctx: &Ctx,
    ) -> Step<Result<(Figures, Vec<Kill>), String>> {
        self.check_stop()?;
        let first = self.procs.len();
        let tag = format!("k{run}-{}", if kill { "kill" } else { "none" });
        let dir = self.fresh_dir(&tag)?;
        let prefix = format!("sta-{}-{tag}", std::process::id());
        let result = match Hosts::up(&prefix, &setup.rates) {
            Err(e) => Err(failed(format!("cannot make the emulated hosts: {e}"))),
            Ok(mut hosts) => {
                let mut killer = Killer::new(kill, setup, ctx.size, &hosts, &tag);
                let r = self.kill_swarm(setup, &hosts, ctx, &dir, &tag, &mut killer);
                killer.stop_probes();
                self.end_run(first, &mut hosts);
                r.map(|f| (f, killer.kills.clone()))
            }
        };
        if let Err(Failure::Failed(m)) = remove_dir(&dir) {
            self.problems.push(m);
        }
        match result {
            Ok(f) => Ok(Ok(f)),
            Err(Failure::Failed(m)) => Ok(Err(m)),
            Err(Failure::Interrupted) => Err(Failure::Interrupted),
        }
    }

    fn kill_swarm(
        &mut self,
        setup: &Setup,
        hosts: &Hosts,
        ctx: &Ctx,
        dir: &std::path::Path,
        tag: &str,
        killer: &mut Killer,
    ) -> Step<Figures> {
        for i in 0..TRACKERS {
            let id = self.start_tracker_on(hosts, i, tag)?;
            killer.ids[i] = Some(id);
        }
        let trackers: Vec<String> = (0..TRACKERS).map(tracker_addr).collect();
        let run = StaRun {
            setup,
            hosts,
            ctx,
            dir,
            tag,
            trackers: &trackers,
        };
        let figures = self.sta_swarm_with(&run, Some(killer))?;
        if let Some(k) = killer.kills.iter().find(|k| k.killed.is_none()) {
            return Err(failed(format!(
                "the race ended before tracker {} was killed",
                k.tracker
            )));
        }
        self.kill_finish(killer)?;
        Ok(figures)
    }

    /// `sta-trackerd` number `i` on h0, with its API; returns its id once
    /// it listens.
    fn start_tracker_on(&mut self, hosts: &Hosts, i: usize, tag: &str) -> Step<usize> {
        let api = api_addr(i).to_string();
        let args = [
            "--listen",
            &tracker_addr(i),
            "--http",
            &api,
            "--log-level",
            "warn",
        ]
        .map(OsString::from);
        let trackerd = self.trackerd.clone();
        let name = format!("{tag}-tracker{i}-{}", self.procs.len());
        let id = self.spawn_on(hosts, 0, &name, &trackerd, &args)?;
        let deadline = Instant::now() + STARTUP;
        self.wait_line(id, "listening on ", deadline)?;
        self.wait_line(id, "api listening on ", deadline)?;
        Ok(id)
    }

    /// Before the race: every tracker's API lists the file (its seed).
    pub fn kill_ready(&mut self, k: &mut Killer, lister: &Client, report: &FileReport) -> Step<()> {
        k.hash = to_hex(&report.info_hash);
        k.lister = Some((lister.clone(), report.clone()));
        let now = Instant::now();
        for i in 0..TRACKERS {
            k.probe(None, i, 1, now);
        }
        let deadline = now + RELEARN_LIMIT + Duration::from_secs(5);
        let mut seen = 0;
        while seen < TRACKERS {
            self.check_children()?;
            match k.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(p) => {
                    let (t, ok) = (p.tracker, p.all.is_some());
                    k.take(p).map_err(failed)?;
                    if !ok {
                        return Err(failed(format!(
                            "tracker {t}'s API does not list the shared file"
                        )));
                    }
                    seen += 1;
                }
                Err(_) if Instant::now() >= deadline => {
                    return Err(failed("the trackers' APIs did not answer in time"));
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// In the race loop: kills and restarts as planned; takes the probes'
    /// findings.
    pub fn kill_step(&mut self, k: &mut Killer, hosts: &Hosts, t0: Instant) -> Step<()> {
        while let Ok(p) = k.rx.try_recv() {
            k.take(p).map_err(failed)?;
        }
        k.take_lists();
        let now = t0.elapsed();
        for n in 0..k.kills.len() {
            let kill = k.kills[n].clone();
            let i = kill.tracker;
            match (kill.killed, kill.back) {
                (None, _) if now >= kill.at && !k.down() => {
                    let id = k.ids[i]
                        .take()
                        .ok_or_else(|| failed("internal: no tracker"))?;
                    let mut p = self
                        .procs
                        .get_mut(id)
                        .and_then(Option::take)
                        .ok_or_else(|| failed("internal: tracker already stopped"))?;
                    let pid = p.pid();
                    p.guard.kill().map_err(|e| {
                        failed(format!("cannot SIGKILL tracker {i} (pid {pid}): {e}"))
                    })?;
                    let at = t0.elapsed().as_secs_f64();
                    k.kills[n].killed = Some(at);
                    say(format_args!(
                        "    tracker {i} (pid {pid}) SIGKILLed at {at:.2} s"
                    ));
                }
                (Some(at), None)
                    if !kill.list_sent && now.as_secs_f64() >= at + LIST_AFTER.as_secs_f64() =>
                {
                    k.kills[n].list_sent = true;
                    if let Some((client, _)) = &k.lister {
                        let tx = k.list_tx.clone();
                        k.list_sent_at[n] = Some(Instant::now());
                        client
                            .call_on_thread(ControlRequest::List, move |ev| {
                                let _ = tx.send((n, Instant::now(), ev));
                            })
                            .map_err(|e| failed(format!("cannot start a thread: {e}")))?;
                    }
                }
                (Some(at), None) if now.as_secs_f64() >= at + DOWN_FOR.as_secs_f64() => {
                    let tag = k.tag.clone();
                    let id = self.start_tracker_on(hosts, i, &tag)?;
                    let ready = Instant::now();
                    k.ids[i] = Some(id);
                    let back = ready.duration_since(t0).as_secs_f64();
                    k.kills[n].back = Some(back);
                    let want = k.peers;
                    k.probe(Some(n), i, want, ready);
                    say(format_args!(
                        "    tracker {i} back at {back:.2} s (pid {})",
                        self.proc(id)?.pid()
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// After the race: every restarted tracker's probe has answered.
    fn kill_finish(&mut self, k: &mut Killer) -> Step<()> {
        let deadline = Instant::now() + RELEARN_LIMIT + Duration::from_secs(5);
        while k
            .kills
            .iter()
            .any(|x| !x.probed || (x.list_sent && x.list.is_none()))
        {
            self.check_children()?;
            k.take_lists();
            match k.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(p) => k.take(p).map_err(failed)?,
                Err(_) if Instant::now() >= deadline => break,
                Err(_) => {}
            }
        }
        k.take_lists();
        for x in &k.kills {
            match &x.list {
                Some((_, Ok(true))) => {}
                Some((_, Ok(false))) => {
                    return Err(failed(format!(
                        "with tracker {} down, `list` did not show the file with a seeder",
                        x.tracker
                    )));
                }
                Some((_, Err(e))) => {
                    return Err(failed(format!(
                        "with tracker {} down, `list` failed: {e}",
                        x.tracker
                    )));
                }
                None => {
                    return Err(failed(format!(
                        "with tracker {} down, `list` did not answer",
                        x.tracker
                    )));
                }
            }
        }
        if let Some(x) = k.kills.iter().find(|x| x.relearned.is_none()) {
            return Err(failed(format!(
                "restarted tracker {} listed {} of {} peers after {} s",
                x.tracker,
                x.most,
                k.peers,
                RELEARN_LIMIT.as_secs()
            )));
        }
        Ok(())
    }
}

fn mode(kill: bool) -> &'static str {
    if kill { "kill" } else { "no kill" }
}

fn record_line(r: &KillRecord, fu: f64) -> String {
    let head = format!("run {} {:<8}", r.run, format!("{}:", mode(r.kill)));
    match &r.outcome {
        Err(m) => format!("{head} FAILED: {m}"),
        Ok((f, kills)) => {
            let mut s = format!(
                "{head} last leecher {:.2} s ({:.2} x F/u); leechers {}",
                f.last(),
                f.last() / fu,
                f.done
                    .iter()
                    .map(|d| format!("{d:.1}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            for k in kills {
                let _ = write!(
                    s,
                    "; t{} killed {:.2} back {:.2}, all {} peers listed after {:.2} s, `list` \
                     while down {:.3} s",
                    k.tracker,
                    k.killed.unwrap_or(f64::NAN),
                    k.back.unwrap_or(f64::NAN),
                    k.most,
                    k.relearned.unwrap_or(f64::NAN),
                    k.list.as_ref().map_or(f64::NAN, |(t, _)| *t)
                );
            }
            s
        }
    }
}

/// The median, `None` for no values.
fn median(v: Vec<f64>) -> Option<f64> {
    (!v.is_empty()).then(|| crate::tables::median(v))
}

fn kill_table(records: &[KillRecord], fu: f64) -> String {
    let last = |kill: bool| -> Vec<f64> {
        records
            .iter()
            .filter(|r| r.kill == kill)
            .filter_map(|r| r.outcome.as_ref().ok())
            .map(|(f, _)| f.last())
            .collect()
    };
    let (none, kill) = (last(false), last(true));
    let ok_of = |kill: bool| records.iter().filter(|r| r.kill == kill).count();
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "last leecher, s (median of the runs that succeeded; F/u = {fu:.2} s)"
    );
    let _ = writeln!(s, "  {:<26} {:>8} {:>8}   runs", "", "median", "x F/u");
    let (mn, mk) = (median(none.clone()), median(kill.clone()));
    for (name, v, m, n) in [
        ("no tracker killed", &none, mn, ok_of(false)),
        ("each of 3 killed in turn", &kill, mk, ok_of(true)),
    ] {
        let _ = writeln!(
            s,
            "  {name:<26} {:>8} {:>8}   {} ({} of {n} ok)",
            m.map_or("-".into(), |x| format!("{x:.2}")),
            m.map_or("-".into(), |x| format!("{:.2}", x / fu)),
            fmt(v),
            v.len()
        );
    }
    if let (Some(a), Some(b)) = (mn, mk) {
        let ratio = b / a;
        let _ = writeln!(
            s,
            "  ratio kill / no kill: {ratio:.3} (target at most 1.100: {})",
            if ratio <= 1.1 { "met" } else { "NOT met" }
        );
    }
    let relearn: Vec<f64> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok())
        .flat_map(|(_, k)| k.iter().filter_map(|x| x.relearned))
        .collect();
    let listed: Vec<f64> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok())
        .flat_map(|(_, k)| k.iter().filter_map(|x| x.listed))
        .collect();
    if let Some(m) = median(relearn.clone()) {
        let lo = relearn.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = relearn.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "restarted tracker, from `listening` until its API lists the file with all 8 peers: \
             median {m:.2} s, {lo:.2}-{hi:.2} s over {} restarts",
            relearn.len()
        );
    }
    if let Some(m) = median(listed) {
        let _ = writeln!(s, "  (until it lists the file at all: median {m:.2} s)");
    }
    let lists: Vec<f64> = records
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok())
        .flat_map(|(_, k)| k.iter().filter_map(|x| x.list.as_ref().map(|(t, _)| *t)))
        .collect();
    if let Some(m) = median(lists.clone()) {
        let hi = lists.iter().copied().fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "`list` on a leecher {} ms after a kill (that tracker down): median {:.1} ms, \
             at most {:.1} ms over {} (each showed the file with a seeder)",
            LIST_AFTER.as_millis(),
            m * 1e3,
            hi * 1e3,
            lists.len()
        );
    }
    s
}
