//! Who owns the shared directory's files while a module runs in it.
//!
//! When e runs as root, modules run as an unprivileged uid (see `runtime/confinement.rs`), but
//! the shared directory and its files belong to whoever owns the directory, and e's own files
//! are mode 0600: the module could neither read its state nor write it. So, for the length of
//! one run, e lends what the container may write (the writable binds, without the read-only
//! ones inside them) and the files it must read to the module's uid, and gives everything
//! back to the owner afterwards, what the module created included, without following links.
//!
//! This exists because runs still work on the live directory; once each run works on its own
//! private copy, that copy is simply created with the module's uid and this file goes away.
//! Only root lends: without root, a module runs as the invoking user, who owns the files.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, lchown};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::output;
use crate::repository::model::User;
use crate::runtime::RunSpec;

/// What was lent to a module's uid; dropping it gives everything back to the owner.
#[derive(Debug)]
pub struct Loan {
    owner: User,
    /// Directories walked whole when giving back.
    trees: Vec<PathBuf>,
    /// Paths inside the trees that are not e's to give back (they are mounted read-only).
    skipped: Vec<PathBuf>,
    /// Single files lent for reading.
    files: Vec<PathBuf>,
}

/// Lends the writable binds of `spec`, and `files` (to be read), to the uid the spec runs as,
/// when e runs as root and that uid does not own the first bind. `None` when there is nothing
/// to lend. Files that do not exist are skipped.
pub fn lend(spec: &RunSpec, files: &[PathBuf]) -> anyhow::Result<Option<Loan>> {
    let user = spec.confinement.user;
    let Some(first) = spec.binds.first() else {
        return Ok(None);
    };
    let meta = fs::metadata(&first.host)
        .with_context(|| format!("failed to read `{}`", first.host.display()))?;
    let owner = User {
        uid: meta.uid(),
        gid: meta.gid(),
    };
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || user.is_root() || owner == user {
        return Ok(None);
    }
    let loan = Loan {
        owner,
        trees: spec
            .binds
            .iter()
            .filter(|bind| !bind.read_only)
            .map(|bind| bind.host.clone())
            .collect(),
        skipped: spec
            .binds
            .iter()
            .filter(|bind| bind.read_only)
            .map(|bind| bind.host.clone())
            .collect(),
        files: files.iter().filter(|f| f.exists()).cloned().collect(),
    };
    loan.hand_to(user).with_context(|| {
        format!(
            "failed to lend the shared directory to uid {}, which the module runs as\nhint: run e as the owner of the shared directory, or set `user:` of the module version in the repository",
            user.uid
        )
    })?;
    Ok(Some(loan))
}

impl Loan {
    /// Makes `user` the owner of everything lent.
    fn hand_to(&self, user: User) -> anyhow::Result<()> {
        for tree in &self.trees {
            self.walk(tree, user)?;
        }
        for file in &self.files {
            change_owner(file, user)?;
        }
        Ok(())
    }

    /// Changes the owner of `path` and, for a real directory, of all it holds, except the
    /// skipped paths; links are changed themselves, never followed.
    fn walk(&self, path: &Path, user: User) -> anyhow::Result<()> {
        if self.skipped.iter().any(|skipped| skipped == path) {
            return Ok(());
        }
        change_owner(path, user)?;
        let meta = fs::symlink_metadata(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        if meta.is_dir() {
            let entries = fs::read_dir(path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            for entry in entries {
                let entry =
                    entry.with_context(|| format!("failed to read `{}`", path.display()))?;
                self.walk(&entry.path(), user)?;
            }
        }
        Ok(())
    }
}

impl Drop for Loan {
    fn drop(&mut self) {
        if let Err(err) = self.hand_to(self.owner) {
            output::warn(&format!(
                "{err:#}\nhint: give the shared directory back with `chown -R {} DIRECTORY`",
                self.owner
            ));
        }
    }
}

fn change_owner(path: &Path, user: User) -> anyhow::Result<()> {
    lchown(path, Some(user.uid), Some(user.gid))
        .with_context(|| format!("failed to change the owner of `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Bind, Confinement, Network};

    fn spec(binds: Vec<Bind>, user: User) -> RunSpec {
        RunSpec {
            image: "img:1".to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            workdir: None,
            binds,
            confinement: Confinement::defaults(user),
            network: Network::None,
            capabilities: Vec::new(),
            labels: Default::default(),
            timeout: None,
        }
    }

    fn owner(path: &Path) -> (u32, u32) {
        let meta = fs::symlink_metadata(path).expect("metadata");
        (meta.uid(), meta.gid())
    }

    #[test]
    fn root_lends_the_writable_binds_and_takes_everything_back() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            // Only root can lend; the test of that case is the one below.
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let shared = dir.path().join("shared");
        let area = shared.join(".e");
        let mount = area.join("mounts/m");
        fs::create_dir_all(&mount).expect("mkdir");
        fs::write(shared.join("state.yml"), "a: 1\n").expect("write");
        fs::write(area.join("history"), "").expect("write");
        let requirements = area.join("requirements.json");
        fs::write(&requirements, "{}").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", shared.join("link")).expect("symlink");
        let bind = |host: &Path, read_only| Bind {
            host: host.to_owned(),
            container: "/x".to_owned(),
            read_only,
        };
        let module = User {
            uid: 65534,
            gid: 65534,
        };
        let spec = spec(
            vec![bind(&shared, false), bind(&area, true), bind(&mount, false)],
            module,
        );
        let before = owner(&shared);
        let loan = lend(&spec, &[requirements.clone(), area.join("absent")])
            .expect("lend")
            .expect("root lends to another uid");
        for lent in [&shared, &shared.join("state.yml"), &mount, &requirements] {
            assert_eq!(owner(lent), (65534, 65534), "{}", lent.display());
        }
        assert_eq!(
            owner(&shared.join("link")),
            (65534, 65534),
            "the link itself"
        );
        assert_eq!(owner(Path::new("/etc/passwd")), (0, 0), "never followed");
        assert_eq!(owner(&area.join("history")), before, "e's area is not lent");
        // What the module creates is given back too.
        fs::write(shared.join("new.yml"), "").expect("write");
        lchown(shared.join("new.yml"), Some(65534), Some(65534)).expect("chown");
        drop(loan);
        for back in [
            &shared,
            &shared.join("state.yml"),
            &shared.join("new.yml"),
            &shared.join("link"),
            &mount,
            &requirements,
        ] {
            assert_eq!(owner(back), before, "{}", back.display());
        }
    }

    #[test]
    fn nothing_is_lent_to_the_owner_or_to_root() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (uid, gid) = owner(dir.path());
        let binds = vec![Bind {
            host: dir.path().to_owned(),
            container: "/shared".to_owned(),
            read_only: false,
        }];
        let to_owner = spec(binds.clone(), User { uid, gid });
        assert!(lend(&to_owner, &[]).expect("lend").is_none());
        let to_root = spec(binds, User { uid: 0, gid: 0 });
        assert!(lend(&to_root, &[]).expect("lend").is_none());
        assert!(
            lend(&spec(Vec::new(), User { uid: 1, gid: 1 }), &[])
                .expect("lend")
                .is_none()
        );
    }
}
