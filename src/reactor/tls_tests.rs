//! The reactor with a TLS listener, on real loopback sockets: megabytes
//! both ways through its queues and backpressure, and a plain-text knock
//! in the middle that costs the TLS session nothing.

use super::*;
use crate::tls::ca;
use crate::tls::config::{self, TlsConfig};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::TcpStream as StdStream;

/// Echoes everything on listener 0; `stop` on listener 1 ends the loop.
struct Echo;

impl Handler for Echo {
    type Session = usize;

    fn open(
        &mut self,
        _ctx: &mut Ctx<usize>,
        _id: ConnId,
        listener: usize,
        _peer: Option<SocketAddr>,
        _out: &mut OutQueue,
    ) -> Option<usize> {
        Some(listener)
    }

    fn data(
        &mut self,
        ctx: &mut Ctx<usize>,
        _id: ConnId,
        listener: &mut usize,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        match *listener {
            0 => out.push(input),
            _ if input.starts_with(b"stop") => ctx.stop(),
            _ => {}
        }
        Flow {
            used: input.len(),
            close: false,
        }
    }

    fn close(&mut self, _ctx: &mut Ctx<usize>, _id: ConnId, _session: usize) {}
}

fn identities() -> (TlsConfig, TlsConfig) {
    let now = crate::tls::files::now_secs();
    let authority = ca::new_ca(now, 30).unwrap();
    let make = |name: &str| {
        let host = ca::issue(
            &authority.cert_pem,
            &authority.key_pem,
            &[name.into()],
            now,
            1,
        )
        .unwrap();
        config::build(
            host.cert_pem.as_bytes(),
            host.key_pem.as_bytes(),
            authority.cert_pem.as_bytes(),
            Arc::new(config::FixedClock(now as u64)),
        )
        .unwrap()
    };
    (make("127.0.0.1"), make("client"))
}

#[test]
fn megabytes_echo_through_a_tls_listener_while_plain_text_knocks() {
    let (server, client) = identities();
    let tls_listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let plain_listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (tls_addr, plain_addr) = (
        tls_listener.local_addr().unwrap(),
        plain_listener.local_addr().unwrap(),
    );
    let mut reactor = Reactor::<Echo>::new(Limits {
        max_connections: 16,
        idle_timeout: Duration::from_secs(60),
        read_buffer: 64 * 1024,
        max_read_buffer: 256 * 1024,
        // Small, so that backpressure pauses reading during the test.
        write_high_water: 2 << 20,
        tick: Duration::from_millis(100),
        send_later: Duration::from_millis(25),
    })
    .unwrap();
    let index = reactor.listen(Listener::Tcp(tls_listener)).unwrap();
    reactor.listen(Listener::Tcp(plain_listener)).unwrap();
    reactor.set_listener_tls(index, Some(server.server.clone()));
    // The client in a thread, the loop here (it is not Send); the client
    // stops the loop at the end, whatever happened, then its result counts.
    let client_thread = std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let conn = rustls::ClientConnection::new(client.client.clone(), name).unwrap();
            let tcp = StdStream::connect(tls_addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);

            const CHUNK: usize = 1 << 20;
            let mut echoed = vec![0u8; CHUNK];
            for round in 0..12u32 {
                let chunk: Vec<u8> = (0..CHUNK as u32)
                    .map(|i| (i.wrapping_mul(31) ^ round) as u8)
                    .collect();
                tls.write_all(&chunk).unwrap();
                tls.flush().unwrap();
                if round == 5 {
                    let mut knock = StdStream::connect(tls_addr).unwrap();
                    knock
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    knock.write_all(b"\x00\x00\x00\x05\x01hello").unwrap();
                    let mut answer = Vec::new();
                    let _ = knock.read_to_end(&mut answer);
                    assert_eq!(answer.first(), Some(&0x15), "an alert, then the end");
                }
                tls.read_exact(&mut echoed).unwrap();
                assert!(echoed == chunk, "round {round}: the echo differs");
            }
        }));
        if let Ok(mut s) = StdStream::connect(plain_addr) {
            let _ = s.write_all(b"stop");
        }
        result
    });
    reactor.run(&mut Echo).unwrap();
    if let Err(panic) = client_thread.join().unwrap() {
        std::panic::resume_unwind(panic);
    }
}
