//! The `sta` command-line client's library: the control socket client,
//! the progress bar of a download, text formatting, `sta ls`'s listing
//! and `sta demo`.
//! `src/bin/sta.rs` holds only argument parsing and the commands.

pub mod ca;
pub mod client;
pub mod demo;
pub mod format;
pub mod ls;
pub mod progress;
pub mod torrent;
