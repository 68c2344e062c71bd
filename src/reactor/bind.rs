//! IPv6 sockets that carry IPv6 only (`IPV6_V6ONLY`), so that a daemon can
//! listen on `0.0.0.0:P` and `[::]:P` side by side whatever the host's
//! `net.ipv6.bindv6only` says (a single `[::]` socket loses IPv4 where it
//! is 1, and collides with the IPv4 socket where it is 0). std and mio set
//! no such option, hence the few raw calls.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};

/// A TCP listener on `addr`; an IPv6 address is bound `IPV6_V6ONLY`.
pub fn tcp_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    if addr.is_ipv4() {
        return mio::net::TcpListener::bind(addr);
    }
    let fd = v6only_socket(addr, libc::SOCK_STREAM)?;
    // SAFETY: `fd` is a bound stream socket we own; listen takes no memory.
    if unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&fd), 1024) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let std = std::net::TcpListener::from(fd);
    std.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(std))
}

/// A UDP socket on `addr`; an IPv6 address is bound `IPV6_V6ONLY`.
pub fn udp_socket(addr: SocketAddr) -> io::Result<mio::net::UdpSocket> {
    if addr.is_ipv4() {
        return mio::net::UdpSocket::bind(addr);
    }
    let std = std::net::UdpSocket::from(v6only_socket(addr, libc::SOCK_DGRAM)?);
    std.set_nonblocking(true)?;
    Ok(mio::net::UdpSocket::from_std(std))
}

fn v6only_socket(addr: SocketAddr, kind: libc::c_int) -> io::Result<OwnedFd> {
    let SocketAddr::V6(v6) = addr else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    // SAFETY: plain socket creation; the descriptor is owned at once.
    let raw = unsafe { libc::socket(libc::AF_INET6, kind | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    for (level, name) in [
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR),
    ] {
        // SAFETY: `one` outlives the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                level,
                name,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let sa = libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: v6.port().to_be(),
        sin6_flowinfo: v6.flowinfo(),
        sin6_addr: libc::in6_addr {
            s6_addr: v6.ip().octets(),
        },
        sin6_scope_id: v6.scope_id(),
    };
    // SAFETY: `sa` is a valid sockaddr_in6 whose size is passed.
    let rc = unsafe {
        libc::bind(
            raw,
            (&sa as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_wildcards_share_a_port() {
        let v4 = tcp_listener("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = tcp_listener(format!("[::]:{port}").parse().unwrap()).unwrap();
        assert_eq!(v6.local_addr().unwrap().port(), port);
        let u4 = udp_socket(format!("0.0.0.0:{port}").parse().unwrap()).unwrap();
        let u6 = udp_socket(format!("[::]:{port}").parse().unwrap()).unwrap();
        assert!(u4.local_addr().is_ok() && u6.local_addr().is_ok());
    }
}
