//! Signals as readiness events: the signal handler writes a byte to a
//! socket pair whose read end sits in the poll set (mio has no signal
//! support of its own). SIGINT and SIGTERM share one pair (stop); SIGHUP
//! has its own (reload the configuration).

use mio::net::UnixStream;
use std::io::{self, Read};

pub struct Signals {
    read: UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    /// SIGINT and SIGTERM.
    pub fn stop() -> io::Result<Signals> {
        Signals::new(&[signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
    }

    /// SIGHUP.
    pub fn reload() -> io::Result<Signals> {
        Signals::new(&[signal_hook::consts::SIGHUP])
    }

    fn new(signals: &[libc::c_int]) -> io::Result<Signals> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        let mut ids = Vec::new();
        for &sig in signals {
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                write.try_clone()?,
            )?);
        }
        Ok(Signals {
            read: UnixStream::from_std(read),
            ids,
        })
    }

    pub fn source(&mut self) -> &mut UnixStream {
        &mut self.read
    }

    /// Drains the pipe; true if a signal was delivered.
    pub fn received(&mut self) -> bool {
        let mut buf = [0u8; 64];
        let mut got = false;
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => return got,
                Ok(_) => got = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return got,
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
