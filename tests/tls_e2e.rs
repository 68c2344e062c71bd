//! Private swarms over the real binaries: a CA made with `sta ca`, a
//! tracker serving TLS only, peers dialing it with their certificates.
//! Who is refused, that both sides' logs say why, that a refusal harms no
//! other session, and that SIGHUP loads a reissued certificate.

mod common;

use common::tls::{sta_ca, tls_flags};
use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LOG_WAIT: Duration = Duration::from_secs(15);

/// A CA directory with host certificates issued by `sta ca`.
struct Ca {
    dir: PathBuf,
}

impl Ca {
    fn new(dir: PathBuf) -> Ca {
        sta_ca(&["init", dir.to_str().unwrap()]);
        Ca { dir }
    }

    /// Issues `name`'s files (again); returns its --tls-* flags.
    fn issue(&self, name: &str, days: &str) -> Vec<String> {
        self.issue_for(name, &[], days)
    }

    /// A peer's certificate, for every file of the swarm (`*`).
    fn issue_peer(&self, name: &str) -> Vec<String> {
        self.issue_for(name, &["*"], "7")
    }

    /// Issues `name`'s files with `more` names too.
    fn issue_for(&self, name: &str, more: &[&str], days: &str) -> Vec<String> {
        let mut args = vec!["issue", "--name", name];
        for n in more {
            args.extend(["--name", n]);
        }
        args.extend(["--days", days, "--out", name, self.dir.to_str().unwrap()]);
        sta_ca(&args);
        self.flags(name, &self.dir.join("ca.crt"))
    }

    fn flags(&self, name: &str, ca: &Path) -> Vec<String> {
        tls_flags(&self.dir, name, ca)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn wait_log(who: &str, what: &str, log: impl Fn() -> String) {
    wait_for(&format!("{who} to log {what:?}"), LOG_WAIT, || {
        log().contains(what).then_some(())
    });
}

#[test]
fn share_and_get_over_tls_while_plain_text_is_refused() {
    let tmp = TempDir::new("tls-get");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    wait_log("the tracker", "(TLS only)", || t.log());
    let src = tmp.subdir("src").join("private.bin");
    write_random_file(&src, 3 << 20, 17);
    let seed_flags = ca.issue_peer("seed");
    let seeder = spawn_peerd_with(t.addr, &tmp.subdir("s"), &[&src], &strs(&seed_flags));
    seeder.wait_seeding("private.bin", Duration::from_secs(30));
    let leecher = spawn_peerd_with(
        t.addr,
        &tmp.subdir("l"),
        &[],
        &strs(&ca.issue_peer("leech")),
    );

    // A plain-text tracker client knocks: refused, logged, closed.
    let mut plain = std::net::TcpStream::connect(t.addr).unwrap();
    plain.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut frame = Vec::new();
    hello(peer_id(9), 1).encode(&mut frame);
    plain.write_all(&frame).unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert_eq!(
        answer.first(),
        Some(&0x15),
        "a TLS alert, then the end: {answer:?}"
    );
    wait_log("the tracker", "not TLS", || t.log());
    // A plain-text sta-peerd gets nowhere either, and says so.
    let outsider = spawn_peerd_unready(t.addr, &tmp.subdir("o"), &[], &[]);
    wait_log("the outsider", "the tracker speaks TLS", || outsider.log());

    let got = leecher.sta(&["get", "private.bin"]).ok();
    let dest = leecher.dir.join("private.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);
    assert!(
        seeder.status().tracker_connected,
        "the knocks harmed no session"
    );
    assert!(!outsider.status().tracker_connected);
    assert!(
        seeder.log().contains("TLS certificate \"seed\""),
        "{}",
        seeder.log()
    );
}

#[test]
fn certificates_of_another_swarm_are_refused_and_both_logs_say_why() {
    let tmp = TempDir::new("tls-foreign");
    let ours = Ca::new(tmp.subdir("ours"));
    let theirs = Ca::new(tmp.subdir("theirs"));
    let t = tracker(&strs(&ours.issue("127.0.0.1", "7")));
    let member = spawn_peerd_with(
        t.addr,
        &tmp.subdir("m"),
        &[],
        &strs(&ours.issue("member", "7")),
    );

    // Trusts our tracker, but holds a certificate of the other swarm.
    theirs.issue("intruder", "7");
    let both = tmp.path().join("both.crt");
    let pems = [ours.dir.join("ca.crt"), theirs.dir.join("ca.crt")]
        .map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&both, pems.concat()).unwrap();
    let flags = theirs.flags("intruder", &both);
    let intruder = spawn_peerd_unready(t.addr, &tmp.subdir("i"), &[], &strs(&flags));
    wait_log("the tracker", "not signed by this swarm's CA", || t.log());
    wait_log("the intruder", "UnknownCA", || intruder.log());

    // Trusts only its own swarm: it refuses our tracker, which hears why.
    let stranger_flags = theirs.issue("stranger", "7");
    let stranger = spawn_peerd_unready(t.addr, &tmp.subdir("x"), &[], &strs(&stranger_flags));
    wait_log("the stranger", "not signed by this swarm's CA", || {
        stranger.log()
    });
    wait_log("the tracker", "the other side refused us", || t.log());

    assert!(!intruder.status().tracker_connected);
    assert!(!stranger.status().tracker_connected);
    assert!(
        member.status().tracker_connected,
        "the refusals harmed no session"
    );
}

#[test]
fn a_tls_peer_of_a_plain_text_tracker_hears_why_and_so_does_the_tracker() {
    let tmp = TempDir::new("tls-plain-tracker");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&[]);
    let p = spawn_peerd_unready(t.addr, &tmp.subdir("p"), &[], &strs(&ca.issue("peer", "7")));
    wait_log("the tracker", "TLS on a plain-text port", || t.log());
    wait_log("the peer", "not TLS", || p.log());
    assert!(!p.status().tracker_connected);
}

#[test]
fn sighup_loads_a_reissued_certificate_and_keeps_the_old_one_if_the_new_is_bad() {
    let tmp = TempDir::new("tls-reload");
    let ca = Ca::new(tmp.subdir("ca"));
    let mut t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    let peer_flags = ca.issue("peer", "7");
    let p = spawn_peerd_with(t.addr, &tmp.subdir("p"), &[], &strs(&peer_flags));

    ca.issue("127.0.0.1", "2");
    sighup(t.pid());
    wait_log(
        "the tracker",
        "reload: TLS certificate \"127.0.0.1\", valid until",
        || t.log(),
    );
    ca.issue("peer", "3");
    sighup(p.pid());
    wait_log("the peer", "reload: TLS certificate \"peer\"", || p.log());
    // A new session is made with the new certificates on both sides.
    let late = spawn_peerd_with(
        t.addr,
        &tmp.subdir("late"),
        &[],
        &strs(&ca.issue("late", "1")),
    );
    assert!(late.log().contains("expires") || late.log().contains("valid until"));

    std::fs::write(ca.dir.join("127.0.0.1.crt"), "garbage\n").unwrap();
    sighup(t.pid());
    wait_log("the tracker", "keeping the TLS certificate in use", || {
        t.log()
    });
    t.assert_running();
    let again = spawn_peerd_with(
        t.addr,
        &tmp.subdir("again"),
        &[],
        &strs(&ca.issue("again", "7")),
    );
    assert!(again.status().tracker_connected);
    assert!(p.status().tracker_connected);
}

/// An OpenSSL client (Python's ssl): `version` is the highest TLS version
/// it offers. Sends an STA hello; prints `answer HEX` or `error TEXT`.
const OPENSSL_CLIENT: &str = r#"
import socket, ssl, sys
host, port, cert, key, ca, version, hello = sys.argv[1:8]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.maximum_version = getattr(ssl.TLSVersion, version)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
try:
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(bytes.fromhex(hello))
            print("answer", s.recv(65536).hex())
except Exception as e:
    print("error", e)
"#;

fn openssl_client(addr: std::net::SocketAddr, flags: &[String], version: &str) -> String {
    let mut frame = Vec::new();
    hello(peer_id(7), 1).encode(&mut frame);
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new(PYTHON)
        .args([
            "-c",
            OPENSSL_CLIENT,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .args([&flags[1], &flags[3], &flags[5]])
        .args([version, &hex])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn openssl_speaks_sta_over_tls_13_and_a_downgrade_to_12_is_refused() {
    let tmp = TempDir::new("tls-openssl");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    let flags = ca.issue("openssl", "7");
    let answer = openssl_client(t.addr, &flags, "TLSv1_3");
    let hex = answer
        .strip_prefix("answer ")
        .unwrap_or_else(|| panic!("{answer}"));
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let welcome = sta::wire::tracker::Response::decode(&bytes);
    assert!(
        matches!(
            welcome,
            Ok(Some((sta::wire::tracker::Response::Welcome { .. }, _)))
        ),
        "{welcome:?}"
    );

    let refused = openssl_client(t.addr, &flags, "TLSv1_2");
    assert!(refused.starts_with("error"), "{refused}");
    wait_log("the tracker", "TLS 1.3 only", || t.log());
}

#[test]
fn a_peer_link_needs_a_certificate_for_the_file_or_star() {
    let tmp = TempDir::new("tls-peer-name");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    let src = tmp.subdir("src").join("named.bin");
    write_random_file(&src, 2 << 20, 5);
    let seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &strs(&ca.issue_peer("seed")),
    );
    seeder.wait_seeding("named.bin", Duration::from_secs(30));

    // A member of the swarm, but its certificate names only its host.
    let host_only = spawn_peerd_with(
        t.addr,
        &tmp.subdir("h"),
        &[],
        &strs(&ca.issue("hostonly", "7")),
    );
    let mut get = Command::new(env!("CARGO_BIN_EXE_sta"))
        .args([
            "--control",
            host_only.control.to_str().unwrap(),
            "get",
            "named.bin",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_log(
        "the seeder",
        "TLS peer link for \"named.bin\" refused: its certificate is for",
        || seeder.log(),
    );
    let _ = get.kill();
    let _ = get.wait();
    assert!(!host_only.dir.join("named.bin").exists());

    // A certificate for the file's name is as good as `*`.
    let named = spawn_peerd_with(
        t.addr,
        &tmp.subdir("n"),
        &[],
        &strs(&ca.issue_for("fetcher", &["named.bin"], "7")),
    );
    let got = named.sta(&["get", "named.bin"]).ok();
    assert_eq!(
        got.stdout.trim(),
        named.dir.join("named.bin").to_str().unwrap()
    );
    assert_same_file(&src, &named.dir.join("named.bin"));
}

/// A peer admitted for one file (SNI and a certificate for its name) that
/// asks for another in its BEP 3 handshake is closed before the engine
/// sees it; asking for the file it was admitted for gets an answer.
#[test]
fn a_peer_link_admitted_for_one_file_cannot_trade_another() {
    use sta::tls::files::TlsFiles;
    use sta::tls::torrent;
    let tmp = TempDir::new("tls-peer-bound");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    let src = tmp.subdir("src");
    let (a, b) = (src.join("a.bin"), src.join("b.bin"));
    write_random_file(&a, 1 << 20, 1);
    write_random_file(&b, 1 << 20, 2);
    let seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&a, &b],
        &strs(&ca.issue_peer("seed")),
    );
    seeder.wait_seeding("a.bin", Duration::from_secs(30));
    seeder.wait_seeding("b.bin", Duration::from_secs(30));
    // A TLS daemon's shares are SSL torrents: `ssl-cert` is hashed.
    let swarm = torrent::SwarmCa::from_pem(&std::fs::read(ca.dir.join("ca.crt")).unwrap()).unwrap();
    let ssl_hash = |path: &Path| {
        let info = info_of_file(path, 512 * 1024);
        info.with_ssl_cert(&swarm.pem).unwrap().info_hash
    };
    let (hash_a, hash_b) = (ssl_hash(&a), ssl_hash(&b));
    ca.issue_for("only-a", &["a.bin"], "7");
    let identity = TlsFiles {
        cert: ca.dir.join("only-a.crt"),
        key: ca.dir.join("only-a.key"),
        ca: ca.dir.join("ca.crt"),
    }
    .load()
    .unwrap();

    let handshake_for = |asked: [u8; 20]| -> Vec<u8> {
        let config = torrent::client_for(&identity, "a.bin").unwrap();
        let conn =
            rustls::ClientConnection::new(config, torrent::server_name(&hash_a).unwrap()).unwrap();
        let tcp = std::net::TcpStream::connect(seeder.listen).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut hs = Vec::new();
        sta::wire::peer::Handshake::new(asked, *b"-XX0000-tls-e2e-test").encode(&mut hs);
        tls.write_all(&hs).unwrap();
        let mut answer = vec![0; 68];
        match tls.read_exact(&mut answer) {
            Ok(()) => answer,
            Err(_) => Vec::new(),
        }
    };
    assert!(handshake_for(hash_b).is_empty(), "closed without an answer");
    wait_log("the seeder", "its handshake is for another file", || {
        seeder.log()
    });
    let answer = handshake_for(hash_a);
    assert_eq!(answer.get(28..48), Some(&hash_a[..]), "{answer:?}");
}

#[test]
fn a_tls_share_is_an_ssl_torrent_of_its_ca_and_no_one_else_joins_it() {
    let tmp = TempDir::new("tls-sslcert");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    let src = tmp.subdir("src").join("ssl.bin");
    write_random_file(&src, 100_000, 23);
    let seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &strs(&ca.issue_peer("seed")),
    );
    seeder.wait_seeding("ssl.bin", Duration::from_secs(30));
    let file = tmp.path().join("ssl.torrent");
    seeder
        .sta(&["torrent", "ssl.bin", "-o", file.to_str().unwrap()])
        .ok();
    let torrent = sta::meta::torrent::Torrent::read(&std::fs::read(&file).unwrap()).unwrap();
    let pem = torrent
        .info
        .ssl_cert()
        .expect("an ssl-cert in the info dict");
    let ours = std::fs::read(ca.dir.join("ca.crt")).unwrap();
    let swarm = sta::tls::torrent::SwarmCa::from_pem(&ours).unwrap();
    assert!(swarm.admits(pem), "{}", String::from_utf8_lossy(pem));
    let status = seeder.status();
    let hash = torrent.info.info_hash;
    assert!(
        status.files.iter().any(|f| f.info_hash == hash),
        "the share's info hash is the torrent's: {status:?}"
    );
    // Hashed by `sta` with the swarm's CA: the same SSL torrent.
    let local = tmp.path().join("local.torrent");
    let ca_file = ca.dir.join("ca.crt");
    seeder
        .sta(&[
            "torrent",
            src.to_str().unwrap(),
            "-o",
            local.to_str().unwrap(),
            "--ssl-cert",
            ca_file.to_str().unwrap(),
        ])
        .ok();
    let again = sta::meta::torrent::Torrent::read(&std::fs::read(&local).unwrap()).unwrap();
    assert_eq!(again.info, torrent.info);

    // A plain sta-peerd cannot join an SSL torrent and says why.
    let plain_tracker = tracker(&[]);
    let plain = spawn_peerd_with(plain_tracker.addr, &tmp.subdir("p"), &[], &[]);
    let got = plain.sta(&["get", file.to_str().unwrap()]);
    assert_ne!(got.code, Some(0), "{got:?}");
    assert!(got.stderr.contains("is an SSL torrent"), "{}", got.stderr);

    // Nor can a TLS sta-peerd of another swarm.
    let theirs = Ca::new(tmp.subdir("theirs"));
    let their_tracker = tracker(&strs(&theirs.issue("127.0.0.1", "7")));
    let stranger = spawn_peerd_with(
        their_tracker.addr,
        &tmp.subdir("x"),
        &[],
        &strs(&theirs.issue_peer("stranger")),
    );
    let got = stranger.sta(&["get", file.to_str().unwrap()]);
    assert_ne!(got.code, Some(0), "{got:?}");
    assert!(got.stderr.contains("of another swarm"), "{}", got.stderr);
}

/// Over TLS the seeder's rustls reads the mapped file in user space,
/// where plain `writev` let the kernel read it: a file cut short while it
/// is being sent must cost the session, not the daemon (SIGBUS).
#[test]
fn a_file_cut_short_while_sent_over_tls_fails_the_link_not_the_daemon() {
    let tmp = TempDir::new("tls-shrink");
    let ca = Ca::new(tmp.subdir("ca"));
    let t = tracker(&strs(&ca.issue("127.0.0.1", "7")));
    let src = tmp.subdir("src").join("big.bin");
    write_random_file(&src, 48 << 20, 23);
    let mut seed_flags = ca.issue_peer("seed");
    // Slow enough that the cut lands while blocks of the file are sent.
    seed_flags.extend(["--max-upload-rate".into(), "4000000".into()]);
    let mut seeder = spawn_peerd_with(t.addr, &tmp.subdir("s"), &[&src], &strs(&seed_flags));
    seeder.wait_seeding("big.bin", Duration::from_secs(30));
    let leecher = spawn_peerd_with(
        t.addr,
        &tmp.subdir("l"),
        &[],
        &strs(&ca.issue_peer("leech")),
    );
    let get = sta_in_background_for(&leecher.control, &["get", "big.bin"], LOG_WAIT);
    wait_for("the seeder to upload", LOG_WAIT, || {
        seeder.file("big.bin").filter(|f| f.uploaded > 4 << 20)
    });
    std::fs::OpenOptions::new()
        .write(true)
        .open(&src)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    // The blocks still queued past the cut are read as the link sends
    // them; give it the time to try.
    std::thread::sleep(Duration::from_secs(3));
    seeder.daemon.assert_running();
    leecher.sta(&["remove", "big.bin"]).ok();
    let run = get.join().unwrap();
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(!leecher.dir.join("big.bin").exists());
}

/// A TLS peer's certificate must name the file, which a magnet link's
/// download does not know before its info dict: its peers are not dialed,
/// and the log says why rather than nothing.
#[test]
fn a_tls_daemon_says_why_it_does_not_dial_a_magnets_peers() {
    let tmp = TempDir::new("tls-magnet");
    let ca = Ca::new(tmp.subdir("ca"));
    let flags = ca.issue_peer("leech");
    let leecher = spawn_peerd_trackerless(&tmp.subdir("l"), &[], &strs(&flags));
    let hash = "ab".repeat(20);
    let magnet = format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:9");
    let get = sta_in_background_for(&leecher.control, &["get", &magnet], LOG_WAIT);
    wait_log(
        "the leecher",
        "cannot dial peer 127.0.0.1:9 over TLS: the file's name is not known yet",
        || leecher.log(),
    );
    leecher.sta(&["remove", &hash]).ok();
    let run = get.join().unwrap();
    assert_ne!(run.code, Some(0), "{run:?}");
}
