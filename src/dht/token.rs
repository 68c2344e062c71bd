//! Tokens for announce_peer (BEP 5): a get_peers answer carries a token
//! bound to the asker's IP address, and only an announce bearing it is
//! stored, so nobody can announce an address they do not receive at.
//!
//! A token is the first 8 bytes of SHA1(secret, IP). The secret changes
//! every [`ROTATE_EVERY`]; tokens of the current and the previous secret
//! are accepted, so a token lives 5 to 10 minutes. Secrets are derived
//! from a seed the shell draws from the OS (SHA1(seed, generation)), so
//! this module needs no randomness of its own and tokens cannot be
//! predicted from the node id or the clock.

use crate::engine::Time;
use sha1::{Digest, Sha1};
use std::net::Ipv4Addr;
use std::time::Duration;

/// How often the secret changes.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
/// Bytes of a token STA hands out.
pub const TOKEN_LEN: usize = 8;

#[derive(Debug)]
pub struct Tokens {
    seed: [u8; 20],
    generation: u64,
    current: [u8; 20],
    previous: [u8; 20],
    rotated: Time,
}

impl Tokens {
    pub fn new(seed: [u8; 20], now: Time) -> Tokens {
        let current = secret(&seed, 1);
        Tokens {
            seed,
            generation: 1,
            current,
            previous: secret(&seed, 0),
            rotated: now,
        }
    }

    /// Moves to the next secret when the current one is old enough.
    pub fn rotate(&mut self, now: Time) {
        if now.since(self.rotated) >= ROTATE_EVERY {
            self.generation += 1;
            self.previous = self.current;
            self.current = secret(&self.seed, self.generation);
            self.rotated = now;
        }
    }

    /// When [`Tokens::rotate`] next has work.
    pub fn next_rotation(&self) -> Time {
        self.rotated + ROTATE_EVERY
    }

    pub fn issue(&self, ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
        token(&self.current, ip)
    }

    pub fn accepts(&self, ip: Ipv4Addr, t: &[u8]) -> bool {
        t == token(&self.current, ip) || t == token(&self.previous, ip)
    }
}

fn secret(seed: &[u8; 20], generation: u64) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(seed);
    h.update(generation.to_be_bytes());
    h.finalize().into()
}

fn token(secret: &[u8; 20], ip: Ipv4Addr) -> [u8; TOKEN_LEN] {
    let mut h = Sha1::new();
    h.update(secret);
    h.update(ip.octets());
    let d: [u8; 20] = h.finalize().into();
    let mut t = [0u8; TOKEN_LEN];
    t.copy_from_slice(&d[..TOKEN_LEN]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_live_two_generations_and_bind_the_ip() {
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let mut t = Tokens::new([3; 20], Time::ZERO);
        let first = t.issue(ip);
        assert!(t.accepts(ip, &first));
        assert!(!t.accepts(Ipv4Addr::new(10, 0, 0, 2), &first));
        t.rotate(Time::ZERO + ROTATE_EVERY / 2);
        assert_eq!(t.issue(ip), first);
        t.rotate(Time::ZERO + ROTATE_EVERY);
        assert_ne!(t.issue(ip), first);
        assert!(t.accepts(ip, &first));
        t.rotate(Time::ZERO + ROTATE_EVERY * 2);
        assert!(!t.accepts(ip, &first));
        assert!(!t.accepts(ip, b"short"));
    }
}
