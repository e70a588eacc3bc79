//! How loading and searching a repository scale with its size: wall time, CPU time and peak
//! memory of the real binary, run as a user runs it, on synthetic repositories of 1,000 to
//! 100,000 modules, written as YAML and as JSON.
//!
//! Run it with `cargo bench --bench search` (add `-- 1000 10000 100000` to pick the sizes; by
//! default 1,000 and 10,000, and 100,000 too when `E_BENCH_LARGE=1`). Cargo builds the `e`
//! binary with the bench profile (release settings) before the bench and tells it the path in
//! `CARGO_BIN_EXE_e`, so the figures are those of an optimised build.
//!
//! Every figure is measured twice in the same run, side by side: as e loads repositories now,
//! and "before": with `E_BENCH_BEFORE=PATH`, the `e` binary at PATH (built from an earlier
//! commit), else this binary with `E_REPOSITORY_PARSER=whole`, which makes e parse files as it
//! did before the JSON and parallel paths (serde_yaml on the whole document), or with the value
//! of `E_BENCH_BEFORE_PARSER` instead of `whole` (`serde_yaml`: the parallel path without the
//! block reader of `src/repository/block_yaml.rs`). Each side has a
//! cache directory of its own. A cold load is the first command after
//! any edit: the cache is removed before each one. A warm one reads the cache the cold one
//! filled. Each command runs once to warm the page cache and check that it succeeds, then
//! [`RUNS`] times ([`COLD_RUNS`] when cold); the table shows the median wall time, the median
//! CPU time (user + system, which other load on the machine disturbs less) and the largest
//! peak RSS, all three as `wait4` reports them for each child. The repositories come from
//! `examples/generate_repository.rs`, the one generator; the JSON twin is the same repository
//! as e's model serializes it, one module per line; the `JSON1` one is the same repository as
//! python's `json.dump` writes it from the YAML, on one line, `true` label values as JSON
//! booleans (what `yq -o json` gives too). All are written to a temporary directory that is
//! removed afterwards.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../examples/generate_repository.rs"]
#[expect(
    dead_code,
    reason = "the bench uses the generator, not its command line"
)]
mod generate;

/// Sizes measured when none are given on the command line.
const DEFAULT_SIZES: [usize; 2] = [1_000, 10_000];

/// The size added to the defaults by `E_BENCH_LARGE=1`: it takes minutes and gigabytes.
const LARGE_SIZE: usize = 100_000;

/// Timed runs per warm command; the median is reported.
const RUNS: usize = 5;

/// Timed runs per cold load (one at [`LARGE_SIZE`], where the load before takes 20 s).
const COLD_RUNS: usize = 3;

/// The selector of the `e search SELECTOR` measurement.
const SELECTOR: &str = "kind=monitoring,core-technology in (prometheus)";

/// The environment variable that makes e load repositories as it did before, and its value.
const BEFORE: (&str, &str) = ("E_REPOSITORY_PARSER", "whole");

/// Replaces the value of [`BEFORE`], to compare with another of e's parsers.
const BEFORE_PARSER: &str = "E_BENCH_BEFORE_PARSER";

/// Names an `e` binary built from an earlier commit, to measure as "before" instead of this
/// build with [`BEFORE`] set: that compares the code as it was, warm reads included.
const BEFORE_BINARY: &str = "E_BENCH_BEFORE";

/// The size the targets apply to, and the targets (issue 13).
const TARGET_SIZE: usize = 10_000;
const TARGET_COLD: Duration = Duration::from_millis(1000);
const TARGET_COLD_MB: f64 = 250.0;
const TARGET_JSON_COLD: Duration = Duration::from_millis(300);
const TARGET_WARM: Duration = Duration::from_millis(100);
const TARGET_WARM_MB: f64 = 100.0;

/// What one run of a command cost.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    /// User plus system CPU time, which other load on the machine disturbs less than wall time.
    cpu: Duration,
    /// Peak resident set size in bytes.
    peak_rss: u64,
}

/// The medians of a command's runs, and their largest peak RSS.
#[derive(Debug, Clone, Copy)]
struct Figures {
    wall: Duration,
    cpu: Duration,
    peak_rss: u64,
}

/// One command at one size and format, measured before and now.
struct Measurement {
    size: usize,
    format: &'static str,
    file_mb: f64,
    command: String,
    cold: bool,
    before: Figures,
    now: Figures,
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.replace('_', "").parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = DEFAULT_SIZES.to_vec();
        if std::env::var_os("E_BENCH_LARGE").is_some_and(|v| v == "1") {
            sizes.push(LARGE_SIZE);
        }
    }
    let binary = Path::new(env!("CARGO_BIN_EXE_e"));
    let before_binary = std::env::var_os(BEFORE_BINARY).map(PathBuf::from);
    let before_parser = std::env::var(BEFORE_PARSER).unwrap_or_else(|_| BEFORE.1.to_owned());
    let before = match &before_binary {
        Some(path) => Side {
            binary: path,
            env: None,
        },
        None => Side {
            binary,
            env: Some((BEFORE.0, &before_parser)),
        },
    };
    let now = Side { binary, env: None };
    let directory =
        tempfile::tempdir().expect("a temporary directory is needed for the repositories");
    // A cache of its own, so cold runs are cold and the user's cache is left alone.
    let cache = directory.path().join("cache");
    // SAFETY: no other thread runs yet.
    unsafe {
        std::env::set_var("E_CACHE_DIR", &cache);
        std::env::remove_var(BEFORE.0);
    }

    println!(
        "e repository benchmark: median wall and CPU (user + system) time, largest peak RSS; {RUNS} runs warm, {COLD_RUNS} cold"
    );
    println!("binary: {}", binary.display());
    match &before_binary {
        Some(path) => println!("before: {}", path.display()),
        None => println!("before: the same binary with {}={before_parser}", BEFORE.0),
    }
    println!("machine: {}", machine());
    let floor = spawn_floor();
    println!(
        "floor: spawning `true` the same way takes {:.1} ms and reports {:.1} MB peak RSS\n",
        millis(floor.wall),
        megabytes(floor.peak_rss)
    );

    let mut measurements: Vec<Measurement> = Vec::new();
    for &size in &sizes {
        let yaml = directory.path().join(format!("repository-{size}.yaml"));
        let started = Instant::now();
        let summary = generate::write_repository_file(size, &yaml)
            .expect("the repository file can be written");
        let json = directory.path().join(format!("repository-{size}.json"));
        write_json_twin(&yaml, &json);
        let line = directory
            .path()
            .join(format!("repository-{size}-line.json"));
        write_python_json(&yaml, &line);
        eprintln!(
            "generated {size} modules, {:.1} MB of YAML, {:.1} MB of JSON and {:.1} MB on one line, in {:.1} s",
            file_megabytes(&yaml),
            file_megabytes(&json),
            file_megabytes(&line),
            started.elapsed().as_secs_f64()
        );
        let module = summary
            .module_with_requirements
            .expect("the generator draws modules with requirements");
        let cold_runs = if size >= LARGE_SIZE { 1 } else { COLD_RUNS };
        for (format, path) in [("YAML", &yaml), ("JSON", &json), (JSON_LINE, &line)] {
            let file_mb = file_megabytes(path);
            let mut measure_both = |command: String, args: &[&str], cold: bool| {
                let runs = if cold { cold_runs } else { RUNS };
                let before = measure(&before, path, args, &cache.join("before"), cold, runs);
                let now = measure(&now, path, args, &cache.join("now"), cold, runs);
                eprintln!("measured {size} {format} {command}");
                measurements.push(Measurement {
                    size,
                    format,
                    file_mb,
                    command,
                    cold,
                    before,
                    now,
                });
            };
            measure_both(
                format!(
                    "cold: {} (the first after an edit)",
                    describe(&["search", SELECTOR])
                ),
                &["search", SELECTOR],
                true,
            );
            let warm: Vec<Vec<&str>> = if format == "YAML" {
                vec![
                    vec!["search", SELECTOR],
                    vec!["search", "--for", &module],
                    vec!["list"],
                ]
            } else {
                vec![vec!["search", SELECTOR]]
            };
            for args in warm {
                measure_both(format!("warm: {}", describe(&args)), &args, false);
            }
        }
    }
    print_table(&measurements);
    print_targets(&measurements);
    let floor = spawn_floor();
    println!(
        "\nfloor at the end: {:.1} MB (a higher floor than at the start would inflate every peak)",
        megabytes(floor.peak_rss)
    );
}

/// The format name of the JSON written the way python's `json.dump` (or `yq -o json`) writes
/// it from the YAML: on one line, every scalar resolved (`latest: true` and label values such
/// as `provides-pubips: true` become JSON booleans).
const JSON_LINE: &str = "JSON1";

/// Writes a generated YAML repository as python's `json.dump(yaml.safe_load(f), out)` writes
/// it ([`JSON_LINE`]): one line, `", "` and `": "` between items, scalars resolved. Like
/// [`write_json_twin`], it reads the YAML one module at a time.
fn write_python_json(yaml: &Path, json: &Path) {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(json).expect("JSON can be written"));
    let mut modules = 0usize;
    each_yaml_module(
        yaml,
        &mut out,
        |out, head| {
            let head: serde_yaml::Value = serde_yaml::from_str(head).expect("the head parses");
            let mut text = Vec::new();
            python_json(&mut text, &head);
            text.pop();
            out.write_all(&text).expect("JSON can be written");
            out.write_all(b", \"components\": [")
                .expect("JSON can be written");
        },
        |out, module| {
            let parsed: Vec<serde_yaml::Value> =
                serde_yaml::from_str(module).expect("a generated module parses");
            for item in parsed {
                if modules > 0 {
                    out.write_all(b", ").expect("JSON can be written");
                }
                python_json(out, &item);
                modules += 1;
            }
        },
    );
    out.write_all(b"]}").expect("JSON can be written");
    out.flush().expect("JSON can be written");
}

/// Writes `value` as python's `json.dump` does by default: `", "` and `": "` between items.
fn python_json(out: &mut dyn Write, value: &serde_yaml::Value) {
    struct Python;
    impl serde_json::ser::Formatter for Python {
        fn begin_array_value<W: ?Sized + Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }
    use serde::Serialize;
    let mut serializer = serde_json::Serializer::with_formatter(out, Python);
    value
        .serialize(&mut serializer)
        .expect("a YAML value serializes as JSON");
}

/// Writes the JSON twin of a generated YAML repository: the same repository as e's model
/// serializes it, one module per line. It reads the YAML one module at a time, so the bench's
/// own memory stays small (see [`run`]).
fn write_json_twin(yaml: &Path, json: &Path) {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(json).expect("JSON can be written"));
    let mut modules = 0usize;
    each_yaml_module(
        yaml,
        &mut out,
        |out, head| {
            let head: serde_json::Value = serde_yaml::from_str(head).expect("the head parses");
            let mut head = serde_json::to_string(&head).expect("the head serializes");
            head.pop();
            write!(out, "{head},\"components\":[").expect("JSON can be written");
        },
        |out, module| {
            let parsed: Vec<e::repository::Module> =
                serde_yaml::from_str(module).expect("a generated module parses");
            for item in parsed {
                out.write_all(if modules == 0 { b"\n" } else { b",\n" })
                    .expect("JSON can be written");
                serde_json::to_writer(&mut *out, &item).expect("a module serializes");
                modules += 1;
            }
        },
    );
    out.write_all(b"\n]}\n").expect("JSON can be written");
    out.flush().expect("JSON can be written");
}

/// Reads a generated YAML repository one module at a time (the generator starts each with
/// `  - name: `): gives `head` the text before `components:` once, then `module` each module's
/// text (one item of the list), both with `out`.
fn each_yaml_module<W: Write>(
    yaml: &Path,
    out: &mut W,
    mut head: impl FnMut(&mut W, &str),
    mut module: impl FnMut(&mut W, &str),
) {
    let input = std::io::BufReader::new(std::fs::File::open(yaml).expect("the YAML was written"));
    let mut before = String::new();
    let mut item = String::new();
    let mut in_components = false;
    for line in input.lines() {
        let line = line.expect("the YAML can be read");
        if line.starts_with("  - name: ") {
            if !item.is_empty() {
                module(out, &item);
                item.clear();
            }
            in_components = true;
        }
        if in_components {
            item.push_str(&line);
            item.push('\n');
        } else if line == "components:" {
            head(out, &before);
        } else {
            before.push_str(&line);
            before.push('\n');
        }
    }
    if !item.is_empty() {
        module(out, &item);
    }
}

fn file_megabytes(path: &Path) -> f64 {
    megabytes(
        std::fs::metadata(path)
            .expect("the file was just written")
            .len(),
    )
}

/// A binary to measure, and the variable it runs with.
struct Side<'a> {
    binary: &'a Path,
    env: Option<(&'static str, &'a str)>,
}

/// Runs `e --repository PATH ARGS` once to check it and warm the page cache, then `runs`
/// times, with `cache` as its cache directory; when `cold`, it is removed before each run.
fn measure(
    side: &Side<'_>,
    repository: &Path,
    args: &[&str],
    cache: &Path,
    cold: bool,
    runs: usize,
) -> Figures {
    let command = || {
        if cold {
            let _ = std::fs::remove_dir_all(cache);
        }
        let mut command = Command::new(side.binary);
        command
            .arg("--repository")
            .arg(repository)
            .args(args)
            .env("E_CACHE_DIR", cache);
        if let Some((name, value)) = side.env {
            command.env(name, value);
        }
        command
    };
    check(&mut command(), args);
    let samples: Vec<Sample> = (0..runs).map(|_| run(&mut command())).collect();
    let median = |field: fn(&Sample) -> Duration| {
        let mut values: Vec<Duration> = samples.iter().map(field).collect();
        values.sort();
        values[values.len() / 2]
    };
    Figures {
        wall: median(|s| s.wall),
        cpu: median(|s| s.cpu),
        peak_rss: samples
            .iter()
            .map(|s| s.peak_rss)
            .max()
            .expect("there is at least one run"),
    }
}

/// Runs the command once and returns how many lines it printed, failing the bench if it fails
/// or warns. The output is counted as it streams, never held, to keep the bench's memory small
/// (see [`run`]).
fn check(command: &mut Command, args: &[&str]) -> usize {
    let mut child = command
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
        "{JSON_LINE}: the JSON as python's json.dump writes it from the YAML (one line, booleans as JSON booleans)\n"
    );
    println!(
        "{:>7}  {:<5}  {:>7}  {:<52}  {:>15}  {:>15}  {:>15}  {:>6}",
        "N", "", "file MB", "", "wall ms", "cpu ms", "peak MB", "wall"
    );
    println!(
        "{:>7}  {:<5}  {:>7}  {:<52}  {:>7} {:>7}  {:>7} {:>7}  {:>7} {:>7}  {:>6}",
        "", "", "", "command", "before", "now", "before", "now", "before", "now", "now/b"
    );
    for m in measurements {
        println!(
            "{:>7}  {:<5}  {:>7.1}  {:<52}  {:>7.0} {:>7.0}  {:>7.0} {:>7.0}  {:>7.1} {:>7.1}  {:>6.2}",
            m.size,
            m.format,
            m.file_mb,
            m.command,
            millis(m.before.wall),
            millis(m.now.wall),
            millis(m.before.cpu),
            millis(m.now.cpu),
            megabytes(m.before.peak_rss),
            megabytes(m.now.peak_rss),
            m.now.wall.as_secs_f64() / m.before.wall.as_secs_f64()
        );
    }
}

fn print_targets(measurements: &[Measurement]) {
    let at = |size: usize, format: &'static str, cold: bool| {
        measurements
            .iter()
            .filter(move |m| m.size == size && m.format == format && m.cold == cold)
    };
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    println!("\ntargets at N = {TARGET_SIZE} (now):");
    for m in at(TARGET_SIZE, "YAML", true) {
        let met = m.now.wall <= TARGET_COLD && megabytes(m.now.peak_rss) <= TARGET_COLD_MB;
        println!(
            "  YAML cold, at most {} ms and {TARGET_COLD_MB} MB: {:.0} ms, {:.1} MB: {}",
            TARGET_COLD.as_millis(),
            millis(m.now.wall),
            megabytes(m.now.peak_rss),
            verdict(met)
        );
    }
    for m in at(TARGET_SIZE, "JSON", true).chain(at(TARGET_SIZE, JSON_LINE, true)) {
        println!(
            "  {} cold, at most {} ms: {:.0} ms, {:.1} MB: {}",
            m.format,
            TARGET_JSON_COLD.as_millis(),
            millis(m.now.wall),
            megabytes(m.now.peak_rss),
            verdict(m.now.wall <= TARGET_JSON_COLD)
        );
    }
    for m in at(TARGET_SIZE, "YAML", false) {
        let met = m.now.wall <= TARGET_WARM && megabytes(m.now.peak_rss) <= TARGET_WARM_MB;
        println!(
            "  {}, at most {} ms and {TARGET_WARM_MB} MB: {:.0} ms, {:.1} MB: {}",
            m.command,
            TARGET_WARM.as_millis(),
            millis(m.now.wall),
            megabytes(m.now.peak_rss),
            verdict(met)
        );
    }
    for format in ["YAML", "JSON"] {
        let small = at(TARGET_SIZE, format, true).next();
        let large = at(LARGE_SIZE, format, true).next();
        if let (Some(small), Some(large)) = (small, large) {
            println!(
                "  {format} cold at N = {LARGE_SIZE} against N = {TARGET_SIZE} (about 10 times at most): {:.1} times the time, {:.1} times the memory",
                large.now.wall.as_secs_f64() / small.now.wall.as_secs_f64(),
                large.now.peak_rss as f64 / small.now.peak_rss as f64
            );
        }
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
