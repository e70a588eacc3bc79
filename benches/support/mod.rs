//! What the benches that run containers share: e built for release, a busybox image,
//! timing a command (wall and its own CPU) and the median of samples.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds e for release and returns the binary.
pub fn release_e() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "e"])
        .current_dir(root)
        .status();
    assert!(
        built.is_ok_and(|s| s.success()),
        "cargo build --release failed"
    );
    root.join("target/release/e")
}

/// Builds `tag` with `e build`: a static busybox as the entrypoint, from a context in `work`.
pub fn busybox_image(e: &Path, work: &Path, tag: &str) {
    let context = work.join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::copy("/bin/busybox", context.join("busybox")).expect("busybox-static is installed");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    )
    .unwrap();
    let status = Command::new(e)
        .args(["build", context.to_str().unwrap(), "--tag", tag])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "e build failed");
}

/// Runs a command to completion; returns its wall time and its own CPU time (user + system).
pub fn measure(command: &mut Command) -> (Duration, Duration) {
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

pub fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
