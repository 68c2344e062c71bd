//! The live progress of a download, as `sta get` and `sta demo` show it on
//! stderr: on a terminal a bar redrawn in place,
//! `[########------------]  42.0%  123.4 MB/s  ETA 0:12  peers 3`;
//! otherwise one plain line at most once per second.

use super::format::{clean, clock, human_bytes};
use crate::control::Progress;
use std::io::Write;
use std::time::{Duration, Instant};

const WAITING: &str = "waiting for peers that have the missing pieces...";
const BAR_WIDTH: usize = 20;

/// The progress of one download on stderr.
pub struct ProgressView {
    tty: bool,
    last_print: Option<Instant>,
    /// Characters of the bar currently drawn (0: none).
    drawn: usize,
    /// At least one progress event arrived.
    seen: bool,
}

impl ProgressView {
    /// `tty`: stderr is a terminal, so the bar can be redrawn in place.
    pub fn new(tty: bool) -> ProgressView {
        ProgressView {
            tty,
            last_print: None,
            drawn: 0,
            seen: false,
        }
    }

    /// Whether at least one progress event was shown.
    pub fn seen(&self) -> bool {
        self.seen
    }

    pub fn update(&mut self, p: &Progress) {
        self.seen = true;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let line = bar_line(p);
            let width = line.chars().count();
            let pad = " ".repeat(self.drawn.saturating_sub(width));
            let _ = write!(err, "\r{line}{pad}");
            let _ = err.flush();
            self.drawn = width;
        } else if self
            .last_print
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let _ = writeln!(err, "{}", plain_line(p));
            self.last_print = Some(Instant::now());
        }
    }

    /// Erases the bar, so that what follows starts on a clean line.
    pub fn clear(&mut self) {
        if self.drawn > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.drawn));
            let _ = err.flush();
            self.drawn = 0;
        }
    }
}

fn fraction(p: &Progress) -> f64 {
    if p.length > 0 {
        (p.bytes as f64 / p.length as f64).clamp(0.0, 1.0)
    } else if p.pieces > 0 {
        (f64::from(p.have) / f64::from(p.pieces)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// `42.0%`, never `100.0%` before the last byte.
fn percent(p: &Progress) -> String {
    let pct = fraction(p) * 100.0;
    if pct > 99.9 && p.bytes < p.length {
        "99.9%".to_owned()
    } else {
        format!("{pct:.1}%")
    }
}

fn eta(p: &Progress) -> String {
    if p.rate == 0 {
        return "--:--".to_owned();
    }
    clock(p.length.saturating_sub(p.bytes).div_ceil(p.rate))
}

/// `  files 3/10` for a tree (or a part of one), empty for one file.
fn files(p: &Progress) -> String {
    match p.files {
        0 | 1 => String::new(),
        n => format!("  files {}/{n}", p.files_done),
    }
}

/// `[#####-----]  42.0%  123.4 MB/s  ETA 0:12  peers 3  files 3/10`
pub fn bar_line(p: &Progress) -> String {
    let filled = ((fraction(p) * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled));
    if p.waiting {
        format!(
            "[{bar}] {:>6}  {WAITING}  peers {}{}",
            percent(p),
            p.peers,
            files(p)
        )
    } else {
        format!(
            "[{bar}] {:>6}  {:>8}/s  ETA {}  peers {}{}",
            percent(p),
            human_bytes(p.rate),
            eta(p),
            p.peers,
            files(p)
        )
    }
}

/// `disk.img: 42.0% (4.2 MB of 10.0 MB), 123.4 MB/s, ETA 0:12, 3 peers`
pub fn plain_line(p: &Progress) -> String {
    let head = format!(
        "{}: {} ({} of {}{})",
        clean(&p.name),
        percent(p),
        human_bytes(p.bytes),
        human_bytes(p.length),
        match p.files {
            0 | 1 => String::new(),
            n => format!("; {} of {n} files", p.files_done),
        }
    );
    if p.waiting {
        format!("{head}, {WAITING} ({} peers)", p.peers)
    } else {
        format!(
            "{head}, {}/s, ETA {}, {} peers",
            human_bytes(p.rate),
            eta(p),
            p.peers
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(bytes: u64, length: u64, rate: u64, waiting: bool) -> Progress {
        Progress {
            info_hash: [0; 20],
            name: "disk.img".into(),
            have: 0,
            pieces: 10,
            bytes,
            length,
            rate,
            peers: 3,
            waiting,
            files: 1,
            files_done: 0,
        }
    }

    #[test]
    fn a_tree_counts_its_files() {
        let mut p = progress(1000, 4000, 10, false);
        p.files = 12;
        p.files_done = 5;
        assert!(bar_line(&p).ends_with("files 5/12"), "{}", bar_line(&p));
        assert!(
            plain_line(&p).contains("; 5 of 12 files)"),
            "{}",
            plain_line(&p)
        );
        p.files = 1;
        assert!(!bar_line(&p).contains("files"));
    }

    #[test]
    fn progress_lines() {
        let p = progress(420, 1000, 123_400_000, false);
        assert_eq!(
            bar_line(&p),
            "[########------------]  42.0%  123.4 MB/s  ETA 0:01  peers 3"
        );
        assert_eq!(
            plain_line(&progress(420, 1000, 0, true)),
            format!("disk.img: 42.0% (420 B of 1.0 kB), {WAITING} (3 peers)")
        );
        assert_eq!(percent(&progress(999_999, 1_000_000, 1, false)), "99.9%");
        assert_eq!(percent(&progress(0, 0, 0, false)), "0.0%");
        assert_eq!(eta(&progress(0, 1000, 0, false)), "--:--");
        assert_eq!(eta(&progress(0, 12_000, 1000, false)), "0:12");
    }
}
