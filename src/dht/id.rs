//! Node ids and the XOR metric of Kademlia: the distance between two ids
//! is their XOR read as a 160-bit big-endian number, so comparing
//! distances is comparing byte arrays.

use crate::rng::Rng;
use crate::wire::krpc::NodeId;

/// Bits of an id.
pub const ID_BITS: usize = 160;

/// `a` XOR `b`: smaller arrays are closer.
pub fn distance(a: &NodeId, b: &NodeId) -> NodeId {
    let mut d = [0u8; 20];
    for (i, x) in d.iter_mut().enumerate() {
        *x = a[i] ^ b[i];
    }
    d
}

/// Leading bits `a` and `b` share (160 if equal).
pub fn common_prefix(a: &NodeId, b: &NodeId) -> usize {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return i * 8 + d.leading_zeros() as usize;
        }
    }
    ID_BITS
}

/// A random id.
pub fn random_id(rng: &mut Rng) -> NodeId {
    let mut id = [0u8; 20];
    for chunk in id.chunks_mut(8) {
        let r = rng.next_u64().to_be_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    id
}

/// A random id sharing exactly `prefix` leading bits with `own` (the
/// range of bucket `prefix`), for refreshing that bucket; with `prefix`
/// of 160, `own` itself.
pub fn random_id_in_bucket(own: &NodeId, prefix: usize, rng: &mut Rng) -> NodeId {
    if prefix >= ID_BITS {
        return *own;
    }
    let mut id = random_id(rng);
    for bit in 0..=prefix {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        let want = if bit == prefix {
            !own[byte] & mask
        } else {
            own[byte] & mask
        };
        id[byte] = (id[byte] & !mask) | want;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_distance_agree() {
        let a = [0u8; 20];
        let mut b = [0u8; 20];
        assert_eq!(common_prefix(&a, &b), 160);
        b[2] = 0x10;
        assert_eq!(common_prefix(&a, &b), 19);
        assert!(distance(&a, &b) > distance(&a, &[0u8; 20]));
        let mut rng = Rng::new(7);
        let own = random_id(&mut rng);
        for prefix in [0, 1, 7, 8, 9, 100, 159] {
            let id = random_id_in_bucket(&own, prefix, &mut rng);
            assert_eq!(common_prefix(&own, &id), prefix);
        }
    }
}
