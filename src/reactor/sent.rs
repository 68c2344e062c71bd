//! What of a TCP connection's output has left the host, for handlers that
//! pace their output by it (`Handler::sent`). Linux tells two things: how
//! many written bytes the kernel has not sent yet (`SIOCOUTQNSD`), and,
//! with `TCP_NOTSENT_LOWAT`, it reports a socket writable only once fewer
//! than that many unsent bytes wait in it, so the kernel holds little that
//! was not sent and writability tells when it drained. Over TLS the count
//! is of plaintext taken by the TLS stream less the ciphertext the kernel
//! holds: what rustls itself buffers counts as gone (at most one flush).

use std::os::fd::AsRawFd;

/// Unsent bytes a paced socket holds before it stops taking more: what
/// the link sends between two turns of the loop, at loopback rates.
pub const NOTSENT_LOWAT: u32 = 256 * 1024;

/// Has the kernel report `fd` writable only below [`NOTSENT_LOWAT`]
/// unsent bytes; best effort (elsewhere than Linux, nothing).
pub fn pace(fd: &impl AsRawFd) {
    #[cfg(target_os = "linux")]
    {
        let v = NOTSENT_LOWAT as libc::c_int;
        // SAFETY: a valid descriptor, and a c_int option of its size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

/// Bytes written to `fd` that the kernel has not sent; 0 when unknown.
pub fn unsent(fd: &impl AsRawFd) -> u64 {
    #[cfg(target_os = "linux")]
    {
        /// linux/sockios.h: output queue bytes not yet sent.
        const SIOCOUTQNSD: libc::c_ulong = 0x894B;
        let mut n: libc::c_int = 0;
        // SAFETY: a valid descriptor, and an int for the ioctl to fill.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), SIOCOUTQNSD as _, &mut n) };
        if r == 0 {
            return u64::try_from(n).unwrap_or(0);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
    0
}
