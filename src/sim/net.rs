//! The simulated network. Each host has an access link: upload and
//! download capacity in bytes per second and a one-way latency to the
//! core (a path's one-way delay is the sum of both hosts' latencies), and
//! a loss rate. Connections are TCP-like: messages arrive whole and in
//! order, and a lost segment costs a retransmission timeout rather than
//! data.
//!
//! A host's upload sends one message at a time, taking its connections
//! with queued data in turn (round robin per message, as the kernel's fair
//! queueing of many sockets roughly does), so one busy connection cannot
//! starve the others. A message then travels the path and queues at the
//! receiver's download, which takes arrivals first come, first served.
//! Every message pays TCP/IP headers per segment, so figures compare with
//! what a shaper such as `tc` counts on a real link.

use super::clock::Agenda;
pub use super::conn::{Conn, End, Msg, MsgId, Packet};
use super::swarm::Ev;
use crate::engine::{LinkId, Time};
use crate::rng::Rng;
use std::collections::VecDeque;
use std::time::Duration;

pub type HostId = usize;
pub type ConnId = usize;

/// A host's access link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    /// Upload capacity, bytes per second (bits / 8).
    pub up: u64,
    /// Download capacity, bytes per second; 0 for unlimited.
    pub down: u64,
    /// One-way delay from the host to the core.
    pub latency: Duration,
    /// Probability that a segment sent or received here is lost.
    pub loss: f64,
}

/// Properties of TCP/IP the model charges for.
#[derive(Debug, Clone)]
pub struct NetParams {
    /// Payload bytes per segment (Ethernet MTU 1500 - 20 IP - 32 TCP with
    /// timestamps).
    pub mss: u32,
    /// Header bytes per segment counted against capacity: 52 for IP and
    /// TCP with timestamps; 66 when the shaper also counts the 14-byte
    /// Ethernet header (Linux `tc` on a veth does).
    pub overhead: u32,
    /// Linux's minimum retransmission timeout; a lost segment delays its
    /// message by this plus one round trip.
    pub rto_min: Duration,
}

impl Default for NetParams {
    fn default() -> Self {
        NetParams {
            mss: 1448,
            overhead: 52,
            rto_min: Duration::from_millis(200),
        }
    }
}

struct Port {
    spec: LinkSpec,
    /// Connections (and sides) with data queued, in turn order.
    ring: VecDeque<(ConnId, usize)>,
    busy: bool,
    down_free: Time,
    /// Messages through the download link and not yet handed over, in
    /// the order they are due: one agenda event for the head stands for
    /// all, which keeps the agenda small when downloads are the limit.
    down_queue: VecDeque<(Time, ConnId, usize, MsgId)>,
    conns: Vec<ConnId>,
    sent: u64,
    block_sent: u64,
    /// The message on the upload now: its connection and side, and its
    /// block payload (counted in `block_sent` once all of it is out).
    current: Option<(ConnId, usize, u32)>,
}

pub struct Net {
    pub params: NetParams,
    ports: Vec<Port>,
    pub conns: Vec<Conn>,
    rng: Rng,
    in_flight: Vec<Option<Msg>>,
    free: Vec<MsgId>,
}

fn micros(bytes: u64, rate: u64) -> Duration {
    match rate {
        0 => Duration::ZERO,
        r => {
            Duration::from_micros(((u128::from(bytes) * 1_000_000).div_ceil(u128::from(r))) as u64)
        }
    }
}

impl Net {
    pub fn new(params: NetParams, rng: Rng) -> Net {
        Net {
            params,
            ports: Vec::new(),
            conns: Vec::new(),
            rng,
            in_flight: Vec::new(),
            free: Vec::new(),
        }
    }

    pub fn add_host(&mut self, spec: LinkSpec) -> HostId {
        self.ports.push(Port {
            spec,
            ring: VecDeque::new(),
            busy: false,
            down_free: Time::ZERO,
            down_queue: VecDeque::new(),
            conns: Vec::new(),
            sent: 0,
            block_sent: 0,
            current: None,
        });
        self.ports.len() - 1
    }

    pub fn spec(&self, host: HostId) -> Option<&LinkSpec> {
        self.ports.get(host).map(|p| &p.spec)
    }

    /// Payload bytes `host` has sent.
    pub fn sent(&self, host: HostId) -> u64 {
        self.ports.get(host).map_or(0, |p| p.sent)
    }

    fn one_way(&self, a: HostId, b: HostId) -> Duration {
        let l = |h: HostId| self.ports.get(h).map_or(Duration::ZERO, |p| p.spec.latency);
        l(a) + l(b)
    }

    /// Block payload bytes `host` has put on the wire, each block counted
    /// once its last byte is out.
    pub fn block_sent(&self, host: HostId) -> u64 {
        self.ports.get(host).map_or(0, |p| p.block_sent)
    }

    /// Round trip between two hosts.
    pub fn rtt(&self, a: HostId, b: HostId) -> Duration {
        2 * self.one_way(a, b)
    }

    /// Opens a connection from `from` (its engine calls it `link`) to
    /// `to`; both learn it after one round trip (SYN, SYN-ACK).
    pub fn dial(&mut self, ag: &mut Agenda<Ev>, from: HostId, link: LinkId, to: HostId) -> ConnId {
        let id = self.conns.len();
        self.conns.push(Conn {
            ends: [End::new(from, link, true), End::new(to, 0, false)],
            open: false,
        });
        for h in [from, to] {
            if let Some(p) = self.ports.get_mut(h) {
                p.conns.push(id);
            }
        }
        ag.at(ag.now() + self.rtt(from, to), Ev::Opened(id));
        id
    }

    fn wire(&self, packet: &Packet) -> u64 {
        let payload = packet.payload_len();
        let segs = payload.div_ceil(u64::from(self.params.mss)).max(1);
        payload + segs * u64::from(self.params.overhead)
    }

    /// Queues `packet` on side `side` of `conn`.
    pub fn send(&mut self, ag: &mut Agenda<Ev>, conn: ConnId, side: usize, packet: Packet) {
        let wire = self.wire(&packet);
        let Some(end) = self.conns.get_mut(conn).map(|c| &mut c.ends[side]) else {
            return;
        };
        if end.fin || !end.attached {
            return;
        }
        if matches!(packet, Packet::Fin) {
            end.fin = true;
        }
        // Bytes written behind bytes not yet sent join them, as in a
        // socket buffer: they leave in the same segments.
        if let (Packet::Data(more), Some(last)) = (&packet, end.queue.back_mut())
            && let Packet::Data(bytes) = &mut last.packet
        {
            bytes.extend_from_slice(more);
            let segs = (bytes.len() as u64)
                .div_ceil(u64::from(self.params.mss))
                .max(1);
            last.wire = bytes.len() as u64 + segs * u64::from(self.params.overhead);
            return;
        }
        end.queue.push_back(Msg {
            packet,
            wire,
            delay: Duration::ZERO,
        });
        let host = end.host;
        if !end.in_ring {
            end.in_ring = true;
            if let Some(p) = self.ports.get_mut(host) {
                p.ring.push_back((conn, side));
            }
        }
        self.start(ag, host);
    }

    /// The message on `host`'s upload is out: start the next one. Returns
    /// the connection and side it went out on, and that side's payload
    /// bytes out so far (what a socket's sender learns as it drains).
    pub fn uplink_free(
        &mut self,
        ag: &mut Agenda<Ev>,
        host: HostId,
    ) -> Option<(ConnId, usize, u64)> {
        let done = self.ports.get_mut(host).and_then(|p| {
            p.busy = false;
            let (c, side, block) = p.current.take()?;
            p.block_sent += u64::from(block);
            Some((c, side))
        });
        // Read before the next message of the same side starts.
        let out = done.and_then(|(c, side)| {
            let end = self.conns.get(c).map(|c| &c.ends[side])?;
            Some((c, side, end.left))
        });
        self.start(ag, host);
        out
    }

    fn start(&mut self, ag: &mut Agenda<Ev>, host: HostId) {
        let now = ag.now();
        let Some(port) = self.ports.get_mut(host) else {
            return;
        };
        if port.busy {
            return;
        }
        while let Some((conn, side)) = port.ring.pop_front() {
            let Some(c) = self.conns.get_mut(conn) else {
                continue;
            };
            let [a, b] = &mut c.ends;
            let (end, other) = if side == 0 { (a, b) } else { (b, a) };
            let Some(mut msg) = end.queue.pop_front() else {
                end.in_ring = false;
                continue;
            };
            match end.queue.is_empty() {
                true => end.in_ring = false,
                false => port.ring.push_back((conn, side)),
            }
            let tx = micros(msg.wire, port.spec.up);
            port.busy = true;
            let block = match &msg.packet {
                Packet::Block { len, .. } => *len,
                _ => 0,
            };
            port.current = Some((conn, side, block));
            end.left += msg.packet.payload_len();
            port.sent += msg.packet.payload_len();
            ag.at(now + tx, Ev::UplinkFree(host));
            if matches!(msg.packet, Packet::Fin) {
                // The closer is told once what it queued before is out.
                end.attached = false;
                ag.at(now + tx, Ev::Closed(conn, side));
            }
            let to = other.host;
            let arrive = now + tx + self.one_way(host, to);
            let (down, loss) = self
                .ports
                .get(to)
                .map_or((0, 0.0), |p| (p.spec.down, p.spec.loss));
            let loss = loss + self.ports.get(host).map_or(0.0, |p| p.spec.loss);
            msg.delay = self.loss_delay(msg.wire, loss, host, to);
            if down == 0 {
                let at = arrive + msg.delay;
                let id = self.store(msg);
                self.deliver_at(ag, conn, 1 - side, at, id);
            } else {
                let id = self.store(msg);
                ag.at(arrive, Ev::Arrive(conn, 1 - side, id));
            }
            return;
        }
    }

    /// The retransmission delay of a message of `wire` bytes, drawn per
    /// segment with probability `p`.
    fn loss_delay(&mut self, wire: u64, p: f64, a: HostId, b: HostId) -> Duration {
        if p <= 0.0 {
            return Duration::ZERO;
        }
        let segs = wire
            .div_ceil(u64::from(self.params.mss + self.params.overhead))
            .max(1);
        let lost = 1.0 - (1.0 - p).powf(segs as f64);
        let draw = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        match draw < lost {
            true => self.params.rto_min + self.rtt(a, b),
            false => Duration::ZERO,
        }
    }

    fn store(&mut self, msg: Msg) -> MsgId {
        match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.in_flight.get_mut(id as usize) {
                    *slot = Some(msg);
                }
                id
            }
            None => {
                self.in_flight.push(Some(msg));
                (self.in_flight.len() - 1) as MsgId
            }
        }
    }

    /// Takes a delivered message out of the table.
    pub fn take(&mut self, id: MsgId) -> Option<Msg> {
        let msg = self.in_flight.get_mut(id as usize)?.take();
        if msg.is_some() {
            self.free.push(id);
        }
        msg
    }

    /// A message reached `to`'s download link: it queues there behind
    /// what arrived before.
    pub fn arrive(&mut self, ag: &mut Agenda<Ev>, conn: ConnId, to: usize, id: MsgId) {
        let now = ag.now();
        let Some((wire, delay)) = self
            .in_flight
            .get(id as usize)
            .and_then(Option::as_ref)
            .map(|m| (m.wire, m.delay))
        else {
            return;
        };
        let Some(host) = self.conns.get(conn).map(|c| c.ends[to].host) else {
            return;
        };
        let Some(port) = self.ports.get_mut(host) else {
            return;
        };
        let done = port.down_free.max(now) + micros(wire, port.spec.down);
        port.down_free = done;
        let Some(end) = self.conns.get_mut(conn).map(|c| &mut c.ends[to]) else {
            return;
        };
        // A retransmission, or a message behind one, is due off the
        // link's order: the agenda holds it. A message due at the same
        // time as the one before (a reset has no bytes) queues behind it:
        // in the agenda it would be delivered first.
        if delay > Duration::ZERO || done < end.last_delivery {
            return self.deliver_at(ag, conn, to, done + delay, id);
        }
        end.last_delivery = done;
        let Some(port) = self.ports.get_mut(host) else {
            return;
        };
        if port.down_queue.is_empty() {
            ag.at(done, Ev::Downlink(host));
        }
        port.down_queue.push_back((done, conn, to, id));
    }

    /// The head of `host`'s download queue is due: returns it, and arms
    /// the event of the next.
    pub fn downlink(
        &mut self,
        ag: &mut Agenda<Ev>,
        host: HostId,
    ) -> Option<(ConnId, usize, MsgId)> {
        let port = self.ports.get_mut(host)?;
        let (_, c, to, id) = port.down_queue.pop_front()?;
        if let Some(&(next, ..)) = port.down_queue.front() {
            ag.at(next, Ev::Downlink(host));
        }
        Some((c, to, id))
    }

    fn deliver_at(&mut self, ag: &mut Agenda<Ev>, conn: ConnId, to: usize, at: Time, msg: MsgId) {
        let Some(end) = self.conns.get_mut(conn).map(|c| &mut c.ends[to]) else {
            return;
        };
        let at = at.max(end.last_delivery);
        end.last_delivery = at;
        ag.at(at, Ev::Deliver(conn, to, msg));
    }

    /// `host` is gone without a word: its connections are dropped, and
    /// the other sides learn it after the path's delay (a reset).
    pub fn kill(&mut self, ag: &mut Agenda<Ev>, host: HostId) {
        let conns = self
            .ports
            .get_mut(host)
            .map(|p| {
                p.ring.clear();
                p.busy = false;
                std::mem::take(&mut p.conns)
            })
            .unwrap_or_default();
        for id in conns {
            for side in 0..2 {
                let Some(c) = self.conns.get_mut(id) else {
                    continue;
                };
                if c.ends[side].host != host {
                    continue;
                }
                let end = &mut c.ends[side];
                end.attached = false;
                end.fin = true;
                end.queue.clear();
                end.in_ring = false;
                end.inbuf = Vec::new();
                let other = &c.ends[1 - side];
                let (tell, peer, open) = (other.attached || !c.open, other.host, c.open);
                if !tell {
                    continue;
                }
                let at = ag.now() + self.one_way(host, peer);
                if !open {
                    ag.at(at, Ev::Closed(id, 1 - side));
                    continue;
                }
                // The reset travels behind what is already on the wire,
                // and is delivered after it, as TCP's would be.
                let reset = self.store(Msg {
                    packet: Packet::Fin,
                    wire: 0,
                    delay: Duration::ZERO,
                });
                match self.ports.get(peer).map_or(0, |p| p.spec.down) {
                    0 => self.deliver_at(ag, id, 1 - side, at, reset),
                    _ => ag.at(at, Ev::Arrive(id, 1 - side, reset)),
                }
            }
        }
    }

    /// Forgets the connections of `host` that are closed on both sides,
    /// so a long run does not keep their buffers.
    pub fn prune(&mut self, host: HostId) {
        let Some(p) = self.ports.get_mut(host) else {
            return;
        };
        let conns = &mut self.conns;
        p.conns.retain(|&id| {
            let Some(c) = conns.get_mut(id) else {
                return false;
            };
            let dead = c.ends.iter().all(|e| !e.attached && e.queue.is_empty());
            if dead {
                c.ends.iter_mut().for_each(|e| e.inbuf = Vec::new());
            }
            !dead
        });
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
