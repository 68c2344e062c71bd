//! The libtorrent side: `bench/lt_peer.py` children.

use crate::harness::{Bench, remove_dir};
use crate::tables::Run;
use crate::{PIECE_SIZE, STALL, STARTUP, STOP_TIMEOUT, Step, failed};
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

/// A running `lt_peer.py seed`.
pub struct LtSeeder {
    pub id: usize,
    addr: SocketAddr,
}

impl Bench {
    pub fn python_args(&self, mode: &str, rest: &[&OsStr]) -> Vec<OsString> {
        let mut a = vec![self.opts.script.clone().into_os_string(), mode.into()];
        a.extend(rest.iter().map(|s| s.to_os_string()));
        a
    }

    /// `lt_peer.py make`: seconds (timed in the script), info hash, version.
    /// `announce`: a tracker URL to put in the .torrent.
    pub fn lt_make(
        &mut self,
        file: &Path,
        torrent: &Path,
        announce: Option<&str>,
    ) -> Step<(f64, String, String)> {
        let _ = std::fs::remove_file(torrent);
        let piece = PIECE_SIZE.to_string();
        let mut rest: Vec<&OsStr> = vec![
            "--file".as_ref(),
            file.as_os_str(),
            "--piece-size".as_ref(),
            piece.as_ref(),
            "--out".as_ref(),
            torrent.as_os_str(),
        ];
        if let Some(url) = announce {
            rest.extend([OsStr::new("--announce"), OsStr::new(url)]);
        }
        let args = self.python_args("make", &rest);
        let python = self.opts.python.clone();
        let id = self.spawn("lt-make", &python, &args)?;
        if let Some(Some(p)) = self.procs.get_mut(id) {
            p.may_exit = true;
        }
        let line = self.wait_line(id, "hashed ", Instant::now() + STALL)?;
        // It exits by itself once it printed the line.
        if let Some(Some(p)) = self.procs.get_mut(id) {
            p.guard.wait_exit(STOP_TIMEOUT);
        }
        self.stop_step(&[id])?;
        let mut words = line.split_whitespace();
        let secs: f64 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| failed(format!("lt_peer.py make printed `hashed {line}`")))?;
        let hash = words.next().unwrap_or("").to_owned();
        let version = words.next().unwrap_or("?").to_owned();
        Ok((secs, hash, version))
    }

    pub fn lt_seeders(
        &mut self,
        range: std::ops::RangeInclusive<usize>,
        torrent: &Path,
        save: &Path,
    ) -> Step<Vec<LtSeeder>> {
        let python = self.opts.python.clone();
        let timeout = STALL.as_secs().to_string();
        let mut ids = Vec::new();
        for i in range {
            let args = self.python_args(
                "seed",
                &[
                    "--torrent".as_ref(),
                    torrent.as_os_str(),
                    "--save".as_ref(),
                    save.as_os_str(),
                    "--timeout".as_ref(),
                    timeout.as_ref(),
                ],
            );
            ids.push(self.spawn(&format!("lt-seed{i}"), &python, &args)?);
        }
        let mut seeders = Vec::new();
        for id in ids {
            let text = self.wait_line(id, "listening on ", Instant::now() + STARTUP)?;
            let addr = text
                .parse()
                .map_err(|_| failed(format!("lt_peer.py printed `listening on {text}`")))?;
            self.wait_line(id, "seeding", Instant::now() + STALL)?;
            seeders.push(LtSeeder { id, addr });
        }
        Ok(seeders)
    }

    /// One libtorrent download: from the spawn of the leecher until it
    /// says every piece is verified.
    pub fn lt_run(&mut self, seeders: &[LtSeeder], torrent: &Path, source: &Path) -> Step<Run> {
        let ids: Vec<usize> = seeders.iter().map(|s| s.id).collect();
        let dir = self.fresh_dir("lt-leech")?;
        let timeout = (STALL.as_secs() * 10).to_string();
        let mut rest: Vec<OsString> = vec![
            "--torrent".into(),
            torrent.into(),
            "--save".into(),
            dir.clone().into(),
            "--timeout".into(),
            timeout.into(),
        ];
        for s in seeders {
            rest.push("--peer".into());
            rest.push(s.addr.to_string().into());
        }
        let rest: Vec<&OsStr> = rest.iter().map(OsString::as_os_str).collect();
        let args = self.python_args("leech", &rest);
        let python = self.opts.python.clone();
        let seed0 = self.cpu_sum(&ids)?;
        let t0 = Instant::now();
        let id = self.spawn("lt-leech", &python, &args)?;
        let mut deadline = t0 + STALL;
        loop {
            let line = self.next_line(id, deadline, "libtorrent download")?;
            if line.starts_with("finished") {
                break;
            }
            if line.starts_with("progress") {
                deadline = Instant::now() + STALL;
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let leech_cpu = self.cpu(id)?;
        let seed_cpu = self.cpu_sum(&ids)? - seed0;
        self.stop_step(&[id])?;
        let name = source.file_name().unwrap_or_default();
        self.verify(source, &dir.join(name))?;
        remove_dir(&dir)?;
        Ok(Run {
            wall,
            leech_cpu,
            seed_cpu,
        })
    }
}
