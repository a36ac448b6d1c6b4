//! Handing memory the C libraries freed back to the operating system.

/// Hands back what librdkafka and SQLite freed: they allocate through glibc's malloc, whose
/// per-thread arenas keep freed memory (the Rust code uses mimalloc). Blocking (it walks the
/// arenas): call it off the async workers. A no-op on other C libraries.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of glibc's own heaps; it has no
    // preconditions and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
