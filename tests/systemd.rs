//! The systemd units and sample configs in dist/: `systemd-analyze
//! verify` finds nothing to say about the units (pointed at the binaries
//! just built), their sandboxing keeps `systemd-analyze security` below an
//! exposure of 3 ("OK"), and each daemon starts with its sample config.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 2] = ["sta-peerd.service", "sta-trackerd.service"];

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

fn need_systemd_analyze() {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "systemd-analyze is needed to check dist/systemd: apt-get install systemd"
    );
}

/// The units with ExecStart pointing at this build's binaries (verify
/// checks that the command exists).
fn units_for_this_build(tmp: &TempDir) -> Vec<PathBuf> {
    let bin = Path::new(env!("CARGO_BIN_EXE_sta-peerd"))
        .parent()
        .unwrap()
        .to_owned();
    UNITS
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dist().join("systemd").join(name)).unwrap();
            assert!(text.contains("ExecStart=/usr/local/bin/"), "{name}");
            let here = text.replace("/usr/local/bin/", &format!("{}/", bin.display()));
            let path = tmp.path().join(name);
            std::fs::write(&path, here).unwrap();
            path
        })
        .collect()
}

#[test]
fn the_units_verify_cleanly_and_are_sandboxed() {
    need_systemd_analyze();
    let tmp = TempDir::new("systemd");
    let units = units_for_this_build(&tmp);
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        out.status
    );
    for unit in &units {
        // --threshold counts in tenths: 30 is an exposure of 3.0.
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=30", "--no-pager"])
            .arg(unit)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: exposure above 3:\n{}",
            unit.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn the_daemons_start_with_the_sample_configs() {
    let tmp = TempDir::new("sample-config");
    let config = dist().join("config");
    // Flags win over the file: only the addresses and the directory are
    // moved to this test's.
    let mut t = Daemon::spawn(
        env!("CARGO_BIN_EXE_sta-trackerd"),
        &[
            "--config",
            config.join("sta-trackerd.conf").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--udp-listen",
            "off",
        ],
    );
    t.assert_running();
    let p = spawn_peerd_with(
        t.addr,
        &tmp.subdir("p"),
        &[],
        &["--config", config.join("sta-peerd.conf").to_str().unwrap()],
    );
    assert!(p.status().tracker_connected);
}
