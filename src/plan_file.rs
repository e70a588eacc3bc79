//! Saved plans: `e plan MODULE --out FILE` writes what the module's plan said together with
//! everything it was made from (the shared directory's lineage and serial, the module's
//! config, the repository's definition of the version, the image's id); `e apply FILE`
//! applies it without asking again, and only while all of that is unchanged; `e show FILE`
//! prints it. The file is JSON, versioned by `format_version`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::archive::sha256_hex;
use crate::repository::{Entry, ModuleSpec};
use crate::run::Report;
use crate::store::{Serial, SharedDir};

/// The `format` field of every plan file.
pub const FORMAT: &str = "e-plan";
/// The version of the plan file's layout.
pub const FORMAT_VERSION: u32 = 1;

/// What `e apply` was given: a module, or a saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyTarget {
    /// `MODULE[@VERSION]`.
    Module(ModuleSpec),
    /// A plan file.
    Plan(PathBuf),
}

impl FromStr for ApplyTarget {
    type Err = String;

    /// A path (it has a `/`, or names a file here) is a plan file; anything else a module
    /// (module names may hold dots: `kafka.v2`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains('/') || Path::new(text).is_file() {
            return Ok(ApplyTarget::Plan(PathBuf::from(text)));
        }
        text.parse().map(ApplyTarget::Module)
    }
}

impl std::fmt::Display for ApplyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyTarget::Module(spec) => write!(f, "{spec}"),
            ApplyTarget::Plan(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The e that wrote it.
    pub e_version: String,
    /// When it was made.
    #[serde(with = "crate::store::time")]
    pub created: SystemTime,
    /// Module name.
    pub module: String,
    /// Module version.
    pub version: String,
    /// The image the repository names.
    pub image: String,
    /// The engine's id of the image that planned (`sha256:...`).
    pub image_id: String,
    /// sha256 of the repository's definition of the version.
    pub definition_sha256: String,
    /// sha256 of `<module>-config.yml` then (`null`: there was none).
    pub config_sha256: Option<String>,
    /// The shared directory's lineage then.
    pub lineage: String,
    /// Its serial then.
    pub serial: u64,
    /// Arguments after `--`, given to the plan and to be given to the apply.
    pub extra: Vec<String>,
    /// Whether the plan has changes (the module's plan exited 2).
    pub changes: bool,
    /// The plan's standard output, secrets masked.
    pub stdout: String,
    /// Its standard error, secrets masked.
    pub stderr: String,
}

/// What a plan is checked against: the same facts, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basis {
    /// The image's id.
    pub image_id: String,
    /// sha256 of the version's definition.
    pub definition_sha256: String,
    /// sha256 of the config file, if any.
    pub config_sha256: Option<String>,
    /// Lineage and serial.
    pub serial: Serial,
}

impl Basis {
    /// The facts of `entry` in `shared` now; `image_id` is the engine's id of its image.
    pub fn now(shared: &SharedDir, entry: Entry<'_>, image_id: &str) -> anyhow::Result<Basis> {
        let definition = serde_json::to_vec(entry.version)?;
        let config = shared
            .root()
            .join(format!("{}-config.yml", entry.module.name));
        let config_sha256 = match std::fs::read(&config) {
            Ok(bytes) => Some(sha256_hex(&bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                return Err(err).with_context(|| format!("failed to read `{}`", config.display()));
            }
        };
        Ok(Basis {
            image_id: image_id.to_owned(),
            definition_sha256: sha256_hex(&definition),
            config_sha256,
            serial: shared.serial()?,
        })
    }
}

impl SavedPlan {
    /// The plan `report` made for `entry` on `basis`.
    pub fn new(entry: Entry<'_>, basis: Basis, extra: &[String], report: &Report) -> SavedPlan {
        SavedPlan {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            e_version: env!("CARGO_PKG_VERSION").to_owned(),
            created: SystemTime::now(),
            module: entry.module.name.clone(),
            version: entry.version.version.to_string(),
            image: entry.version.image.clone(),
            image_id: basis.image_id,
            definition_sha256: basis.definition_sha256,
            config_sha256: basis.config_sha256,
            lineage: basis.serial.lineage,
            serial: basis.serial.serial,
            extra: extra.to_vec(),
            changes: report.exit_code == 2,
            stdout: report.stdout.clone(),
            stderr: report.stderr.clone(),
        }
    }

    /// `module@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.module, self.version)
    }

    /// Writes the plan to `path` (atomically: a reader never sees half of it).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut temp = crate::store::new_file_in(dir)
            .with_context(|| format!("failed to write the plan `{}`", path.display()))?;
        std::io::Write::write_all(&mut temp, &serde_json::to_vec_pretty(self)?)?;
        temp.as_file().sync_all()?;
        temp.persist(path)
            .with_context(|| format!("failed to write the plan `{}`", path.display()))?;
        Ok(())
    }

    /// Reads a plan file, refusing anything that is not one.
    pub fn read(path: &Path) -> anyhow::Result<SavedPlan> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("failed to read the plan `{}`", path.display()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|err| {
            anyhow::anyhow!(
                "`{}` is not a plan file: {err}\nhint: write one with `e plan MODULE --out {}`",
                path.display(),
                path.display()
            )
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            bail!(
                "`{}` is not a plan file of e (no `\"format\": \"{FORMAT}\"`)\nhint: write one with `e plan MODULE --out {}`",
                path.display(),
                path.display()
            );
        }
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(FORMAT_VERSION)) {
            bail!(
                "`{}` is a plan of format version {}, this e reads version {FORMAT_VERSION}\nhint: make the plan again with this e",
                path.display(),
                version.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
            );
        }
        serde_json::from_value(value)
            .with_context(|| format!("`{}` is a damaged plan file", path.display()))
    }

    /// Why the plan no longer applies on `now`; empty when it does.
    pub fn stale(&self, now: &Basis) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.lineage != now.serial.lineage {
            reasons.push(format!(
                "it was made for another shared directory (lineage {}, this one is {})",
                self.lineage, now.serial.lineage
            ));
        } else if self.serial != now.serial.serial {
            reasons.push(format!(
                "the shared state changed since it was made (serial {} then, {} now)",
                self.serial, now.serial.serial
            ));
        }
        if self.config_sha256 != now.config_sha256 {
            reasons.push(format!("the config `{}-config.yml` changed", self.module));
        }
        if self.definition_sha256 != now.definition_sha256 {
            reasons.push(format!(
                "the repository's definition of `{}` changed",
                self.id()
            ));
        }
        if self.image_id != now.image_id {
            reasons.push(format!(
                "the image `{}` is another image ({} then, {} now)",
                self.image,
                short(&self.image_id),
                short(&now.image_id)
            ));
        }
        reasons
    }
}

/// An image id shortened as `docker images` shows it.
pub fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis() -> Basis {
        Basis {
            image_id: "sha256:aaaaaaaaaaaaaaaa".into(),
            definition_sha256: "d1".into(),
            config_sha256: Some("c1".into()),
            serial: Serial {
                lineage: "l1".into(),
                serial: 3,
            },
        }
    }

    fn plan() -> SavedPlan {
        let b = basis();
        SavedPlan {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            e_version: "0".into(),
            created: SystemTime::UNIX_EPOCH,
            module: "azi".into(),
            version: "0.1.0".into(),
            image: "rel/azi:0.1.0".into(),
            image_id: b.image_id,
            definition_sha256: b.definition_sha256,
            config_sha256: b.config_sha256,
            lineage: b.serial.lineage,
            serial: b.serial.serial,
            extra: vec![],
            changes: true,
            stdout: "+ vm\n".into(),
            stderr: String::new(),
        }
    }

    #[test]
    fn a_plan_is_stale_when_anything_it_was_made_from_changed() {
        let plan = plan();
        assert!(plan.stale(&basis()).is_empty());
        let mut now = basis();
        now.serial.serial = 4;
        assert!(plan.stale(&now)[0].contains("serial 3 then, 4 now"));
        let mut now = basis();
        now.serial.lineage = "l2".into();
        assert!(plan.stale(&now)[0].contains("another shared directory"));
        let mut now = basis();
        now.config_sha256 = None;
        assert!(plan.stale(&now)[0].contains("`azi-config.yml` changed"));
        let mut now = basis();
        now.definition_sha256 = "d2".into();
        assert!(plan.stale(&now)[0].contains("definition of `azi@0.1.0`"));
        let mut now = basis();
        now.image_id = "sha256:bbbbbbbbbbbbbbbb".into();
        assert!(plan.stale(&now)[0].contains("aaaaaaaaaaaa then, bbbbbbbbbbbb now"));
    }

    #[test]
    fn a_plan_file_round_trips_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azi.plan");
        plan().write(&path).unwrap();
        assert_eq!(SavedPlan::read(&path).unwrap(), plan());
        std::fs::write(&path, "{}").unwrap();
        let err = SavedPlan::read(&path).unwrap_err().to_string();
        assert!(err.contains("is not a plan file of e"), "{err}");
        std::fs::write(&path, "not json").unwrap();
        assert!(SavedPlan::read(&path).is_err());
    }

    #[test]
    fn apply_takes_a_module_or_a_plan_file() {
        assert_eq!(
            "azi@0.1.0".parse::<ApplyTarget>().unwrap(),
            ApplyTarget::Module("azi@0.1.0".parse().unwrap())
        );
        assert_eq!(
            "kafka.v2".parse::<ApplyTarget>().unwrap(),
            ApplyTarget::Module("kafka.v2".parse().unwrap())
        );
        // A file of that name here is a plan (what `e plan --out azi.plan` wrote).
        let file = tempfile::NamedTempFile::new_in(".").unwrap();
        let name = file
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            name.parse::<ApplyTarget>().unwrap(),
            ApplyTarget::Plan(name.into())
        );
        assert_eq!(
            "plans/azi".parse::<ApplyTarget>().unwrap(),
            ApplyTarget::Plan("plans/azi".into())
        );
    }
}
