//! Giving freed memory back to the system while the service runs.
//!
//! glibc's allocator keeps memory freed by a thread in that thread's arena, and a server's
//! threads free in a different mix than they allocate (live histories, reloaded models,
//! request buffers), so without help its RSS creeps up for minutes though what it holds is
//! bounded. `malloc_trim` returns the free pages of every arena; a background thread calls it
//! every few seconds (a few milliseconds each time). Other platforms: nothing to do.

use std::time::Duration;

/// Returns free heap pages to the system now (glibc; elsewhere a no-op).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim has no preconditions; it takes the arena locks itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts a thread that calls [`trim`] every `every`, for the life of the process.
pub fn trim_every(every: Duration) {
    std::thread::Builder::new()
        .name("tandem-trim".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            trim();
        })
        .map(drop)
        .unwrap_or_else(|e| eprintln!("tandem serve: memory trimming not started: {e}"));
}
