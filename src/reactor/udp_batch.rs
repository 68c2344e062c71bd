//! Datagrams in and out by the batch. A UDP tracker's cost is mostly
//! system calls, one to read each request and one to send each reply;
//! on Linux `recvmmsg` and `sendmmsg` move up to [`BATCH`] datagrams per
//! call. Elsewhere a batch is one datagram, by `recv_from` and `send_to`.

use super::MAX_DATAGRAM;
use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Buffers of one batch: datagrams received, and the replies to send.
pub struct UdpBatch {
    input: Vec<u8>,
    /// Source, slot in `input` and length of each datagram received.
    received: Vec<(SocketAddr, usize, usize)>,
    replies: Vec<u8>,
    /// Where each reply ends in `replies`, and where it goes.
    outgoing: Vec<(usize, SocketAddr)>,
}

impl Default for UdpBatch {
    fn default() -> Self {
        UdpBatch {
            input: vec![0; BATCH * MAX_DATAGRAM],
            received: Vec::with_capacity(BATCH),
            replies: Vec::new(),
            outgoing: Vec::with_capacity(BATCH),
        }
    }
}

impl UdpBatch {
    /// Receives what is waiting, up to a batch; returns how many
    /// datagrams came (an error such as WouldBlock when none did), and
    /// whether the batch was full (more may be waiting).
    /// Datagrams from addresses of unknown families are left out.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<(usize, bool)> {
        self.received.clear();
        #[cfg(target_os = "linux")]
        let full = linux::recv(socket, &mut self.input, &mut self.received)?;
        #[cfg(not(target_os = "linux"))]
        let full = true;
        #[cfg(not(target_os = "linux"))]
        {
            let (n, from) = socket.recv_from(&mut self.input[..MAX_DATAGRAM])?;
            self.received.push((from, 0, n));
        }
        Ok((self.received.len(), full))
    }

    /// Datagram `i` of the batch and its source.
    pub fn datagram(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let &(from, slot, len) = self.received.get(i)?;
        let at = slot * MAX_DATAGRAM;
        Some((from, &self.input[at..at + len.min(MAX_DATAGRAM)]))
    }

    /// Queues `reply` for `to`, sent by [`UdpBatch::send`].
    pub fn reply(&mut self, to: SocketAddr, reply: &[u8]) {
        self.replies.extend_from_slice(reply);
        self.outgoing.push((self.replies.len(), to));
    }

    /// Sends the queued replies, best effort: what the socket refuses is
    /// dropped (UDP may drop it anyway), and counted in the result.
    pub fn send(&mut self, socket: &UdpSocket) -> usize {
        #[cfg(target_os = "linux")]
        let dropped = linux::send(socket, &self.replies, &self.outgoing);
        #[cfg(not(target_os = "linux"))]
        let dropped = {
            let mut dropped = 0;
            let mut start = 0;
            for &(end, to) in &self.outgoing {
                if socket.send_to(&self.replies[start..end], to).is_err() {
                    dropped += 1;
                }
                start = end;
            }
            dropped
        };
        self.replies.clear();
        self.outgoing.clear();
        dropped
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{BATCH, MAX_DATAGRAM};
    use mio::net::UdpSocket;
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    /// The kernel's view of a batch, on the stack of each call (its
    /// pointers point into the caller's buffers and into itself, so it
    /// is neither kept nor moved while they are in use).
    struct Scratch {
        headers: [libc::mmsghdr; BATCH],
        iovecs: [libc::iovec; BATCH],
        names: [libc::sockaddr_storage; BATCH],
    }

    impl Scratch {
        fn new() -> Scratch {
            // SAFETY: all three are plain C structs for which all-zero
            // bytes are a valid (empty) value.
            unsafe { zeroed() }
        }

        /// Points header `i` at iovec `i` and name `i`.
        fn link(&mut self, i: usize, name_len: libc::socklen_t) {
            let h = &mut self.headers[i];
            // SAFETY: zero is a valid msghdr; the pointers stay valid for
            // the call that follows (no vector here is resized meanwhile).
            h.msg_hdr = unsafe { zeroed() };
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = name_len;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_len = 0;
        }
    }

    pub fn recv(
        socket: &UdpSocket,
        input: &mut [u8],
        received: &mut Vec<(SocketAddr, usize, usize)>,
    ) -> io::Result<bool> {
        let mut scratch = Scratch::new();
        let s = &mut scratch;
        let slots = (input.len() / MAX_DATAGRAM).min(BATCH);
        for i in 0..slots {
            s.iovecs[i] = libc::iovec {
                iov_base: input[i * MAX_DATAGRAM..].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            s.link(i, size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        }
        // SAFETY: `headers[..slots]` point at `slots` iovecs of
        // MAX_DATAGRAM bytes each inside `input` and at as many
        // sockaddr_storage, all alive and unaliased during the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                s.headers.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for i in 0..n as usize {
            let len = s.headers[i].msg_len as usize;
            // A source in a family this code does not know cannot be
            // answered: skip the datagram.
            if let Some(from) = to_socket_addr(&s.names[i]) {
                received.push((from, i, len));
            }
        }
        Ok(n as usize == slots)
    }

    /// Sends every reply, a batch per call; returns how many were dropped.
    pub fn send(socket: &UdpSocket, replies: &[u8], outgoing: &[(usize, SocketAddr)]) -> usize {
        let mut scratch = Scratch::new();
        let s = &mut scratch;
        let mut dropped = 0;
        let mut start = 0;
        for chunk in outgoing.chunks(BATCH) {
            for (i, &(end, to)) in chunk.iter().enumerate() {
                s.iovecs[i] = libc::iovec {
                    // sendmmsg only reads through this pointer.
                    iov_base: replies[start..end].as_ptr() as *mut libc::c_void,
                    iov_len: end - start,
                };
                let len = from_socket_addr(to, &mut s.names[i]);
                s.link(i, len);
                start = end;
            }
            let mut sent = 0;
            while sent < chunk.len() {
                // SAFETY: headers[sent..chunk.len()] point at iovecs into
                // `replies` and at filled sockaddr_storage, alive for the call.
                let n = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        s.headers[sent..].as_mut_ptr(),
                        (chunk.len() - sent) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    sent += n as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                if n < 0 && e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first unsent reply failed (full buffer, unreachable
                // client, ...): drop it and go on with the rest.
                log::debug!("udp reply dropped: {e}");
                dropped += 1;
                sent += 1;
            }
        }
        dropped
    }

    fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(ss.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // and sockaddr_storage is large and aligned enough for it.
                let sa =
                    unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sa.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let sa =
                    unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sa.sin6_port),
                    sa.sin6_flowinfo,
                    sa.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    fn from_socket_addr(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for
                // a sockaddr_in; every field is written below.
                let sa = unsafe {
                    &mut *(ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                sa.sin_zero = [0; 8];
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let sa = unsafe {
                    &mut *(ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_flowinfo = a.flowinfo();
                sa.sin6_addr.s6_addr = a.ip().octets();
                sa.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn socket_addresses_survive_the_c_form() {
            for addr in ["127.0.0.3:6881", "[::1]:51413", "[fe80::1%2]:80"] {
                let addr: SocketAddr = addr.parse().unwrap();
                // SAFETY: zero is a valid sockaddr_storage.
                let mut ss = unsafe { zeroed() };
                from_socket_addr(addr, &mut ss);
                assert_eq!(to_socket_addr(&ss), Some(addr));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_comes_in_and_its_replies_go_out() {
        let server = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 3], to).unwrap();
        }
        let mut b = UdpBatch::default();
        let mut got = Vec::new();
        for _ in 0..500 {
            match b.recv(&server) {
                Ok((n, _)) => {
                    for i in 0..n {
                        let (from, bytes) = b.datagram(i).unwrap();
                        got.push(bytes.to_vec());
                        b.reply(from, &[bytes[0] + 100]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                Err(e) => panic!("{e}"),
            }
            if got.len() == 5 {
                break;
            }
        }
        assert_eq!(got, (0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>());
        assert_eq!(b.send(&server), 0);
        let mut buf = [0u8; 8];
        for i in 0..5u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i + 100]);
        }
    }
}
