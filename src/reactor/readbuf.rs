//! A connection's unprocessed input. The buffer is zero-filled once when it
//! grows, never per read, and consumed frames are dropped by moving two
//! indices; the remainder (at most a partial frame) is moved to the front
//! when less than a quarter of the buffer is left to read into, so that
//! reads stay large.

const INITIAL: usize = 4 * 1024;

#[derive(Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes skipped before the room [`ReadBuf::spare`] last gave, so
    /// that it starts aligned ([`crate::aligned`]): the kernel's copy
    /// there saves more than the move that [`ReadBuf::filled`] closes the
    /// gap with costs (a 1 GiB download: its socket reads 509 perf samples
    /// against 166, and 81 for the moves).
    gap: usize,
}

/// Room below which reads are small and not worth aligning.
const ALIGN_FROM: usize = 16 * 1024;

impl ReadBuf {
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into, making more when less than a quarter of the
    /// buffer is left: by moving the remainder to the front, or by growing
    /// the buffer (doubling, up to `max`). `None` when `max` unprocessed
    /// bytes are already held. With `aligned` (the kernel copies into it),
    /// large room starts aligned.
    pub fn spare(&mut self, max: usize, aligned: bool) -> Option<&mut [u8]> {
        if self.buf.len() - self.end <= self.buf.len() / 4 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < max {
                self.double(max);
            } else if self.end == self.buf.len() {
                return None;
            }
        }
        let gap = crate::aligned::gap(self.buf[self.end..].as_ptr());
        self.gap = match aligned && self.buf.len() - self.end >= ALIGN_FROM + gap {
            true => gap,
            false => 0,
        };
        Some(&mut self.buf[self.end + self.gap..])
    }

    /// A read filled all the room there was, so more is probably waiting:
    /// doubles the buffer, up to `to` bytes, for larger reads. Connections
    /// that carry little keep a small buffer.
    pub fn busy(&mut self, to: usize) {
        if self.buf.len() < to {
            self.double(to);
        }
    }

    fn double(&mut self, max: usize) {
        let grown = (self.buf.len() * 2).clamp(INITIAL.min(max), max);
        self.buf.resize(grown, 0);
    }

    /// Records `n` bytes written into the slice `spare` returned.
    pub fn filled(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.end - self.gap);
        if self.gap > 0 {
            let from = self.end + self.gap;
            self.buf.copy_within(from..from + n, self.end);
            self.gap = 0;
        }
        self.end += n;
    }

    /// Frees the buffer if it holds nothing: a quiet connection then costs
    /// no buffer (tens of thousands of idle tracker sessions would
    /// otherwise keep 4 KiB each); the next read allocates it again.
    pub fn release_if_empty(&mut self) {
        if self.start == self.end && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_when_full_up_to_max() {
        let mut b = ReadBuf::default();
        assert_eq!(b.spare(10_000, false).map(|s| s.len()), Some(INITIAL));
        b.filled(INITIAL);
        assert_eq!(b.spare(10_000, false).map(|s| s.len()), Some(INITIAL));
        b.filled(INITIAL);
        assert_eq!(
            b.spare(10_000, false).map(|s| s.len()),
            Some(10_000 - 2 * INITIAL)
        );
        b.filled(10_000);
        assert!(
            b.spare(10_000, false).is_none(),
            "max unprocessed bytes held"
        );
        b.consume(9_990);
        assert_eq!(b.data().len(), 10);
    }

    #[test]
    fn an_empty_buffer_is_freed_and_comes_back() {
        let mut b = ReadBuf::default();
        let n = b.spare(1 << 20, false).map_or(0, |s| s.len());
        b.filled(n);
        b.release_if_empty();
        assert_eq!(b.data().len(), INITIAL, "data is kept");
        b.consume(INITIAL);
        b.release_if_empty();
        assert_eq!(b.buf.capacity(), 0);
        assert_eq!(b.spare(1 << 20, false).map(|s| s.len()), Some(INITIAL));
    }

    #[test]
    fn busy_connections_get_larger_reads() {
        let mut b = ReadBuf::default();
        let n = b.spare(1 << 20, false).map_or(0, |s| s.len());
        b.filled(n);
        b.consume(n);
        b.busy(64 * 1024);
        assert_eq!(b.spare(1 << 20, false).map(|s| s.len()), Some(2 * INITIAL));
        for _ in 0..10 {
            b.busy(64 * 1024);
        }
        assert_eq!(b.spare(1 << 20, false).map(|s| s.len()), Some(64 * 1024));
    }

    #[test]
    fn moves_the_remainder_to_the_front_when_room_runs_low() {
        let mut b = ReadBuf::default();
        let room = b.spare(1 << 20, false).unwrap();
        let n = room.len();
        room[n - 1] = 9;
        b.filled(n);
        b.consume(n - 1);
        // Nothing left to read into: the one unprocessed byte moves to
        // the front rather than the buffer growing.
        assert_eq!(b.spare(1 << 20, false).map(|s| s.len()), Some(n - 1));
        assert_eq!(b.data(), &[9]);
    }

    #[test]
    fn large_room_starts_aligned_and_the_data_stays_contiguous() {
        let mut b = ReadBuf::default();
        for _ in 0..5 {
            b.busy(1 << 20);
        }
        // An odd amount of data first, then an aligned read after it.
        let room = b.spare(1 << 20, true).unwrap();
        room[..5].copy_from_slice(b"hello");
        b.filled(5);
        let room = b.spare(1 << 20, true).unwrap();
        assert_eq!(room.as_ptr() as usize % crate::aligned::ALIGN, 0);
        room[..6].copy_from_slice(b" world");
        b.filled(6);
        assert_eq!(b.data(), b"hello world");
        // Small room is not aligned: nothing skipped.
        let mut small = ReadBuf::default();
        let n = small.spare(1 << 20, true).map_or(0, |s| s.len());
        assert_eq!(n, INITIAL);
    }
}
