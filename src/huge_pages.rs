//! Transparent huge pages only for a process that handles large data.
//!
//! mimalloc asks for huge pages on its arenas, so the first touch of each 2 MiB has the
//! kernel zero a whole huge page. A small command (one method run) touches a few scattered
//! pages of three of them, and zeroing 6 MiB was its largest single cost; a command that
//! builds a large model (a cached `e list` of 10,000 modules) takes 100 times fewer page
//! faults with them, and up to a third less CPU. So huge pages are off from the start of the
//! process (an `.init_array` function, before the first allocation), unless the repository file
//! has [`LARGE`] bytes or more (a cached model is built of small allocations only, and the
//! first ones would otherwise take small pages), and turned on at the first allocation of that
//! size: a large state, a large file of the shared directory, an archive. When e was started
//! with them off (`PR_SET_THP_DISABLE`, inherited), they stay off. Children started while they
//! are off (ssh, credential helpers) inherit that.
//!
//! The binary's allocator (see `main.rs`); the library knows nothing of it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

/// The size of an allocation, or of the repository file, from which the process counts as
/// handling large data.
pub const LARGE: usize = 1 << 20;

/// Whether huge pages may be turned on: e turned them off itself, and has not yet
/// turned them back on.
static OFF_BY_E: AtomicBool = AtomicBool::new(false);

/// Runs before `main` and before the first allocation: glibc calls the functions of
/// `.init_array` with the program's arguments and environment.
extern "C" fn off_at_start(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) {
    // SAFETY: glibc passes `argc` strings in `argv` and a null-terminated `envp`.
    if unsafe { large_repository(argc, argv, envp) } {
        return;
    }
    // SAFETY: these prctl calls take no pointers; they read and set a flag of this process.
    unsafe {
        if libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
        {
            OFF_BY_E.store(true, Ordering::Relaxed);
        }
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static OFF_AT_START: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = off_at_start;

/// Whether the repository file has [`LARGE`] bytes or more, found as clap finds it
/// (`--repository PATH`, `--repository=PATH`, `E_REPOSITORY`, `repository.yaml`) without
/// allocating: it is a hint, so a wrong guess costs time, never a result.
///
/// # Safety
///
/// `argv` holds `argc` C strings and `envp` C strings up to a null pointer (or is null).
unsafe fn large_repository(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> bool {
    use std::ffi::CStr;
    let mut path: *const libc::c_char = c"repository.yaml".as_ptr();
    if !envp.is_null() {
        let mut entry = envp;
        // SAFETY: the caller's contract: entries up to a null one are C strings.
        while let Some(variable) = unsafe { entry.as_ref() }.filter(|v| !v.is_null()) {
            let bytes = unsafe { CStr::from_ptr(*variable) }.to_bytes();
            if bytes.starts_with(b"E_REPOSITORY=") {
                path = unsafe { variable.add(b"E_REPOSITORY=".len()) };
            }
            entry = unsafe { entry.add(1) };
        }
    }
    let count = usize::try_from(argc).unwrap_or(0);
    let mut i = 1;
    while i < count && !argv.is_null() {
        // SAFETY: the caller's contract: `argc` C strings.
        let arg = unsafe { *argv.add(i) };
        let bytes = unsafe { CStr::from_ptr(arg) }.to_bytes();
        if bytes == b"--" {
            break;
        } else if bytes == b"--repository" && i + 1 < count {
            path = unsafe { *argv.add(i + 1) };
            i += 1;
        } else if bytes.starts_with(b"--repository=") {
            path = unsafe { arg.add(b"--repository=".len()) };
        }
        i += 1;
    }
    // SAFETY: `path` is a C string; `stat` fills `status`, which outlives the call.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    unsafe { libc::stat(path, &mut status) == 0 && status.st_size >= LARGE as libc::off_t }
}

/// Turns huge pages back on, once.
#[cold]
fn on() {
    if OFF_BY_E.load(Ordering::Relaxed) && OFF_BY_E.swap(false, Ordering::Relaxed) {
        // SAFETY: as in `off_at_start`.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
    }
}

/// mimalloc, which turns huge pages on at the first large allocation.
pub struct WhenLarge;

// SAFETY: every call is mimalloc's, with the same arguments; `on` allocates nothing.
unsafe impl GlobalAlloc for WhenLarge {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            on();
        }
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            on();
        }
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE {
            on();
        }
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether huge pages are off for this process.
    fn off() -> bool {
        // SAFETY: as in `off_at_start`.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
    }

    #[test]
    fn huge_pages_are_off_until_the_first_large_allocation() {
        if !OFF_BY_E.load(Ordering::Relaxed) && off() {
            // Started with them off: they stay off, which is not what this test is about.
            return;
        }
        assert!(off(), "off from the start, before anything large");
        let small = vec![1u8; LARGE / 2];
        assert!(off(), "still off after {} bytes", small.len());
        let mut large = small;
        large.resize(LARGE, 1);
        assert!(!off(), "on once an allocation reached {LARGE} bytes");
        assert!(!OFF_BY_E.load(Ordering::Relaxed));
    }

    #[test]
    fn the_repository_is_found_as_clap_finds_it() {
        use std::ffi::CString;
        let dir = tempfile::tempdir().expect("temp dir");
        let large = dir.path().join("large.yaml");
        // A sparse file: a buffer that large would turn huge pages on for the other test.
        std::fs::File::create(&large)
            .and_then(|file| file.set_len(LARGE as u64))
            .expect("create");
        let small = dir.path().join("small.yaml");
        std::fs::write(&small, "version: v1\n").expect("write");
        let (large, small) = (large.display().to_string(), small.display().to_string());
        let is_large = |args: &[&str], env: &[String]| {
            let args: Vec<CString> = std::iter::once("e")
                .chain(args.iter().copied())
                .map(|a| CString::new(a).expect("no NUL"))
                .collect();
            let env: Vec<CString> = env
                .iter()
                .map(|v| CString::new(v.as_str()).expect("no NUL"))
                .collect();
            let argv: Vec<_> = args.iter().map(|a| a.as_ptr()).collect();
            let envp: Vec<_> = env
                .iter()
                .map(|v| v.as_ptr())
                .chain([std::ptr::null()])
                .collect();
            let argc = libc::c_int::try_from(argv.len()).expect("few");
            // SAFETY: `argc` C strings and a null-terminated environment, alive here.
            unsafe { large_repository(argc, argv.as_ptr(), envp.as_ptr()) }
        };
        assert!(is_large(&["--repository", &large, "list"], &[]));
        assert!(is_large(&["list", &format!("--repository={large}")], &[]));
        assert!(is_large(&["list"], &[format!("E_REPOSITORY={large}")]));
        assert!(!is_large(&["list"], &[format!("E_REPOSITORY={small}")]));
        // The command line wins over the environment, and nothing after `--` counts.
        assert!(!is_large(
            &["--repository", &small, "list"],
            &[format!("E_REPOSITORY={large}")]
        ));
        assert!(!is_large(
            &["run", "m", "apply", "--", "--repository", &large],
            &[]
        ));
        assert!(!is_large(&["--repository"], &[]));
    }
}
