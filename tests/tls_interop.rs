//! libtorrent 2.0.8 (Debian's python3-libtorrent, built with OpenSSL) in
//! an STA TLS swarm, on 127.0.0.1: SSL torrents (the info dict's
//! `ssl-cert` is the swarm's CA) both ways, every certificate from
//! `sta ca`. libtorrent finds its peers through sta-trackerd's BitTorrent
//! UDP tracker, which a TLS tracker opens only with `--udp-listen`. Every
//! wait is bounded, and every process is stopped by its pid when its
//! guard is dropped. The tests fail, with an install hint, when libtorrent
//! is missing.

mod common;

use common::proc::Proc;
use common::tls::{sta_ca, tls_flags};
use common::*;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LENGTH: u64 = (2 << 20) + 54_321;
const SEED_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A swarm: its CA directory, a TLS tracker with its UDP tracker on.
struct Swarm {
    ca: PathBuf,
    tracker: Daemon,
    udp: SocketAddr,
}

impl Swarm {
    fn new(tmp: &TempDir) -> Swarm {
        Swarm::with_tracker_trusting(tmp, None)
    }

    /// A swarm whose tracker also trusts the CA certificates of `extra`
    /// (a PEM bundle that holds the swarm's CA too).
    fn with_tracker_trusting(tmp: &TempDir, extra: Option<&dyn Fn(&Path) -> PathBuf>) -> Swarm {
        let ca = tmp.subdir("ca");
        sta_ca(&["init", ca.to_str().unwrap()]);
        let mut args = Swarm::issue(&ca, "127.0.0.1", &[]);
        if let Some(bundle) = extra {
            let at = args.iter().position(|a| a == "--tls-ca").unwrap() + 1;
            args[at] = bundle(&ca).to_str().unwrap().to_owned();
        }
        args.extend(["--udp-listen", "127.0.0.1:0", "--announce-interval", "1"].map(String::from));
        let mut tracker = common::tracker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let line = tracker
            .next_stdout_line(Duration::from_secs(5))
            .expect("the udp listening line");
        let udp = line
            .strip_prefix("udp listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not the udp line: {line:?}"));
        Swarm { ca, tracker, udp }
    }

    /// Issues `name` (and `more` names); its --tls-* flags.
    fn issue(ca: &Path, name: &str, more: &[&str]) -> Vec<String> {
        let mut args = vec!["issue", "--name", name];
        for n in more {
            args.extend(["--name", n]);
        }
        args.extend(["--out", name, ca.to_str().unwrap()]);
        sta_ca(&args);
        tls_flags(ca, name, &ca.join("ca.crt"))
    }

    /// A TLS sta-peerd of this swarm, for every file (`*`), sharing `shares`.
    fn peerd(&self, name: &str, dir: &Path, shares: &[&Path]) -> Peerd {
        let flags = Swarm::issue(&self.ca, name, &["*"]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        spawn_peerd_with(self.tracker.addr, dir, shares, &flags)
    }

    /// libtorrent's --ssl-cert/--ssl-key flags for a certificate `name`
    /// (and `*`, so it may trade every file of the swarm).
    fn lt_flags(&self, name: &str) -> Vec<String> {
        Swarm::issue(&self.ca, name, &["*"]);
        let f = |ext: &str| {
            self.ca
                .join(format!("{name}.{ext}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        vec!["--ssl-cert".into(), f("crt"), "--ssl-key".into(), f("key")]
    }

    fn announce(&self) -> String {
        format!("udp://{}/announce", self.udp)
    }
}

/// lt_peer.py MODE of `torrent` into `save`, with a certificate of the
/// swarm, peers from the tracker, announcing every second.
fn lt(mode: &str, swarm: &Swarm, name: &str, torrent: &Path, save: &Path) -> Proc {
    let mut args: Vec<String> = [mode, "--timeout", "60", "--reannounce", "1"]
        .map(String::from)
        .to_vec();
    args.extend(["--torrent".into(), torrent.to_str().unwrap().to_owned()]);
    args.extend(["--save".into(), save.to_str().unwrap().to_owned()]);
    args.extend(swarm.lt_flags(name));
    Proc::lt_peer(&args.iter().map(OsStr::new).collect::<Vec<_>>())
}

/// A TLS sta-peerd seeding a fresh file `name`, the file, and the SSL
/// torrent `sta torrent` wrote for it (announcing the UDP tracker).
fn sta_seeder(tmp: &TempDir, swarm: &Swarm, name: &str) -> (Peerd, PathBuf, PathBuf) {
    let src = tmp.subdir("src").join(name);
    write_random_file(&src, LENGTH, 31);
    let seeder = swarm.peerd("seed", &tmp.subdir("seed"), &[&src]);
    seeder.wait_seeding(name, SEED_TIMEOUT);
    let torrent = tmp.path().join(format!("{name}.torrent"));
    let url = swarm.announce();
    seeder
        .sta(&[
            "torrent",
            name,
            "-o",
            torrent.to_str().unwrap(),
            "--tracker-url",
            &url,
        ])
        .ok();
    let bytes = std::fs::read(&torrent).unwrap();
    let t = sta::meta::torrent::Torrent::read(&bytes).unwrap();
    assert!(t.info.ssl_cert().is_some(), "an SSL torrent");
    (seeder, src, torrent)
}

/// A libtorrent seeder of a fresh file `name` whose SSL torrent STA
/// wrote (then only libtorrent holds the file): the seeder, its SSL port,
/// the file, the torrent.
fn lt_ssl_seeder(tmp: &TempDir, swarm: &Swarm, name: &str) -> (Proc, String, PathBuf, PathBuf) {
    let (maker, src, torrent) = sta_seeder(tmp, swarm, name);
    drop(maker);
    let lt_dir = tmp.subdir("lt");
    std::fs::copy(&src, lt_dir.join(name)).unwrap();
    let mut seed = lt("seed", swarm, "lt-seed", &torrent, &lt_dir);
    // Its only listener is the SSL one (`127.0.0.1:0s`).
    let listening = seed.wait_line("listening on ", SEED_TIMEOUT);
    let ssl_port = listening.rsplit(':').next().unwrap().to_owned();
    seed.wait_line("seeding", SEED_TIMEOUT);
    (seed, ssl_port, src, torrent)
}

#[test]
fn libtorrent_downloads_an_ssl_torrent_from_a_tls_sta_peerd() {
    need_libtorrent();
    let tmp = TempDir::in_shm("tls-interop-lt-leech");
    let swarm = Swarm::new(&tmp);
    let (seeder, src, torrent) = sta_seeder(&tmp, &swarm, "ssl-a.bin");
    let save = tmp.subdir("lt");
    let mut leech = lt("leech", &swarm, "lt-leech", &torrent, &save);
    leech.wait_line("finished", CLIENT_TIMEOUT);
    assert_same_file(&src, &save.join("ssl-a.bin"));
    let up = seeder.file("ssl-a.bin").unwrap().uploaded;
    assert!(up >= LENGTH, "the STA seeder uploaded {up} bytes");
}

#[test]
fn sta_downloads_an_ssl_torrent_from_a_libtorrent_seeder() {
    need_libtorrent();
    let tmp = TempDir::in_shm("tls-interop-lt-seed");
    let swarm = Swarm::new(&tmp);
    let (mut seed, ssl_port, src, torrent) = lt_ssl_seeder(&tmp, &swarm, "ssl-b.bin");

    let leecher = swarm.peerd("leech", &tmp.subdir("leech"), &[]);
    let got = leecher.sta(&["get", torrent.to_str().unwrap()]).ok();
    let dest = leecher.dir.join("ssl-b.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);
    assert!(seed.running(), "{}", seed.stderr());
    // The STA leecher dialed the port libtorrent announced over UDP for
    // the SSL torrent: its SSL port (BEP 15 has no field for another).
    let joined = format!("peer 127.0.0.1:{ssl_port} joined ssl-b.bin");
    assert!(leecher.log().contains(&joined), "{}", leecher.log());
}

/// lt_peer.py leech of `torrent` with the certificate `ca/name.crt`
/// (issued by the caller), peers from the tracker.
fn lt_leech_as(ca: &Path, name: &str, torrent: &Path, save: &Path) -> Proc {
    let f = |ext: &str| {
        ca.join(format!("{name}.{ext}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let mut args: Vec<String> = ["leech", "--timeout", "60", "--reannounce", "1"]
        .map(String::from)
        .to_vec();
    args.extend(["--torrent".into(), torrent.to_str().unwrap().to_owned()]);
    args.extend(["--save".into(), save.to_str().unwrap().to_owned()]);
    args.extend(["--ssl-cert".into(), f("crt"), "--ssl-key".into(), f("key")]);
    Proc::lt_peer(&args.iter().map(OsStr::new).collect::<Vec<_>>())
}

#[test]
fn a_tls_sta_peerd_refuses_libtorrent_with_a_foreign_or_misnamed_certificate() {
    need_libtorrent();
    let tmp = TempDir::in_shm("tls-interop-lt-refused");
    let swarm = Swarm::new(&tmp);
    let (seeder, _src, torrent) = sta_seeder(&tmp, &swarm, "ssl-c.bin");

    // Of another swarm's CA: refused at the handshake.
    let theirs = tmp.subdir("theirs");
    sta_ca(&["init", theirs.to_str().unwrap()]);
    Swarm::issue(&theirs, "intruder", &["*"]);
    let _intruder = lt_leech_as(&theirs, "intruder", &torrent, &tmp.subdir("i"));
    // Of this swarm, but for another file's name only: refused after it.
    Swarm::issue(&swarm.ca, "other-file", &["other.bin"]);
    let _misnamed = lt_leech_as(&swarm.ca, "other-file", &torrent, &tmp.subdir("m"));
    for what in ["not signed by this swarm's CA", "not for \"ssl-c.bin\""] {
        wait_for(
            &format!("the seeder to log {what:?}"),
            CLIENT_TIMEOUT,
            || seeder.log().contains(what).then_some(()),
        );
    }
    assert_eq!(seeder.file("ssl-c.bin").unwrap().uploaded, 0);
    assert!(seeder.status().tracker_connected, "no harm to the session");
}

#[test]
fn a_libtorrent_seeder_refuses_an_sta_peerd_whose_certificate_another_ca_signed() {
    // The intruder trusts the swarm's CA (its certificate is public), so
    // it takes libtorrent's certificate; its own is another CA's. The
    // tracker is told to trust both CAs, so the intruder learns
    // libtorrent's SSL port: only libtorrent's check of the intruder's
    // certificate against the torrent's `ssl-cert` stands in the way.
    need_libtorrent();
    let tmp = TempDir::in_shm("tls-interop-lt-refuses");
    let theirs = tmp.subdir("theirs");
    sta_ca(&["init", theirs.to_str().unwrap()]);
    let bundle_of = |ca: &Path| {
        let bundle = ca.join("both.crt");
        let mut pem = std::fs::read(ca.join("ca.crt")).unwrap();
        pem.extend(std::fs::read(theirs.join("ca.crt")).unwrap());
        std::fs::write(&bundle, pem).unwrap();
        bundle
    };
    let swarm = Swarm::with_tracker_trusting(&tmp, Some(&bundle_of));
    let (mut seed, ssl_port, src, torrent) = lt_ssl_seeder(&tmp, &swarm, "ssl-d.bin");

    let mut flags = Swarm::issue(&theirs, "intruder", &["*"]);
    let at = flags.iter().position(|a| a == "--tls-ca").unwrap() + 1;
    flags[at] = swarm.ca.join("both.crt").to_str().unwrap().to_owned();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let intruder = spawn_peerd_with(swarm.tracker.addr, &tmp.subdir("intruder"), &[], &flags);
    // `sta get` waits for the file: it runs in the background, and the
    // download it starts goes on in sta-peerd when it is stopped.
    let mut get = std::process::Command::new(env!("CARGO_BIN_EXE_sta"))
        .arg("--control")
        .arg(&intruder.control)
        .arg("get")
        .arg(&torrent)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sta get runs");
    let refused = format!("TLS session to 127.0.0.1:{ssl_port}");
    let line = wait_for(
        "the intruder to be refused by libtorrent",
        CLIENT_TIMEOUT,
        || {
            intruder
                .log()
                .lines()
                .find(|l| l.contains(&refused) && l.contains("the other side refused us"))
                .map(str::to_owned)
        },
    );
    let _ = get.kill();
    let _ = get.wait();
    eprintln!("the intruder logged: {line}");
    // libtorrent (OpenSSL) answers with alert unknown_ca.
    assert!(
        line.contains("does not trust the CA that signed our certificate"),
        "{line}"
    );
    let file = intruder.file("ssl-d.bin").expect("the download is listed");
    assert_eq!(file.downloaded, 0, "the intruder got no piece");
    assert!(!intruder.dir.join("ssl-d.bin").exists());
    // libtorrent goes on serving the swarm.
    assert!(seed.running(), "{}", seed.stderr());
    let leecher = swarm.peerd("leech", &tmp.subdir("leech"), &[]);
    let got = leecher.sta(&["get", torrent.to_str().unwrap()]).ok();
    assert_same_file(&src, Path::new(got.stdout.trim()));
}
