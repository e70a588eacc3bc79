//! A stack's wall time against the same methods run as isolated `docker run`s in sequence by a
//! shell script, side by side in one run.
//!
//! The generated repository has a realistic shape: one infrastructure module; Kafka,
//! Kubernetes, monitoring, logging and a service mesh on it; storage and ingress on
//! Kubernetes; a database on the storage; an application on the database, Kafka, monitoring
//! and logging: ten modules, critical path infrastructure -> kubernetes -> storage ->
//! database -> application. Each module's init does nothing, its plan reports a change until
//! its section is there, its apply writes its section: thirty methods of one busybox image.
//!
//! The baseline is a bash script of thirty `docker run`s, one after the other, each with the
//! isolation e gives a module (network none, an init, all capabilities dropped,
//! no-new-privileges, a read-only root, the module's user). e runs
//! `e apply application --with-requirements --auto-approve` on a fresh shared directory:
//! with its defaults, with `--parallelism 1`, and without the network holder. The rows run in
//! turn, five times each; the median is shown.
//!
//! Run with `cargo bench --bench stack` (needs a Docker engine and /bin/busybox).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{measure, median, millis};

/// A row of the table: what to run, made anew for each sample.
type Row<'a> = Box<dyn Fn() -> Command + 'a>;

const IMAGE: &str = "e-bench/stack:0.1.0";
const RUNS: usize = 5;

/// The modules, in dependency order, with what each strongly requires.
const MODULES: [(&str, &[&str]); 10] = [
    ("infrastructure", &[]),
    ("kafka", &["infrastructure"]),
    ("kubernetes", &["infrastructure"]),
    ("monitoring", &["infrastructure"]),
    ("logging", &["infrastructure"]),
    ("mesh", &["infrastructure"]),
    ("storage", &["kubernetes"]),
    ("ingress", &["kubernetes"]),
    ("database", &["storage"]),
    (
        "application",
        &["database", "kafka", "monitoring", "logging"],
    ),
];

const INIT: &str = "true";
const PLAN: &str =
    r#"grep -q "^$E_MODULE:" /shared/state.yml 2>/dev/null && exit 0; echo "+ $E_MODULE"; exit 2"#;
const APPLY: &str = r#"printf '%s:\n  status: applied\n' "$E_MODULE" >> /shared/state.yml"#;

fn repository_yaml() -> String {
    let mut text = String::from("version: v1\nkind: Repository\ncomponents:\n");
    let quote = |s: &str| serde_json::to_string(s).unwrap();
    for (name, requires) in MODULES {
        text.push_str(&format!(
            "- name: {name}\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: {IMAGE}\n    labels: {{name: {name}}}\n"
        ));
        if !requires.is_empty() {
            text.push_str("    requires:\n      strong:\n");
            for required in requires {
                text.push_str(&format!(
                    "        - [{{key: name, operator: eq, values: [{required}]}}]\n"
                ));
            }
        }
        text.push_str(&format!(
            "    commands:\n    - {{name: init, command: sh, args: [-c, {}]}}\n    - {{name: plan, command: sh, args: [-c, {}]}}\n    - {{name: apply, command: sh, args: [-c, {}]}}\n",
            quote(INIT),
            quote(PLAN),
            quote(APPLY)
        ));
    }
    text
}

/// The baseline: every method of every module, in order, as an isolated `docker run`.
fn script(user: &str) -> String {
    let mut text = String::from("#!/usr/bin/env bash\nset -eu\nshared=$1\n");
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    for (name, _) in MODULES {
        for (method, body) in [("init", INIT), ("plan", PLAN), ("apply", APPLY)] {
            text.push_str(&format!(
                "docker run --rm --network none --init --cap-drop ALL --security-opt no-new-privileges \
                 --read-only --tmpfs /tmp -u {user} -v \"$shared:/shared\" -e E_MODULE={name} \
                 {IMAGE} sh -c {}{}\n",
                quote(body),
                if method == "plan" { " || true" } else { "" }
            ));
        }
    }
    text
}

fn main() {
    let e = support::release_e();
    let work = tempfile::tempdir().expect("a temporary directory");
    support::busybox_image(&e, work.path(), IMAGE);
    let repository = work.path().join("repository.yaml");
    std::fs::write(&repository, repository_yaml()).unwrap();
    // SAFETY: getuid and getgid cannot fail.
    let user = match unsafe { (libc::getuid(), libc::getgid()) } {
        (0, _) => "65534:65534".to_owned(),
        (uid, gid) => format!("{uid}:{gid}"),
    };
    let baseline = work.path().join("baseline.sh");
    std::fs::write(&baseline, script(&user)).unwrap();

    let counter = std::cell::Cell::new(0);
    let fresh = |name: &str| {
        counter.set(counter.get() + 1);
        let dir = work.path().join(format!("{name}-{}", counter.get()));
        std::fs::create_dir(&dir).unwrap();
        // The script's modules run as `user`: they need to write the shared directory.
        let _ = Command::new("chown").arg(&user).arg(&dir).status();
        dir
    };
    let e_stack = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut command = Command::new(&e);
        command
            .args([
                "apply",
                "application",
                "--with-requirements",
                "--auto-approve",
            ])
            .args(extra)
            .env("E_REPOSITORY", &repository)
            .env("E_SHARED", fresh("e"))
            .env_remove("E_NETWORK_HOLDER");
        for (name, value) in envs {
            command.env(name, value);
        }
        command
    };
    let rows: Vec<(&str, Row<'_>)> = vec![
        (
            "e apply application --with-requirements",
            Box::new(|| e_stack(&[], &[])),
        ),
        (
            "  the same, --parallelism 1",
            Box::new(|| e_stack(&["--parallelism", "1"], &[])),
        ),
        (
            "  the same, without the network holder",
            Box::new(|| e_stack(&[], &[("E_NETWORK_HOLDER", "off")])),
        ),
        (
            "bash: 30 isolated docker runs in sequence",
            Box::new(|| {
                let mut command = Command::new("bash");
                command.arg(&baseline).arg(fresh("script"));
                command
            }),
        ),
    ];
    // One round to warm the engine and e's caches.
    for (_, command) in &rows {
        measure(&mut command());
    }
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for _ in 0..RUNS {
        for (i, (_, command)) in rows.iter().enumerate() {
            walls[i].push(measure(&mut command()).0);
        }
    }
    println!(
        "a stack of {} modules, {} methods, {RUNS} runs each, in turn (median, min..max)",
        MODULES.len(),
        MODULES.len() * 3
    );
    println!("{:<44} {:>10} {:>16}", "command", "wall s", "min..max s");
    let mut medians = Vec::new();
    for (i, (name, _)) in rows.iter().enumerate() {
        let wall = median(&mut walls[i]);
        println!(
            "{name:<44} {:>10.2} {:>16}",
            wall.as_secs_f64(),
            format!(
                "{:.2}..{:.2}",
                walls[i][0].as_secs_f64(),
                walls[i][walls[i].len() - 1].as_secs_f64()
            )
        );
        medians.push(wall);
    }
    let script_wall = medians[3];
    let ratio = |wall: Duration| wall.as_secs_f64() / script_wall.as_secs_f64();
    println!(
        "ratio e / script (wall): {:.2}   target <= 0.50: {}",
        ratio(medians[0]),
        if ratio(medians[0]) <= 0.5 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "ratio e --parallelism 1 / script: {:.2}; e without the holder / script: {:.2}",
        ratio(medians[1]),
        ratio(medians[2])
    );
    println!(
        "per method: script {:.0} ms, e in sequence {:.0} ms",
        millis(script_wall) / 30.0,
        millis(medians[1]) / 30.0
    );
    let _ = Command::new("docker")
        .args(["rmi", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
