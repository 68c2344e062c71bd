//! The kit STA's tests, benchmarks and `sta demo` share to run the real
//! daemons as child processes and to feed them files: a guard that stops a
//! child by its pid, its output line by line, /proc figures, generated
//! files, scratch directories and free ports.
//!
//! It knows nothing of STA's protocols (the `sta` crate depends on it, for
//! `sta demo`, so it cannot depend on `sta`). Everything returns a
//! `Result` or an `Option`: what is worth a panic is the caller's call.

pub mod files;
pub mod net;
pub mod process;
pub mod procfs;
pub mod random;
pub mod wait;
