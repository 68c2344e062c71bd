//! Reading a memory-mapped file that another process may shrink.
//!
//! Touching a mapped page past the end of a truncated file raises SIGBUS,
//! which would kill the daemon. Hashing straight from the map saves a copy
//! per byte (a `pread` into a buffer), so reads of mapped bytes go through
//! [`read`]: it marks the range the calling thread is about to read, and
//! our SIGBUS handler, finding the fault inside that range, maps a page of
//! zeros over the missing one and records the fault. The read finishes on
//! zeros, and [`read`] reports an error instead of its result. A fault
//! anywhere else is a real crash: the handler restores the default action
//! and the faulting access runs again, killing the process as usual.

use std::cell::Cell;
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering, compiler_fence};

/// Slices one guarded read may cover at most (as many as one vectored
/// socket write takes from an output queue).
pub const MAX_SLICES: usize = 64;

thread_local! {
    /// The mapped bytes this thread is reading, as address ranges: the
    /// first `COUNT` of them.
    static RANGES: [Cell<(usize, usize)>; MAX_SLICES] =
        const { [const { Cell::new((0, 0)) }; MAX_SLICES] };
    static COUNT: Cell<usize> = const { Cell::new(0) };
    /// Whether a page of that range was missing.
    static FAULTED: Cell<bool> = const { Cell::new(false) };
}

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
static INSTALL: Once = Once::new();

/// Runs `f` on `bytes`, a slice of a file mapping. `Err` if part of it was
/// gone from the file (truncated by someone else, or unreadable).
pub fn read<R>(bytes: &[u8], f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
    read_slices(&[io::IoSlice::new(bytes)], || f(bytes))
}

/// Runs `f`, which reads `slices` (some of them, or all, mapped: the
/// slices of a vectored write handed to TLS, which seals them in user
/// space where `writev` would have let the kernel read them). `Err` as
/// for [`read`]; at most [`MAX_SLICES`] are guarded, the first ones.
pub fn read_slices<R>(slices: &[io::IoSlice<'_>], f: impl FnOnce() -> R) -> io::Result<R> {
    INSTALL.call_once(install);
    RANGES.with(|ranges| {
        for (range, s) in ranges.iter().zip(slices) {
            let start = s.as_ptr() as usize;
            range.set((start, start + s.len()));
        }
    });
    COUNT.with(|c| c.set(slices.len().min(MAX_SLICES)));
    FAULTED.with(|x| x.set(false));
    // Keep every access to the slices between setting and clearing them.
    compiler_fence(Ordering::SeqCst);
    let out = f();
    compiler_fence(Ordering::SeqCst);
    COUNT.with(|c| c.set(0));
    if FAULTED.with(Cell::get) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank or could not be read while being hashed",
        ));
    }
    Ok(out)
}

fn install() {
    // SAFETY: sysconf only reads its argument.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if let Ok(page) = usize::try_from(page)
        && page.is_power_of_two()
    {
        PAGE_SIZE.store(page, Ordering::Relaxed);
    }
    // SAFETY: a zeroed sigaction is valid; the handler has the three-
    // argument form SA_SIGINFO asks for and only makes async-signal-safe
    // calls (mmap, sigaction) and thread-local accesses with constant
    // initialisers (no lazy set-up, no destructor).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            log::warn!(
                "cannot install the SIGBUS handler: {}",
                io::Error::last_os_error()
            );
        }
    }
}

extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let count = COUNT.with(Cell::get);
    let inside = RANGES.with(|ranges| {
        ranges.iter().take(count).any(|r| {
            let (start, end) = r.get();
            (start..end).contains(&addr)
        })
    });
    if inside {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let at = addr & !(page - 1);
        // SAFETY: the page lies in a mapping this thread is reading through
        // `read`; replacing it with zeros only changes what that read sees.
        let mapped = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            FAULTED.with(|x| x.set(true));
            return;
        }
    }
    // SAFETY: resetting a signal's action to the default is always valid.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_truncated_under_its_map_reads_as_an_error() {
        let path = std::env::temp_dir().join(format!("sta-guarded-{}", std::process::id()));
        let mut file = crate::storage::tests::open_rw(&path);
        file.write_all(&vec![1u8; 64 * 1024]).unwrap();
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let sum = |b: &[u8]| b.iter().map(|&x| u64::from(x)).sum::<u64>();
        assert_eq!(read(&map, sum).unwrap(), 64 * 1024);

        file.set_len(4096).unwrap();
        let err = read(&map, sum).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // The bytes still in the file read as before; the rest as zeros.
        assert_eq!(read(&map[..4096], sum).unwrap(), 4096);
        std::fs::remove_file(&path).unwrap();
    }
}
