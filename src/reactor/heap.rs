//! How the process's allocator treats freed memory, where TLS needs it.
//!
//! rustls allocates each 16 KiB record it seals, and keeps it until the
//! socket takes it (records go from rustls to the socket, see
//! `TlsStream::flush_pending`): a TLS upload holds up to 256 KiB of
//! records at the top of the heap and frees them all at every flush.
//! glibc gives freed memory at the top back to the system past 128 KiB
//! (`M_TRIM_THRESHOLD`), so every flush shrank the heap and the next
//! records faulted in fresh zeroed pages: one minor fault per 8 KiB sent,
//! 0.5 s per GiB of the seeder's system time more in bench/tls.sh.

use std::sync::Once;

/// Free memory at the top of the heap that glibc keeps for reuse instead
/// of giving it back: far more than what a connection's records in
/// flight take (256 KiB each), small next to a daemon's mappings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 32 * 1024 * 1024;

static KEEP: Once = Once::new();

/// Once per process: freed heap memory is kept for the next records.
/// Other allocators (musl's, other systems') are left as they are.
pub(super) fn keep_freed_memory() {
    KEEP.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets an allocator parameter; it returns 0
        // when it refuses the value, which leaves glibc's own.
        unsafe {
            if libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 0 {
                log::debug!("glibc refused M_TRIM_THRESHOLD {TRIM_THRESHOLD}");
            }
        }
    });
}
