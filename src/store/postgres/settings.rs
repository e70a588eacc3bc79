//! Where a PostgreSQL backend is and how to log in, by libpq's rules: a value in the URL wins,
//! then the `PG*` environment variable, then libpq's default; the password comes from the
//! URL, then `PGPASSWORD`, then the password file (`PGPASSFILE` or `~/.pgpass`, ignored unless
//! only its owner can read it). The password never appears in [`Settings::display`], in
//! errors or in warnings.
//!
//! `e`'s own query parameters: `schema` (the PostgreSQL schema that holds e's tables; default
//! `e`) and `env` (the environment's name within it; default `default`). Of libpq's, `host`,
//! `port`, `user`, `password`, `dbname`, `sslmode` and `sslrootcert` (TLS: `tls.rs`),
//! `application_name` and `connect_timeout` are understood; any other is refused, so that a
//! typo is not silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::tls::{SslMode, Tls};

/// Where libpq on Debian looks for the server's socket when no host is given.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The default PostgreSQL port.
const DEFAULT_PORT: u16 = 5432;

/// A backend's connection settings and the environment it names.
#[derive(Clone)]
pub struct Settings {
    /// What tokio-postgres connects with; holds the password.
    pub config: tokio_postgres::Config,
    /// The PostgreSQL schema holding e's tables.
    pub schema: String,
    /// The environment's name within the schema.
    pub environment: String,
    /// Things the user should know (a password file that was ignored); never the password.
    pub warnings: Vec<String>,
    /// How e speaks TLS to the server.
    pub tls: Tls,
    display: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: only the display form is shown.
        f.debug_struct("Settings")
            .field("backend", &self.display)
            .finish()
    }
}

impl Settings {
    /// Reads a `postgres://` URL with this process's environment and home directory.
    pub fn from_url(url: &str) -> anyhow::Result<Settings> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Settings::from_url_with(url, &|name| std::env::var(name).ok(), home.as_deref())
    }

    /// Reads a `postgres://` URL with the environment `env` and home directory `home`.
    pub fn from_url_with(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> anyhow::Result<Settings> {
        let parsed = url::Url::parse(url).map_err(|err| {
            anyhow::anyhow!(
                "the backend URL is not a URL: {err}\nhint: write it as `postgres://USER@HOST:PORT/DATABASE?schema=NAME`"
            )
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            bail!(
                "the backend URL has the scheme `{}`; e knows `postgres://` only\nhint: write it as `postgres://USER@HOST:PORT/DATABASE?schema=NAME`",
                parsed.scheme()
            );
        }
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        let decode = |text: &str| {
            percent_decode(text).context("the backend URL holds a badly percent-encoded part")
        };
        if !parsed.username().is_empty() {
            params.insert("user".into(), decode(parsed.username())?);
        }
        if let Some(password) = parsed.password() {
            params.insert("password".into(), decode(password)?);
        }
        if let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            params.insert("host".into(), decode(host)?);
        }
        if let Some(port) = parsed.port() {
            params.insert("port".into(), port.to_string());
        }
        let path = parsed.path().trim_start_matches('/');
        if !path.is_empty() {
            params.insert("dbname".into(), decode(path)?);
        }
        for (key, value) in parsed.query_pairs() {
            const KNOWN: [&str; 11] = [
                "schema",
                "env",
                "host",
                "port",
                "user",
                "password",
                "dbname",
                "sslmode",
                "sslrootcert",
                "application_name",
                "connect_timeout",
            ];
            if !KNOWN.contains(&key.as_ref()) {
                bail!(
                    "the backend URL has the parameter `{key}`, which e does not know\nhint: e knows {}",
                    KNOWN.map(|k| format!("`{k}`")).join(", ")
                );
            }
            params.insert(key.into_owned(), value.into_owned());
        }
        let lookup = |key: &str, variable: &str| {
            params
                .get(key)
                .cloned()
                .or_else(|| env(variable).filter(|v| !v.is_empty()))
        };

        let schema = params.get("schema").cloned().unwrap_or_else(|| "e".into());
        check_schema(&schema)?;
        let environment = params
            .get("env")
            .cloned()
            .unwrap_or_else(|| "default".into());
        check_environment(&environment)?;

        let host = lookup("host", "PGHOST").unwrap_or_else(|| {
            if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
                DEFAULT_SOCKET_DIR.into()
            } else {
                "localhost".into()
            }
        });
        let port = match lookup("port", "PGPORT") {
            Some(text) => text
                .parse::<u16>()
                .map_err(|_| anyhow::anyhow!("the backend's port `{text}` is not a port number"))?,
            None => DEFAULT_PORT,
        };
        let user = match lookup("user", "PGUSER") {
            Some(user) => user,
            None => os_user().context("failed to find the name of the user e runs as")?,
        };
        let dbname = lookup("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());

        let mut config = tokio_postgres::Config::new();
        config.host(&host).port(port).user(&user).dbname(&dbname);
        config.application_name(
            lookup("application_name", "PGAPPNAME").unwrap_or_else(|| "e".into()),
        );
        let timeout = lookup("connect_timeout", "PGCONNECT_TIMEOUT").unwrap_or_else(|| "10".into());
        let seconds: u64 = timeout.parse().map_err(|_| {
            anyhow::anyhow!(
                "the backend's `connect_timeout` `{timeout}` is not a number of seconds"
            )
        })?;
        config.connect_timeout(Duration::from_secs(seconds.max(2)));
        let tls = tls_settings(&lookup, home)?;
        config.ssl_mode(tls.mode.negotiation());

        let mut warnings = Vec::new();
        let password = match lookup("password", "PGPASSWORD") {
            Some(password) => Some(password),
            None => {
                let file = env("PGPASSFILE")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| home.map(|h| h.join(".pgpass")));
                match file {
                    Some(file) => {
                        password_from_file(&file, &host, port, &dbname, &user, &mut warnings)
                    }
                    None => None,
                }
            }
        };
        if let Some(password) = password {
            config.password(password);
        }

        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else if host.starts_with('/') {
            String::new()
        } else {
            host.clone()
        };
        let mut display = format!(
            "postgres://{user}@{shown_host}:{port}/{dbname}?schema={schema}&env={environment}"
        );
        if host.starts_with('/') {
            display.push_str(&format!("&host={host}"));
        }
        Ok(Settings {
            config,
            schema,
            environment,
            warnings,
            tls,
            display,
        })
    }

    /// The backend as a URL without its password, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }
}

/// The TLS settings by libpq's rules: `sslmode` (default `prefer`), and `sslrootcert` (default
/// `~/.postgresql/root.crt` when it exists); `require` with a root certificate checks the CA,
/// as `verify-ca` does.
fn tls_settings(
    lookup: &dyn Fn(&str, &str) -> Option<String>,
    home: Option<&Path>,
) -> anyhow::Result<Tls> {
    let mode = SslMode::parse(
        lookup("sslmode", "PGSSLMODE")
            .as_deref()
            .unwrap_or("prefer"),
    )?;
    let root_cert = match lookup("sslrootcert", "PGSSLROOTCERT") {
        Some(system) if system == "system" => bail!(
            "the backend's `sslrootcert=system` (the system's CAs) is not supported by e\nhint: name the CA's certificate file: `sslrootcert=/etc/ssl/certs/ca-certificates.crt` for all of the system's"
        ),
        Some(file) => Some(PathBuf::from(file)),
        None => home
            .map(|home| home.join(".postgresql/root.crt"))
            .filter(|file| file.is_file()),
    };
    let mode = match (mode, &root_cert) {
        (SslMode::Require, Some(file)) if file.is_file() => SslMode::VerifyCa,
        _ => mode,
    };
    Ok(Tls { mode, root_cert })
}

/// A PostgreSQL schema name e accepts: lowercase letters, digits and `_`, not starting with a
/// digit, at most 63 bytes (so that it never needs quoting rules beyond double quotes).
fn check_schema(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.starts_with("pg_")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        bail!(
            "the backend's schema `{name}` is not a name e accepts\nhint: use lowercase letters, digits and `_` (at most 63, not starting with a digit or `pg_`)"
        );
    }
    Ok(())
}

/// An environment name e accepts: letters, digits, `.`, `_` and `-`, at most 100 bytes.
fn check_environment(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!(
            "the backend's environment `{name}` is not a name e accepts\nhint: use letters, digits, `.`, `_` and `-` (at most 100)"
        );
    }
    Ok(())
}

/// Decodes `%XX` escapes of a URL part.
fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow::anyhow!("a `%` is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("a percent-encoded part is not UTF-8")
}

/// The password for this connection from a libpq password file, if one matches. A file that
/// others may read is ignored, as libpq does, with a warning.
fn password_from_file(
    file: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        warnings.push(format!(
            "the password file `{}` is ignored: others may read it\nhint: run `chmod 600 {}`",
            file.display(),
            file.display()
        ));
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    // libpq matches a socket in the default directory as `localhost`.
    let host = if host == DEFAULT_SOCKET_DIR || host.is_empty() {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_pgpass_line(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = wanted
                .iter()
                .zip(&fields)
                .all(|(want, field)| field == "*" || field == want);
            matches.then(|| fields[4..].join(":"))
        })
}

/// The fields of a password file line: split at `:`, with `\` escaping the next character.
fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("never empty").push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

/// The name of the user this process runs as, from the password database.
pub fn os_user() -> anyhow::Result<String> {
    let mut buffer = vec![0u8; 4096];
    // SAFETY: `passwd` is plain data (integers and pointers); all zeros is a valid value.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `entry` and `buffer`, both ours and large enough (it
    // reports ERANGE otherwise); `found` points to `entry` or is null.
    let code = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut entry,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            &mut found,
        )
    };
    if code != 0 || found.is_null() {
        return std::env::var("USER").context("this user has no entry in the password database");
    }
    // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Ok(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, vars: &[(&str, &str)], home: Option<&Path>) -> anyhow::Result<Settings> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_url_with(url, &|name| vars.get(name).cloned(), home)
    }

    #[test]
    fn the_url_wins_over_the_environment_and_the_password_is_never_shown() {
        let s = settings(
            "postgres://ops:pa%3Ass@db.example:6543/infra?schema=team&env=prod",
            &[("PGUSER", "other"), ("PGPORT", "1"), ("PGPASSWORD", "nope")],
            None,
        )
        .unwrap();
        assert_eq!(
            s.display(),
            "postgres://ops@db.example:6543/infra?schema=team&env=prod"
        );
        assert_eq!(s.config.get_password(), Some(&b"pa:ss"[..]));
        assert_eq!(s.config.get_user(), Some("ops"));
        assert!(!format!("{s:?}").contains("pa:ss"));
    }

    #[test]
    fn the_environment_fills_what_the_url_leaves_out() {
        let s = settings(
            "postgres://",
            &[
                ("PGHOST", "10.0.0.5"),
                ("PGPORT", "6000"),
                ("PGUSER", "ci"),
                ("PGDATABASE", "state"),
                ("PGPASSWORD", "x"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            s.display(),
            "postgres://ci@10.0.0.5:6000/state?schema=e&env=default"
        );
        assert_eq!(s.config.get_password(), Some(&b"x"[..]));
    }

    #[test]
    fn the_password_file_is_read_by_libpq_rules() {
        use std::os::unix::fs::PermissionsExt as _;
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:ops:wrong\ndb:*:infra:ops:pa\\:ss:tail\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = settings("postgres://ops@db/infra", &[], Some(home.path())).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"pa:ss:tail"[..]));
        let s = settings("postgres://ci@db/infra", &[], Some(home.path())).unwrap();
        assert_eq!(s.config.get_password(), Some(&b"fallback"[..]));

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = settings("postgres://ops@db/infra", &[], Some(home.path())).unwrap();
        assert_eq!(s.config.get_password(), None);
        assert!(s.warnings[0].contains("chmod 600"), "{:?}", s.warnings);
    }

    #[test]
    fn tls_follows_libpq() {
        let home = tempfile::tempdir().unwrap();
        let s = settings("postgres://x/y", &[], Some(home.path())).unwrap();
        assert_eq!((s.tls.mode, s.tls.root_cert), (SslMode::Prefer, None));
        let s = settings("postgres://x/y?sslmode=require", &[], Some(home.path())).unwrap();
        assert_eq!(s.tls.mode, SslMode::Require);
        // With a root certificate, `require` checks the CA.
        std::fs::create_dir(home.path().join(".postgresql")).unwrap();
        std::fs::write(home.path().join(".postgresql/root.crt"), "").unwrap();
        let s = settings("postgres://x/y?sslmode=require", &[], Some(home.path())).unwrap();
        assert_eq!(s.tls.mode, SslMode::VerifyCa);
        let s = settings(
            "postgres://x/y?sslmode=verify-full&sslrootcert=/ca.pem",
            &[("PGSSLROOTCERT", "/other.pem")],
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(s.tls.mode, SslMode::VerifyFull);
        assert_eq!(s.tls.root_cert, Some(PathBuf::from("/ca.pem")));
        let s = settings("postgres://x/y", &[("PGSSLMODE", "disable")], None).unwrap();
        assert_eq!(s.tls.mode, SslMode::Disable);
    }

    #[test]
    fn bad_urls_are_refused_with_a_hint() {
        for (url, says) in [
            ("mysql://x/y", "scheme `mysql`"),
            ("postgres://x/y?shema=a", "parameter `shema`"),
            ("postgres://x/y?schema=Bad-Name", "schema `Bad-Name`"),
            ("postgres://x/y?env=a/b", "environment `a/b`"),
            ("postgres://x/y?sslmode=verify_full", "sslmode=verify_full"),
            ("postgres://x/y?sslrootcert=system", "sslrootcert=system"),
        ] {
            let err = settings(url, &[], None).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(err.contains("hint:"), "{url}: {err}");
        }
    }
}
