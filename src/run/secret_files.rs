//! The secret files of a run: each name in the command's `secrets:` becomes the file
//! `/run/secrets/NAME` in the container, as Docker's own secrets are. They never touch a disk:
//! e writes them into a private directory on a tmpfs of this machine (`$XDG_RUNTIME_DIR` or
//! `/dev/shm`), which the engine bind-mounts read-only at `/run/secrets`, and removes that
//! directory as soon as the container is gone. Unlike environment variables, they do not show
//! in `docker inspect`. This needs an engine that sees e's files (the `bind` transfer).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// `statfs`'s magic number of a tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// A run's secret files on the host, removed when dropped.
#[derive(Debug)]
pub struct SecretFiles {
    /// The private directory (mode 0700), on a tmpfs.
    root: tempfile::TempDir,
    /// The directory the engine mounts, inside `root`.
    dir: PathBuf,
}

impl SecretFiles {
    /// Writes each `(name, content)` as a file readable by `owner` (the container's uid and
    /// gid) and nobody else the kernel can tell apart.
    pub fn create(files: &[(String, String)], owner: (u32, u32)) -> anyhow::Result<SecretFiles> {
        let base = tmpfs_dir().with_context(|| {
            "no tmpfs on this machine to hold secret files: neither `$XDG_RUNTIME_DIR` nor `/dev/shm` is one\nhint: mount a tmpfs at /dev/shm, or pass the secret as `${secret:NAME}` in the command's `envs:`"
        })?;
        let root = tempfile::Builder::new()
            .prefix("e-secrets-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .with_context(|| format!("failed to create a directory in `{}`", base.display()))?;
        // Whatever the umask made of it, no one else on this machine may enter it.
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o700))?;
        let dir = root.path().join("secrets");
        fs::create_dir(&dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
        // SAFETY: geteuid cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        // Root gives the files to the container's user; anyone else can give them only to
        // themself, so for another uid they are readable by all, inside a directory only its
        // owner can enter on the host.
        let give = me == 0;
        let private = give || owner.0 == me;
        let (dir_mode, file_mode) = if private {
            (0o500, 0o400)
        } else {
            (0o555, 0o444)
        };
        for (name, content) in files {
            let path = dir.join(name);
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("failed to create `{}`", path.display()))?;
            file.write_all(content.as_bytes())?;
            file.set_permissions(fs::Permissions::from_mode(file_mode))?;
            if give {
                std::os::unix::fs::chown(&path, Some(owner.0), Some(owner.1))?;
            }
        }
        if give {
            std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1))?;
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(dir_mode))?;
        Ok(SecretFiles { root, dir })
    }

    /// The host directory to mount at [`SECRETS_PATH`](crate::runtime::SECRETS_PATH).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SecretFiles {
    fn drop(&mut self) {
        // The directory is read-only, so its files could not be removed from it otherwise.
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        if let Err(err) = fs::remove_dir_all(self.root.path()) {
            crate::output::warn(&format!(
                "failed to remove the secret files of a run at `{}`: {err}\nhint: remove that directory by hand",
                self.root.path().display()
            ));
        }
    }
}

/// A directory on a tmpfs where e may create its own: `$XDG_RUNTIME_DIR`, else `/dev/shm`.
pub(super) fn tmpfs_dir() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    runtime
        .into_iter()
        .chain([PathBuf::from("/dev/shm")])
        .find(|dir| is_tmpfs(dir))
}

/// Whether `path` is a directory on a tmpfs.
pub(super) fn is_tmpfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs is a valid value of the plain C struct; statfs writes only into
    // the struct it is given, and the name is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::statfs(name.as_ptr(), &mut stat) } == 0;
    #[expect(
        clippy::useless_conversion,
        reason = "`f_type` is an i64 on this target, not on every one"
    )]
    let magic = i64::from(stat.f_type);
    ok && magic == TMPFS_MAGIC && path.is_dir()
}

/// Refuses secret files where the engine cannot see e's files.
pub fn check_transfer(files: &[(String, String)], bind: bool, what: &str) -> anyhow::Result<()> {
    if !files.is_empty() && !bind {
        bail!(
            "{what} is given secret files (`secrets:`), but the engine does not see this machine's files (the `archive` transfer): e cannot put them in a tmpfs of the container before it starts, and will not write them to the engine's disk\nhint: run e on the engine's machine (or with `--transfer bind` where it shares e's files), or pass the secrets as `${{secret:NAME}}` in the command's `envs:`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_on_a_tmpfs_and_gone_after() {
        let Some(_) = tmpfs_dir() else {
            panic!(
                "this machine has no tmpfs at /dev/shm or $XDG_RUNTIME_DIR: the secret files need one"
            );
        };
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        let me = unsafe { (libc::getuid(), libc::getgid()) };
        let files = SecretFiles::create(&[("db".to_owned(), "hunter2".to_owned())], me).unwrap();
        let dir = files.dir().to_owned();
        assert!(is_tmpfs(&dir), "{}", dir.display());
        assert_eq!(fs::read_to_string(dir.join("db")).unwrap(), "hunter2");
        let mode = fs::metadata(dir.join("db")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o400, "{mode:o}");
        let root = dir.parent().unwrap().to_owned();
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
        drop(files);
        assert!(!root.exists());
    }

    #[test]
    fn secret_files_need_the_bind_transfer() {
        let files = [("db".to_owned(), "x".to_owned())];
        assert!(check_transfer(&files, true, "m").is_ok());
        assert!(check_transfer(&[], false, "m").is_ok());
        let err = check_transfer(&files, false, "`m@1` command `apply`").unwrap_err();
        assert!(err.to_string().contains("`archive` transfer"), "{err}");
    }
}
