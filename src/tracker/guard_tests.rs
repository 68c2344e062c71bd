use super::*;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ban_list_reads_addresses_networks_and_comments() {
    let bans = BanList::parse(
        "# the lab's noisy neighbours\n\n10.1.2.3\n192.168.0.0/16  # a whole site\n2001:db8::/32\n",
    )
    .unwrap();
    assert_eq!(bans.len(), 3);
    assert!(bans.contains(ip("10.1.2.3")));
    assert!(!bans.contains(ip("10.1.2.4")));
    assert!(bans.contains(ip("192.168.77.1")));
    assert!(bans.contains(ip("::ffff:192.168.1.1")));
    assert!(bans.contains(ip("2001:db8:1::9")));
    assert!(!bans.contains(ip("2001:db9::1")));
    assert!(BanList::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
}

#[test]
fn ban_list_names_its_bad_line() {
    let e = BanList::parse("10.0.0.1\nnot-an-ip\n").unwrap_err();
    assert!(e.contains("line 2"), "{e}");
    assert!(BanList::parse("10.0.0.0/33").is_err());
    assert!(BanList::parse("::/129").is_err());
    assert!(BanList::parse("10.0.0.0/x").is_err());
}

#[test]
fn sessions_per_address_are_capped_and_released() {
    let mut g = Guard::new(GuardConfig {
        max_sessions_per_ip: 2,
        ..GuardConfig::default()
    });
    let a = ip("127.0.0.2");
    assert!(g.open_session(a).is_ok());
    assert!(g.open_session(a).is_ok());
    let r = g.open_session(a).unwrap_err();
    assert_eq!(r.code, ErrorCode::LIMIT_REACHED);
    assert!(g.open_session(ip("127.0.0.3")).is_ok(), "another address");
    g.session_closed(a);
    assert!(g.open_session(a).is_ok());
    g.session_closed(a);
    g.session_closed(a);
    g.session_closed(a);
    assert_eq!(g.sessions_of(a), 0);
}

#[test]
fn banned_addresses_are_refused_sessions_and_requests() {
    let mut g = Guard::new(GuardConfig::default());
    g.set_bans(BanList::parse("127.0.0.9").unwrap());
    let now = Instant::now();
    assert_eq!(
        g.open_session(ip("127.0.0.9")).unwrap_err().code,
        ErrorCode::BANNED
    );
    assert_eq!(
        g.request(ip("127.0.0.9"), now).unwrap_err().code,
        ErrorCode::BANNED
    );
    assert!(g.request(ip("127.0.0.8"), now).is_ok());
    g.set_bans(BanList::default());
    assert!(g.open_session(ip("127.0.0.9")).is_ok());
}

#[test]
fn requests_are_rate_limited_per_address() {
    let mut g = Guard::new(GuardConfig {
        requests_per_sec: 10,
        request_burst: 5,
        ..GuardConfig::default()
    });
    let t0 = Instant::now();
    let a = ip("127.0.0.2");
    for _ in 0..5 {
        assert!(g.request(a, t0).is_ok());
    }
    assert_eq!(g.request(a, t0).unwrap_err().code, ErrorCode::RATE_LIMITED);
    assert!(g.request(ip("127.0.0.3"), t0).is_ok(), "another address");
    // 10 per second: one more after 100 ms, not two.
    let t1 = t0 + Duration::from_millis(100);
    assert!(g.request(a, t1).is_ok());
    assert!(g.request(a, t1).is_err());
    // Quiet for a while: the bucket is full again and forgotten.
    let t2 = t0 + Duration::from_secs(2);
    g.forget_idle(t2);
    assert_eq!(g.tracked_addresses(), 0);
    assert!(g.request(a, t2).is_ok());
}

#[test]
fn no_rate_means_no_bucket() {
    let mut g = Guard::new(GuardConfig::default());
    let now = Instant::now();
    for _ in 0..1000 {
        assert!(g.request(ip("127.0.0.2"), now).is_ok());
    }
    assert_eq!(g.tracked_addresses(), 0);
}
