//! Scratch directories, free space, and comparing a download with its
//! source.

use std::ffi::CString;
use std::fs::{DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Bytes read per step when comparing files.
const CHUNK: usize = 4 << 20;

/// Bytes available to this user on the filesystem of `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a valid out pointer.
    let r = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    #[allow(clippy::unnecessary_cast)] // the field types vary by platform
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// `/dev/shm` where it exists (memory: gigabytes are written and read
/// fast), else the system's temporary directory.
pub fn shm_or_temp() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Creates a new directory `base/PREFIX-PID-N`, mode 0700 (other users
/// may share `base`), never one that exists already: a directory left by
/// an earlier run with the same pid is skipped, not reused.
pub fn fresh_dir(base: &Path, prefix: &str) -> io::Result<PathBuf> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut last = None;
    for _ in 0..1000 {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{prefix}-{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::AlreadyExists.into()))
}

/// A fresh directory (see [`fresh_dir`]), removed with everything in it
/// when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    pub fn create(base: &Path, prefix: &str) -> io::Result<TempDir> {
        Ok(TempDir {
            path: Some(fresh_dir(base, prefix)?),
        })
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// `self/name`, created (with its parents) if missing.
    pub fn subdir(&self, name: &str) -> io::Result<PathBuf> {
        let p = self.path().join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Removes the directory now, saying whether that worked (a drop
    /// cannot).
    pub fn remove(mut self) -> io::Result<()> {
        match self.path.take() {
            Some(p) => std::fs::remove_dir_all(p),
            None => Ok(()),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// The last `n` lines of the text file at `path` (a child's log, to
/// explain its failure); none if it cannot be read.
/// The last 10 lines of a child's log, as a message continues them when
/// it explains a failure ("; its last log lines: ..."), each line after
/// `indent`; empty when the log is.
pub fn log_tail(path: &Path, indent: &str) -> String {
    let tail = last_lines(path, 10);
    if tail.is_empty() {
        return String::new();
    }
    let sep = format!("\n{indent}");
    format!("; its last log lines:{sep}{}", tail.join(&sep))
}

pub fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Why two files could not be compared.
#[derive(Debug)]
pub enum CompareError {
    /// `stop` was set (Ctrl-C).
    Interrupted,
    /// A file could not be opened or read; the message names it.
    Io(String),
}

impl std::fmt::Display for CompareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompareError::Interrupted => f.write_str("interrupted"),
            CompareError::Io(message) => f.write_str(message),
        }
    }
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
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn temp_dirs_are_fresh_private_and_removed() {
        let base = std::env::temp_dir();
        let a = TempDir::create(&base, "kit-unit").unwrap();
        let b = TempDir::create(&base, "kit-unit").unwrap();
        assert_ne!(a.path(), b.path());
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let sub = a.subdir("x/y").unwrap();
        std::fs::write(sub.join("f"), b"1").unwrap();
        let kept = a.path().to_path_buf();
        drop(a);
        assert!(!kept.exists());
        let gone = b.path().to_path_buf();
        b.remove().unwrap();
        assert!(!gone.exists());
        assert!(free_bytes(&base).is_some_and(|n| n > 0));
        assert!(free_bytes(Path::new("/no/such/dir")).is_none());
        assert!(last_lines(&kept.join("f"), 3).is_empty());
    }

    #[test]
    fn files_compare() {
        let dir = TempDir::create(&std::env::temp_dir(), "kit-compare").unwrap();
        let stop = AtomicBool::new(false);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"hello world").unwrap();
        std::fs::write(&b, b"hello world").unwrap();
        assert_eq!(first_difference(&a, &b, &stop).unwrap(), None);
        std::fs::write(&b, b"hello World").unwrap();
        assert_eq!(first_difference(&a, &b, &stop).unwrap(), Some(6));
        std::fs::write(&b, b"hello").unwrap();
        assert_eq!(first_difference(&a, &b, &stop).unwrap(), Some(5));
        std::fs::write(&b, b"1\n2\n3\n4").unwrap();
        assert_eq!(last_lines(&b, 2), ["3", "4"]);
        stop.store(true, Ordering::SeqCst);
        assert!(matches!(
            first_difference(&a, &b, &stop),
            Err(CompareError::Interrupted)
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            first_difference(&a, &missing, &AtomicBool::new(false)),
            Err(CompareError::Io(m)) if m.contains("missing")
        ));
    }
}
