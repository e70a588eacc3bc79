//! The PostgreSQL state backend (`src/store/postgres.rs`) against a real PostgreSQL 15 that
//! each test starts on loopback (tests/support/postgres.rs): the lock and who holds it, a
//! holder killed with SIGKILL or cut off by the server, compare-and-swap commits, snapshots
//! that round-trip, credentials, and a schema made by a newer e.
//!
//! One test, `holder_process`, is not a test: it is the other process that holds a lock, run
//! by `a_killed_holder_frees_the_lock_at_once` as this binary with `--ignored`.

mod support;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e::run::tree::{Node, Tree};
use e::store::Change;
use e::store::postgres::{Postgres, Refusal, Settings, Snapshot};
use support::postgres::Postgres as Server;

/// The variable that tells `holder_process` which backend to lock.
const HOLDER_URL: &str = "E_TEST_PG_HOLDER_URL";

/// Settings for `url`, read without this machine's `PG*` variables or `~/.pgpass`.
fn settings(url: &str) -> Settings {
    Settings::from_url_with(url, &|_| None, None).expect("the test's URL is valid")
}

async fn connect(server: &Server, query: &str) -> Postgres {
    Postgres::connect(settings(&server.url(true, query)))
        .await
        .unwrap_or_else(|err| panic!("{err:#}\nthe server's log:\n{}", server.log_tail()))
}

/// A change that writes `state.yml` with `text`.
fn state_change(base: &Tree, text: &str) -> Change {
    let mut result = base.clone();
    result.insert_file("state.yml", text.as_bytes().to_vec(), 0o644);
    Change::between(base, &result)
}

/// The refusal inside an error, which must be one.
fn refusal(err: &anyhow::Error) -> &Refusal {
    err.downcast_ref::<Refusal>()
        .unwrap_or_else(|| panic!("not a refusal: {err:#}"))
}

#[tokio::test]
async fn the_lock_names_its_holder_and_a_waiter_gets_it_when_released() {
    let server = Server::start();
    let mut holder = connect(&server, "?schema=team&env=prod").await;
    let mut other = connect(&server, "?schema=team&env=prod").await;
    let mut elsewhere = connect(&server, "?schema=team&env=staging").await;
    holder
        .lock("e apply bmk", Duration::ZERO, |_| {})
        .await
        .unwrap();

    let mut waited = Vec::new();
    let err = other
        .lock("e apply azi", Duration::from_millis(300), |r| {
            waited.push(r.to_string())
        })
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "(e pid {}) running `e apply bmk`",
            std::process::id()
        )),
        "{text}"
    );
    assert!(text.contains("environment `prod`"), "{text}");
    assert!(!text.contains(Server::PASSWORD), "{text}");
    assert!(text.contains("hint: "), "{text}");
    assert!(
        !text.contains("e apply azi"),
        "the requester is not the holder: {text}"
    );
    assert_eq!(waited.len(), 1, "waiting is said once: {waited:?}");

    // Another environment of the same schema locks apart.
    elsewhere
        .lock("e apply azi", Duration::ZERO, |_| {})
        .await
        .unwrap();

    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.unlock().await.unwrap();
        holder
    });
    let started = Instant::now();
    other
        .lock("e apply azi", Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    release.await.unwrap();
}

/// Not a test: when run by `a_killed_holder_frees_the_lock_at_once`, takes the lock of the
/// backend it is given, reads the snapshot, says so, and waits to be killed, as an e in the
/// middle of a run does.
#[tokio::test]
#[ignore = "a helper process of a_killed_holder_frees_the_lock_at_once"]
async fn holder_process() {
    let Ok(url) = std::env::var(HOLDER_URL) else {
        return;
    };
    let mut backend = Postgres::connect(settings(&url)).await.unwrap();
    backend
        .lock("e apply held", Duration::ZERO, |_| {})
        .await
        .unwrap();
    let snapshot = backend.load().await.unwrap();
    println!("locked at serial {}", snapshot.serial.serial);
    tokio::time::sleep(Duration::from_secs(600)).await;
    // Never reached: the run would commit here.
    let change = state_change(&snapshot.tree, "held: 1\n");
    backend.commit(&snapshot.serial, &change).await.unwrap();
}

/// A child process, killed when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_killed_holder_frees_the_lock_at_once() {
    let server = Server::start();
    let url = server.url(true, "?env=killed");
    let mut backend = connect(&server, "?env=killed").await;
    let before = backend.load().await.unwrap();

    let mut child = Holder(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "holder_process", "--ignored", "--nocapture"])
            .env(HOLDER_URL, &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let said = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|line| line.starts_with("locked"))
    })
    .await
    .unwrap();
    assert!(said.is_some(), "the holder process never took the lock");

    let err = backend
        .lock("e apply next", Duration::ZERO, |_| {})
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("(e pid {}) running `e apply held`", child.0.id())),
        "{text}"
    );

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let started = Instant::now();
    backend
        .lock("e apply next", Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    let freed = started.elapsed();
    eprintln!("figure: the lock of a SIGKILLed holder was free after {freed:?}");
    assert!(freed < Duration::from_secs(2), "{freed:?}");
    assert_eq!(
        backend.load().await.unwrap(),
        before,
        "the killed run committed nothing"
    );
}

#[tokio::test]
async fn of_two_commits_from_one_serial_exactly_one_wins() {
    let server = Server::start();
    let mut first = connect(&server, "?env=race").await;
    let mut second = connect(&server, "?env=race").await;
    // Both read the same snapshot, without the lock, as two plans do.
    let base = first.load().await.unwrap();
    assert_eq!(second.load().await.unwrap(), base);

    async fn run(backend: &mut Postgres, base: &Snapshot, text: &str) -> anyhow::Result<u64> {
        backend
            .lock("e apply", Duration::from_secs(10), |_| {})
            .await?;
        let change = state_change(&base.tree, text);
        let result = backend.commit(&base.serial, &change).await;
        backend.unlock().await?;
        Ok(result?.serial)
    }
    let (a, b) = tokio::join!(
        run(&mut first, &base, "a: 1\n"),
        run(&mut second, &base, "b: 1\n")
    );
    let (winner, loser) = match (a, b) {
        (Ok(serial), Err(err)) => ((serial, "a: 1\n"), err),
        (Err(err), Ok(serial)) => ((serial, "b: 1\n"), err),
        (a, b) => panic!("exactly one must win: {a:?} {b:?}"),
    };
    assert_eq!(winner.0, base.serial.serial + 1);
    assert!(
        matches!(refusal(&loser), Refusal::Moved { found, .. } if found.serial == winner.0),
        "{loser:#}"
    );
    assert!(format!("{loser:#}").contains("nothing was committed"));
    let now = first.load().await.unwrap();
    assert_eq!(now.serial.serial, winner.0);
    assert_eq!(now.tree.file("state.yml"), Some(winner.1.as_bytes()));
}

#[tokio::test]
async fn a_holder_cut_off_by_the_server_commits_nothing_and_the_next_run_proceeds() {
    let server = Server::start();
    let mut run = connect(&server, "?env=cut").await;
    run.lock("e apply bmk", Duration::ZERO, |_| {})
        .await
        .unwrap();
    let snapshot = run.load().await.unwrap();
    let change = state_change(&snapshot.tree, "bmk: {}\n");

    // The module runs; meanwhile an administrator ends the run's session.
    let ended = server.sql(&format!(
        "SELECT pg_terminate_backend({})",
        run.backend_pid()
    ));
    assert_eq!(ended, "t");
    let err = run.commit(&snapshot.serial, &change).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("nothing was committed"), "{text}");
    assert!(text.contains("postgres://e_test@127.0.0.1:"), "{text}");
    assert!(!text.contains(Server::PASSWORD), "{text}");

    let mut next = connect(&server, "?env=cut").await;
    let started = Instant::now();
    next.lock("e apply azi", Duration::ZERO, |_| {})
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(next.load().await.unwrap(), snapshot);
    let after = next
        .commit(&snapshot.serial, &state_change(&snapshot.tree, "azi: {}\n"))
        .await
        .unwrap();
    assert_eq!(after.serial, snapshot.serial.serial + 1);
}

#[tokio::test]
async fn a_snapshot_round_trips_and_the_serial_counts_content_only() {
    let server = Server::start();
    let mut backend = connect(&server, "?schema=trip").await;
    backend
        .lock("e apply", Duration::ZERO, |_| {})
        .await
        .unwrap();
    let empty = backend.load().await.unwrap();
    assert_eq!(empty.serial.serial, 0);
    assert_eq!(empty.serial.lineage.len(), 32);
    assert!(empty.tree.entries.is_empty());

    let mut tree = Tree::default();
    tree.insert_file("state.yml", b"azi:\n  region: eu # kept\n".to_vec(), 0o644);
    tree.insert_file("azi-config.yml", b"x: 1\n".to_vec(), 0o600);
    tree.insert_file("files/deep/key.pem", vec![0, 159, 255, 10], 0o400);
    tree.insert_file(".e/installed.json", b"{}".to_vec(), 0o644);
    tree.entries
        .insert("empty".into(), Node::Dir { mode: 0o700 });
    let first = backend
        .commit(&empty.serial, &Change::between(&empty.tree, &tree))
        .await
        .unwrap();
    assert_eq!(first.serial, 1);
    assert_eq!(first.lineage, empty.serial.lineage);
    let loaded = backend.load().await.unwrap();
    assert_eq!(loaded.tree, tree);
    assert_eq!(loaded.serial, first);

    // A history record alone changes no content: the serial stays.
    let mut history = Change::default();
    history.write(".e/history/0001-r1.json", b"{}".to_vec());
    let same = backend.commit(&first, &history).await.unwrap();
    assert_eq!(same, first);
    // The same installed record again is no change either; another one is.
    let mut installed = Change::default();
    installed.write(".e/installed.json", b"{}".to_vec());
    assert_eq!(backend.commit(&first, &installed).await.unwrap(), first);
    let mut installed = Change::default();
    installed.write(".e/installed.json", b"{\"azi\":{}}".to_vec());
    let second = backend.commit(&first, &installed).await.unwrap();
    assert_eq!(second.serial, 2);

    // Removing a directory removes what it holds.
    let now = backend.load().await.unwrap();
    let without = now.tree.without("files");
    let third = backend
        .commit(&second, &Change::between(&now.tree, &without))
        .await
        .unwrap();
    let loaded = backend.load().await.unwrap();
    assert_eq!(loaded.tree, without);
    assert_eq!(loaded.serial, third);
    assert!(loaded.tree.subtree("files").entries.is_empty());
}

#[tokio::test]
async fn credentials_come_from_the_url_the_environment_or_pgpass_and_are_never_shown() {
    let server = Server::start();
    let wrong = format!(
        "postgres://{}:not-it@127.0.0.1:{}/postgres",
        Server::USER,
        server.port()
    );
    let err = Postgres::connect(settings(&wrong)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(
        text.contains(&format!(
            "the backend `postgres://{}@127.0.0.1:{}/postgres?schema=e&env=default`",
            Server::USER,
            server.port()
        )),
        "{text}"
    );
    assert!(!text.contains("not-it"), "{text}");

    let bare = server.url(false, "");
    let from_env = Settings::from_url_with(
        &bare,
        &|name| (name == "PGPASSWORD").then(|| Server::PASSWORD.to_owned()),
        None,
    )
    .unwrap();
    Postgres::connect(from_env).await.unwrap();

    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "127.0.0.1:{}:*:{}:{}\n",
            server.port(),
            Server::USER,
            Server::PASSWORD
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let from_file = Settings::from_url_with(&bare, &|_| None, Some(home.path())).unwrap();
    Postgres::connect(from_file).await.unwrap();

    let unreachable = Postgres::connect(settings("postgres://e@127.0.0.1:23799/postgres"))
        .await
        .unwrap_err();
    assert!(
        format!("{unreachable:#}")
            .contains("failed to connect to the backend `postgres://e@127.0.0.1:23799/postgres"),
        "{unreachable:#}"
    );
}

#[tokio::test]
async fn many_first_uses_at_once_make_one_schema_and_a_newer_schema_is_refused() {
    let server = Server::start();
    let url = server.url(true, "?schema=fresh");
    let connects = (0..8).map(|_| Postgres::connect(settings(&url)));
    let backends = futures_util::future::join_all(connects).await;
    let mut lineages = Vec::new();
    for backend in backends {
        let mut backend = backend.unwrap_or_else(|err| panic!("{err:#}"));
        lineages.push(backend.load().await.unwrap().serial.lineage);
    }
    lineages.dedup();
    assert_eq!(
        lineages.len(),
        1,
        "one environment, one lineage: {lineages:?}"
    );

    server.sql("UPDATE fresh.e_schema SET version = 99");
    let err = Postgres::connect(settings(&url)).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("made by a newer e"), "{text}");
    assert!(text.contains("hint: upgrade e"), "{text}");
}

#[tokio::test]
async fn figures_of_lock_load_and_commit() {
    let server = Server::start();
    eprintln!("figure: PostgreSQL started in {:?}", server.started_in);
    let started = Instant::now();
    let mut backend = connect(&server, "?env=figures").await;
    eprintln!(
        "figure: first connect (creates the schema) {:?}",
        started.elapsed()
    );
    let mut base = Tree::default();
    base.insert_file("state.yml", vec![b'#'; 20_000], 0o644);
    for i in 0..50 {
        base.insert_file(&format!(".e/history/{i:04}.json"), vec![b'{'; 500], 0o644);
    }
    backend.lock("e", Duration::ZERO, |_| {}).await.unwrap();
    let empty = backend.load().await.unwrap();
    backend
        .commit(&empty.serial, &Change::between(&empty.tree, &base))
        .await
        .unwrap();
    backend.unlock().await.unwrap();

    // Each phase of a run, in a fresh process's order: connect (password exchange and the
    // schema check), lock, load, commit, unlock.
    let mut phases: [Vec<Duration>; 5] = Default::default();
    for i in 0..30 {
        let mut clock = Instant::now();
        let mut lap = |phase: usize, phases: &mut [Vec<Duration>; 5]| {
            phases[phase].push(clock.elapsed());
            clock = Instant::now();
        };
        let mut run = connect(&server, "?env=figures").await;
        lap(0, &mut phases);
        run.lock("e apply", Duration::ZERO, |_| {}).await.unwrap();
        lap(1, &mut phases);
        let snapshot = run.load().await.unwrap();
        lap(2, &mut phases);
        let change = state_change(&snapshot.tree, &format!("n: {i}\n"));
        run.commit(&snapshot.serial, &change).await.unwrap();
        lap(3, &mut phases);
        run.unlock().await.unwrap();
        lap(4, &mut phases);
    }
    for (name, times) in [
        "connect",
        "lock",
        "load (51 files, 45 KB)",
        "commit",
        "unlock",
    ]
    .iter()
    .zip(phases.iter_mut())
    {
        times.sort();
        eprintln!(
            "figure: {name}: median {:?}, max {:?} over {} runs",
            times[times.len() / 2],
            times[times.len() - 1],
            times.len()
        );
    }
}

#[tokio::test]
async fn a_push_is_refused_for_another_lineage_or_an_older_serial_unless_forced() {
    let server = Server::start();
    let mut backend = connect(&server, "?env=push").await;
    backend
        .lock("e state push", Duration::ZERO, |_| {})
        .await
        .unwrap();
    let start = backend.load().await.unwrap();
    let one = backend
        .commit(&start.serial, &state_change(&start.tree, "a: 1\n"))
        .await
        .unwrap();
    let now = backend.load().await.unwrap();
    let two = backend
        .commit(&one, &state_change(&now.tree, "a: 2\n"))
        .await
        .unwrap();

    // A snapshot pulled at serial 1, pushed after serial 2: older.
    let mut old = Tree::default();
    old.insert_file("state.yml", b"a: 1\n".to_vec(), 0o644);
    old.insert_file(".e/runs/r1/record.json", b"{}".to_vec(), 0o644);
    let older = Snapshot {
        serial: one.clone(),
        tree: e::store::postgres::portable(&old),
    };
    let err = format!("{:#}", backend.push(&older, false).await.unwrap_err());
    assert!(err.contains("older than the environment `push`"), "{err}");
    assert!(err.contains("nothing was pushed"), "{err}");
    let foreign = Snapshot {
        serial: e::store::Serial {
            lineage: "f".repeat(32),
            serial: 9,
        },
        tree: older.tree.clone(),
    };
    let err = format!("{:#}", backend.push(&foreign, false).await.unwrap_err());
    assert!(err.contains("different environments"), "{err}");
    assert_eq!(backend.load().await.unwrap().serial, two, "nothing moved");

    // The current lineage at a serial no older is taken; the serial moves past both.
    let mut newer = older.clone();
    newer.serial.serial = two.serial;
    newer
        .tree
        .insert_file("state.yml", b"a: 3\n".to_vec(), 0o644);
    let after = backend.push(&newer, false).await.unwrap();
    assert_eq!(after.serial, two.serial + 1);
    let loaded = backend.load().await.unwrap();
    assert_eq!(loaded.tree, newer.tree);
    assert!(loaded.tree.subtree(".e/runs").entries.is_empty());

    // Forced, another lineage replaces it all.
    let forced = backend.push(&foreign, true).await.unwrap();
    assert_eq!(forced.lineage, foreign.serial.lineage);
    assert_eq!(forced.serial, 10);
    assert_eq!(backend.load().await.unwrap().tree, foreign.tree);
}

/// Runs the `e` binary with these arguments and asserts its exit code.
fn e_cli(code: i32, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(args)
        .env_remove("E_BACKEND")
        .env("PGPASSFILE", "/nonexistent")
        .output()
        .expect("the e binary runs");
    support::exited(code, args, out)
}

#[test]
fn state_push_and_pull_move_a_shared_directory_through_the_backend_checked_by_lineage() {
    let server = Server::start();
    let url = server.url(true, "?schema=team&env=prod");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("shared");
    e::store::SharedDir::open(&local).unwrap();
    std::fs::write(local.join("state.yml"), "azi:\n  status: applied\n").unwrap();
    std::fs::write(local.join("azi-config.yml"), "azi:\n  size: 5\n").unwrap();
    let lineage = e::store::SharedDir::open(&local)
        .unwrap()
        .serial()
        .unwrap()
        .lineage;

    // An environment never written has its own lineage: a push over it needs --force.
    let out = e_cli(
        1,
        &["state", "push", local.to_str().unwrap(), "--backend", &url],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lineage"),
        "{}",
        support::text(&out)
    );
    e_cli(
        0,
        &[
            "state",
            "push",
            local.to_str().unwrap(),
            "--backend",
            &url,
            "--force",
        ],
    );

    let pulled = dir.path().join("pulled");
    let out = e_cli(
        0,
        &["state", "pull", pulled.to_str().unwrap(), "--backend", &url],
    );
    assert!(
        !support::stderr(&out).contains(e_password()),
        "the password is never printed"
    );
    assert_eq!(
        std::fs::read_to_string(pulled.join("state.yml")).unwrap(),
        "azi:\n  status: applied\n"
    );
    assert_eq!(
        std::fs::read_to_string(pulled.join("azi-config.yml")).unwrap(),
        "azi:\n  size: 5\n"
    );
    let serial = e::store::SharedDir::open_read_only(&pulled)
        .unwrap()
        .serial()
        .unwrap();
    assert_eq!(
        serial.lineage, lineage,
        "a forced push takes the pushed lineage"
    );
    // The pulled directory is current: pushing it back is accepted; the first, now older, is
    // refused without --force.
    e_cli(
        0,
        &["state", "push", pulled.to_str().unwrap(), "--backend", &url],
    );
    let out = e_cli(
        1,
        &["state", "push", local.to_str().unwrap(), "--backend", &url],
    );
    assert!(
        support::stderr(&out).contains("serial"),
        "{}",
        support::text(&out)
    );
    // Pulling into a directory that holds something is refused.
    e_cli(
        1,
        &["state", "pull", pulled.to_str().unwrap(), "--backend", &url],
    );
}

/// The test server's password, which e must never print.
fn e_password() -> &'static str {
    Server::PASSWORD
}
