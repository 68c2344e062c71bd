//! Loopback ports for daemons that must be told one (a daemon that can
//! take port 0 and print what it got should be given port 0 instead: a
//! port found free here may be taken by the time it binds).

use std::io;
use std::net::{Ipv4Addr, TcpListener};

/// A TCP port free on 127.0.0.1 at the moment of the call.
pub fn free_tcp_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_can_be_bound() {
        let port = free_tcp_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
