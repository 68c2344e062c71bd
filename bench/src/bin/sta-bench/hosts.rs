//! Emulated hosts for `sta-bench swarm`: `bench/netns.sh up` makes them
//! (one network namespace per host on a private bridge, each host's egress
//! shaped with tbf), [`Hosts::down`] (or dropping them) removes them, and a
//! `netns.sh watch` removes them if this process dies first.

use sta_kit::process::{Captured, Guard};
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long `netns.sh up` or `down` may take (a few dozen `ip` and `tc`
/// calls; `down` gives leftover processes 5 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest the watcher waits for this process before removing the
/// hosts anyway; no run comes near it.
const WATCH_MAX_SECONDS: &str = "3600";
/// Every daemon listens on this port on its own host: each host has its
/// own network stack, so the same port never clashes.
pub const PEER_PORT: u16 = 6881;
pub const TRACKER_PORT: u16 = 6969;

/// `bench/netns.sh` of this source tree.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("netns.sh")
}

/// Hosts `h0` (the tracker's, not shaped) and `h1..=hN`, shaped to their
/// rates.
pub struct Hosts {
    prefix: String,
    /// Removes the hosts if this process dies without [`Hosts::down`].
    watcher: Option<Guard>,
    up: bool,
}

impl Hosts {
    /// Makes hosts h1..hN, host i uploading at `rates[i - 1]` (tc rates:
    /// `50mbit`), plus h0; `prefix` names their namespaces.
    pub fn up(prefix: &str, rates: &[&str]) -> Result<Hosts, String> {
        // Made before `up` runs, so that a failed `up` is cleaned up too
        // (its own trap covers most cases, `down` the rest).
        let mut hosts = Hosts {
            prefix: prefix.to_owned(),
            watcher: None,
            up: true,
        };
        hosts.watcher = Some(hosts.watch()?);
        let n = rates.len().to_string();
        let all = rates.join(",");
        run_script(&["up", &n, "--rates", &all, "--prefix", prefix])?;
        Ok(hosts)
    }

    /// `netns.sh watch` for this process, in a process group of its own
    /// (the terminal's Ctrl-C must not stop it too) and without a parent
    /// death signal: it is there to outlive us.
    fn watch(&self) -> Result<Guard, String> {
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .args(["watch", "--prefix", &self.prefix])
            .arg(std::process::id().to_string())
            .arg(WATCH_MAX_SECONDS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        Guard::spawn("netns.sh watch", &mut cmd)
            .map_err(|e| format!("cannot start netns.sh watch: {e}"))
    }

    pub fn namespace(&self, host: usize) -> String {
        format!("{}-h{host}", self.prefix)
    }

    /// Host `i`'s address (netns.sh's plan: 10.77.0.(10+i)).
    pub fn ip(host: usize) -> Ipv4Addr {
        // netns.sh allows at most 200 hosts; the scenarios use 8.
        let last = u8::try_from(10 + host).unwrap_or(u8::MAX);
        Ipv4Addr::new(10, 77, 0, last)
    }

    /// `ADDR:PORT` a peer on `host` listens on.
    pub fn peer_addr(host: usize) -> String {
        format!("{}:{PEER_PORT}", Hosts::ip(host))
    }

    pub fn tracker_addr() -> String {
        format!("{}:{TRACKER_PORT}", Hosts::ip(0))
    }

    /// The arguments of `ip` that run `program args...` on `host`: `ip
    /// netns exec` execs it in place, so the child's pid is the program's.
    pub fn exec_args(&self, host: usize, program: &Path, args: &[OsString]) -> Vec<OsString> {
        let mut all: Vec<OsString> = vec!["netns".into(), "exec".into()];
        all.push(self.namespace(host).into());
        all.push(program.as_os_str().to_owned());
        all.extend(args.iter().cloned());
        all
    }

    /// Stops what is left in the namespaces (by pid) and deletes them;
    /// then stops the watcher, which has nothing left to do.
    pub fn down(&mut self) -> Result<(), String> {
        if !self.up {
            return Ok(());
        }
        self.up = false;
        let result = run_script(&["down", "--prefix", &self.prefix]).map(drop);
        if let Some(mut w) = self.watcher.take() {
            let _ = w.stop(Duration::from_secs(5));
        }
        result
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            eprintln!(
                "sta-bench: removing the emulated hosts {}: {e}",
                self.prefix
            );
        }
    }
}

/// Runs `netns.sh ARGS`, at most [`SCRIPT_TIMEOUT`]; its stdout, or why
/// it failed.
fn run_script(args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn("netns.sh", &mut cmd).map_err(|e| format!("start: {e}"))?;
    let child = guard.child_mut();
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("netns.sh: its output was not captured".into());
    };
    let out = Captured::spawn(out).map_err(|e| e.to_string())?;
    let err = Captured::spawn(err).map_err(|e| e.to_string())?;
    let Some(status) = guard.wait_exit(SCRIPT_TIMEOUT) else {
        let _ = guard.kill();
        return Err(format!(
            "netns.sh {args:?} still running after {SCRIPT_TIMEOUT:?}"
        ));
    };
    let end = Duration::from_secs(5);
    let (out, err) = (out.text_at_end(end), err.text_at_end(end));
    if status.success() {
        Ok(out)
    } else {
        Err(format!("netns.sh {args:?}: {status}; stderr:\n{err}"))
    }
}
