//! Faults against a real engine: e killed (`kill -9`, SIGTERM) at many moments of a slow apply,
//! a failing module on a full disk. Each asserts exactly what is kept: the state is the old
//! or the new content, never a mix; the next command is never blocked; no update is lost; no
//! container of the shared directory is left once the next command has run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::{
    Volumes, containers_of, e_in, e_in_with, misbehave_image, root, test_repository, text,
};

/// One full section as `misbehave write` appends it.
fn is_section(lines: &[&str]) -> bool {
    lines.len() == 3
        && lines[0].starts_with("misbehave-")
        && lines[0].ends_with(':')
        && lines[1] == "  status: applied"
        && lines[2].starts_with("  run: ")
}

/// The number of complete `misbehave` sections, asserting that nothing else changed.
fn sections_after(original: &str, state: &str) -> usize {
    let rest = state
        .strip_prefix(original)
        .unwrap_or_else(|| panic!("the original content is intact:\n{state}"));
    let lines: Vec<&str> = rest.lines().collect();
    assert_eq!(
        lines.len() % 3,
        0,
        "only whole sections were added:\n{rest}"
    );
    for chunk in lines.chunks(3) {
        assert!(is_section(chunk), "a whole section: {chunk:?}\n{state}");
    }
    lines.len() / 3
}

/// The runs' copies of `shared` in memory (`run/memory_copy.rs`) left on this machine.
fn memory_copies(shared: &Path) -> Vec<PathBuf> {
    let id = fs::read_to_string(shared.join(".e/id")).unwrap();
    let mine = format!("e-run-{}-", id.trim());
    let bases = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/dev/shm")]);
    bases
        .filter_map(|base| fs::read_dir(base).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(&mine))
        })
        .collect()
}

/// A shared directory holding `state` as its `state.yml`, in a temporary directory, whose
/// engine volumes go with it; the misbehave image is built.
fn shared_with(state: &str) -> (tempfile::TempDir, PathBuf, Volumes) {
    misbehave_image();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::write(shared.join("state.yml"), state).unwrap();
    let volumes = Volumes(shared.clone());
    (dir, shared, volumes)
}

#[test]
fn killing_e_at_any_moment_never_corrupts_or_loses_the_state() {
    let original = "azi:\n  status: applied   # a comment e keeps\n";
    let (_dir, shared, _volumes) = shared_with(original);
    let repository = test_repository();
    let mut expected = 0;
    // Kill moments spread over the whole run: before the container, while it sleeps, while it
    // writes, and around the commit; SIGKILL and SIGTERM alternate.
    for trial in 0..12u64 {
        let signal = if trial % 2 == 0 { "-KILL" } else { "-TERM" };
        let mut child = Command::new(env!("CARGO_BIN_EXE_e"))
            .args(["run", "misbehave", "slow-apply"])
            .current_dir(root())
            .env("E_REPOSITORY", &repository)
            .env("E_SHARED", &shared)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + trial * 230));
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        // A request the dead e had sent (a container's create) still finishes in the engine;
        // give it that moment, so that the next command finds what it made and settles it (a
        // later command would remove it too: see the test below).
        std::thread::sleep(Duration::from_millis(500));

        // Right after the kill: exactly the old content, or the old plus one whole section.
        let state = fs::read_to_string(shared.join("state.yml")).unwrap();
        let found = sections_after(original, &state);
        assert!(
            found == expected || found == expected + 1,
            "trial {trial} ({signal}, {status}): {found} sections, expected {expected} or one more"
        );
        expected = found;

        // The next command is not blocked, settles the dead run, and its update is kept.
        let next = e_in(root(), &repository, &shared, &["run", "misbehave", "apply"]);
        assert_eq!(
            next.status.code(),
            Some(0),
            "trial {trial}: {}",
            text(&next)
        );
        expected += 1;
        let state = fs::read_to_string(shared.join("state.yml")).unwrap();
        assert_eq!(
            sections_after(original, &state),
            expected,
            "trial {trial}: the next command's update is there and nothing was lost"
        );
        let left = containers_of(&shared);
        assert!(left.is_empty(), "trial {trial}: containers left: {left:?}");
        assert_eq!(
            fs::read_dir(shared.join(".e/runs")).unwrap().count(),
            0,
            "trial {trial}: no run is left unsettled"
        );
        let copies = memory_copies(&shared);
        assert!(
            copies.is_empty(),
            "trial {trial}: copies left in memory: {copies:?}"
        );
    }
    // What was kept aside of a copy in memory is on the disk.
    for kept in fs::read_dir(shared.join(".e/kept")).unwrap() {
        let kept = kept.unwrap().path();
        assert!(kept.join("shared").is_dir(), "{}", kept.display());
        let record = fs::read_to_string(kept.join("run.json")).unwrap();
        assert!(!record.contains("\"memory\""), "{record}");
    }
    // Whatever was cut short is listed, and can be dropped.
    let listed = e_in(root(), &repository, &shared, &["recover", "-o", "json"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed));
    let kept: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    for run in &kept {
        let run = run["run"].as_str().unwrap();
        let dropped = e_in(root(), &repository, &shared, &["recover", "drop", run]);
        assert_eq!(dropped.status.code(), Some(0), "{}", text(&dropped));
    }
    assert_eq!(fs::read_dir(shared.join(".e/kept")).unwrap().count(), 0);
}

#[test]
fn a_container_made_after_its_dead_e_was_settled_is_removed_by_a_later_command() {
    let (_dir, shared, _volumes) = shared_with("azi:\n  status: applied\n");
    let repository = test_repository();
    let apply = || {
        let next = e_in(root(), &repository, &shared, &["run", "misbehave", "apply"]);
        assert_eq!(next.status.code(), Some(0), "{}", text(&next));
        next
    };
    apply();
    // A run whose e died before it wrote anything; the next command settles it.
    fs::create_dir_all(shared.join(".e/runs/20261201T000000-dead")).unwrap();
    apply();
    assert_eq!(fs::read_dir(shared.join(".e/runs")).unwrap().count(), 0);
    // The create that e had sent finishes in the engine only now, after the settling.
    let id = fs::read_to_string(shared.join(".e/id")).unwrap();
    let created = Command::new("docker")
        .args(["create", "--label", "e.managed-by=e", "--label"])
        .arg(format!("e.shared={}", id.trim()))
        .args([
            "--label",
            "e.run=20261201T000000-dead",
            "--label",
            "e.module=misbehave",
            "e-tests/misbehave:0.1.0",
            "true",
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    assert_eq!(containers_of(&shared).len(), 1);
    let next = apply();
    assert!(
        containers_of(&shared).is_empty(),
        "the late container is removed: {:?}",
        containers_of(&shared)
    );
    assert!(
        text(&next).contains(
            "removed a container of run `20261201T000000-dead` (`misbehave`) that the engine made after its e had stopped"
        ),
        "and said: {}",
        text(&next)
    );
}

#[test]
fn an_interrupted_apply_keeps_its_result_aside_until_committed() {
    let original = "azi:\n  status: applied\n";
    let (_dir, shared, _volumes) = shared_with(original);
    let repository = test_repository();
    // A timeout stops the apply after its write: a valid result of a failed mutating run.
    let out = e_in(
        root(),
        &repository,
        &shared,
        &["run", "misbehave", "write-then-hang", "--timeout", "2s"],
    );
    assert_eq!(out.status.code(), Some(124), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("nothing was committed"), "{said}");
    assert_eq!(
        fs::read_to_string(shared.join("state.yml")).unwrap(),
        original
    );
    let run = said
        .split("e recover commit ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the commit command is shown: {said}"))
        .to_owned();
    let shown = e_in(root(), &repository, &shared, &["recover", "show", &run]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("sections: misbehave-"),
        "{}",
        text(&shown)
    );
    let committed = e_in(root(), &repository, &shared, &["recover", "commit", &run]);
    assert_eq!(committed.status.code(), Some(0), "{}", text(&committed));
    let state = fs::read_to_string(shared.join("state.yml")).unwrap();
    assert_eq!(sections_after(original, &state), 1);
    assert_eq!(
        fs::read_to_string(shared.join("state.yml.backup")).unwrap(),
        original
    );
    let again = e_in(root(), &repository, &shared, &["recover", "commit", &run]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
}

#[test]
fn a_failing_module_on_a_full_disk_leaves_the_state_intact() {
    misbehave_image();
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("small");
    fs::create_dir_all(&mountpoint).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mountpoint)
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs: it needs root"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&mountpoint);
    let shared = mountpoint.join("shared");
    fs::create_dir_all(&shared).unwrap();
    let _volumes = Volumes(shared.clone());
    let original = "azi:\n  status: applied\n";
    fs::write(shared.join("state.yml"), original).unwrap();
    let repository = test_repository();
    // The module fills the disk through its copy, then fails: a copy on the disk, since one
    // in memory would fill the machine's memory up to the container's limit instead.
    let out = e_in_with(
        root(),
        &repository,
        &shared,
        &["run", "misbehave", "fill-disk"],
        &[("E_MEMORY_COPY", "off")],
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(shared.join("state.yml")).unwrap(),
        original
    );
    assert_eq!(fs::read_dir(shared.join(".e/runs")).unwrap().count(), 0);
    // What it left is kept aside (it failed after changing the directory); dropping it frees
    // the disk, and the next run works.
    let listed = e_in(root(), &repository, &shared, &["recover", "-o", "json"]);
    let kept: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(kept.len(), 1, "{}", text(&listed));
    let run = kept[0]["run"].as_str().unwrap();
    let dropped = e_in(root(), &repository, &shared, &["recover", "drop", run]);
    assert_eq!(dropped.status.code(), Some(0), "{}", text(&dropped));
    let next = e_in(root(), &repository, &shared, &["run", "misbehave", "apply"]);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let state = fs::read_to_string(shared.join("state.yml")).unwrap();
    assert_eq!(sections_after(original, &state), 1);
}

#[test]
fn hostile_results_are_refused_and_nothing_is_committed() {
    let original = "azi:\n  status: applied\nbmk:\n  status: applied\n";
    let (_dir, shared, _volumes) = shared_with(original);
    fs::write(shared.join("azi-config.yml"), "size: 5\n").unwrap();
    let repository = test_repository();
    let cases: [(&[&str], &str); 7] = [
        (&["deep-nesting"], "nest"),
        (&["alias-bomb"], "alias"),
        (&["big-file"], "big-file.bin"),
        (&["empty-state"], "azi"),
        (&["delete-other", "--", "bmk"], "bmk"),
        (&["planted-link"], "planted-link"),
        (&["write-e-area"], ".e"),
    ];
    for (args, named) in cases {
        let mut command = vec!["run", "misbehave"];
        command.extend_from_slice(args);
        let started = std::time::Instant::now();
        let out = e_in(root(), &repository, &shared, &command);
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!(
            "{}: refused in {:?} (whole command)",
            args[0],
            started.elapsed()
        );
        assert_eq!(out.status.code(), Some(1), "{}: {}", args[0], text(&out));
        assert!(
            said.contains("nothing was committed"),
            "{}: {said}",
            args[0]
        );
        assert!(said.contains(named), "{}: names `{named}`: {said}", args[0]);
        assert_eq!(
            fs::read_to_string(shared.join("state.yml")).unwrap(),
            original,
            "{}",
            args[0]
        );
        let mut names: Vec<String> = fs::read_dir(&shared)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".e", "azi-config.yml", "state.yml"], "{}", args[0]);
        assert!(!shared.join(".e/planted").exists());
        assert_eq!(fs::read_dir(shared.join(".e/runs")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(shared.join(".e/kept")).unwrap().count(), 0);
    }
}
