//! Where buffers that the kernel fills with large copies start. On the
//! development VM (AMD EPYC, Firecracker) the kernel's copy to user memory
//! runs about 3x slower to an address off a 32-byte boundary: `pread` of a
//! cached 1 GiB file in 16 KiB reads took 0.21-0.37 s of system time into
//! memory at offset 0, 32, 64 or 2048 of a page, 0.66-0.94 s at offset 1,
//! 8, 13 or 16 (writes do not care). glibc's allocations start 16 bytes
//! into their block, so such buffers are aligned by hand.

/// The boundary such buffers start on.
pub const ALIGN: usize = 64;

/// Bytes from `at` to the next boundary (0 on one).
pub fn gap(at: *const u8) -> usize {
    at.align_offset(ALIGN).min(ALIGN)
}

/// `len` bytes of `buf` from its first boundary on: `buf` holds `len +
/// ALIGN` bytes (or fewer ones are given).
pub fn slice_mut(buf: &mut [u8], len: usize) -> &mut [u8] {
    let at = gap(buf.as_ptr()).min(buf.len());
    let end = (at + len).min(buf.len());
    &mut buf[at..end]
}
