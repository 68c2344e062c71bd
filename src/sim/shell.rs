//! The simulator's shell around each engine, as `src/peer/daemon.rs` is
//! for real sockets: it carries out the engine's actions on the network
//! and the agenda, and hands it what the network delivers. The tracker's
//! connections are fed to the real core as `sta-trackerd`'s service
//! does.

use super::net::{ConnId, HostId, Msg, Packet};
use super::store::{Body, HONEST, SimStorage};
use super::swarm::{Ev, Sim, host_ip};
use crate::engine::{Action, Job};
use crate::tracker;
use crate::wire::tracker::Request;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

impl<S: SimStorage> Sim<S> {
    /// Carries out what `h`'s engine asked for, then keeps its timer set.
    pub(super) fn perform(&mut self, h: HostId) {
        let now = self.now();
        loop {
            let Some(host) = self.hosts.get_mut(h) else {
                return;
            };
            let Some(engine) = host.engine.as_mut() else {
                return;
            };
            let Some(action) = engine.poll_action() else {
                let t = engine.poll_timeout();
                if host.timer.is_none_or(|x| x > t) {
                    host.timer = Some(t);
                    self.agenda.at(t, Ev::Timeout(h, host.epoch));
                }
                return;
            };
            match action {
                // The simulated network has no per-packet cost: what may
                // wait is sent at once.
                a @ (Action::Send { .. } | Action::SendLater { .. } | Action::SendInfo { .. }) => {
                    let Some((link, bytes)) = a.bytes_sent() else {
                        continue;
                    };
                    if host.controls.contains(&link) {
                        host.control_output(now, &bytes);
                    } else if let Some(&(c, side)) = host.links.get(&link) {
                        self.net
                            .send(&mut self.agenda, c, side, Packet::Data(bytes));
                    }
                }
                Action::SendBlock {
                    link,
                    header,
                    file,
                    offset,
                    len,
                } => {
                    let Some(&(c, side)) = host.links.get(&link) else {
                        continue;
                    };
                    match engine.storage().block(file, offset, len, host.liar) {
                        Some(body) => {
                            let p = Packet::Block { header, len, body };
                            self.net.send(&mut self.agenda, c, side, p);
                        }
                        None => self.net.send(&mut self.agenda, c, side, Packet::Fin),
                    }
                }
                Action::Dial { link, addr } => {
                    let epoch = host.epoch;
                    match self.listeners.get(&addr) {
                        Some(&to) => {
                            if to >= self.trackers.len() {
                                self.dials.push((now, h, to));
                            }
                            let c = self.net.dial(&mut self.agenda, h, link, to);
                            host.links.insert(link, (c, 0));
                        }
                        None => {
                            // Nobody listens there: a reset after a round
                            // trip to the host's own edge.
                            let rtt = self.net.rtt(h, h);
                            self.agenda.at(now + rtt, Ev::Refused(h, epoch, link));
                        }
                    }
                }
                Action::Close { link } => {
                    if host.controls.remove(&link) {
                        engine.link_closed(now, link);
                    } else if let Some(&(c, side)) = host.links.get(&link) {
                        self.close(c, side);
                    }
                }
                Action::Job(job) => {
                    let done = engine.storage_mut().run(&job);
                    let bytes = match &job {
                        Job::Allocate { .. } => 0,
                        Job::Hash {
                            length,
                            piece_length,
                            pieces,
                            ..
                        } => (u64::from(pieces.end - pieces.start) * u64::from(*piece_length))
                            .min(*length),
                        Job::Verify { length, .. } => u64::from(*length),
                    };
                    let rate = self.world.hash_rate.max(1);
                    let took = Duration::from_micros(bytes.saturating_mul(1_000_000) / rate);
                    host.hash_free = host.hash_free.max(now) + took;
                    self.agenda
                        .at(host.hash_free, Ev::Job(h, host.epoch, Box::new(done)));
                }
                // The simulated network has capacities of its own.
                Action::Stop | Action::SetRates { .. } => {}
            }
        }
    }

    /// Side `side` of `c` closes: a FIN after what is queued; before the
    /// connection is up, it is simply abandoned.
    pub(super) fn close(&mut self, c: ConnId, side: usize) {
        let Some(conn) = self.net.conns.get_mut(c) else {
            return;
        };
        if conn.open {
            self.net.send(&mut self.agenda, c, side, Packet::Fin);
        } else {
            conn.ends[side].attached = false;
            self.agenda.at(self.agenda.now(), Ev::Closed(c, side));
        }
    }

    pub(super) fn opened(&mut self, c: ConnId) {
        let now = self.now();
        let Some(conn) = self.net.conns.get(c) else {
            return;
        };
        let (dialer, link, to) = (conn.ends[0].host, conn.ends[0].link, conn.ends[1].host);
        if !conn.ends[0].attached || conn.ends[1].fin {
            return; // abandoned while connecting, or the other side died
        }
        let remote = SocketAddr::new(IpAddr::V4(host_ip(dialer)), 32768 + (c % 28000) as u16);
        let tracker = self.is_tracker(to);
        let accepted = match self.trackers.get_mut(to) {
            Some(Some(t)) => {
                t.connect(c, remote.ip());
                Some(0)
            }
            Some(None) => None,
            None => self
                .hosts
                .get_mut(to)
                .and_then(|x| x.engine.as_mut().map(|e| (e, &mut x.links)))
                .map(|(e, links)| {
                    let l = e.peer_accepted(now, remote);
                    links.insert(l, (c, 1));
                    l
                }),
        };
        let Some(accepted_link) = accepted else {
            if let Some(conn) = self.net.conns.get_mut(c) {
                conn.ends[0].attached = false;
            }
            self.closed(c, 0);
            return;
        };
        if let Some(conn) = self.net.conns.get_mut(c) {
            conn.open = true;
            conn.ends[1].link = accepted_link;
            conn.ends[1].attached = true;
        }
        if !tracker {
            self.perform(to);
        }
        if let Some(e) = self.hosts.get_mut(dialer).and_then(|x| x.engine.as_mut()) {
            e.link_opened(now, link);
        }
        self.perform(dialer);
    }

    /// Side `side` of `c` learns the connection is gone.
    pub(super) fn closed(&mut self, c: ConnId, side: usize) {
        let now = self.now();
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[side]) else {
            return;
        };
        end.attached = false;
        let (h, link) = (end.host, end.link);
        if self.is_tracker(h) {
            if let Some(Some(t)) = self.trackers.get_mut(h) {
                t.disconnect(c);
            }
            self.net.prune(h);
            return;
        }
        let Some(host) = self.hosts.get_mut(h) else {
            return;
        };
        if host.links.get(&link) != Some(&(c, side)) {
            return; // already told, or an earlier engine's link
        }
        host.links.remove(&link);
        if let Some(e) = host.engine.as_mut() {
            e.link_closed(now, link);
        }
        self.net.prune(h);
        self.perform(h);
    }

    /// A message of side `side` of `c` is on the wire: its engine learns
    /// that `left` bytes of the link are out, as `sta-peerd` learns it from
    /// its sockets.
    pub(super) fn sent(&mut self, c: ConnId, side: usize, left: u64) {
        let now = self.now();
        let Some(end) = self.net.conns.get(c).map(|x| &x.ends[side]) else {
            return;
        };
        let (h, link) = (end.host, end.link);
        let Some(engine) = self.hosts.get_mut(h).and_then(|x| x.engine.as_mut()) else {
            return;
        };
        engine.link_sent(now, link, left);
        self.perform(h);
    }

    pub(super) fn deliver(&mut self, c: ConnId, to: usize, msg: Msg) {
        let now = self.now();
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[to]) else {
            return;
        };
        if !end.attached {
            return;
        }
        let (h, link) = (end.host, end.link);
        if let Packet::Fin = msg.packet {
            return self.closed(c, to);
        }
        if self.is_tracker(h) {
            return self.tracker_input(h, c, to, msg);
        }
        let frame: &[u8] = match &msg.packet {
            Packet::Data(b) => b,
            Packet::Block { header, len, body } => {
                if let Some(host) = self.hosts.get_mut(h) {
                    host.block_received(header, *len);
                }
                let n = 13 + *len as usize;
                match body {
                    Body::Fill(m) if n <= self.honest.len() => {
                        let buf = if *m == HONEST {
                            &mut self.honest
                        } else {
                            &mut self.forged
                        };
                        buf[..13].copy_from_slice(header);
                        &buf[..n]
                    }
                    Body::Fill(m) => {
                        self.frame.clear();
                        self.frame.extend_from_slice(header);
                        self.frame.resize(n, *m);
                        &self.frame
                    }
                    Body::Bytes(b) => {
                        self.frame.clear();
                        self.frame.extend_from_slice(header);
                        self.frame.extend_from_slice(b);
                        &self.frame
                    }
                }
            }
            Packet::Fin => return,
        };
        let Some(engine) = self.hosts.get_mut(h).and_then(|x| x.engine.as_mut()) else {
            return;
        };
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[to]) else {
            return;
        };
        if end.inbuf.is_empty() {
            let used = engine.link_input(now, link, frame);
            if let Some(rest) = frame.get(used..) {
                end.inbuf.extend_from_slice(rest);
            }
        } else {
            end.inbuf.extend_from_slice(frame);
            let used = engine.link_input(now, link, &end.inbuf);
            end.inbuf.drain(..used.min(end.inbuf.len()));
        }
        self.perform(h);
    }

    /// Requests reach the tracker core as `sta-trackerd`'s service feeds
    /// them; its answers go back on the same connection.
    fn tracker_input(&mut self, h: usize, c: ConnId, to: usize, msg: Msg) {
        let Packet::Data(bytes) = msg.packet else {
            return;
        };
        let Some(Some(t)) = self.trackers.get_mut(h) else {
            return;
        };
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[to]) else {
            return;
        };
        end.inbuf.extend_from_slice(&bytes);
        let mut used = 0;
        let mut close = false;
        self.tracker_out.clear();
        while !close {
            match Request::decode(&end.inbuf[used..]) {
                Ok(None) => break,
                Ok(Some((req, n))) => {
                    used += n;
                    close = t.handle(c, req, &mut self.tracker_out) == tracker::core::Next::Close;
                }
                Err(e) => {
                    e.to_response().encode(&mut self.tracker_out);
                    match e.used {
                        Some(n) => used += n,
                        None => close = true,
                    }
                }
            }
        }
        end.inbuf.drain(..used.min(end.inbuf.len()));
        if !self.tracker_out.is_empty() {
            let out = std::mem::take(&mut self.tracker_out);
            self.net.send(&mut self.agenda, c, to, Packet::Data(out));
        }
        if close {
            self.close(c, to);
        }
    }
}
