//! Per-method overhead of e against the docker CLI, side by side in one run.
//!
//! The baseline is how the design's prototype ran modules: `docker run --rm -v SHARED:/shared
//! IMAGE COMMAND`. A second baseline gives the docker CLI the isolation and confinement e gives
//! every module (network none, an init, all capabilities dropped, no-new-privileges, the
//! module's uid:gid, a read-only root filesystem, a tmpfs `/tmp`, memory, CPU and pids limits),
//! so the engine's cost of them is told apart from e's own. e runs in both of its ways of
//! handing a run its private copy (`--transfer bind` and `--transfer archive`, the remote
//! path), with a shared directory of the example's size (20 KB) and of 10 MB, once with the
//! network holder turned off (`E_NETWORK_HOLDER=off`: a namespace built per run, as the docker
//! CLI does), once with the run's copy on the disk instead of in memory (`E_MEMORY_COPY=off`),
//! once with mimalloc kept off transparent huge pages (`MIMALLOC_ALLOW_THP=0`), and,
//! when the bench may mount one (as root), with the example on a tmpfs, and `e --version` (any
//! command's start and exit). With `E_BENCH_BEFORE=PATH` (another build of e, such as a copy of
//! the binary before a change), that build's runs are measured in the same rounds. All run the same no-op
//! method of the same busybox image, in turn, so drift hits each alike. For each it prints the median and spread of wall time, and for e its
//! own CPU (user + system of the e process, measured with `wait4`), which is what e adds on
//! top of the engine's work.
//!
//! Run with `cargo bench --bench method` (needs a Docker engine and /bin/busybox).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{measure, median, millis};

const RUNS: usize = 30;
const IMAGE: &str = "e-bench/noop:0.1.0";

fn main() {
    let e = support::release_e();

    let work = tempfile::tempdir().expect("a temporary directory");
    let repository = work.path().join("repository.yaml");
    std::fs::write(
        &repository,
        format!("version: v1\nkind: Repository\ncomponents:\n- name: noop\n  type: docker\n  versions:\n  - version: 0.1.0\n    image: {IMAGE}\n    commands: [{{name: apply, command: \"true\"}}]\n"),
    )
    .unwrap();
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    // The example's size: a state of 20 KB and two configs.
    let section = |module: &str, lines: usize| {
        let mut text = format!("{module}:\n  status: applied\n  nodes:\n");
        for i in 0..lines {
            text.push_str(&format!(
                "    - {{privateIP: 10.0.{}.{}, publicIP: 213.1.{}.{}, usedBy: bmk}}\n",
                i / 250,
                i % 250,
                i / 250,
                i % 250
            ));
        }
        text
    };
    let example = format!("{}{}", section("azi", 150), section("bmk", 150));
    std::fs::write(shared.join("state.yml"), &example).unwrap();
    std::fs::write(shared.join("azi-config.yml"), "size: 5\n").unwrap();
    std::fs::write(shared.join("bmk-config.yml"), "nodes: 3\n").unwrap();
    let large = work.path().join("large");
    std::fs::create_dir(&large).unwrap();
    // 10 MB: a state of 1 MB and nine files of 1 MB beside it.
    std::fs::write(large.join("state.yml"), section("azi", 14_000)).unwrap();
    for i in 0..9 {
        std::fs::write(
            large.join(format!("inventory-{i}.json")),
            vec![b'x'; 1 << 20],
        )
        .unwrap();
    }
    println!(
        "shared directories: example {} KB, large {:.1} MB",
        dir_size(&shared) / 1024,
        dir_size(&large) as f64 / 1e6
    );
    support::busybox_image(&e, work.path(), IMAGE);
    // The example again on a tmpfs (as root, where mounting one is allowed): what this
    // machine's disk costs e's copy and commit, told apart from e's own work.
    let on_tmpfs = Tmpfs::mount(&work.path().join("tmpfs")).map(|tmpfs| {
        let dir = tmpfs.0.join("shared");
        std::fs::create_dir(&dir).unwrap();
        for name in ["state.yml", "azi-config.yml", "bmk-config.yml"] {
            std::fs::copy(shared.join(name), dir.join(name)).unwrap();
        }
        (tmpfs, dir)
    });

    let e_run_of = |binary: &Path, dir: &Path, transfer: &str| {
        let mut command = Command::new(binary);
        command
            .args(["run", "noop", "apply"])
            .env("E_REPOSITORY", &repository)
            .env("E_SHARED", dir)
            .env("E_TRANSFER", transfer)
            .env_remove("E_NETWORK_HOLDER")
            .env_remove("E_MEMORY_COPY");
        command
    };
    let e_run = |dir: &Path, transfer: &str| e_run_of(&e, dir, transfer);
    let version_of = |binary: &Path| {
        let mut command = Command::new(binary);
        command.arg("--version");
        command
    };
    let before = std::env::var_os("E_BENCH_BEFORE").map(std::path::PathBuf::from);
    let docker_run = || {
        let mut command = Command::new("docker");
        command.args([
            "run",
            "--rm",
            "-v",
            &format!("{}:/shared", shared.display()),
            IMAGE,
            "true",
        ]);
        command
    };
    // The user e runs the module as: the invoking one, or nobody when that is root.
    // SAFETY: getuid and getgid cannot fail.
    let user = match unsafe { (libc::getuid(), libc::getgid()) } {
        (0, _) => "65534:65534".to_owned(),
        (uid, gid) => format!("{uid}:{gid}"),
    };
    let docker_isolated = || {
        let mut command = Command::new("docker");
        command.args([
            "run",
            "--rm",
            "-v",
            &format!("{}:/shared", shared.display()),
        ]);
        {
            // What runtime/confinement.rs gives a module that asks for nothing.
            command.args([
                "--read-only",
                "--tmpfs",
                "/tmp:rw,nosuid,nodev,size=268435456,mode=1777",
                "--memory",
                "1g",
                "--memory-swap",
                "1g",
                "--cpus",
                "2",
                "--pids-limit",
                "512",
            ]);
        }
        command.args([
            "--network",
            "none",
            "--init",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "-u",
            &user,
            IMAGE,
            "true",
        ]);
        command
    };
    let mut rows: Vec<(String, Box<dyn Fn() -> Command + '_>)> = vec![
        (
            "e run noop apply, bind, example (20 KB)".to_owned(),
            Box::new(|| e_run(&shared, "bind")),
        ),
        (
            "e run noop apply, archive, example (20 KB)".to_owned(),
            Box::new(|| e_run(&shared, "archive")),
        ),
        (
            "e run noop apply, bind, 10 MB".to_owned(),
            Box::new(|| e_run(&large, "bind")),
        ),
        (
            "e run noop apply, archive, 10 MB".to_owned(),
            Box::new(|| e_run(&large, "archive")),
        ),
        (
            "e run noop apply, bind, example, no holder".to_owned(),
            Box::new(|| {
                let mut command = e_run(&shared, "bind");
                command.env("E_NETWORK_HOLDER", "off");
                command
            }),
        ),
        (
            "docker run --rm -v SHARED:/shared IMAGE true".to_owned(),
            Box::new(docker_run),
        ),
        (
            "docker run, with e's isolation and confinement".to_owned(),
            Box::new(docker_isolated),
        ),
    ];
    rows.push((
        "e run noop apply, bind, example, copy on the disk (E_MEMORY_COPY=off)".to_owned(),
        Box::new(|| {
            let mut command = e_run(&shared, "bind");
            command.env("E_MEMORY_COPY", "off");
            command
        }),
    ));
    rows.push((
        "e run noop apply, bind, example, MIMALLOC_ALLOW_THP=0".to_owned(),
        Box::new(|| {
            let mut command = e_run(&shared, "bind");
            command.env("MIMALLOC_ALLOW_THP", "0");
            command
        }),
    ));
    if let Some((_, dir)) = &on_tmpfs {
        rows.push((
            "e run noop apply, bind, example, on a tmpfs".to_owned(),
            Box::new(move || e_run(dir, "bind")),
        ));
    }
    // Any e's start and exit alone.
    rows.push(("e --version".to_owned(), Box::new(|| version_of(&e))));
    // Another build of e (E_BENCH_BEFORE=PATH, e.g. a copy of the binary before a change),
    // measured in the same rounds.
    if let Some(before) = &before {
        rows.push((
            "before: e run noop apply, bind, example".to_owned(),
            Box::new(|| e_run_of(before, &shared, "bind")),
        ));
        if let Some((_, dir)) = &on_tmpfs {
            rows.push((
                "before: e run noop apply, bind, example, on a tmpfs".to_owned(),
                Box::new(move || e_run_of(before, dir, "bind")),
            ));
        }
        rows.push((
            "before: e run noop apply, bind, 10 MB".to_owned(),
            Box::new(|| e_run_of(before, &large, "bind")),
        ));
        rows.push((
            "before: e --version".to_owned(),
            Box::new(|| version_of(before)),
        ));
    }
    // e's first run creates its area in the shared directory.
    for _ in 0..3 {
        for (_, command) in &rows {
            measure(&mut command());
        }
    }
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    let mut cpus: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for _ in 0..RUNS {
        for (i, (_, command)) in rows.iter().enumerate() {
            let (wall, cpu) = measure(&mut command());
            walls[i].push(wall);
            cpus[i].push(cpu);
        }
    }
    println!("per-method overhead, no-op method, {RUNS} runs each, alternating (median, min..max)");
    println!(
        "{:<56} {:>10} {:>18} {:>14}",
        "command", "wall ms", "min..max ms", "own CPU ms"
    );
    let mut medians = Vec::new();
    for (i, (name, _)) in rows.iter_mut().enumerate() {
        let wall = median(&mut walls[i]);
        let cpu = median(&mut cpus[i]);
        let (lo, hi) = (millis(walls[i][0]), millis(walls[i][walls[i].len() - 1]));
        println!(
            "{name:<56} {:>10.1} {:>18} {:>14.1}",
            millis(wall),
            format!("{lo:.0}..{hi:.0}"),
            millis(cpu)
        );
        medians.push((wall, cpu));
    }
    let (e_med, e_cpu_med) = medians[0];
    let unheld_med = medians[4].0;
    let docker_med = medians[5].0;
    let isolated_med = medians[6].0;
    println!(
        "archive path: +{:.1} ms wall for 20 KB, +{:.1} ms for 10 MB, against bind",
        millis(medians[1].0) - millis(medians[0].0),
        millis(medians[3].0) - millis(medians[2].0)
    );
    let ratio = e_med.as_secs_f64() / docker_med.as_secs_f64();
    println!("ratio e (bind, example) / docker CLI as the prototype ran it (wall): {ratio:.2}");
    let ratio = e_med.as_secs_f64() / isolated_med.as_secs_f64();
    println!(
        "ratio e (bind, example) / docker CLI with the same isolation (wall): {ratio:.2}   target <= 0.80: {}",
        if ratio <= 0.8 { "met" } else { "MISSED" }
    );
    println!(
        "ratio e without the network holder / docker CLI with the same isolation (wall): {:.2}",
        unheld_med.as_secs_f64() / isolated_med.as_secs_f64()
    );
    println!(
        "e's own CPU per method (bind, example): {:.1} ms   target < 10 ms: {}",
        millis(e_cpu_med),
        if e_cpu_med < Duration::from_millis(10) {
            "met"
        } else {
            "MISSED"
        }
    );
    let _ = Command::new("docker")
        .args(["rmi", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A tmpfs mounted for the bench, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        std::fs::create_dir(dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The bytes of the files in a directory (not recursive: the bench's directories are flat).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
