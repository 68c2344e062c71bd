//! The peer engine and the DHT node are sans-IO: no sockets, files,
//! threads or clock of their own. This reads their sources and fails on
//! any module that reaches for them (the shell in src/peer/ and the
//! simulator do that for them).

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
    // The DHT node is sans-IO in the same way.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let entries = ["src/engine", "src/dht"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap());
    for entry in entries {
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
    assert!(checked >= 18, "only {checked} engine and DHT files found");
}
