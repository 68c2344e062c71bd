//! The scale phase: one STA seeder serving many STA leechers at once,
//! against 1 -> 1 measured the same way.

use crate::harness::{Bench, remove_dir};
use crate::tables::median;
use crate::{GIB, MARGIN, SCALE_NAME, STALL, STARTUP, Step, failed, say};
use sta::cli::client::{Event, file_of};
use sta::cli::format::{human_bytes, size_text};
use sta::control::{ControlRequest, FileReport};
use sta::meta::info::to_hex;
use sta_kit::files::free_bytes;
use sta_kit::procfs::{cpu_split, mem_available, status_field};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The figures of the scale phase.
pub struct Scale {
    pub size: u64,
    pub leechers: usize,
    pub ref_wall: f64,
    pub ref_seed_cpu: f64,
    pub ref_leecher_cpu: f64,
    /// 1 -> 1 again, with the 1 -> N copies still in memory.
    pub loaded_wall: f64,
    pub loaded_leecher_cpu: f64,
    pub wall: f64,
    pub finish: Vec<f64>,
    pub seed_cpu: f64,
    pub served: u64,
    pub leechers_cpu: f64,
    /// The leechers' system-time share of `leechers_cpu`.
    pub leechers_sys: f64,
    pub tracker_cpu: f64,
    pub rss_anon_peak: u64,
    pub rss_anon_before: u64,
    pub rss_anon_end: u64,
    pub rss_peak: u64,
    /// Piece payload the leechers received (duplicates included).
    pub received: u64,
}

/// Every round of the scale phase.
pub struct ScaleRounds {
    /// The round with the median ratio; `None` if every round failed.
    pub pick: Option<Scale>,
    /// The ratios of the rounds that worked, sorted.
    pub ratios: Vec<f64>,
    /// The rounds that failed (numbered from 1), with why.
    pub failed: Vec<(usize, String)>,
}

impl Scale {
    /// Bytes per second received by all the leechers together.
    pub fn aggregate(&self) -> f64 {
        (self.size * self.leechers as u64) as f64 / self.wall
    }

    /// Aggregate rate over the 1 -> 1 rate.
    pub fn ratio(&self) -> f64 {
        self.aggregate() / (self.size as f64 / self.ref_wall)
    }

    /// Aggregate rate over the 1 -> 1 rate with the copies in memory.
    pub fn loaded_ratio(&self) -> f64 {
        self.aggregate() / (self.size as f64 / self.loaded_wall)
    }
}

/// A `get` of `target` into `dir`.
fn get_request(target: &str, dir: &Path) -> ControlRequest {
    ControlRequest::Get {
        target: target.to_string(),
        out_dir: Some(dir.to_path_buf()),
        only: Vec::new(),
        peers: Vec::new(),
    }
}

/// One 1 -> 1 download of the scale file.
struct OneToOne {
    wall: f64,
    seed_cpu: f64,
    leecher_cpu: f64,
}

impl Bench {
    /// The scale size that fits in the work directory and in memory, with
    /// the file once more for the seeder.
    fn scale_fit(&self) -> Option<u64> {
        let n = self.opts.scale_leechers as u64 + 1;
        let free = free_bytes(&self.opts.base).unwrap_or(0);
        let mem = mem_available().unwrap_or(u64::MAX);
        let room = free.min(mem).saturating_sub(MARGIN) / 10 * 8;
        let mut size = self.opts.scale_size;
        while size.saturating_mul(n) > room {
            size /= 2;
            if size < 16 << 20 {
                return None;
            }
        }
        Some(size)
    }

    /// Runs the scale phase `--scale-rounds` times; returns the round with
    /// the median aggregate / 1->1 ratio (`None` if every round failed),
    /// every good round's ratio, and the failed rounds with their reasons;
    /// `None` when there is no room for the phase. Each round is one
    /// figure of a noisy machine, hence rounds and a median.
    pub fn scale_rounds(&mut self, src: &Path) -> Step<Option<ScaleRounds>> {
        let mut rounds = Vec::new();
        let mut failed = Vec::new();
        for round in 1..=self.opts.scale_rounds {
            let what = format!("scale round {round}");
            match self.round(&what, |b| b.scale_phase(src, round))? {
                Ok(Some(s)) => rounds.push(s),
                Ok(None) => return Ok(None),
                Err(reason) => {
                    say(format_args!("  round {round}: FAILED: {reason}"));
                    // The next round generates the file afresh.
                    let file = src.join(SCALE_NAME);
                    if file.exists()
                        && let Err(e) = std::fs::remove_file(&file)
                    {
                        self.problems.push(format!("rm {}: {e}", file.display()));
                    }
                    failed.push((round, reason));
                }
            }
        }
        let mut ratios: Vec<f64> = rounds.iter().map(Scale::ratio).collect();
        let mid = median(ratios.clone());
        ratios.sort_by(f64::total_cmp);
        let pick = rounds
            .into_iter()
            .min_by(|a, b| (a.ratio() - mid).abs().total_cmp(&(b.ratio() - mid).abs()));
        Ok(Some(ScaleRounds {
            pick,
            ratios,
            failed,
        }))
    }

    fn scale_phase(&mut self, src: &Path, round: usize) -> Step<Option<Scale>> {
        let leechers = self.opts.scale_leechers;
        say("");
        let Some(size) = self.scale_fit() else {
            say(format_args!(
                "== scale: skipped: not enough room in {} or memory for {leechers} copies ==",
                self.opts.base.display()
            ));
            return Ok(None);
        };
        say(format_args!(
            "== scale: 1 STA seeder, {leechers} STA leechers at once, {} (round {round} of {}) ==",
            size_text(size),
            self.opts.scale_rounds
        ));
        if size != self.opts.scale_size {
            say(format_args!(
                "  (--scale-size {} does not fit {leechers} times in {} and memory: using {})",
                size_text(self.opts.scale_size),
                self.opts.base.display(),
                size_text(size)
            ));
        }
        let file = src.join(SCALE_NAME);
        self.generate(&file, size)?;
        let (mut seeders, report) = self.sta_seeders("scale-seed", 1..=1, &file, 0)?;
        let seeder = seeders.pop().ok_or_else(|| failed("no seeder"))?;
        let report = report.ok_or_else(|| failed("no share report"))?;
        let target = to_hex(&report.info_hash);

        // 1 -> 1 with the same method: leecher ready, timed from `get`.
        let reference = self.one_to_one("scale-ref", seeder.id, &target, size, &file)?;
        say(format_args!(
            "  1 -> 1: {:.2} s, {:.1} MB/s, seeder CPU {:.2} s/GiB, leecher CPU {:.2} s/GiB",
            reference.wall,
            size as f64 / reference.wall / 1e6,
            reference.seed_cpu / (size as f64 / GIB),
            reference.leecher_cpu / (size as f64 / GIB)
        ));
        let get = |dir: &Path| get_request(&target, dir);

        // n leechers, all started and ready before the clock starts.
        let t = Instant::now();
        let mut spawned = Vec::new();
        for i in 1..=leechers {
            spawned.push(self.spawn_peerd(&format!("scale-leech{i}"))?);
        }
        let deadline = Instant::now() + STARTUP * 2;
        let mut peers = Vec::new();
        for (i, (id, dir)) in spawned.into_iter().enumerate() {
            peers.push(self.peerd_ready(id, dir, deadline)?);
            if (i + 1) % 10 == 0 || i + 1 == leechers {
                say(format_args!(
                    "  {}/{leechers} leechers ready ({:.1} s)",
                    i + 1,
                    t.elapsed().as_secs_f64()
                ));
            }
        }
        let up0 = self.uploaded(&seeder, &report)?;
        let rss_anon_before = status_field(self.proc(seeder.id)?.pid(), "RssAnon").unwrap_or(0);
        let tracker_id = self.tracker_id.ok_or_else(|| failed("no tracker"))?;
        let tracker0 = self.cpu(tracker_id)?;
        let cpu0 = self.cpu(seeder.id)?;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        for (i, p) in peers.iter().enumerate() {
            self.call(&p.client, get(&p.dir), i, tx.clone())?;
        }
        drop(tx);
        let seeder_pid = self.proc(seeder.id)?.pid();
        let mut rss_anon_peak = rss_anon_before;
        let mut rss_peak = 0;
        let got = self.follow_gets(&rx, leechers, size, Some(t0), || {
            rss_anon_peak = rss_anon_peak.max(status_field(seeder_pid, "RssAnon").unwrap_or(0));
            rss_peak = rss_peak.max(status_field(seeder_pid, "VmRSS").unwrap_or(0));
        })?;
        let wall = t0.elapsed().as_secs_f64();
        let seed_cpu = self.cpu(seeder.id)? - cpu0;
        let tracker_cpu = self.cpu(tracker_id)? - tracker0;
        let rss_anon_end = status_field(seeder_pid, "RssAnon").unwrap_or(0);
        let leecher_ids: Vec<usize> = peers.iter().map(|p| p.id).collect();
        let leechers_cpu = self.cpu_sum(&leecher_ids)?;
        let mut leechers_sys = 0.0;
        for &i in &leecher_ids {
            let pid = self.proc(i)?.pid();
            leechers_sys += cpu_split(pid).map_or(0.0, |(_, s)| s as f64 / self.ticks);
        }
        let served = self.uploaded(&seeder, &report)? - up0;
        let mut finish: Vec<f64> = got.iter().map(|g| g.0).collect();
        finish.sort_by(f64::total_cmp);
        say(format_args!(
            "  all {leechers} done in {wall:.1} s; stopping the leechers and checking the copies..."
        ));
        self.stop_step(&leecher_ids)?;
        for (_, f) in &got {
            self.verify(&file, &f.path)?;
        }
        let received = got.iter().map(|g| g.1.downloaded).sum();
        // 1 -> 1 again while the copies still fill memory: on this VM the
        // kernel's cost per page grows with the memory in use, so this is
        // the reference measured under the same load as the 1 -> N round.
        let loaded = self.one_to_one("scale-ref-loaded", seeder.id, &target, size, &file)?;
        say(format_args!(
            "  1 -> 1 with the {leechers} copies in memory: {:.2} s, {:.1} MB/s, leecher CPU {:.2} s/GiB",
            loaded.wall,
            size as f64 / loaded.wall / 1e6,
            loaded.leecher_cpu / (size as f64 / GIB)
        ));
        for p in &peers {
            remove_dir(&p.dir)?;
        }
        self.stop_step(&[seeder.id])?;
        remove_dir(&seeder.dir)?;
        std::fs::remove_file(&file).map_err(|e| failed(format!("rm: {e}")))?;
        let total = size * leechers as u64;
        let scale = Scale {
            size,
            leechers,
            ref_wall: reference.wall,
            ref_seed_cpu: reference.seed_cpu,
            ref_leecher_cpu: reference.leecher_cpu,
            loaded_wall: loaded.wall,
            loaded_leecher_cpu: loaded.leecher_cpu,
            wall,
            finish,
            seed_cpu,
            served,
            leechers_cpu,
            leechers_sys,
            tracker_cpu,
            rss_anon_peak,
            rss_anon_before,
            rss_anon_end,
            rss_peak,
            received,
        };
        say(format_args!(
            "  round {round}: aggregate {:.1} MB/s, {:.1}% of 1 -> 1; leechers' CPU {:.3} s per GiB received ({:.0}% system)",
            scale.aggregate() / 1e6,
            scale.ratio() * 100.0,
            scale.leechers_cpu / (total as f64 / GIB),
            scale.leechers_sys * 100.0 / scale.leechers_cpu.max(1e-9)
        ));
        Ok(Some(scale))
    }

    /// Downloads `target` from the seeder into a fresh leecher, ready
    /// before the clock starts and timed from `get`; checks the copy and
    /// removes it.
    fn one_to_one(
        &mut self,
        name: &str,
        seeder: usize,
        target: &str,
        size: u64,
        file: &Path,
    ) -> Step<OneToOne> {
        let leecher = self.start_peerd(name)?;
        let cpu0 = self.cpu(seeder)?;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        self.call(&leecher.client, get_request(target, &leecher.dir), 0, tx)?;
        let got = self.follow_gets(&rx, 1, size, None, || {})?;
        let wall = t0.elapsed().as_secs_f64();
        let seed_cpu = self.cpu(seeder)? - cpu0;
        let leecher_cpu = self.cpu(leecher.id)?;
        self.stop_step(&[leecher.id])?;
        self.verify(file, &got[0].1.path)?;
        remove_dir(&leecher.dir)?;
        Ok(OneToOne {
            wall,
            seed_cpu,
            leecher_cpu,
        })
    }

    /// Follows `n` gets until each is done: (seconds since `t0`, path) by
    /// tag. Prints progress every 5 s when `t0` is given; `sample` runs on
    /// every poll.
    fn follow_gets(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        n: usize,
        size: u64,
        t0: Option<Instant>,
        mut sample: impl FnMut(),
    ) -> Step<Vec<(f64, FileReport)>> {
        let start = t0.unwrap_or_else(Instant::now);
        let mut bytes = vec![0u64; n];
        let mut done: Vec<Option<(f64, FileReport)>> = vec![None; n];
        let mut left = n;
        let mut deadline = Instant::now() + STALL;
        let mut next_report = Instant::now() + Duration::from_secs(5);
        while left > 0 {
            sample();
            if t0.is_some() && Instant::now() >= next_report {
                next_report += Duration::from_secs(5);
                let total: u64 = bytes.iter().sum();
                say(format_args!(
                    "  {:6.1} s: {}/{n} done, {} of {} verified",
                    start.elapsed().as_secs_f64(),
                    n - left,
                    human_bytes(total),
                    human_bytes(size * n as u64)
                ));
            }
            let (tag, ev) = match self.next_event_short(rx, deadline, "download")? {
                Some(ev) => ev,
                None => continue,
            };
            let Some(slot) = bytes.get_mut(tag) else {
                continue;
            };
            match ev {
                Event::Progress(p) => {
                    let b = p.bytes;
                    if b > *slot {
                        deadline = Instant::now() + STALL;
                    }
                    *slot = b;
                }
                Event::Done(r) => {
                    let v = r.map_err(|e| failed(format!("download {tag}: {e}")))?;
                    let f = file_of(&v).map_err(|e| failed(format!("download {tag}: {e}")))?;
                    *slot = size;
                    done[tag] = Some((start.elapsed().as_secs_f64(), f));
                    left -= 1;
                    deadline = Instant::now() + STALL;
                }
            }
        }
        Ok(done.into_iter().flatten().collect())
    }

    /// Like `next_event` but returns `None` after one poll interval, so
    /// that the caller can sample /proc.
    fn next_event_short(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        deadline: Instant,
        what: &str,
    ) -> Step<Option<(usize, Event)>> {
        self.check_children()?;
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "{what}: no progress for {} s",
                STALL.as_secs()
            )));
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => Ok(Some(ev)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(failed(format!(
                "{what}: the requests ended without a reply"
            ))),
        }
    }
}
