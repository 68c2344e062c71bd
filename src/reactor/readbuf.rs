//! Input buffers. Every connection of a loop reads into one shared
//! [`Scratch`] buffer and is handled from there; a connection keeps only
//! what the handler did not consume (at most a partial frame, or more
//! while backpressure pauses it) in its own [`Leftover`], moved to the
//! front of the scratch buffer before its next read.
//!
//! Why one buffer: with a buffer per connection, a peer with dozens of
//! busy connections (fifty daemons on one machine, each trading with the
//! others) spreads its reads over megabytes that no cache holds, and
//! every `recv` copies into cold memory. One buffer per loop stays in the
//! CPU's cache, and a quiet connection holds no large buffer at all. The
//! price is copying each read's partial frame out and back (a small,
//! cache-hot part of a large read).

/// The loop's read buffer, zero-filled once.
pub struct Scratch {
    buf: Vec<u8>,
}

impl Scratch {
    /// A buffer able to hold `max` bytes: the longest unprocessed input a
    /// connection may have plus one read.
    pub fn new(max: usize) -> Scratch {
        Scratch { buf: vec![0; max] }
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// Input a connection has not consumed yet, kept between reads.
#[derive(Default)]
pub struct Leftover {
    bytes: Vec<u8>,
}

/// Capacity a connection may keep between reads; more (after a long
/// backpressure pause, say) is given back once the input is consumed.
const KEEP: usize = 64 * 1024;

impl Leftover {
    /// Moves the kept bytes to the front of `to`; returns how many. `None`
    /// if `to` is too short (cannot happen when `to` is the scratch buffer
    /// and [`Leftover::keep`] was given slices of it).
    pub fn take_into(&mut self, to: &mut [u8]) -> Option<usize> {
        let n = self.bytes.len();
        to.get_mut(..n)?.copy_from_slice(&self.bytes);
        self.bytes.clear();
        Some(n)
    }

    /// Keeps `rest` (the unconsumed end of the input) for the next read.
    pub fn keep(&mut self, rest: &[u8]) {
        self.bytes.clear();
        if rest.is_empty() && self.bytes.capacity() > KEEP {
            self.bytes = Vec::new();
        }
        self.bytes.extend_from_slice(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_goes_to_the_front_of_the_next_read() {
        let mut scratch = Scratch::new(16);
        let mut left = Leftover::default();
        left.keep(b"abc");
        let buf = scratch.bytes();
        buf[..3].copy_from_slice(b"xyz");
        assert_eq!(left.take_into(buf), Some(3));
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(left.take_into(buf), Some(0));
    }

    #[test]
    fn a_large_leftover_gives_its_memory_back_once_consumed() {
        let mut left = Leftover::default();
        left.keep(&vec![1; 4 * KEEP]);
        left.keep(&[]);
        assert!(left.bytes.capacity() <= KEEP);
        let mut short = [0u8; 2];
        left.keep(b"abc");
        assert_eq!(left.take_into(&mut short), None, "does not fit");
    }
}
