//! The STA side of `sta-bench swarm`: `sta-trackerd` on h0, `sta-peerd`
//! on every other host, driven over their control sockets (Unix sockets
//! bound to a path, which network namespaces do not scope).

use crate::harness::{Bench, mkdir};
use crate::hosts::Hosts;
use crate::sta_peers::StaPeer;
use crate::swarm::{Ctx, Figures, RACE_POLL, Race, RaceEnd, SeedLeave, Setup};
use crate::swarm_kill::Killer;
use crate::{PIECE_SIZE, STARTUP, Step, failed, say};
use sta::cli::client::{Event, file_of};
use sta::control::{ControlRequest, FileReport, StatusReport};
use sta::meta::info::to_hex;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// What a run of STA peers needs to start them.
pub struct StaRun<'a> {
    pub setup: &'a Setup,
    pub hosts: &'a Hosts,
    pub ctx: &'a Ctx,
    pub dir: &'a Path,
    pub tag: &'a str,
    /// `ADDR:PORT` of every tracker, each given to every peer.
    pub trackers: &'a [String],
}

/// A `get`'s events: (leecher index, when the event came, the event).
type Stamped = (usize, Instant, Event);

impl Bench {
    /// One STA run: tracker, seed (shares the source), leechers ready and
    /// connected to the tracker, then the race.
    pub fn sta_swarm(
        &mut self,
        setup: &Setup,
        hosts: &Hosts,
        ctx: &Ctx,
        dir: &Path,
        tag: &str,
    ) -> Step<Figures> {
        self.swarm_tracker(hosts, tag)?;
        let trackers = [Hosts::tracker_addr()];
        let run = StaRun {
            setup,
            hosts,
            ctx,
            dir,
            tag,
            trackers: &trackers,
        };
        self.sta_swarm_with(&run, None)
    }

    /// The STA run of `run`, its trackers already up: seed (shares the
    /// source), leechers ready and connected to every tracker, then the
    /// race (with `killer`'s kills, if any); every copy is compared with
    /// the source.
    pub fn sta_swarm_with(
        &mut self,
        run: &StaRun,
        mut killer: Option<&mut Killer>,
    ) -> Step<Figures> {
        let (setup, hosts, ctx) = (run.setup, run.hosts, run.ctx);
        let seed = self.swarm_peerd(run, 1)?;
        let report = self.share(&seed, &ctx.src)?;
        let mut peers = Vec::new();
        for k in 0..setup.leechers() {
            peers.push(self.swarm_peerd(run, k + 2)?);
        }
        for p in peers.iter().chain([&seed]) {
            self.wait_tracker_session(p, run.trackers.len())?;
        }
        // The tracker is reachable only inside the namespaces: its
        // catalog is read through a leecher.
        let first = peers.first().ok_or_else(|| failed("no leecher"))?;
        self.wait_listed(first, &report, 1)?;
        if let Some(k) = killer.as_deref_mut() {
            self.kill_ready(k, &first.client, &report)?;
        }
        let (end, paths) = self.sta_race(setup, ctx, &seed, &report, &peers, hosts, killer)?;
        for (k, path) in paths.iter().enumerate() {
            self.verify(&ctx.src, path)
                .map_err(|e| in_leecher(e, k + 2))?;
        }
        Ok(end.figures())
    }

    /// `sta-peerd` on `host`, listening on its host's address, given every
    /// tracker of the run; returns once it prints its control socket.
    fn swarm_peerd(&mut self, run: &StaRun, host: usize) -> Step<StaPeer> {
        let pdir = run.dir.join(format!("sta-h{host}"));
        mkdir(&pdir)?;
        let piece = PIECE_SIZE.to_string();
        let mut args: Vec<OsString> = vec!["--listen".into(), Hosts::peer_addr(host).into()];
        for t in run.trackers {
            args.push("--tracker".into());
            args.push(t.into());
        }
        args.extend(["--piece-size", &piece, "--log-level", "warn", "--dir"].map(OsString::from));
        args.push(pdir.clone().into_os_string());
        let peerd = self.peerd.clone();
        let name = format!("{}-h{host}", run.tag);
        let id = self.spawn_on(run.hosts, host, &name, &peerd, &args)?;
        self.peerd_ready(id, pdir, Instant::now() + STARTUP)
    }

    /// Until `peer` has its session with each of its `trackers` trackers.
    fn wait_tracker_session(&mut self, peer: &StaPeer, trackers: usize) -> Step<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let v = self.request(peer, ControlRequest::Status, "status")?;
            let st = StatusReport::from_json(&v).map_err(|e| failed(format!("status: {e}")))?;
            let up = st.trackers.iter().filter(|t| t.connected).count();
            if st.tracker_connected && up >= trackers {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "a sta-peerd has sessions with {up} of its {trackers} tracker(s) after {} s",
                    STARTUP.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(50));
            self.check_stop()?;
        }
    }

    /// Sends `get` to leecher `k`; its events arrive on `tx`, stamped.
    fn send_get(
        &self,
        peers: &[StaPeer],
        k: usize,
        target: &str,
        tx: &Sender<Stamped>,
    ) -> Step<()> {
        let peer = peers
            .get(k)
            .ok_or_else(|| failed("internal: no such leecher"))?;
        let get = ControlRequest::Get {
            target: target.to_owned(),
            out_dir: Some(peer.dir.clone()),
            only: Vec::new(),
            peers: Vec::new(),
        };
        let tx = tx.clone();
        peer.client
            .call_on_thread(get, move |ev| {
                let _ = tx.send((k, Instant::now(), ev));
            })
            .map_err(|e| failed(format!("cannot start a thread: {e}")))
    }

    /// The race: `get` to every leecher (the late ones later), until each
    /// is done or the deadline. Returns the figures and each leecher's
    /// file.
    #[allow(clippy::too_many_arguments)]
    fn sta_race(
        &mut self,
        setup: &Setup,
        ctx: &Ctx,
        seed: &StaPeer,
        report: &FileReport,
        peers: &[StaPeer],
        hosts: &Hosts,
        mut killer: Option<&mut Killer>,
    ) -> Step<(RaceEnd, Vec<PathBuf>)> {
        let target = to_hex(&report.info_hash);
        let (tx, rx) = mpsc::channel();
        let mut leave = SeedLeave::new(setup, ctx.size);
        let mut race = Race::start(setup, ctx.size);
        for k in (0..peers.len()).filter(|&k| !setup.is_late(k)) {
            self.send_get(peers, k, &target, &tx)?;
        }
        let mut paths: Vec<Option<PathBuf>> = vec![None; peers.len()];
        while !race.finished() {
            self.check_children()?;
            if race.late_due() {
                for k in (0..peers.len()).filter(|&k| setup.is_late(k)) {
                    self.send_get(peers, k, &target, &tx)?;
                }
            }
            if let Some(l) = leave.as_mut()
                && l.due()
            {
                self.maybe_stop_seed(seed, report, l, race.t0)?;
            }
            if let Some(k) = killer.as_deref_mut() {
                self.kill_step(k, hosts, race.t0)?;
            }
            match next_event(&rx)? {
                Some(Got::Progress(k, bytes)) => race.progress(k, bytes),
                Some(Got::Done(k, path, at)) => {
                    race.finish(k, at.duration_since(race.t0).as_secs_f64());
                    paths[k] = Some(path);
                }
                None => {}
            }
            if !race.finished() && race.overdue() {
                let have = self.pieces_of(peers, report);
                return Err(race.missed(&have));
            }
        }
        // Once stopped (scenario d), the seed's figure is its last reading.
        let seed_up = match leave.as_ref().and_then(|l| l.stopped) {
            Some((up, _)) => up,
            None => self.uploaded(seed, report)?,
        };
        let paths = paths.into_iter().flatten().collect();
        Ok((RaceEnd::new(race, leave, seed_up), paths))
    }

    /// Scenario d: reads the seed's upload; stops its process once it has
    /// uploaded the threshold.
    fn maybe_stop_seed(
        &mut self,
        seed: &StaPeer,
        report: &FileReport,
        leave: &mut SeedLeave,
        t0: Instant,
    ) -> Step<()> {
        let up = self.uploaded(seed, report)?;
        if up >= leave.threshold {
            let at = t0.elapsed().as_secs_f64();
            self.stop_step(&[seed.id])?;
            leave.stopped = Some((up, at));
            say(format_args!(
                "    seed stopped at {at:.2} s, having uploaded {:.3} x F",
                up as f64 / report.length as f64
            ));
        }
        Ok(())
    }

    /// "have/pieces" of each leecher, for the message of a missed
    /// deadline.
    fn pieces_of(&mut self, peers: &[StaPeer], report: &FileReport) -> Vec<String> {
        let mut out = Vec::new();
        for p in peers {
            let text = self
                .request(p, ControlRequest::Status, "status")
                .ok()
                .and_then(|v| StatusReport::from_json(&v).ok())
                .and_then(|st| {
                    st.files
                        .into_iter()
                        .find(|f| f.info_hash == report.info_hash)
                })
                .map_or_else(
                    || "(no status)".to_owned(),
                    |f| format!("{}/{} pieces", f.have, f.pieces),
                );
            out.push(text);
        }
        out
    }
}

/// What a leecher's `get` said.
enum Got {
    /// Leecher, verified bytes.
    Progress(usize, u64),
    /// Leecher, its file, when the reply came.
    Done(usize, PathBuf, Instant),
}

/// The next event from `rx`, waiting at most one poll.
fn next_event(rx: &Receiver<Stamped>) -> Step<Option<Got>> {
    match rx.recv_timeout(RACE_POLL) {
        Ok((k, at, Event::Done(r))) => {
            let v = r.map_err(|e| failed(format!("leecher h{}: get failed: {e}", k + 2)))?;
            let f = file_of(&v).map_err(|e| failed(format!("leecher h{}: get: {e}", k + 2)))?;
            Ok(Some(Got::Done(k, f.path, at)))
        }
        Ok((k, _, Event::Progress(p))) => Ok(Some(Got::Progress(k, p.bytes))),
        Err(RecvTimeoutError::Timeout) => Ok(None),
        // The sender lives in the race: it cannot be gone.
        Err(RecvTimeoutError::Disconnected) => Err(failed("internal: the gets' channel closed")),
    }
}

/// Names the leecher in a failure.
fn in_leecher(e: crate::Failure, host: usize) -> crate::Failure {
    match e {
        crate::Failure::Failed(m) => failed(format!("leecher h{host}: {m}")),
        other => other,
    }
}
