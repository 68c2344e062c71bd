//! A run of `sta-bench transfer`: its options, its work directory and
//! children, the order of the phases, and the cleanup that stops every
//! child and removes every file, whatever happened.

use crate::args::Opts;
use crate::children::Proc;
use crate::tables::{Round, scale_table, share_table, transfer_table};
use crate::{FILE_NAME, Failure, MARGIN, PIECE_SIZE, Step, failed, say};
use sta::cli::format::{human_bytes, size_text};
use sta::meta::Geometry;
use sta::meta::info::to_hex;
use sta_kit::files::{CompareError, TempDir, first_difference, free_bytes};
use sta_kit::procfs::{loadavg, ticks_per_second};
use sta_kit::random::{Prng, WriteError, write_random};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

pub struct Bench {
    pub opts: Opts,
    pub stop: Arc<AtomicBool>,
    /// Everything the run writes, removed by the cleanup.
    pub work: Option<TempDir>,
    /// By id; `None` once stopped.
    pub procs: Vec<Option<Proc>>,
    pub trackerd: PathBuf,
    pub peerd: PathBuf,
    pub tracker: Option<SocketAddr>,
    pub tracker_id: Option<usize>,
    /// Clock ticks per second, the unit of /proc's CPU times.
    pub ticks: f64,
    /// Numbers the directories of the run's daemons.
    pub serial: usize,
    /// What is wrong but did not stop the run; it still exits 1.
    pub problems: Vec<String>,
    /// Every directory `fresh_dir` made, in order (see [`Mark`]).
    pub dirs: Vec<PathBuf>,
}

/// What existed when a round began: the processes and directories it
/// adds come after these counts, so a failed round can be undone.
pub struct Mark {
    procs: usize,
    dirs: usize,
}

impl Bench {
    pub fn new(opts: Opts, stop: Arc<AtomicBool>) -> Bench {
        Bench {
            opts,
            stop,
            work: None,
            procs: Vec::new(),
            trackerd: PathBuf::new(),
            peerd: PathBuf::new(),
            tracker: None,
            tracker_id: None,
            ticks: ticks_per_second(),
            serial: 0,
            problems: Vec::new(),
            dirs: Vec::new(),
        }
    }

    pub fn run(&mut self) -> Step<()> {
        let started = Instant::now();
        self.header();
        self.find_binaries()?;
        let work = self.make_work_dir()?;
        let src = work.join("src");
        mkdir(&src)?;
        let mut shares: Vec<(f64, f64)> = Vec::new();
        let mut transfers: Vec<(&str, Vec<Round>, Vec<Round>)> = Vec::new();
        let mut scale = None;
        self.start_tracker()?;
        if self.opts.share || self.opts.transfer {
            let file = src.join(FILE_NAME);
            self.generate(&file, self.opts.size)?;
            let torrent = work.join("bench.torrent");
            let (sta_file, lt_hash) = self.share_phase(&file, &torrent, &mut shares)?;
            if lt_hash != to_hex(&sta_file.info_hash) {
                self.problems.push(format!(
                    "info hashes differ for the same file, name and piece size: STA {}, libtorrent {lt_hash}",
                    to_hex(&sta_file.info_hash)
                ));
                say("  WARNING: STA's info hash differs from libtorrent's v1 info hash");
            } else {
                say(format_args!(
                    "  info hash {lt_hash}: the same for STA and libtorrent"
                ));
            }
            if self.opts.transfer {
                transfers = self.transfer_phase(&file, &torrent, &sta_file)?;
            }
            std::fs::remove_file(&file).map_err(|e| failed(format!("rm: {e}")))?;
        }
        if self.opts.scale {
            scale = self.scale_rounds(&src)?;
        }
        say("");
        say(format_args!(
            "==== results ({:.0} s in all; load average now {}) ====",
            started.elapsed().as_secs_f64(),
            loadavg()
        ));
        if !shares.is_empty() {
            say(share_table(self.opts.size, &shares));
        }
        for (label, sta, lt) in &transfers {
            say(transfer_table(label, self.opts.size, sta, lt));
        }
        if let Some(rounds) = &scale {
            say(scale_table(rounds));
        }
        Ok(())
    }

    fn header(&self) {
        say("sta-bench transfer: STA vs libtorrent");
        machine_lines();
        say(format_args!("load:    {}", loadavg()));
        say(format_args!(
            "work:    size {}, {} pieces of 512 KiB, {} round(s); scale {} x {}, {} round(s)",
            size_text(self.opts.size),
            Geometry::new(PIECE_SIZE, self.opts.size).piece_count(),
            self.opts.rounds,
            self.opts.scale_leechers,
            size_text(self.opts.scale_size),
            self.opts.scale_rounds
        ));
    }

    pub fn check_stop(&self) -> Step<()> {
        if self.stop.load(Ordering::SeqCst) {
            Err(Failure::Interrupted)
        } else {
            Ok(())
        }
    }

    pub fn find_binaries(&mut self) -> Step<()> {
        let exe =
            std::env::current_exe().map_err(|e| failed(format!("where is sta-bench? {e}")))?;
        for (name, slot) in [
            ("sta-trackerd", &mut self.trackerd),
            ("sta-peerd", &mut self.peerd),
        ] {
            let p = exe.with_file_name(name);
            if !p.is_file() {
                return Err(failed(format!(
                    "{} is missing; run `cargo build --release` first",
                    p.display()
                )));
            }
            *slot = p;
        }
        if !self.opts.script.is_file() {
            return Err(failed(format!(
                "{} is missing (--lt-script)",
                self.opts.script.display()
            )));
        }
        Ok(())
    }

    pub fn make_work_dir(&mut self) -> Step<PathBuf> {
        let need = if self.opts.share || self.opts.transfer {
            2 * self.opts.size + MARGIN
        } else {
            MARGIN
        };
        let free = free_bytes(&self.opts.base).unwrap_or(0);
        if free < need {
            return Err(failed(format!(
                "{} has {} free; this needs {} (two copies of the file): try a smaller --size",
                self.opts.base.display(),
                human_bytes(free),
                human_bytes(need)
            )));
        }
        let dir = TempDir::create(&self.opts.base, "sta-bench").map_err(|e| {
            failed(format!(
                "cannot create a directory in {}: {e}",
                self.opts.base.display()
            ))
        })?;
        let path = dir.path().to_path_buf();
        say(format_args!("dir:     {}", path.display()));
        self.work = Some(dir);
        Ok(path)
    }

    /// The work directory.
    pub fn work_dir(&self) -> Step<PathBuf> {
        self.work
            .as_ref()
            .map(|w| w.path().to_path_buf())
            .ok_or_else(|| failed("no work dir"))
    }

    /// A new directory `NAME-N` in the work directory.
    pub fn fresh_dir(&mut self, name: &str) -> Step<PathBuf> {
        self.serial += 1;
        let dir = self.work_dir()?.join(format!("{name}-{}", self.serial));
        mkdir(&dir)?;
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    pub fn mark(&self) -> Mark {
        Mark {
            procs: self.procs.len(),
            dirs: self.dirs.len(),
        }
    }

    /// Runs one round of a phase. A failure (a copy that differs, a
    /// download that stalls, a process that died) ends only that round:
    /// what the round started is stopped and what it made is removed, the
    /// failure is kept among the run's problems (exit status 1), and its
    /// reason is returned for the round's line and table row, so that the
    /// other rounds and their figures still come. An interruption ends the
    /// run.
    pub fn round<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Bench) -> Step<T>,
    ) -> Step<Result<T, String>> {
        let mark = self.mark();
        match f(self) {
            Ok(v) => Ok(Ok(v)),
            Err(Failure::Interrupted) => Err(Failure::Interrupted),
            Err(Failure::Failed(reason)) => {
                self.problems.push(format!("{what}: {reason}"));
                self.undo(mark);
                self.check_stop()?;
                Ok(Err(reason))
            }
        }
    }

    /// Stops the processes started and removes the directories made since
    /// `mark` (those still there); trouble doing so is another problem.
    fn undo(&mut self, mark: Mark) {
        let ids: Vec<usize> = (mark.procs..self.procs.len())
            .filter(|&i| self.procs[i].is_some())
            .collect();
        if let Err(Failure::Failed(e)) = self.stop_step(&ids) {
            self.problems.push(e);
        }
        for dir in self.dirs.split_off(mark.dirs.min(self.dirs.len())) {
            if dir.exists()
                && let Err(Failure::Failed(e)) = remove_dir(&dir)
            {
                self.problems.push(e);
            }
        }
    }

    pub fn generate(&self, path: &Path, size: u64) -> Step<()> {
        let t = Instant::now();
        let file = File::create_new(path)
            .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))?;
        let stop = || self.stop.load(Ordering::SeqCst);
        write_random(&mut [file], size, &mut Prng::from_entropy(), stop).map_err(|e| match e {
            WriteError::Stopped => Failure::Interrupted,
            WriteError::Io { error, .. } => {
                failed(format!("cannot write {}: {error}", path.display()))
            }
        })?;
        say(format_args!(
            "generated {} ({}) in {:.1} s",
            path.display(),
            size_text(size),
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    pub fn verify(&self, source: &Path, copy: &Path) -> Step<()> {
        match compare_files(source, copy, &self.stop)? {
            None => Ok(()),
            Some(at) => Err(failed(format!(
                "the copy differs from the source at byte {at} ({} against {})",
                copy.display(),
                source.display()
            ))),
        }
    }
}

impl Bench {
    /// Like [`Bench::verify`], but a copy that differs (or is missing) is
    /// compared again, `tries` times in all, `pause` apart: a client that
    /// writes through a disk thread (libtorrent) may still be writing
    /// when it says it is done.
    pub fn verify_retrying(
        &self,
        source: &Path,
        copy: &Path,
        tries: usize,
        pause: std::time::Duration,
    ) -> Step<()> {
        let mut last = String::new();
        for attempt in 1..=tries.max(1) {
            match compare_files(source, copy, &self.stop) {
                Ok(None) => return Ok(()),
                Ok(Some(at)) => last = format!("differs from the source at byte {at}"),
                Err(Failure::Interrupted) => return Err(Failure::Interrupted),
                Err(Failure::Failed(m)) => last = m,
            }
            if attempt < tries {
                thread::sleep(pause);
                self.check_stop()?;
            }
        }
        Err(failed(format!(
            "{}: {last} ({tries} comparisons, {:.1} s apart): the download did not verify",
            copy.display(),
            pause.as_secs_f64()
        )))
    }
}

/// The date, the kernel, the CPU model and core count (the load average
/// comes after, from the caller).
pub fn machine_lines() {
    let date = Command::new("date")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    say(format_args!("date:    {}", date.trim()));
    say(format_args!("kernel:  {}", kernel.trim()));
    say(format_args!("cpu:     {model}, {cores} cores"));
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.cleanup();
    }
}

pub fn mkdir(dir: &Path) -> Step<()> {
    std::fs::create_dir(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))
}

pub fn remove_dir(dir: &Path) -> Step<()> {
    std::fs::remove_dir_all(dir)
        .map_err(|e| failed(format!("cannot remove {}: {e}", dir.display())))
}

/// The first offset where the files differ, or `None` when identical.
fn compare_files(a: &Path, b: &Path, stop: &AtomicBool) -> Step<Option<u64>> {
    first_difference(a, b, stop).map_err(|e| match e {
        CompareError::Interrupted => Failure::Interrupted,
        CompareError::Io(message) => failed(message),
    })
}
