//! The peer wire: BitTorrent BEP 3 (handshake, messages 0-8) plus the BEP 6
//! Fast extension. Messages borrow from the read buffer, so a piece block
//! is never copied by the decoder.

use super::cursor::Cursor;
use super::{FrameTooLarge, begin_frame, finish_frame, split_frame};
use crate::limits::MAX_PEER_FRAME;

pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
pub const HANDSHAKE_LEN: usize = 68;

/// Reserved-byte bits we set and understand.
pub const RESERVED_FAST: (usize, u8) = (7, 0x04);
/// BEP 10 extension protocol (see `wire::extension`).
pub const RESERVED_EXTENDED: (usize, u8) = (5, 0x10);
/// BEP 5: the sender runs a DHT node and sends a PORT message.
pub const RESERVED_DHT: (usize, u8) = (7, 0x01);

pub use super::{InfoHash, PeerId};

/// The 68-byte opening of every peer session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

impl Handshake {
    /// A handshake announcing the Fast extension (BEP 6) and the
    /// extension protocol (BEP 10).
    pub fn new(info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut reserved = [0u8; 8];
        reserved[RESERVED_FAST.0] |= RESERVED_FAST.1;
        reserved[RESERVED_EXTENDED.0] |= RESERVED_EXTENDED.1;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    pub fn supports_fast(&self) -> bool {
        self.reserved[RESERVED_FAST.0] & RESERVED_FAST.1 != 0
    }

    /// The same handshake also announcing a DHT node (BEP 5).
    pub fn with_dht(mut self) -> Self {
        self.reserved[RESERVED_DHT.0] |= RESERVED_DHT.1;
        self
    }

    pub fn supports_dht(&self) -> bool {
        self.reserved[RESERVED_DHT.0] & RESERVED_DHT.1 != 0
    }

    pub fn supports_extended(&self) -> bool {
        self.reserved[RESERVED_EXTENDED.0] & RESERVED_EXTENDED.1 != 0
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(PROTOCOL.len() as u8);
        out.extend_from_slice(PROTOCOL);
        out.extend_from_slice(&self.reserved);
        out.extend_from_slice(&self.info_hash);
        out.extend_from_slice(&self.peer_id);
    }

    /// Decodes a handshake from the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Option<(Handshake, usize)>, PeerError> {
        // Check the protocol string as soon as its bytes arrive, so a peer
        // speaking something else is refused without waiting for 68 bytes.
        let seen = buf.len().min(1 + PROTOCOL.len());
        if let Some(&n) = buf.first()
            && n as usize != PROTOCOL.len()
        {
            return Err(PeerError::BadHandshake);
        }
        if seen > 1 && buf[1..seen] != PROTOCOL[..seen - 1] {
            return Err(PeerError::BadHandshake);
        }
        if buf.len() < HANDSHAKE_LEN {
            return Ok(None);
        }
        let mut c = Cursor::new(&buf[20..HANDSHAKE_LEN]);
        let hs = (|| {
            Some(Handshake {
                reserved: c.array()?,
                info_hash: c.array()?,
                peer_id: c.array()?,
            })
        })()
        .ok_or(PeerError::BadHandshake)?;
        Ok(Some((hs, HANDSHAKE_LEN)))
    }
}

/// Message ids of the peer wire.
pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const SUGGEST: u8 = 0x0d;
    pub const HAVE_ALL: u8 = 0x0e;
    pub const HAVE_NONE: u8 = 0x0f;
    pub const REJECT: u8 = 0x10;
    /// BEP 5 PORT: the sender's DHT port (a `u16`). Decoded as
    /// [`super::Message::Unknown`]; see [`super::port_message`].
    pub const PORT: u8 = 9;
    pub const ALLOWED_FAST: u8 = 0x11;
}

/// A BEP 5 PORT message (length 3, id 9, the port big-endian).
pub fn port_message(port: u16) -> [u8; 7] {
    let p = port.to_be_bytes();
    [0, 0, 0, 3, id::PORT, p[0], p[1]]
}

/// A block address: piece index, byte offset in the piece, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

/// One peer-wire message. `Unknown` carries any id we do not implement
/// (BEP 10 extended messages, DHT port, ...): real clients send them, and
/// a peer must skip them rather than hang up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(&'a [u8]),
    Request(Block),
    Piece {
        index: u32,
        begin: u32,
        block: &'a [u8],
    },
    Cancel(Block),
    Suggest(u32),
    HaveAll,
    HaveNone,
    Reject(Block),
    AllowedFast(u32),
    Unknown {
        id: u8,
        payload: &'a [u8],
    },
}

/// Why a peer-wire frame could not be decoded. Every one ends the session:
/// the peer is broken or hostile, and BEP 3 has no error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerError {
    BadHandshake,
    FrameTooLarge(FrameTooLarge),
    /// A known message with a payload of the wrong size.
    BadLength {
        id: u8,
        len: usize,
    },
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::BadHandshake => write!(f, "not a BitTorrent handshake"),
            PeerError::FrameTooLarge(e) => e.fmt(f),
            PeerError::BadLength { id, len } => {
                write!(f, "message id {id} with a payload of {len} bytes")
            }
        }
    }
}

impl std::error::Error for PeerError {}

impl<'a> Message<'a> {
    /// Decodes the next message from the start of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Option<(Message<'a>, usize)>, PeerError> {
        let Some((body, used)) =
            split_frame(buf, MAX_PEER_FRAME).map_err(PeerError::FrameTooLarge)?
        else {
            return Ok(None);
        };
        let Some((&id, payload)) = body.split_first() else {
            return Ok(Some((Message::KeepAlive, used)));
        };
        Ok(Some((Self::decode_body(id, payload)?, used)))
    }

    fn decode_body(id: u8, payload: &'a [u8]) -> Result<Message<'a>, PeerError> {
        let bad = || PeerError::BadLength {
            id,
            len: payload.len(),
        };
        let exact = |n: usize| {
            if payload.len() == n {
                Ok(())
            } else {
                Err(bad())
            }
        };
        let mut c = Cursor::new(payload);
        let msg = match id {
            id::CHOKE => exact(0).map(|_| Message::Choke)?,
            id::UNCHOKE => exact(0).map(|_| Message::Unchoke)?,
            id::INTERESTED => exact(0).map(|_| Message::Interested)?,
            id::NOT_INTERESTED => exact(0).map(|_| Message::NotInterested)?,
            id::HAVE_ALL => exact(0).map(|_| Message::HaveAll)?,
            id::HAVE_NONE => exact(0).map(|_| Message::HaveNone)?,
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => {
                exact(4)?;
                let index = c.u32().ok_or_else(bad)?;
                match id {
                    id::HAVE => Message::Have(index),
                    id::SUGGEST => Message::Suggest(index),
                    _ => Message::AllowedFast(index),
                }
            }
            id::REQUEST | id::CANCEL | id::REJECT => {
                exact(12)?;
                let block = read_block(&mut c).ok_or_else(bad)?;
                match id {
                    id::REQUEST => Message::Request(block),
                    id::CANCEL => Message::Cancel(block),
                    _ => Message::Reject(block),
                }
            }
            id::BITFIELD => Message::Bitfield(payload),
            id::PIECE => {
                let index = c.u32().ok_or_else(bad)?;
                let begin = c.u32().ok_or_else(bad)?;
                Message::Piece {
                    index,
                    begin,
                    block: c.rest(),
                }
            }
            _ => Message::Unknown { id, payload },
        };
        Ok(msg)
    }

    /// Appends this message, framed, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (id, fixed): (u8, &[u32]) = match *self {
            Message::KeepAlive => {
                out.extend_from_slice(&[0, 0, 0, 0]);
                return;
            }
            Message::Choke => (id::CHOKE, &[]),
            Message::Unchoke => (id::UNCHOKE, &[]),
            Message::Interested => (id::INTERESTED, &[]),
            Message::NotInterested => (id::NOT_INTERESTED, &[]),
            Message::HaveAll => (id::HAVE_ALL, &[]),
            Message::HaveNone => (id::HAVE_NONE, &[]),
            Message::Have(i) => return encode_u32s(out, id::HAVE, &[i]),
            Message::Suggest(i) => return encode_u32s(out, id::SUGGEST, &[i]),
            Message::AllowedFast(i) => return encode_u32s(out, id::ALLOWED_FAST, &[i]),
            Message::Request(b) => return encode_block(out, id::REQUEST, b),
            Message::Cancel(b) => return encode_block(out, id::CANCEL, b),
            Message::Reject(b) => return encode_block(out, id::REJECT, b),
            Message::Bitfield(bits) => return encode_bytes(out, id::BITFIELD, &[], bits),
            Message::Piece {
                index,
                begin,
                block,
            } => return encode_bytes(out, id::PIECE, &[index, begin], block),
            Message::Unknown { id, payload } => return encode_bytes(out, id, &[], payload),
        };
        encode_u32s(out, id, fixed);
    }
}

fn read_block(c: &mut Cursor<'_>) -> Option<Block> {
    Some(Block {
        index: c.u32()?,
        begin: c.u32()?,
        length: c.u32()?,
    })
}

fn encode_u32s(out: &mut Vec<u8>, id: u8, fields: &[u32]) {
    encode_bytes(out, id, fields, &[]);
}

fn encode_block(out: &mut Vec<u8>, id: u8, b: Block) {
    encode_u32s(out, id, &[b.index, b.begin, b.length]);
}

fn encode_bytes(out: &mut Vec<u8>, id: u8, fields: &[u32], tail: &[u8]) {
    let at = begin_frame(out, id);
    for f in fields {
        out.extend_from_slice(&f.to_be_bytes());
    }
    out.extend_from_slice(tail);
    finish_frame(out, at);
}

/// The 13 bytes that precede a block in a piece message. Serving writes
/// this header and then the mapped slice, so the block is never copied.
pub fn piece_header(index: u32, begin: u32, block_len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&(9 + block_len).to_be_bytes());
    h[4] = id::PIECE;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}
