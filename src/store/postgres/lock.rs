//! The lock of an environment in a PostgreSQL backend: a session advisory lock held on the
//! backend's own connection (never a pooled one), and a row in `e_holders` that names who holds
//! it, trusted only while its session holds the lock (checked in `pg_locks`). Dying or losing
//! the connection frees it at once, on the server's side.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::errors::Plain as _;
use super::{Holder, LOCK_POLL, Postgres, Refusal, settings};

impl Postgres {
    /// Takes the environment's lock, waiting up to `timeout` for its holder, and says who
    /// holds it through `waiting` once, when it starts to wait. `command` describes this e
    /// to whoever waits on it.
    pub async fn lock(
        &mut self,
        command: &str,
        timeout: Duration,
        mut waiting: impl FnMut(&Refusal),
    ) -> anyhow::Result<()> {
        if self.locked {
            return Ok(());
        }
        let started = Instant::now();
        let mut said = false;
        loop {
            let got: bool = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&self.lock_key])
                .await
                .plain()
                .with_context(|| format!("failed to lock the backend `{}`", self.display()))?
                .get(0);
            if got {
                break;
            }
            let refusal = self.who_holds().await?;
            if started.elapsed() >= timeout {
                return Err(refusal.into());
            }
            if !said {
                waiting(&refusal);
                said = true;
            }
            tokio::time::sleep(LOCK_POLL.min(timeout.saturating_sub(started.elapsed()))).await;
        }
        self.locked = true;
        let holders = self.table("e_holders");
        let user = settings::os_user().unwrap_or_else(|_| "unknown".into());
        let pid = i32::try_from(std::process::id()).unwrap_or(-1);
        self.client
            .execute(
                &format!(
                    "INSERT INTO {holders} (environment, user_name, host, pid, command, since, backend_pid)
                     VALUES ($1, $2, $3, $4, $5, now(), pg_backend_pid())
                     ON CONFLICT (environment) DO UPDATE SET user_name = EXCLUDED.user_name,
                       host = EXCLUDED.host, pid = EXCLUDED.pid, command = EXCLUDED.command,
                       since = EXCLUDED.since, backend_pid = EXCLUDED.backend_pid"
                ),
                &[
                    &self.settings.environment,
                    &user,
                    &crate::store::machine::host_name(),
                    &pid,
                    &command,
                ],
            )
            .await
            .plain()
            .with_context(|| format!("failed to record the lock's holder in the backend `{}`", self.display()))?;
        Ok(())
    }

    /// Who holds the lock now, as a refusal to give (or to show while waiting).
    async fn who_holds(&self) -> anyhow::Result<Refusal> {
        let holders = self.table("e_holders");
        // The holder row counts only if its session holds the lock now: a holder that died
        // left its row behind.
        let row = self
            .client
            .query_opt(
                &format!(
                    "SELECT l.pid, h.user_name, h.host, h.pid, h.command, h.since
                     FROM pg_locks l
                     LEFT JOIN {holders} h ON h.environment = $1 AND h.backend_pid = l.pid
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND l.classid = (($2::int8 >> 32) & 4294967295)::oid AND l.objid = ($2::int8 & 4294967295)::oid
                     LIMIT 1"
                ),
                &[&self.settings.environment, &self.lock_key],
            )
            .await
            .plain()
            .with_context(|| format!("failed to find who locks the backend `{}`", self.display()))?;
        let (backend_pid, holder) = match row {
            Some(row) => {
                let holder = row.get::<_, Option<String>>(1).map(|user| Holder {
                    user,
                    host: row.get(2),
                    pid: row.get(3),
                    command: row.get(4),
                    since: row.get(5),
                });
                (row.get(0), holder)
            }
            None => (0, None),
        };
        Ok(Refusal::Locked {
            backend: self.display().to_owned(),
            environment: self.settings.environment.clone(),
            holder,
            backend_pid,
        })
    }

    /// Releases the lock and says so in the holder row. Dropping the connection does the
    /// same on the server's side.
    pub async fn unlock(&mut self) -> anyhow::Result<()> {
        if !self.locked {
            return Ok(());
        }
        let holders = self.table("e_holders");
        self.client
            .execute(
                &format!("DELETE FROM {holders} WHERE environment = $1 AND backend_pid = pg_backend_pid()"),
                &[&self.settings.environment],
            )
            .await?;
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&self.lock_key])
            .await?;
        self.locked = false;
        Ok(())
    }
}
