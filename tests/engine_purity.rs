//! The peer engine is sans-IO: no sockets, files, threads or clock of its
//! own. This reads its sources and fails on any module that reaches for
//! them (the shell in src/peer/ and the simulator do that for it).

use std::path::Path;

#[test]
fn engine_modules_touch_no_socket_file_thread_or_clock() {
    let forbidden = [
        "mio",
        "crate::reactor",
        "std::fs",
        "std::thread",
        "std::net::Tcp",
        "std::net::Udp",
        "std::os",
        "Instant",
        "SystemTime",
        "libc",
        "memmap2",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in forbidden {
                assert!(
                    !code.contains(word),
                    "{}:{}: the engine must not use {word}: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} engine files found");
}
