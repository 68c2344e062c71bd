//! A connection's pending output: a queue of chunks written with one
//! `write_vectored` call, so many small frames cost one syscall and a
//! shared (memory-mapped) slice is sent without being copied.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::sync::Arc;

/// Bytes owned elsewhere and shared with the queue, such as a mapped file.
pub trait SharedBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

enum Chunk {
    /// Small frames copied end to end.
    Owned(Vec<u8>),
    /// A large buffer handed over whole and never appended to.
    Whole(Vec<u8>),
    Shared(Arc<dyn SharedBytes>, Range<usize>),
}

impl Chunk {
    fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) | Chunk::Whole(v) => v,
            Chunk::Shared(s, r) => s.bytes().get(r.clone()).unwrap_or(&[]),
        }
    }
}

/// Buffers at least this long are queued as they are, not copied: a
/// tracker announce of a tree of 100,000 files carries a 4 MiB info dict,
/// which a copy (and a doubling of the buffer it went into) held twice
/// more at the seeder's peak.
const MOVE_AT: usize = 64 * 1024;

/// Most slices handed to one `write_vectored` (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

/// Why [`OutQueue::flush_up_to`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued is written.
    Empty,
    /// The socket takes no more for now; writable readiness will tell.
    WouldBlock,
    /// The budget is spent and output is left.
    Budget,
}

#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    len: usize,
    /// Bytes written out since the queue began.
    taken: u64,
}

impl OutQueue {
    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends bytes produced by `fill` (an encoder writing into a Vec).
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        if !matches!(self.chunks.back(), Some(Chunk::Owned(_))) {
            self.chunks.push_back(Chunk::Owned(Vec::new()));
        }
        if let Some(Chunk::Owned(v)) = self.chunks.back_mut() {
            let before = v.len();
            fill(v);
            self.len += v.len() - before;
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.push_with(|v| v.extend_from_slice(bytes));
    }

    /// Queues `bytes`, moving them in if large and copying them if not.
    pub fn push_vec(&mut self, bytes: Vec<u8>) {
        if bytes.len() < MOVE_AT {
            return self.push(&bytes);
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Whole(bytes));
    }

    /// Queues `range` of `shared` by reference, without copying it.
    pub fn push_shared(&mut self, shared: Arc<dyn SharedBytes>, range: Range<usize>) {
        self.len += range.len();
        self.chunks.push_back(Chunk::Shared(shared, range));
    }

    /// Writes as much as the socket takes. Returns `Ok(true)` once the queue
    /// is empty, `Ok(false)` if the socket would block first.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<bool> {
        self.flush_up_to(w, usize::MAX)
            .map(|(_, end)| end == Flushed::Empty)
    }

    /// Writes at most `budget` bytes, as many as the socket takes. Returns
    /// the bytes written and why it stopped.
    pub fn flush_up_to(
        &mut self,
        w: &mut impl Write,
        budget: usize,
    ) -> io::Result<(usize, Flushed)> {
        let mut total = 0;
        while self.len > 0 {
            let mut left = budget - total;
            if left == 0 {
                return Ok((total, Flushed::Budget));
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let s = chunk.as_slice();
                let s = if i == 0 { &s[self.front_written..] } else { s };
                let s = &s[..s.len().min(left)];
                left -= s.len();
                slices[i] = IoSlice::new(s);
                n = i + 1;
                if left == 0 {
                    break;
                }
            }
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    total += written;
                    self.consume(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((total, Flushed::WouldBlock));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((total, Flushed::Empty))
    }

    /// Bytes written out since the queue began.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    fn consume(&mut self, mut written: usize) {
        self.len -= written;
        self.taken += written as u64;
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.as_slice().len() - self.front_written;
            if written < left {
                self.front_written += written;
                return;
            }
            written -= left;
            self.front_written = 0;
            self.chunks.pop_front();
        }
        // A fully written owned chunk at the front is dropped above; keep
        // the queue from holding an empty owned chunk forever.
        if self.len == 0 {
            self.chunks.clear();
            self.front_written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `room` bytes per call, then would block.
    struct Sink {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_budget_caps_what_is_written_and_keeps_the_rest_in_order() {
        let mut q = OutQueue::default();
        q.push(b"hello ");
        q.push_shared(Arc::new(Bytes(b"big world".to_vec())), 4..9);
        q.push(b"!");
        let mut sink = Sink {
            got: Vec::new(),
            room: 100,
        };
        assert_eq!(q.flush_up_to(&mut sink, 8).unwrap(), (8, Flushed::Budget));
        assert_eq!(sink.got, b"hello wo");
        assert_eq!(q.len(), 4);
        sink.room = 2;
        assert_eq!(
            q.flush_up_to(&mut sink, 100).unwrap(),
            (2, Flushed::WouldBlock)
        );
        sink.room = 100;
        assert_eq!(q.flush_up_to(&mut sink, 100).unwrap(), (2, Flushed::Empty));
        assert_eq!(sink.got, b"hello world!");
        assert!(q.is_empty());
        assert_eq!(q.flush_up_to(&mut sink, 0).unwrap(), (0, Flushed::Empty));
    }

    /// A large buffer is queued as it is, and what follows it is not
    /// appended to it; small ones are copied end to end.
    #[test]
    fn a_large_buffer_is_moved_in_and_the_order_kept() {
        let mut q = OutQueue::default();
        let big = vec![7u8; MOVE_AT];
        let at = big.as_ptr();
        q.push_vec(b"ab".to_vec());
        q.push_vec(big);
        q.push_vec(b"cd".to_vec());
        assert_eq!(q.chunks.len(), 3);
        assert!(matches!(&q.chunks[1], Chunk::Whole(v) if v.as_ptr() == at));
        let mut sink = Sink {
            got: Vec::new(),
            room: usize::MAX,
        };
        assert!(q.flush(&mut sink).unwrap());
        assert_eq!(sink.got.len(), MOVE_AT + 4);
        assert_eq!(
            (&sink.got[..2], &sink.got[MOVE_AT + 2..]),
            (&b"ab"[..], &b"cd"[..])
        );
    }

    struct Bytes(Vec<u8>);

    impl SharedBytes for Bytes {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
    }
}
