//! The settings of `sta-trackerd`, declared once: its help, environment
//! variables, config file keys and README.md's table come from here.

use super::setting::{Setting, Spec, Unset};
pub use super::{CONFIG, HTTP, LISTEN_V6, LOG_LEVEL};

pub const SPEC: Spec = Spec {
    program: "sta-trackerd",
    env_prefix: "STA_TRACKERD",
    settings: &[
        LISTEN,
        LOG_LEVEL,
        MAX_CONNECTIONS,
        IDLE_TIMEOUT,
        MAX_FILES_PER_PEER,
        MAX_PEERS_PER_ANSWER,
        MAX_FILES,
        LISTEN_V6,
        UDP_LISTEN,
        HTTP_LISTEN,
        ANNOUNCE_INTERVAL,
        MAX_BT_PEERS,
        HTTP,
        API_TOKEN_FILE,
        MAX_SESSIONS_PER_IP,
        IP_REQUEST_RATE,
        IP_REQUEST_BURST,
        BAN_FILE,
        super::TLS_CERT,
        super::TLS_KEY,
        super::TLS_CA,
        CONFIG,
    ],
};

pub const LISTEN: Setting = Setting::new(
    "--listen",
    "ADDR:PORT",
    Unset::Value("0.0.0.0:6969"),
    "address to listen on",
);
pub const MAX_CONNECTIONS: Setting = Setting::new(
    "--max-connections",
    "N",
    Unset::Value("10000"),
    "concurrent sessions",
);
pub const IDLE_TIMEOUT: Setting = Setting::new(
    "--idle-timeout",
    "SECS",
    Unset::Value("120"),
    "close sessions silent this long",
);
pub const MAX_FILES_PER_PEER: Setting = Setting::new(
    "--max-files-per-peer",
    "N",
    Unset::Value("10000"),
    "files one session may hold",
);
pub const MAX_PEERS_PER_ANSWER: Setting = Setting::new(
    "--max-peers-per-answer",
    "N",
    Unset::Value("200"),
    "peers in one get-peers answer",
);
pub const MAX_FILES: Setting = Setting::new(
    "--max-files",
    "N",
    Unset::Value("1000000"),
    "files in the catalog",
);
pub const UDP_LISTEN: Setting = Setting::new(
    "--udp-listen",
    "ADDR:PORT",
    Unset::Computed(
        "the address and port of the bound --listen socket; a failed bind of \
         that default only logs a warning",
    ),
    "serve BitTorrent clients over UDP (BEP 15), or `off`",
);
pub const HTTP_LISTEN: Setting = Setting::new(
    "--http-listen",
    "ADDR:PORT",
    Unset::Value("off"),
    "also serve BitTorrent clients over HTTP (BEP 3, BEP 23 compact peers)",
);
pub const ANNOUNCE_INTERVAL: Setting = Setting::new(
    "--announce-interval",
    "SECS",
    Unset::Value("60"),
    "BitTorrent re-announce interval; a BitTorrent peer is forgotten after \
     twice this",
);
pub const MAX_BT_PEERS: Setting = Setting::new(
    "--max-bt-peers",
    "N",
    Unset::Value("1000000"),
    "BitTorrent peers across all files",
);

pub const MAX_SESSIONS_PER_IP: Setting = Setting::new(
    "--max-sessions-per-ip",
    "N",
    Unset::Value("0"),
    "concurrent STA sessions from one source address (0: no limit)",
);
pub const IP_REQUEST_RATE: Setting = Setting::new(
    "--ip-request-rate",
    "N",
    Unset::Value("0"),
    "requests per second from one source address, STA, UDP and HTTP together (0: no limit)",
);
pub const IP_REQUEST_BURST: Setting = Setting::new(
    "--ip-request-burst",
    "N",
    Unset::Computed("twice --ip-request-rate"),
    "requests one source address may send at once",
);
pub const BAN_FILE: Setting = Setting::new(
    "--ban-file",
    "PATH",
    Unset::Nothing,
    "addresses refused: one IP or CIDR network a line, `#` comments; re-read on SIGHUP",
);

pub const API_TOKEN_FILE: Setting = Setting::new(
    "--api-token-file",
    "PATH",
    Unset::Nothing,
    "file whose first line is the API token (or set STA_TRACKERD_API_TOKEN); the tracker's API has no write request yet",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The default is also the cap the daemon enforces.
    #[test]
    fn peers_per_answer_default_is_the_limit() {
        let limit = crate::limits::MAX_PEERS_PER_ANSWER.to_string();
        assert!(matches!(MAX_PEERS_PER_ANSWER.unset, Unset::Value(v) if v == limit));
    }
}
