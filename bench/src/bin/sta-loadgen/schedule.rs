//! The clock, the phases every worker goes through with the main thread,
//! and the steady phase's schedule (closed or open loop).

use crate::args::{Args, Target, WaitMode};
use crate::population::Population;
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Phases every worker passes through together with the main thread.
pub struct Ctx {
    pub args: Args,
    pub pop: Population,
    pub target: Target,
    pub clock: Clock,
    /// Workers plus the main thread: setup done, steady go, steady over.
    pub barrier: Barrier,
}

impl Ctx {
    /// How long poll may block: up to `d` in block mode, else not at all.
    pub fn wait(&self, d: Duration) -> Duration {
        match self.args.wait {
            WaitMode::Block => d,
            _ => Duration::ZERO,
        }
    }

    /// After a poll: nap if it found nothing and napping is the mode.
    pub fn idle(&self, had_events: bool) {
        if let WaitMode::Nap(d) = self.args.wait
            && !had_events
        {
            std::thread::sleep(d);
        }
    }
}

/// The steady phase's schedule, shared by both drivers.
pub struct Schedule {
    pub start: u64,
    pub deadline: u64,
    /// Open loop: nanoseconds between two requests of this worker.
    pub interval: Option<f64>,
    pub issued: u64,
}

impl Schedule {
    pub fn new(ctx: &Ctx, now: u64) -> Schedule {
        let a = &ctx.args;
        Schedule {
            start: now,
            deadline: now + (a.seconds * 1e9) as u64,
            interval: a.rate.map(|r| 1e9 * (a.threads * a.burst) as f64 / r),
            issued: 0,
        }
    }

    /// Open loop: the scheduled time of the next request, if it is due.
    pub fn due(&self, now: u64) -> Option<u64> {
        let at = self.start + (self.issued as f64 * self.interval?) as u64;
        (at <= now && at < self.deadline).then_some(at)
    }

    /// How long the loop may sleep in poll (in block mode).
    pub fn timeout(&self, now: u64) -> Duration {
        let mut until = self.deadline.saturating_sub(now);
        if let Some(iv) = self.interval {
            let next = self.start + (self.issued as f64 * iv) as u64;
            // Sleep only when the next send is far; spin otherwise, since
            // poll's timeout has millisecond granularity.
            let wait = next.saturating_sub(now);
            until = until.min(if wait > 2_000_000 {
                wait - 1_000_000
            } else {
                0
            });
        }
        Duration::from_nanos(until)
    }
}

/// Phase tag of an outstanding request.
pub const SETUP: u8 = 0;
pub const STEADY: u8 = 1;
pub const DRAIN: u8 = 2;
