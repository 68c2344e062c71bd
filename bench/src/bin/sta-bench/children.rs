//! The child processes of a run: started with their stdout read line by
//! line and their stderr in a log, watched while the run waits, and
//! stopped by their pid.

use crate::harness::Bench;
use crate::{POLL, STOP_TIMEOUT, Step, failed, say};
use sta_kit::files::log_tail;
use sta_kit::process::{Guard, Lines, Next, Stopped, spawn_watched};
use sta_kit::procfs::cpu_ticks;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

pub struct Proc {
    pub guard: Guard,
    lines: Lines,
    log: PathBuf,
    /// Exits by itself (`lt_peer.py make`): not a failure.
    pub may_exit: bool,
}

impl Proc {
    pub fn name(&self) -> &str {
        self.guard.name()
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log, "    ")
    }
}

impl Bench {
    /// Starts `program` with `args`; returns its id.
    ///
    /// Its stdin is a pipe (`lt_peer.py` stops when it closes), its stderr
    /// goes to `NAME.log` in the work directory, it has none of our
    /// `STA_*` settings, a process group of its own (Ctrl-C reaches only
    /// the harness, which then stops it), and it is told to stop if the
    /// harness dies without cleaning up.
    pub fn spawn(&mut self, name: &str, program: &Path, args: &[OsString]) -> Step<usize> {
        let log = self.work_dir()?.join(format!("{name}.log"));
        let (guard, lines) =
            spawn_watched(name, program, args, Stdio::piped(), &log).map_err(failed)?;
        self.procs.push(Some(Proc {
            guard,
            lines,
            log,
            may_exit: false,
        }));
        Ok(self.procs.len() - 1)
    }

    pub fn proc(&self, id: usize) -> Step<&Proc> {
        self.procs
            .get(id)
            .and_then(Option::as_ref)
            .ok_or_else(|| failed("internal: process already stopped"))
    }

    /// Fails when a process exited while it should run.
    pub fn check_children(&mut self) -> Step<()> {
        for p in self.procs.iter_mut().flatten() {
            if p.may_exit {
                continue;
            }
            if let Some(st) = p.guard.exit_status() {
                // Reported once: the round that saw it fails; later rounds
                // fail on their own if they needed it.
                p.may_exit = true;
                return Err(failed(format!(
                    "{} (pid {}) exited unexpectedly ({st}){}",
                    p.name(),
                    p.pid(),
                    p.log_tail()
                )));
            }
        }
        self.check_stop()
    }

    /// The next stdout line of process `id`.
    pub fn next_line(&mut self, id: usize, deadline: Instant, what: &str) -> Step<String> {
        let lines = self.proc(id)?.lines.clone();
        match lines.next_checked(deadline, POLL, || self.check_children())? {
            Next::Line(line) => Ok(line),
            Next::TimedOut => {
                let p = self.proc(id)?;
                Err(failed(format!(
                    "{what}: nothing from {} in time{}",
                    p.name(),
                    p.log_tail()
                )))
            }
            Next::Closed => {
                // Its stdout closed: it is exiting, also a process that may
                // (check_children does not watch those), before it said
                // what was waited for.
                let Some(Some(p)) = self.procs.get_mut(id) else {
                    return Err(failed("internal: process already stopped"));
                };
                let how = p
                    .guard
                    .wait_exit(STOP_TIMEOUT)
                    .map_or_else(|| "still running".to_owned(), |st| st.to_string());
                Err(failed(format!(
                    "{what}: {} closed its stdout ({how}){}",
                    p.name(),
                    p.log_tail()
                )))
            }
        }
    }

    /// A line process `id` has printed, if any, without waiting.
    pub fn try_line(&mut self, id: usize) -> Step<Option<String>> {
        let p = self.proc(id)?;
        match p.lines.next_by(Instant::now()) {
            Next::Line(line) => Ok(Some(line)),
            Next::TimedOut => Ok(None),
            Next::Closed => Err(failed(format!(
                "{} (pid {}) closed its stdout{}",
                p.name(),
                p.pid(),
                p.log_tail()
            ))),
        }
    }

    /// Writes `text` and a newline to the stdin of process `id`.
    pub fn send_line(&mut self, id: usize, text: &str) -> Step<()> {
        let Some(Some(p)) = self.procs.get_mut(id) else {
            return Err(failed("internal: process already stopped"));
        };
        let (name, pid) = (p.name().to_owned(), p.pid());
        let stdin = p
            .guard
            .child_mut()
            .stdin
            .as_mut()
            .ok_or_else(|| failed(format!("{name}: its stdin is not a pipe")))?;
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| failed(format!("cannot write to {name} (pid {pid}): {e}")))
    }

    pub fn wait_line(&mut self, id: usize, prefix: &str, deadline: Instant) -> Step<String> {
        let what = format!("waiting for `{prefix}...`");
        loop {
            let line = self.next_line(id, deadline, &what)?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.to_owned());
            }
        }
    }

    /// Stops the processes (SIGTERM, then SIGKILL after a shared deadline).
    fn stop_procs(&mut self, ids: &[usize]) -> Result<(), String> {
        let mut taken: Vec<Proc> = ids
            .iter()
            .filter_map(|&i| self.procs.get_mut(i).and_then(Option::take))
            .collect();
        for p in &mut taken {
            p.guard.terminate();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut errors = Vec::new();
        for p in &mut taken {
            match p.guard.reap_by(deadline) {
                Ok(Stopped::Exited(_)) => {}
                Ok(Stopped::Killed(_)) => say(format_args!(
                    "  {} (pid {}) ignored SIGTERM; killed it",
                    p.name(),
                    p.pid()
                )),
                Err(e) => errors.push(format!("cannot stop {} (pid {}): {e}", p.name(), p.pid())),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    pub fn stop_step(&mut self, ids: &[usize]) -> Step<()> {
        self.stop_procs(ids).map_err(failed)
    }

    /// Stops every process still running and removes the work directory.
    pub fn cleanup(&mut self) -> Result<(), String> {
        let live: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.procs[i].is_some())
            .collect();
        let mut problems = Vec::new();
        if !live.is_empty() {
            say(format_args!("stopping {} processes...", live.len()));
            if let Err(e) = self.stop_procs(&live) {
                problems.push(e);
            }
        }
        if let Some(dir) = self.work.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.remove() {
                problems.push(format!("cannot remove {}: {e}", path.display()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// CPU seconds of process `id` so far (all its threads).
    pub fn cpu(&self, id: usize) -> Step<f64> {
        let p = self.proc(id)?;
        cpu_ticks(p.pid())
            .map(|t| t as f64 / self.ticks)
            .ok_or_else(|| failed(format!("cannot read /proc/{}/stat", p.pid())))
    }

    pub fn cpu_sum(&self, ids: &[usize]) -> Step<f64> {
        ids.iter().map(|&i| self.cpu(i)).sum()
    }
}
