//! The uTP packet header (BEP 29), sans-IO: a datagram in, a typed header
//! (with its extension chain checked and its payload located) out, and a
//! header encoded into 20 bytes. STA speaks no uTP stream; this codec is
//! what `sta-peerd` needs to refuse uTP connection attempts so that
//! BitTorrent clients fall back to TCP (see spec/bittorrent.md, "uTP").
//!
//! ```text
//! 0       4       8               16              24              32
//! | type  | ver   | extension     | connection_id                 |
//! | timestamp_microseconds                                        |
//! | timestamp_difference_microseconds                             |
//! | wnd_size                                                      |
//! | seq_nr                        | ack_nr                        |
//! ```
//! All fields big-endian. Each extension is `next type: u8, len: u8`,
//! then `len` bytes; the header's `extension` byte is the first type, 0
//! ends the chain.

use std::fmt;

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 20;
/// The only uTP version there is (BEP 29).
pub const VERSION: u8 = 1;

/// The packet types of BEP 29.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ST_DATA: a payload.
    Data,
    /// ST_FIN: the last packet of a stream.
    Fin,
    /// ST_STATE: an acknowledgement, no payload.
    State,
    /// ST_RESET: the connection is terminated forcefully.
    Reset,
    /// ST_SYN: opens a connection.
    Syn,
}

impl Kind {
    fn from_nibble(n: u8) -> Option<Kind> {
        Some(match n {
            0 => Kind::Data,
            1 => Kind::Fin,
            2 => Kind::State,
            3 => Kind::Reset,
            4 => Kind::Syn,
            _ => return None,
        })
    }

    fn nibble(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Fin => 1,
            Kind::State => 2,
            Kind::Reset => 3,
            Kind::Syn => 4,
        }
    }
}

/// The fixed header of a uTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    /// Type of the first extension, 0 for none.
    pub extension: u8,
    pub connection_id: u16,
    pub timestamp_us: u32,
    pub timestamp_diff_us: u32,
    pub wnd_size: u32,
    pub seq_nr: u16,
    pub ack_nr: u16,
}

/// A decoded packet: its header, its checked extension chain and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    /// The extension chain, as sent (each: next type, length, bytes).
    pub extensions: &'a [u8],
    pub payload: &'a [u8],
}

/// Why a datagram is not a uTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtpError {
    /// Shorter than the 20-byte header.
    TooShort { len: usize },
    /// A version other than 1 (the low nibble of the first byte).
    BadVersion(u8),
    /// A type other than 0 to 4 (the high nibble of the first byte).
    BadType(u8),
    /// An extension's length runs past the end of the datagram.
    TruncatedExtension { at: usize },
}

impl fmt::Display for UtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UtpError::TooShort { len } => {
                write!(f, "{len} bytes, shorter than a uTP header ({HEADER_LEN})")
            }
            UtpError::BadVersion(v) => write!(f, "uTP version {v}, not {VERSION}"),
            UtpError::BadType(t) => write!(f, "uTP packet type {t} is not 0 to 4"),
            UtpError::TruncatedExtension { at } => {
                write!(f, "uTP extension at byte {at} runs past the datagram")
            }
        }
    }
}

impl std::error::Error for UtpError {}

/// Whether `datagram` could be uTP at all: type 0 to 4 and version 1 in
/// its first byte, and a whole header. Cheap, for sorting datagrams that
/// share a socket with other protocols (a KRPC message starts with `d`,
/// 0x64: type 6, version 4, never uTP).
pub fn looks_like_utp(datagram: &[u8]) -> bool {
    match datagram.first() {
        Some(&b) => datagram.len() >= HEADER_LEN && b & 0x0f == VERSION && b >> 4 <= 4,
        None => false,
    }
}

/// Decodes one datagram. A datagram is whole or lost, so there is no
/// "need more": a short one is an error.
pub fn decode(datagram: &[u8]) -> Result<Packet<'_>, UtpError> {
    let Some(fixed) = datagram.first_chunk::<HEADER_LEN>() else {
        return Err(UtpError::TooShort {
            len: datagram.len(),
        });
    };
    let version = fixed[0] & 0x0f;
    if version != VERSION {
        return Err(UtpError::BadVersion(version));
    }
    let kind = Kind::from_nibble(fixed[0] >> 4).ok_or(UtpError::BadType(fixed[0] >> 4))?;
    let u16_at = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
    let u32_at =
        |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
    let header = Header {
        kind,
        extension: fixed[1],
        connection_id: u16_at(2),
        timestamp_us: u32_at(4),
        timestamp_diff_us: u32_at(8),
        wnd_size: u32_at(12),
        seq_nr: u16_at(16),
        ack_nr: u16_at(18),
    };
    let end = extensions_end(datagram, header.extension)?;
    Ok(Packet {
        header,
        extensions: &datagram[HEADER_LEN..end],
        payload: &datagram[end..],
    })
}

/// Where the extension chain that starts with type `first` ends. Each
/// link costs at least two bytes of the datagram, so the walk is bounded
/// by the datagram's length.
fn extensions_end(datagram: &[u8], first: u8) -> Result<usize, UtpError> {
    let mut at = HEADER_LEN;
    let mut next = first;
    while next != 0 {
        let (Some(&kind), Some(&len)) = (datagram.get(at), datagram.get(at + 1)) else {
            return Err(UtpError::TruncatedExtension { at });
        };
        let end = at + 2 + usize::from(len);
        if end > datagram.len() {
            return Err(UtpError::TruncatedExtension { at });
        }
        next = kind;
        at = end;
    }
    Ok(at)
}

impl Header {
    /// The 20 bytes of this header (no extension follows it unless
    /// `extension` says so and the caller appends it).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[0] = self.kind.nibble() << 4 | VERSION;
        out[1] = self.extension;
        out[2..4].copy_from_slice(&self.connection_id.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp_us.to_be_bytes());
        out[8..12].copy_from_slice(&self.timestamp_diff_us.to_be_bytes());
        out[12..16].copy_from_slice(&self.wnd_size.to_be_bytes());
        out[16..18].copy_from_slice(&self.seq_nr.to_be_bytes());
        out[18..20].copy_from_slice(&self.ack_nr.to_be_bytes());
        out
    }

    /// The ST_RESET that refuses the packet `to`, sent at local time
    /// `now_us` (microseconds, wrapping) with sequence number `seq_nr`.
    ///
    /// It carries `to`'s connection id and acknowledges its `seq_nr`, as
    /// libutp's and libtorrent's own resets do: both find the socket of a
    /// reset by that id (a SYN's id is its sender's receive id), and fail
    /// a connection attempt on it at once instead of after its timeouts.
    pub fn reset_for(to: &Header, now_us: u32, seq_nr: u16) -> Header {
        Header {
            kind: Kind::Reset,
            extension: 0,
            connection_id: to.connection_id,
            timestamp_us: now_us,
            timestamp_diff_us: now_us.wrapping_sub(to.timestamp_us),
            wnd_size: 0,
            seq_nr,
            ack_nr: to.seq_nr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN as libtorrent 2.0.8 sends it (no extension, 1 MiB window).
    const SYN: [u8; 20] = [
        0x41, 0x00, 0x30, 0x39, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00,
    ];

    fn syn() -> Header {
        Header {
            kind: Kind::Syn,
            extension: 0,
            connection_id: 12345,
            timestamp_us: 1_000_000,
            timestamp_diff_us: 0,
            wnd_size: 1 << 20,
            seq_nr: 1,
            ack_nr: 0,
        }
    }

    #[test]
    fn a_syn_decodes_and_encodes_back() {
        let p = decode(&SYN).unwrap();
        assert_eq!(p.header, syn());
        assert!(p.extensions.is_empty() && p.payload.is_empty());
        assert_eq!(p.header.encode(), SYN);
        assert!(looks_like_utp(&SYN));
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in [Kind::Data, Kind::Fin, Kind::State, Kind::Reset, Kind::Syn] {
            let h = Header { kind, ..syn() };
            assert_eq!(decode(&h.encode()).unwrap().header, h);
        }
    }

    #[test]
    fn the_reset_for_a_syn_names_its_id_and_acks_its_seq_nr() {
        let r = Header::reset_for(&syn(), 1_000_250, 7);
        assert_eq!(r.kind, Kind::Reset);
        assert_eq!((r.connection_id, r.ack_nr, r.seq_nr), (12345, 1, 7));
        assert_eq!(r.timestamp_diff_us, 250);
        // Clocks that wrapped give a wrapped difference, never a panic.
        let late = Header {
            timestamp_us: u32::MAX,
            ..syn()
        };
        assert_eq!(Header::reset_for(&late, 4, 0).timestamp_diff_us, 5);
    }

    #[test]
    fn extensions_and_payload_are_located() {
        // A selective ack (type 1, 4 bytes), then 3 bytes of payload.
        let mut d = Header {
            kind: Kind::Data,
            extension: 1,
            ..syn()
        }
        .encode()
        .to_vec();
        d.extend_from_slice(&[0, 4, 0xff, 0, 0, 0, b'a', b'b', b'c']);
        let p = decode(&d).unwrap();
        assert_eq!(p.extensions, &[0, 4, 0xff, 0, 0, 0]);
        assert_eq!(p.payload, b"abc");
    }

    #[test]
    fn bad_datagrams_get_typed_errors() {
        assert_eq!(decode(&SYN[..19]), Err(UtpError::TooShort { len: 19 }));
        assert_eq!(decode(&[]), Err(UtpError::TooShort { len: 0 }));
        let mut v0 = SYN;
        v0[0] = 0x40;
        assert_eq!(decode(&v0), Err(UtpError::BadVersion(0)));
        let mut t5 = SYN;
        t5[0] = 0x51;
        assert_eq!(decode(&t5), Err(UtpError::BadType(5)));
        // An extension announced but absent, and one longer than what is left.
        let mut ext = SYN.to_vec();
        ext[1] = 1;
        assert_eq!(decode(&ext), Err(UtpError::TruncatedExtension { at: 20 }));
        ext.extend_from_slice(&[0, 8, 1, 2]);
        assert_eq!(decode(&ext), Err(UtpError::TruncatedExtension { at: 20 }));
    }

    #[test]
    fn a_krpc_message_is_not_utp() {
        assert!(!looks_like_utp(
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        ));
        assert!(!looks_like_utp(&SYN[..19]));
        assert!(!looks_like_utp(&[]));
    }

    #[test]
    fn any_prefix_of_any_bytes_decodes_or_errs_without_panic() {
        let mut junk = SYN.to_vec();
        junk[1] = 2;
        junk.extend((0..64u8).map(|i| i.wrapping_mul(37)));
        for n in 0..=junk.len() {
            let _ = decode(&junk[..n]);
        }
    }
}
