//! How much of their download links the leechers of each link class use
//! over a run, interval by interval (`sta-sim --usage SECS`): where a
//! swarm loses time against its lower bound shows as a class below 100 %.

use super::net::HostId;
use super::scenario::rate_text;
use crate::engine::Time;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// One leecher as a sample sees it.
pub struct Leecher {
    pub host: HostId,
    /// Its download link, bytes per second (0: unlimited, not counted).
    pub down: u64,
    /// Block bytes received so far.
    pub received: u64,
    /// It holds every piece.
    pub done: bool,
}

/// One interval of one class.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Leechers of the class still downloading at the interval's start.
    pub active: usize,
    /// Their block bytes received over the interval, over what their
    /// links could carry in it.
    pub used: f64,
}

#[derive(Debug, Clone)]
pub struct Usage {
    every: Duration,
    next: Time,
    start: Time,
    /// Bytes received and done at the last sample, per host.
    last: BTreeMap<HostId, (u64, bool)>,
    /// Per interval (its end, from the start), per class (download rate).
    pub rows: Vec<(Duration, BTreeMap<u64, Cell>)>,
}

impl Usage {
    pub fn new(every: Duration, start: Time) -> Usage {
        Usage {
            every,
            next: start + every,
            start,
            last: BTreeMap::new(),
            rows: Vec::new(),
        }
    }

    /// Called as the run goes: takes a sample when an interval is over.
    pub fn tick(&mut self, now: Time, leechers: impl Iterator<Item = Leecher>) {
        if now < self.next {
            return;
        }
        let mut row: BTreeMap<u64, Cell> = BTreeMap::new();
        let secs = self.every.as_secs_f64();
        for l in leechers {
            let (before, was_done) = self.last.get(&l.host).copied().unwrap_or((0, false));
            self.last.insert(l.host, (l.received, l.done));
            if l.down == 0 || was_done {
                continue;
            }
            let cell = row.entry(l.down).or_insert(Cell {
                active: 0,
                used: 0.0,
            });
            cell.active += 1;
            cell.used += l.received.saturating_sub(before) as f64 / (l.down as f64 * secs);
        }
        for cell in row.values_mut() {
            cell.used /= cell.active as f64;
        }
        let at = now.since(self.start);
        self.rows.push((at, row));
        self.next += self.every;
    }

    /// The table `sta-sim` prints: one line per interval, one column per
    /// class (share of the link used, and leechers still downloading).
    pub fn report(&self) -> String {
        let mut out = String::new();
        let classes: std::collections::BTreeSet<u64> = self
            .rows
            .iter()
            .flat_map(|(_, r)| r.keys().copied())
            .collect();
        let _ = write!(
            out,
            "download used by class, every {:?}:\n   until",
            self.every
        );
        for c in &classes {
            let _ = write!(out, " {:>17}", rate_text(*c));
        }
        out.push('\n');
        for (at, row) in &self.rows {
            let _ = write!(out, "{:>7.1} s", at.as_secs_f64());
            for c in &classes {
                let _ = match row.get(c) {
                    Some(cell) => {
                        write!(out, " {:>6.1} % of {:>4}", cell.used * 100.0, cell.active)
                    }
                    None => write!(out, " {:>17}", "-"),
                };
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn a_sample_is_each_class_share_of_its_links_over_the_interval() {
        let mut u = Usage::new(Duration::from_secs(1), at(0));
        let leecher = |host, down, received, done| Leecher {
            host,
            down,
            received,
            done,
        };
        let cell = |active, used| Cell { active, used };
        u.tick(at(500), std::iter::empty()); // not due yet
        assert!(u.rows.is_empty());
        u.tick(
            at(1000),
            [
                leecher(1, 1000, 1000, false),
                leecher(2, 1000, 0, false),
                leecher(3, 0, 9, false),
            ]
            .into_iter(),
        );
        // Host 1 used its whole link, host 2 none; unlimited links bound nothing.
        assert_eq!(u.rows[0].1.len(), 1);
        assert_eq!(u.rows[0].1[&1000], cell(2, 0.5));
        // Host 1 finished during the second interval: still counted in it,
        // not after.
        u.tick(
            at(2000),
            [leecher(1, 1000, 1500, true), leecher(2, 1000, 1000, false)].into_iter(),
        );
        assert_eq!(u.rows[1].1[&1000], cell(2, 0.75));
        u.tick(
            at(3000),
            [leecher(1, 1000, 1500, true), leecher(2, 1000, 1250, false)].into_iter(),
        );
        assert_eq!(u.rows[2].1[&1000], cell(1, 0.25));
        let text = u.report();
        assert!(text.contains("0.008mbit"), "{text}");
        assert!(text.contains("25.0 % of    1"), "{text}");
    }
}
