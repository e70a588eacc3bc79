//! The module's private record of the state section it last applied, kept in a directory that
//! the repository declares as a mount of the module (`/var/lib/<module>`), so that it outlives
//! the container and nobody else writes it. `audit` compares the state with it to find hand
//! changes.
//!
//! `apply` writes the record in two steps around the state: [`Record::prepare`] before (so that a
//! missing mount fails before the state changes), [`Prepared::commit`] after. `destroy` removes
//! it with [`Record::remove`] after the state is saved, so that a failure leaves the record of a
//! section that e puts back.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::Error;
use crate::state::to_yaml;

/// Where a module keeps the copy of its last applied state section.
#[derive(Debug, Clone)]
pub struct Record {
    dir: PathBuf,
    module: String,
}

/// A record written to a temporary file, waiting for the state to be saved.
#[derive(Debug)]
#[must_use = "a prepared record is only kept once committed"]
pub struct Prepared {
    temporary: PathBuf,
    path: PathBuf,
}

impl Record {
    /// The record of `module` in `dir`, normally the mount `/var/lib/<module>`.
    pub fn new(dir: impl Into<PathBuf>, module: &str) -> Record {
        Record {
            dir: dir.into(),
            module: module.to_owned(),
        }
    }

    /// The record of `module` in the mount `/var/lib/<name>` that the repository declares for
    /// the module. `<NAME>_RECORD_DIR` (such as `AZI_RECORD_DIR`) puts it elsewhere, to run the
    /// module outside a container.
    pub fn in_mount(name: &str, module: &str) -> Record {
        let variable = format!("{}_RECORD_DIR", name.to_ascii_uppercase());
        let dir = std::env::var_os(variable)
            .map_or_else(|| Path::new("/var/lib").join(name), PathBuf::from);
        Record::new(dir, module)
    }

    /// The file that holds the record.
    pub fn path(&self) -> PathBuf {
        self.dir.join("applied.yml")
    }

    /// The section last applied, or `None` if the module never applied.
    pub fn load(&self) -> Result<Option<Value>, Error> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(Error::new(format!(
                    "failed to read `{}`: {err}",
                    path.display()
                )));
            }
        };
        let mapping: Mapping = serde_yaml::from_str(&text)
            .map_err(|err| Error::new(format!("invalid record `{}`: {err}", path.display())))?;
        match mapping.get(self.module.as_str()) {
            Some(section) => Ok(Some(section.clone())),
            None => Err(Error::new(format!(
                "the record `{}` has no `{}` section",
                path.display(),
                self.module
            ))),
        }
    }

    /// Deletes the record (and a temporary one a failed apply left behind), for `destroy`. A
    /// record that is not there, or a mount that is missing, is nothing to delete.
    pub fn remove(&self) -> Result<(), Error> {
        for path in [self.path(), self.dir.join("applied.yml.tmp")] {
            match fs::remove_file(&path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::new(format!(
                        "failed to remove `{}`: {err}",
                        path.display()
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes `section` next to the record, without replacing it yet.
    pub fn prepare(&self, section: &Value) -> Result<Prepared, Error> {
        let path = self.path();
        let temporary = self.dir.join("applied.yml.tmp");
        let mut mapping = Mapping::new();
        mapping.insert(Value::String(self.module.clone()), section.clone());
        let text = to_yaml(&mapping)?;
        File::create(&temporary)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .map_err(|err| {
                Error::new(format!("failed to write `{}`: {err}", temporary.display())).with_hint(
                    format!(
                        "`{}` keeps its records in `{}`: declare it in the module's `mounts` in \
                         repository.yaml",
                        self.module,
                        self.dir.display()
                    ),
                )
            })?;
        Ok(Prepared { temporary, path })
    }
}

impl Prepared {
    /// Replaces the record with the prepared one.
    pub fn commit(self) -> Result<(), Error> {
        fs::rename(&self.temporary, &self.path).map_err(|err| {
            Error::new(format!(
                "the state was saved but the record `{}` was not: {err}",
                self.path.display()
            ))
            .with_hint("run `apply` again so that `audit` compares with what was applied")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_what_apply_recorded_and_then_nothing() {
        let dir = std::env::temp_dir().join(format!("e-modules-record-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let record = Record::new(&dir, "azi");
        let section: Value = serde_yaml::from_str("{size: 1}").unwrap();
        record.prepare(&section).unwrap().commit().unwrap();
        assert_eq!(record.load().unwrap(), Some(section));
        record.remove().unwrap();
        assert_eq!(record.load().unwrap(), None);
        record.remove().unwrap();
        Record::new(dir.join("missing"), "azi").remove().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
