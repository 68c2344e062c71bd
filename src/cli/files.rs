//! File checks shared by `sta demo` and the benchmarks.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes read per step when comparing files.
const CHUNK: usize = 4 << 20;

/// Why two files could not be compared.
#[derive(Debug)]
pub enum CompareError {
    /// `stop` was set (Ctrl-C).
    Interrupted,
    /// A file could not be opened or read; the message names it.
    Io(String),
}

/// The first offset where the files differ (a length difference counts),
/// or `None` when they are identical. Checks `stop` between chunks.
pub fn first_difference(
    a: &Path,
    b: &Path,
    stop: &AtomicBool,
) -> Result<Option<u64>, CompareError> {
    let open = |p: &Path| {
        File::open(p).map_err(|e| CompareError::Io(format!("cannot open {}: {e}", p.display())))
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut offset = 0u64;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(CompareError::Interrupted);
        }
        let read = |f: &mut File, buf: &mut [u8], p: &Path| {
            read_full(f, buf).map_err(|e| CompareError::Io(format!("{}: {e}", p.display())))
        };
        let na = read(&mut fa, &mut ba, a)?;
        let nb = read(&mut fb, &mut bb, b)?;
        if ba[..na] != bb[..nb] {
            let i = ba[..na].iter().zip(&bb[..nb]).position(|(x, y)| x != y);
            return Ok(Some(offset + i.unwrap_or(na.min(nb)) as u64));
        }
        if na == 0 {
            return Ok(None);
        }
        offset += na as u64;
    }
}

/// Fills `buf` as far as the file goes.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
