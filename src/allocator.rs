//! The binary's allocator: the system's for a process that handles small data, mimalloc for
//! one that handles large data, and transparent huge pages only once data is large.
//!
//! **Which allocator.** mimalloc makes the many small allocations of a large repository's
//! model much cheaper, on every core; but a small command (one method run) pays for its start:
//! its arenas' bitmaps and the free lists of a fresh page per size class are first touches of
//! memory, about 110 page faults, and a method run's own CPU was 0.5 ms (quiet machine) to
//! 2.4 ms (load 3.7) more than with the system's allocator. So a process counts as one that
//! handles large data when the repository file has [`LARGE`] bytes or more, found before the
//! first allocation (an `.init_array` function), and uses mimalloc; any other uses the system's allocator. The choice is made
//! once and never changes: the first allocation fixes it (to the system's, if it came before
//! the look at the repository), so every block is freed by the allocator that made it.
//!
//! **Huge pages.** mimalloc asks for huge pages on its arenas, so the first touch of each 2
//! MiB has the kernel zero a whole huge page. A small command touches a few scattered pages of
//! three of them, and zeroing 6 MiB was its largest single cost; a command that builds a large
//! model (a cached `e list` of 10,000 modules) takes 100 times fewer page faults with them, and
//! up to a third less CPU. So huge pages are off from the start of the process, unless the
//! repository is large (a cached model is built of small allocations only, and the first ones
//! would otherwise take small pages), and turned on at the first allocation of [`LARGE`] bytes:
//! a large state, a large file of the shared directory, an archive. When e was started with
//! them off (`PR_SET_THP_DISABLE`, inherited), they stay off. Children started while they are
//! off (ssh, credential helpers) inherit that.
//!
//! The library knows nothing of this (see `main.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// The size of an allocation, or of the repository file, from which the process counts as
/// handling large data.
pub const LARGE: usize = 1 << 20;

/// Whether huge pages may be turned on: e turned them off itself, and has not yet
/// turned them back on.
static OFF_BY_E: AtomicBool = AtomicBool::new(false);

/// Which allocator the process uses: [`UNDECIDED`] until the look at the repository or the
/// first allocation, whichever comes first, then [`SYSTEM`] or [`MIMALLOC`] for good.
static CHOSEN: AtomicU8 = AtomicU8::new(UNDECIDED);
const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

/// Runs before `main`: glibc calls the functions of `.init_array` with the program's arguments
/// and environment.
extern "C" fn at_start(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) {
    // SAFETY: glibc passes `argc` strings in `argv` and a null-terminated `envp`.
    if unsafe { large_repository(argc, argv, envp) } {
        // Only while nothing was allocated: else the system's allocator stays.
        let _ = CHOSEN.compare_exchange(UNDECIDED, MIMALLOC, Ordering::AcqRel, Ordering::Acquire);
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
static AT_START: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = at_start;

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
        // SAFETY: as in `at_start`.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
    }
}

/// Whether this process allocates with mimalloc; the first call fixes the choice.
#[inline]
fn mimalloc() -> bool {
    match CHOSEN.load(Ordering::Acquire) {
        MIMALLOC => true,
        SYSTEM => false,
        _ => choose_at_first_allocation(),
    }
}

/// The first allocation came before the look at the repository (or there was none to look
/// at): the system's allocator, for good.
#[cold]
fn choose_at_first_allocation() -> bool {
    match CHOSEN.compare_exchange(UNDECIDED, SYSTEM, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => false,
        Err(chosen) => chosen == MIMALLOC,
    }
}

/// The allocator of [`CHOSEN`], which turns huge pages on at the first large allocation.
pub struct Chosen;

// SAFETY: every call is the chosen allocator's, with the same arguments, and the choice never
// changes once anything was allocated, so a block is freed or resized by the allocator that
// made it; `on` and `mimalloc` allocate nothing.
unsafe impl GlobalAlloc for Chosen {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            on();
        }
        // SAFETY: the caller's contract is the allocator's.
        unsafe {
            if mimalloc() {
                mimalloc::MiMalloc.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            on();
        }
        // SAFETY: the caller's contract is the allocator's.
        unsafe {
            if mimalloc() {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            } else {
                System.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is the allocator's; `ptr` is the chosen one's.
        unsafe {
            if mimalloc() {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE {
            on();
        }
        // SAFETY: the caller's contract is the allocator's; `ptr` is the chosen one's.
        unsafe {
            if mimalloc() {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether huge pages are off for this process.
    fn off() -> bool {
        // SAFETY: as in `at_start`.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
    }

    #[test]
    fn once_anything_was_allocated_the_choice_stays() {
        let block = Box::new([1u8; 64]);
        let chosen = CHOSEN.load(Ordering::Acquire);
        assert_ne!(chosen, UNDECIDED, "{} bytes allocated", block.len());
        // A late look at the repository changes nothing.
        assert!(
            CHOSEN
                .compare_exchange(UNDECIDED, MIMALLOC, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        );
        assert_eq!(mimalloc(), chosen == MIMALLOC);
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
