//! The lineage and serial of a shared directory, as Terraform keeps them for a state: the
//! lineage is fixed when the directory is created (two directories with different lineages
//! hold unrelated environments), and the serial is raised by every commit that changes what
//! modules see (state, configs, files) or which modules are installed. A saved plan, an
//! import with state and any remote backend compare them to know whether what they hold is
//! still current.
//!
//! Kept in `.e/serial.json`, written in the same commit as the change it counts.

use std::fs;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{Change, E_DIR, SharedDir};

/// Where the lineage and serial live, relative to the shared directory.
pub const SERIAL_FILE: &str = ".e/serial.json";

/// A shared directory's lineage and serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serial {
    /// Fixed when the directory was created: 32 hex digits.
    pub lineage: String,
    /// How many commits changed its content since.
    pub serial: u64,
}

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lineage {} serial {}", self.lineage, self.serial)
    }
}

impl SharedDir {
    /// The lineage and serial now.
    pub fn serial(&self) -> anyhow::Result<Serial> {
        let path = self.root().join(SERIAL_FILE);
        let bytes =
            fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "`{}` is damaged\nhint: restore it from a backup of the shared directory",
                path.display()
            )
        })
    }

    /// Gives a directory that has none its lineage, with serial 0.
    pub(super) fn ensure_serial(&self) -> anyhow::Result<()> {
        let path = self.root().join(SERIAL_FILE);
        if fs::symlink_metadata(&path).is_err() {
            let serial = Serial {
                lineage: super::random_id()?,
                serial: 0,
            };
            self.write_atomic(&path, &serde_json::to_vec_pretty(&serial)?)?;
        }
        Ok(())
    }

    /// Adds the raised serial to `change` when it changes the directory's content: anything
    /// modules see, or e's record of installed modules.
    pub(super) fn count(&self, change: &mut Change) -> anyhow::Result<()> {
        let installed = format!("{E_DIR}/installed.json");
        let visible = |path: &str| path != E_DIR && !path.starts_with(&format!("{E_DIR}/"));
        let mut raises = change.dirs.iter().any(|(path, _)| visible(path))
            || change.removes.iter().any(|path| visible(path));
        for (path, bytes, _) in &change.files {
            if visible(path) {
                raises = true;
            } else if *path == installed {
                let before = fs::read(self.root().join(&installed)).ok();
                raises |= before.as_deref() != Some(bytes.as_slice());
            }
        }
        if raises {
            let mut serial = self.serial()?;
            serial.serial += 1;
            change.write(SERIAL_FILE, serde_json::to_vec_pretty(&serial)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tree::Tree;

    #[test]
    fn the_serial_counts_commits_that_change_content_and_the_lineage_stays() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedDir::open(&dir.path().join("shared")).unwrap();
        let first = shared.serial().unwrap();
        assert_eq!(first.serial, 0);
        assert_eq!(first.lineage.len(), 32);

        let mut result = Tree::default();
        result.insert_file("state.yml", b"a: 1\n".to_vec(), 0o644);
        shared
            .commit(Change::between(&Tree::default(), &result), "1")
            .unwrap();
        assert_eq!(shared.serial().unwrap().serial, 1);

        // A commit of history alone changes nothing anyone reads as content.
        let mut history = Change::default();
        history.write(".e/history/1.json", b"{}".to_vec());
        shared.commit(history, "2").unwrap();
        assert_eq!(shared.serial().unwrap().serial, 1);

        let mut installed = Change::default();
        installed.write(".e/installed.json", b"{}".to_vec());
        shared.commit(installed, "3").unwrap();
        assert_eq!(shared.serial().unwrap().serial, 2);
        // The same bytes again are no change.
        let mut again = Change::default();
        again.write(".e/installed.json", b"{}".to_vec());
        shared.commit(again, "4").unwrap();
        let last = shared.serial().unwrap();
        assert_eq!(last.serial, 2);
        assert_eq!(last.lineage, first.lineage);
    }
}
