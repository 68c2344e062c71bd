//! One simulated STA peer: a TCP session to the tracker, its pipelined
//! requests, and the check of every response.

use crate::population::Population;
use crate::schedule::{Clock, SETUP, STEADY};
use crate::stats::{K_ANNOUNCE, K_HAVE, K_HELLO, KINDS, Stats};
use mio::net::TcpStream;
use sta::limits::MAX_TRACKER_FRAME;
use sta::wire::split_frame;
use sta::wire::tracker::{Response, req, resp};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

pub struct Pending {
    pub t: u64,
    pub kind: u8,
    pub phase: u8,
}

pub struct StaSession {
    pub stream: TcpStream,
    pub index: usize,
    /// Positions in the holdings of those held partially.
    pub partial: Vec<u32>,
    pub out: Vec<u8>,
    pub out_pos: usize,
    pub input: Vec<u8>,
    pub in_len: usize,
    pub inflight: VecDeque<Pending>,
    pub writable: bool,
    /// Setup: holdings announced so far (the hello counts as one more).
    pub next_setup: usize,
}

impl StaSession {
    /// Connects session `index`, from `source` if given (port chosen by
    /// the kernel).
    pub fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        index: usize,
        pop: &Population,
    ) -> io::Result<StaSession> {
        let std = match source {
            Some(ip) => crate::connect_from::connect_from(ip, addr)?,
            None => std::net::TcpStream::connect(addr)?,
        };
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let partial = pop.sessions[index]
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.seeder)
            .map(|(i, _)| i as u32)
            .collect();
        Ok(StaSession {
            stream: TcpStream::from_std(std),
            index,
            partial,
            // Small at first: a fleet has tens of thousands of sessions,
            // and both buffers grow as needed.
            out: Vec::with_capacity(4 * 1024),
            out_pos: 0,
            input: vec![0; 8 * 1024],
            in_len: 0,
            inflight: VecDeque::new(),
            writable: true,
            next_setup: 0,
        })
    }

    /// Writes queued requests until done or the socket would block.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.writable && self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Reads and checks every complete response.
    pub fn read(&mut self, clock: Clock, deadline: u64, st: &mut Stats) -> io::Result<()> {
        loop {
            if self.in_len == self.input.len() {
                let grown = self.input.len() * 2;
                self.input.resize(grown, 0);
            }
            let spare = self.input.len() - self.in_len;
            let n = match self.stream.read(&mut self.input[self.in_len..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the tracker closed the session",
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.in_len += n;
            let now = clock.ns();
            let mut pos = 0;
            loop {
                let found = split_frame(&self.input[pos..self.in_len], MAX_TRACKER_FRAME)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let Some((body, used)) = found else { break };
                if !body.is_empty() {
                    let frame = &self.input[pos..pos + used];
                    let p = self.inflight.pop_front().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "response to no request")
                    })?;
                    check_response(frame, body, &p, now, deadline, st);
                }
                pos += used;
            }
            self.input.copy_within(pos..self.in_len, 0);
            self.in_len -= pos;
            if n < spare {
                // A short read drained the socket (TCP on Linux): the next
                // bytes will raise a new readiness event, so spare the
                // read that would only say WouldBlock.
                return Ok(());
            }
        }
    }
}

/// Checks one response against its request and records its latency.
pub fn check_response(
    frame: &[u8],
    body: &[u8],
    p: &Pending,
    now: u64,
    deadline: u64,
    st: &mut Stats,
) {
    let expected = match p.kind {
        K_HELLO => resp::WELCOME,
        K_ANNOUNCE => resp::ANNOUNCED,
        K_HAVE => resp::ACK,
        _ => resp::PEERS,
    };
    let id = body[0];
    if id != expected {
        let what = match Response::decode(frame) {
            Ok(Some((Response::Error { code, message }, _))) => {
                format!("{} -> error {code}: {message}", KINDS[p.kind as usize])
            }
            _ => format!(
                "{} -> unexpected response 0x{id:02x}",
                KINDS[p.kind as usize]
            ),
        };
        st.error(what);
        return;
    }
    if id == resp::PEERS && body.len() >= 23 {
        st.peers_returned += u64::from(u16::from_be_bytes([body[21], body[22]]));
        st.peers_answers += 1;
    }
    let latency = now.saturating_sub(p.t);
    match p.phase {
        SETUP => {
            st.setup.record(latency);
            st.setup_done += 1;
        }
        STEADY => {
            st.steady[p.kind as usize].record(latency);
            st.done += u64::from(now <= deadline);
        }
        _ => {}
    }
}

/// Appends an announce frame, byte for byte what `Request::Announce`
/// encodes, without copying the info dict into an owned request first.
pub fn encode_announce(out: &mut Vec<u8>, info: &[u8], bits: Option<&[u8]>) {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, req::ANNOUNCE]);
    out.extend_from_slice(&(info.len() as u32).to_be_bytes());
    out.extend_from_slice(info);
    match bits {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}
