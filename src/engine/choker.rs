//! Who we upload to, per file: at most `slots` interested peers are
//! unchoked at once (a seed: one more, see [`SEED_EXTRA`]). A free slot
//! goes to the next peer that asks; every choke round the slots are dealt
//! again:
//!
//! - while downloading, by tit-for-tat: the peers that sent us the most
//!   over the last round keep or get a slot, but one slot is optimistic,
//!   given to a choked peer at random and kept for three rounds, so new
//!   peers get a chance to show what they send; peers that withhold
//!   (the caller's word: known for a round, they never sent us a byte)
//!   get only that, neither free nor regular slots; and while our upload
//!   idles with every slot dealt, up to [`SPARE`] more are lent between
//!   rounds;
//! - while seeding, nobody sends us anything: the peers that got the
//!   least from us get the slots, so every peer gets its turn.
//!
//! The choker is the only owner of "do we choke this peer"; the scores
//! come from the caller.

use super::action::LinkId;
use super::time::Time;
use crate::rng::Rng;
use std::collections::BTreeMap;

/// Slots a seed deals beyond `slots` while more peers than that want
/// them. It has no tit-for-tat to keep, and a first copy going to one
/// more leecher at a time gives one more of them something to pass on.
/// Simulated, 7 leechers at 50 Mbit/s (scenario (a)), seeds 1-9: last
/// finish 1.126-1.151 x F/u with one more, 1.148-1.176 without. Not when
/// that would unchoke everyone: a seed then cannot favour the peers that
/// pass its pieces on (5 leechers, 2 at 100 and 3 at 20 Mbit/s, the seed
/// at 100, seeds 1-6: 1.58-1.80 against 1.18-1.65).
pub const SEED_EXTRA: usize = 1;
/// Slots a downloading peer lends beyond `slots`, one per call of
/// [`Choker::fill`], while its upload idles with every slot dealt: the
/// peers it unchokes cannot take what it could send (slow links, or
/// little of ours they lack), and an idle upload helps nobody. The next
/// round deals only `slots` again. Simulated, 1,000 leechers on 10, 50 and
/// 100 Mbit/s links, seeds 1 and 2: last finish 1.241 and 1.251 x bound
/// with spare slots, 1.294 and 1.320 without; 100 leechers of 16 MiB,
/// seeds 1-6: 1.34-1.43 against 1.42-1.66.
pub const SPARE: usize = 4;
/// Rounds an optimistic unchoke lasts (at 10 s a round: 30 s).
pub const OPTIMISTIC_ROUNDS: u32 = 3;
/// A slot given between rounds is held this long at least, time for the
/// peer to show what it sends.
pub const MIN_HOLD: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
pub struct Choker {
    slots: usize,
    /// Unchoked peers, with when each was unchoked.
    unchoked: BTreeMap<LinkId, Time>,
    /// The optimistic unchoke, and the rounds it has left.
    optimistic: Option<(LinkId, u32)>,
    /// Peers that had a whole optimistic turn and still withhold: not
    /// drawn again while others wait.
    spurned: std::collections::BTreeSet<LinkId>,
}

/// An interested peer and what it is worth to us this round: bytes it
/// sent us (downloading) or, negated, bytes we sent it (seeding). Higher
/// is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub link: LinkId,
    pub score: i64,
    /// Known for a round, it never sent us a byte, and we want pieces
    /// from some peer: under tit-for-tat it gets only optimistic turns.
    pub withholds: bool,
    /// It sent us a byte, or is known for less than a round: under
    /// tit-for-tat it may get a spare slot (see [`SPARE`]).
    pub earns_spare: bool,
}

/// How the slots are dealt this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Downloading: best senders, plus one optimistic slot.
    TitForTat,
    /// Seeding: best scores only (the least served), no optimistic slot.
    Seeding,
}

/// What a round changed: peers to choke and to unchoke.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub choke: Vec<LinkId>,
    pub unchoke: Vec<LinkId>,
}

impl Choker {
    pub fn new(slots: usize) -> Choker {
        Choker {
            slots,
            unchoked: BTreeMap::new(),
            optimistic: None,
            spurned: Default::default(),
        }
    }

    /// A new number of slots (a reloaded config): fewer slots take
    /// effect at the next round, which chokes the peers beyond them.
    pub fn set_slots(&mut self, slots: usize) {
        self.slots = slots;
    }

    pub fn is_unchoked(&self, link: LinkId) -> bool {
        self.unchoked.contains_key(&link)
    }

    pub fn unchoked(&self) -> usize {
        self.unchoked.len()
    }

    /// The slots dealt under `rule` among `interested` peers.
    fn cap(&self, rule: Rule, interested: usize) -> usize {
        match rule {
            Rule::Seeding if self.slots > 0 && interested > self.slots + SEED_EXTRA => {
                self.slots + SEED_EXTRA
            }
            _ => self.slots,
        }
    }

    /// An interested peer asks for a slot (one of `interested` peers):
    /// true when it gets one now.
    pub fn offer(&mut self, link: LinkId, rule: Rule, interested: usize, now: Time) -> bool {
        if self.unchoked.contains_key(&link) || self.unchoked.len() >= self.cap(rule, interested) {
            return false;
        }
        self.unchoked.insert(link, now);
        true
    }

    /// Between rounds: gives free slots to the best waiting peers of
    /// `candidates` (every interested peer, with its score). Under
    /// tit-for-tat, a peer that sent us nothing at all gives up a slot it
    /// has held for [`MIN_HOLD`] to a waiting peer that sends (the
    /// optimistic slot excepted), so a free rider that took a free slot
    /// keeps it only while nobody better wants it. With every slot dealt
    /// and our upload `idle`, one waiting peer gets a spare slot.
    pub fn fill(
        &mut self,
        candidates: &[Candidate],
        rule: Rule,
        mut idle: bool,
        now: Time,
        rng: &mut Rng,
    ) -> Changes {
        let mut waiting: Vec<Candidate> = candidates
            .iter()
            .filter(|c| !self.is_unchoked(c.link))
            .copied()
            .collect();
        rank(&mut waiting, rng);
        let mut changes = Changes::default();
        for c in waiting {
            if rule == Rule::TitForTat && c.withholds {
                continue;
            }
            if self.offer(c.link, rule, candidates.len(), now) {
                changes.unchoke.push(c.link);
                continue;
            }
            if idle && self.lend(&c, rule, now) {
                idle = false;
                changes.unchoke.push(c.link);
                continue;
            }
            if rule != Rule::TitForTat || c.score <= 0 {
                break;
            }
            let optimistic = self.optimistic.map(|(o, _)| o);
            let idle = candidates.iter().find(|u| {
                u.score <= 0
                    && Some(u.link) != optimistic
                    && self
                        .unchoked
                        .get(&u.link)
                        .is_some_and(|&t| now.since(t) >= MIN_HOLD)
            });
            let Some(idle) = idle.map(|u| u.link) else {
                break;
            };
            self.unchoked.remove(&idle);
            self.unchoked.insert(c.link, now);
            changes.choke.push(idle);
            changes.unchoke.push(c.link);
        }
        changes
    }

    /// A spare slot for `c` (see [`SPARE`]): only while downloading, to a
    /// peer that earns one, and never with no slots at all (a peer told
    /// to upload nothing uploads nothing).
    fn lend(&mut self, c: &Candidate, rule: Rule, now: Time) -> bool {
        let lends = rule == Rule::TitForTat
            && c.earns_spare
            && self.slots > 0
            && self.unchoked.len() < self.slots + SPARE;
        if lends {
            self.unchoked.insert(c.link, now);
        }
        lends
    }

    /// The peer lost interest or left: true when it held a slot (so a
    /// choke is due, if it is still connected).
    pub fn release(&mut self, link: LinkId) -> bool {
        if self.optimistic.is_some_and(|(o, _)| o == link) {
            self.optimistic = None;
        }
        self.spurned.remove(&link);
        self.unchoked.remove(&link).is_some()
    }

    /// A choke round over the interested peers `candidates`: deals the
    /// slots again by `rule` and returns what changed.
    pub fn round(
        &mut self,
        candidates: &[Candidate],
        rule: Rule,
        now: Time,
        rng: &mut Rng,
    ) -> Changes {
        let mut ranked = candidates.to_vec();
        rank(&mut ranked, rng);
        self.spurn(&ranked);
        let optimistic = match rule {
            Rule::TitForTat if self.slots > 1 => self.keep_or_pick_optimistic(&ranked, rng),
            _ => None,
        };
        self.optimistic = optimistic.map(|o| (o, self.rounds_left(o)));
        let regular = self.cap(rule, candidates.len()) - usize::from(optimistic.is_some());
        let mut chosen: Vec<LinkId> = ranked
            .iter()
            .filter(|c| rule != Rule::TitForTat || !c.withholds)
            .map(|c| c.link)
            .filter(|&l| Some(l) != optimistic)
            .take(regular)
            .collect();
        chosen.extend(optimistic);
        let mut changes = Changes::default();
        for (&link, _) in self.unchoked.iter() {
            if !chosen.contains(&link) {
                changes.choke.push(link);
            }
        }
        for &link in &changes.choke {
            self.unchoked.remove(&link);
        }
        for link in chosen {
            if let std::collections::btree_map::Entry::Vacant(e) = self.unchoked.entry(link) {
                e.insert(now);
                changes.unchoke.push(link);
            }
        }
        changes
    }

    /// The optimistic unchoke for this round: the current one while it
    /// has rounds left and is still interested, else a choked candidate
    /// at random (none if every candidate fits in the regular slots).
    fn keep_or_pick_optimistic(&self, ranked: &[Candidate], rng: &mut Rng) -> Option<LinkId> {
        if let Some((o, left)) = self.optimistic
            && left > 0
            && ranked.iter().any(|c| c.link == o)
        {
            return Some(o);
        }
        // Peers the regular slots would not take: every one that
        // withholds, and those beyond the best others.
        let mut regulars = 0;
        let rest: Vec<LinkId> = ranked
            .iter()
            .filter(|c| {
                regulars += usize::from(!c.withholds);
                c.withholds || regulars >= self.slots
            })
            .map(|c| c.link)
            .collect();
        let pool: Vec<LinkId> = rest
            .iter()
            .copied()
            .filter(|l| !self.unchoked.contains_key(l) && !self.spurned.contains(l))
            .collect();
        let pool = match pool.is_empty() {
            true => rest,
            false => pool,
        };
        match pool.len() {
            0 => None,
            n => Some(pool[rng.below(n)]),
        }
    }

    /// A peer whose whole optimistic turn ends while it still withholds
    /// is not drawn again while others wait; one that sends us something,
    /// or stops wanting our pieces, is forgiven.
    fn spurn(&mut self, ranked: &[Candidate]) {
        let withholds = |l: LinkId| ranked.iter().any(|c| c.link == l && c.withholds);
        self.spurned.retain(|&l| withholds(l));
        if let Some((o, 0)) = self.optimistic
            && withholds(o)
        {
            self.spurned.insert(o);
        }
    }

    /// Rounds left to `link` as the optimistic unchoke after this one.
    fn rounds_left(&self, link: LinkId) -> u32 {
        match self.optimistic {
            Some((o, left)) if o == link && left > 0 => left - 1,
            _ => OPTIMISTIC_ROUNDS - 1,
        }
    }
}

/// Best score first; equal scores in random order, so that none is
/// served first for being first to connect.
fn rank(candidates: &mut [Candidate], rng: &mut Rng) {
    for i in (1..candidates.len()).rev() {
        candidates.swap(i, rng.below(i + 1));
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.score));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Time {
        Time::from_micros(s * 1_000_000)
    }

    fn c(link: LinkId, score: i64) -> Candidate {
        Candidate {
            link,
            score,
            withholds: false,
            earns_spare: true,
        }
    }

    #[test]
    fn slots_are_limited_and_freed() {
        let mut ch = Choker::new(2);
        assert!(ch.offer(1, Rule::TitForTat, 9, at(0)));
        assert!(ch.offer(2, Rule::TitForTat, 9, at(0)));
        assert!(!ch.offer(3, Rule::TitForTat, 9, at(0)), "no third slot");
        assert!(ch.release(1));
        assert!(!ch.release(1), "released once");
        assert!(ch.offer(3, Rule::TitForTat, 9, at(1)));
        assert_eq!(ch.unchoked(), 2);
    }

    #[test]
    fn tit_for_tat_keeps_the_best_senders_and_one_optimistic_slot() {
        let mut ch = Choker::new(3);
        let mut rng = Rng::new(4);
        for l in 1..=3 {
            ch.offer(l, Rule::TitForTat, 9, at(0));
        }
        // 4 and 5 sent the most; 1..3 little; 6 nothing.
        let peers = [c(1, 10), c(2, 5), c(3, 1), c(4, 900), c(5, 800), c(6, 0)];
        let changes = ch.round(&peers, Rule::TitForTat, at(10), &mut rng);
        assert!(ch.is_unchoked(4) && ch.is_unchoked(5));
        assert_eq!(ch.unchoked(), 3);
        let (opt, _) = ch.optimistic.unwrap();
        assert!(
            ![4, 5].contains(&opt),
            "optimistic slot beyond the best two"
        );
        assert_eq!(changes.unchoke.len() + 3 - changes.choke.len(), 3);
        // The optimistic peer keeps its slot for three rounds, whatever it sends.
        for round in 2..=OPTIMISTIC_ROUNDS {
            ch.round(&peers, Rule::TitForTat, at(10 * u64::from(round)), &mut rng);
            assert!(ch.is_unchoked(opt), "round {round}");
        }
    }

    #[test]
    fn a_peer_that_never_sends_gets_only_optimistic_turns() {
        let mut ch = Choker::new(2);
        let mut rng = Rng::new(11);
        // 1..=4 send; 9 never does.
        let peers = [c(1, 50), c(2, 40), c(3, 30), c(4, 20), c(9, 0)];
        let mut rounds_unchoked = 0;
        for r in 0..30 {
            ch.round(&peers, Rule::TitForTat, at(10 * r), &mut rng);
            assert!(ch.is_unchoked(1), "the best sender always keeps its slot");
            rounds_unchoked += u32::from(ch.is_unchoked(9));
        }
        assert!(
            rounds_unchoked < 20,
            "unchoked {rounds_unchoked} of 30 rounds"
        );
    }

    #[test]
    fn a_seed_serves_the_least_served_first_and_every_peer_gets_a_turn() {
        let mut ch = Choker::new(2);
        let mut rng = Rng::new(2);
        let mut got = [0i64; 5];
        let mut turns = [0u32; 5];
        for r in 0..10 {
            let peers: Vec<Candidate> = (0..5).map(|l| c(l as LinkId, -got[l])).collect();
            ch.round(&peers, Rule::Seeding, at(10 * r), &mut rng);
            assert_eq!(ch.optimistic, None);
            for l in 0..5 {
                if ch.is_unchoked(l as LinkId) {
                    got[l] += 100;
                    turns[l] += 1;
                }
            }
        }
        // 2 slots and the seed's extra one, over 10 rounds: 30 turns.
        assert_eq!(turns, [6; 5], "served in turn: {turns:?}");
    }

    fn withholding(link: LinkId) -> Candidate {
        Candidate {
            withholds: true,
            earns_spare: false,
            ..c(link, 0)
        }
    }

    #[test]
    fn a_seed_deals_one_slot_more_than_a_leecher() {
        let mut ch = Choker::new(2);
        assert!(ch.offer(1, Rule::TitForTat, 9, at(0)));
        assert!(ch.offer(2, Rule::TitForTat, 9, at(0)));
        assert!(!ch.offer(3, Rule::TitForTat, 9, at(0)));
        assert!(
            ch.offer(3, Rule::Seeding, 9, at(0)),
            "the seed's extra slot"
        );
        assert!(!ch.offer(4, Rule::Seeding, 9, at(0)));
        let mut rng = Rng::new(3);
        let peers = [c(1, -3), c(2, -2), c(3, -1), c(4, 0)];
        ch.round(&peers, Rule::Seeding, at(10), &mut rng);
        assert_eq!(ch.unchoked(), 3);
        assert!(!ch.is_unchoked(1), "the most served waits");
        ch.round(&peers, Rule::TitForTat, at(20), &mut rng);
        assert_eq!(ch.unchoked(), 2);
        // Not when the extra slot would unchoke every interested peer.
        let mut few = Choker::new(2);
        assert!(few.offer(1, Rule::Seeding, 3, at(0)));
        assert!(few.offer(2, Rule::Seeding, 3, at(0)));
        assert!(!few.offer(3, Rule::Seeding, 3, at(0)));
        few.round(&peers[..3], Rule::Seeding, at(10), &mut rng);
        assert_eq!(few.unchoked(), 2);
    }

    #[test]
    fn a_peer_that_withholds_gets_no_free_slot_but_optimistic_turns() {
        let mut ch = Choker::new(3);
        let mut rng = Rng::new(5);
        let changes = ch.fill(
            &[withholding(9), c(2, 0)],
            Rule::TitForTat,
            false,
            at(0),
            &mut rng,
        );
        assert_eq!(changes.unchoke, [2], "a free slot, but not to 9");
        // A seed serves it like any other.
        let mut seed = Choker::new(3);
        let changes = seed.fill(&[withholding(9)], Rule::Seeding, false, at(0), &mut rng);
        assert_eq!(changes.unchoke, [9]);
        // With room for all, it still gets its optimistic turn: two
        // leechers that each wait for the other never deadlock.
        let mut ch = Choker::new(3);
        ch.round(
            &[withholding(9), c(2, 5)],
            Rule::TitForTat,
            at(10),
            &mut rng,
        );
        assert!(ch.is_unchoked(9) && ch.is_unchoked(2));
        assert_eq!(ch.optimistic.map(|(o, _)| o), Some(9));
    }

    #[test]
    fn an_idle_upload_lends_spare_slots_one_at_a_time_until_the_round() {
        let mut ch = Choker::new(2);
        let mut rng = Rng::new(7);
        let new_peer = |link| Candidate {
            earns_spare: true,
            ..c(link, 0)
        };
        let mut peers: Vec<Candidate> = (1..=8).map(new_peer).collect();
        peers.push(withholding(9));
        peers.push(Candidate {
            earns_spare: false,
            ..c(10, 0)
        });
        let changes = ch.fill(&peers, Rule::TitForTat, false, at(0), &mut rng);
        assert_eq!(changes.unchoke.len(), 2, "the free slots only");
        for i in 1..=SPARE {
            let changes = ch.fill(&peers, Rule::TitForTat, true, at(i as u64), &mut rng);
            assert_eq!(changes.unchoke.len(), 1, "one spare slot per call");
            assert!(!changes.unchoke.contains(&9) && !changes.unchoke.contains(&10));
        }
        assert_eq!(ch.unchoked(), 2 + SPARE);
        let changes = ch.fill(&peers, Rule::TitForTat, true, at(9), &mut rng);
        assert!(changes.unchoke.is_empty(), "at most SPARE");
        ch.round(&peers, Rule::TitForTat, at(10), &mut rng);
        assert_eq!(ch.unchoked(), 2, "the round deals the slots alone");
        // Seeding has its own rule, and no slots means no upload at all.
        let mut seed = Choker::new(2);
        seed.fill(&peers[..3], Rule::Seeding, true, at(0), &mut rng);
        assert_eq!(seed.unchoked(), 2);
        let mut none = Choker::new(0);
        let changes = none.fill(&peers, Rule::TitForTat, true, at(0), &mut rng);
        assert!(changes.unchoke.is_empty(), "{changes:?}");
    }

    #[test]
    fn a_peer_that_withholds_through_its_optimistic_turn_is_not_drawn_again() {
        let mut ch = Choker::new(2);
        let mut rng = Rng::new(8);
        // 1 sends; 8 and 9 withhold; 8 first gets the optimistic slot.
        let peers = [c(1, 50), withholding(8)];
        for r in 0..OPTIMISTIC_ROUNDS {
            ch.round(&peers, Rule::TitForTat, at(10 * u64::from(r)), &mut rng);
            assert!(ch.is_unchoked(8), "round {r}");
        }
        let peers = [c(1, 50), withholding(8), withholding(9)];
        for r in OPTIMISTIC_ROUNDS..2 * OPTIMISTIC_ROUNDS {
            ch.round(&peers, Rule::TitForTat, at(10 * u64::from(r)), &mut rng);
            assert!(ch.is_unchoked(9), "round {r}: 9's turn");
            assert!(!ch.is_unchoked(8), "round {r}: 8 had its turn");
        }
        // Once 8 sends something it is forgiven, and ranks as a sender.
        let peers = [c(1, 50), c(8, 70), withholding(9)];
        ch.round(&peers, Rule::TitForTat, at(100), &mut rng);
        assert!(ch.is_unchoked(8));
        assert!(!ch.spurned.contains(&8), "forgiven");
    }

    #[test]
    fn a_round_chokes_peers_no_longer_candidates() {
        let mut ch = Choker::new(4);
        let mut rng = Rng::new(1);
        ch.offer(7, Rule::TitForTat, 9, at(0));
        let changes = ch.round(&[c(1, 3)], Rule::TitForTat, at(10), &mut rng);
        assert_eq!(changes.choke, [7]);
        assert_eq!(changes.unchoke, [1]);
    }
}
