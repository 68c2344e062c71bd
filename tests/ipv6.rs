//! IPv6: a swarm entirely on ::1 (tracker sessions and peer links), a
//! tracker listening dual-stack on two sockets, and get-peers handing IPv6
//! holders only to sessions that came over IPv6.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// sta-peerd with exactly these addresses (spawn_peerd listens on
/// 127.0.0.1).
fn peerd(listen: &str, tracker: SocketAddr, dir: &Path, shares: &[&Path]) -> Peerd {
    let tracker = tracker.to_string();
    let mut args = vec![
        "--listen".to_owned(),
        listen.to_owned(),
        "--tracker".to_owned(),
        tracker,
        "--dir".to_owned(),
        dir.to_str().unwrap().to_owned(),
    ];
    for s in shares {
        args.push("--share".into());
        args.push(s.to_str().unwrap().to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut daemon = Daemon::spawn(env!("CARGO_BIN_EXE_sta-peerd"), &args);
    let line = daemon
        .next_stdout_line(STARTUP_TIMEOUT)
        .expect("control line");
    let control = PathBuf::from(line.strip_prefix("control on ").expect("control on"));
    let p = Peerd {
        listen: daemon.addr,
        control,
        dir: std::fs::canonicalize(dir).unwrap(),
        daemon,
    };
    wait_for("the tracker session", TIMEOUT, || {
        p.status().tracker_connected.then_some(())
    });
    p
}

#[test]
fn a_swarm_on_ipv6_loopback() {
    let tmp = TempDir::new("ipv6-swarm");
    let t = Daemon::spawn(
        env!("CARGO_BIN_EXE_sta-trackerd"),
        &["--listen", "[::1]:0", "--udp-listen", "off"],
    );
    assert!(t.addr.is_ipv6(), "{}", t.addr);
    let src = tmp.subdir("src").join("six.bin");
    write_random_file(&src, 3 << 20, 6);
    let seeder = peerd("[::1]:0", t.addr, &tmp.subdir("seed"), &[&src]);
    assert!(seeder.listen.is_ipv6());
    seeder.wait_seeding("six.bin", TIMEOUT);
    let leecher = peerd("[::1]:0", t.addr, &tmp.subdir("leech"), &[]);
    leecher.sta(&["get", "six.bin"]).ok();
    assert_same_file(&src, &leecher.dir.join("six.bin"));
    let f = leecher.file("six.bin").unwrap();
    assert!(!f.from_peers.is_empty());
    assert!(
        f.from_peers.iter().all(|p| p.addr == seeder.listen),
        "bytes came from {:?}, not the seeder at {}",
        f.from_peers,
        seeder.listen
    );
}

#[test]
fn a_dual_stack_tracker_gives_ipv6_holders_only_to_ipv6_sessions() {
    let t = Daemon::spawn(
        env!("CARGO_BIN_EXE_sta-trackerd"),
        &["--listen", "0.0.0.0:0", "--udp-listen", "off"],
    );
    let port = t.addr.port();
    let v4: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let info = make_file("both.bin", 100_000, 3);
    let mut holder6 = Client::connect(v6);
    holder6.hello(peer_id(6), 6006);
    holder6.announce(&info, sta::wire::tracker::Pieces::All);
    let mut holder4 = Client::connect(v4);
    holder4.hello(peer_id(4), 4004);
    holder4.announce(&info, sta::wire::tracker::Pieces::All);

    let mut asker4 = Client::connect(v4);
    asker4.hello(peer_id(40), 4040);
    let got: Vec<SocketAddr> = asker4
        .get_peers(info.info_hash, 50, None)
        .iter()
        .map(|p| p.addr)
        .collect();
    assert_eq!(got, vec!["127.0.0.1:4004".parse().unwrap()], "IPv4 asker");

    let mut asker6 = Client::connect(v6);
    asker6.hello(peer_id(60), 6060);
    let mut got: Vec<SocketAddr> = asker6
        .get_peers(info.info_hash, 50, None)
        .iter()
        .map(|p| p.addr)
        .collect();
    got.sort();
    let mut want: Vec<SocketAddr> = vec![
        "127.0.0.1:4004".parse().unwrap(),
        "[::1]:6006".parse().unwrap(),
    ];
    want.sort();
    assert_eq!(got, want, "IPv6 asker (a dual-stack host reaches both)");
}
