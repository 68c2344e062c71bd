//! Bytes on the wire, sans-IO: the common framing and STA's two protocols
//! built on it (`peer`, `tracker`), the BitTorrent tracker protocols
//! (`bt_udp`, `bt_http`), the DHT's KRPC (`krpc`), the uTP header
//! (`utp`), the BEP 10 extended messages (`extension`, `ut_metadata`,
//! `pex`), and hex and percent-encoding (`text`).
//!
//! In STA's framing every frame is a `u32` big-endian length (of what
//! follows), then a `u8` message id and its payload. A length of 0 is a
//! keep-alive. Decoders take `&[u8]` and return `Ok(None)` when more bytes
//! are needed, `Ok(Some((msg, used)))` for a complete frame, or a typed
//! error; they never panic and never allocate more than the frame limit,
//! whatever the length claims.

pub mod bt_http;
pub mod bt_udp;
pub mod cursor;
pub mod extension;
pub mod krpc;
pub mod peer;
pub mod pex;
pub mod text;
pub mod tracker;
pub mod ut_metadata;
pub mod utp;

/// A file's id everywhere in STA: the SHA1 of its bencoded info dict.
pub type InfoHash = [u8; 20];
/// The 20 bytes a peer names itself by, to the tracker and to other peers.
pub type PeerId = [u8; 20];

/// Bytes taken by the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Locates the next frame in `buf`.
///
/// Returns `Ok(None)` while the length prefix or the body is incomplete,
/// and `Ok(Some((body, used)))` once `buf` holds the whole frame, where
/// `body` is the id and payload (empty for a keep-alive).
pub fn split_frame(buf: &[u8], max: u32) -> Result<Option<(&[u8], usize)>, FrameTooLarge> {
    let Some(prefix) = buf.get(..LEN_PREFIX) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if len > max {
        return Err(FrameTooLarge { len, max });
    }
    let end = LEN_PREFIX + len as usize;
    Ok(buf.get(LEN_PREFIX..end).map(|body| (body, end)))
}

/// A frame claimed more bytes than its protocol allows. The stream cannot
/// be resynchronised after this, so the session must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    pub len: u32,
    pub max: u32,
}

impl std::fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frame of {} bytes exceeds the limit of {}",
            self.len, self.max
        )
    }
}

/// Starts a frame in `out` and returns the position of its length prefix,
/// to be filled by [`finish_frame`] once the body is written.
pub(crate) fn begin_frame(out: &mut Vec<u8>, id: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, id]);
    at
}

/// Writes the length of the frame started at `at`.
pub(crate) fn finish_frame(out: &mut [u8], at: usize) {
    let len = (out.len() - at - LEN_PREFIX) as u32;
    out[at..at + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
}
