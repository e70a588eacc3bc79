//! Per-method overhead of e against the docker CLI, side by side in one run.
//!
//! The baseline is how the design's prototype ran modules: `docker run --rm -v SHARED:/shared
//! IMAGE COMMAND`. A second baseline gives the docker CLI the isolation e gave every module
//! before its confinement (network none, an init, all capabilities dropped, no-new-privileges,
//! the module's uid:gid, e's area read-only), and a third adds that confinement (read-only root
//! filesystem, a tmpfs `/tmp`, memory, CPU and pids limits), so the engine's cost of each is
//! told apart from e's own. All run
//! the same no-op method of the same busybox image, in turn, so drift hits each alike. For each it prints the median and spread of wall time,
//! and for e its own CPU (user + system of the e process, measured with `wait4`), which is what
//! e adds on top of the engine's work.
//!
//! Run with `cargo bench --bench method` (needs a Docker engine and /bin/busybox).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;
const IMAGE: &str = "e-bench/noop:0.1.0";

/// Runs a command to completion; returns its wall time and its own CPU time (user + system).
fn measure(command: &mut Command) -> (Duration, Duration) {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child; wait4 fills `status` and `usage`, which outlive the call.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed");
    let mut child = child;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed: {stderr}"
    );
    let cpu = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (wall, cpu(usage.ru_utime) + cpu(usage.ru_stime))
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "e"])
        .current_dir(root)
        .status();
    assert!(
        built.is_ok_and(|s| s.success()),
        "cargo build --release failed"
    );
    let e = root.join("target/release/e");

    let work = tempfile::tempdir().expect("a temporary directory");
    let context = work.path().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::copy("/bin/busybox", context.join("busybox")).expect("busybox-static is installed");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .unwrap();
    let repository = work.path().join("repository.yaml");
    std::fs::write(
        &repository,
        format!("version: v1\nkind: Repository\ncomponents:\n- name: noop\n  type: docker\n  versions:\n  - version: 0.1.0\n    image: {IMAGE}\n    commands: [{{name: apply, command: \"true\"}}]\n"),
    )
    .unwrap();
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let status = Command::new(&e)
        .args(["build", context.to_str().unwrap(), "--tag", IMAGE])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "e build failed");

    let e_run = || {
        let mut command = Command::new(&e);
        command
            .args(["apply", "noop", "--no-influences"])
            .env("E_REPOSITORY", &repository)
            .env("E_SHARED", &shared);
        command
    };
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
    let e_area = format!("{}/.e:/shared/.e:ro", shared.display());
    let docker_isolated = |confined: bool| {
        let mut command = Command::new("docker");
        command.args([
            "run",
            "--rm",
            "-v",
            &format!("{}:/shared", shared.display()),
            "-v",
            &e_area,
        ]);
        if confined {
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
    // e's first run creates its area in the shared directory, which the isolated baseline mounts.
    for _ in 0..3 {
        measure(&mut e_run());
        measure(&mut docker_run());
        measure(&mut docker_isolated(false));
        measure(&mut docker_isolated(true));
    }
    let (mut e_wall, mut e_cpu, mut docker_wall, mut docker_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut isolated_wall, mut isolated_cpu) = (Vec::new(), Vec::new());
    let (mut confined_wall, mut confined_cpu) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (wall, cpu) = measure(&mut e_run());
        e_wall.push(wall);
        e_cpu.push(cpu);
        let (wall, cpu) = measure(&mut docker_run());
        docker_wall.push(wall);
        docker_cpu.push(cpu);
        let (wall, cpu) = measure(&mut docker_isolated(false));
        isolated_wall.push(wall);
        isolated_cpu.push(cpu);
        let (wall, cpu) = measure(&mut docker_isolated(true));
        confined_wall.push(wall);
        confined_cpu.push(cpu);
    }
    let spread = |v: &[Duration]| (millis(v[0]), millis(v[v.len() - 1]));
    let (e_med, docker_med, isolated_med, confined_med) = (
        median(&mut e_wall),
        median(&mut docker_wall),
        median(&mut isolated_wall),
        median(&mut confined_wall),
    );
    let (e_cpu_med, docker_cpu_med, isolated_cpu_med, confined_cpu_med) = (
        median(&mut e_cpu),
        median(&mut docker_cpu),
        median(&mut isolated_cpu),
        median(&mut confined_cpu),
    );
    println!("per-method overhead, no-op method, {RUNS} runs each, alternating (median, min..max)");
    println!(
        "{:<44} {:>10} {:>18} {:>14}",
        "command", "wall ms", "min..max ms", "own CPU ms"
    );
    let row = |name: &str, med: Duration, (lo, hi): (f64, f64), cpu: Duration| {
        println!(
            "{name:<44} {:>10.1} {:>18} {:>14.1}",
            millis(med),
            format!("{lo:.0}..{hi:.0}"),
            millis(cpu)
        );
    };
    row(
        "e apply noop (state, lock, history)",
        e_med,
        spread(&e_wall),
        e_cpu_med,
    );
    row(
        "docker run --rm -v SHARED:/shared IMAGE true",
        docker_med,
        spread(&docker_wall),
        docker_cpu_med,
    );
    row(
        "docker run, e's isolation without confinement",
        isolated_med,
        spread(&isolated_wall),
        isolated_cpu_med,
    );
    row(
        "docker run, e's isolation and confinement",
        confined_med,
        spread(&confined_wall),
        confined_cpu_med,
    );
    let verdict = |ratio: f64| if ratio <= 0.9 { "met" } else { "MISSED" };
    let ratio = e_med.as_secs_f64() / docker_med.as_secs_f64();
    println!(
        "ratio e / docker CLI as the prototype ran it (wall): {ratio:.2}   target <= 0.90: {}",
        verdict(ratio)
    );
    let ratio = e_med.as_secs_f64() / confined_med.as_secs_f64();
    println!(
        "ratio e / docker CLI with the same isolation and confinement (wall): {ratio:.2}   target <= 0.90: {}",
        verdict(ratio)
    );
    println!(
        "the engine's cost of the confinement (docker CLI, wall): {:+.1} ms",
        millis(confined_med) - millis(isolated_med)
    );
    println!(
        "e's own CPU per method: {:.1} ms   target < 20 ms: {}",
        millis(e_cpu_med),
        if e_cpu_med < Duration::from_millis(20) {
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
