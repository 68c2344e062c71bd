//! A bounds-checked reader over a frame payload. Every read either yields
//! the value or `None`; callers turn `None` into their protocol's
//! "malformed" error, so no index can panic.

use byteorder::{BigEndian, ByteOrder};

pub struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        Some(BigEndian::read_u16(self.bytes(2)?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(BigEndian::read_u32(self.bytes(4)?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(BigEndian::read_u64(self.bytes(8)?))
    }
}
