//! A real PostgreSQL 15 server that a test starts for itself, on loopback, and stops by its PID
//! when dropped, even when the test fails: Debian's `postgresql` package (tests/engine.sh
//! installs it), `initdb` into a temporary directory and `pg_ctl start` on a port of
//! 23780-23799. Both run as `nobody` (`initdb` refuses root) through `runuser`.
//!
//! [`Postgres::start_on_tmpfs`] puts the data directory on a small tmpfs of its own (mounted
//! here, unmounted when dropped), so that a test can fill the server's disk.
//!
//! The server asks TCP clients for a password (scram-sha-256), so the tests exercise real
//! credentials; its superuser is [`Postgres::USER`] with [`Postgres::PASSWORD`]. Local socket
//! connections are trusted, for the test's own administration.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::engines::{Port, available};

/// The ports PostgreSQL servers of tests listen on.
const PORTS: std::ops::RangeInclusive<u16> = 23780..=23799;

/// Where Debian puts the server's programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// `e ARGS` as one machine of a team runs it: in `cwd`, on `repository`, with its environment
/// in the backend at `url`, and none of the test machine's own shared directory, secrets or
/// password in its environment.
pub fn e_on_backend(cwd: &Path, repository: &Path, url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    command
        .args(args)
        .current_dir(cwd)
        .env("E_REPOSITORY", repository)
        .env("E_BACKEND", url)
        .env_remove("E_SHARED")
        .env_remove("E_SECRETS")
        .env_remove("E_PROGRESS")
        .env_remove("PGPASSWORD");
    command
}

/// A running PostgreSQL server, stopped when dropped.
pub struct Postgres {
    port: Port,
    dir: tempfile::TempDir,
    /// How long `pg_ctl start` took until the server answered.
    pub started_in: Duration,
    /// Whether its data directory is a tmpfs of its own (unmounted when it is dropped).
    tmpfs: bool,
    /// Whether it speaks TLS (and only TLS over TCP).
    tls: bool,
}

impl Postgres {
    /// The superuser's name.
    pub const USER: &'static str = "e_test";
    /// The superuser's password.
    pub const PASSWORD: &'static str = "s3cret-Pa55";

    /// Whether the server's programs are installed; if not, says what is missing.
    fn available() -> bool {
        available(&format!("{BIN}/initdb"), "postgresql") && available("runuser", "util-linux")
    }

    /// Initializes a new cluster and starts it, failing the test with the log if it cannot, or
    /// with what is missing if PostgreSQL is not installed (tests/engine.sh installs it).
    pub fn start() -> Postgres {
        Postgres::start_with(None, None)
    }

    /// Like [`Postgres::start`], with the data directory on a tmpfs of `megabytes` of its own,
    /// WAL segments of 1 MB and none recycled, so that a test can fill the server's disk
    /// ([`Postgres::fill`]).
    pub fn start_on_tmpfs(megabytes: u32) -> Postgres {
        Postgres::start_with(Some(megabytes), None)
    }

    /// Like [`Postgres::start`], with `ssl = on` and the certificate and key given (PEM), and
    /// TCP clients let in over TLS only (`hostssl` in `pg_hba.conf`).
    pub fn start_with_tls(certificate: &Path, key: &Path) -> Postgres {
        Postgres::start_with(None, Some((certificate, key)))
    }

    fn start_with(tmpfs: Option<u32>, tls: Option<(&Path, &Path)>) -> Postgres {
        assert!(
            Postgres::available(),
            "PostgreSQL 15 is missing: tests/engine.sh installs it"
        );
        let port = Port::reserve_in(PORTS);
        let dir = tempfile::Builder::new()
            .prefix("e-pg-")
            .tempdir_in("/tmp")
            .expect("a temporary directory in /tmp");
        let nobody = must("id", &["-u", "nobody"]);
        let uid: u32 = String::from_utf8_lossy(&nobody.stdout)
            .trim()
            .parse()
            .expect("the uid of `nobody`");
        std::os::unix::fs::chown(dir.path(), Some(uid), None).expect("chown to nobody");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, Postgres::PASSWORD).expect("write the password file");
        std::os::unix::fs::chown(&pwfile, Some(uid), None).expect("chown to nobody");
        let pwfile_text = pwfile.display().to_string();
        let data = dir.path().join("data");
        let mut wal = Vec::new();
        if let Some(megabytes) = tmpfs {
            fs::create_dir(&data).expect("create the data directory");
            must(
                "mount",
                &[
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={megabytes}m,uid={uid},mode=0700"),
                    "tmpfs",
                    &data.display().to_string(),
                ],
            );
            wal.push("--wal-segsize=1");
        }
        // From here on, dropping it unmounts the tmpfs even if initdb fails.
        let mut postgres = Postgres {
            port,
            dir,
            started_in: Duration::ZERO,
            tmpfs: tmpfs.is_some(),
            tls: tls.is_some(),
        };
        as_nobody(
            &format!("{BIN}/initdb"),
            &[
                "-D",
                &postgres.data().display().to_string(),
                "-U",
                Postgres::USER,
                "--pwfile",
                &pwfile_text,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
            .iter()
            .copied()
            .chain(wal)
            .collect::<Vec<_>>(),
        );
        if let Some((certificate, key)) = tls {
            postgres.install_certificate(certificate, key);
            let hba = postgres.data().join("pg_hba.conf");
            let text = fs::read_to_string(&hba).expect("read pg_hba.conf");
            let text: Vec<String> = text
                .lines()
                .map(|line| match line.strip_prefix("host ") {
                    Some(rest) => format!("hostssl {rest}"),
                    None => line.to_owned(),
                })
                .collect();
            fs::write(&hba, text.join("\n") + "\n").expect("write pg_hba.conf");
        }
        let started = Instant::now();
        postgres.pg_ctl_start();
        postgres.started_in = started.elapsed();
        postgres
    }

    /// Stops the server and starts it again on the same data and port: every session ends.
    pub fn restart(&mut self) {
        self.stop();
        self.pg_ctl_start();
    }

    /// Starts the server again if it is not running (after it stopped by itself).
    pub fn ensure_running(&mut self) {
        if !self.pid().is_some_and(alive) {
            let _ = fs::remove_file(self.data().join("postmaster.pid"));
            self.pg_ctl_start();
        }
    }

    /// Makes `certificate` and `key` (PEM) the server's, readable by it alone; a running
    /// server takes them at its next reload (`SELECT pg_reload_conf()`).
    pub fn install_certificate(&self, certificate: &Path, key: &Path) {
        let uid = std::fs::metadata(self.dir.path())
            .map(|meta| std::os::unix::fs::MetadataExt::uid(&meta))
            .expect("the server's directory");
        for (from, name) in [(certificate, "server.crt"), (key, "server.key")] {
            let to = self.dir.path().join(name);
            fs::copy(from, &to).expect("copy the server's certificate");
            std::os::unix::fs::chown(&to, Some(uid), None).expect("chown to nobody");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Takes every free byte of the data directory's filesystem with a file of its own (for a
    /// server on a tmpfs); returns how many bytes it took.
    pub fn fill(&self) -> u64 {
        use std::io::Write as _;
        let mut file = fs::File::create(self.filler()).expect("create the filler");
        let mut taken = 0u64;
        for size in [1 << 20, 4096, 512] {
            let block = vec![0u8; size];
            while file.write_all(&block).is_ok() {
                taken += size as u64;
            }
        }
        taken
    }

    /// Frees what [`Postgres::fill`] took.
    pub fn unfill(&self) {
        let _ = fs::remove_file(self.filler());
    }

    fn filler(&self) -> PathBuf {
        self.data().join("filler")
    }

    /// `pg_ctl start` on this server's data directory and port, waiting until it answers.
    fn pg_ctl_start(&self) {
        let data = self.dir.path().join("data");
        let mut options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.dir.path().display(),
            self.port.number
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                self.dir.path().display()
            ));
        }
        if self.tmpfs {
            // Every new WAL segment then takes new space (none is recycled from old ones), so
            // that a full disk stops the WAL too.
            options.push_str(" -c wal_recycle=off");
        }
        as_nobody(
            &format!("{BIN}/pg_ctl"),
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                &data.display().to_string(),
                "-l",
                &self.log().display().to_string(),
                "-o",
                &options,
            ],
        );
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port.number
    }

    /// A backend URL for `e`, with the password when `password` is set.
    pub fn url(&self, password: bool, query: &str) -> String {
        let secret = if password {
            format!(":{}", Postgres::PASSWORD)
        } else {
            String::new()
        };
        format!(
            "postgres://{}{secret}@127.0.0.1:{}/postgres{query}",
            Postgres::USER,
            self.port.number
        )
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The postmaster's PID, from `postmaster.pid`; `None` once it is gone.
    pub fn pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Runs SQL through `psql` on the local socket (trusted), failing the test if it fails;
    /// returns what it printed (unaligned, tuples only).
    pub fn sql(&self, statement: &str) -> String {
        self.sql_in("postgres", statement)
    }

    /// Like [`Postgres::sql`], connected to `database` (to change the settings of
    /// `postgres`, for instance, while sessions there are read-only).
    pub fn sql_in(&self, database: &str, statement: &str) -> String {
        self.try_sql_in(database, statement)
            .unwrap_or_else(|said| panic!("`{statement}` failed:\n{said}"))
    }

    /// Like [`Postgres::sql`], returning what psql said when it fails (a server that stops
    /// under it, for instance).
    pub fn try_sql(&self, statement: &str) -> Result<String, String> {
        self.try_sql_in("postgres", statement)
    }

    fn try_sql_in(&self, database: &str, statement: &str) -> Result<String, String> {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--", &format!("{BIN}/psql")])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.port.number.to_string(), "-U", Postgres::USER])
            .args(["-d", database, "-c", statement])
            .current_dir("/tmp")
            .output()
            .unwrap_or_else(|err| panic!("`runuser` cannot run: {err}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Waits (up to a minute) until an e holds the lock of an environment of `schema` and has
    /// said who it is (its row in `e_holders`); returns the server pid of its session. The
    /// transaction lock that serializes creating the tables is no holder: a test that waited
    /// for any advisory lock could restart the server while the tables were being made.
    pub fn wait_for_holder(&self, schema: &str) -> String {
        let query = format!(
            "SELECT l.pid FROM pg_locks l JOIN \"{schema}\".e_holders h ON h.backend_pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted LIMIT 1"
        );
        let started = Instant::now();
        loop {
            // Until the first e has made the tables, the query fails: nobody holds yet.
            if let Ok(pid) = self.try_sql(&query)
                && !pid.is_empty()
            {
                return pid;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "nobody took the lock of an environment in `{schema}`"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server accepts connections now (`pg_isready`).
    pub fn answers(&self) -> bool {
        Command::new("runuser")
            .args([
                "-u",
                "nobody",
                "--",
                &format!("{BIN}/pg_isready"),
                "-q",
                "-h",
            ])
            .arg(self.dir.path())
            .args(["-p", &self.port.number.to_string()])
            .current_dir("/tmp")
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Stops it by its PID: SIGINT (a fast shutdown), then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid().filter(|pid| alive(*pid)) else {
            return;
        };
        signal(pid, "INT");
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if !alive(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(pid, "KILL");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if self.tmpfs {
            // The server is gone (stopped, or killed after STOP_TIMEOUT): nothing holds the
            // mount any more.
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(self.data())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Whether a process with this PID exists.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')))
}

/// Sends a signal to one process by its PID.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Runs a program as `nobody` in `/tmp`, failing the test with its output if it fails.
fn as_nobody(program: &str, args: &[&str]) -> Output {
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", program])
        .args(args)
        .current_dir("/tmp")
        .output()
        .unwrap_or_else(|err| panic!("`runuser` cannot run: {err}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a program that must succeed.
fn must(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("`{program}` cannot run: {err}"));
    assert!(out.status.success(), "`{program}` failed");
    out
}
