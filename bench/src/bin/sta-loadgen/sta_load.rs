//! A worker driving STA sessions: setup (hello, then an announce per
//! holding), the steady mix, and the drain.

use crate::population::{Hold, peer_id, peer_port, random_partial};
use crate::schedule::{Ctx, SETUP, STEADY, Schedule};
use crate::sta_session::{Pending, StaSession, encode_announce};
use crate::stats::{K_ANNOUNCE, K_GETPEERS, K_HAVE, K_HELLO, Stats};
use mio::{Events, Interest, Poll, Token};
use sta::rng::Rng;
use sta::wire::tracker::Request;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Request generator of one worker.
pub struct StaGen<'a> {
    pub ctx: &'a Ctx,
    pub rng: Rng,
    pub bits: Vec<u8>,
}

impl StaGen<'_> {
    fn announce(&mut self, s: &mut StaSession, hold: Hold, t: u64, phase: u8) {
        let f = &self.ctx.pop.files[hold.file as usize];
        if hold.seeder {
            encode_announce(&mut s.out, &f.info, None);
        } else {
            random_partial(&mut self.rng, f.pieces, &mut self.bits);
            encode_announce(&mut s.out, &f.info, Some(&self.bits));
        }
        s.inflight.push_back(Pending {
            t,
            kind: K_ANNOUNCE,
            phase,
        });
    }

    /// Setup: hello, then one announce per holding, within the window.
    fn setup_fill(&mut self, s: &mut StaSession, now: u64) {
        let holds = &self.ctx.pop.sessions[s.index];
        while s.inflight.len() < self.ctx.args.setup_window && s.next_setup <= holds.len() {
            if s.next_setup == 0 {
                Request::Hello {
                    version: sta::limits::TRACKER_PROTOCOL_VERSION,
                    peer_id: peer_id(s.index),
                    listen_port: peer_port(s.index),
                }
                .encode(&mut s.out);
                s.inflight.push_back(Pending {
                    t: now,
                    kind: K_HELLO,
                    phase: SETUP,
                });
            } else {
                self.announce(s, holds[s.next_setup - 1], now, SETUP);
            }
            s.next_setup += 1;
        }
    }

    /// Steady: one request of the mix.
    fn steady_one(&mut self, s: &mut StaSession, t: u64) {
        let a = &self.ctx.args;
        let pop = &self.ctx.pop;
        let holds = &pop.sessions[s.index];
        let total = a.mix.getpeers + a.mix.have + a.mix.announce;
        let r = self.rng.below(total as usize) as u32;
        let partial = |rng: &mut Rng| holds[s.partial[rng.below(s.partial.len())] as usize];
        if r < a.mix.getpeers || holds.is_empty() {
            // A downloader asks for the peers of a file it is fetching, or
            // of a file it is about to fetch.
            let file = if !s.partial.is_empty() && self.rng.below(2) == 0 {
                partial(&mut self.rng).file as usize
            } else {
                self.rng.below(pop.files.len())
            };
            let f = &pop.files[file];
            let piece = (self.rng.below(100) < a.filter as usize)
                .then(|| self.rng.below(f.pieces as usize) as u32);
            Request::GetPeers {
                info_hash: f.hash,
                max: a.want,
                piece,
            }
            .encode(&mut s.out);
            s.inflight.push_back(Pending {
                t,
                kind: K_GETPEERS,
                phase: STEADY,
            });
        } else if r < a.mix.getpeers + a.mix.have && !s.partial.is_empty() {
            let hold = partial(&mut self.rng);
            let f = &pop.files[hold.file as usize];
            Request::Have {
                info_hash: f.hash,
                piece: self.rng.below(f.pieces as usize) as u32,
            }
            .encode(&mut s.out);
            s.inflight.push_back(Pending {
                t,
                kind: K_HAVE,
                phase: STEADY,
            });
        } else {
            let hold = holds[self.rng.below(holds.len())];
            self.announce(s, hold, t, STEADY);
        }
    }
}

pub fn sta_worker(ctx: &Ctx, worker: usize, addr: SocketAddr) -> Stats {
    let mut st = Stats::new();
    let mut sessions = Vec::new();
    let mut poll = None;
    let mut generator = StaGen {
        ctx,
        rng: Rng::new(ctx.args.seed ^ (worker as u64 + 1) << 40),
        bits: Vec::new(),
    };
    if let Err(e) = sta_setup(
        ctx,
        worker,
        addr,
        &mut sessions,
        &mut poll,
        &mut generator,
        &mut st,
    ) {
        st.failure = Some(format!("setup: {e}"));
    }
    ctx.barrier.wait(); // setup over
    ctx.barrier.wait(); // steady phase starts
    let mut sched = Schedule::new(ctx, ctx.clock.ns());
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
        && let Err(e) = sta_steady(
            ctx,
            poll,
            &mut sessions,
            &mut generator,
            &mut sched,
            &mut st,
        )
    {
        st.failure = Some(format!("steady: {e}"));
    }
    ctx.barrier.wait(); // steady phase over
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
    {
        // Collect the stragglers so the tracker sees orderly sessions;
        // after this many seconds, anything missing counts as lost.
        let give_up = ctx.clock.ns() + 5_000_000_000;
        let _ = run_sta_loop(
            ctx,
            poll,
            &mut sessions,
            &mut st,
            None,
            sched.deadline,
            |s| s.inflight.is_empty() || ctx.clock.ns() > give_up,
        );
        let now = ctx.clock.ns();
        for p in sessions.iter().flat_map(|s| &s.inflight) {
            st.lost += 1;
            if p.phase == STEADY {
                st.steady[p.kind as usize].record(now.saturating_sub(p.t));
            }
        }
    }
    st
}

pub fn sta_setup(
    ctx: &Ctx,
    worker: usize,
    addr: SocketAddr,
    sessions: &mut Vec<StaSession>,
    poll_slot: &mut Option<Poll>,
    generator: &mut StaGen<'_>,
    st: &mut Stats,
) -> io::Result<()> {
    let poll = poll_slot.insert(Poll::new()?);
    for index in (worker..ctx.args.sessions).step_by(ctx.args.threads) {
        let n = ctx.args.source_ips;
        let source = (n > 1).then(|| IpAddr::from([127, 0, 0, 1 + (index % usize::from(n)) as u8]));
        let mut s = StaSession::connect(addr, source, index, &ctx.pop)?;
        poll.registry().register(
            &mut s.stream,
            Token(sessions.len()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        sessions.push(s);
    }
    let now = ctx.clock.ns();
    for s in sessions.iter_mut() {
        generator.setup_fill(s, now);
        s.flush()?;
    }
    let holds = &ctx.pop.sessions;
    run_sta_loop(ctx, poll, sessions, st, Some(generator), u64::MAX, |s| {
        s.inflight.is_empty() && s.next_setup > holds[s.index].len()
    })
}

/// Polls until `done` holds for every session. With `setup`, refills
/// setup windows as responses arrive; without, only drains.
pub fn run_sta_loop(
    ctx: &Ctx,
    poll: &mut Poll,
    sessions: &mut [StaSession],
    st: &mut Stats,
    mut setup: Option<&mut StaGen<'_>>,
    deadline: u64,
    done: impl Fn(&StaSession) -> bool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut pending = sessions.iter().filter(|s| !done(s)).count();
    while pending > 0 {
        poll.poll(&mut events, Some(ctx.wait(Duration::from_millis(100))))?;
        ctx.idle(!events.is_empty());
        for ev in events.iter() {
            let s = &mut sessions[ev.token().0];
            let was_done = done(s);
            if ev.is_writable() {
                s.writable = true;
            }
            if ev.is_readable() {
                s.read(ctx.clock, deadline, st)?;
            }
            if let Some(generator) = setup.as_deref_mut() {
                generator.setup_fill(s, ctx.clock.ns());
            }
            s.flush()?;
            if !was_done && done(s) {
                pending -= 1;
            }
        }
        if setup.is_none() {
            // Draining: re-evaluate (the give-up clock may have passed).
            pending = sessions.iter().filter(|s| !done(s)).count();
        }
    }
    Ok(())
}

pub fn sta_steady(
    ctx: &Ctx,
    poll: &mut Poll,
    sessions: &mut [StaSession],
    generator: &mut StaGen<'_>,
    sched: &mut Schedule,
    st: &mut Stats,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let window = ctx.args.window;
    // Open loop: no window, but a cap so an overloaded server cannot make
    // the generator hoard requests without bound.
    let cap = 100_000;
    let open = sched.interval.is_some();
    let burst = ctx.args.burst;
    if !open {
        let now = ctx.clock.ns();
        for s in sessions.iter_mut() {
            while s.inflight.len() < window {
                generator.steady_one(s, now);
            }
            s.flush()?;
        }
    }
    let mut next = 0usize;
    loop {
        let now = ctx.clock.ns();
        if now >= sched.deadline {
            return Ok(());
        }
        poll.poll(&mut events, Some(ctx.wait(sched.timeout(now))))?;
        ctx.idle(!events.is_empty());
        for ev in events.iter() {
            let s = &mut sessions[ev.token().0];
            if ev.is_writable() {
                s.writable = true;
            }
            if ev.is_readable() {
                s.read(ctx.clock, sched.deadline, st)?;
            }
            if !open {
                let now = ctx.clock.ns();
                while s.inflight.len() < window && now < sched.deadline {
                    generator.steady_one(s, now);
                }
            }
            s.flush()?;
        }
        if open {
            let now = ctx.clock.ns();
            let mut touched = false;
            while let Some(at) = sched.due(now) {
                sched.issued += 1;
                let n = sessions.len();
                let s = &mut sessions[next];
                next = (next + 1) % n;
                if s.inflight.len() >= cap {
                    st.unsent += burst as u64;
                    continue;
                }
                for _ in 0..burst {
                    generator.steady_one(s, at);
                }
                touched = true;
            }
            if touched {
                for s in sessions.iter_mut().filter(|s| !s.out.is_empty()) {
                    s.flush()?;
                }
            }
        }
    }
}
