//! The STA side: `sta-trackerd` and `sta-peerd` children, driven over
//! their control sockets.

use crate::harness::{Bench, remove_dir};
use crate::tables::Run;
use crate::{POLL, STALL, STARTUP, Step, failed, say};
use serde_json::Value;
use sta::cli::client::{Client, Event, file_of, seeders_listed};
use sta::control::{ControlRequest, FileReport, StatusReport};
use sta::meta::info::to_hex;
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// A running `sta-peerd`.
pub struct StaPeer {
    pub id: usize,
    pub dir: PathBuf,
    pub client: Client,
}

impl Bench {
    pub fn start_tracker(&mut self) -> Step<()> {
        let args = ["--listen", "127.0.0.1:0", "--log-level", "warn"].map(OsString::from);
        let trackerd = self.trackerd.clone();
        let id = self.spawn("tracker", &trackerd, &args)?;
        let text = self.wait_line(id, "listening on ", Instant::now() + STARTUP)?;
        let addr: SocketAddr = text
            .parse()
            .map_err(|_| failed(format!("tracker printed `listening on {text}`")))?;
        say(format_args!(
            "tracker: pid {} on {addr}",
            self.proc(id)?.pid()
        ));
        self.tracker = Some(addr);
        self.tracker_id = Some(id);
        Ok(())
    }

    pub fn spawn_peerd(&mut self, name: &str) -> Step<(usize, PathBuf)> {
        let dir = self.fresh_dir(name)?;
        let tracker = self.tracker.ok_or_else(|| failed("no tracker"))?;
        let mut args: Vec<OsString> = [
            "--tracker",
            &tracker.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--dir",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push(dir.clone().into_os_string());
        let peerd = self.peerd.clone();
        let log_name = dir.file_name().unwrap_or(OsStr::new(name)).to_owned();
        Ok((self.spawn(&log_name.to_string_lossy(), &peerd, &args)?, dir))
    }

    pub fn peerd_ready(&mut self, id: usize, dir: PathBuf, deadline: Instant) -> Step<StaPeer> {
        let socket = PathBuf::from(self.wait_line(id, "control on ", deadline)?);
        Ok(StaPeer {
            id,
            dir,
            client: Client::from_socket(socket),
        })
    }

    pub fn start_peerd(&mut self, name: &str) -> Step<StaPeer> {
        let (id, dir) = self.spawn_peerd(name)?;
        self.peerd_ready(id, dir, Instant::now() + STARTUP)
    }

    /// Sends `request` from a thread; its events arrive on `tx` tagged `tag`.
    pub fn call(
        &self,
        client: &Client,
        request: ControlRequest,
        tag: usize,
        tx: Sender<(usize, Event)>,
    ) -> Step<()> {
        client
            .call_on_thread(request, move |event| {
                let _ = tx.send((tag, event));
            })
            .map_err(|e| failed(format!("cannot start a thread: {e}")))
    }

    /// The next event on `rx`, watching the children, the signal flag and
    /// the deadline.
    pub fn next_event(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        deadline: Instant,
        what: &str,
    ) -> Step<(usize, Event)> {
        loop {
            self.check_children()?;
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "{what}: no progress for {} s",
                    STALL.as_secs()
                )));
            }
            match rx.recv_timeout(POLL) {
                Ok(ev) => return Ok(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(failed(format!("{what}: the request ended without a reply")));
                }
            }
        }
    }

    /// One request, its final `ok` reply.
    pub fn request(&mut self, peer: &StaPeer, request: ControlRequest, what: &str) -> Step<Value> {
        let (tx, rx) = mpsc::channel();
        self.call(&peer.client, request, 0, tx)?;
        let deadline = Instant::now() + STALL;
        loop {
            if let (_, Event::Done(r)) = self.next_event(&rx, deadline, what)? {
                return r.map_err(|e| failed(format!("{what}: {e}")));
            }
        }
    }

    pub fn share(&mut self, peer: &StaPeer, file: &Path) -> Step<FileReport> {
        let v = self.request(peer, ControlRequest::Share(file.to_path_buf()), "share")?;
        file_of(&v).map_err(|e| failed(format!("share: {e}")))
    }

    /// Waits until the tracker lists `n` seeders of the file.
    pub fn wait_listed(&mut self, peer: &StaPeer, file: &FileReport, n: u32) -> Step<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let v = self.request(peer, ControlRequest::List, "list")?;
            let seen = seeders_listed(&v, file);
            if seen >= n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "the tracker lists {seen} seeders, not {n}, after {} s",
                    STARTUP.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(100));
            self.check_stop()?;
        }
    }

    /// Bytes `peer` uploaded of the file.
    pub fn uploaded(&mut self, peer: &StaPeer, file: &FileReport) -> Step<u64> {
        let v = self.request(peer, ControlRequest::Status, "status")?;
        let st = StatusReport::from_json(&v).map_err(|e| failed(format!("status: {e}")))?;
        Ok(st
            .files
            .iter()
            .filter(|f| f.info_hash == file.info_hash)
            .map(|f| f.uploaded)
            .sum())
    }

    /// Starts seeders `name1..` that share `file`; waits until all are
    /// listed (with `already` seeders listed before).
    pub fn sta_seeders(
        &mut self,
        prefix: &str,
        range: std::ops::RangeInclusive<usize>,
        file: &Path,
        already: u32,
    ) -> Step<(Vec<StaPeer>, Option<FileReport>)> {
        let mut peers = Vec::new();
        for i in range {
            peers.push(self.start_peerd(&format!("{prefix}{i}"))?);
        }
        let (tx, rx) = mpsc::channel();
        for (i, p) in peers.iter().enumerate() {
            self.call(
                &p.client,
                ControlRequest::Share(file.to_path_buf()),
                i,
                tx.clone(),
            )?;
        }
        drop(tx);
        let mut report = None;
        for _ in 0..peers.len() {
            let deadline = Instant::now() + STALL;
            loop {
                if let (_, Event::Done(r)) = self.next_event(&rx, deadline, "share")? {
                    let v = r.map_err(|e| failed(format!("share: {e}")))?;
                    report = Some(file_of(&v).map_err(|e| failed(format!("share: {e}")))?);
                    break;
                }
            }
        }
        if let (Some(f), Some(p)) = (&report, peers.first()) {
            self.wait_listed(p, f, already + peers.len() as u32)?;
        }
        Ok((peers, report))
    }

    /// One STA download: spawn the leecher, `get`, until `done`.
    pub fn sta_run(&mut self, seeders: &[usize], file: &FileReport, source: &Path) -> Step<Run> {
        let seed0 = self.cpu_sum(seeders)?;
        let t0 = Instant::now();
        let (id, dir) = self.spawn_peerd("sta-leech")?;
        let leecher = self.peerd_ready(id, dir, t0 + STARTUP)?;
        let (tx, rx) = mpsc::channel();
        let get = ControlRequest::Get {
            target: to_hex(&file.info_hash),
            out_dir: Some(leecher.dir.clone()),
            only: Vec::new(),
            peers: Vec::new(),
        };
        self.call(&leecher.client, get, 0, tx)?;
        let mut deadline = Instant::now() + STALL;
        let got = loop {
            match self.next_event(&rx, deadline, "STA download")? {
                (_, Event::Progress(_)) => deadline = Instant::now() + STALL,
                (_, Event::Done(r)) => {
                    let v = r.map_err(|e| failed(format!("STA download: {e}")))?;
                    break file_of(&v).map_err(|e| failed(format!("STA download: {e}")))?;
                }
            }
        };
        let wall = t0.elapsed().as_secs_f64();
        let leech_cpu = self.cpu(id)?;
        let seed_cpu = self.cpu_sum(seeders)? - seed0;
        self.stop_step(&[id])?;
        self.verify(source, &got.path)?;
        remove_dir(&leecher.dir)?;
        Ok(Run {
            wall,
            leech_cpu,
            seed_cpu,
        })
    }
}
