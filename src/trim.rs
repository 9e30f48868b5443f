//! Memory the running daemon does not need (issue 14, measured with
//! `anyvip-lab-demo --memory`).
//!
//! Most of a running anyvip's RSS was its own binary, not its heap (about
//! 0.5 MB live): start-up (command line, configuration, TLS setup, the first
//! sessions and checks) runs code the steady state never runs again, and the
//! kernel leaves every page it mapped for it (and, by fault-around, its
//! neighbours) in the process until it exits. Once the daemon has settled,
//! [`release_startup_pages`] unmaps the binary's read-only pages: what the
//! loop still runs comes back at once as minor faults from the page cache,
//! the rest stays in the page cache only, where the kernel reclaims it like
//! any other file page instead of counting it to anyvip. Writable segments
//! (data, relocated pointers) are never touched: only segments the loader
//! mapped read-only straight from the file, whose pages are identical to
//! the file's.
//!
//! glibc's allocator: one arena for every thread ([`one_malloc_arena`]), as
//! the threads besides the loop (tokio's blocking pool running `nft` and
//! `exec` checks) allocate little; and free heap pages handed back to the
//! kernel after start-up (`malloc_trim`).

use std::time::Duration;

/// How long after the start the binary's pages are released: sessions and
/// checks normally run within seconds; a session that comes up later runs
/// code the others already brought back.
pub const SETTLE: Duration = Duration::from_secs(20);

/// One malloc arena for all threads. Called before any thread is started.
pub fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sets an allocator tunable; no memory is involved.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Unmap the pages of the binary's read-only segments, and give free heap
/// pages back. Returns the bytes of address range advised (for the log).
pub fn release_startup_pages() -> usize {
    let mut advised = 0;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the callback only reads the loader's program headers of
        // the main program (the first object dl_iterate_phdr reports) and
        // advises page ranges inside its non-writable PT_LOAD segments.
        unsafe {
            libc::dl_iterate_phdr(
                Some(advise_readonly),
                (&mut advised as *mut usize).cast::<libc::c_void>(),
            );
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
    advised
}

/// `dl_iterate_phdr` callback: MADV_DONTNEED over every whole page of the
/// main program's PT_LOAD segments that are not writable. Returns 1 after
/// the first object (the main program) to stop the iteration.
#[cfg(target_os = "linux")]
unsafe extern "C" fn advise_readonly(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid info for the duration of the call;
    // `data` is the `usize` release_startup_pages passed.
    let (info, advised) = unsafe { (&*info, &mut *data.cast::<usize>()) };
    // SAFETY: sysconf has no preconditions.
    let page = match usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) {
        Ok(p) if p.is_power_of_two() => p,
        _ => return 1,
    };
    if info.dlpi_phdr.is_null() {
        return 1;
    }
    // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    for h in headers {
        if h.p_type != libc::PT_LOAD || h.p_flags & libc::PF_W != 0 {
            continue;
        }
        let (Ok(base), Ok(vaddr), Ok(size)) = (
            usize::try_from(info.dlpi_addr),
            usize::try_from(h.p_vaddr),
            usize::try_from(h.p_filesz),
        ) else {
            continue;
        };
        let start = base.saturating_add(vaddr);
        let end = start.saturating_add(size);
        // Whole pages only: a page shared with a neighbouring (writable)
        // segment is left alone.
        let first = start.saturating_add(page - 1) & !(page - 1);
        let last = end & !(page - 1);
        if last > first {
            // SAFETY: the range lies inside a read-only, file-backed mapping
            // of our own binary that stays mapped: its pages read back the
            // same from the file.
            // (MADV_RANDOM first, to stop fault-around bringing back 64 KiB
            // per fault, made no difference on Linux 6.18: not done.)
            let (addr, len) = (first as *mut libc::c_void, last - first);
            if unsafe { libc::madvise(addr, len, libc::MADV_DONTNEED) } == 0 {
                *advised += len;
            }
        }
    }
    1
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn releasing_the_startup_pages_advises_the_read_only_segments_and_the_program_runs_on() {
        let advised = release_startup_pages();
        // At least the text of this test binary (several pages).
        assert!(advised >= 64 * 1024, "advised only {advised} bytes");
        // Code and read-only data come back from the file as they were.
        let mut v: Vec<String> = (0..1000).rev().map(|i| format!("{i:04}")).collect();
        v.sort();
        assert_eq!(v.first().map(String::as_str), Some("0000"));
        assert_eq!(v.last().map(String::as_str), Some("0999"));
        // And again: advising twice is harmless.
        assert!(release_startup_pages() >= advised / 2);
    }
}
