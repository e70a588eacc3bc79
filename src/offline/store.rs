//! What `e import` puts beside the repository and into the repository machine's store, from an
//! archive already verified: the Debian package repositories, the e binary that wrote the
//! archive, and the environment's configuration (modules' configs into the shared directory,
//! e's settings as a note).
//!
//! A store (`e import --store DIR`, served by `e serve DIR`) is laid out as the cluster's hosts
//! read it:
//!
//! ```text
//! files/<sha256>/<name>              the files of the bills of materials
//! debian/<release>/{Packages,...}    a flat apt repository per release
//! ```
//!
//! Every write goes through a temporary file and a rename; a file already there with the same
//! bytes is left alone.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;

use super::bill::PACKAGES_DIR;
use crate::archive::{self, Verified};
use crate::output;
use crate::store::SharedDir;

/// Puts every package set beside the repository (`packages/debian/<release>/`) and, with a
/// store, into it (`debian/<release>/`); returns one table row per release.
pub fn packages(
    verified: &Verified,
    base: &Path,
    store: Option<&Path>,
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut by_release: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for path in verified.entries.keys() {
        if let Some(rest) = path.strip_prefix(&format!("{PACKAGES_DIR}/debian/"))
            && let Some((release, _)) = rest.split_once('/')
        {
            by_release.entry(release.to_owned()).or_default().push(path);
        }
    }
    let mut rows = Vec::new();
    for (release, paths) in by_release {
        let debs = paths.iter().filter(|p| p.ends_with(".deb")).count();
        let mut added = 0;
        for path in &paths {
            if crate::commands::import::put_file(verified, path, &base.join(path))? == "added" {
                added += 1;
            }
            if let Some(store) = store {
                let name = path.rsplit('/').next().unwrap_or_default();
                crate::commands::import::put_file(
                    verified,
                    path,
                    &store.join("debian").join(&release).join(name),
                )?;
            }
        }
        let mut result = format!("{debs} .deb and the index, {added} file(s) added");
        if let Some(store) = store {
            result.push_str(&format!(
                "; served from `{}` as `deb [trusted=yes] http://REPOSITORY/debian/{release} ./`",
                store.join("debian").join(&release).display()
            ));
        }
        rows.push(vec![
            "packages".to_owned(),
            format!("{PACKAGES_DIR}/debian/{release}/"),
            result,
        ]);
    }
    Ok(rows)
}

/// Puts the archive's e binary beside the repository (`bin/e`, executable) and says how to
/// install it; `None` for an archive that has none (format 1).
pub fn binary(verified: &Verified, base: &Path) -> anyhow::Result<Option<Vec<String>>> {
    if !verified.entries.contains_key(archive::E_BINARY) {
        return Ok(None);
    }
    let target = base.join(archive::E_BINARY);
    crate::commands::import::put_file(verified, archive::E_BINARY, &target)?;
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make `{}` executable", target.display()))?;
    let version = &verified.manifest.e_version;
    let here = env!("CARGO_PKG_VERSION");
    let mut result = format!(
        "e {version}, put at `{}`; install it on this machine and the others with `install -m 0755 {} /usr/local/bin/e`",
        target.display(),
        target.display()
    );
    if version != here {
        result.push_str(&format!(" (this e is {here})"));
    }
    Ok(Some(vec![
        "e".to_owned(),
        archive::E_BINARY.to_owned(),
        result,
    ]))
}

/// Writes a module's config into the shared directory unless it holds one already (the local
/// one wins: it may hold the secrets the archive left out).
pub fn config(verified: &Verified, shared: &SharedDir, path: &str) -> anyhow::Result<Vec<String>> {
    let name = path.rsplit('/').next().unwrap_or_default();
    let target = shared.root().join(name);
    let result = if fs::symlink_metadata(&target).is_ok() {
        "kept the shared directory's own".to_owned()
    } else {
        let mut bytes = Vec::new();
        verified
            .open(path)?
            .read_to_end(&mut bytes)
            .with_context(|| format!("failed to read `{path}` from the archive"))?;
        shared.write_atomic(&target, &bytes)?;
        format!(
            "written to `{}` (secret values are `{}`: set them again)",
            target.display(),
            crate::secrets::MASK
        )
    };
    Ok(vec!["config".to_owned(), path.to_owned(), result])
}

/// Says which of e's settings the exporting side used, so that this side can set the same.
pub fn settings_note(verified: &Verified) {
    if !verified.entries.contains_key(archive::SETTINGS) {
        return;
    }
    let mut bytes = Vec::new();
    let Ok(mut entry) = verified.open(archive::SETTINGS) else {
        return;
    };
    if entry.read_to_end(&mut bytes).is_err() {
        return;
    }
    let Ok(settings) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return;
    };
    let variables: Vec<String> = settings["variables"]
        .as_object()
        .map(|vars| {
            vars.iter()
                .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if !variables.is_empty() {
        output::note(&format!(
            "e: the exporting side ran with {}; set what applies here too",
            variables.join(" ")
        ));
    }
    output::note("e: secrets never travel: give this side its own (`--secrets FILE`)");
}
