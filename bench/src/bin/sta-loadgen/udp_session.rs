//! BEP 15 sockets of a worker: connection ids, announces in slots,
//! datagrams lost and retried.

use crate::population::{PIECE_LENGTH, peer_id, peer_port};
use crate::schedule::{Ctx, SETUP, STEADY};
use crate::stats::{K_ANNOUNCE, Stats};
use mio::net::UdpSocket;
use sta::rng::Rng;
use sta::wire::bt_udp::{ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR, ANNOUNCE_LEN, PROTOCOL_ID};
use std::io;

pub const CONNECT_TID: u32 = u32::MAX;
pub const UDP_TIMEOUT: u64 = 250_000_000;

#[derive(Clone, Copy)]
pub struct Slot {
    pub t: u64,
    pub epoch: u16,
    pub busy: bool,
    pub phase: u8,
    /// Setup: the (session, holding) to retry if the datagram is lost.
    pub work: (u32, u32),
}

pub struct UdpSock {
    pub sock: UdpSocket,
    pub conn_id: Option<u64>,
    pub connect_sent: u64,
    pub slots: Vec<Slot>,
    pub free: Vec<u16>,
}

impl UdpSock {
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

pub struct UdpWorker<'a> {
    pub ctx: &'a Ctx,
    pub socks: Vec<UdpSock>,
    /// This worker's simulated peers (global session indices).
    pub peers: Vec<usize>,
    /// Setup work: (session, holding) pairs still to announce.
    pub todo: Vec<(u32, u32)>,
    pub rng: Rng,
    pub packet: [u8; ANNOUNCE_LEN],
}

impl UdpWorker<'_> {
    pub fn send_connect(&mut self, k: usize) -> io::Result<()> {
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
        p[12..].copy_from_slice(&CONNECT_TID.to_be_bytes());
        self.socks[k].connect_sent = self.ctx.clock.ns();
        match self.socks[k].sock.send(&p) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends one announce for `work` from socket `k`; false if no slot.
    pub fn announce(
        &mut self,
        k: usize,
        work: (u32, u32),
        t: u64,
        phase: u8,
        st: &mut Stats,
    ) -> io::Result<bool> {
        let Some(conn_id) = self.socks[k].conn_id else {
            return Ok(false);
        };
        let Some(slot) = self.socks[k].free.pop() else {
            return Ok(false);
        };
        let (session, h) = (work.0 as usize, work.1 as usize);
        let hold = self.ctx.pop.sessions[session][h];
        let f = &self.ctx.pop.files[hold.file as usize];
        let s = &mut self.socks[k].slots[slot as usize];
        s.epoch = s.epoch.wrapping_add(1);
        s.busy = true;
        s.t = t;
        s.phase = phase;
        s.work = work;
        let tid = u32::from(s.epoch) << 16 | u32::from(slot);
        let p = &mut self.packet;
        p[0..8].copy_from_slice(&conn_id.to_be_bytes());
        p[8..12].copy_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
        p[12..16].copy_from_slice(&tid.to_be_bytes());
        p[16..36].copy_from_slice(&f.hash);
        p[36..56].copy_from_slice(&peer_id(session));
        let left = if hold.seeder {
            0
        } else {
            u64::from(f.pieces) * u64::from(PIECE_LENGTH) / 2
        };
        p[56..64].copy_from_slice(&0u64.to_be_bytes());
        p[64..72].copy_from_slice(&left.to_be_bytes());
        p[72..80].copy_from_slice(&0u64.to_be_bytes());
        let event: u32 = if phase == SETUP { 2 } else { 0 };
        p[80..84].copy_from_slice(&event.to_be_bytes());
        p[84..88].copy_from_slice(&0u32.to_be_bytes());
        p[88..92].copy_from_slice(&(session as u32).to_be_bytes());
        p[92..96].copy_from_slice(&u32::from(self.ctx.args.want).to_be_bytes());
        p[96..98].copy_from_slice(&peer_port(session).to_be_bytes());
        match self.socks[k].sock.send(&self.packet) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socks[k].slots[slot as usize].busy = false;
                self.socks[k].free.push(slot);
                if phase == SETUP {
                    self.todo.push(work);
                }
                st.unsent += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn random_work(&mut self) -> (u32, u32) {
        loop {
            let session = self.peers[self.rng.below(self.peers.len())];
            let n = self.ctx.pop.sessions[session].len();
            if n > 0 {
                return (session as u32, self.rng.below(n) as u32);
            }
        }
    }

    /// Fills socket `k`'s window: setup work, or steady closed-loop work.
    pub fn fill(&mut self, k: usize, phase: u8, deadline: u64, st: &mut Stats) -> io::Result<()> {
        // One window for both phases: the server's socket buffer holds
        // only so many datagrams (about 200 with Linux's default
        // rmem_default of 208 KiB), and what overflows it is lost.
        let window = self.ctx.args.window;
        while self.socks[k].in_flight() < window {
            let now = self.ctx.clock.ns();
            let work = if phase == SETUP {
                match self.todo.pop() {
                    Some(w) => w,
                    None => return Ok(()),
                }
            } else {
                if now >= deadline {
                    return Ok(());
                }
                self.random_work()
            };
            if !self.announce(k, work, now, phase, st)? {
                if phase == SETUP {
                    self.todo.push(work);
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads every datagram waiting on socket `k`.
    pub fn read(&mut self, k: usize, deadline: u64, st: &mut Stats) -> io::Result<()> {
        let mut buf = [0u8; 2048];
        loop {
            let n = match self.socks[k].sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable shows up here: the server is gone.
                Err(e) => return Err(e),
            };
            let now = self.ctx.clock.ns();
            if n < 8 {
                st.error("short datagram".into());
                continue;
            }
            let action = be_u32(&buf, 0);
            let tid = be_u32(&buf, 4);
            let sock = &mut self.socks[k];
            if tid == CONNECT_TID {
                if action == ACTION_CONNECT && n >= 16 {
                    sock.conn_id =
                        Some((u64::from(be_u32(&buf, 8)) << 32) | u64::from(be_u32(&buf, 12)));
                }
                continue;
            }
            let slot = (tid & 0xffff) as usize;
            let Some(s) = sock.slots.get_mut(slot) else {
                continue;
            };
            if !s.busy || u32::from(s.epoch) != tid >> 16 {
                continue; // a reply that came after its timeout
            }
            s.busy = false;
            let s = *s;
            sock.free.push(slot as u16);
            if action == ACTION_ERROR {
                let msg = String::from_utf8_lossy(&buf[8..n]);
                let msg = msg.trim_end_matches('\0').to_string();
                if msg.contains("Connection ID") {
                    sock.conn_id = None;
                }
                if s.phase == SETUP {
                    self.todo.push(s.work);
                }
                st.error(format!("announce -> error: {msg}"));
                continue;
            }
            if action != ACTION_ANNOUNCE || n < 20 {
                st.error(format!(
                    "announce -> reply of {n} bytes, action {action} (info hash not whitelisted?)"
                ));
                continue;
            }
            st.peers_returned += ((n - 20) / 6) as u64;
            st.peers_answers += 1;
            let latency = now.saturating_sub(s.t);
            match s.phase {
                SETUP => {
                    st.setup.record(latency);
                    st.setup_done += 1;
                }
                STEADY => {
                    st.steady[K_ANNOUNCE as usize].record(latency);
                    st.done += u64::from(now <= deadline);
                }
                _ => {}
            }
        }
    }

    /// Times out lost datagrams (setup work is retried) and reconnects
    /// sockets whose connection id is missing.
    pub fn housekeeping(&mut self, st: &mut Stats) -> io::Result<()> {
        let now = self.ctx.clock.ns();
        for k in 0..self.socks.len() {
            let sock = &mut self.socks[k];
            for i in 0..sock.slots.len() {
                let s = &mut sock.slots[i];
                if s.busy && now.saturating_sub(s.t) > UDP_TIMEOUT {
                    s.busy = false;
                    sock.free.push(i as u16);
                    st.lost += 1;
                    match s.phase {
                        SETUP => self.todo.push(s.work),
                        _ => st.steady[K_ANNOUNCE as usize].record(now - s.t),
                    }
                }
            }
            if self.socks[k].conn_id.is_none()
                && now.saturating_sub(self.socks[k].connect_sent) > 200_000_000
            {
                self.send_connect(k)?;
            }
        }
        Ok(())
    }

    pub fn busy(&self) -> bool {
        self.socks
            .iter()
            .any(|s| s.in_flight() > 0 || s.conn_id.is_none())
    }
}

/// The big-endian `u32` at `at` of a datagram buffer (at least `at + 4`
/// bytes long: the buffer, not the datagram in it).
fn be_u32(buf: &[u8; 2048], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
