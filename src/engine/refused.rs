//! Pieces a peer rejected our requests for lately (BEP 6 `reject`).
//!
//! A reject says the peer will not serve that block now: a seed holding a
//! piece's second copies back while another piece was never fetched from
//! it, a full request queue, a piece it no longer offers. Asked again at
//! once (the picker finishes started pieces first, so it would ask for the
//! very same blocks), the peer rejects again, and the requests we keep with
//! it never make room for what it does want to send us. So for a while we
//! ask that peer for other pieces, and others for that one. (Asking it again
//! when it has nothing else for us made things worse, simulated: the seed
//! that turns second copies away got them asked again every round trip.)
//!
//! Pure bookkeeping: no sockets, no clock of its own.

use super::time::Time;
use crate::bitfield::Bitfield;
use std::time::Duration;

/// How long a piece is not asked again of the peer that rejected it:
/// many round trips, short beside a piece's download.
pub const BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Refused {
    /// Pieces rejected, each with when it last was.
    pieces: Vec<(u32, Time)>,
}

impl Refused {
    /// The peer rejected a block of `piece`.
    pub fn rejected(&mut self, piece: u32, now: Time) {
        match self.pieces.iter_mut().find(|(p, _)| *p == piece) {
            Some(entry) => entry.1 = now,
            None => self.pieces.push((piece, now)),
        }
    }

    /// How many pieces are held back (their backoff may be over).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The pieces we may ask of the peer: `theirs`, less those it rejected
    /// within [`BACKOFF`]. Borrowed as it is when none were (the usual case:
    /// this runs on every top-up of a link's requests).
    pub fn askable<'a>(
        &mut self,
        theirs: &'a Bitfield,
        now: Time,
    ) -> std::borrow::Cow<'a, Bitfield> {
        self.pieces.retain(|&(_, at)| now.since(at) < BACKOFF);
        if self.pieces.is_empty() {
            return std::borrow::Cow::Borrowed(theirs);
        }
        let mut left = theirs.clone();
        for &(p, _) in &self.pieces {
            left.clear(p);
        }
        std::borrow::Cow::Owned(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_piece_is_not_asked_of_that_peer_for_a_while() {
        let theirs = Bitfield::full(4);
        let mut r = Refused::default();
        let t0 = Time::ZERO + Duration::from_secs(5);
        assert!(matches!(
            r.askable(&theirs, t0),
            std::borrow::Cow::Borrowed(_)
        ));
        r.rejected(2, t0);
        r.rejected(2, t0);
        let left = r.askable(&theirs, t0 + Duration::from_millis(10));
        assert_eq!(left.ones().collect::<Vec<_>>(), [0, 1, 3]);
        // Rejected again later: the wait starts again from then.
        r.rejected(2, t0 + Duration::from_millis(600));
        let left = r.askable(&theirs, t0 + BACKOFF);
        assert!(!left.get(2), "rejected 400 ms ago");
        let left = r.askable(&theirs, t0 + Duration::from_millis(600) + BACKOFF);
        assert_eq!(left.count(), 4, "asked again once the backoff is over");
        assert!(r.pieces.is_empty());
    }
}
