//! The binary's allocator (`src/allocator.rs`), through the binary: a process whose repository
//! file is large allocates with mimalloc, any other with the system's allocator. mimalloc says
//! which memory it reserved when asked for its statistics at exit (`MIMALLOC_SHOW_STATS=1`);
//! a process that never allocated through it has none to show.

use std::path::Path;
use std::process::Command;

/// What `e --version` prints on stderr with mimalloc's statistics asked for, the repository
/// file being `repository`.
fn statistics(repository: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_e"))
        .arg("--version")
        .env("E_REPOSITORY", repository)
        .env("MIMALLOC_SHOW_STATS", "1")
        .output()
        .expect("the e binary runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn mimalloc_only_for_a_large_repository() {
    let dir = tempfile::tempdir().unwrap();
    let large = dir.path().join("large.yaml");
    // Its size is what counts (a sparse file): the look happens before anything is read.
    std::fs::File::create(&large)
        .and_then(|file| file.set_len(1 << 20))
        .unwrap();
    let small = dir.path().join("small.yaml");
    std::fs::write(&small, "version: v1\nkind: Repository\ncomponents: []\n").unwrap();

    let said = statistics(&large);
    assert!(said.contains("reserved"), "mimalloc allocated: {said}");
    let said = statistics(&small);
    assert!(!said.contains("reserved"), "the system's allocator: {said}");
    // Nothing given: `repository.yaml` of the working directory, absent here.
    let said = statistics(&dir.path().join("absent.yaml"));
    assert!(!said.contains("reserved"), "the system's allocator: {said}");
}
