//! How fast the checks before commit refuse a hostile result, and what they cost on a good one.
//!
//! Each case plants one misbehaviour in a copy of an example shared directory (a 20 KB state
//! with azi, bmk and others, their configs, and `.e/requirements/`), then times what e does
//! with a run's result: read the directory (`Tree::read_dir`, the bind mode) or the archive
//! stream (`Tree::read_tar` over GNU tar's archive of it, the engine's archive mode), then
//! `check`. The accepted cases add a section to a state of 20 KB and of 10 MB.
//!
//! Run with `cargo bench --bench refusal`; add `-- --unguarded` to also time serde_yaml on
//! the hostile states without the checks (a minute or more), for comparison.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e::run::check::{Rules, Verdict, check, parse_state};
use e::run::tree::{Limits, Tree};

/// The allocator of the `e` binary, so the figures are e's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Timed runs per case and mode; the median is reported.
const RUNS: usize = 11;

/// A state shaped like the example modules' (azi's nodes, bmk's brokers, ...), of about
/// `target` bytes.
fn example_state(target: usize) -> String {
    let sections = ["azi", "bmk", "bmm", "k8s", "rook", "nfs"];
    let mut bodies: Vec<String> = sections
        .iter()
        .map(|name| format!("  status: applied\n  version: 0.1.0\n  owner: {name}\n  nodes:\n"))
        .collect();
    let mut size: usize = bodies.iter().map(String::len).sum();
    let mut i = 0;
    while size < target {
        let node = format!(
            "    - name: node-{i:06}\n      privateIP: 10.{}.{}.{}\n      size: Standard_D2s_v3\n      tags: {{role: kafka, zone: \"{}\"}}\n      kafka: true\n",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256,
            i % 3 + 1
        );
        size += node.len();
        bodies[i % sections.len()].push_str(&node);
        i += 1;
    }
    let mut state = String::from("# the shared state: one section per module\n");
    for (name, body) in sections.iter().zip(bodies) {
        state.push_str(&format!("{name}:\n{body}"));
    }
    state
}

fn alias_bomb() -> String {
    let mut bomb = format!("misbehave:\n  a0: &a0 [{}]\n", vec!["x"; 1000].join(","));
    for i in 1..8 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("  a{i}: &a{i} [{refs}]\n"));
    }
    bomb
}

fn nested_blocks(bytes: usize) -> String {
    let mut text = String::from("misbehave:\n");
    let mut depth = 1;
    while text.len() < bytes {
        text.push_str(&format!("{}a:\n", " ".repeat(depth)));
        depth += 1;
    }
    text
}

/// Writes the example shared directory with `state` into `root`.
fn base_dir(root: &Path, state: &str) {
    fs::create_dir_all(root.join(".e/requirements")).unwrap();
    fs::write(root.join("state.yml"), state).unwrap();
    for module in ["azi", "bmk", "bmm"] {
        fs::write(
            root.join(format!("{module}-config.yml")),
            format!("module: {module}\nsize: 3\nregion: westeurope\n"),
        )
        .unwrap();
        fs::write(
            root.join(format!(".e/requirements/{module}.json")),
            format!("{{\"module\": \"{module}\", \"requirements\": []}}"),
        )
        .unwrap();
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Plants a misbehaviour in a shared directory, given the state it holds.
type Plant = Box<dyn Fn(&Path, &str)>;

/// One case: what it plants in a copy of the base directory.
struct Case {
    name: &'static str,
    plant: Plant,
}

fn cases() -> Vec<Case> {
    let append = |extra: String| {
        Box::new(move |root: &Path, state: &str| {
            fs::write(root.join("state.yml"), format!("{state}{extra}")).unwrap()
        }) as Plant
    };
    vec![
        Case {
            name: "1 MB of nested `[`",
            plant: append(format!("misbehave: {}\n", "[".repeat(1 << 20))),
        },
        Case {
            name: "1 MB of nested block mappings",
            plant: append(nested_blocks(1 << 20)),
        },
        Case {
            name: "alias bomb (10^10 nodes)",
            plant: append(alias_bomb()),
        },
        Case {
            name: "a 100 MB file",
            plant: Box::new(|root, _| {
                let file = fs::File::create(root.join("big-file.bin")).unwrap();
                file.set_len(100 << 20).unwrap();
            }),
        },
        Case {
            name: "a symlink",
            plant: Box::new(|root, _| {
                std::os::unix::fs::symlink("/etc/passwd", root.join("planted-link")).unwrap()
            }),
        },
        Case {
            name: "a FIFO",
            plant: Box::new(|root, _| mkfifo(&root.join("pipe"))),
        },
        Case {
            name: "10,001 files",
            plant: Box::new(|root, _| {
                fs::create_dir(root.join("many")).unwrap();
                for i in 0..10_001 {
                    fs::write(root.join(format!("many/f{i:05}")), "x").unwrap();
                }
            }),
        },
        Case {
            name: "an empty state",
            plant: Box::new(|root, _| fs::write(root.join("state.yml"), "").unwrap()),
        },
        Case {
            name: "another module's section deleted",
            plant: Box::new(|root, state: &str| {
                let start = state.find("\nbmk:\n").unwrap() + 1;
                let end = start + state[start..].find("\nbmm:\n").unwrap() + 1;
                fs::write(
                    root.join("state.yml"),
                    format!("{}{}", &state[..start], &state[end..]),
                )
                .unwrap()
            }),
        },
        Case {
            name: "accepted: a section added (20 KB state)",
            plant: append("misbehave:\n  status: applied\n".to_owned()),
        },
    ]
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

/// GNU tar's archive of `root`, wrapped as `shared/...` like the engine's.
fn archive_of(root: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .args(["--format=gnu", "-C"])
        .arg(root.parent().unwrap())
        .args(["-cf", "-", "shared"])
        .output()
        .expect("GNU tar runs");
    assert!(out.status.success(), "tar failed");
    out.stdout
}

fn size_of(root: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

/// The CPU time (user + system) this process has used, all threads together.
fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills `usage`, which outlives the call.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Times `run` RUNS times; returns the median wall time, the median CPU time and the last
/// outcome.
fn timed_with_cpu(mut run: impl FnMut() -> String) -> (Duration, Duration, String) {
    let mut outcome = String::new();
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (started, cpu) = (Instant::now(), cpu_time());
        outcome = run();
        walls.push(started.elapsed());
        cpus.push(cpu_time() - cpu);
    }
    (median(walls), median(cpus), outcome)
}

/// Times `run` RUNS times; returns the median and the last outcome.
fn timed(mut run: impl FnMut() -> String) -> (Duration, String) {
    let mut outcome = String::new();
    let samples = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            outcome = run();
            started.elapsed()
        })
        .collect();
    (median(samples), outcome)
}

fn outcome(result: Result<Verdict, String>) -> String {
    match result {
        Ok(Verdict::Unchanged) => "accepted: unchanged".to_owned(),
        Ok(Verdict::Changed(changes)) => format!("accepted: sections {:?}", changes.sections),
        Err(refusal) => refusal.chars().take(90).collect(),
    }
}

fn main() {
    let unguarded = std::env::args().any(|a| a == "--unguarded");
    let rules = Rules {
        module: "misbehave",
        method: "apply",
        read_only: false,
    };
    let limits = Limits::DEFAULT;
    let state = example_state(20 * 1024);
    let work = tempfile::tempdir().unwrap();
    let base_root = work.path().join("base/shared");
    base_dir(&base_root, &state);
    let base = Tree::read_dir(&base_root, &limits).unwrap();

    println!(
        "| case | result size | directory: read + check, ms | archive: read + check, ms | outcome |"
    );
    println!("|---|---:|---:|---:|---|");
    for case in cases() {
        let root = work.path().join("case/shared");
        let _ = fs::remove_dir_all(work.path().join("case"));
        base_dir(&root, &state);
        (case.plant)(&root, &state);
        let size = size_of(&root);
        let (directory, said) = timed(|| {
            outcome(
                Tree::read_dir(&root, &limits)
                    .and_then(|result| check(&base, &result, &rules))
                    .map_err(|r| r.to_string()),
            )
        });
        let archive = archive_of(&root);
        let (from_archive, said_too) = timed(|| {
            outcome(
                Tree::read_tar(archive.as_slice(), "shared", &limits)
                    .and_then(|result| check(&base, &result, &rules))
                    .map_err(|r| r.to_string()),
            )
        });
        assert_eq!(
            said.starts_with("accepted"),
            said_too.starts_with("accepted"),
            "{}: {said} / {said_too}",
            case.name
        );
        println!(
            "| {} | {} | {} | {} | {} |",
            case.name,
            human(size),
            ms(directory),
            ms(from_archive),
            said.replace('|', "\\|")
        );
    }

    println!();
    println!(
        "| accepted state | `check` alone: wall ms | CPU ms | `parse_state` of the result: wall ms | CPU ms | sections |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for target in [20 * 1024, 10 << 20] {
        let state = example_state(target);
        let mut base = Tree::default();
        base.insert_file("state.yml", state.clone().into_bytes(), 0o644);
        let mut result = base.clone();
        let changed = format!("{state}misbehave:\n  status: applied\n");
        result.insert_file("state.yml", changed.clone().into_bytes(), 0o644);
        let (checked, checked_cpu, said) =
            timed_with_cpu(|| outcome(check(&base, &result, &rules).map_err(|r| r.to_string())));
        let (parsed, parsed_cpu, _) = timed_with_cpu(|| {
            parse_state(changed.as_bytes()).unwrap();
            String::new()
        });
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            human(state.len() as u64),
            ms(checked),
            ms(checked_cpu),
            ms(parsed),
            ms(parsed_cpu),
            said
        );
    }

    if unguarded {
        println!();
        println!(
            "| hostile state, parsed by serde_yaml without the checks | size | ms | serde_yaml says |"
        );
        println!("|---|---:|---:|---|");
        // 1 MB of `[` in a section would take hours: the time grows with the square of the
        // depth, as these two show.
        let hostile = [
            (
                "20,000 nested `[`",
                format!("misbehave: {}\n", "[".repeat(20_000)),
            ),
            (
                "100,000 nested `[`",
                format!("misbehave: {}\n", "[".repeat(100_000)),
            ),
            ("1 MB of nested block mappings", nested_blocks(1 << 20)),
            ("alias bomb (10^10 nodes)", alias_bomb()),
        ];
        for (name, text) in hostile {
            let started = Instant::now();
            let said = match serde_yaml::from_str::<serde_yaml::Value>(&text) {
                Ok(_) => "parsed".to_owned(),
                Err(err) => err.to_string(),
            };
            println!(
                "| {name} | {} | {} | {said} |",
                human(text.len() as u64),
                ms(started.elapsed())
            );
        }
    }
}
