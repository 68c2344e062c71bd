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
    Owned(Vec<u8>),
    Shared(Arc<dyn SharedBytes>, Range<usize>),
}

impl Chunk {
    fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(s, r) => s.bytes().get(r.clone()).unwrap_or(&[]),
        }
    }
}

/// Most slices handed to one `write_vectored` (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    front_written: usize,
    len: usize,
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

    /// Queues `range` of `shared` by reference, without copying it.
    pub fn push_shared(&mut self, shared: Arc<dyn SharedBytes>, range: Range<usize>) {
        self.len += range.len();
        self.chunks.push_back(Chunk::Shared(shared, range));
    }

    /// Writes as much as the socket takes. Returns `Ok(true)` once the queue
    /// is empty, `Ok(false)` if the socket would block first.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<bool> {
        while self.len > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                let s = chunk.as_slice();
                slices[i] = IoSlice::new(if i == 0 { &s[self.front_written..] } else { s });
                n = i + 1;
            }
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.consume(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn consume(&mut self, mut written: usize) {
        self.len -= written;
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
