//! How many blocks to keep requested from one peer: twice its link's
//! bandwidth-delay product, and never fewer than the 64 every link had
//! before.
//!
//! Too few and the link idles between our requests. The depth is
//!
//! ```text
//! GAIN x rate x rtt / BLOCK_SIZE, within MIN_DEPTH..=MAX_DEPTH
//! and the peer's own `reqq` (BEP 10)
//! ```
//!
//! - `rate` is what the peer sent us while we had requests at it, over
//!   windows of `RATE_WINDOW`;
//! - `rtt` is the time from a request sent to an idle link (nothing of
//!   ours queued at the peer) to its block's arrival: the network's round
//!   trip and the peer's reaction, with no backlog of ours in it;
//! - `GAIN` = 2 is what lets a depth that limits the rate grow (as BBR's
//!   window gain does): a depth of `d` blocks allows at most
//!   `d x BLOCK_SIZE / rtt`, which gives back `2 d`, until the link and not
//!   the depth is the limit; then the depth stays at twice what the link
//!   holds, room for the peer's reaction to vary.
//!
//! Why the floor is as deep as 64 blocks (1 MiB), even for a slow link:
//! our requests leave behind the blocks we upload on the same connection,
//! so a peer that uploads a lot waits longer for its requests to arrive
//! than any round trip says. Simulated with a floor of 16 and 200 ms added
//! to the round trip, peers that upload lost their lead over free riders
//! (free riders' median finish 1.00-1.01 x the honest peers', against
//! 1.07-1.27 with 64), and a seed leaving after 1.0 x F stranded leechers.
//! With the floor of 64 and 500 ms added, that seed stranded them in 2 of
//! 8 seeds instead of 1. So only a link whose round trip holds more than
//! 512 KiB gets more than 64.

use super::time::Time;
use crate::limits::BLOCK_SIZE;
use crate::wire::peer::Block;
use std::time::Duration;

/// The depth of a link whose rate is not known yet.
pub const START_DEPTH: usize = 64;
/// Never fewer (see above: requests wait behind our own uploads).
pub const MIN_DEPTH: usize = 64;
/// The depth over the bandwidth-delay product (see above).
pub const GAIN: f64 = 2.0;
/// Never more, whatever the link: 4 MiB in flight from one peer.
pub const MAX_DEPTH: usize = 256;
/// What a peer's queue is taken to hold when its handshake states no
/// `reqq` (BEP 10: libtorrent's old default).
pub const DEFAULT_REQQ: usize = 250;
/// How long the rate is measured over before it counts.
pub const RATE_WINDOW: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Pipeline {
    /// The smoothed round trip, once a probe came back.
    rtt: Option<Duration>,
    /// The first block asked of the link while it was idle, and when.
    probe: Option<(Block, Time)>,
    /// Bytes per second, smoothed over windows.
    rate: Option<f64>,
    /// The window being measured: since when, and the bytes in it.
    window: Option<(Time, u64)>,
    /// The peer's `reqq`: how many requests it queues.
    reqq: Option<usize>,
}

impl Pipeline {
    /// How many blocks to keep requested from this peer.
    pub fn depth(&self) -> usize {
        let cap = self.reqq.unwrap_or(DEFAULT_REQQ).clamp(1, MAX_DEPTH);
        let Some(rate) = self.rate else {
            return START_DEPTH.min(cap);
        };
        let rtt = self.rtt.unwrap_or_default().as_secs_f64();
        let blocks = (GAIN * rate * rtt / f64::from(BLOCK_SIZE)).ceil() as usize;
        blocks.clamp(MIN_DEPTH.min(cap), cap)
    }

    /// Top up once this many requests are free: a quarter of the depth,
    /// so requests go out in batches rather than one per block.
    pub fn batch(&self) -> usize {
        batch_of(self.depth())
    }

    /// The peer's handshake stated how many requests it queues.
    pub fn set_reqq(&mut self, reqq: usize) {
        self.reqq = Some(reqq);
    }

    /// Requests went to a link that had none of ours: `first` times the
    /// round trip, and the rate's window starts afresh (the idle time
    /// before says nothing of the link).
    pub fn sent_to_idle(&mut self, now: Time, first: Block) {
        self.probe = Some((first, now));
        self.window = Some((now, 0));
    }

    /// A block of `length` bytes arrived at `now`.
    pub fn received(&mut self, now: Time, block: Block) {
        if let Some((probe, sent)) = self.probe
            && probe == block
        {
            self.probe = None;
            let sample = now.since(sent);
            self.rtt = Some(match self.rtt {
                None => sample,
                Some(rtt) => (rtt * 3 + sample) / 4,
            });
        }
        let (start, bytes) = self.window.get_or_insert((now, 0));
        *bytes += u64::from(block.length);
        let took = now.since(*start);
        if took >= RATE_WINDOW {
            let sample = *bytes as f64 / took.as_secs_f64();
            self.rate = Some(self.rate.map_or(sample, |r| (r + sample) / 2.0));
            self.window = Some((now, 0));
        }
    }

    /// A request will not be answered (rejected, or dropped by a choke):
    /// a probe on it times nothing.
    pub fn dropped(&mut self, block: Option<Block>) {
        if block.is_none() || self.probe.map(|(b, _)| b) == block {
            self.probe = None;
        }
    }
}

/// The batch of a depth (see [`Pipeline::batch`]), for a caller that
/// already holds the depth.
pub fn batch_of(depth: usize) -> usize {
    depth.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn block(i: u32) -> Block {
        Block {
            index: i / 16,
            begin: (i % 16) * BLOCK_SIZE,
            length: BLOCK_SIZE,
        }
    }

    /// Feeds a link that delivers `rate` bytes per second for `secs`,
    /// after one probe that took `rtt`.
    fn link(rate: u64, rtt: Duration, secs: u64) -> Pipeline {
        let mut p = Pipeline::default();
        let t0 = Time::from_micros(1_000_000);
        p.sent_to_idle(t0, block(0));
        let gap = Duration::from_secs_f64(f64::from(BLOCK_SIZE) / rate as f64);
        let mut now = t0 + rtt;
        for i in 0..(rate * secs / u64::from(BLOCK_SIZE)) as u32 {
            p.received(now, block(i));
            now += gap;
        }
        p
    }

    #[test]
    fn an_unmeasured_link_starts_at_the_old_depth() {
        let p = Pipeline::default();
        assert_eq!((p.depth(), p.batch()), (START_DEPTH, 16));
    }

    #[test]
    fn the_depth_is_twice_the_bandwidth_delay_product() {
        // 100 Mbit/s over 100 ms: 2 x 12.5 MB/s x 0.1 s / 16 KiB = 153.
        let p = link(12_500_000, 100 * MS, 3);
        assert!((150..=156).contains(&p.depth()), "{}", p.depth());
        // A short or slow path keeps the floor.
        assert_eq!(link(6_250_000, 20 * MS, 3).depth(), MIN_DEPTH);
        assert_eq!(link(1_000_000, 200 * MS, 3).depth(), MIN_DEPTH);
        // And loopback's rate is capped, by what a peer that states no
        // `reqq` is taken to queue, or by ours.
        let mut fast = link(1_000_000_000, 10 * MS, 1);
        assert_eq!(fast.depth(), DEFAULT_REQQ);
        fast.set_reqq(2000);
        assert_eq!(fast.depth(), MAX_DEPTH);
    }

    #[test]
    fn the_peers_reqq_bounds_the_depth() {
        let mut p = link(1_000_000_000, 10 * MS, 1);
        p.set_reqq(100);
        assert_eq!(p.depth(), 100);
        // A peer that queues fewer than the floor still gets no more.
        p.set_reqq(4);
        assert_eq!((p.depth(), p.batch()), (4, 1));
        let mut fresh = Pipeline::default();
        fresh.set_reqq(10);
        assert_eq!(fresh.depth(), 10);
    }

    #[test]
    fn only_a_probe_times_the_round_trip() {
        let mut p = Pipeline::default();
        let t0 = Time::from_micros(0);
        p.sent_to_idle(t0, block(0));
        // Another block arriving first times nothing.
        p.received(t0 + 500 * MS, block(1));
        assert_eq!(p.rtt, None);
        p.received(t0 + 40 * MS, block(0));
        assert_eq!(p.rtt, Some(40 * MS));
        // A rejected probe is forgotten.
        p.sent_to_idle(t0 + MS * 1000, block(5));
        p.dropped(Some(block(5)));
        p.received(t0 + MS * 1100, block(5));
        assert_eq!(p.rtt, Some(40 * MS));
    }

    #[test]
    fn idle_time_before_a_burst_is_not_counted_in_the_rate() {
        let mut p = link(3_125_000, 300 * MS, 2);
        let busy = p.depth();
        assert!(busy > MIN_DEPTH, "{busy}");
        // Ten idle seconds, then the link is asked again and runs as fast.
        let t = Time::from_micros(13_000_000);
        p.sent_to_idle(t, block(0));
        let gap = Duration::from_secs_f64(f64::from(BLOCK_SIZE) / 3_125_000.0);
        for i in 0..400 {
            p.received(t + 300 * MS + gap * i, block(i));
        }
        assert!(
            p.depth().abs_diff(busy) <= busy / 20,
            "{} vs {busy}",
            p.depth()
        );
    }
}
