//! A real `sta-trackerd` on loopback defends itself per source address:
//! sessions per address, a request rate, and a ban list re-read on SIGHUP.
//! Clients bind to 127.0.0.2, 127.0.0.3, ... to be different addresses.

mod common;

use common::*;
use sta::wire::tracker::{ErrorCode, Request, Response};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// A TCP connection to `to` from the loopback address 127.0.0.`host`.
fn connect_from(host: u8, to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("IPv4 only")
    };
    let from = Ipv4Addr::new(127, 0, 0, host);
    let sin = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // addresses live across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let local = sin(from, 0);
        let rc = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "bind {from}: {}", std::io::Error::last_os_error());
        let remote = sin(*to.ip(), to.port());
        let rc = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(rc, 0, "connect {to}: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

fn client_from(host: u8, to: SocketAddr) -> Client {
    Client::from_stream(connect_from(host, to))
}

/// A session from 127.0.0.`host` that said hello.
fn session_from(host: u8, to: SocketAddr, n: u64) -> Client {
    let mut c = client_from(host, to);
    c.hello(peer_id(n), 0);
    c
}

fn list_request() -> Request {
    Request::List {
        offset: 0,
        limit: 10,
        filter: String::new(),
    }
}

#[test]
fn the_session_past_the_per_address_limit_is_refused_and_others_get_in() {
    let t = tracker(&["--max-sessions-per-ip", "2"]);
    let _a = session_from(2, t.addr, 1);
    let _b = session_from(2, t.addr, 2);
    let mut third = client_from(2, t.addr);
    let msg = third.expect_error(ErrorCode::LIMIT_REACHED);
    assert!(msg.contains("2 sessions per address"), "{msg}");
    third.expect_closed();
    // Another address still gets in.
    let mut other = session_from(3, t.addr, 3);
    assert!(matches!(
        other.call(&list_request()),
        Response::ListPage { .. }
    ));
    // A closed session frees its place.
    drop(_a);
    let mut again = wait_for("a freed session slot", Duration::from_secs(10), || {
        let mut c = client_from(2, t.addr);
        c.set_read_timeout(Duration::from_millis(300));
        c.send(&hello(peer_id(4), 0));
        matches!(c.next(), Incoming::Frame(Response::Welcome { .. })).then_some(c)
    });
    again.set_read_timeout(Duration::from_secs(10));
    assert!(matches!(
        again.call(&list_request()),
        Response::ListPage { .. }
    ));
}

#[test]
fn a_flood_is_rate_limited_while_another_address_is_answered() {
    let mut t = tracker(&[
        "--ip-request-rate",
        "20",
        "--ip-request-burst",
        "10",
        "--udp-listen",
        "127.0.0.1:0",
    ]);
    let mut flood = session_from(2, t.addr, 1);
    // 200 pipelined requests: the burst is served, most of the rest refused,
    // each in its place, and the session stays open.
    let mut batch = Vec::new();
    for _ in 0..200 {
        list_request().encode(&mut batch);
    }
    flood.send_raw(&batch);
    let (mut served, mut limited) = (0, 0);
    for _ in 0..200 {
        match flood.recv() {
            Response::ListPage { .. } => served += 1,
            Response::Error { code, .. } if code == ErrorCode::RATE_LIMITED => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((9..60).contains(&served), "served {served}");
    assert!(limited > 100, "limited {limited}");
    // Another address is answered at once.
    let mut other = session_from(3, t.addr, 2);
    let started = Instant::now();
    assert!(matches!(
        other.call(&list_request()),
        Response::ListPage { .. }
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The flooder is served again after a quiet spell.
    std::thread::sleep(Duration::from_millis(300));
    assert!(matches!(
        flood.call(&list_request()),
        Response::ListPage { .. }
    ));

    // BEP 15: a datagram flood from one address gets the failure text.
    let udp_addr: SocketAddr = t
        .next_stdout_line(Duration::from_secs(5))
        .and_then(|l| l.strip_prefix("udp listening on ")?.parse().ok())
        .expect("udp address");
    let sock = UdpSocket::bind("127.0.0.4:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let connect = |tid: u32| {
        let mut d = 0x41727101980u64.to_be_bytes().to_vec();
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&tid.to_be_bytes());
        d
    };
    for tid in 0..40 {
        sock.send_to(&connect(tid), udp_addr).unwrap();
    }
    let mut refused = 0;
    let mut buf = [0u8; 2048];
    for _ in 0..40 {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        if n >= 8 && buf[..4] == 3u32.to_be_bytes() {
            assert!(String::from_utf8_lossy(&buf[8..n]).contains("requests per second"));
            refused += 1;
        }
    }
    assert!(refused >= 20, "udp refused {refused}");
}

#[test]
fn a_banned_address_is_refused_and_let_in_after_sighup() {
    let tmp = TempDir::new("guard-ban");
    let bans = tmp.path().join("bans");
    std::fs::write(&bans, "# test\n127.0.0.5\n10.0.0.0/8\n").unwrap();
    let mut t = tracker(&["--ban-file", bans.to_str().unwrap()]);
    let mut c = client_from(5, t.addr);
    let msg = c.expect_error(ErrorCode::BANNED);
    assert!(msg.contains("banned"), "{msg}");
    c.expect_closed();
    let mut ok = session_from(6, t.addr, 1);
    assert!(matches!(
        ok.call(&list_request()),
        Response::ListPage { .. }
    ));

    // Unban 127.0.0.5, ban 127.0.0.6: the open session of .6 is closed.
    std::fs::write(&bans, "127.0.0.6\n").unwrap();
    sighup(t.pid());
    ok.set_read_timeout(Duration::from_secs(10));
    ok.expect_closed();
    let mut back = session_from(5, t.addr, 2);
    assert!(matches!(
        back.call(&list_request()),
        Response::ListPage { .. }
    ));
    let mut c = client_from(6, t.addr);
    c.expect_error(ErrorCode::BANNED);

    // A bad file keeps the list in use.
    std::fs::write(&bans, "not an address\n").unwrap();
    sighup(t.pid());
    wait_for("the reload warning", Duration::from_secs(10), || {
        t.log()
            .contains("keeping the ban list in use")
            .then_some(())
    });
    let mut c = client_from(6, t.addr);
    c.expect_error(ErrorCode::BANNED);
    t.assert_running();
}
