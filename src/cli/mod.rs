//! What the `sta` command-line client shares with `sta demo`: the control
//! socket client, the progress bar of a download, and text formatting.
//! `src/bin/sta.rs` holds only argument parsing and the commands.

pub mod client;
pub mod files;
pub mod format;
pub mod progress;
pub mod torrent;
