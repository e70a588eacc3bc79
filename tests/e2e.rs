//! End-to-end tests on the real Docker engine, with real images built from `modules/` (and
//! `tests/modules/misbehave`, a module that breaks the contract on purpose, and
//! `tests/modules/noncompliant`, the subjects of `e check`) through `e build`.
//!
//! Each test has its own temporary shared directory. Containers carry e's labels and are
//! removed by e itself; tests check that none is left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod support;
use support::walkthrough::EXAMPLE_MODULES;
use support::{e_in, e_in_with, root, stderr, stdout, text};

fn top_repository() -> PathBuf {
    root().join("repository.yaml")
}

fn test_repository() -> PathBuf {
    root().join("tests/fixtures/e2e-repository.yaml")
}

/// Builds every image the tests use, once per test process.
fn images() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        support::walkthrough::example_images();
        support::misbehave_image();
        support::noncompliant_image();
    });
}

/// A temporary shared directory with the example repository or the test one.
struct Scene {
    dir: tempfile::TempDir,
    repository: PathBuf,
    /// Extra environment for every e run (`E_TRANSFER`, ...).
    envs: Vec<(&'static str, &'static str)>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        drop(support::Volumes(self.shared()));
    }
}

impl Scene {
    fn new(repository: PathBuf) -> Scene {
        images();
        Scene {
            dir: tempfile::tempdir().unwrap(),
            repository,
            envs: Vec::new(),
        }
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    fn e(&self, args: &[&str]) -> Output {
        e_in_with(root(), &self.repository, &self.shared(), args, &self.envs)
    }

    /// Runs e and asserts its exit code, showing everything it said when it differs.
    fn expect(&self, code: i32, args: &[&str]) -> Output {
        support::exited(code, args, self.e(args))
    }

    fn state(&self) -> String {
        fs::read_to_string(self.shared().join("state.yml")).unwrap_or_default()
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.shared().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
    }
}

#[test]
fn seed_walkthrough() {
    walkthrough(&Scene::new(top_repository()));
}

/// The same walkthrough with every run's copy uploaded and downloaded through the Engine API,
/// as for a remote engine that cannot see this machine's files.
#[test]
fn seed_walkthrough_through_the_archive_api() {
    let mut scene = Scene::new(top_repository());
    scene.envs.push(("E_TRANSFER", "archive"));
    walkthrough(&scene);
    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    let runs: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    assert!(
        runs.iter().all(|run| run["transfer"] == "archive"),
        "every run went through the archive API: {history}"
    );
}

/// The design's walkthrough (tests/support/walkthrough.rs), on the scene's shared directory.
fn walkthrough(scene: &Scene) {
    support::walkthrough::walkthrough(scene);
    let left = containers_of(scene);
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

impl support::walkthrough::Environment for Scene {
    fn e(&self, args: &[&str]) -> Output {
        Scene::e(self, args)
    }

    fn read(&self, name: &str) -> String {
        Scene::read(self, name)
    }

    fn edit_state(&self, text: &str) {
        fs::write(self.shared().join("state.yml"), text).unwrap();
    }
}

#[test]
fn metadata_prints_the_repository_labels() {
    let scene = Scene::new(top_repository());
    let out = scene.expect(0, &["metadata", "bmk"]);
    let printed: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["labels"]["provides-kafka"],
        serde_yaml::Value::from("2.5.1"),
        "{}",
        text(&out)
    );
    assert_eq!(
        printed["requires"]["strong"][0][1]["key"],
        serde_yaml::Value::from("provider")
    );
}

/// Writes a state and runs a misbehaving command; the state must come back byte for byte.
fn assert_restored(command: &str, expected_code: i32, expected_message: &str) {
    let scene = Scene::new(test_repository());
    fs::create_dir_all(scene.shared()).unwrap();
    let original = "azi:\n  status: applied   # hand-written comment e must keep\n  nodes: [{privateIP: 10.0.0.1}]\n";
    fs::write(scene.shared().join("state.yml"), original).unwrap();
    let out = scene.expect(expected_code, &["run", "misbehave", command]);
    assert!(
        stderr(&out).contains(expected_message),
        "{command}: {}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("nothing was committed"),
        "{command}: {}",
        text(&out)
    );
    let meta = fs::symlink_metadata(scene.shared().join("state.yml")).unwrap();
    assert!(
        meta.is_file(),
        "{command}: state.yml is a regular file again"
    );
    assert_eq!(
        scene.state(),
        original,
        "{command}: state.yml is byte-identical"
    );
    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    assert!(
        history.contains("\"outcome\": \"refused\""),
        "{command}: {history}"
    );
}

#[test]
fn failure_in_the_middle_of_an_apply_leaves_the_state_byte_identical() {
    assert_restored("fail-midway", 1, "failed (exit 1)");
}

#[test]
fn invalid_yaml_is_refused_and_restored() {
    assert_restored("bad-yaml", 1, "not valid YAML");
    assert_restored("not-mapping", 1, "not a YAML mapping");
}

#[test]
fn symlink_fifo_directory_and_huge_states_are_refused_and_restored() {
    assert_restored("symlink", 1, "symbolic link");
    assert_restored("fifo", 1, "FIFO");
    assert_restored("directory", 1, "directory");
    assert_restored("huge", 1, "limit");
}

#[test]
fn concurrent_applies_are_serialized_by_the_lock() {
    let scene = Scene::new(test_repository());
    let spawn = |lock_timeout: &str| {
        Command::new(env!("CARGO_BIN_EXE_e"))
            .args([
                "run",
                "misbehave",
                "slow-apply",
                "--lock-timeout",
                lock_timeout,
            ])
            .env("E_REPOSITORY", &scene.repository)
            .env("E_SHARED", scene.shared())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Without waiting, the second one fails and names the holder.
    let first = spawn("0s");
    wait_for_lock(&scene, "slow-apply");
    let second = scene.e(&["run", "misbehave", "slow-apply"]);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        stderr(&second).contains("is locked by e (pid"),
        "{}",
        text(&second)
    );
    assert!(
        stderr(&second).contains("e slow-apply misbehave@0.1.0"),
        "{}",
        text(&second)
    );
    assert_eq!(scene.state().matches("misbehave-").count(), 1);

    // With a lock timeout, both run, one after the other, and both sections are written.
    let a = spawn("60s");
    let b = spawn("60s");
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    assert_eq!(
        scene.state().matches("misbehave-").count(),
        3,
        "{}",
        scene.state()
    );
}

#[test]
fn killed_e_leaves_no_lock_behind() {
    let scene = Scene::new(test_repository());
    let mut child = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(["run", "misbehave", "hang"])
        .env("E_REPOSITORY", &scene.repository)
        .env("E_SHARED", scene.shared())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock(&scene, "e hang misbehave");
    child.kill().unwrap(); // SIGKILL: no cleanup code runs
    child.wait().unwrap();
    let out = scene.e(&["run", "misbehave", "apply"]);
    // The container of the killed e is still running (nothing could stop it); remove it
    // before asserting, so a failure leaves nothing behind either.
    remove_containers_of(&scene);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Waits until an e holds the lock of the scene's shared directory for `command`.
fn wait_for_lock(scene: &Scene, command: &str) {
    let lock = scene.shared().join(".e/lock");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if fs::read_to_string(&lock).is_ok_and(|holder| holder.contains(command)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no e took the lock for `{command}` within a minute");
}

/// The containers of e that mount this scene's shared directory, and only those: other tests
/// run the same modules at the same time.
fn containers_of(scene: &Scene) -> Vec<String> {
    support::containers_of(&scene.shared())
}

fn volumes_of(scene: &Scene) -> Vec<String> {
    support::volumes_of(&scene.shared())
}

/// Removes this scene's containers (see [`containers_of`]).
fn remove_containers_of(scene: &Scene) {
    for id in containers_of(scene) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    }
}

#[test]
fn hung_module_is_stopped_by_the_timeout_and_its_container_removed() {
    let scene = Scene::new(test_repository());
    let started = Instant::now();
    let out = scene.expect(124, &["run", "misbehave", "hang", "--timeout", "2s"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr(&out).contains("ran longer than 2s"),
        "{}",
        text(&out)
    );
    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    assert!(history.contains("\"outcome\": \"timeout\""), "{history}");
    let run: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    let label = format!("label=e.run={}", run[0]["run"].as_str().unwrap());
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &label])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "the container is gone"
    );
}

/// The marks of a run's private copy of `shared` in a host path: under the shared directory
/// (`.e/runs/<run>/shared`) or in memory (`<tmpfs>/e-run-<shared id>-<run>/shared`).
fn copy_marks(shared: &Path) -> [String; 2] {
    let id = fs::read_to_string(shared.join(".e/id")).unwrap_or_else(|_| "no id yet".to_owned());
    [
        format!("{}/.e/runs/", shared.display()),
        format!("/e-run-{}-", id.trim()),
    ]
}

/// Whether `source`, a bind mount's host path, is a run's private copy of `shared`.
fn is_copy_of(source: &str, shared: &Path) -> bool {
    let [disk, memory] = copy_marks(shared);
    source.ends_with("/shared") && (source.starts_with(&disk) || source.contains(&memory))
}

#[test]
fn container_runs_with_least_privilege_and_ctrl_c_removes_it() {
    let scene = Scene::new(test_repository());
    let mut child = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(["run", "misbehave", "hang", "--timeout", "20s"])
        .env("E_REPOSITORY", &scene.repository)
        .env("E_SHARED", scene.shared())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let shared = fs::canonicalize(scene.shared()).unwrap_or_else(|_| scene.shared());
    let mut inspect = String::new();
    for _ in 0..300 {
        let ids = Command::new("docker")
            .args(["ps", "-q", "--filter", "label=e.module=misbehave"])
            .output()
            .unwrap();
        let ids = String::from_utf8_lossy(&ids.stdout).trim().to_owned();
        // Other tests run misbehave too: this one's container is the one with this shared dir.
        let mine = ids.lines().find_map(|id| {
            let out = Command::new("docker")
                .args(["inspect", id])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            copy_marks(&shared)
                .iter()
                .any(|mark| text.contains(mark))
                .then_some(text)
        });
        if let Some(found) = mine {
            inspect = found;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ctrl-C: e stops the container, removes it, and exits 130.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!inspect.is_empty(), "found the running container");
    assert_eq!(status.code(), Some(130));
    let json: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let id = json[0]["Id"].as_str().unwrap();
    let gone = Command::new("docker")
        .args(["inspect", id])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the interrupted container was removed"
    );
    let host = &json[0]["HostConfig"];
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_network_none(host);
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["Binds"], serde_json::Value::Null, "no legacy binds");
    let mounts = json[0]["Mounts"].as_array().expect("mounts").clone();
    // The only host path mounted is the run's private copy; private mounts are volumes.
    let sources: Vec<(String, String, String)> = mounts
        .iter()
        .map(|m| {
            (
                m["Type"].as_str().unwrap_or_default().to_owned(),
                m["Source"].as_str().unwrap_or_default().to_owned(),
                m["Destination"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        sources.iter().any(|(kind, source, target)| kind == "bind"
            && is_copy_of(source, &shared)
            && target == "/shared"),
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|(kind, _, target)| kind == "volume" && target == "/var/lib/misbehave"),
        "{sources:?}"
    );
    assert_eq!(
        sources.iter().filter(|(kind, ..)| kind == "bind").count(),
        1,
        "no other host path: {sources:?}"
    );
    assert_eq!(json[0]["Config"]["User"], module_user());
    assert_eq!(json[0]["Config"]["Labels"]["e.managed-by"], "e");
}

/// The uid:gid a module that asks for none runs as: the invoking user's, or nobody's when e
/// runs as root.
fn module_user() -> String {
    // SAFETY: getuid and getgid cannot fail.
    match unsafe { (libc_getuid(), libc_getgid()) } {
        (0, _) => "65534:65534".to_owned(),
        (uid, gid) => format!("{uid}:{gid}"),
    }
}

/// A repository of one module, `confined`, on the misbehave image: 0.1.0 takes e's defaults,
/// 0.2.0 sets its own limits and user, 0.3.0 a memory limit that `oom` exceeds.
const CONFINED_REPOSITORY: &str = r#"version: v1
kind: Repository
components:
  - name: confined
    type: docker
    versions:
      - version: 0.1.0
        image: e-tests/misbehave:0.1.0
        mounts: [/var/lib/misbehave]
        commands: &commands
          - {name: hang, command: hang}
          - {name: confinement, command: confinement}
          - {name: oom, command: oom}
      - version: 0.2.0
        image: e-tests/misbehave:0.1.0
        mounts: [/var/lib/misbehave]
        limits: {memory: 128Mi, cpus: 0.5, pids: 64}
        user: "4242:4243"
        commands: *commands
      - version: 0.3.0
        image: e-tests/misbehave:0.1.0
        limits: {memory: 16Mi}
        commands: *commands
"#;

/// `docker inspect` of the running container of `e run confined@VERSION hang` in `scene`,
/// found by e's labels; e is interrupted afterwards and must remove the container.
fn inspect_confined(scene: &Scene, version: &str) -> serde_json::Value {
    let shared = fs::canonicalize(scene.dir.path()).unwrap().join("shared");
    let child = Command::new(env!("CARGO_BIN_EXE_e"))
        .args([
            "run",
            &format!("confined@{version}"),
            "hang",
            "--timeout",
            "60s",
        ])
        .env("E_REPOSITORY", &scene.repository)
        .env("E_SHARED", scene.shared())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut inspect = None;
    let started = Instant::now();
    while inspect.is_none() && started.elapsed() < Duration::from_secs(30) {
        let ids = Command::new("docker")
            .args(["ps", "-q", "--filter", "label=e.managed-by=e"])
            .args(["--filter", "label=e.module=confined"])
            .output()
            .unwrap();
        // Other tests run `confined` too: this one's container is the one with this shared dir.
        inspect = String::from_utf8_lossy(&ids.stdout).lines().find_map(|id| {
            let out = Command::new("docker")
                .args(["inspect", id])
                .output()
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let mounts = json[0]["Mounts"].as_array()?.clone();
            mounts
                .iter()
                .any(|m| m["Source"].as_str().is_some_and(|s| is_copy_of(s, &shared)))
                .then(|| json[0].clone())
        });
        if inspect.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let inspect = inspect.unwrap_or_else(|| {
        panic!(
            "no running container of `confined@{version}`; e said:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let id = inspect["Id"].as_str().unwrap();
    let gone = Command::new("docker")
        .args(["inspect", id])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the interrupted container was removed"
    );
    inspect
}

/// The container has network `none`: its own namespace, or that of its shared directory's
/// network holder (`runtime/docker/holder.rs`), which has network `none` and nothing else.
fn assert_network_none(host: &serde_json::Value) {
    let mode = host["NetworkMode"].as_str().unwrap_or_default();
    if mode == "none" {
        return;
    }
    let holder = mode
        .strip_prefix("container:")
        .unwrap_or_else(|| panic!("network mode `{mode}`"));
    let out = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}} {{index .Config.Labels \"e.holder\"}}",
            holder,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (network, label) = said.split_once(' ').unwrap_or_default();
    assert_eq!(network, "none", "the holder's network: {said}");
    assert_eq!(label.len(), 32, "a holder of a shared directory: {said}");
}

/// The engine's CPUs in billionths, as the CPU limit is capped at them.
fn engine_nano_cpus() -> i64 {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.NCPU}}"])
        .output()
        .unwrap();
    let cpus: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    cpus * 1_000_000_000
}

#[test]
fn docker_inspect_shows_the_confinement_and_the_repository_changes_it() {
    let work = tempfile::tempdir().unwrap();
    let repository = work.path().join("repository.yaml");
    fs::write(&repository, CONFINED_REPOSITORY).unwrap();
    let scene = Scene::new(repository);
    let shared = fs::canonicalize(scene.dir.path()).unwrap().join("shared");

    let json = inspect_confined(&scene, "0.1.0");
    let host = &json["HostConfig"];
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(
        host["Tmpfs"],
        serde_json::json!({"/tmp": "rw,nosuid,nodev,size=268435456,mode=1777"})
    );
    assert_eq!(host["PidsLimit"], 512);
    assert_eq!(host["Memory"], 1_i64 << 30);
    assert_eq!(host["MemorySwap"], 1_i64 << 30, "no swap beyond the limit");
    assert_eq!(host["NanoCpus"], engine_nano_cpus().min(2_000_000_000));
    assert_eq!(json["Config"]["User"], module_user());
    assert_ne!(json["Config"]["User"], "0:0", "{}", json["Config"]["User"]);
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert!(
        host["CapAdd"].as_array().is_none_or(Vec::is_empty),
        "{}",
        host["CapAdd"]
    );
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(host["Privileged"], false);
    assert_network_none(host);
    assert_eq!(host["Init"], true);
    // The only host path mounted is the run's private copy; the module's mount is a volume.
    let mounts = json["Mounts"].as_array().unwrap();
    let mut destinations: Vec<(&str, &str)> = mounts
        .iter()
        .map(|m| {
            (
                m["Destination"].as_str().unwrap(),
                m["Type"].as_str().unwrap(),
            )
        })
        .collect();
    destinations.sort();
    assert_eq!(
        destinations,
        [("/shared", "bind"), ("/var/lib/misbehave", "volume")],
        "{mounts:?}"
    );
    let copy = mounts
        .iter()
        .find(|m| m["Type"] == "bind")
        .and_then(|m| m["Source"].as_str())
        .unwrap();
    assert!(
        is_copy_of(copy, &shared),
        "a host path other than the run's copy is mounted: {copy}"
    );

    // The repository's limits and user replace the defaults.
    let json = inspect_confined(&scene, "0.2.0");
    let host = &json["HostConfig"];
    assert_eq!(host["Memory"], 128_i64 << 20);
    assert_eq!(host["MemorySwap"], 128_i64 << 20);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 64);
    assert_eq!(
        host["Tmpfs"],
        serde_json::json!({"/tmp": "rw,nosuid,nodev,size=33554432,mode=1777"})
    );
    assert_eq!(json["Config"]["User"], "4242:4243");
    assert_eq!(host["ReadonlyRootfs"], true);
}

#[test]
fn a_confined_module_writes_only_tmp_its_mount_and_the_shared_directory() {
    let work = tempfile::tempdir().unwrap();
    let repository = work.path().join("repository.yaml");
    fs::write(&repository, CONFINED_REPOSITORY).unwrap();
    let scene = Scene::new(repository);
    fs::create_dir_all(scene.shared()).unwrap();
    let owner = fs::metadata(scene.shared()).unwrap();

    for (version, user) in [("0.1.0", module_user()), ("0.2.0", "4242:4243".to_owned())] {
        let out = scene.expect(0, &["run", &format!("confined@{version}"), "confinement"]);
        let (uid, gid) = user.split_once(':').unwrap();
        assert_eq!(
            stdout(&out),
            format!(
                "uid={uid} gid={gid}\nroot filesystem read-only\ntmp writable\nshared writable\nmount writable\n"
            ),
            "{}",
            text(&out)
        );
        // What the module wrote is given back to the owner of the shared directory.
        use std::os::unix::fs::MetadataExt as _;
        for file in [scene.shared().join("probe"), scene.shared()] {
            let meta = fs::symlink_metadata(&file).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (owner.uid(), owner.gid()),
                "{}",
                file.display()
            );
        }
    }
}

#[test]
fn a_module_over_its_memory_limit_is_killed_and_e_says_which_limit_to_raise() {
    let work = tempfile::tempdir().unwrap();
    let repository = work.path().join("repository.yaml");
    fs::write(&repository, CONFINED_REPOSITORY).unwrap();
    let scene = Scene::new(repository);
    let started = Instant::now();
    let out = scene.e(&["run", "confined@0.3.0", "oom"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("ran out of memory: the engine killed a process of it at its limit of 16Mi"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("hint: raise `limits.memory`"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

unsafe extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
    #[link_name = "getgid"]
    fn libc_getgid() -> u32;
}

#[test]
fn module_sees_contract_env_and_a_read_only_e_area() {
    let scene = Scene::new(test_repository());
    let out = scene.expect(0, &["run", "misbehave", "whoami", "--", "extra", "args"]);
    let said = stdout(&out);
    assert!(said.contains("args=whoami fixed extra args"), "{said}");
    assert!(
        said.contains("module=misbehave version=0.1.0 method=whoami"),
        "{said}"
    );
    assert!(
        said.contains("requirements=/shared/.e/requirements/misbehave.json"),
        "{said}"
    );
    assert!(said.contains("requirements file readable"), "{said}");
    assert!(said.contains("no docker socket"), "{said}");
    assert!(!scene.shared().join(".e/planted").exists());
}

#[test]
fn secret_values_appear_in_no_state_history_or_output() {
    let scene = Scene::new(test_repository());
    let secret = "hunter2-very-secret";
    let out = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(["run", "misbehave", "leak"])
        .env("E_REPOSITORY", &scene.repository)
        .env("E_SHARED", scene.shared())
        .env("E_TEST_TOKEN", secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(!all.contains(secret), "{all}");
    assert!(stdout(&out).contains("token is ***"), "{all}");
    assert!(stderr(&out).contains("token on stderr: ***"), "{all}");
    let found = Command::new("grep")
        .args(["-r", secret])
        .arg(scene.shared())
        .output()
        .unwrap();
    assert!(
        found.stdout.is_empty(),
        "the secret is on disk: {}",
        String::from_utf8_lossy(&found.stdout)
    );
    // Without the variable, e refuses before starting anything and says what is missing.
    let out = scene.expect(1, &["run", "misbehave", "leak"]);
    assert!(stderr(&out).contains("`E_TEST_TOKEN`"), "{}", text(&out));
}

#[test]
fn missing_image_and_unknown_command_are_clear_errors() {
    let scene = Scene::new(test_repository());
    let out = scene.expect(1, &["run", "misbehave", "nope"]);
    assert!(
        stderr(&out).contains("has no command `nope`"),
        "{}",
        text(&out)
    );
    let repo = scene.dir.path().join("repo.yaml");
    fs::write(
        &repo,
        "version: v1\nkind: Repository\ncomponents:\n- name: ghost\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: e-tests/does-not-exist:1.0.0\n    commands: [{name: apply, command: apply}]\n",
    )
    .unwrap();
    let out = e_in(
        root(),
        &repo,
        &scene.shared(),
        &["apply", "--auto-approve", "ghost"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("e-tests/does-not-exist:1.0.0"),
        "{}",
        text(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", text(&out));
}

#[test]
fn unreachable_engine_says_how_to_start_one() {
    let scene = Scene::new(test_repository());
    let out = Command::new(env!("CARGO_BIN_EXE_e"))
        .args(["apply", "misbehave"])
        .env("E_REPOSITORY", &scene.repository)
        .env("E_SHARED", scene.shared())
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no.sock", scene.dir.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("no.sock"), "{}", text(&out));
    assert!(stderr(&out).contains("hint:"), "{}", text(&out));
}

#[test]
fn unmet_strong_requirement_is_refused_with_suggestions_before_any_container() {
    let scene = Scene::new(top_repository());
    let out = scene.expect(1, &["init", "bmk"]);
    let said = stderr(&out);
    assert!(
        said.contains("requirement `kind=infrastructure,provider in (azure, aws)`"),
        "{said}"
    );
    assert!(said.contains("the repository has: azi@0.1.0"), "{said}");
    assert!(said.contains("`e apply azi`"), "{said}");
    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    assert_eq!(history.trim(), "[]", "no container ran");
    // --skip-requirements runs anyway and is recorded.
    let out = scene.e(&["init", "bmk", "--skip-requirements"]);
    assert!(
        stderr(&out).contains("--skip-requirements"),
        "{}",
        text(&out)
    );
    let history = stdout(&scene.expect(0, &["history", "-o", "json"]));
    assert!(history.contains("\"--skip-requirements\""), "{history}");
}

#[test]
fn applying_bmk_plans_the_monitoring_it_influences() {
    let scene = Scene::new(top_repository());
    for args in [
        &["init", "azi"][..],
        &["apply", "--auto-approve", "azi"],
        &["init", "bmm"],
        &["apply", "--auto-approve", "bmm"],
        &["init", "bmk"],
    ] {
        scene.expect(0, args);
    }
    let before = scene.state();
    let out = scene.expect(0, &["apply", "--auto-approve", "bmk"]);
    let said = text(&out);
    assert!(
        stderr(&out).contains("`bmk@0.1.0` influences `bmm@0.1.0`"),
        "{said}"
    );
    assert!(stderr(&out).contains("run `e apply bmm`"), "{said}");
    for ip in ["+ 10.0.0.0", "+ 10.0.0.1", "+ 10.0.0.2"] {
        assert!(
            stdout(&out).contains(ip),
            "bmm's plan shows the new Kafka address {ip}: {said}"
        );
    }
    assert!(
        !scene
            .state()
            .contains("bmm:\n  status: applied\n  targets:\n  - 10.0.0.0"),
        "bmm is never applied by e itself"
    );
    assert_ne!(scene.state(), before);
    let history = stdout(&scene.expect(0, &["history", "bmm", "-o", "json"]));
    assert!(
        history.contains("influence notification from bmk@0.1.0"),
        "{history}"
    );
    // --no-influences skips the notification.
    let out = scene.expect(0, &["apply", "--auto-approve", "bmk", "--no-influences"]);
    assert!(!stderr(&out).contains("influences `bmm"), "{}", text(&out));
}

#[test]
fn failing_module_in_the_middle_of_a_stack_stops_with_state_intact() {
    let scene = Scene::new(test_repository());
    let out = scene.expect(
        1,
        &[
            "apply",
            "chain-top",
            "--with-requirements",
            "--auto-approve",
        ],
    );
    let said = stderr(&out);
    assert!(said.contains("1. chain-base@1.0.0"), "{said}");
    assert!(said.contains("2. chain-middle@1.0.0"), "{said}");
    assert!(said.contains("3. chain-top@1.0.0"), "{said}");
    assert!(said.contains("installed: chain-base@1.0.0"), "{said}");
    assert!(said.contains("failed:    chain-middle@1.0.0"), "{said}");
    assert!(said.contains("not run:   chain-top@1.0.0"), "{said}");
    assert_eq!(
        scene.state(),
        "chain-base:\n  status: applied\n",
        "the state is what the last good step left"
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    assert!(
        status.contains("chain-base") && !status.contains("chain-middle"),
        "{status}"
    );
}

#[test]
fn stack_without_confirmation_changes_nothing() {
    let scene = Scene::new(test_repository());
    let out = scene.expect(1, &["apply", "chain-top", "--with-requirements"]);
    assert!(stderr(&out).contains("--auto-approve"), "{}", text(&out));
    assert!(!scene.shared().join("state.yml").exists());
}

#[test]
fn upgrade_is_gated_by_the_new_versions_audit() {
    let scene = Scene::new(test_repository());
    scene.expect(0, &["apply", "--auto-approve", "upgradable@1.0.0"]);
    scene.expect(
        0,
        &["upgrade", "--auto-approve", "upgradable", "--to", "1.1.0"],
    );
    // Applying another version directly would skip the audit: refused, pointing at upgrade.
    let out = scene.expect(1, &["apply", "--auto-approve", "upgradable@2.0.0"]);
    assert!(
        stderr(&out).contains("run `e upgrade upgradable --to 2.0.0`"),
        "{}",
        text(&out)
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    assert!(status.contains("\"version\": \"1.1.0\""), "{status}");

    // A hand change the module does not know blocks the upgrade; nothing else runs.
    let edited = format!("{}hand-edit: true\n", scene.state());
    fs::write(scene.shared().join("state.yml"), &edited).unwrap();
    let out = scene.expect(
        1,
        &["upgrade", "--auto-approve", "upgradable", "--to", "2.0.0"],
    );
    assert!(
        stdout(&out).contains("drift: a hand-edit I do not know"),
        "{}",
        text(&out)
    );
    assert!(stderr(&out).contains("blocked"), "{}", text(&out));
    assert!(
        stderr(&out).contains("`upgradable@1.1.0` stays installed"),
        "{}",
        text(&out)
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    assert!(status.contains("\"version\": \"1.1.0\""), "{status}");
    assert_eq!(scene.state(), edited);

    // Downgrades need to be asked for.
    fs::write(
        scene.shared().join("state.yml"),
        edited.replace("hand-edit: true\n", ""),
    )
    .unwrap();
    let out = scene.expect(
        1,
        &["upgrade", "--auto-approve", "upgradable", "--to", "1.0.0"],
    );
    assert!(stderr(&out).contains("--allow-downgrade"), "{}", text(&out));
    scene.expect(
        0,
        &[
            "upgrade",
            "--auto-approve",
            "upgradable",
            "--to",
            "1.0.0",
            "--allow-downgrade",
        ],
    );
}

/// Every file of a shared directory but e's area, with its bytes.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != ".e" {
            files.push((name, fs::read(entry.path()).unwrap()));
        }
    }
    files.sort();
    files
}

#[test]
fn a_failed_upgrade_leaves_every_file_as_it_was() {
    let scene = Scene::new(test_repository());
    scene.expect(0, &["apply", "--auto-approve", "upgradable@1.0.0"]);
    let before = files_of(&scene.shared());
    let installed = scene.read(".e/installed.json");
    // 3.0.0's init writes its config, then its apply fails after recording its section.
    let out = scene.expect(
        1,
        &["upgrade", "--auto-approve", "upgradable", "--to", "3.0.0"],
    );
    assert!(
        stderr(&out).contains("nothing was committed"),
        "{}",
        text(&out)
    );
    assert_eq!(files_of(&scene.shared()), before, "every file is as it was");
    assert!(!scene.shared().join("upgradable-config.yml").exists());
    assert_eq!(scene.read(".e/installed.json"), installed);
    // What the failed apply left (with the config its init wrote) is kept aside.
    let listed = stdout(&scene.expect(0, &["recover", "-o", "json"]));
    let kept: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(kept.len(), 1, "{listed}");
    assert_eq!(kept[0]["method"], "apply");
    let run = kept[0]["run"].as_str().unwrap();
    let shown = stdout(&scene.expect(0, &["recover", "show", run]));
    assert!(shown.contains("upgradable-config.yml"), "{shown}");
    assert!(shown.contains("status: half-applied"), "{shown}");
    // The installed version's next plan sees its own config, not the other version's.
    scene.expect(0, &["plan", "upgradable"]);
}

#[test]
fn private_mounts_are_volumes_of_the_module_and_survive_another_version() {
    let scene = Scene::new(test_repository());
    let first = scene.expect(0, &["run", "keeper@1.0.0", "remember"]);
    assert_eq!(stdout(&first), "1.0.0\n", "{}", text(&first));
    let second = scene.expect(0, &["run", "keeper@2.0.0", "remember"]);
    assert_eq!(stdout(&second), "1.0.0\n2.0.0\n", "{}", text(&second));
    let volumes = volumes_of(&scene);
    assert_eq!(volumes.len(), 1, "one volume for the module: {volumes:?}");
    assert!(volumes[0].contains("-keeper-var-lib-keeper"), "{volumes:?}");
    // Another shared directory has volumes of its own.
    let other = Scene::new(test_repository());
    let out = other.expect(0, &["run", "keeper@2.0.0", "remember"]);
    assert_eq!(stdout(&out), "2.0.0\n", "{}", text(&out));
}

#[test]
fn private_data_from_before_volumes_moves_into_the_volume_once() {
    let scene = Scene::new(test_repository());
    let old = scene.shared().join(".e/mounts/keeper/0.9.0/var/lib/keeper");
    fs::create_dir_all(&old).unwrap();
    fs::write(old.join("seen"), "0.9.0\n").unwrap();
    let out = scene.expect(0, &["run", "keeper@1.0.0", "remember"]);
    assert_eq!(stdout(&out), "0.9.0\n1.0.0\n", "{}", text(&out));
    assert!(stderr(&out).contains("moved from"), "{}", text(&out));
    assert!(!scene.shared().join(".e/mounts/keeper").exists());
    assert!(
        scene
            .shared()
            .join(".e/mounts-moved/keeper/0.9.0/var/lib/keeper/seen")
            .is_file()
    );
    let again = scene.expect(0, &["run", "keeper@1.0.0", "remember"]);
    assert_eq!(stdout(&again), "0.9.0\n1.0.0\n1.0.0\n", "{}", text(&again));
}

#[test]
fn destroy_is_refused_while_required() {
    let scene = Scene::new(test_repository());
    scene.expect(0, &["apply", "--auto-approve", "chain-base"]);
    // chain-middle cannot be applied (its apply fails), so install a dependent by skipping.
    scene.expect(0, &["apply", "--auto-approve", "good"]);
    let installed = scene.shared().join(".e/installed.json");
    let text_before = fs::read_to_string(&installed).unwrap();
    let mut records: serde_json::Value = serde_json::from_str(&text_before).unwrap();
    let mut top = records["good"].clone();
    top["module"] = "chain-top".into();
    top["version"] = "1.0.0".into();
    top["bindings"] = serde_json::json!([{"relation": "strong", "selector": "kind=chain-middle",
        "module": "chain-middle", "version": "1.0.0"}]);
    records["chain-top"] = top;
    let mut middle = records["good"].clone();
    middle["module"] = "chain-middle".into();
    middle["version"] = "1.0.0".into();
    middle["bindings"] = serde_json::json!([{"relation": "strong", "selector": "kind=chain-base",
        "module": "chain-base", "version": "1.0.0"}]);
    records["chain-middle"] = middle;
    fs::write(&installed, serde_json::to_string(&records).unwrap()).unwrap();

    let out = scene.expect(1, &["destroy", "--auto-approve", "chain-base"]);
    assert!(
        stderr(&out).contains("chain-middle@1.0.0 (bound for `kind=chain-base`)"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("chain-middle@1.0.0"),
        "{}",
        text(&out)
    );
    let out = scene.expect(0, &["destroy", "--auto-approve", "chain-base", "--force"]);
    assert!(stderr(&out).contains("--force"), "{}", text(&out));
    let history = stdout(&scene.expect(0, &["history", "chain-base", "-o", "json"]));
    assert!(
        history.contains("--force: used by chain-middle@1.0.0 (bound for `kind=chain-base`)"),
        "{history}"
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let modules = status["modules"].as_array().unwrap();
    let of = |name: &str| modules.iter().find(|m| m["module"] == name).cloned();
    assert_eq!(
        of("chain-base").map(|m| m["installed"].clone()),
        Some(false.into()),
        "{status}"
    );
    // e status tells that chain-middle's strong requirement no longer holds.
    assert_eq!(
        of("chain-middle").unwrap()["unmet_requirements"],
        serde_json::json!(["kind=chain-base"]),
        "{status}"
    );
    assert_eq!(
        of("good").unwrap()["unmet_requirements"],
        serde_json::json!([]),
        "{status}"
    );
}

/// The rows of `e check MODULE -o json` and its exit code.
fn check_rows(scene: &Scene, module: &str) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = scene.e(&["check", module, "-o", "json"]);
    let rows = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{module}: not JSON rows ({err}):\n{}", text(&out)));
    (out.status.code(), rows)
}

/// The names of the rows whose result is `result` (`pass`, `fail`, `skip`).
fn rows_with(rows: &[serde_json::Value], result: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r["result"] == result)
        .map(|r| r["check"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn check_passes_a_module_that_keeps_the_contract() {
    let scene = Scene::new(test_repository());
    let out = scene.expect(0, &["check", "compliant"]);
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("check_compliant", stdout(&out));
    });
    assert!(
        stderr(&out).contains("e: `compliant@1.0.0` follows the module contract"),
        "{}",
        text(&out)
    );
    let (code, rows) = check_rows(&scene, "compliant");
    assert_eq!(code, Some(0));
    assert_eq!(rows.len(), 13, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["result"] == "pass" && r["passed"] == true && r["hint"] == ""),
        "{rows:#?}"
    );
}

/// Each subject breaks one promise of the contract (tests/modules/noncompliant): `e check`
/// fails that row and no other, skips the rows that build on a failed step, and says what
/// failed and how to fix it.
#[test]
fn check_fails_exactly_the_row_of_each_broken_promise() {
    let scene = Scene::new(test_repository());
    let after_apply = [
        "apply writes its own `apply-fails` section with `status: applied`",
        "plan after apply reports no changes (exit 0)",
        "a second apply changes nothing",
        "audit after apply reports no drift (exit 0)",
        "destroy removes the `apply-fails` section",
    ];
    // (module, the failing row, the skipped rows, a word its detail must hold)
    let subjects: [(&str, &str, &[&str], &str); 11] = [
        (
            "wrong-metadata",
            "metadata equals the repository's labels, requires, influences",
            &[],
            "kind: expected `check-subject`, printed `something-else`",
        ),
        (
            "no-config",
            "init writes `no-config-config.yml`",
            &[],
            "no `no-config-config.yml` after init",
        ),
        (
            "plan-no-changes",
            "plan before apply reports changes (exit 2)",
            &[],
            "exit 0 (no changes), although nothing is applied yet",
        ),
        (
            "plan-writes-state",
            "metadata, plan and audit change nothing",
            &[],
            "plan before apply: `state.yml`",
        ),
        (
            "apply-fails",
            "apply exits 0 with a valid state",
            &after_apply,
            "exit 1: error: the provider did not answer",
        ),
        (
            "not-applied",
            "apply writes its own `not-applied` section with `status: applied`",
            &[],
            "`not-applied.status` is `pending`, not `applied`",
        ),
        (
            "record-beside-state",
            "apply writes its own `record-beside-state` section with `status: applied`",
            &[],
            "no `state.yml` after apply",
        ),
        (
            "never-converges",
            "plan after apply reports no changes (exit 0)",
            &[],
            "exit 2 (changes) right after its own apply: + never-converges (size 1)",
        ),
        (
            "counts-applies",
            "a second apply changes nothing",
            &[],
            "the second apply changed `state.yml` (sections `counts-applies`)",
        ),
        (
            "always-drifts",
            "audit after apply reports no drift (exit 0)",
            &[],
            "exit 2 (drift) right after its own apply: drift: always-drifts.size: 1 -> 2",
        ),
        (
            "keeps-section",
            "destroy removes the `keeps-section` section",
            &[],
            "`state.yml` still has the `keeps-section` section",
        ),
    ];
    // The subjects are checked side by side: each `e check` has its own throwaway directory.
    let results: Vec<(Option<i32>, Vec<serde_json::Value>)> = std::thread::scope(|threads| {
        let handles: Vec<_> = subjects
            .iter()
            .map(|(module, ..)| threads.spawn(|| check_rows(&scene, module)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((module, failing, skipped, detail), (code, rows)) in subjects.iter().zip(results) {
        assert_eq!(code, Some(1), "{module}: {rows:#?}");
        assert_eq!(rows_with(&rows, "fail"), [*failing], "{module}: {rows:#?}");
        assert_eq!(rows_with(&rows, "skip"), *skipped, "{module}: {rows:#?}");
        // The same rows, in the same order, whatever broke.
        assert_eq!(rows.len(), 13, "{module}: {rows:#?}");
        let row = rows.iter().find(|r| r["check"] == *failing).unwrap();
        assert_eq!(row["passed"], false, "{module}: {row:#?}");
        assert!(
            row["detail"].as_str().unwrap().contains(detail),
            "{module}: the detail says what failed: {row:#?}"
        );
        assert!(
            !row["hint"].as_str().unwrap().is_empty(),
            "{module}: the row says how to fix it: {row:#?}"
        );
    }
}

/// The table a module author reads: the failing row, its detail and its hint.
#[test]
fn check_table_names_the_broken_promise_and_how_to_fix_it() {
    let scene = Scene::new(test_repository());
    let out = scene.expect(1, &["check", "never-converges"]);
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("check_never_converges", stdout(&out));
    });
    assert!(
        stderr(&out).contains("e: `never-converges@1.0.0` fails 1 of 13 checks"),
        "{}",
        text(&out)
    );
    let out = scene.expect(1, &["check", "apply-fails"]);
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("check_apply_fails", stdout(&out));
    });
    assert!(
        stderr(&out).contains("e: `apply-fails@1.0.0` fails 1 of 13 checks (5 skipped)"),
        "{}",
        text(&out)
    );
}

/// Several modules are checked side by side, each in its own throwaway directory; every row
/// names its module, and one module's failure fails the command but no other module's rows.
#[test]
fn check_of_several_modules_names_the_module_of_every_row() {
    let scene = Scene::new(test_repository());
    let modules = ["compliant", "never-converges", "apply-fails"];
    let out = scene.e(&["check", modules[0], modules[1], modules[2], "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 3 * 13, "{rows:#?}");
    for (module, rows) in modules.iter().zip(rows.chunks(13)) {
        let id = format!("{module}@1.0.0");
        assert!(rows.iter().all(|r| r["module"] == id), "{rows:#?}");
        let failed = rows_with(rows, "fail").len();
        assert_eq!(
            failed,
            usize::from(*module != "compliant"),
            "{module}: {rows:#?}"
        );
    }
    let out = scene.expect(1, &["check", modules[0], modules[1], "--parallelism", "2"]);
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .trim_start()
            .starts_with("MODULE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("never-converges@1.0.0") && l.contains("FAIL")),
        "{table}"
    );
    let said = stderr(&out);
    assert!(
        said.contains("e: `compliant@1.0.0` follows the module contract")
            && said.contains("e: `never-converges@1.0.0` fails 1 of 13 checks"),
        "{said}"
    );
}

/// What the engine holds with the label `key=value`: `docker ps -a` or `docker volume ls`
/// ids, with the `--format` given.
fn engine_objects(kind: &str, label: &str, format: &str) -> Vec<String> {
    let mut args = vec![kind];
    args.extend(if kind == "volume" {
        ["ls", "-q"].as_slice()
    } else {
        ["ps", "-a", "--no-trunc"].as_slice()
    });
    let filter = format!("label={label}");
    let format = format!("--format={format}");
    args.extend(["--filter", &filter, &format]);
    let out = Command::new("docker")
        .args(&args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A stop signal during `e check` stops the method's container, skips the checks left and
/// exits 130; the throwaway directory's volumes go with it; a module whose check waited for
/// its turn (`--parallelism 1`) is never started, and named.
#[test]
fn check_stops_at_a_stop_signal_and_leaves_nothing() {
    let scene = Scene::new(test_repository());
    let module = "e.module=hangs-in-apply";
    assert!(
        engine_objects("volume", module, "{{.Name}}").is_empty(),
        "a volume of an earlier run is left"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_e"))
        .args([
            "check",
            "hangs-in-apply",
            "compliant",
            "--parallelism",
            "1",
            "-o",
            "json",
        ])
        .current_dir(root())
        .env("E_REPOSITORY", &scene.repository)
        .env("E_SHARED", scene.shared())
        .env_remove("E_SECRETS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the container of apply (metadata, init and plan run before it).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !engine_objects("container", module, "{{.Command}}")
        .iter()
        .any(|c| c.contains("apply"))
    {
        if Instant::now() > deadline {
            // Stopped the way the test means to, so that it cleans up.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!("apply never started");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let volumes_during = engine_objects("volume", module, "{{.Name}}");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        volumes_during.len(),
        1,
        "apply runs with its private volume"
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        rows.iter()
            .all(|r| r["module"].as_str().unwrap().starts_with("hangs-in-apply@")),
        "no check of the module after it ran: {rows:#?}"
    );
    assert!(
        stderr(&out).contains("e: never started: `compliant@"),
        "{}",
        text(&out)
    );
    let apply = rows
        .iter()
        .find(|r| r["check"] == "apply exits 0 with a valid state")
        .unwrap();
    assert_eq!(apply["detail"], "interrupted", "{rows:#?}");
    assert_eq!(
        rows_with(&rows, "skip"),
        [
            "apply writes its own `hangs-in-apply` section with `status: applied`",
            "plan after apply reports no changes (exit 0)",
            "a second apply changes nothing",
            "audit after apply reports no drift (exit 0)",
            "destroy removes the `hangs-in-apply` section",
        ],
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r["result"] == "skip")
            .all(|r| r["detail"] == "interrupted" || r["detail"] == "apply failed"),
        "{rows:#?}"
    );
    assert!(
        stderr(&out).contains("e: interrupted; the remaining checks were skipped"),
        "{}",
        text(&out)
    );
    assert!(
        engine_objects("container", module, "{{.ID}}").is_empty(),
        "the container is removed"
    );
    assert!(
        engine_objects("volume", module, "{{.Name}}").is_empty(),
        "the volumes of the throwaway directory are removed"
    );
}

/// A version without some required methods: the missing ones are named, and the rows that
/// need them are skipped, not failed; its strong requirement is installed first.
#[test]
fn check_names_missing_methods_and_installs_strong_requirements_first() {
    let scene = Scene::new(test_repository());
    let (code, rows) = check_rows(&scene, "partial");
    assert_eq!(code, Some(1), "{rows:#?}");
    assert_eq!(
        rows_with(&rows, "fail"),
        ["declares metadata, init, plan, apply, audit"],
        "{rows:#?}"
    );
    assert_eq!(rows[0]["detail"], "missing: audit", "{rows:#?}");
    assert_eq!(
        rows[1]["check"], "setup: install chain-base@1.0.0",
        "{rows:#?}"
    );
    assert_eq!(rows[1]["result"], "pass", "{rows:#?}");
    assert_eq!(
        rows_with(&rows, "skip"),
        [
            "audit after apply reports no drift (exit 0)",
            "destroy removes the `partial` section"
        ],
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r["result"] == "skip")
            .all(|r| r["detail"]
                .as_str()
                .unwrap()
                .starts_with("the version declares no `")),
        "{rows:#?}"
    );
}

/// A strong requirement that does not install: its row fails, naming the method, and nothing
/// of the module itself is run.
#[test]
fn check_stops_when_a_strong_requirement_does_not_install() {
    let scene = Scene::new(test_repository());
    let (code, rows) = check_rows(&scene, "on-a-failing-base");
    assert_eq!(code, Some(1), "{rows:#?}");
    assert_eq!(
        rows_with(&rows, "pass"),
        [
            "declares metadata, init, plan, apply, audit",
            "setup: install chain-base@1.0.0"
        ],
        "{rows:#?}"
    );
    assert_eq!(
        rows_with(&rows, "fail"),
        ["setup: install chain-middle@1.0.0"],
        "{rows:#?}"
    );
    let failed = &rows[2];
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .starts_with("apply: exit 1"),
        "{rows:#?}"
    );
    assert!(
        failed["hint"]
            .as_str()
            .unwrap()
            .contains("`e check chain-middle@1.0.0`"),
        "{rows:#?}"
    );
    let skipped = rows_with(&rows, "skip");
    assert_eq!(skipped.len(), rows.len() - 3, "{rows:#?}");
    assert!(
        rows[3..]
            .iter()
            .take(skipped.len() - 1)
            .all(|r| r["detail"] == "`chain-middle@1.0.0` did not install"),
        "{rows:#?}"
    );
}

/// Every example module keeps every promise `e check` checks: none is failed or skipped (each
/// declares `destroy`), its strong requirements installed first.
#[test]
fn every_example_module_passes_check() {
    let scene = Scene::new(top_repository());
    let results: Vec<(Option<i32>, Vec<serde_json::Value>)> = std::thread::scope(|threads| {
        let handles: Vec<_> = EXAMPLE_MODULES
            .iter()
            .map(|module| threads.spawn(|| check_rows(&scene, module)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (module, (code, rows)) in EXAMPLE_MODULES.iter().zip(&results) {
        assert_eq!(*code, Some(0), "{module}: {rows:#?}");
        let not_passed: Vec<&serde_json::Value> =
            rows.iter().filter(|r| r["result"] != "pass").collect();
        assert!(not_passed.is_empty(), "{module}: {not_passed:#?}");
        assert!(rows.len() >= 13, "{module}: {rows:#?}");
    }
    let pg = &results[EXAMPLE_MODULES.iter().position(|m| *m == "pg").unwrap()].1;
    assert_eq!(
        rows_with(pg, "pass")[1..4],
        [
            "setup: install azi@0.1.0",
            "setup: install k8s@0.1.0",
            "setup: install nfs@0.1.0"
        ],
        "pg's strong requirements are installed first: {pg:#?}"
    );
}

#[test]
fn three_level_stack_installs_from_nothing_with_one_command() {
    let scene = Scene::new(top_repository());
    // The design's flow: PostgreSQL first says what is missing.
    let out = scene.expect(1, &["apply", "--auto-approve", "pg"]);
    assert!(
        stderr(&out).contains("requirement `kind=persistence`"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("the repository has: nfs@0.1.0, rook@0.1.0"),
        "{}",
        text(&out)
    );

    let out = scene.expect(
        0,
        &[
            "apply",
            "pg",
            "--with-requirements",
            "--auto-approve",
            "--prefer",
            "rook",
        ],
    );
    let said = stderr(&out);
    let order: Vec<usize> = [
        "1. azi@0.1.0",
        "2. k8s@0.1.0",
        "3. rook@0.1.0",
        "4. pg@0.1.0",
    ]
    .iter()
    .map(|step| {
        said.find(step)
            .unwrap_or_else(|| panic!("no `{step}` in the plan:\n{said}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{said}");
    assert!(
        said.contains("named with --prefer; also possible: nfs@0.1.0"),
        "the choice is explained: {said}"
    );
    let state = scene.state();
    for section in ["azi:", "k8s:", "rook:", "pg:"] {
        assert!(
            state.contains(&format!("\n{section}")) || state.starts_with(section),
            "{section} in {state}"
        );
    }
    assert!(state.contains("storageClass: rook-ceph-block"), "{state}");
    // pg was told which installed module satisfied its requirements.
    let file = scene.read(".e/requirements/pg.json");
    let told: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(told["strong"][0]["selector"], "kind=persistence", "{file}");
    assert_eq!(
        told["strong"][0]["satisfied_by"],
        serde_json::json!([{"module": "rook", "version": "0.1.0"}]),
        "{file}"
    );
    assert_eq!(
        told["weak"][0]["satisfied_by"],
        serde_json::json!([]),
        "{file}"
    );
    let status = stdout(&scene.expect(0, &["status", "-o", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let modules = status["modules"].as_array().unwrap();
    let installed: Vec<&str> = modules
        .iter()
        .filter(|m| m["installed"] == true)
        .map(|m| m["module"].as_str().unwrap())
        .collect();
    assert_eq!(installed, ["azi", "k8s", "rook", "pg"]);

    // Without --prefer, the choice is deterministic and explained: nfs comes first by name.
    let fresh = Scene::new(top_repository());
    let out = fresh.expect(0, &["apply", "pg", "--with-requirements", "--auto-approve"]);
    assert!(stderr(&out).contains("3. nfs@0.1.0"), "{}", text(&out));
    assert!(
        stderr(&out).contains("also possible: rook@0.1.0 (choose with --prefer)"),
        "{}",
        text(&out)
    );

    // Destroying what pg stands on is refused and names pg.
    let out = scene.expect(1, &["destroy", "--auto-approve", "rook"]);
    assert!(stderr(&out).contains("pg@0.1.0"), "{}", text(&out));
}

#[test]
fn a_missing_image_is_pulled_from_a_registry_with_progress() {
    let scene = Scene::new(test_repository());
    let registry = support::registry::Registry::start();
    let image = format!("{}/e-tests/pulled:1", registry.address());
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            text(&out)
        );
    };
    docker(&["tag", "e-tests/misbehave:0.1.0", &image]);
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    let repository = scene.dir.path().join("pulled.yaml");
    fs::write(
        &repository,
        format!("version: v1\nkind: Repository\ncomponents:\n- name: pulled\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: {image}\n    commands: [{{name: whoami, command: whoami}}]\n"),
    )
    .unwrap();
    let out = e_in(
        root(),
        &repository,
        &scene.shared(),
        &["run", "pulled", "whoami"],
    );
    let _ = Command::new("docker").args(["rmi", &image]).output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("pulling image `{image}`")),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("module=pulled"), "{}", text(&out));
}
