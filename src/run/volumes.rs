//! A module's private `mounts:` as engine volumes: `e-<shared id>-<module>-<path>`, one per
//! module in a shared directory (not per version, so they survive upgrades, and in the engine,
//! so they work on remote engines). A new volume is given to the uid the module runs as and
//! filled from the data e kept on the host before (`legacy.rs`); `.e/volumes.json` records
//! for which uid each volume was made, so that a version that runs as another uid gets the
//! volume re-owned first instead of failing to write it.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::legacy;
use crate::repository::Entry;
use crate::runtime::{
    LABEL_MANAGED_BY, LABEL_MODULE, LABEL_MOUNT, LABEL_SHARED, Outcome, RunSpec, Volume,
};
use crate::store::SharedDir;

/// The record's path in e's area.
const RECORD: &str = "volumes.json";

/// The name of the engine volume behind a declared mount.
pub fn volume_name(shared_id: &str, module: &str, container_path: &str) -> String {
    let path: String = container_path
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "e-{}-{module}-{path}",
        &shared_id[..12.min(shared_id.len())]
    )
}

/// For which `uid:gid` each volume was made, by name.
fn owners(shared: &SharedDir) -> anyhow::Result<BTreeMap<String, String>> {
    let path = shared.e_dir().join(RECORD);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "`{}` is damaged\nhint: remove it; e re-owns the volumes once",
                path.display()
            )
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(err) => Err(err).with_context(|| format!("failed to read `{}`", path.display())),
    }
}

/// The volumes of a run of `entry` whose module runs as `owner`.
pub fn for_run(
    shared: &SharedDir,
    shared_id: &str,
    entry: Entry<'_>,
    owner: (u32, u32),
) -> anyhow::Result<Vec<Volume>> {
    let recorded = owners(shared)?;
    let user = format!("{}:{}", owner.0, owner.1);
    entry
        .version
        .mounts
        .iter()
        .map(|mount| {
            let name = volume_name(shared_id, &entry.module.name, mount);
            Ok(Volume {
                reown: recorded.get(&name) != Some(&user),
                labels: [
                    (LABEL_MANAGED_BY, "e".to_owned()),
                    (LABEL_SHARED, shared_id.to_owned()),
                    (LABEL_MODULE, entry.module.name.clone()),
                    (LABEL_MOUNT, mount.clone()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                seed: legacy::seed(shared, &entry.module.name, mount, owner)?,
                container: mount.clone(),
                name,
            })
        })
        .collect()
}

/// After a run: records whom the volumes it created or re-owned belong to, and moves the old
/// host data of those it filled aside.
pub fn settle(
    shared: &SharedDir,
    module: &str,
    spec: &RunSpec,
    outcome: &Outcome,
) -> anyhow::Result<()> {
    for volume in spec
        .volumes
        .iter()
        .filter(|v| outcome.seeded.contains(&v.name))
    {
        legacy::moved(shared, module, &volume.container, &volume.name)?;
    }
    if outcome.owned.is_empty() {
        return Ok(());
    }
    let mut recorded = owners(shared)?;
    let user = &spec.confinement.user;
    for name in &outcome.owned {
        recorded.insert(name.clone(), format!("{}:{}", user.uid, user.gid));
    }
    shared.write_atomic(
        &shared.e_dir().join(RECORD),
        serde_json::to_string_pretty(&recorded)?.as_bytes(),
    )
}
