//! Replacing an environment's whole content with a snapshot from elsewhere (`e state push`,
//! and `e state migrate` into a backend): refused when the snapshot belongs to another
//! lineage or is older than what the backend holds, unless forced, as Terraform's
//! `state push` does. Done in one transaction under the lock, like a commit.

use anyhow::{Context as _, bail};

use super::errors::{Plain as _, committing};
use super::{Change, Postgres, Refusal, Serial, Snapshot, apply};
use crate::run::tree::Tree;

impl Postgres {
    /// Makes `pushed` the environment's content. Refused unless this e holds the lock, and,
    /// without `force`, unless `pushed` has the environment's lineage and a serial at least
    /// its own. The serial after is one more than the higher of the two (so that every run
    /// that read before sees it moved); a forced push also takes the pushed lineage. Returns
    /// the serial after.
    pub async fn push(&mut self, pushed: &Snapshot, force: bool) -> anyhow::Result<Serial> {
        let backend = self.settings.display().to_owned();
        let environment = self.settings.environment.clone();
        if !self.locked {
            return Err(Refusal::LockLost {
                backend,
                environment,
            }
            .into());
        }
        let current = self.load().await?;
        let found = &current.serial;
        if !force {
            if pushed.serial.lineage != found.lineage {
                bail!(
                    "the snapshot has the lineage {}, the environment `{environment}` in the backend `{backend}` has {}: they are different environments; nothing was pushed\nhint: pass `--force` to replace it anyway",
                    pushed.serial.lineage,
                    found.lineage
                );
            }
            if pushed.serial.serial < found.serial {
                bail!(
                    "the snapshot is at serial {}, older than the environment `{environment}` in the backend `{backend}` (serial {}); nothing was pushed\nhint: run `e state pull DIR` for the current one, or pass `--force` to replace it anyway",
                    pushed.serial.serial,
                    found.serial
                );
            }
        }
        let change = Change::between(&current.tree, &pushed.tree);
        let after = Serial {
            lineage: if force {
                pushed.serial.lineage.clone()
            } else {
                found.lineage.clone()
            },
            serial: pushed.serial.serial.max(found.serial) + 1,
        };
        let environments = self.table("e_environments");
        let entries = self.table("e_entries");
        let failed = || format!("failed to push to the backend `{backend}`: nothing was pushed");
        let transaction = self
            .client
            .transaction()
            .await
            .plain()
            .with_context(failed)?;
        // The serial read above must still be the one: a commit in between is not overwritten.
        let serial = i64::try_from(found.serial).context("the serial overflowed")?;
        let updated = transaction
            .execute(
                &format!(
                    "UPDATE {environments} SET lineage = $3, serial = $4, updated = now()
                     WHERE name = $1 AND serial = $2 AND lineage = $5"
                ),
                &[
                    &environment,
                    &serial,
                    &after.lineage,
                    &i64::try_from(after.serial).context("the serial overflowed")?,
                    &found.lineage,
                ],
            )
            .await
            .plain()
            .with_context(failed)?;
        if updated != 1 {
            transaction.rollback().await.plain().with_context(failed)?;
            let now = self.load().await?.serial;
            return Err(Refusal::Moved {
                backend,
                environment,
                expected: found.clone(),
                found: now,
            }
            .into());
        }
        apply(&transaction, &entries, &environment, &change)
            .await
            .plain()
            .with_context(failed)?;
        transaction
            .commit()
            .await
            .map_err(|err| committing(err, &backend, "pushing", "as pushed"))?;
        Ok(after)
    }
}

/// A snapshot's tree without what never travels between stores: e's transient areas (runs
/// in progress, kept results, commits being made, temporary files), the lock file, and the
/// serial file (a backend keeps lineage and serial in its own row).
pub fn portable(tree: &Tree) -> Tree {
    ["runs", "kept", "commit", "tmp", "lock", "serial.json"]
        .iter()
        .fold(tree.clone(), |tree, name| {
            tree.without(&format!("{}/{name}", super::E_DIR))
        })
}
