//! Who we upload to, per file: at most `slots` interested peers are
//! unchoked at once; a free slot goes to the next peer that asks, and
//! every choke round the peer unchoked longest yields its slot to one that
//! waits, so every peer gets a turn. The choker is the only owner of
//! "do we choke this peer".

use super::action::LinkId;
use super::time::Time;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Choker {
    slots: usize,
    /// Unchoked peers, with when each was unchoked.
    unchoked: BTreeMap<LinkId, Time>,
}

impl Choker {
    pub fn new(slots: usize) -> Choker {
        Choker {
            slots,
            unchoked: BTreeMap::new(),
        }
    }

    pub fn is_unchoked(&self, link: LinkId) -> bool {
        self.unchoked.contains_key(&link)
    }

    pub fn unchoked(&self) -> usize {
        self.unchoked.len()
    }

    /// An interested peer asks for a slot: true when it gets one now.
    pub fn offer(&mut self, link: LinkId, now: Time) -> bool {
        if self.unchoked.contains_key(&link) || self.unchoked.len() >= self.slots {
            return false;
        }
        self.unchoked.insert(link, now);
        true
    }

    /// The peer lost interest or left: true when it held a slot (so a
    /// choke is due, if it is still connected).
    pub fn release(&mut self, link: LinkId) -> bool {
        self.unchoked.remove(&link).is_some()
    }

    /// A choke round: when `waiting` (interested and choked, in order)
    /// is not empty and every slot is taken, the peer unchoked longest
    /// gives its slot to the first waiting one. Returns (choked, unchoked).
    pub fn rotate(&mut self, waiting: &[LinkId], now: Time) -> Option<(LinkId, LinkId)> {
        let next = *waiting.first()?;
        let (&longest, _) = self.unchoked.iter().min_by_key(|(_, t)| **t)?;
        self.unchoked.remove(&longest);
        self.unchoked.insert(next, now);
        Some((longest, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Time {
        Time::from_micros(s * 1_000_000)
    }

    #[test]
    fn slots_are_limited_and_freed() {
        let mut c = Choker::new(2);
        assert!(c.offer(1, at(0)));
        assert!(c.offer(2, at(0)));
        assert!(!c.offer(3, at(0)), "no third slot");
        assert!(c.release(1));
        assert!(!c.release(1), "released once");
        assert!(c.offer(3, at(1)));
        assert_eq!(c.unchoked(), 2);
    }

    #[test]
    fn rotation_replaces_the_longest_unchoked() {
        let mut c = Choker::new(2);
        c.offer(1, at(5));
        c.offer(2, at(3));
        assert_eq!(c.rotate(&[], at(10)), None);
        assert_eq!(c.rotate(&[7, 8], at(10)), Some((2, 7)));
        assert!(c.is_unchoked(7) && !c.is_unchoked(2));
        assert_eq!(c.rotate(&[8], at(20)), Some((1, 8)));
    }
}
