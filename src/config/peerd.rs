//! The settings of `sta-peerd`, declared once: its help, environment
//! variables, config file keys and README.md's table come from here.

use super::setting::{Setting, Spec, Unset};
pub use super::{CONFIG, HTTP, LISTEN_V6, LOG_LEVEL};

pub const SPEC: Spec = Spec {
    program: "sta-peerd",
    env_prefix: "STA_PEERD",
    settings: &[
        TRACKER,
        LISTEN,
        LISTEN_V6,
        DIR,
        CONTROL,
        PIECE_SIZE,
        MAX_PEERS,
        UPLOAD_SLOTS,
        HASH_THREADS,
        MAX_UPLOAD_RATE,
        MAX_DOWNLOAD_RATE,
        LOG_LEVEL,
        HTTP,
        API_TOKEN_FILE,
        SHARE,
        PRIVATE_SHARES,
        DHT,
        DHT_BOOTSTRAP,
        super::TLS_CERT,
        super::TLS_KEY,
        super::TLS_CA,
        CONFIG,
    ],
};

pub const TRACKER: Setting = Setting::new(
    "--tracker",
    "ADDR:PORT",
    Unset::Computed("none"),
    "the sta-trackerd to use (a host name is fine); for several, repeat the flag (or the config line) or separate them with commas: each gets its own session and hears every announce. With none, files are found only through peers: `get` of an info hash or magnet link with x.pe peers works, `list` and `get NAME` do not",
)
.repeatable();
pub const LISTEN: Setting = Setting::new(
    "--listen",
    "ADDR:PORT",
    Unset::Value("0.0.0.0:6881"),
    "address for peer connections",
);
pub const DIR: Setting = Setting::new("--dir", "DIR", Unset::Value("."), "where downloads land");
pub const CONTROL: Setting = Setting::new(
    "--control",
    "PATH",
    Unset::Computed("DIR/sta-peerd.sock"),
    "control socket for `sta` (mode 0600)",
);
pub const PIECE_SIZE: Setting = Setting::new(
    "--piece-size",
    "BYTES",
    Unset::Value("524288"),
    "piece size for files shared here, a power of two from 16384 to 16777216",
);
pub const MAX_PEERS: Setting =
    Setting::new("--max-peers", "N", Unset::Value("50"), "peers per file");
pub const PRIVATE_SHARES: Setting = Setting::new(
    "--private-shares",
    "BOOL",
    Unset::Value("false"),
    "`true`: files shared here are private (BEP 27 `private=1`, a new info hash): a tracker shows them only to TLS sessions, no DHT or PEX",
);
pub const DHT: Setting = Setting::new(
    "--dht",
    "BOOL",
    Unset::Value("true"),
    "run a BitTorrent DHT node (BEP 5) on the UDP twin of the peer port, announcing every non-private file and finding peers of downloads; it reaches only the nodes of --dht-bootstrap and those they name (none by default); off with TLS",
);
pub const DHT_BOOTSTRAP: Setting = Setting::new(
    "--dht-bootstrap",
    "HOST:PORT",
    Unset::Nothing,
    "a DHT node to join through (repeat the flag or separate with commas), e.g. router.bittorrent.com:6881 for the public DHT; the table saved in DIR/sta-peerd.dht is asked too",
)
.repeatable();
pub const UPLOAD_SLOTS: Setting = Setting::new(
    "--upload-slots",
    "N",
    Unset::Value("4"),
    "peers served at once per file (a seed serves one more while more peers than that want its pieces; a downloader whose upload idles lends up to 4 more until the next 10 s round; 0: upload nothing)",
);
pub const HASH_THREADS: Setting = Setting::new(
    "--hash-threads",
    "N",
    Unset::Computed("number of cores"),
    "SHA1 threads",
);
pub const MAX_UPLOAD_RATE: Setting = Setting::new(
    "--max-upload-rate",
    "RATE",
    Unset::Value("0"),
    "upload limit in bytes per second, not bits, to all peers together: 50M, 1.5G, 800k (k, M, G = 10^3, 10^6, 10^9; Ki, Mi, Gi = 2^10, 2^20, 2^30) or plain bytes; 0 = unlimited; `sta limits` changes it",
);
pub const MAX_DOWNLOAD_RATE: Setting = Setting::new(
    "--max-download-rate",
    "RATE",
    Unset::Value("0"),
    "download limit in bytes per second, not bits, from all peers together, written as for --max-upload-rate",
);
pub const API_TOKEN_FILE: Setting = Setting::new(
    "--api-token-file",
    "PATH",
    Unset::Nothing,
    "file whose first line is the token the API's write requests must carry (or set STA_PEERD_API_TOKEN)",
);
pub const SHARE: Setting = Setting::new(
    "--share",
    "FILE",
    Unset::Nothing,
    "share FILE at start (repeatable; not in env/config)",
)
.flag_only();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{DEFAULT_PIECE_LENGTH, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH};

    /// What the text says must be what the code does.
    #[test]
    fn texts_match_the_constants_they_describe() {
        let default = DEFAULT_PIECE_LENGTH.to_string();
        assert!(matches!(PIECE_SIZE.unset, Unset::Value(v) if v == default));
        let range = format!("from {MIN_PIECE_LENGTH} to {MAX_PIECE_LENGTH}");
        assert!(PIECE_SIZE.help.contains(&range), "{}", PIECE_SIZE.help);
        let socket = format!("DIR/{}", crate::control::SOCKET_NAME);
        assert!(matches!(CONTROL.unset, Unset::Computed(how) if how == socket));
    }
}
