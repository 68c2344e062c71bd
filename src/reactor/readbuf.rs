//! A connection's unprocessed input. The buffer is zero-filled once when it
//! grows, never per read, and consumed frames are dropped by moving two
//! indices; the remainder is moved to the front only when room runs out.

const INITIAL: usize = 4 * 1024;

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

    /// Room to read into, growing the buffer (up to `max` bytes in all) when
    /// it is full. `None` when `max` unprocessed bytes are already held.
    pub fn spare(&mut self, max: usize) -> Option<&mut [u8]> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < max {
                let grown = (self.buf.len() * 2).clamp(INITIAL, max);
                self.buf.resize(grown, 0);
            } else {
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
