//! A TCP connection from a chosen source address. One source address has
//! only the ephemeral port range (about 28,000 ports) toward one tracker
//! address, so a fleet of 50,000 sessions on loopback comes from several
//! (127.0.0.1, 127.0.0.2, ...): std cannot bind before connecting.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[cfg(target_os = "linux")]
const IP_BIND_ADDRESS_NO_PORT: libc::c_int = 24;

/// Connects (blocking) from `source`, port left to the kernel, to `to`.
pub fn connect_from(source: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let (IpAddr::V4(src), SocketAddr::V4(dst)) = (source, to) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "source addresses are IPv4 only",
        ));
    };
    // SAFETY: plain socket calls on a descriptor this function owns (and
    // hands to OwnedFd at once, so that every error path closes it); the
    // sockaddr structures outlive the calls that read them.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let raw = fd.as_raw_fd();
        // Picks the port at connect, by the whole 4-tuple, rather than at
        // bind (where every source port would count against one range).
        #[cfg(target_os = "linux")]
        {
            let one: libc::c_int = 1;
            libc::setsockopt(
                raw,
                libc::IPPROTO_IP,
                IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let sockaddr = |ip: std::net::Ipv4Addr, port: u16| {
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = port.to_be();
            sa.sin_addr.s_addr = u32::from(ip).to_be();
            sa
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let from = sockaddr(src, 0);
        if libc::bind(raw, (&from as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let dest = sockaddr(*dst.ip(), dst.port());
        if libc::connect(raw, (&dest as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TcpStream::from(fd))
    }
}
