//! Emulated hosts for end-to-end tests: `bench/netns.sh` makes them (one
//! network namespace per host on a private bridge, egress shaped with
//! tbf), [`Hosts`] removes them on drop, also when the test panics, and
//! starts the real daemons inside them.

use super::{Daemon, Peerd, STARTUP_TIMEOUT, wait_for};
use sta_kit::process::{Captured, Guard};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long `netns.sh up` or `down` may take (a few hundred `ip` calls;
/// `down` gives leftover processes 5 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Port every daemon listens on: each host has its own stack, so the same
/// port on every host never clashes.
pub const PEER_PORT: u16 = 6881;
pub const TRACKER_PORT: u16 = 6969;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/netns.sh")
}

/// Panics, saying what is missing, unless this process can make network
/// namespaces: root and a working `ip netns`. A test that needs them must
/// fail, not pass silently, where they are missing (CI runs as root).
pub fn require() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (network namespaces, veth pairs and tc); run it as root, \
         e.g. `sudo -E cargo test --release --test netns`"
    );
    for tool in [["ip", "netns", "list"], ["tc", "qdisc", "show"]] {
        let out = Command::new(tool[0]).args(&tool[1..]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`{}` failed ({}): this test needs iproute2 with network namespace support; \
                 stderr: {}",
                tool.join(" "),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "cannot run `{}` ({e}): this test needs iproute2 (`ip`, `tc`)",
                tool.join(" ")
            ),
        }
    }
}

/// Runs `netns.sh ARGS`, at most [`SCRIPT_TIMEOUT`]; its output, or the
/// reason it failed.
fn run_script(args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn("netns.sh", &mut cmd).map_err(|e| format!("start: {e}"))?;
    let child = guard.child_mut();
    let out = Captured::spawn(child.stdout.take().expect("piped")).map_err(|e| e.to_string())?;
    let err = Captured::spawn(child.stderr.take().expect("piped")).map_err(|e| e.to_string())?;
    let Some(status) = guard.wait_exit(SCRIPT_TIMEOUT) else {
        let _ = guard.kill();
        return Err(format!(
            "netns.sh {args:?} still running after {SCRIPT_TIMEOUT:?}"
        ));
    };
    let (out, err) = (
        out.text_at_end(Duration::from_secs(5)),
        err.text_at_end(Duration::from_secs(5)),
    );
    if status.success() {
        Ok(out)
    } else {
        Err(format!("netns.sh {args:?}: {status}; stderr:\n{err}"))
    }
}

/// Hosts `h0` (the tracker's, not shaped) and `h1..=hN` (shaped), made by
/// `netns.sh up`; dropping it runs `netns.sh down` for its prefix.
pub struct Hosts {
    prefix: String,
    pub count: usize,
    /// `netns.sh watch`: removes the hosts if this process dies without
    /// dropping them (Ctrl-C, SIGKILL, a panic that aborts).
    watcher: Option<Guard>,
}

impl Hosts {
    /// `n` shaped hosts at `rate` (a tc rate, `50mbit`) plus the tracker's.
    pub fn up(n: usize, rate: &str) -> Hosts {
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "sta-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        // Made before `up` runs, so that whatever `up` left is removed
        // even if it fails in a way its own trap misses.
        let mut hosts = Hosts {
            prefix,
            count: n,
            watcher: None,
        };
        let n_s = n.to_string();
        if let Err(e) = run_script(&["up", &n_s, "--rate", rate, "--prefix", &hosts.prefix]) {
            panic!("cannot make the emulated hosts: {e}");
        }
        hosts.watcher = Some(hosts.watch());
        hosts
    }

    /// Starts `netns.sh watch` for this process, in a process group of
    /// its own so that the terminal's Ctrl-C, which stops this test, does
    /// not stop the watcher too.
    fn watch(&self) -> Guard {
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .args(["watch", "--prefix", &self.prefix])
            .arg(std::process::id().to_string())
            // A test never runs for an hour; a watcher never outlives that.
            .arg("3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        Guard::spawn("netns.sh watch", &mut cmd)
            .unwrap_or_else(|e| panic!("cannot start netns.sh watch: {e}"))
    }

    pub fn namespace(&self, host: usize) -> String {
        format!("{}-h{host}", self.prefix)
    }

    /// Host `i`'s address (the harness's plan: 10.77.0.(10+i)).
    pub fn ip(&self, host: usize) -> Ipv4Addr {
        let last = u8::try_from(10 + host).expect("at most 200 hosts");
        Ipv4Addr::new(10, 77, 0, last)
    }

    /// Host `i`'s IPv6 address (fd77::(10+i), the hex digits of 10+i).
    pub fn ip6(&self, host: usize) -> std::net::Ipv6Addr {
        let last = u16::from_str_radix(&(10 + host).to_string(), 16).expect("at most 200 hosts");
        std::net::Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, last)
    }

    /// `ip netns exec NS PROGRAM ARGS...` as a daemon: `ip` execs the
    /// program in place, so the guard's pid is the daemon's own.
    pub fn spawn_daemon(&self, host: usize, program: &str, args: &[&str]) -> Daemon {
        let ns = self.namespace(host);
        let mut all = vec!["netns", "exec", &ns, program];
        all.extend_from_slice(args);
        Daemon::spawn("ip", &all)
    }

    /// `sta-trackerd` on host 0.
    pub fn tracker(&self) -> Daemon {
        let listen = SocketAddrV4::new(self.ip(0), TRACKER_PORT).to_string();
        self.spawn_daemon(
            0,
            env!("CARGO_BIN_EXE_sta-trackerd"),
            &["--listen", &listen],
        )
    }

    /// `sta-peerd` on `host`, with `extra` flags; returns once it has a
    /// session with the tracker. Its control socket is a path in `dir`,
    /// reachable from this (root) namespace: Unix sockets bound to a path
    /// are not scoped by network namespace.
    pub fn peerd(&self, host: usize, tracker: SocketAddr, dir: &Path, extra: &[&str]) -> Peerd {
        let listen = SocketAddrV4::new(self.ip(host), PEER_PORT).to_string();
        let tracker_s = tracker.to_string();
        let dir_s = dir.to_str().expect("UTF-8 temp dir");
        let mut args = vec!["--listen", &listen, "--tracker", &tracker_s, "--dir", dir_s];
        args.extend_from_slice(extra);
        let mut daemon = self.spawn_daemon(host, env!("CARGO_BIN_EXE_sta-peerd"), &args);
        let line = daemon.next_stdout_line(STARTUP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "sta-peerd on h{host} printed no `control on` line; stderr:\n{}",
                daemon.log()
            )
        });
        let control = PathBuf::from(
            line.strip_prefix("control on ")
                .unwrap_or_else(|| panic!("sta-peerd: unexpected second line {line:?}")),
        );
        let p = Peerd {
            listen: daemon.addr,
            control,
            dir: std::fs::canonicalize(dir).expect("canonical dir"),
            daemon,
        };
        wait_for(
            &format!("sta-peerd on h{host} to connect to the tracker"),
            STARTUP_TIMEOUT,
            || p.status().tracker_connected.then_some(()),
        );
        p
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Daemons declared after the hosts are dropped (stopped by pid)
        // before this runs; `down` stops anything still inside, then
        // deletes the namespaces.
        if let Err(e) = run_script(&["down", "--prefix", &self.prefix]) {
            eprintln!("removing the emulated hosts {}: {e}", self.prefix);
        }
        // Nothing left to watch: the watcher is stopped by its pid.
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.stop(Duration::from_secs(5));
        }
    }
}
