//! The libtorrent side of `sta-bench swarm`: `sta-trackerd` on h0 as the
//! BitTorrent tracker (UDP, BEP 15), one `bench/lt_peer.py` per host.

use crate::harness::{Bench, mkdir};
use crate::hosts::Hosts;
use crate::swarm::{
    Ctx, Figures, RACE_POLL, Race, RaceEnd, SWARM_NAME, SeedLeave, Setup, monotonic,
};
use crate::{STARTUP, Step, failed, say};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// `lt_peer.py`'s own bound on its waits; the harness's deadlines are
/// shorter, so this only matters if the harness is gone.
const LT_TIMEOUT: &str = "900";
/// After `finished`, how long the leechers have to print `flushed`.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// A copy that differs is compared again this many times, this far apart
/// (libtorrent writes through its disk thread).
const VERIFY_TRIES: usize = 10;
const VERIFY_PAUSE: Duration = Duration::from_millis(500);

/// A running `lt_peer.py leech --wait-go`.
struct LtLeecher {
    id: usize,
    save: PathBuf,
    /// Its last `progress`: bytes done, pieces verified.
    progress: u64,
    pieces: u64,
    flushed: bool,
}

impl Bench {
    /// One libtorrent run: tracker, seed (announced), leechers listening,
    /// then the race, the flush and the comparisons.
    pub fn lt_swarm(
        &mut self,
        setup: &Setup,
        hosts: &Hosts,
        ctx: &Ctx,
        dir: &Path,
        tag: &str,
    ) -> Step<Figures> {
        self.swarm_tracker(hosts, tag)?;
        let seed = self.lt_swarm_seed(hosts, ctx, tag)?;
        let mut leechers = Vec::new();
        for k in 0..setup.leechers() {
            leechers.push(self.lt_swarm_leecher(hosts, k + 2, ctx, dir, tag)?);
        }
        let deadline = Instant::now() + STARTUP;
        for l in &leechers {
            self.wait_line(l.id, "listening on ", deadline)?;
        }
        let end = self.lt_race(setup, ctx, seed, &mut leechers)?;
        self.wait_flushed(&mut leechers)?;
        for (k, l) in leechers.iter().enumerate() {
            self.verify_retrying(
                &ctx.src,
                &l.save.join(SWARM_NAME),
                VERIFY_TRIES,
                VERIFY_PAUSE,
            )
            .map_err(|e| match e {
                crate::Failure::Failed(m) => failed(format!("leecher h{}: {m}", k + 2)),
                other => other,
            })?;
        }
        Ok(end.figures())
    }

    fn lt_args(&self, mode: &str, rest: &[OsString]) -> Vec<OsString> {
        let rest: Vec<&OsStr> = rest.iter().map(OsString::as_os_str).collect();
        self.python_args(mode, &rest)
    }

    /// `lt_peer.py seed` on h1, serving the source from its directory;
    /// returns once it is seeding and the tracker has answered its
    /// announce (so every leecher is told of it).
    fn lt_swarm_seed(&mut self, hosts: &Hosts, ctx: &Ctx, tag: &str) -> Step<usize> {
        let save = ctx.src.parent().unwrap_or(Path::new("/")).to_path_buf();
        let rest: Vec<OsString> = vec![
            "--torrent".into(),
            ctx.torrent.clone().into(),
            "--save".into(),
            save.into(),
            "--listen".into(),
            Hosts::peer_addr(1).into(),
            "--timeout".into(),
            LT_TIMEOUT.into(),
        ];
        let args = self.lt_args("seed", &rest);
        let python = self.opts.python.clone();
        let id = self.spawn_on(hosts, 1, &format!("{tag}-h1"), &python, &args)?;
        let deadline = Instant::now() + STARTUP;
        self.wait_line(id, "listening on ", deadline)?;
        self.wait_line(id, "seeding", deadline)?;
        self.wait_line(id, "announced ", deadline)?;
        Ok(id)
    }

    fn lt_swarm_leecher(
        &mut self,
        hosts: &Hosts,
        host: usize,
        ctx: &Ctx,
        dir: &Path,
        tag: &str,
    ) -> Step<LtLeecher> {
        let save = dir.join(format!("lt-h{host}"));
        mkdir(&save)?;
        let rest: Vec<OsString> = vec![
            "--torrent".into(),
            ctx.torrent.clone().into(),
            "--save".into(),
            save.clone().into(),
            "--listen".into(),
            Hosts::peer_addr(host).into(),
            "--wait-go".into(),
            "--timeout".into(),
            LT_TIMEOUT.into(),
        ];
        let args = self.lt_args("leech", &rest);
        let python = self.opts.python.clone();
        let id = self.spawn_on(hosts, host, &format!("{tag}-h{host}"), &python, &args)?;
        Ok(LtLeecher {
            id,
            save,
            progress: 0,
            pieces: 0,
            flushed: false,
        })
    }

    /// The race: `go` to every leecher (the late ones later), until each
    /// has said `finished` or the deadline.
    fn lt_race(
        &mut self,
        setup: &Setup,
        ctx: &Ctx,
        seed: usize,
        leechers: &mut [LtLeecher],
    ) -> Step<RaceEnd> {
        let mut leave = SeedLeave::new(setup, ctx.size);
        let mono0 = monotonic();
        let mut race = Race::start(setup, ctx.size);
        for k in (0..leechers.len()).filter(|&k| !setup.is_late(k)) {
            self.send_line(leechers[k].id, "go")?;
        }
        while !race.finished() {
            self.check_children()?;
            if race.late_due() {
                for k in (0..leechers.len()).filter(|&k| setup.is_late(k)) {
                    self.send_line(leechers[k].id, "go")?;
                }
            }
            if let Some(l) = leave.as_mut()
                && l.due()
            {
                self.maybe_stop_lt_seed(seed, ctx.size, l, race.t0)?;
            }
            for (k, l) in leechers.iter_mut().enumerate() {
                if let Some(t) = self.read_leecher(l)? {
                    race.finish(k, t - mono0);
                }
                race.progress(k, l.progress);
            }
            if !race.finished() && race.overdue() {
                let total = ctx.size.div_ceil(u64::from(crate::PIECE_SIZE));
                let state: Vec<String> = leechers
                    .iter()
                    .map(|l| format!("{}/{total} pieces", l.pieces))
                    .collect();
                return Err(race.missed(&state));
            }
            thread::sleep(RACE_POLL);
        }
        let seed_up = match leave.as_ref().and_then(|l| l.stopped) {
            Some((up, _)) => up,
            None => self.lt_uploaded(seed)?,
        };
        Ok(RaceEnd::new(race, leave, seed_up))
    }

    /// The lines a leecher printed; its `finished` time (CLOCK_MONOTONIC,
    /// as it printed it), if that came.
    fn read_leecher(&mut self, l: &mut LtLeecher) -> Step<Option<f64>> {
        let mut finished = None;
        while let Some(line) = self.try_line(l.id)? {
            if let Some(rest) = line.strip_prefix("progress ") {
                let mut words = rest.split_whitespace().map(|w| w.parse().ok());
                l.progress = words.next().flatten().unwrap_or(l.progress);
                l.pieces = words.next().flatten().unwrap_or(l.pieces);
            } else if let Some(rest) = line.strip_prefix("finished ") {
                let mono = rest.split_whitespace().nth(1).and_then(|w| w.parse().ok());
                finished = Some(mono.ok_or_else(|| {
                    failed(format!(
                        "lt_peer.py printed `finished {rest}`: no monotonic time"
                    ))
                })?);
            } else if line == "flushed" {
                l.flushed = true;
            }
        }
        Ok(finished)
    }

    /// Until every leecher has printed `flushed` (its file written out).
    fn wait_flushed(&mut self, leechers: &mut [LtLeecher]) -> Step<()> {
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        while leechers.iter().any(|l| !l.flushed) {
            self.check_children()?;
            for l in leechers.iter_mut() {
                self.read_leecher(l)?;
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "libtorrent leechers finished but did not flush their file within {} s",
                    FLUSH_TIMEOUT.as_secs()
                )));
            }
            thread::sleep(RACE_POLL);
        }
        Ok(())
    }

    /// The libtorrent seed's `total_payload_upload`.
    fn lt_uploaded(&mut self, seed: usize) -> Step<u64> {
        self.send_line(seed, "status")?;
        let text = self.wait_line(seed, "uploaded ", Instant::now() + STARTUP)?;
        text.trim()
            .parse()
            .map_err(|_| failed(format!("lt_peer.py seed printed `uploaded {text}`")))
    }

    /// Scenario d: stops the seed's process once it has uploaded the
    /// threshold.
    fn maybe_stop_lt_seed(
        &mut self,
        seed: usize,
        size: u64,
        leave: &mut SeedLeave,
        t0: Instant,
    ) -> Step<()> {
        let up = self.lt_uploaded(seed)?;
        if up >= leave.threshold {
            let at = t0.elapsed().as_secs_f64();
            self.stop_step(&[seed])?;
            leave.stopped = Some((up, at));
            say(format_args!(
                "    seed stopped at {at:.2} s, having uploaded {:.3} x F",
                up as f64 / size as f64
            ));
        }
        Ok(())
    }
}
