//! An environment kept in PostgreSQL, for teams: every file of the shared directory (what
//! modules see and e's records under `.e/`) as rows, with the environment's lineage and
//! serial, so that operators on many machines work on one truth.
//!
//! This file owns the backend's schema (created on first use, refused when a newer e made
//! it), the lock and the two operations on a snapshot: [`Postgres::load`] reads the whole
//! snapshot in one read-only transaction, and [`Postgres::commit`] applies a [`Change`] as a
//! compare-and-swap on the serial, in one transaction, so that no update is ever lost, even
//! by a holder whose lock was lost. The lock is a session advisory lock on the connection of
//! this [`Postgres`], never on a pool, plus a row naming its holder: a holder that dies or
//! whose connection drops frees it at once, and its commit cannot happen afterwards since
//! commits go through the same connection. Connection settings are `postgres/settings.rs`,
//! TLS `postgres/tls.rs`, and what the server's errors mean in plain words `postgres/errors.rs`.
//! It never prints: waiting is reported through a callback.
//!
//! Schema, in the schema named by the URL (see docs/backends.md):
//! ```text
//! e_schema(version)                                   the layout's version: 1
//! e_environments(name, lineage, serial, created, updated)
//! e_entries(environment, path, kind 'd'|'f', mode, bytes)   one row per file or directory
//! e_holders(environment, user_name, host, pid, command, since, backend_pid)
//! ```

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use tokio_postgres::Client;

use super::{Change, E_DIR, Serial};
use crate::run::tree::{Node, Tree};
use errors::{Plain as _, committing, explain_db};

mod errors;
mod lock;
mod push;
pub mod settings;
pub mod tls;
pub use push::portable;
pub use settings::Settings;

/// The version of the schema this e writes; a database with a higher one was set up by a
/// newer e and is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// How often a waiting e asks for the lock again.
const LOCK_POLL: Duration = Duration::from_millis(50);

/// The advisory lock (transaction level) that serializes creating the schema.
const SCHEMA_LOCK: i64 = 0x6500_5343_4845_4d41;

/// The current snapshot of an environment: every entry, and the serial it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Lineage and serial of this content.
    pub serial: Serial,
    /// Every file and directory: what modules see, and e's records under `.e/`.
    pub tree: Tree,
}

/// Who holds an environment's lock, as its holder said when it took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The operating system user.
    pub user: String,
    /// The machine.
    pub host: String,
    /// The e process.
    pub pid: i32,
    /// What it runs (`e apply bmk`).
    pub command: String,
    /// When it took the lock.
    pub since: SystemTime,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (e pid {}) running `{}` since {}",
            self.user,
            self.host,
            self.pid,
            self.command,
            humantime::format_rfc3339_seconds(self.since)
        )
    }
}

/// Why the backend refused: the errors a caller branches on.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Another session holds the lock.
    #[error(
        "the environment `{environment}` in the backend `{backend}` is locked by {}\nhint: wait for it to finish, or pass `--lock-timeout 5m` to wait longer",
        holder.as_ref().map_or_else(|| format!("a session (server pid {backend_pid}) that has not said who it is yet"), Holder::to_string)
    )]
    Locked {
        /// The backend, without its password.
        backend: String,
        /// The environment's name.
        environment: String,
        /// Who holds it, when its row says so.
        holder: Option<Holder>,
        /// The server process of the holder's connection.
        backend_pid: i32,
    },
    /// The serial moved since the snapshot the change was made from.
    #[error(
        "the environment `{environment}` in the backend `{backend}` changed since this run read it ({expected}, now {found}): nothing was committed\nhint: run the command again, on the current state"
    )]
    Moved {
        /// The backend, without its password.
        backend: String,
        /// The environment's name.
        environment: String,
        /// The serial the change was made from.
        expected: Serial,
        /// The serial now.
        found: Serial,
    },
    /// This session no longer holds the lock.
    #[error(
        "this e no longer holds the lock of the environment `{environment}` in the backend `{backend}`: nothing was committed\nhint: run the command again"
    )]
    LockLost {
        /// The backend, without its password.
        backend: String,
        /// The environment's name.
        environment: String,
    },
}

/// A connection to one environment in a PostgreSQL backend. The lock, when taken, belongs to
/// this connection alone; dropping it closes the connection, which frees the lock.
pub struct Postgres {
    client: Client,
    settings: Settings,
    lock_key: i64,
    backend_pid: i32,
    locked: bool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("backend", &self.settings.display())
            .field("locked", &self.locked)
            .finish()
    }
}

impl Postgres {
    /// Connects, creates the schema and the environment if they are not there yet.
    pub async fn connect(settings: Settings) -> anyhow::Result<Postgres> {
        let connector = tls::connector(&settings.tls).with_context(|| {
            format!("failed to connect to the backend `{}`", settings.display())
        })?;
        let (client, connection) = match settings.config.connect(connector).await {
            Ok(connected) => connected,
            Err(err) => {
                if let Some(explained) = tls::explain(&err) {
                    return Err(explained.context(format!(
                        "failed to connect to the backend `{}`",
                        settings.display()
                    )));
                }
                return Err(match explain_db(err) {
                    Ok(explained) => explained.context(format!(
                        "failed to connect to the backend `{}`",
                        settings.display()
                    )),
                    Err(err) => anyhow::Error::new(err).context(format!(
                        "failed to connect to the backend `{}`\nhint: check that the server runs and that the user and password are right (the URL, `PG*` variables or `~/.pgpass`)",
                        settings.display()
                    )),
                });
            }
        };
        tokio::spawn(async move {
            // The error, if any, reaches the caller through the next query.
            let _ = connection.await;
        });
        let backend_pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .plain()
            .with_context(|| format!("the backend `{}` does not answer", settings.display()))?
            .get(0);
        let lock_key = lock_key(&settings.schema, &settings.environment);
        let mut postgres = Postgres {
            client,
            settings,
            lock_key,
            backend_pid,
            locked: false,
        };
        postgres.prepare().await.with_context(|| {
            format!(
                "failed to set up e's tables in the backend `{}`",
                postgres.settings.display()
            )
        })?;
        Ok(postgres)
    }

    /// The backend, as a URL without its password.
    pub fn display(&self) -> &str {
        self.settings.display()
    }

    /// The server process of this connection (for `pg_terminate_backend` in tests).
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// `"schema".table`.
    fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.settings.schema)
    }

    /// Creates the schema and the environment's row when missing; refuses a newer schema.
    async fn prepare(&mut self) -> anyhow::Result<()> {
        let version = self
            .client
            .query_opt(
                &format!("SELECT max(version) FROM {}", self.table("e_schema")),
                &[],
            )
            .await;
        let version: Option<i32> = match version {
            Ok(row) => row.and_then(|row| row.get(0)),
            Err(err) if is_missing(&err) => None,
            Err(err) => return Err(err).plain(),
        };
        match version {
            Some(SCHEMA_VERSION) => {}
            Some(newer) if newer > SCHEMA_VERSION => bail!(
                "its schema `{}` has version {newer}, made by a newer e (this e knows {SCHEMA_VERSION})\nhint: upgrade e on this machine",
                self.settings.schema
            ),
            _ => self.create_schema().await?,
        }
        // Written only when missing, so that a read-only database (a standby) can be read.
        let environments = self.table("e_environments");
        let known = self
            .client
            .query_opt(
                &format!("SELECT 1 FROM {environments} WHERE name = $1"),
                &[&self.settings.environment],
            )
            .await
            .plain()?
            .is_some();
        if !known {
            self.client
                .execute(
                    &format!(
                        "INSERT INTO {environments} (name, lineage, serial) VALUES ($1, $2, 0) ON CONFLICT (name) DO NOTHING"
                    ),
                    &[&self.settings.environment, &super::random_id()?],
                )
                .await
                .plain()?;
        }
        Ok(())
    }

    /// Creates e's tables, once, even when many e start at the same moment.
    async fn create_schema(&mut self) -> anyhow::Result<()> {
        let schema = &self.settings.schema;
        let transaction = self.client.transaction().await.plain()?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .plain()?;
        transaction
            .batch_execute(&format!(
                r#"
CREATE SCHEMA IF NOT EXISTS "{schema}";
CREATE TABLE IF NOT EXISTS "{schema}".e_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS "{schema}".e_environments (
    name text PRIMARY KEY,
    lineage text NOT NULL,
    serial bigint NOT NULL CHECK (serial >= 0),
    created timestamptz NOT NULL DEFAULT now(),
    updated timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS "{schema}".e_entries (
    environment text NOT NULL REFERENCES "{schema}".e_environments (name) ON DELETE CASCADE,
    path text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('d', 'f')),
    mode integer NOT NULL,
    bytes bytea,
    PRIMARY KEY (environment, path)
);
CREATE TABLE IF NOT EXISTS "{schema}".e_holders (
    environment text PRIMARY KEY REFERENCES "{schema}".e_environments (name) ON DELETE CASCADE,
    user_name text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    command text NOT NULL,
    since timestamptz NOT NULL,
    backend_pid integer NOT NULL
);
"#
            ))
            .await
            .plain()?;
        let version: Option<i32> = transaction
            .query_one(
                &format!("SELECT max(version) FROM \"{schema}\".e_schema"),
                &[],
            )
            .await
            .plain()?
            .get(0);
        match version {
            None => {
                transaction
                    .execute(
                        &format!("INSERT INTO \"{schema}\".e_schema (version) VALUES ($1)"),
                        &[&SCHEMA_VERSION],
                    )
                    .await
                    .plain()?;
            }
            Some(newer) if newer > SCHEMA_VERSION => bail!(
                "its schema `{schema}` has version {newer}, made by a newer e (this e knows {SCHEMA_VERSION})\nhint: upgrade e on this machine"
            ),
            Some(_) => {}
        }
        transaction.commit().await.plain()?;
        Ok(())
    }

    /// The current snapshot, read in one consistent transaction; takes no lock (plans read
    /// this way and never commit).
    pub async fn load(&mut self) -> anyhow::Result<Snapshot> {
        let backend = self.settings.display().to_owned();
        let environments = self.table("e_environments");
        let entries = self.table("e_entries");
        let environment = self.settings.environment.clone();
        let transaction = self
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .plain()
            .with_context(|| format!("failed to read the backend `{backend}`"))?;
        let row = transaction
            .query_one(
                &format!("SELECT lineage, serial FROM {environments} WHERE name = $1"),
                &[&environment],
            )
            .await
            .plain()
            .with_context(|| format!("failed to read the backend `{backend}`"))?;
        let serial = Serial {
            lineage: row.get(0),
            serial: u64::try_from(row.get::<_, i64>(1)).unwrap_or_default(),
        };
        let rows = transaction
            .query(
                &format!(
                    "SELECT path, kind, mode, bytes FROM {entries} WHERE environment = $1 ORDER BY path"
                ),
                &[&environment],
            )
            .await
            .plain()
            .with_context(|| format!("failed to read the backend `{backend}`"))?;
        transaction
            .commit()
            .await
            .plain()
            .with_context(|| format!("failed to read the backend `{backend}`"))?;
        let mut tree = Tree::default();
        for row in rows {
            let path: String = row.get(0);
            let kind: String = row.get(1);
            let mode = u32::try_from(row.get::<_, i32>(2)).unwrap_or(0) & 0o777;
            check_path(&path).map_err(|reason| {
                anyhow::anyhow!(
                    "the backend `{backend}` holds the entry `{path}` of the environment `{environment}`, which {reason}\nhint: remove that row from `{entries}`"
                )
            })?;
            let node = match kind.as_str() {
                "d" => Node::Dir { mode },
                _ => Node::File {
                    bytes: row.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
                    mode,
                },
            };
            tree.entries.insert(path, node);
        }
        Ok(Snapshot { serial, tree })
    }

    /// Commits `change`, made from the snapshot at `expected`, whole or not at all: refused
    /// unless this e holds the lock and the environment is still at `expected`. The serial is
    /// raised when the change touches what modules see or e's record of installed modules
    /// (as the local shared directory counts it). Returns the serial after the commit.
    pub async fn commit(&mut self, expected: &Serial, change: &Change) -> anyhow::Result<Serial> {
        let backend = self.settings.display().to_owned();
        let environment = self.settings.environment.clone();
        if !self.locked {
            return Err(Refusal::LockLost {
                backend,
                environment,
            }
            .into());
        }
        let environments = self.table("e_environments");
        let entries = self.table("e_entries");
        let failed =
            || format!("failed to commit to the backend `{backend}`: nothing was committed");
        let transaction = self
            .client
            .transaction()
            .await
            .plain()
            .with_context(failed)?;
        let row = transaction
            .query_one(
                &format!(
                    "SELECT lineage, serial, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
                       AND l.granted AND l.pid = pg_backend_pid() AND l.objsubid = 1
                       AND l.classid = (($2::int8 >> 32) & 4294967295)::oid AND l.objid = ($2::int8 & 4294967295)::oid)
                     FROM {environments} WHERE name = $1 FOR UPDATE"
                ),
                &[&environment, &self.lock_key],
            )
            .await
            .plain()
            .with_context(failed)?;
        let found = Serial {
            lineage: row.get(0),
            serial: u64::try_from(row.get::<_, i64>(1)).unwrap_or_default(),
        };
        if !row.get::<_, bool>(2) {
            return Err(Refusal::LockLost {
                backend,
                environment,
            }
            .into());
        }
        if found != *expected {
            return Err(Refusal::Moved {
                backend,
                environment,
                expected: expected.clone(),
                found,
            }
            .into());
        }
        let raises = raises_serial(&transaction, &entries, &environment, change)
            .await
            .with_context(failed)?;
        apply(&transaction, &entries, &environment, change)
            .await
            .plain()
            .with_context(failed)?;
        let mut after = found;
        if raises {
            after.serial += 1;
            let serial = i64::try_from(after.serial).context("the serial overflowed")?;
            transaction
                .execute(
                    &format!(
                        "UPDATE {environments} SET serial = $2, updated = now() WHERE name = $1"
                    ),
                    &[&environment, &serial],
                )
                .await
                .plain()
                .with_context(failed)?;
        }
        transaction
            .commit()
            .await
            .map_err(|err| committing(err, &backend, "committing", "as after this run"))?;
        Ok(after)
    }
}

/// Writes `change` into the entries of `environment`, inside the caller's transaction: removes
/// first (a removed directory takes what it holds), then directories and files.
pub(super) async fn apply(
    transaction: &tokio_postgres::Transaction<'_>,
    entries: &str,
    environment: &str,
    change: &Change,
) -> Result<(), tokio_postgres::Error> {
    let mut removes: Vec<&str> = change.removes.iter().map(String::as_str).collect();
    removes.extend(change.cleanup.iter().map(String::as_str));
    if !removes.is_empty() {
        transaction
                .execute(
                    &format!(
                        "DELETE FROM {entries} WHERE environment = $1 AND (path = ANY($2)
                           OR EXISTS (SELECT 1 FROM unnest($2::text[]) AS r(p) WHERE starts_with(path, r.p || '/')))"
                    ),
                    &[&environment, &removes],
                )
                .await?;
    }
    let mut paths: Vec<&str> = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    let mut modes: Vec<i32> = Vec::new();
    let mut contents: Vec<Option<&[u8]>> = Vec::new();
    for (path, mode) in &change.dirs {
        paths.push(path);
        kinds.push("d");
        modes.push((*mode & 0o777) as i32);
        contents.push(None);
    }
    for (path, bytes, mode) in &change.files {
        paths.push(path);
        kinds.push("f");
        modes.push((*mode & 0o777) as i32);
        contents.push(Some(bytes));
    }
    if !paths.is_empty() {
        transaction
                .execute(
                    &format!(
                        "INSERT INTO {entries} (environment, path, kind, mode, bytes)
                         SELECT $1, p, k, m, b FROM unnest($2::text[], $3::text[], $4::int[], $5::bytea[]) AS t(p, k, m, b)
                         ON CONFLICT (environment, path) DO UPDATE
                           SET kind = EXCLUDED.kind, mode = EXCLUDED.mode, bytes = EXCLUDED.bytes"
                    ),
                    &[&environment, &paths, &kinds, &modes, &contents],
                )
                .await?;
    }
    Ok(())
}

/// Whether `change` raises the serial: it touches what modules see, or changes the bytes of
/// e's record of installed modules.
async fn raises_serial(
    transaction: &tokio_postgres::Transaction<'_>,
    entries: &str,
    environment: &str,
    change: &Change,
) -> anyhow::Result<bool> {
    let visible = |path: &str| path != E_DIR && !path.starts_with(&format!("{E_DIR}/"));
    if change.dirs.iter().any(|(path, _)| visible(path))
        || change.removes.iter().any(|path| visible(path))
        || change.files.iter().any(|(path, _, _)| visible(path))
    {
        return Ok(true);
    }
    let installed = format!("{E_DIR}/installed.json");
    let Some((_, bytes, _)) = change.files.iter().find(|(path, _, _)| *path == installed) else {
        return Ok(false);
    };
    let before: Option<Option<Vec<u8>>> = transaction
        .query_opt(
            &format!("SELECT bytes FROM {entries} WHERE environment = $1 AND path = $2"),
            &[&environment, &installed],
        )
        .await
        .plain()?
        .map(|row| row.get(0));
    Ok(before.flatten().as_deref() != Some(bytes.as_slice()))
}

/// The advisory lock key of an environment: the first 8 bytes of a sha256 of its schema and
/// name, so that environments of one database lock apart.
fn lock_key(schema: &str, environment: &str) -> i64 {
    let digest = Sha256::digest(format!("e-environment\0{schema}\0{environment}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Why a stored path cannot be an entry of a tree, if it cannot.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.starts_with('/') || path.len() > crate::run::tree::MAX_PATH_BYTES {
        return Err("is not a relative path");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("has an empty, `.` or `..` component");
    }
    Ok(())
}

/// Whether a query failed because e's schema or table is not there yet.
fn is_missing(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    err.code().is_some_and(|code| {
        *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_lock_apart() {
        assert_ne!(lock_key("e", "prod"), lock_key("e", "staging"));
        assert_ne!(lock_key("a", "prod"), lock_key("b", "prod"));
        assert_eq!(lock_key("e", "prod"), lock_key("e", "prod"));
    }

    #[test]
    fn stored_paths_are_checked() {
        assert!(check_path("state.yml").is_ok());
        assert!(check_path(".e/history/1.json").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
