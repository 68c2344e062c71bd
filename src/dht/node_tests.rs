use super::*;
use crate::dht::id::random_id;
use crate::dht::saved;
use crate::limits::DHT_QUERY_BURST;
use std::net::Ipv4Addr;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8),
        6881,
    ))
}

fn node(i: usize, rng: &mut Rng) -> Dht {
    let config = Config {
        id: random_id(rng),
        secret: [i as u8; 20],
        rng_seed: i as u64 + 1,
    };
    Dht::new(config, Time::ZERO)
}

/// Nodes on addresses 10.0.x.y, every datagram delivered at once (a 1 ms
/// step per round), events collected per node.
struct Net {
    nodes: Vec<Dht>,
    now: Time,
    events: Vec<Vec<Event>>,
}

impl Net {
    fn new(n: usize) -> Net {
        let mut rng = Rng::new(42);
        Net {
            nodes: (0..n).map(|i| node(i, &mut rng)).collect(),
            now: Time::ZERO,
            events: vec![Vec::new(); n],
        }
    }

    fn index(a: SocketAddr) -> Option<usize> {
        match a {
            SocketAddr::V4(a) => {
                let o = a.ip().octets();
                Some((usize::from(o[2]) << 8) | usize::from(o[3]))
            }
            SocketAddr::V6(_) => None,
        }
    }

    /// Delivers until quiet, firing timeouts as virtual time passes.
    fn run(&mut self, for_: Duration) {
        let end = self.now + for_;
        while self.now < end {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
                    moved = true;
                    if let Some(j) = Net::index(to).filter(|&j| j < self.nodes.len()) {
                        self.nodes[j].handle_datagram(self.now, addr(i), &bytes);
                    }
                }
                while let Some(e) = self.nodes[i].poll_event() {
                    self.events[i].push(e);
                }
            }
            if !moved {
                self.now += Duration::from_millis(100);
                for n in &mut self.nodes {
                    if n.poll_timeout() <= self.now {
                        n.handle_timeout(self.now);
                    }
                }
            }
        }
    }
}

#[test]
fn a_small_network_finds_an_announced_peer() {
    let mut net = Net::new(40);
    for i in 1..net.nodes.len() {
        let now = net.now;
        net.nodes[i].bootstrap(now, &[addr(0)]);
        net.run(Duration::from_millis(200));
    }
    net.run(Duration::from_secs(5));
    assert!(net.nodes.iter().all(|n| n.nodes() >= 8), "tables filled");
    let hash = [0x5a; 20];
    let now = net.now;
    net.nodes[7].announce(now, hash, 1234, false);
    net.nodes[9].announce(now, hash, 0, true);
    net.run(Duration::from_secs(5));
    let done = |e: &Event| matches!(e, Event::Done { announced, .. } if *announced > 0);
    assert!(net.events[7].iter().any(done), "{:?}", net.events[7]);
    let now = net.now;
    let lid = net.nodes[30].get_peers(now, hash).unwrap();
    net.run(Duration::from_secs(5));
    let mut found = Vec::new();
    for e in &net.events[30] {
        if let Event::Peers { lookup, peers, .. } = e
            && *lookup == lid
        {
            found.extend(peers.iter().copied());
        }
    }
    let seven = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 7), 1234);
    // implied_port: the port node 9's datagrams came from.
    let nine = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 6881);
    assert!(found.contains(&seven), "{found:?}");
    assert!(found.contains(&nine), "{found:?}");
}

fn reply(dht: &mut Dht, from: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    dht.handle_datagram(Time::ZERO, from, bytes);
    dht.poll_transmit().map(|(to, b)| {
        assert_eq!(to, from);
        b
    })
}

fn error_code(bytes: &[u8]) -> Option<i64> {
    match Message::decode(bytes).ok()?.body {
        Body::Error { code, .. } => Some(code),
        _ => None,
    }
}

#[test]
fn bad_input_gets_203_or_nothing() {
    let mut rng = Rng::new(1);
    let mut dht = node(0, &mut rng);
    let from = addr(5);
    let short = b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe";
    assert_eq!(
        reply(&mut dht, from, short).as_deref().and_then(error_code),
        Some(203)
    );
    let vote = b"d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe";
    assert_eq!(
        reply(&mut dht, from, vote).as_deref().and_then(error_code),
        Some(204)
    );
    assert_eq!(reply(&mut dht, from, b"garbage"), None);
    assert_eq!(reply(&mut dht, from, b"d1:rd2:id1:xe1:t2:aa1:y1:re"), None);
    // An answer to nothing we asked: dropped.
    let stray = b"d1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:re";
    assert_eq!(reply(&mut dht, from, stray), None);
    // A forged token.
    let announce = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe";
    assert_eq!(
        reply(&mut dht, from, announce)
            .as_deref()
            .and_then(error_code),
        Some(203)
    );
    assert_eq!(dht.stored_hashes(), 0);
}

#[test]
fn queries_past_the_rate_are_dropped() {
    let mut rng = Rng::new(1);
    let mut dht = node(0, &mut rng);
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    let mut answered = 0;
    for _ in 0..DHT_QUERY_BURST + 10 {
        if reply(&mut dht, addr(5), ping).is_some() {
            answered += 1;
        }
    }
    assert_eq!(answered, DHT_QUERY_BURST);
    assert!(reply(&mut dht, addr(6), ping).is_some());
    assert_eq!(dht.stats.rate_limited, 10);
}

#[test]
fn the_table_survives_a_restart() {
    let mut net = Net::new(20);
    for i in 1..net.nodes.len() {
        let now = net.now;
        net.nodes[i].bootstrap(now, &[addr(0)]);
        net.run(Duration::from_millis(200));
    }
    let bytes = net.nodes[3].table_bytes();
    let s = saved::decode(&bytes).unwrap();
    assert_eq!(s.id, *net.nodes[3].id());
    assert_eq!(s.nodes.len(), net.nodes[3].nodes());
    let config = Config {
        id: s.id,
        secret: [9; 20],
        rng_seed: 9,
    };
    let now = net.now;
    let mut again = Dht::new(config, now);
    again.seed_nodes(now, &s.nodes);
    assert_eq!(again.nodes(), s.nodes.len());
    // Without a bootstrap node, it asks the saved ones.
    again.bootstrap(now, &[]);
    assert!(again.poll_transmit().is_some());
}
