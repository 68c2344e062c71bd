//! A worker driving a BEP 15 (UDP) tracker: setup, steady load, drain.

use crate::schedule::{Ctx, DRAIN, SETUP, STEADY, Schedule};
use crate::stats::Stats;
use crate::udp_session::{Slot, UDP_TIMEOUT, UdpSock, UdpWorker};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use sta::rng::Rng;
use sta::wire::bt_udp::ANNOUNCE_LEN;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub fn udp_worker(ctx: &Ctx, worker: usize, addr: SocketAddr) -> Stats {
    let mut st = Stats::new();
    let a = &ctx.args;
    let peers: Vec<usize> = (worker..a.sessions).step_by(a.threads).collect();
    let mut todo = Vec::new();
    for &p in peers.iter().rev() {
        for h in (0..ctx.pop.sessions[p].len()).rev() {
            todo.push((p as u32, h as u32));
        }
    }
    let mut w = UdpWorker {
        ctx,
        socks: Vec::new(),
        peers,
        todo,
        rng: Rng::new(a.seed ^ (worker as u64 + 1) << 40),
        packet: [0; ANNOUNCE_LEN],
    };
    let mut poll = Poll::new().ok();
    let nsocks = (worker..a.udp_sockets).step_by(a.threads).count();
    let slots = if a.rate.is_some() {
        a.window.max(4096)
    } else {
        a.window
    };
    let mut sched = None;
    let result = (|| -> io::Result<()> {
        let poll = poll.as_mut().ok_or_else(|| io::Error::other("no poll"))?;
        for k in 0..nsocks {
            let mut sock = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            sock.connect(addr)?;
            poll.registry()
                .register(&mut sock, Token(k), Interest::READABLE)?;
            w.socks.push(UdpSock {
                sock,
                conn_id: None,
                connect_sent: 0,
                slots: vec![
                    Slot {
                        t: 0,
                        epoch: 0,
                        busy: false,
                        phase: SETUP,
                        work: (0, 0),
                    };
                    slots
                ],
                free: (0..slots as u16).rev().collect(),
            });
            w.send_connect(k)?;
        }
        udp_loop(&mut w, poll, SETUP, u64::MAX, &mut st, |w| {
            w.todo.is_empty() && !w.busy()
        })
    })();
    if let Err(e) = result {
        st.failure = Some(format!("setup: {e}"));
    }
    ctx.barrier.wait(); // setup over
    ctx.barrier.wait(); // steady phase starts
    let s = sched.insert(Schedule::new(ctx, ctx.clock.ns()));
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
        && let Err(e) = udp_steady(&mut w, poll, s, &mut st)
    {
        st.failure = Some(format!("steady: {e}"));
    }
    ctx.barrier.wait(); // steady phase over
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
    {
        let give_up = ctx.clock.ns() + 2 * UDP_TIMEOUT;
        let deadline = s.deadline;
        let _ = udp_loop(&mut w, poll, DRAIN, deadline, &mut st, |w| {
            !w.busy() || w.ctx.clock.ns() > give_up
        });
    }
    st
}

pub fn udp_loop(
    w: &mut UdpWorker<'_>,
    poll: &mut Poll,
    phase: u8,
    deadline: u64,
    st: &mut Stats,
    done: impl Fn(&UdpWorker<'_>) -> bool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut last_housekeeping = 0;
    while !done(w) {
        if phase == SETUP {
            for k in 0..w.socks.len() {
                w.fill(k, SETUP, deadline, st)?;
            }
        }
        poll.poll(&mut events, Some(w.ctx.wait(Duration::from_millis(20))))?;
        w.ctx.idle(!events.is_empty());
        for ev in events.iter() {
            w.read(ev.token().0, deadline, st)?;
        }
        let now = w.ctx.clock.ns();
        if now - last_housekeeping > 20_000_000 {
            w.housekeeping(st)?;
            last_housekeeping = now;
        }
    }
    Ok(())
}

pub fn udp_steady(
    w: &mut UdpWorker<'_>,
    poll: &mut Poll,
    sched: &mut Schedule,
    st: &mut Stats,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let open = sched.interval.is_some();
    let mut next = 0usize;
    let mut last_housekeeping = sched.start;
    if !open {
        for k in 0..w.socks.len() {
            w.fill(k, STEADY, sched.deadline, st)?;
        }
    }
    loop {
        let now = w.ctx.clock.ns();
        if now >= sched.deadline {
            return Ok(());
        }
        let wait = sched.timeout(now).min(Duration::from_millis(20));
        poll.poll(&mut events, Some(w.ctx.wait(wait)))?;
        w.ctx.idle(!events.is_empty());
        for ev in events.iter() {
            let k = ev.token().0;
            w.read(k, sched.deadline, st)?;
            if !open {
                w.fill(k, STEADY, sched.deadline, st)?;
            }
        }
        let now = w.ctx.clock.ns();
        if open {
            while let Some(at) = sched.due(now) {
                sched.issued += 1;
                let k = next;
                next = (next + 1) % w.socks.len();
                for _ in 0..w.ctx.args.burst {
                    let work = w.random_work();
                    if !w.announce(k, work, at, STEADY, st)? {
                        st.unsent += 1;
                    }
                }
            }
        }
        if now - last_housekeeping > 20_000_000 {
            w.housekeeping(st)?;
            if !open {
                for k in 0..w.socks.len() {
                    w.fill(k, STEADY, sched.deadline, st)?;
                }
            }
            last_housekeeping = now;
        }
    }
}
