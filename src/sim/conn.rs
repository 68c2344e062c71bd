//! TCP-like connections of the simulated network: what a message
//! carries, and each side's send queue, receive buffer and state.

use super::net::HostId;
use super::store::Body;
use crate::engine::{LinkId, Time};
use std::collections::VecDeque;
use std::time::Duration;

/// What a message carries.
#[derive(Debug)]
pub enum Packet {
    Data(Vec<u8>),
    /// A piece message: `header`, then `len` bytes of `body`.
    Block {
        header: [u8; 13],
        len: u32,
        body: Body,
    },
    /// The sender closed the connection.
    Fin,
}

#[derive(Debug)]
pub struct Msg {
    pub packet: Packet,
    /// Bytes on the wire, headers included.
    pub(super) wire: u64,
    /// Extra delay of a retransmission, drawn when it is sent.
    pub(super) delay: Duration,
}

/// A message in flight, by its place in [`Net`]'s table: events stay
/// small, which keeps the agenda's heap cheap to reorder.
pub type MsgId = u32;

impl Packet {
    pub fn payload_len(&self) -> u64 {
        match self {
            Packet::Data(b) => b.len() as u64,
            Packet::Block { len, .. } => 13 + u64::from(*len),
            Packet::Fin => 0,
        }
    }
}

/// One side of a connection.
#[derive(Debug)]
pub struct End {
    pub host: HostId,
    /// The engine's name for the connection on this host.
    pub link: LinkId,
    /// False before the connection is accepted here and after this side
    /// closed it or died: messages for it are dropped.
    pub attached: bool,
    /// This side sent its FIN: it sends nothing more.
    pub fin: bool,
    pub(super) queue: VecDeque<Msg>,
    pub(super) in_ring: bool,
    /// Payload bytes of this side's messages once on the wire.
    pub(super) left: u64,
    /// When the last message for this side is delivered, so that a
    /// delayed retransmission holds back what follows (TCP's in-order
    /// delivery).
    pub(super) last_delivery: Time,
    /// Bytes received and not yet used by the engine.
    pub inbuf: Vec<u8>,
}

impl End {
    pub(super) fn new(host: HostId, link: LinkId, attached: bool) -> End {
        End {
            host,
            link,
            attached,
            fin: false,
            queue: VecDeque::new(),
            in_ring: false,
            left: 0,
            last_delivery: Time::ZERO,
            inbuf: Vec::new(),
        }
    }
}

pub struct Conn {
    /// Side 0 dialed, side 1 accepted.
    pub ends: [End; 2],
    /// The handshake is over (both sides know of it).
    pub open: bool,
}
