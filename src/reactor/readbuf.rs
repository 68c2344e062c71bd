//! A connection's unprocessed input. The buffer is zero-filled once when it
//! grows, never per read, and consumed frames are dropped by moving two
//! indices; the remainder (at most a partial frame) is moved to the front
//! when less than a quarter of the buffer is left to read into, so that
//! reads stay large.

#[derive(Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

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
    /// the buffer (to `first` bytes at first, doubling up to `max`). `None`
    /// when `max` unprocessed bytes are already held.
    pub fn spare(&mut self, first: usize, max: usize) -> Option<&mut [u8]> {
        let room = self.buf.len() - self.end;
        if room == 0 || room < self.buf.len() / 4 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < max {
                let grown = (self.buf.len() * 2).clamp(first.min(max), max);
                self.buf.resize(grown, 0);
            } else if self.end == self.buf.len() {
                return None;
            }
        }
        Some(&mut self.buf[self.end..])
    }

    /// Records `n` bytes written into the slice `spare` returned.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_first_then_doubles_up_to_max() {
        let mut b = ReadBuf::default();
        assert_eq!(b.spare(1000, 4000).map(|s| s.len()), Some(1000));
        b.filled(1000);
        assert_eq!(b.spare(1000, 4000).map(|s| s.len()), Some(1000));
        b.filled(1000);
        assert_eq!(b.spare(1000, 4000).map(|s| s.len()), Some(2000));
        b.filled(2000);
        assert!(b.spare(1000, 4000).is_none(), "max unprocessed bytes held");
        b.consume(3990);
        assert_eq!(b.data().len(), 10);
    }

    #[test]
    fn moves_the_remainder_to_the_front_when_room_runs_low() {
        let mut b = ReadBuf::default();
        let room = b.spare(1000, 1000).unwrap();
        room[..800].fill(7);
        room[800] = 9;
        b.filled(801);
        b.consume(800);
        // 199 bytes left to read into: under a quarter, so the one
        // unprocessed byte moves to the front.
        assert_eq!(b.spare(1000, 1000).map(|s| s.len()), Some(999));
        assert_eq!(b.data(), &[9]);
    }
}
