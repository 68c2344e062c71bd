//! A BEP 3 bitfield: the high bit of byte 0 is piece 0, spare bits at the
//! end are zero. Keeps its count of set bits so "is it complete?" is free.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    count: u32,
}

/// Why received bitfield bytes do not fit a file of a given piece count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitfieldError {
    WrongLength { expected: usize, found: usize },
    SpareBitsSet,
}

impl std::fmt::Display for BitfieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BitfieldError::WrongLength { expected, found } => {
                write!(f, "bitfield of {found} bytes, expected {expected}")
            }
            BitfieldError::SpareBitsSet => write!(f, "bitfield has spare bits set"),
        }
    }
}

impl Bitfield {
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; byte_len(len)],
            len,
            count: 0,
        }
    }

    pub fn full(len: u32) -> Bitfield {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Checks and adopts bytes received for a file of `len` pieces.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Bitfield, BitfieldError> {
        let expected = byte_len(len);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                expected,
                found: bytes.len(),
            });
        }
        let spare = (expected * 8) as u32 - len;
        if spare > 0 && bytes[expected - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(BitfieldError::SpareBitsSet);
        }
        let count = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
            count,
        })
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn is_complete(&self) -> bool {
        self.count == self.len
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Sets bit `i`; returns false if it was already set or out of range.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bytes[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.count += 1;
        true
    }

    pub fn clear(&mut self, i: u32) {
        if self.get(i) {
            self.bytes[(i / 8) as usize] &= !(0x80 >> (i % 8));
            self.count -= 1;
        }
    }

    /// Indices of set bits, ascending.
    /// True when some bit is set here and in neither `a` nor `b` (all
    /// three of one length): a byte at a time, as spare bits are zero.
    pub fn has_any_outside(&self, a: &Bitfield, b: &Bitfield) -> bool {
        self.bytes
            .iter()
            .zip(&a.bytes)
            .zip(&b.bytes)
            .any(|((s, a), b)| s & !a & !b != 0)
    }

    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }
}

fn byte_len(len: u32) -> usize {
    (len as usize).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_any_outside_looks_at_every_bit() {
        let mut s = Bitfield::new(11);
        let (mut a, b) = (Bitfield::new(11), Bitfield::new(11));
        assert!(!s.has_any_outside(&a, &b));
        s.set(10);
        assert!(s.has_any_outside(&a, &b));
        a.set(10);
        assert!(!s.has_any_outside(&a, &b), "covered by a");
        assert!(!Bitfield::full(11).has_any_outside(&Bitfield::full(11), &b));
    }

    #[test]
    fn spare_bits_and_length_are_checked() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 9),
            Err(BitfieldError::WrongLength {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0x40], 9),
            Err(BitfieldError::SpareBitsSet)
        );
        let b = Bitfield::from_bytes(&[0xff, 0x80], 9).unwrap();
        assert!(b.is_complete());
        assert_eq!(Bitfield::full(9).as_bytes(), &[0xff, 0x80]);
    }

    #[test]
    fn set_and_clear_keep_count() {
        let mut b = Bitfield::new(10);
        assert!(b.set(3));
        assert!(!b.set(3));
        assert!(!b.set(10));
        assert_eq!(b.count(), 1);
        b.clear(3);
        assert_eq!(b.count(), 0);
        assert_eq!(b.ones().count(), 0);
    }
}
