//! `sta ca`: the swarm authority's files. `init` makes the CA, `issue` a
//! host certificate; the certificates themselves come from
//! [`crate::tls::ca`]. Runs without a daemon.

use crate::tls::ca::{self, Issued};
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

pub const HELP: &str = "\
sta ca init DIR
sta ca issue --name HOST [--name HOST]... [--days N] [--out BASE] DIR

The authority of a private swarm (see README, Private swarms).

init    makes DIR/ca.key (mode 0600: keep it off the hosts) and DIR/ca.crt,
        the swarm's CA, valid 10 years; refuses to overwrite either.
issue   makes DIR/BASE.crt and DIR/BASE.key (mode 0600) for one host,
        signed by DIR's CA: give the host those two and ca.crt as
        --tls-cert, --tls-key and --tls-ca. A reissue replaces them; send
        the daemon SIGHUP to load the new ones.

    --name HOST   a name the host is reached by: a DNS name, an IP address,
                  or `*`; repeatable (the first is the certificate's
                  common name). A tracker's must include the HOST of the
                  peers' --tracker HOST:PORT.
    --days N      how long it is valid, 1 to 366 [default: 7]
    --out BASE    the files' name [default: the first --name, `*` as `any`]

Exit status: 0 done, 1 failed (a file cannot be read or written), 2 wrong usage.
";

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";

enum Fail {
    Usage(String),
    Failed(String),
}

pub fn run(args: Vec<OsString>) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(m)) => {
            eprintln!("sta ca: {m}\n");
            eprint!("{HELP}");
            ExitCode::from(2)
        }
        Err(Fail::Failed(m)) => {
            eprintln!("sta ca: {m}");
            ExitCode::from(1)
        }
    }
}

fn usage(e: impl ToString) -> Fail {
    Fail::Usage(e.to_string())
}

fn dispatch(args: Vec<OsString>) -> Result<(), Fail> {
    let mut args = pico_args::Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Ok(());
    }
    let command = args.subcommand().map_err(usage)?;
    match command.as_deref() {
        Some("init") => {
            let days: u32 = args
                .opt_value_from_str("--days")
                .map_err(usage)?
                .unwrap_or(ca::CA_DAYS);
            let dir = only_dir(args, "init DIR")?;
            init(&dir, days)
        }
        Some("issue") => {
            let names: Vec<String> = args.values_from_str("--name").map_err(usage)?;
            let days: u32 = args
                .opt_value_from_str("--days")
                .map_err(usage)?
                .unwrap_or(ca::DEFAULT_HOST_DAYS);
            let out: Option<String> = args.opt_value_from_str("--out").map_err(usage)?;
            let dir = only_dir(args, "issue --name HOST [--days N] DIR")?;
            if names.is_empty() {
                return Err(usage("issue: give the host's name with --name HOST"));
            }
            issue(&dir, &names, days, out)
        }
        Some(other) => Err(usage(format!(
            "unknown ca command '{other}' (init or issue)"
        ))),
        None => Err(usage("missing ca command (init or issue)")),
    }
}

fn only_dir(args: pico_args::Arguments, line: &str) -> Result<PathBuf, Fail> {
    let rest = args.finish();
    match rest.as_slice() {
        [dir] if !dir.is_empty() => Ok(PathBuf::from(dir)),
        [] => Err(usage(format!("missing DIR; usage: sta ca {line}"))),
        _ => Err(usage(format!(
            "unexpected argument '{}'; usage: sta ca {line}",
            rest.last()
                .map_or(String::new(), |a| a.to_string_lossy().into_owned())
        ))),
    }
}

fn now_secs() -> Result<i64, Fail> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .map_err(|_| Fail::Failed("the system clock is before 1970".into()))
}

fn init(dir: &Path, days: u32) -> Result<(), Fail> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    for path in [&key, &cert] {
        if path.exists() {
            return Err(Fail::Failed(format!(
                "{} exists: a swarm has one CA; remove it first to start a new swarm",
                path.display()
            )));
        }
    }
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail::Failed(format!("cannot create {}: {e}", dir.display())))?;
        // The CA key's directory: no one else needs to list it.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let made = ca::new_ca(now_secs()?, days).map_err(|e| Fail::Failed(e.to_string()))?;
    write_new(&key, made.key_pem.as_bytes(), 0o600)?;
    write_new(&cert, made.cert_pem.as_bytes(), 0o644)?;
    println!(
        "CA key {} (mode 0600: keep it secret, off the hosts)",
        key.display()
    );
    println!(
        "CA certificate {} (give it to every host as --tls-ca)",
        cert.display()
    );
    Ok(())
}

/// Creates `path` with `mode`, failing if it exists: the CA is never
/// overwritten, even by a race with another `sta ca init`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Fail> {
    let fail = |e: std::io::Error| Fail::Failed(format!("cannot write {}: {e}", path.display()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(fail)
}

/// Writes `path` whole or not at all (a daemon reloading on SIGHUP never
/// reads half a file), with `mode` from the start.
fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Fail> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let fail = |e: std::io::Error| Fail::Failed(format!("cannot write {}: {e}", path.display()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn read_ca_file(dir: &Path, name: &str) -> Result<String, Fail> {
    let path = dir.join(name);
    std::fs::read_to_string(&path).map_err(|e| {
        Fail::Failed(format!(
            "{}: cannot read it: {e} (is {} a CA directory? make one with `sta ca init {}`)",
            path.display(),
            dir.display(),
            dir.display()
        ))
    })
}

fn issue(dir: &Path, names: &[String], days: u32, out: Option<String>) -> Result<(), Fail> {
    for name in names {
        ca::check_name(name).map_err(|e| usage(e.to_string()))?;
    }
    let base = match out {
        Some(b) if !b.is_empty() && !b.contains('/') && b != "." && b != ".." => b,
        Some(b) => return Err(usage(format!("--out {b:?}: a file name, not a path"))),
        None => names[0].replace('*', "any"),
    };
    let ca_cert = read_ca_file(dir, CA_CERT)?;
    let ca_key = read_ca_file(dir, CA_KEY)?;
    let Issued { cert_pem, key_pem } = ca::issue(&ca_cert, &ca_key, names, now_secs()?, days)
        .map_err(|e| match e.0.starts_with("--") {
            true => usage(e),
            false => Fail::Failed(format!("{}: {e}", dir.display())),
        })?;
    let (cert, key) = (
        dir.join(format!("{base}.crt")),
        dir.join(format!("{base}.key")),
    );
    write_replace(&key, key_pem.as_bytes(), 0o600)?;
    write_replace(&cert, cert_pem.as_bytes(), 0o644)?;
    println!(
        "{} for {}, valid {days} days; key {} (mode 0600)",
        cert.display(),
        names.join(", "),
        key.display()
    );
    Ok(())
}
