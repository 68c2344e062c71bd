//! `sta-trackerd` as a BitTorrent tracker: BEP 15 over UDP and BEP 3/23
//! over HTTP, against the real binary on 127.0.0.1, sharing one swarm
//! state with the STA tracker protocol.

mod common;

use common::{
    Client, Daemon, TempDir, make_file, peer_id, spawn_peerd, tracker, wait_for, write_random_file,
};
use sta::meta::bencode::{Value, decode};
use sta::wire::bt_http::escape;
use sta::wire::bt_udp::{self, Announce, Event, Request, Response};
use sta::wire::tracker::{InfoHash, Pieces};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A tracker with both BitTorrent listeners; returns (daemon, udp, http).
fn bt_tracker() -> (Daemon, SocketAddr, SocketAddr) {
    let mut d = tracker(&[
        "--udp-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ]);
    let mut addr = |prefix: &str| -> SocketAddr {
        let line = d
            .next_stdout_line(Duration::from_secs(5))
            .expect("listener line");
        line.strip_prefix(prefix)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"))
    };
    let udp = addr("udp listening on ");
    let http = addr("http listening on ");
    (d, udp, http)
}

struct Udp {
    socket: UdpSocket,
}

impl Udp {
    fn new(tracker: SocketAddr) -> Udp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket.connect(tracker).unwrap();
        Udp { socket }
    }

    fn call_raw(&self, bytes: &[u8]) -> Response {
        self.socket.send(bytes).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a udp reply");
        Response::parse(&buf[..n], false).expect("a well-formed reply")
    }

    fn call(&self, req: &Request) -> Response {
        let mut out = Vec::new();
        req.encode(&mut out);
        self.call_raw(&out)
    }

    fn connect(&self) -> u64 {
        match self.call(&Request::Connect { transaction_id: 11 }) {
            Response::Connect {
                transaction_id: 11,
                connection_id,
            } => connection_id,
            other => panic!("expected a connect reply, got {other:?}"),
        }
    }

    fn announce(&self, cid: u64, hash: InfoHash, port: u16, left: u64) -> Response {
        self.call(&Request::Announce(Announce {
            connection_id: cid,
            transaction_id: 22,
            info_hash: hash,
            peer_id: *b"-TR3000-udpudpudpudp",
            downloaded: 0,
            left,
            uploaded: 0,
            event: Event::Started,
            ip: 0,
            key: 1,
            num_want: -1,
            port,
        }))
    }
}

/// Sends `request` (a whole HTTP head) and reads the reply until close;
/// returns the status code and the body.
fn http(addr: SocketAddr, request: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // A refused request may be closed with bytes of it unread, which
    // resets the connection: keep what arrived before the reset.
    let _ = s.write_all(request.as_bytes());
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("http read: {e}"),
        }
    }
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&reply[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, reply[end + 4..].to_vec())
}

fn announce_query(hash: &InfoHash, port: u16, left: u64, event: &str) -> String {
    format!(
        "GET /announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&compact=1&event={event}&numwant=50 HTTP/1.1\r\nHost: t\r\n\r\n",
        escape(hash),
        escape(b"-qB4500-httphttphttp"),
    )
}

fn compact_peers(body: &[u8]) -> Vec<SocketAddr> {
    let v = decode(body).unwrap_or_else(|e| panic!("bad bencode {e}: {body:?}"));
    assert!(
        v.get(b"failure reason").is_none(),
        "failure: {:?}",
        String::from_utf8_lossy(body)
    );
    assert_eq!(v.get(b"interval").and_then(Value::as_int), Some(60));
    let peers = v.get(b"peers").and_then(Value::as_bytes).expect("peers");
    assert!(peers.len().is_multiple_of(6));
    peers.chunks(6).map(bt_udp::parse_compact).collect()
}

fn failure(body: &[u8]) -> String {
    let v = decode(body).expect("bencoded failure");
    String::from_utf8_lossy(v.get(b"failure reason").and_then(Value::as_bytes).unwrap())
        .into_owned()
}

#[test]
fn udp_connect_announce_scrape() {
    let (_d, udp_addr, _) = bt_tracker();
    let a = Udp::new(udp_addr);
    let b = Udp::new(udp_addr);
    let hash = [0x42; 20];
    let cid = a.connect();
    match a.announce(cid, hash, 6001, 0) {
        Response::Announce {
            transaction_id: 22,
            interval: 60,
            seeders: 1,
            leechers: 0,
            peers,
        } => assert!(peers.is_empty(), "{peers:?}"),
        other => panic!("unexpected {other:?}"),
    }
    let cid_b = b.connect();
    match b.announce(cid_b, hash, 6002, 100) {
        Response::Announce {
            seeders: 1,
            leechers: 1,
            peers,
            ..
        } => assert_eq!(peers, vec![SocketAddr::from(([127, 0, 0, 1], 6001))]),
        other => panic!("unexpected {other:?}"),
    }
    match a.call(&Request::Scrape {
        connection_id: cid,
        transaction_id: 33,
        info_hashes: vec![hash, [0; 20]],
    }) {
        Response::Scrape {
            transaction_id: 33,
            stats,
        } => {
            assert_eq!((stats[0].seeders, stats[0].leechers), (1, 1));
            assert_eq!((stats[1].seeders, stats[1].leechers), (0, 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Stopped: b leaves the swarm.
    let mut stop = Vec::new();
    Request::Announce(Announce {
        connection_id: cid_b,
        transaction_id: 44,
        info_hash: hash,
        peer_id: [1; 20],
        downloaded: 0,
        left: 100,
        uploaded: 0,
        event: Event::Stopped,
        ip: 0,
        key: 1,
        num_want: 0,
        port: 6002,
    })
    .encode(&mut stop);
    assert!(matches!(b.call_raw(&stop), Response::Announce { .. }));
    match a.announce(cid, hash, 6001, 0) {
        Response::Announce {
            seeders: 1,
            leechers: 0,
            peers,
            ..
        } => assert!(peers.is_empty()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn udp_bad_connection_id_and_garbage() {
    let (mut d, udp_addr, _) = bt_tracker();
    let u = Udp::new(udp_addr);
    match u.announce(0x1234, [1; 20], 6001, 0) {
        Response::Error {
            transaction_id: 22,
            message,
        } => assert!(message.contains("connection id"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    // Garbage of every kind: short, unknown action, a huge datagram.
    u.socket.send(b"x").unwrap();
    u.socket.send(&[0xff; 15]).unwrap();
    u.socket.send(&[0u8; 16]).unwrap(); // connect without the magic
    u.socket.send(&vec![0xa5; 60_000]).unwrap();
    // The long one has a transaction id (cut at the daemon's datagram
    // size): it is answered with an error.
    let mut buf = [0u8; 4096];
    let n = u.socket.recv(&mut buf).expect("error reply");
    assert!(matches!(
        Response::parse(&buf[..n], false),
        Ok(Response::Error {
            transaction_id: 0xa5a5_a5a5,
            ..
        })
    ));
    let mut unknown = vec![0u8; 16];
    unknown[11] = 9;
    unknown[15] = 5;
    match u.call_raw(&unknown) {
        Response::Error {
            transaction_id: 5,
            message,
        } => assert!(message.contains("action"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
    // Still serving.
    let cid = u.connect();
    assert!(matches!(
        u.announce(cid, [1; 20], 6001, 0),
        Response::Announce { seeders: 1, .. }
    ));
    d.assert_running();
}

#[test]
fn http_announce_compact_and_failures() {
    let (mut d, _, http_addr) = bt_tracker();
    let hash = [0x77; 20];
    let (status, body) = http(http_addr, &announce_query(&hash, 7001, 0, "started"));
    assert_eq!(status, 200);
    assert!(compact_peers(&body).is_empty());
    let (status, body) = http(http_addr, &announce_query(&hash, 7002, 5, "started"));
    assert_eq!(status, 200);
    assert_eq!(
        compact_peers(&body),
        vec![SocketAddr::from(([127, 0, 0, 1], 7001))]
    );
    let v = decode(&body).unwrap();
    assert_eq!(v.get(b"complete").and_then(Value::as_int), Some(1));
    assert_eq!(v.get(b"incomplete").and_then(Value::as_int), Some(1));

    // Malformed query: a failure reason, with a 400.
    let (status, body) = http(
        http_addr,
        "GET /announce?info_hash=%zz&port=1 HTTP/1.1\r\n\r\n",
    );
    assert_eq!(status, 400);
    assert!(failure(&body).contains("info_hash"), "{}", failure(&body));
    let (status, body) = http(http_addr, "GET /announce?port=1 HTTP/1.1\r\n\r\n");
    assert_eq!(status, 400);
    assert!(failure(&body).contains("missing"));
    let (status, _) = http(http_addr, "NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(status, 400);
    let long = format!("GET /announce?{} HTTP/1.1\r\n\r\n", "a".repeat(10_000));
    let (status, body) = http(http_addr, &long);
    assert_eq!(status, 414);
    assert!(!failure(&body).is_empty());

    // Scrape (BEP 48).
    let (status, body) = http(
        http_addr,
        &format!("GET /scrape?info_hash={} HTTP/1.0\r\n\r\n", escape(&hash)),
    );
    assert_eq!(status, 200);
    let v = decode(&body).unwrap();
    let f = v.get(b"files").and_then(|f| f.get(&hash)).expect("file");
    assert_eq!(f.get(b"complete").and_then(Value::as_int), Some(1));
    d.assert_running();
}

#[test]
fn sta_and_bittorrent_peers_see_each_other() {
    let (_d, udp_addr, http_addr) = bt_tracker();
    let info = make_file("mixed.bin", 100_000, 3);
    let hash = info.info_hash;

    // A BitTorrent client first: the swarm exists without metadata, and
    // STA does not list it.
    let (_, body) = http(http_addr, &announce_query(&hash, 7101, 0, "started"));
    assert!(compact_peers(&body).is_empty());
    let mut sta = Client::connect(_d.addr);
    sta.hello(peer_id(1), 9001);
    assert_eq!(sta.list(0, 10, "").total, 0);

    // The STA peer announces the metadata: it sees the HTTP seeder.
    sta.announce(&info, Pieces::All);
    let peers = sta.get_peers(hash, 50, None);
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].addr, SocketAddr::from(([127, 0, 0, 1], 7101)));
    assert_eq!(&peers[0].peer_id, b"-qB4500-httphttphttp");
    assert_eq!(sta.list(0, 10, "").total, 1);

    // A UDP client sees both the STA peer and the HTTP one.
    let u = Udp::new(udp_addr);
    let cid = u.connect();
    match u.announce(cid, hash, 7102, 50) {
        Response::Announce {
            seeders: 2,
            leechers: 1,
            mut peers,
            ..
        } => {
            peers.sort();
            assert_eq!(
                peers,
                vec![
                    SocketAddr::from(([127, 0, 0, 1], 7101)),
                    SocketAddr::from(([127, 0, 0, 1], 9001)),
                ]
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // And the STA peer sees the UDP leecher, holding no piece yet; with a
    // piece filter only the seeder.
    assert_eq!(sta.get_peers(hash, 50, None).len(), 2);
    let with_piece = sta.get_peers(hash, 50, Some(0));
    assert_eq!(with_piece.len(), 1);
    assert_eq!(with_piece[0].addr.port(), 7101);
}

/// The `bt-hex` examples of spec/bittorrent.md parse, and re-encode to the
/// same bytes.
#[test]
fn spec_examples_parse_and_round_trip() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/spec/bittorrent.md"))
        .unwrap();
    let mut seen = 0;
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```bt-hex ") else {
            continue;
        };
        let kind = info.split_whitespace().next().unwrap();
        let mut bytes = Vec::new();
        for l in lines.by_ref().take_while(|l| !l.starts_with("```")) {
            let l = l.split('#').next().unwrap();
            for pair in l.split_whitespace() {
                bytes.push(u8::from_str_radix(pair, 16).expect("hex byte"));
            }
        }
        let mut out = Vec::new();
        match kind {
            "bt-udp" => Request::parse(&bytes)
                .unwrap_or_else(|e| panic!("{info}: {e}"))
                .encode(&mut out),
            "bt-udp-reply" => Response::parse(&bytes, false)
                .unwrap_or_else(|e| panic!("{info}: {e:?}"))
                .encode(&mut out),
            other => panic!("unknown kind {other}"),
        }
        assert_eq!(out, bytes, "{info}");
        seen += 1;
    }
    assert_eq!(seen, 5);
}

/// A BitTorrent peer that stops announcing is forgotten after twice the
/// interval; one that sends `stopped` at once (see the UDP test).
#[test]
fn silent_bittorrent_peers_expire() {
    let mut d = tracker(&["--http-listen", "127.0.0.1:0", "--announce-interval", "1"]);
    // `udp listening on` (the default UDP tracker) comes first.
    let udp = d.next_stdout_line(Duration::from_secs(5)).unwrap();
    assert!(udp.starts_with("udp listening on "), "{udp:?}");
    let line = d.next_stdout_line(Duration::from_secs(5)).unwrap();
    let http_addr: SocketAddr = line
        .strip_prefix("http listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let hash = [0x99; 20];
    let peers_seen = |port: u16| -> usize {
        let (_, body) = http(http_addr, &announce_query(&hash, port, 1, ""));
        let v = decode(&body).unwrap();
        v.get(b"peers").and_then(Value::as_bytes).unwrap().len() / 6
    };
    assert_eq!(peers_seen(8001), 0);
    assert_eq!(peers_seen(8002), 1);
    // 8001 is silent from now on: gone within 2 s plus a sweep tick; 8002
    // keeps announcing (and 8003 asks) meanwhile.
    common::wait_for("the silent peer to expire", Duration::from_secs(6), || {
        let _ = peers_seen(8002);
        std::thread::sleep(Duration::from_millis(200));
        (peers_seen(8003) == 1).then_some(())
    });
}

#[test]
fn udp_tracker_is_on_by_default_on_the_tcp_port() {
    let mut d = tracker(&[]);
    let line = d
        .next_stdout_line(Duration::from_secs(5))
        .expect("udp listening line");
    assert_eq!(line, format!("udp listening on {}", d.addr));

    // `off` turns it off.
    let mut off = tracker(&["--udp-listen", "off"]);
    assert_eq!(off.next_stdout_line(Duration::from_millis(300)), None);
    off.assert_running();

    // A busy default UDP port is only a warning.
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let mut d = Daemon::spawn(env!("CARGO_BIN_EXE_sta-trackerd"), &["--listen", &listen]);
    assert_eq!(d.next_stdout_line(Duration::from_millis(300)), None);
    d.assert_running();
    wait_for("the warning", Duration::from_secs(5), || {
        d.log().contains("no BitTorrent UDP tracker").then_some(())
    });
}

/// A BitTorrent client's first announce (UDP or HTTP) makes the tracker
/// send a Dial (spec/tracker.md) on the session of each STA holder that
/// sent AcceptDials, at once and unasked, without disturbing the order of
/// that session's answers; a session that did not ask gets none, and the
/// client's later regular announces send no more.
#[test]
fn a_new_bittorrent_client_is_pushed_to_the_sta_holders_that_accept_dials() {
    use sta::wire::tracker::{Request as StaRequest, Response as StaResponse};
    let (d, udp_addr, http_addr) = bt_tracker();
    let info = make_file("pushed.bin", 100_000, 4);
    let hash = info.info_hash;
    let mut pushed = Client::connect(d.addr);
    pushed.hello(peer_id(1), 9101);
    assert_eq!(pushed.call(&StaRequest::AcceptDials), StaResponse::Ack);
    pushed.announce(&info, Pieces::All);
    let mut old = Client::connect(d.addr);
    old.hello(peer_id(2), 9102);
    old.announce(&info, Pieces::All);
    let dial = |port| StaResponse::Dial {
        info_hash: hash,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };

    let u = Udp::new(udp_addr);
    let cid = u.connect();
    assert!(matches!(
        u.announce(cid, hash, 7201, 50),
        Response::Announce { .. }
    ));
    assert_eq!(pushed.recv(), dial(7201), "pushed on the UDP announce");
    let (status, _) = http(http_addr, &announce_query(&hash, 7202, 50, "started"));
    assert_eq!(status, 200);
    assert_eq!(pushed.recv(), dial(7202), "pushed on the HTTP announce");
    // A regular re-announce: nothing; the next frame answers the list.
    http(http_addr, &announce_query(&hash, 7202, 50, "empty"));
    assert!(matches!(
        pushed.call(&StaRequest::List {
            offset: 0,
            limit: 10,
            filter: String::new(),
        }),
        StaResponse::ListPage { total: 1, .. }
    ));
    // The session that never sent AcceptDials: its next frame is the
    // answer to its request.
    assert_eq!(old.get_peers(hash, 50, None).len(), 3);
}

/// How soon an `sta-peerd` seeder must dial a BitTorrent client once the
/// client announced (issue 15: clients' defaults connect within 5 s).
const PUSHED_DIAL_TARGET: Duration = Duration::from_secs(5);

/// The real `sta-peerd`, seeding, dials a BitTorrent client that just
/// announced the file over UDP (the tracker's Dial) once the client has
/// had `DIAL_PUSH_DELAY_MS` to dial it first (it did not), and opens with
/// the BEP 3 handshake for that file.
#[test]
fn a_seeder_dials_a_bittorrent_client_that_announces_and_does_not_dial_it() {
    let tmp = TempDir::new("bt-pushed-dial");
    let t = tracker(&[]);
    let src = tmp.subdir("src").join("f.bin");
    write_random_file(&src, 100_000, 9);
    let seeder = spawn_peerd(t.addr, &tmp.subdir("seed"), &[src.as_path()]);
    let hash = seeder
        .wait_seeding("f.bin", Duration::from_secs(10))
        .info_hash;
    let client = TcpListener::bind("127.0.0.1:0").unwrap();
    client.set_nonblocking(true).unwrap();
    let port = client.local_addr().unwrap().port();
    // The tracker's UDP BitTorrent tracker is on its TCP port by default.
    let u = Udp::new(t.addr);
    let cid = u.connect();
    let announced = Instant::now();
    assert!(matches!(
        u.announce(cid, hash, port, 100_000),
        Response::Announce { .. }
    ));
    let (mut stream, _) = wait_for("the seeder to dial the client", PUSHED_DIAL_TARGET, || {
        client.accept().ok()
    });
    let after = announced.elapsed();
    println!("sta-peerd dialed the announcing client {after:?} after its announce");
    let wait = Duration::from_millis(sta::limits::DIAL_PUSH_DELAY_MS);
    assert!(
        after >= wait,
        "dialed {after:?} after the announce: the client had {wait:?} to dial first"
    );
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut handshake = [0u8; 68];
    stream
        .read_exact(&mut handshake)
        .expect("a BEP 3 handshake");
    assert_eq!(&handshake[..20], b"\x13BitTorrent protocol");
    assert_eq!(
        &handshake[28..48],
        &hash[..],
        "the handshake names the file"
    );
}
