//! How `e search` scales with the size of the repository: wall time and peak memory of the
//! real binary, run as a user runs it, on synthetic repositories of 1,000 to 100,000 modules.
//!
//! Run it with `cargo bench --bench search` (add `-- 1000 10000` to pick the sizes). Cargo
//! builds the `e` binary with the bench profile (release settings) before the bench and tells it
//! the path in `CARGO_BIN_EXE_e`, so the figures are those of an optimised build.
//!
//! Each command runs once to warm the page cache and check that it succeeds, then [`RUNS`]
//! times; the table shows the median wall time, the median CPU time (user + system, which
//! other load on the machine disturbs less) and the largest peak RSS, all three as `wait4`
//! reports them for each child. The repositories come from `examples/generate_repository.rs`, the one
//! generator, and are written to a temporary directory that is removed afterwards.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../examples/generate_repository.rs"]
#[expect(
    dead_code,
    reason = "the bench uses the generator, not its command line"
)]
mod generate;

/// Sizes measured when none are given on the command line.
const DEFAULT_SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// Timed runs per command; the median is reported.
const RUNS: usize = 5;

/// The selector of the `e search SELECTOR` measurement.
const SELECTOR: &str = "kind=monitoring,core-technology in (prometheus)";

/// The size the targets apply to, and the targets.
const TARGET_SIZE: usize = 10_000;
const TARGET_TIME: Duration = Duration::from_millis(200);
const TARGET_RSS_MB: f64 = 150.0;

/// What one run of a command cost.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    /// User plus system CPU time, which other load on the machine disturbs less than wall time.
    cpu: Duration,
    /// Peak resident set size in bytes.
    peak_rss: u64,
}

/// The figures of one command at one size.
struct Measurement {
    size: usize,
    file_mb: f64,
    command: String,
    output_lines: usize,
    median: Duration,
    median_cpu: Duration,
    peak_rss: u64,
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        DEFAULT_SIZES.to_vec()
    } else {
        sizes
    };
    let binary = Path::new(env!("CARGO_BIN_EXE_e"));
    let directory =
        tempfile::tempdir().expect("a temporary directory is needed for the repositories");
    // A cache of its own, so every size starts cold and the user's cache is left alone.
    // SAFETY: no other thread runs yet.
    unsafe { std::env::set_var("E_CACHE_DIR", directory.path().join("cache")) };

    println!(
        "e search benchmark: {RUNS} runs per command; median wall and CPU (user + system) time, largest peak RSS"
    );
    println!("binary: {}", binary.display());
    println!("machine: {}", machine());
    let floor = spawn_floor();
    println!(
        "floor: spawning `true` the same way takes {:.1} ms and reports {:.1} MB peak RSS\n",
        millis(floor.wall),
        megabytes(floor.peak_rss)
    );

    let mut measurements: Vec<Measurement> = Vec::new();
    for &size in &sizes {
        let path = directory.path().join(format!("repository-{size}.yaml"));
        let started = Instant::now();
        let summary = generate::write_repository_file(size, &path)
            .expect("the repository file can be written");
        let file_mb = megabytes(
            std::fs::metadata(&path)
                .expect("the repository file was just written")
                .len(),
        );
        eprintln!(
            "generated {size} modules, {file_mb:.1} MB, in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let module = summary
            .module_with_requirements
            .expect("the generator draws modules with requirements");
        // The first load parses the YAML and fills the cache; it is measured once, on its own.
        let mut cold = Command::new(binary);
        cold.arg("--repository")
            .arg(&path)
            .arg("list")
            .stdout(std::process::Stdio::null());
        let first = run(&mut cold);
        measurements.push(Measurement {
            size,
            file_mb,
            command: "list, first run: parses the YAML, fills the cache".to_owned(),
            output_lines: 0,
            median: first.wall,
            median_cpu: first.cpu,
            peak_rss: first.peak_rss,
        });
        let commands: [Vec<&str>; 3] = [
            vec!["search", SELECTOR],
            vec!["search", "--for", &module],
            vec!["list"],
        ];
        for args in commands {
            let (output_lines, samples) = measure(binary, &path, &args);
            let median = |field: fn(&Sample) -> Duration| {
                let mut values: Vec<Duration> = samples.iter().map(field).collect();
                values.sort();
                values[values.len() / 2]
            };
            measurements.push(Measurement {
                size,
                file_mb,
                command: describe(&args),
                output_lines,
                median: median(|s| s.wall),
                median_cpu: median(|s| s.cpu),
                peak_rss: samples
                    .iter()
                    .map(|s| s.peak_rss)
                    .max()
                    .expect("RUNS is not zero"),
            });
        }
    }
    print_table(&measurements);
    print_target(&measurements);
    let floor = spawn_floor();
    println!(
        "\nfloor at the end: {:.1} MB (a higher floor than at the start would inflate every peak)",
        megabytes(floor.peak_rss)
    );
}

/// Runs `e --repository PATH ARGS` once to check it and warm the cache, then [`RUNS`] times.
fn measure(binary: &Path, repository: &Path, args: &[&str]) -> (usize, Vec<Sample>) {
    let lines = check(binary, repository, args);
    let samples = (0..RUNS)
        .map(|_| {
            let mut command = Command::new(binary);
            command.arg("--repository").arg(repository).args(args);
            run(&mut command)
        })
        .collect();
    (lines, samples)
}

/// Runs the command once and returns how many lines it printed, failing the bench if it fails
/// or warns. The output is counted as it streams, never held, to keep the bench's memory small
/// (see [`run`]).
fn check(binary: &Path, repository: &Path, args: &[&str]) -> usize {
    let mut child = Command::new(binary)
        .arg("--repository")
        .arg(repository)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the e binary can be started");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // Read stderr on a thread so that neither pipe can fill up and stall the child.
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let mut lines = 0;
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = stdout
            .read(&mut buffer)
            .expect("the output of e can be read");
        if read == 0 {
            break;
        }
        lines += buffer[..read].iter().filter(|b| **b == b'\n').count();
    }
    let status = child.wait().expect("e can be waited for");
    let errors = errors
        .join()
        .expect("the stderr reader does not panic")
        .expect("stderr can be read");
    assert!(
        status.success() && errors.is_empty(),
        "`e {}` failed or warned ({status}):\n{errors}",
        args.join(" ")
    );
    lines
}

/// Runs a command with its output discarded and reaps it with `wait4`, which reports the
/// child's own resource usage, peak RSS included.
///
/// On Linux the child's peak RSS cannot be lower than the bench's own at the time of the
/// spawn (exec carries the high-water mark over), so the bench keeps its memory small: it
/// writes the repositories as it generates them instead of holding them.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by `wait4`, which clippy does not see"
)]
fn run(command: &mut Command) -> Sample {
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the command can be started");
    let pid = libc::pid_t::try_from(child.id()).expect("a process id fits in pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped (`Child` only reaps in `wait`, which is
        // never called), and both pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert!(
            error.kind() == std::io::ErrorKind::Interrupted,
            "wait4 failed: {error}"
        );
    }
    let wall = started.elapsed();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed with wait status {status}"
    );
    // Linux reports `ru_maxrss` in KiB.
    let peak_rss = u64::try_from(usage.ru_maxrss).expect("a peak RSS is not negative") * 1024;
    let cpu = duration(usage.ru_utime) + duration(usage.ru_stime);
    Sample {
        wall,
        cpu,
        peak_rss,
    }
}

/// The cost of spawning a process that does nothing, the floor under every figure.
fn spawn_floor() -> Sample {
    let mut samples: Vec<Sample> = (0..RUNS).map(|_| run(&mut Command::new("true"))).collect();
    samples.sort_by_key(|s| s.wall);
    samples[samples.len() / 2]
}

fn print_table(measurements: &[Measurement]) {
    println!(
        "{:>7}  {:>7}  {:<58}  {:>6}  {:>8}  {:>8}  {:>7}  {:>6}  {:>6}",
        "N", "file MB", "command", "lines", "wall ms", "cpu ms", "peak MB", "time ×", "mem ×"
    );
    for (i, m) in measurements.iter().enumerate() {
        let previous = measurements[..i]
            .iter()
            .rev()
            .find(|p| p.command_kind() == m.command_kind());
        let (time_growth, memory_growth) = match previous {
            Some(p) => (
                format!("{:.1}", m.median.as_secs_f64() / p.median.as_secs_f64()),
                format!("{:.1}", m.peak_rss as f64 / p.peak_rss as f64),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:>7}  {:>7.1}  {:<58}  {:>6}  {:>8.0}  {:>8.0}  {:>7.1}  {:>6}  {:>6}",
            m.size,
            m.file_mb,
            m.command,
            m.output_lines,
            millis(m.median),
            millis(m.median_cpu),
            megabytes(m.peak_rss),
            time_growth,
            memory_growth
        );
    }
}

fn print_target(measurements: &[Measurement]) {
    let searches: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.size == TARGET_SIZE && m.command.starts_with("e search"))
        .collect();
    if searches.is_empty() {
        return;
    }
    println!(
        "\ntarget at N = {TARGET_SIZE}: < {} ms and < {TARGET_RSS_MB} MB",
        TARGET_TIME.as_millis()
    );
    for m in searches {
        let met = m.median < TARGET_TIME && megabytes(m.peak_rss) < TARGET_RSS_MB;
        println!(
            "  {:<58}  {:>6.0} ms wall  {:>6.0} ms cpu  {:>6.1} MB  {}",
            m.command,
            millis(m.median),
            millis(m.median_cpu),
            megabytes(m.peak_rss),
            if met { "met" } else { "MISSED" }
        );
    }
}

impl Measurement {
    /// The command without its module name, which may differ between sizes.
    fn command_kind(&self) -> &str {
        self.command
            .split(" --for ")
            .next()
            .unwrap_or(&self.command)
    }
}

/// The command line as a user would type it.
fn describe(args: &[&str]) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.contains(' ') {
                format!("'{arg}'")
            } else {
                (*arg).to_owned()
            }
        })
        .collect();
    format!("e {}", args.join(" "))
}

/// The CPU model and how many CPUs the bench may use.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{model}, {cpus} CPUs, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn duration(time: libc::timeval) -> Duration {
    let seconds = u64::try_from(time.tv_sec).expect("a CPU time is not negative");
    let micros = u32::try_from(time.tv_usec).expect("microseconds are below a million");
    Duration::from_secs(seconds) + Duration::from_micros(micros.into())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}
