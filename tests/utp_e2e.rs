//! The real `sta-peerd` on 127.0.0.1 answers a uTP SYN on its peer port
//! (UDP, the TCP listener's port) with the ST_RESET of
//! spec/bittorrent.md, "uTP", and nothing else it gets there: other uTP
//! packets, KRPC, junk. Every wait is bounded by a socket read timeout.

mod common;

use common::{TempDir, spawn_peerd, tracker};
use sta::wire::utp::{self, Header, Kind};
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
    let peer = spawn_peerd(t.addr, &tmp.subdir("p"), &[]);
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

    client.send(&packet(Kind::Syn, 4321, 99)).expect("send");
    let reply = recv(&client, REPLY_TIMEOUT).expect("no answer to a uTP SYN");
    let reset = utp::decode(&reply)
        .expect("the answer is a uTP header")
        .header;
    assert_eq!(reset.kind, Kind::Reset, "{reset:?}");
    assert_eq!((reset.connection_id, reset.ack_nr), (4321, 99), "{reset:?}");
    assert_eq!(reply.len(), utp::HEADER_LEN);
    // The daemon is still serving its TCP side.
    assert!(peer.status().tracker_connected);
}
