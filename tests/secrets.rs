//! End-to-end tests on the real Docker engine of what e does with secrets and time: secret
//! files in a tmpfs of the container, secrets a module leaves in what it writes (refused, or
//! kept in the secret store), a module that prints one, and the timeouts (e's default, the
//! repository's, `--timeout`). They use `tests/modules/misbehave`, whose commands each do one
//! such thing; each test has its own shared directory, and its volumes go with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

mod support;
use support::{
    Volumes, containers_of, e_in_with, misbehave_image, root, stderr, stdout, test_repository, text,
};

/// The secret value the tests hand out; it must never be found in clear anywhere e keeps.
const SECRET: &str = "hunter2-from-the-file";

/// A shared directory, a secrets file beside it, and the engine volumes of the directory.
struct Scene {
    dir: tempfile::TempDir,
}

impl Drop for Scene {
    fn drop(&mut self) {
        drop(Volumes(self.shared()));
    }
}

impl Scene {
    fn new() -> Scene {
        misbehave_image();
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("secrets.yml"),
            format!("db-password: {SECRET}\n"),
        )
        .unwrap();
        Scene { dir }
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    fn secrets(&self) -> String {
        self.dir.path().join("secrets.yml").display().to_string()
    }

    /// Runs e with these arguments and extra environment, and checks its exit code.
    fn expect_with(&self, code: i32, args: &[&str], envs: &[(&str, &str)]) -> Output {
        support::exited(
            code,
            args,
            e_in_with(root(), &test_repository(), &self.shared(), args, envs),
        )
    }

    fn expect(&self, code: i32, args: &[&str]) -> Output {
        self.expect_with(code, args, &[])
    }

    /// Runs a command of `misbehave` with the secrets file.
    fn run_with_secrets(&self, code: i32, command: &str) -> Output {
        let secrets = self.secrets();
        self.expect(code, &["--secrets", &secrets, "run", "misbehave", command])
    }

    fn state(&self) -> String {
        fs::read_to_string(self.shared().join("state.yml")).unwrap_or_default()
    }

    /// Every file under the shared directory that holds `value`, but `except`.
    fn files_holding(&self, value: &str, except: &[&str]) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.shared(), &mut |path| {
            let relative = path
                .strip_prefix(self.shared())
                .unwrap()
                .display()
                .to_string();
            if !except.contains(&relative.as_str())
                && fs::read(path).is_ok_and(|bytes| contains(&bytes, value.as_bytes()))
            {
                found.push(relative);
            }
        });
        found
    }
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, visit);
        } else {
            visit(&path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secrets_reach_the_module_as_read_only_files_in_a_tmpfs_and_leave_nothing_behind() {
    let scene = Scene::new();
    let out = scene.run_with_secrets(0, "secret-file");
    let said = stdout(&out);
    assert!(
        said.contains(&format!("secret file readable: {} bytes", SECRET.len())),
        "{said}"
    );
    assert!(said.contains("mounted: tmpfs ro"), "{said}");
    assert!(said.contains("secret file read-only"), "{said}");
    assert!(said.contains("secret not in env"), "{said}");
    // Where the files were on the host's tmpfs (the mount's root there), and that they are gone.
    let from = said
        .lines()
        .find_map(|line| line.strip_prefix("from: /"))
        .unwrap_or_else(|| panic!("the module does not say where its secrets come from:\n{said}"));
    let host = Path::new("/dev/shm").join(from);
    assert!(from.starts_with("e-secrets-"), "{said}");
    assert!(
        !host.exists(),
        "the secret files are still at `{}`",
        host.display()
    );
    assert_eq!(scene.files_holding(SECRET, &[]), Vec::<String>::new());
    assert!(containers_of(&scene.shared()).is_empty());

    // Through the archive API, e could only write them to the engine's disk: it refuses.
    let secrets = scene.secrets();
    let out = scene.expect_with(
        1,
        &["--secrets", &secrets, "run", "misbehave", "secret-file"],
        &[("E_TRANSFER", "archive")],
    );
    assert!(
        stderr(&out).contains("the `archive` transfer"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_secret_written_into_what_a_module_leaves_is_refused_and_kept_nowhere() {
    let scene = Scene::new();
    scene.expect(0, &["run", "misbehave", "apply"]);
    let state = scene.state();

    let out = scene.run_with_secrets(1, "write-secret");
    let said = stderr(&out);
    assert!(
        said.contains("`state.yml` holds, at key `misbehave.url`, the value of the secret `db-password` that e handed to `misbehave` write-secret"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(SECRET), "{}", text(&out));
    assert_eq!(scene.state(), state, "nothing was committed");

    // A run that fails after writing it would have its result kept aside: not this one.
    let out = scene.run_with_secrets(1, "write-secret-then-fail");
    assert!(
        stderr(&out).contains("at key `misbehave.password`"),
        "{}",
        text(&out)
    );
    assert_eq!(scene.state(), state);
    let kept: Vec<_> = fs::read_dir(scene.shared().join(".e/kept"))
        .unwrap()
        .collect();
    assert!(kept.is_empty(), "a result was kept aside: {kept:?}");

    // A value from e's environment is a secret too.
    let out = scene.expect_with(
        1,
        &["run", "misbehave", "write-env-secret"],
        &[("E_TEST_TOKEN", "token-from-the-environment")],
    );
    assert!(
        stderr(&out).contains("the value of the `${env:E_TEST_TOKEN}`"),
        "{}",
        text(&out)
    );

    // Not in the state, its backup, the runs' copies, kept results or the history.
    assert_eq!(scene.files_holding(SECRET, &[]), Vec::<String>::new());
    assert_eq!(
        scene.files_holding("token-from-the-environment", &[]),
        Vec::<String>::new()
    );
}

#[test]
fn a_secret_a_command_may_keep_goes_to_the_store_and_the_state_gets_its_reference() {
    use std::os::unix::fs::PermissionsExt as _;
    let scene = Scene::new();
    scene.run_with_secrets(0, "keep-secret");
    assert!(
        scene
            .state()
            .contains("url: postgres://app:${secret:db-password}@db/app"),
        "{}",
        scene.state()
    );
    let store = scene.shared().join(".e/secrets.json");
    let mode = fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(fs::read_to_string(&store).unwrap().contains(SECRET));
    assert_eq!(
        scene.files_holding(SECRET, &[".e/secrets.json"]),
        Vec::<String>::new()
    );
    let shown = stdout(&scene.expect(0, &["state"]));
    assert!(
        shown.contains("${secret:db-password}") && !shown.contains(SECRET),
        "{shown}"
    );

    // Without the secrets file, the next run gets the kept value from the store.
    let out = scene.expect(0, &["run", "misbehave", "secret-file"]);
    assert!(
        stdout(&out).contains(&format!("secret file readable: {} bytes", SECRET.len())),
        "{}",
        text(&out)
    );

    // A failed run's result is kept aside with the reference too, never the value.
    let out = scene.run_with_secrets(1, "keep-secret-then-fail");
    assert!(
        stderr(&out).contains("is kept aside as run"),
        "{}",
        text(&out)
    );
    let kept = scene.shared().join(".e/kept");
    let run = fs::read_dir(&kept)
        .unwrap()
        .next()
        .expect("a kept result")
        .unwrap();
    let state = fs::read_to_string(run.path().join("shared/state.yml")).unwrap();
    assert!(state.contains("password: ${secret:db-password}"), "{state}");
    assert_eq!(
        scene.files_holding(SECRET, &[".e/secrets.json"]),
        Vec::<String>::new()
    );
}

#[test]
fn a_module_that_prints_a_secret_is_masked_and_named_once() {
    let scene = Scene::new();
    let out = scene.expect_with(
        0,
        &["run", "misbehave", "leak"],
        &[("E_TEST_TOKEN", "printed-token-value")],
    );
    assert!(
        !text(&out).contains("printed-token-value"),
        "{}",
        text(&out)
    );
    let warnings = stderr(&out)
        .lines()
        .filter(|line| line.starts_with("warning: `misbehave@0.1.0` leak printed a secret"))
        .count();
    assert_eq!(warnings, 1, "{}", text(&out));
}

#[test]
fn timeouts_default_to_an_hour_the_repository_sets_its_own_and_the_flag_wins() {
    let scene = Scene::new();
    let seen = |args: &[&str]| stdout(&scene.expect(0, args));
    assert!(seen(&["run", "misbehave", "timeout-seen"]).contains("E_TIMEOUT=3600"));
    assert!(seen(&["run", "misbehave", "timeout-seen-30m"]).contains("E_TIMEOUT=1800"));
    assert!(
        seen(&["run", "misbehave", "timeout-seen-30m", "--timeout", "7s"]).contains("E_TIMEOUT=7")
    );

    let started = Instant::now();
    let out = scene.expect(124, &["run", "misbehave", "hang-2s"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr(&out).contains(
            "`misbehave@0.1.0` hang-2s ran longer than 2s (the command's `timeout:` in the repository); its container was stopped and removed"
        ),
        "{}",
        text(&out)
    );
    let out = scene.expect(124, &["run", "misbehave", "hang-2s", "--timeout", "1s"]);
    assert!(
        stderr(&out).contains("ran longer than 1s (`--timeout`)"),
        "{}",
        text(&out)
    );
    assert!(containers_of(&scene.shared()).is_empty());

    let info = stdout(&scene.expect(0, &["info", "misbehave"]));
    assert!(info.contains("timeout:       1h for each method"), "{info}");
    assert!(info.contains("[hang]  timeout 2s"), "{info}");
}
