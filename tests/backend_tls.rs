//! TLS to a PostgreSQL backend, end to end with the real e binary: a server started with
//! `ssl = on` that lets TCP clients in over TLS only (`hostssl`), with certificates made by
//! `openssl` for the test (a CA, a server certificate for 127.0.0.1, one that names another
//! host, and a CA that signed neither). `verify-full` passes with the right CA and keeps the
//! lock's connection on TLS; a wrong CA, or a certificate for another name, fails clearly;
//! `verify-ca` checks the CA only; `require` and the default (`prefer`) connect over TLS
//! without a CA; `disable` is turned away by the server.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::postgres::Postgres as Server;
use support::{misbehave_image, stderr, stdout, text};

const REPOSITORY: &str = "version: v1
kind: Repository
components:
  - name: base
    type: docker
    versions:
      - version: 1.0.0
        image: e-tests/misbehave:0.1.0
        commands:
          - {name: init, command: noop}
          - {name: plan, command: plan-own}
          - {name: apply, command: own}
  - name: slow
    type: docker
    versions:
      - version: 1.0.0
        image: e-tests/misbehave:0.1.0
        commands:
          - {name: init, command: noop}
          - {name: plan, command: plan-own}
          - {name: apply, command: write, args: ['3']}
";

/// Certificates made with `openssl` for one test.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.server("server", "IP:127.0.0.1");
        pki.server("named", "DNS:db.example.test");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            text(&out)
        );
    }

    /// `NAME.crt` and `NAME.key`: a self-signed CA.
    fn ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=e test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }

    /// `NAME.crt` and `NAME.key`: a server certificate for `alt_name`, signed by `ca`.
    fn server(&self, name: &str, alt_name: &str) {
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN=e test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        std::fs::write(
            self.path(&format!("{name}.ext")),
            format!(
                "subjectAltName={alt_name}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }
}

/// A TLS-only server with the certificate for 127.0.0.1.
fn start(pki: &Pki) -> Server {
    Server::start_with_tls(&pki.path("server.crt"), &pki.path("server.key"))
}

/// One machine, with a home of its own (no `~/.pgpass`, no `~/.postgresql/root.crt`).
struct Machine {
    dir: tempfile::TempDir,
    port: u16,
}

impl Machine {
    fn new(server: &Server) -> Machine {
        misbehave_image();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("repository.yaml"), REPOSITORY).unwrap();
        Machine {
            dir,
            port: server.port(),
        }
    }

    /// The backend's URL with the query `tls` (`&sslmode=...`).
    fn url(&self, tls: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/postgres?schema=team&env=prod{tls}",
            Server::USER,
            Server::PASSWORD,
            self.port
        )
    }

    fn command(&self, tls: &str, args: &[&str]) -> Command {
        let repository = self.dir.path().join("repository.yaml");
        let mut command =
            support::postgres::e_on_backend(self.dir.path(), &repository, &self.url(tls), args);
        command
            .env("HOME", self.dir.path())
            .env_remove("PGSSLMODE")
            .env_remove("PGSSLROOTCERT");
        command
    }

    fn e(&self, tls: &str, args: &[&str]) -> Output {
        self.command(tls, args).output().unwrap()
    }

    fn expect(&self, code: i32, tls: &str, args: &[&str]) -> Output {
        support::exited(code, args, self.e(tls, args))
    }

    /// Asserts that `e status` with `tls` fails naming the backend (without its password),
    /// saying `says`, with a hint.
    fn refused(&self, tls: &str, says: &str) -> Output {
        let out = self.e(tls, &["status"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{tls}: {}", text(&out));
        let shown = format!(
            "backend `postgres://{}@127.0.0.1:{}/postgres?schema=team&env=prod`",
            Server::USER,
            self.port
        );
        assert!(err.contains(&shown), "{tls}: {}", text(&out));
        assert!(err.contains(says), "{tls}: says `{says}`: {}", text(&out));
        assert!(err.contains("\nhint: "), "{tls}: {}", text(&out));
        assert!(!err.contains(Server::PASSWORD), "{tls}: {}", text(&out));
        out
    }
}

fn verify(mode: &str, ca: &Path) -> String {
    format!("&sslmode={mode}&sslrootcert={}", ca.display())
}

#[test]
fn verify_full_with_the_right_ca_runs_over_tls_and_holds_the_lock_on_it() {
    let pki = Pki::new();
    let server = start(&pki);
    let machine = Machine::new(&server);
    let tls = verify("verify-full", &pki.path("ca.crt"));
    let mut slow = machine
        .command(&tls, &["apply", "slow", "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The lock's holder (the run's one connection) is a TLS session.
    let started = Instant::now();
    let holder = loop {
        let holder = server.sql(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_locks l ON l.pid = s.pid
             WHERE l.locktype = 'advisory' AND l.granted",
        );
        if !holder.is_empty() || slow.try_wait().unwrap().is_some() {
            break holder;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no holder");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(holder.starts_with("t|TLSv1."), "over TLS: {holder:?}");
    let out = slow.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let state = stdout(&machine.expect(0, &tls, &["state"]));
    assert!(state.contains("status: applied"), "{state}");

    // Plain text is turned away by the server (`hostssl` only).
    machine.refused(
        "&sslmode=disable",
        "the database server refused this connection",
    );
}

#[test]
fn a_wrong_ca_or_another_name_fails_clearly_and_verify_ca_checks_the_ca_only() {
    let pki = Pki::new();
    let server = start(&pki);
    let machine = Machine::new(&server);
    machine.refused(
        &verify("verify-full", &pki.path("other-ca.crt")),
        "the server's certificate is not signed by a CA of `sslrootcert`",
    );
    machine.refused(
        &verify("verify-ca", &pki.path("other-ca.crt")),
        "not signed by a CA of `sslrootcert`",
    );
    machine.refused(
        &verify("verify-full", &pki.path("missing.crt")),
        "failed to read the backend's root certificate",
    );
    machine.refused("&sslmode=verify-full", "no root certificate was given");
    // Nothing reached the database: not even e's schema.
    let schemas = server.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'team'");
    assert_eq!(schemas, "0");

    // A certificate for another name: verify-full refuses it, verify-ca takes it.
    server.install_certificate(&pki.path("named.crt"), &pki.path("named.key"));
    server.sql("SELECT pg_reload_conf()");
    let started = Instant::now();
    loop {
        let out = machine.e(&verify("verify-full", &pki.path("ca.crt")), &["status"]);
        if stderr(&out).contains("does not name the host") {
            break;
        }
        // The reload takes a moment to reach new sessions.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    machine.refused(
        &verify("verify-full", &pki.path("ca.crt")),
        "the server's certificate does not name the host e connects to",
    );
    machine.expect(
        0,
        &verify("verify-ca", &pki.path("ca.crt")),
        &["apply", "base", "--auto-approve"],
    );
}

#[test]
fn require_and_the_default_connect_over_tls_without_a_ca() {
    let pki = Pki::new();
    let server = start(&pki);
    let machine = Machine::new(&server);
    // The server lets TCP clients in over TLS only: both of these are TLS sessions.
    machine.expect(0, "&sslmode=require", &["apply", "base", "--auto-approve"]);
    let status = stdout(&machine.expect(0, "", &["status"]));
    assert!(status.contains("base"), "{status}");
    // With a root certificate in `~/.postgresql/root.crt`, `require` checks the CA (libpq).
    let home = machine.dir.path().join(".postgresql");
    std::fs::create_dir(&home).unwrap();
    std::fs::copy(pki.path("other-ca.crt"), home.join("root.crt")).unwrap();
    machine.refused("&sslmode=require", "not signed by a CA of `sslrootcert`");
    std::fs::copy(pki.path("ca.crt"), home.join("root.crt")).unwrap();
    machine.expect(0, "&sslmode=require", &["status"]);
}

/// Not a test: what TLS costs per command, side by side in one run (`cargo test --release
/// --test backend_tls figures -- --ignored --nocapture`): `e status` (connect, read, print)
/// in plain text against a plain server and with `verify-full` against a TLS one.
#[test]
#[ignore]
fn figures() {
    let pki = Pki::new();
    let tls_server = start(&pki);
    let plain_server = Server::start();
    let over_tls = Machine::new(&tls_server);
    let plain = Machine::new(&plain_server);
    let tls = verify("verify-full", &pki.path("ca.crt"));
    let time = |machine: &Machine, query: &str| {
        let started = Instant::now();
        machine.expect(0, query, &["status"]);
        started.elapsed()
    };
    time(&over_tls, &tls);
    time(&plain, "&sslmode=disable");
    let (mut tls_times, mut plain_times) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        tls_times.push(time(&over_tls, &tls));
        plain_times.push(time(&plain, "&sslmode=disable"));
    }
    tls_times.sort();
    plain_times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("e status, median of 15, in turn:");
    println!("  plain text               {:>7.1} ms", ms(plain_times[7]));
    println!("  TLS, verify-full         {:>7.1} ms", ms(tls_times[7]));
    println!(
        "  TLS costs                {:>7.1} ms",
        ms(tls_times[7]) - ms(plain_times[7])
    );
}
