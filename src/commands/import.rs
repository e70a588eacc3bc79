//! `e import FILE`: brings an archive of `e export` onto this machine, without any registry.
//!
//! Everything is checked before anything changes: every entry of the archive against its
//! manifest (size and sha256, none missing or extra, no path that could escape), the archived
//! repository, the merge with the local one (a module version defined differently here is
//! refused without `--force`), and the shared directory (a state is imported only into one
//! that has none, without `--force`). Then the images are loaded into the engine, the files put
//! next to the repository file (`files/<sha256>/<name>`) and the Debian packages
//! (`packages/debian/<release>/`), both also into the repository machine's store with
//! `--store DIR` (see `offline/store.rs`), the archive's e binary put at `bin/e` with how to
//! install it, the repository rewritten with a backup of the previous one, and the modules'
//! configs and the state written under the shared directory's lock.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::Context;
use crate::archive::{self, CheckedEntry, FILES_DIR, IMAGES, SHARED_DIR, Verified};
use crate::cli::ImportArgs;
use crate::offline::store as stored;
use crate::output::{self, Progress};
use crate::repository::model::{ApiVersion, FileRequirement, ModuleVersion, RepositoryKind};
use crate::repository::{self, Repository};
use crate::runtime::Engine;
use crate::secrets::MASK;
use crate::store::{STATE_FILE, SharedDir};

/// Runs `e import`.
pub async fn run(
    args: ImportArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let size = fs::metadata(&args.file)
        .with_context(|| format!("failed to read the archive `{}`", args.file.display()))?
        .len();
    let mut progress = Progress::new("verifying", size);
    let verified = archive::verify(&args.file, &mut |read| progress.advance(read))?;
    progress.finish();
    let manifest = &verified.manifest;
    if let Some(expected) = &args.expect_sha256
        && !expected.eq_ignore_ascii_case(&verified.manifest_sha256)
    {
        bail!(
            "`{}` is not the archive expected: its manifest sha256 is {}, not {expected}; nothing was imported\n\
             hint: compare with the `manifest sha256` that `e export` printed; copy or export the archive again",
            args.file.display(),
            verified.manifest_sha256
        );
    }

    // The archived repository must load, and describe exactly the modules the manifest lists.
    let archived_name = PathBuf::from(format!("{}:{}", args.file.display(), archive::REPOSITORY));
    let archived = repository::load::parse(&verified.repository, &archived_name)?.repository;
    // With --push, the modules are written with their images' names in the registry.
    let archived = match &args.push {
        Some(registry) => registry.rewrite(archived),
        None => archived,
    };
    let mut archived_ids: Vec<String> = archived.entries().map(|e| e.id()).collect();
    let mut listed = manifest.modules.clone();
    archived_ids.sort();
    listed.sort();
    if archived_ids != listed {
        bail!(
            "`{}` is damaged or was changed: its manifest and its repository.yaml list different module versions; nothing was imported\nhint: export it again",
            args.file.display()
        );
    }

    let repository_path = &context.repository_path;
    let existing = if repository_path.exists() {
        Some(context.repository()?)
    } else {
        None
    };
    let merge = merge(existing.as_ref(), &archived, args.force)?;
    let merged_text = crate::yaml_emit::to_string(&merge.repository)
        .context("failed to write the merged repository")?;
    repository::load::parse(&merged_text, repository_path)
        .context("the merged repository does not load; nothing was imported")?;

    let shared_path = &context.shared_path;
    if manifest.state && shared_path.join(STATE_FILE).exists() {
        let versions = lineages(&verified, context);
        if !args.force {
            bail!(
                "the shared directory `{}` already holds a state{versions}; nothing was imported\n\
                 hint: import into an empty shared directory (`--shared DIR`), or pass `--force` to overwrite its files",
                shared_path.display()
            );
        }
        output::note(&format!(
            "e: the archive's state will replace the state of `{}`{versions}",
            shared_path.display()
        ));
        let approval = crate::lifecycle::approve::Approval::from_flag(args.auto_approve);
        if !approval.confirm("replace that state?", "replace the state")? {
            output::note("e: nothing was imported");
            return Ok(ExitCode::FAILURE);
        }
    }

    // From here on, things change.
    let mut rows: Vec<Vec<String>> = Vec::new();
    let configs: Vec<&String> = manifest
        .environment
        .iter()
        .filter(|p| p.ends_with("-config.yml"))
        .collect();
    let shared = if manifest.state || !configs.is_empty() {
        let shared = SharedDir::open(shared_path)?;
        let lock = shared.lock(&format!("e import {}", args.file.display()), Duration::ZERO)?;
        Some((shared, lock))
    } else {
        None
    };

    if verified.entries.contains_key(IMAGES) {
        let images_size = verified.entries[IMAGES].size;
        let progress = Some(Progress::new("loading images", images_size));
        let source = Counted {
            inner: verified.open(IMAGES)?,
            progress,
        };
        let loaded = engine
            .load_images(Box::new(source))
            .await
            .with_context(|| format!("failed to load the images of `{}`", args.file.display()))?;
        let mut results = Vec::new();
        for image in &manifest.images {
            results.push(name_loaded(engine, image, &loaded).await?);
        }
        match &args.push {
            Some(registry) => {
                let pushed = super::push::push_all(engine, registry, &manifest.images).await?;
                for (pushed, result) in pushed.into_iter().zip(&results) {
                    rows.push(vec![
                        "image".to_owned(),
                        pushed.image,
                        format!(
                            "{result}, pushed as `{}` ({})",
                            pushed.pushed_as, pushed.digest
                        ),
                    ]);
                }
            }
            None => rows.extend(
                manifest
                    .images
                    .iter()
                    .zip(results)
                    .map(|(image, result)| vec!["image".to_owned(), image.clone(), result]),
            ),
        }
    }

    let base = repository_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for path in verified
        .entries
        .keys()
        .filter(|p| p.starts_with(&format!("{FILES_DIR}/")))
    {
        let mut result = put_file(&verified, path, &base.join(path))?.to_owned();
        if let Some(store) = &args.store {
            let stored = put_file(&verified, path, &store.join(path))?;
            result.push_str(&format!("; store: {stored}"));
        }
        rows.push(vec!["file".to_owned(), path.clone(), result]);
    }
    rows.extend(stored::packages(&verified, base, args.store.as_deref())?);
    if let Some(row) = stored::binary(&verified, base)? {
        rows.push(row);
    }

    for id in &merge.added {
        rows.push(vec!["module".to_owned(), id.clone(), "added".to_owned()]);
    }
    for (id, latest) in &merge.not_latest {
        rows.push(vec![
            "module".to_owned(),
            id.clone(),
            format!("added (`{latest}` stays latest)"),
        ]);
    }
    for id in &merge.skipped {
        rows.push(vec![
            "module".to_owned(),
            id.clone(),
            "skipped: already there, identical".to_owned(),
        ]);
    }
    for id in &merge.replaced {
        rows.push(vec![
            "module".to_owned(),
            id.clone(),
            "replaced (--force)".to_owned(),
        ]);
    }
    let rewritten = if merge.changed() || existing.is_none() {
        Some(write_repository(
            repository_path,
            &merged_text,
            &args.file,
            existing.is_some(),
        )?)
    } else {
        None
    };

    if let Some((shared, _lock)) = &shared {
        for path in &configs {
            rows.push(stored::config(&verified, shared, path)?);
        }
    }
    if let Some((shared, _lock)) = &shared
        && manifest.state
    {
        for path in verified
            .entries
            .keys()
            .filter(|p| p.starts_with(&format!("{SHARED_DIR}/")))
        {
            let relative = &path[SHARED_DIR.len() + 1..];
            put_state_file(&verified, shared, path, relative)?;
            let result = if manifest.redacted.contains(path) {
                format!("written (secret values are `{MASK}`: set them again)")
            } else {
                "written".to_owned()
            };
            rows.push(vec!["state".to_owned(), path.clone(), result]);
        }
    }

    let mut report = format!(
        "imported `{}`, written by e {} at {}\nmanifest sha256: {}\n\n",
        args.file.display(),
        manifest.e_version,
        manifest.created,
        verified.manifest_sha256
    );
    report.push_str(&output::table(&["KIND", "NAME", "RESULT"], rows));
    output::data(&report)?;
    stored::settings_note(&verified);
    match rewritten {
        Some(Some(backup)) => output::note(&format!(
            "e: rewrote `{}` (its comments are not kept); the previous file is `{}`",
            repository_path.display(),
            backup.display()
        )),
        Some(None) => output::note(&format!("e: wrote `{}`", repository_path.display())),
        None => output::note(&format!("e: `{}` is unchanged", repository_path.display())),
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes sure a loaded image answers to the name the repository gives it, and says how: an
/// image that Podman saved, or that Podman loaded, is named `localhost/NAME`, which Docker does
/// not take for `NAME`, so that name is added.
async fn name_loaded(
    engine: &dyn Engine,
    image: &str,
    loaded: &[String],
) -> anyhow::Result<String> {
    let Some(name) = loaded.iter().find(|name| archive::same_image(name, image)) else {
        output::warn(&format!(
            "the engine did not report loading image `{image}`; the modules that use it may not find it\nhint: list the engine's images (`docker images`), and load `images.tar` of the archive by hand if it is missing"
        ));
        return Ok("not reported loaded".to_owned());
    };
    if archive::with_tag(name) == archive::with_tag(image) {
        return Ok("loaded".to_owned());
    }
    // Podman finds `localhost/NAME` when asked for `NAME`; Docker does not, or finds another
    // image of that name, which the tag then moves, as `docker load` would.
    let loaded_id = engine.inspect_image(name).await?.map(|info| info.id);
    let found_id = engine.inspect_image(image).await?.map(|info| info.id);
    if loaded_id.is_some() && found_id == loaded_id {
        return Ok(format!("loaded (the engine names it `{name}`)"));
    }
    engine
        .tag_image(name, image)
        .await
        .with_context(|| format!("failed to name the loaded image `{name}` `{image}`"))?;
    Ok(format!("loaded as `{name}`, tagged `{image}`"))
}

/// The merged repository and what the merge did, per module version.
#[derive(Debug)]
struct Merge {
    repository: Repository,
    added: Vec<String>,
    /// Added without `latest`, with the version that stays latest.
    not_latest: Vec<(String, String)>,
    skipped: Vec<String>,
    replaced: Vec<String>,
}

impl Merge {
    fn changed(&self) -> bool {
        !(self.added.is_empty() && self.not_latest.is_empty() && self.replaced.is_empty())
    }
}

/// A module version's definition for comparison: without `latest` (which says how a version
/// relates to the others, not what it is) and with each file named only by name and sha256
/// (where a file lies differs from machine to machine).
fn definition(version: &ModuleVersion) -> serde_json::Value {
    let mut version = version.clone();
    version.latest = false;
    for file in &mut version.requirements.files {
        *file = FileRequirement {
            name: Some(file.file_name().to_owned()),
            url: None,
            path: None,
            sha256: file.sha256.clone(),
        };
    }
    serde_json::to_value(&version).unwrap_or_default()
}

/// Merges the archived module versions into the local repository: new ones are added, an
/// identical one is skipped, a different one is refused unless `force` (then replaced). The
/// `latest` mark of a local module never moves.
fn merge(
    existing: Option<&Repository>,
    archived: &Repository,
    force: bool,
) -> anyhow::Result<Merge> {
    let mut repository = existing.cloned().unwrap_or_else(|| Repository {
        version: ApiVersion::V1,
        kind: RepositoryKind::Repository,
        name: archived.name.clone(),
        components: Vec::new(),
    });
    let mut merge = Merge {
        repository: Repository {
            components: Vec::new(),
            ..repository.clone()
        },
        added: Vec::new(),
        not_latest: Vec::new(),
        skipped: Vec::new(),
        replaced: Vec::new(),
    };
    let mut conflicts = Vec::new();
    for module in &archived.components {
        let Some(local) = repository
            .components
            .iter_mut()
            .find(|m| m.name == module.name)
        else {
            merge.added.extend(
                module
                    .versions
                    .iter()
                    .map(|v| format!("{}@{}", module.name, v.version)),
            );
            repository.components.push(module.clone());
            continue;
        };
        for version in &module.versions {
            let id = format!("{}@{}", module.name, version.version);
            let latest = local
                .versions
                .iter()
                .find(|v| v.latest)
                .map(|v| v.version.to_string());
            match local
                .versions
                .iter_mut()
                .find(|v| v.version == version.version)
            {
                Some(present) if definition(present) == definition(version) => {
                    merge.skipped.push(id)
                }
                Some(present) if force => {
                    let keep_latest = present.latest;
                    *present = version.clone();
                    present.latest = keep_latest;
                    merge.replaced.push(id);
                }
                Some(_) => conflicts.push(id),
                None => {
                    let mut version = version.clone();
                    match latest {
                        Some(latest) if version.latest => {
                            version.latest = false;
                            merge.not_latest.push((id, latest));
                        }
                        _ => merge.added.push(id),
                    }
                    local.versions.push(version);
                }
            }
        }
    }
    if !conflicts.is_empty() {
        bail!(
            "the repository already defines {} differently: `{}`; nothing was imported\n\
             hint: compare with `e info MODULE@VERSION`; pass `--force` to replace the local definitions with the archived ones",
            if conflicts.len() == 1 {
                "this module version"
            } else {
                "these module versions"
            },
            conflicts.join("`, `")
        );
    }
    merge.repository = repository;
    Ok(merge)
}

/// Writes the merged repository atomically, keeping the previous file as `<file>.backup`;
/// returns the backup's path, if there was a previous file.
fn write_repository(
    path: &Path,
    text: &str,
    archive: &Path,
    existed: bool,
) -> anyhow::Result<Option<PathBuf>> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let backup = if existed {
        let mut backup = path.as_os_str().to_owned();
        backup.push(".backup");
        let backup = PathBuf::from(backup);
        let previous =
            fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        write_atomic(&backup, &previous)?;
        Some(backup)
    } else {
        None
    };
    let mut header = format!("# Written by `e import {}`.\n", archive.display());
    if let Some(backup) = &backup {
        header.push_str(&format!(
            "# e keeps no comments when it merges: the previous file, with its comments, is `{}`.\n",
            backup.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    write_atomic(path, format!("{header}{text}").as_bytes())?;
    Ok(backup)
}

/// Writes a file through a temporary file in the same directory, synced and renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = crate::store::new_file_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .with_context(|| format!("failed to write `{}`", path.display()))?;
    Ok(())
}

/// Puts a file of a bill of materials at `target`, unless an identical one is there.
pub(crate) fn put_file(
    verified: &Verified,
    path: &str,
    target: &Path,
) -> anyhow::Result<&'static str> {
    let expected = &verified.entries[path].sha256;
    if target.is_file() {
        let file = fs::File::open(target)
            .with_context(|| format!("failed to read `{}`", target.display()))?;
        let mut hashing = archive::HashingReader::new(io::BufReader::new(file));
        io::copy(&mut hashing, &mut io::sink())
            .with_context(|| format!("failed to read `{}`", target.display()))?;
        if &hashing.finish() == expected {
            return Ok("already there");
        }
    }
    let dir = target.parent().context("a file's path has a folder")?;
    fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut temp = crate::store::new_file_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
    let mut source = verified.open(path)?;
    io::copy(&mut source, &mut temp)
        .with_context(|| format!("failed to write `{}`", target.display()))?;
    temp.as_file().sync_all()?;
    temp.persist(target)
        .with_context(|| format!("failed to write `{}`", target.display()))?;
    Ok("added")
}

/// How the state in the shared directory and the archived one relate, by lineage and serial
/// (empty when either has none): another environment, or an older or newer one of the same.
fn lineages(verified: &Verified, context: &Context) -> String {
    let path = format!("{SHARED_DIR}/{}", crate::store::serial::SERIAL_FILE);
    let archived: Option<crate::store::Serial> = verified
        .entries
        .contains_key(&path)
        .then(|| {
            let mut bytes = Vec::new();
            verified.open(&path).ok()?.read_to_end(&mut bytes).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .flatten();
    match (context.serial(), archived) {
        (Some(here), Some(there)) if here.lineage != there.lineage => format!(
            " of another environment (lineage {} here, {} in the archive)",
            here.lineage, there.lineage
        ),
        (Some(here), Some(there)) => format!(
            " of the same environment, {} (serial {} here, {} in the archive)",
            match there.serial.cmp(&here.serial) {
                std::cmp::Ordering::Less => "older in the archive",
                std::cmp::Ordering::Equal => "at the same serial",
                std::cmp::Ordering::Greater => "newer in the archive",
            },
            here.serial,
            there.serial
        ),
        _ => String::new(),
    }
}

/// Writes one file of the archived shared directory, creating its folders one at a time and
/// refusing to go through a link.
fn put_state_file(
    verified: &Verified,
    shared: &SharedDir,
    path: &str,
    relative: &str,
) -> anyhow::Result<()> {
    let mut at = shared.root().to_owned();
    let parts: Vec<&str> = relative.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => bail!(
                "`{}` is a symbolic link; e refuses to write through it\nhint: remove the link",
                at.display()
            ),
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "`{}` is not a directory\nhint: move it away and import again",
                at.display()
            ),
            Err(_) => fs::create_dir(&at)
                .with_context(|| format!("failed to create `{}`", at.display()))?,
        }
    }
    let target = shared.root().join(relative);
    let mut bytes = Vec::new();
    verified
        .open(path)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("failed to read `{path}` from the archive"))?;
    shared.write_atomic(&target, &bytes)
}

/// Counts the bytes read, for the progress line, and ends it at the end of the stream.
struct Counted {
    inner: CheckedEntry,
    progress: Option<Progress>,
}

impl Read for Counted {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if let Some(progress) = &mut self.progress {
            progress.advance(read as u64);
        }
        if read == 0
            && !buffer.is_empty()
            && let Some(progress) = self.progress.take()
        {
            progress.finish();
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(text: &str) -> Repository {
        repository::load::parse(text, Path::new("test.yaml"))
            .unwrap()
            .repository
    }

    const LOCAL: &str = "version: v1\nkind: Repository\ncomponents:\n  - name: a\n    type: docker\n    versions:\n      - version: 1.0.0\n        latest: true\n        image: a:1\n";

    #[test]
    fn identical_versions_are_skipped_and_new_ones_added() {
        let local = repository(LOCAL);
        let archived = repository(&format!(
            "{LOCAL}      - version: 2.0.0\n        image: a:2\n  - name: b\n    type: docker\n    versions:\n      - version: 0.1.0\n        image: b:0\n"
        ));
        let merge = merge(Some(&local), &archived, false).unwrap();
        assert_eq!(merge.skipped, ["a@1.0.0"]);
        assert_eq!(merge.added, ["a@2.0.0", "b@0.1.0"]);
        assert_eq!(merge.repository.components.len(), 2);
    }

    #[test]
    fn different_definitions_are_refused_unless_forced() {
        let local = repository(LOCAL);
        let archived = repository(&LOCAL.replace("image: a:1", "image: a:other"));
        let err = merge(Some(&local), &archived, false).unwrap_err();
        assert!(
            format!("{err:#}").contains("differently: `a@1.0.0`"),
            "{err:#}"
        );
        let forced = merge(Some(&local), &archived, true).unwrap();
        assert_eq!(forced.replaced, ["a@1.0.0"]);
        assert_eq!(forced.repository.components[0].versions[0].image, "a:other");
        assert!(forced.repository.components[0].versions[0].latest);
    }

    #[test]
    fn latest_stays_where_it_was() {
        let local = repository(LOCAL);
        let archived = repository(&LOCAL.replace("version: 1.0.0", "version: 3.0.0"));
        let merge = merge(Some(&local), &archived, false).unwrap();
        assert_eq!(
            merge.not_latest,
            [("a@3.0.0".to_owned(), "1.0.0".to_owned())]
        );
        let latest: Vec<bool> = merge.repository.components[0]
            .versions
            .iter()
            .map(|v| v.latest)
            .collect();
        assert_eq!(latest, [true, false]);
    }
}
