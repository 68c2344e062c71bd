//! The real `sta-peerd` on 127.0.0.1 answers a uTP SYN on its peer port
//! (UDP, the TCP listener's port) with the ST_RESET of
//! spec/bittorrent.md, "uTP", and nothing else it gets there: other uTP
//! packets, KRPC, junk. Every wait is bounded by a socket read timeout.

mod common;

use common::{TempDir, spawn_peerd_with, tracker};
use sta::wire::utp::{self, Header, Kind};
use std::net::SocketAddr;
use std::net::UdpSocket;
use std::time::Duration;

/// Longest a reply may take on loopback.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long silence is awaited where no reply is due.
const SILENCE: Duration = Duration::from_millis(300);

fn packet(kind: Kind, connection_id: u16, seq_nr: u16) -> Vec<u8> {
    Header {
        kind,
        extension: 0,
        connection_id,
        timestamp_us: 123_456,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr,
        ack_nr: 0,
    }
    .encode()
    .to_vec()
}

/// Sends a SYN from `client` and checks the reset that must answer it.
fn expect_reset_for_syn(client: &UdpSocket, id: u16, seq_nr: u16) {
    client.send(&packet(Kind::Syn, id, seq_nr)).expect("send");
    let reply = recv(client, REPLY_TIMEOUT).expect("no answer to a uTP SYN");
    assert_eq!(reply.len(), utp::HEADER_LEN);
    let reset = utp::decode(&reply)
        .expect("the answer is a uTP header")
        .header;
    assert_eq!(reset.kind, Kind::Reset, "{reset:?}");
    assert_eq!(
        (reset.connection_id, reset.ack_nr),
        (id, seq_nr),
        "{reset:?}"
    );
}

/// The next datagram on `socket` within `wait`, if one comes.
fn recv(socket: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(wait)).expect("set timeout");
    let mut buf = [0; 2048];
    let n = socket.recv(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

#[test]
fn a_utp_syn_on_the_peer_port_gets_a_reset_and_nothing_else_is_answered() {
    let tmp = TempDir::new("utp-e2e");
    let t = tracker(&[]);
    // With the DHT off, so that the KRPC ping below goes unanswered (the
    // DHT node would answer it: tests/dht_e2e.rs).
    let peer = spawn_peerd_with(t.addr, &tmp.subdir("p"), &[], &["--dht", "false"]);
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    client.connect(peer.listen).expect("connect");

    // Nothing but a SYN is answered (sent first: a late answer to them
    // would then show up before the reset below).
    for kind in [Kind::Data, Kind::Fin, Kind::State, Kind::Reset] {
        client.send(&packet(kind, 7, 7)).expect("send");
    }
    client
        .send(b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe")
        .expect("send");
    // A SYN's first bytes, but shorter than a header.
    client.send(b"\x41\x00short").expect("send");
    let stray = recv(&client, SILENCE);
    assert!(stray.is_none(), "answered a non-SYN: {stray:?}");

    expect_reset_for_syn(&client, 4321, 99);
    // The daemon is still serving its TCP side.
    assert!(peer.status().tracker_connected);
}

#[test]
fn the_ipv6_peer_listener_has_its_udp_twin_too() {
    let tmp = TempDir::new("utp-e2e-v6");
    let t = tracker(&[]);
    let peer = spawn_peerd_with(t.addr, &tmp.subdir("p"), &[], &["--listen-v6", "[::1]:0"]);
    // The IPv6 listener's port, from the log line of its UDP twin.
    let log = peer.log();
    let v6: SocketAddr = log
        .lines()
        .filter_map(|l| l.split("udp listening on ").nth(1)?.split(' ').next())
        .filter_map(|a| a.parse().ok())
        .find(SocketAddr::is_ipv6)
        .unwrap_or_else(|| panic!("no IPv6 `udp listening on` line in the log:\n{log}"));
    let client = UdpSocket::bind("[::1]:0").expect("bind ::1");
    client.connect(v6).expect("connect");
    expect_reset_for_syn(&client, 77, 5);
}
