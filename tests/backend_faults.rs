//! A PostgreSQL backend that cannot be written, end to end with the real e binary and engine:
//! a database that is read-only (before a run, or from the middle of one) and a server whose
//! disk is full (its data directory on a small tmpfs, filled). Each run that would change the
//! environment fails naming the backend (never its password) and the fault in plain words,
//! with a `hint:`; the environment is exactly as before (serial, every file, the history);
//! reads still work where they can; and once the fault is gone, the next run works.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::postgres::Postgres as Server;
use support::{misbehave_image, stderr, stdout, text};

/// `base` writes its section, `slow` its section after 4 s, `big` a section of 512 KiB.
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
          - {name: apply, command: write, args: ['4']}
  - name: big
    type: docker
    versions:
      - version: 1.0.0
        image: e-tests/misbehave:0.1.0
        commands:
          - {name: init, command: noop}
          - {name: plan, command: plan-own}
          - {name: apply, command: pad, args: ['512']}
";

/// One machine working on the environment `prod` of the backend, with no shared directory.
struct Machine {
    dir: tempfile::TempDir,
    url: String,
    /// The backend as e names it in messages (no password).
    shown: String,
}

impl Machine {
    fn new(server: &Server) -> Machine {
        misbehave_image();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("repository.yaml"), REPOSITORY).unwrap();
        Machine {
            dir,
            url: server.url(true, "?schema=team&env=prod"),
            shown: format!(
                "postgres://{}@127.0.0.1:{}/postgres?schema=team&env=prod",
                Server::USER,
                server.port()
            ),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let repository = self.dir.path().join("repository.yaml");
        support::postgres::e_on_backend(self.dir.path(), &repository, &self.url, args)
    }

    fn e(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn expect(&self, code: i32, args: &[&str]) -> Output {
        support::exited(code, args, self.e(args))
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Every file of the environment's snapshot, with its bytes: the state, e's records, the
    /// history and `.e/serial.json` (lineage and serial).
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        self.expect(0, &["state", "pull", shared.to_str().unwrap()]);
        let mut files = Vec::new();
        for path in walk(&shared) {
            let name = path.strip_prefix(&shared).unwrap().display().to_string();
            files.push((name, std::fs::read(&path).unwrap()));
        }
        files.sort();
        files
    }

    /// Asserts that a run failed clearly: exit 1, the backend named without its password,
    /// each of `says` in the error, and a hint.
    fn assert_fails_clearly(&self, out: &Output, says: &[&str]) {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(1), "{}", text(out));
        assert!(
            err.contains(&format!("backend `{}`", self.shown)),
            "names the backend: {}",
            text(out)
        );
        assert!(!err.contains(Server::PASSWORD), "{}", text(out));
        for said in says {
            assert!(err.contains(said), "says `{said}`: {}", text(out));
        }
        assert!(err.contains("\nhint: "), "{}", text(out));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Asserts that `after` is `before` and one more history record: the plan of `module`
/// (the plan step of `e apply` commits its record before the apply step runs).
fn assert_as_before_and_its_plan(
    before: &[(String, Vec<u8>)],
    after: &[(String, Vec<u8>)],
    module: &str,
) {
    let (kept, added): (Vec<_>, Vec<_>) = after.iter().partition(|file| before.contains(file));
    assert_eq!(kept.len(), before.len(), "nothing before changed or went");
    let [(name, bytes)] = added.as_slice() else {
        panic!("one record more, not {added:?}");
    };
    assert!(name.starts_with(".e/history/"), "{name}");
    let record: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(record["command"], "plan", "{record}");
    assert_eq!(record["module"], module, "{record}");
    assert_eq!(
        serial_of(after),
        serial_of(before),
        "the serial did not move"
    );
}

/// How many history records the backend holds.
fn records(server: &Server) -> usize {
    server
        .sql("SELECT count(*) FROM team.e_entries WHERE path LIKE '.e/history/%'")
        .parse()
        .unwrap()
}

fn serial_of(snapshot: &[(String, Vec<u8>)]) -> u64 {
    let (_, bytes) = snapshot
        .iter()
        .find(|(name, _)| name == ".e/serial.json")
        .expect("a serial");
    let serial: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    serial["serial"].as_u64().unwrap()
}

#[test]
fn a_read_only_database_is_read_but_never_written_and_says_so() {
    let server = Server::start();
    let machine = Machine::new(&server);
    machine.expect(0, &["apply", "base", "--auto-approve"]);
    let before = machine.snapshot();
    assert_eq!(serial_of(&before), 1);
    server.sql_in(
        "template1",
        "ALTER DATABASE postgres SET default_transaction_read_only = on",
    );

    // Reads work: a standby, or a database set read-only, can still be looked at.
    let status = stdout(&machine.expect(0, &["status"]));
    assert!(status.contains("base"), "{status}");
    machine.expect(2, &["plan", "big", "--detailed-exitcode"]);
    machine.expect(0, &["history"]);

    // A change fails before any container runs, and says why.
    let out = machine.e(&["apply", "big", "--auto-approve"]);
    eprintln!("{}", stderr(&out));
    machine.assert_fails_clearly(&out, &["the database is read-only", "SQLSTATE 25006"]);
    assert!(!stdout(&out).contains("status: applied"), "{}", text(&out));
    let pulled = tempfile::tempdir().unwrap();
    let shared = pulled.path().join("shared");
    machine.expect(0, &["state", "pull", shared.to_str().unwrap()]);
    let out = machine.e(&["state", "push", shared.to_str().unwrap()]);
    machine.assert_fails_clearly(&out, &["the database is read-only"]);
    assert_eq!(machine.snapshot(), before, "the environment is as before");

    server.sql_in(
        "template1",
        "ALTER DATABASE postgres RESET default_transaction_read_only",
    );
    machine.expect(0, &["apply", "big", "--auto-approve"]);
    assert_eq!(serial_of(&machine.snapshot()), 2);
}

#[test]
fn a_database_turned_read_only_during_a_run_fails_its_commit_and_commits_nothing() {
    let server = Server::start();
    let machine = Machine::new(&server);
    machine.expect(0, &["apply", "base", "--auto-approve"]);
    let before = machine.snapshot();
    let slow = machine.spawn(&["apply", "slow", "--auto-approve"]);
    server.wait_for_holder("team");
    // Once the plan step has committed its record, the apply step runs for 4 s.
    let started = Instant::now();
    while records(&server) == 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no plan");
        std::thread::sleep(Duration::from_millis(50));
    }
    // For every session, from its next transaction on: the run's commit is one.
    server.sql("ALTER SYSTEM SET default_transaction_read_only = on");
    server.sql("SELECT pg_reload_conf()");
    let out = slow.wait_with_output().unwrap();
    eprintln!("{}", stderr(&out));
    machine.assert_fails_clearly(
        &out,
        &[
            "nothing was committed",
            "the database is read-only",
            "SQLSTATE 25006",
        ],
    );
    assert_as_before_and_its_plan(&before, &machine.snapshot(), "slow");

    server.sql("ALTER SYSTEM RESET default_transaction_read_only");
    server.sql("SELECT pg_reload_conf()");
    machine.expect(0, &["apply", "slow", "--auto-approve"]);
    let after = machine.snapshot();
    assert_eq!(serial_of(&after), serial_of(&before) + 1);
}

#[test]
fn a_full_disk_fails_the_run_clearly_and_commits_nothing() {
    let mut server = Server::start_on_tmpfs(48);
    let machine = Machine::new(&server);
    machine.expect(0, &["apply", "base", "--auto-approve"]);
    let before = machine.snapshot();
    let took = server.fill();
    assert!(took > 0, "the filler took the free space");
    // The plan's record fits in a page the table has; the 512 KiB section does not.
    let out = machine.e(&["apply", "big", "--auto-approve"]);
    eprintln!("{}", stderr(&out));
    let log = server.log_tail();
    server.unfill();
    server.ensure_running();
    machine.assert_fails_clearly(
        &out,
        &[
            "nothing was committed",
            "the database server's disk is full",
            "SQLSTATE 53100",
        ],
    );
    assert!(log.contains("No space left on device"), "{log}");
    assert_as_before_and_its_plan(&before, &machine.snapshot(), "big");
    machine.expect(0, &["apply", "big", "--auto-approve"]);
    assert_eq!(serial_of(&machine.snapshot()), serial_of(&before) + 1);
}

#[test]
fn a_server_that_panics_on_a_full_disk_fails_the_run_and_restarts_as_before() {
    let mut server = Server::start_on_tmpfs(48);
    let machine = Machine::new(&server);
    machine.expect(0, &["apply", "base", "--auto-approve"]);
    let before = machine.snapshot();
    let slow = machine.spawn(&["apply", "slow", "--auto-approve"]);
    server.wait_for_holder("team");
    let started = Instant::now();
    while records(&server) == 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no plan");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The disk fills while the apply step runs; a checkpoint finds no room for its files, or
    // the WAL no room for a new segment (whoever writes WAL next: the run's commit at the
    // latest), and the server PANICs and ends every session.
    server.fill();
    // Either may be the write that PANICs the server.
    let _ = server.try_sql("CHECKPOINT");
    let _ = server.try_sql("SELECT pg_switch_wal()");
    let out = slow.wait_with_output().unwrap();
    eprintln!("{}", stderr(&out));
    let log = std::fs::read_to_string(server.log()).unwrap_or_default();
    machine.assert_fails_clearly(&out, &["the server closed the connection"]);
    assert!(log.contains("PANIC"), "the server panicked: {log}");
    // The server restarts by itself (crash recovery) when there is room for its checkpoint;
    // either way nothing of the run was committed.
    eprintln!("after the PANIC the server answers: {}", server.answers());

    server.unfill();
    server.ensure_running();
    assert_as_before_and_its_plan(&before, &machine.snapshot(), "slow");
    machine.expect(0, &["apply", "slow", "--auto-approve"]);
    assert_eq!(serial_of(&machine.snapshot()), serial_of(&before) + 1);
}
