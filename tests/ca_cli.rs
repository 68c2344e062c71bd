//! `sta ca`: the files it writes, their modes, what it refuses, and that a
//! host certificate it issues is one a daemon loads.

use sta::tls::files::TlsFiles;
use sta_kit::files::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn sta_ca(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sta"))
        .arg("ca")
        .args(args)
        .output()
        .expect("run sta ca")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn temp() -> TempDir {
    TempDir::create(&std::env::temp_dir(), "sta-ca").unwrap()
}

#[test]
fn init_makes_a_ca_once_and_issue_makes_loadable_host_files() {
    let tmp = temp();
    let dir = tmp.path().join("swarm");
    let d = dir.to_str().unwrap();
    let o = sta_ca(&["init", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&dir.join("ca.key")), 0o600);
    assert_eq!(mode(&dir), 0o700);
    let ca_before = std::fs::read(dir.join("ca.crt")).unwrap();

    let again = sta_ca(&["init", d]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), ca_before);

    let o = sta_ca(&[
        "issue",
        "--name",
        "127.0.0.1",
        "--name",
        "tracker.lab",
        "--days",
        "3",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("valid 3 days"));
    assert_eq!(mode(&dir.join("127.0.0.1.key")), 0o600);
    let files = TlsFiles {
        cert: dir.join("127.0.0.1.crt"),
        key: dir.join("127.0.0.1.key"),
        ca: dir.join("ca.crt"),
    };
    let config = files.load().unwrap();
    assert_eq!(config.subject, "127.0.0.1");

    // A reissue replaces the host's files, still 0600.
    let o = sta_ca(&["issue", "--name", "127.0.0.1", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(mode(&dir.join("127.0.0.1.key")), 0o600);
    assert!(files.load().is_ok());
}

#[test]
fn usage_mistakes_and_missing_files_say_what_to_do() {
    let tmp = temp();
    let d = tmp.path().to_str().unwrap();
    let o = sta_ca(&["issue", "--name", "h", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("sta ca init"), "{}", stderr(&o));

    assert!(sta_ca(&["init", d]).status.success());
    for (args, hint) in [
        (vec!["issue", d], "--name"),
        (vec!["issue", "--name", "a b", d], "host name"),
        (
            vec!["issue", "--name", "h", "--days", "0", d],
            "short-lived",
        ),
        (
            vec!["issue", "--name", "h", "--out", "../x", d],
            "not a path",
        ),
        (vec!["sign", d], "unknown ca command"),
        (vec!["init"], "missing DIR"),
    ] {
        let o = sta_ca(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(hint), "{args:?}: {}", stderr(&o));
    }

    std::fs::write(tmp.path().join("ca.crt"), "not a certificate\n").unwrap();
    let o = sta_ca(&["issue", "--name", "h", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a PEM certificate"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_daemon_is_told_which_file_is_wrong() {
    let tmp = temp();
    let d = tmp.path().to_str().unwrap();
    assert!(sta_ca(&["init", d]).status.success());
    assert!(sta_ca(&["issue", "--name", "h", d]).status.success());
    let p = |n: &str| tmp.path().join(n);
    let load = |cert: &str, key: &str, ca: &str| {
        TlsFiles {
            cert: p(cert),
            key: p(key),
            ca: p(ca),
        }
        .load()
        .unwrap_err()
    };
    let e = load("nope.crt", "h.key", "ca.crt");
    assert!(
        e.starts_with("--tls-cert ") && e.contains("cannot read"),
        "{e}"
    );
    let e = load("h.crt", "h.crt", "ca.crt");
    assert!(
        e.starts_with("--tls-key ") && e.contains("private key"),
        "{e}"
    );
    let e = load("h.crt", "h.key", "h.key");
    assert!(
        e.starts_with("--tls-ca ") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = load("h.crt", "ca.key", "ca.crt");
    assert!(
        e.starts_with("--tls-key ") && e.contains("does not fit"),
        "{e}"
    );

    let other = temp();
    let o = other.path().to_str().unwrap();
    assert!(sta_ca(&["init", o]).status.success());
    let e = TlsFiles {
        cert: p("h.crt"),
        key: p("h.key"),
        ca: other.path().join("ca.crt"),
    }
    .load()
    .unwrap_err();
    assert!(
        e.starts_with("--tls-cert ") && e.contains("not signed by"),
        "{e}"
    );
    assert_eq!(
        TlsFiles::from_settings(Some(p("h.crt")), None, None).unwrap_err(),
        "TLS needs --tls-cert, --tls-key and --tls-ca together; missing --tls-key and --tls-ca (see `sta ca --help`)"
    );
}
