//! What a failed query of a PostgreSQL backend means, in plain words and with what to do:
//! the SQLSTATE classes a user can act on (a read-only database, a full disk, a server out of
//! resources, shutting down or restarting, a refused password) become one sentence and a
//! `hint:`, with the server's own words kept in parentheses. Errors e cannot name pass
//! through as they are. Callers add which backend and what was (not) committed.

use tokio_postgres::error::SqlState;

/// Turns the errors of queries into errors that say what happened, for `?` with a context.
pub(super) trait Plain<T> {
    /// The result, its error in plain words when e knows what it means.
    fn plain(self) -> anyhow::Result<T>;
}

impl<T> Plain<T> for Result<T, tokio_postgres::Error> {
    fn plain(self) -> anyhow::Result<T> {
        self.map_err(|err| explain(err).unwrap_or_else(anyhow::Error::new))
    }
}

/// The error in plain words with a hint, or the error itself when e does not know what it
/// means.
pub(super) fn explain(err: tokio_postgres::Error) -> Result<anyhow::Error, tokio_postgres::Error> {
    if err.is_closed() || err.as_db_error().is_none() && is_io(&err) {
        let how = match std::error::Error::source(&err) {
            Some(cause) if !err.is_closed() => format!(" ({cause})"),
            _ => String::new(),
        };
        return Ok(anyhow::anyhow!(
            "the server closed the connection{how}: it stopped, restarted or crashed, or ended this session\nhint: check that the server runs (its log says why it stopped), then run the command again"
        ));
    }
    explain_db(err)
}

/// The error the server sent, in plain words with a hint, or the error itself when it is
/// not one e can name (for connecting, where a socket error means "unreachable").
pub(super) fn explain_db(
    err: tokio_postgres::Error,
) -> Result<anyhow::Error, tokio_postgres::Error> {
    let Some(db) = err.as_db_error() else {
        return Err(err);
    };
    let code = db.code();
    let Some((what, hint)) = meaning(code) else {
        return Err(err);
    };
    Ok(anyhow::anyhow!(
        "{what} (the server says: {}; SQLSTATE {})\nhint: {hint}",
        db.message(),
        code.code()
    ))
}

/// Why `COMMIT` failed: an error the server sent means it rolled the transaction back
/// (nothing was committed); a lost connection leaves e unable to know which happened.
pub(super) fn committing(
    err: tokio_postgres::Error,
    backend: &str,
    doing: &str,
    after: &str,
) -> anyhow::Error {
    let rolled_back = err.as_db_error().is_some();
    let explained = explain(err).unwrap_or_else(anyhow::Error::new);
    if rolled_back {
        return explained.context(format!(
            "failed to commit to the backend `{backend}`: nothing was committed"
        ));
    }
    explained.context(format!(
        "the connection to the backend `{backend}` failed while {doing}: the environment is either as before or {after}, never in between\nhint: run `e state pull DIR` to see which"
    ))
}

/// What a SQLSTATE means and what to do about it, for the codes a user can act on.
fn meaning(code: &SqlState) -> Option<(&'static str, &'static str)> {
    let class = &code.code()[..2];
    Some(match code {
        _ if *code == SqlState::READ_ONLY_SQL_TRANSACTION => (
            "the database is read-only",
            "point `--backend` at the primary server, not a standby, or turn writing back on (`ALTER DATABASE ... RESET default_transaction_read_only`, or the same for the role or the server's configuration)",
        ),
        _ if *code == SqlState::DISK_FULL => (
            "the database server's disk is full",
            "free space on the database server's disk (or give it more), then run the command again",
        ),
        _ if *code == SqlState::OUT_OF_MEMORY => (
            "the database server is out of memory",
            "run the command again when the server has memory to spare; its log says more",
        ),
        _ if *code == SqlState::TOO_MANY_CONNECTIONS => (
            "the database server accepts no more connections",
            "wait for other clients to finish, or raise the server's `max_connections` (or the role's connection limit)",
        ),
        _ if class == "53" => (
            "the database server has run out of a resource",
            "its log says which; free it or raise the limit, then run the command again",
        ),
        _ if *code == SqlState::ADMIN_SHUTDOWN => (
            "the database server is shutting down, or an administrator ended this session",
            "run the command again when the server is back",
        ),
        _ if *code == SqlState::CRASH_SHUTDOWN => (
            "the database server is restarting after a crash of one of its processes",
            "run the command again in a moment; the server's log says what crashed",
        ),
        _ if *code == SqlState::CANNOT_CONNECT_NOW => (
            "the database server is starting up or shutting down and accepts no connections now",
            "run the command again in a moment",
        ),
        _ if *code == SqlState::DATABASE_DROPPED => (
            "the database was dropped",
            "point `--backend` at an existing database",
        ),
        _ if class == "57" => (
            "the database server stopped this session",
            "run the command again; the server's log says why",
        ),
        _ if *code == SqlState::INVALID_PASSWORD => (
            "the database server refused the user or the password",
            "check the user and the password: in the URL, `PGPASSWORD` or `~/.pgpass`",
        ),
        _ if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => (
            "the database server refused this connection",
            "check the user, and that the server's `pg_hba.conf` lets this machine in that way (a `hostssl` line asks for TLS: `sslmode=require` or stricter)",
        ),
        _ if *code == SqlState::INVALID_CATALOG_NAME => (
            "the database does not exist",
            "create it (`createdb`), or name an existing one in the URL",
        ),
        _ if *code == SqlState::INSUFFICIENT_PRIVILEGE => (
            "the database user may not do this",
            "grant the user the right to create and use the schema (`GRANT CREATE ON DATABASE ...`, or own the schema), or use a user who may",
        ),
        _ => return None,
    })
}

/// Whether the error came from the connection itself (reading or writing the socket).
fn is_io(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_a_user_can_act_on_have_plain_words_and_a_hint() {
        for (code, says) in [
            (SqlState::READ_ONLY_SQL_TRANSACTION, "read-only"),
            (SqlState::DISK_FULL, "disk is full"),
            (SqlState::TOO_MANY_CONNECTIONS, "no more connections"),
            (
                SqlState::CONFIGURATION_LIMIT_EXCEEDED,
                "run out of a resource",
            ),
            (SqlState::ADMIN_SHUTDOWN, "shutting down"),
            (SqlState::CRASH_SHUTDOWN, "after a crash"),
            (SqlState::CANNOT_CONNECT_NOW, "starting up"),
            (SqlState::IDLE_SESSION_TIMEOUT, "stopped this session"),
        ] {
            let (what, hint) = meaning(&code).unwrap_or_else(|| panic!("{code:?}"));
            assert!(what.contains(says), "{code:?}: {what}");
            assert!(!hint.is_empty());
        }
        assert!(meaning(&SqlState::UNIQUE_VIOLATION).is_none());
    }
}
