//! Which `state.yml` e has already checked. Every run starts by refusing a state that is not
//! a valid state (edited by hand into something else), before any module runs on it and
//! would be blamed for it; parsing it is most of e's own work in a run. A state e committed
//! was checked when it was committed, so the commit notes its sha256 in `.e/checked-state`,
//! and the next run parses the state only when its bytes are not those: after a hand edit,
//! a push, an import or a migration. The note is only ever a shortcut: a missing, stale or
//! damaged one makes e parse the state, never skip it.

use std::fs;

use super::{Change, SharedDir};

/// Where the note lives, relative to the shared directory.
pub const CHECKED_FILE: &str = ".e/checked-state";

impl SharedDir {
    /// Whether `state` is the state whose check the last commit noted.
    pub fn state_was_checked(&self, state: &[u8]) -> bool {
        fs::read(self.root().join(CHECKED_FILE)).is_ok_and(|note| note == note_of(state))
    }
}

/// Adds the note that `state`, which the caller has checked, is a valid state.
pub fn note_checked(change: &mut Change, state: &[u8]) {
    change.write(CHECKED_FILE, note_of(state));
}

fn note_of(state: &[u8]) -> Vec<u8> {
    format!("sha256:{}\n", crate::archive::sha256_hex(state)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_noted_bytes_count_as_checked() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(&dir.path().join("shared")).unwrap();
        assert!(!shared.state_was_checked(b"a: 1\n"), "nothing noted yet");
        let mut change = Change::default();
        note_checked(&mut change, b"a: 1\n");
        shared.commit(change, "1").unwrap();
        assert!(shared.state_was_checked(b"a: 1\n"));
        assert!(
            !shared.state_was_checked(b"a: 2\n"),
            "an edit is not checked"
        );
        fs::write(shared.root().join(CHECKED_FILE), "damaged").unwrap();
        assert!(
            !shared.state_was_checked(b"a: 1\n"),
            "a damaged note is no note"
        );
    }
}
