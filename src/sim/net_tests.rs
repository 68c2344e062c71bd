//! Tests of the network model (`net.rs`).

use super::*;
use crate::sim::store::Body;

fn spec(up: u64) -> LinkSpec {
    LinkSpec {
        up,
        down: 0,
        latency: Duration::from_millis(1),
        loss: 0.0,
    }
}

/// Delivers everything; returns (time, conn) of each delivery.
fn drain(net: &mut Net, ag: &mut Agenda<Ev>) -> Vec<(Time, ConnId)> {
    let mut got = Vec::new();
    while let Some(ev) = ag.pop_until(Time::from_micros(u64::MAX)) {
        match ev {
            Ev::UplinkFree(h) => {
                net.uplink_free(ag, h);
            }
            Ev::Arrive(c, to, id) => net.arrive(ag, c, to, id),
            Ev::Deliver(c, _, id) if net.take(id).is_some() => got.push((ag.now(), c)),
            Ev::Downlink(h) => {
                if let Some((c, _, id)) = net.downlink(ag, h)
                    && net.take(id).is_some()
                {
                    got.push((ag.now(), c));
                }
            }
            _ => {}
        }
    }
    got
}

/// A message that is not merged with its neighbours (bytes are).
fn block(len: u32) -> Packet {
    Packet::Block {
        header: [0; 13],
        len: len - 13,
        body: Body::Fill(0),
    }
}

fn opened(net: &mut Net, ag: &mut Agenda<Ev>, from: HostId, to: HostId) -> ConnId {
    let c = net.dial(ag, from, 1, to);
    net.conns[c].open = true;
    net.conns[c].ends[1].attached = true;
    c
}

#[test]
fn upload_takes_connections_in_turn() {
    let mut ag = Agenda::default();
    let mut net = Net::new(NetParams::default(), Rng::new(1));
    let (a, b, c) = (
        net.add_host(spec(1_000_000)),
        net.add_host(spec(1)),
        net.add_host(spec(1)),
    );
    let (ab, ac) = (
        opened(&mut net, &mut ag, a, b),
        opened(&mut net, &mut ag, a, c),
    );
    ag.pop_until(Time::ZERO);
    for _ in 0..3 {
        net.send(&mut ag, ab, 0, block(1000));
    }
    for _ in 0..3 {
        net.send(&mut ag, ac, 0, block(1000));
    }
    let order: Vec<ConnId> = drain(&mut net, &mut ag).iter().map(|d| d.1).collect();
    // The first message was on the wire already; then turns.
    assert_eq!(order, [ab, ab, ac, ab, ac, ac]);
}

#[test]
fn a_message_takes_its_wire_time_plus_both_latencies() {
    let mut ag = Agenda::default();
    let mut net = Net::new(NetParams::default(), Rng::new(1));
    let (a, b) = (net.add_host(spec(1_000_000)), net.add_host(spec(1)));
    let c = opened(&mut net, &mut ag, a, b);
    ag.pop_until(Time::ZERO);
    let t0 = ag.now();
    // 2896 bytes = 2 segments: 3000 bytes on the wire, 3000 us at 1 MB/s.
    net.send(&mut ag, c, 0, Packet::Data(vec![0; 2896]));
    let got = drain(&mut net, &mut ag);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.as_micros() - t0.as_micros(), 3000 + 2000);
}

#[test]
fn bytes_behind_unsent_bytes_leave_together() {
    let mut ag = Agenda::default();
    let mut net = Net::new(NetParams::default(), Rng::new(1));
    let (a, b) = (net.add_host(spec(1_000)), net.add_host(spec(1)));
    let c = opened(&mut net, &mut ag, a, b);
    ag.pop_until(Time::ZERO);
    for _ in 0..4 {
        net.send(&mut ag, c, 0, Packet::Data(vec![0; 9]));
    }
    // The first left at once; the other three share one segment.
    assert_eq!(drain(&mut net, &mut ag).len(), 2);
}

#[test]
fn a_lost_segment_holds_back_what_follows() {
    let mut ag = Agenda::default();
    let mut net = Net::new(NetParams::default(), Rng::new(3));
    let mut lossy = spec(10_000_000);
    lossy.loss = 0.2;
    let (a, b) = (net.add_host(lossy), net.add_host(spec(1)));
    let c = opened(&mut net, &mut ag, a, b);
    ag.pop_until(Time::ZERO);
    for _ in 0..50 {
        net.send(&mut ag, c, 0, block(1448));
    }
    let got = drain(&mut net, &mut ag);
    assert_eq!(got.len(), 50);
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "out of order");
    // With p = 0.2 some message paid a timeout (200 ms + 4 ms RTT).
    let last = got[49].0.as_micros() - got[0].0.as_micros();
    assert!(last >= 204_000, "no retransmission delay: {last} us");
}

#[test]
fn what_left_a_host_before_it_died_arrives_before_the_reset() {
    let mut ag = Agenda::default();
    let mut net = Net::new(NetParams::default(), Rng::new(1));
    let mut slow_down = spec(1);
    slow_down.down = 100_000;
    let (a, b) = (net.add_host(spec(1_000_000)), net.add_host(slow_down));
    let c = opened(&mut net, &mut ag, a, b);
    ag.pop_until(Time::ZERO);
    for _ in 0..3 {
        net.send(&mut ag, c, 0, block(16384));
    }
    // All three leave a's upload, then a dies while they queue at b's
    // download link (16 KiB at 100 KB/s: 164 ms each).
    let mut out = 0;
    let mut got = Vec::new();
    while let Some(ev) = ag.pop_until(Time::from_micros(u64::MAX)) {
        let delivered = match ev {
            Ev::UplinkFree(h) => {
                net.uplink_free(&mut ag, h);
                out += 1;
                if out == 3 {
                    net.kill(&mut ag, a);
                }
                None
            }
            Ev::Arrive(c, to, id) => {
                net.arrive(&mut ag, c, to, id);
                None
            }
            Ev::Deliver(_, _, id) => net.take(id),
            Ev::Downlink(h) => net.downlink(&mut ag, h).and_then(|(_, _, id)| net.take(id)),
            _ => None,
        };
        if let Some(msg) = delivered {
            got.push(matches!(msg.packet, Packet::Fin));
        }
    }
    assert_eq!(got, [false, false, false, true], "blocks, then the reset");
}
