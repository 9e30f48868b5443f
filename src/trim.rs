//! The allocator's share of the daemon's memory (issue 14, measured with
//! `anyvip-lab-demo --memory`).
//!
//! glibc gives every thread that allocates its own malloc arena (64 MB of
//! address space, a few hundred KB resident each). anyvip's threads besides
//! the event loop (tokio's blocking pool running `nft` and `exec` checks)
//! allocate little, so one arena serves all ([`one_malloc_arena`]). Once the
//! daemon has settled, the heap that start-up (configuration, TLS setup,
//! the first sessions) left free goes back to the kernel
//! ([`release_free_heap`]).
//!
//! What is deliberately not done: unmapping the binary's code pages that
//! start-up used (`MADV_DONTNEED` on the text). It lowers RSS by about
//! 1 MB, but the pages the failure path runs (withdrawal, session reset,
//! BFD down) are rarely run, and mapped executable pages are what the
//! kernel keeps longest under memory pressure: unmapped, they would be
//! the first to go, and a failover would wait on the disk. A daemon whose
//! job is to fail over fast keeps its code mapped.

use std::time::Duration;

/// How long after the start the free heap is handed back: sessions and
/// checks normally run within seconds.
pub const SETTLE: Duration = Duration::from_secs(20);

/// One malloc arena for all threads. Called before any thread is started.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sets an allocator tunable; no memory is involved.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Give the allocator's free pages back to the kernel.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Resident memory of this process, from /proc/self/statm (pages).
    fn resident_pages() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn freed_heap_goes_back_to_the_kernel_and_allocation_goes_on() {
        // 32 MB in small blocks (below the mmap threshold: they come from
        // the heap), touched, then freed except the last: glibc keeps the
        // freed space below the top block unless it is trimmed.
        let mut blocks: Vec<Vec<u8>> = (0..512).map(|_| vec![1u8; 64 * 1024]).collect();
        let keep = blocks.pop();
        drop(blocks);
        let before = resident_pages();
        release_free_heap();
        let after = resident_pages();
        assert!(
            after + 2048 < before,
            "malloc_trim returned less than 8 MB: {before} -> {after} pages"
        );
        assert_eq!(
            keep.map(|b| b.iter().map(|&x| usize::from(x)).sum::<usize>()),
            Some(64 * 1024)
        );
        let again = vec![2u8; 1024 * 1024];
        assert_eq!(again.len(), 1024 * 1024);
    }
}
