//! Private `mounts:` from before they were engine volumes: directories under
//! `shared/.e/mounts/<module>/<version>/<path>`. When a module's volume does not exist yet, it
//! is filled from the newest such directory (the data of the version that ran last), and the
//! old directories are then moved to `.e/mounts-moved/`, so an upgrade of e loses no module's
//! records and never fills a volume twice.

use std::fs;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::output;
use crate::store::SharedDir;

/// The old directory of `module`'s mount at `container_path`, newest version first.
fn newest(shared: &SharedDir, module: &str, container_path: &str) -> Option<PathBuf> {
    let relative = container_path.trim_matches('/');
    let versions = fs::read_dir(shared.e_dir().join("mounts").join(module)).ok()?;
    let mut found: Vec<(semver::Version, PathBuf)> = versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = semver::Version::parse(&entry.file_name().to_string_lossy()).ok()?;
            let dir = entry.path().join(relative);
            fs::symlink_metadata(&dir)
                .is_ok_and(|m| m.is_dir())
                .then_some((version, dir))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

/// A tar of the old directory's content, if there is one, owned by `owner` (the uid the
/// module runs as now, which may not be the one that wrote it).
pub fn seed(
    shared: &SharedDir,
    module: &str,
    container_path: &str,
    owner: (u32, u32),
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(dir) = newest(shared, module, container_path) else {
        return Ok(None);
    };
    let failed = || format!("failed to read the private data in `{}`", dir.display());
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, &dir, "", owner).with_context(failed)?;
    Ok(Some(builder.into_inner().with_context(failed)?))
}

/// Appends what is under `dir` (regular files and directories; links are left out) at
/// `prefix`, with `owner` and the files' modes.
fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    dir: &std::path::Path,
    prefix: &str,
    owner: (u32, u32),
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let meta = fs::symlink_metadata(entry.path())?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let mut header = tar::Header::new_gnu();
        header.set_uid(owner.0.into());
        header.set_gid(owner.1.into());
        header.set_mode(meta.permissions().mode() & 0o7777);
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, format!("{name}/"), std::io::empty())?;
            append(builder, &entry.path(), &format!("{name}/"), owner)?;
        } else if meta.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            builder.append_data(&mut header, &name, fs::File::open(entry.path())?)?;
        }
    }
    Ok(())
}

/// Moves the module's old directories aside once its volume holds their data.
pub fn moved(
    shared: &SharedDir,
    module: &str,
    container_path: &str,
    volume: &str,
) -> anyhow::Result<()> {
    let from = shared.e_dir().join("mounts").join(module);
    if !from.is_dir() {
        return Ok(());
    }
    let to = shared.e_dir().join("mounts-moved");
    fs::create_dir_all(&to).with_context(|| format!("failed to create `{}`", to.display()))?;
    fs::rename(&from, to.join(module))
        .with_context(|| format!("failed to move `{}` aside", from.display()))?;
    output::note(&format!(
        "e: the private data of `{module}` at `{container_path}` moved from `{}` into the engine volume `{volume}`; the old directory is in `{}`",
        from.display(),
        to.join(module).display()
    ));
    Ok(())
}
