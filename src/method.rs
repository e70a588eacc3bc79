//! Running one method of one module version, with every promise about the shared state kept:
//! the caller holds the lock; this checks the mounts, makes sure of the image, snapshots the
//! state, runs the container with least privilege, validates the state afterwards, restores it
//! when the method failed or left it bad, keeps the backup, and records the run in the history.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use crate::output;
use crate::repository::Entry;
use crate::requirements;
use crate::runtime::{
    Bind, Engine, Network, OutputSink, RunSpec, Stopped, Stream, confinement, labels,
};
use crate::secrets::{Masker, Secrets, resolve};
use crate::state::{Check, Lock, Run, SharedDir};

/// How to run a method, beyond what the repository says.
#[derive(Debug, Default)]
pub struct Options {
    /// Stop the container after this long.
    pub timeout: Option<Duration>,
    /// Where `${secret:NAME}` values come from.
    pub secrets: Secrets,
    /// Print the container's output as it arrives (otherwise only capture it).
    pub quiet: bool,
    /// Notes to record in the history with the run (flags like `--force`).
    pub notes: Vec<String>,
    /// The requirements file to hand the module (`E_REQUIREMENTS_FILE`).
    pub requirements: Option<requirements::File>,
}

/// The methods that must leave the state as they found it; a change is undone and reported.
pub const READ_ONLY_METHODS: [&str; 3] = ["metadata", "plan", "audit"];

/// What happened when a method ran.
#[derive(Debug, Clone)]
pub struct Report {
    /// The container's exit code.
    pub exit_code: i64,
    /// Set when e stopped the container.
    pub stopped: Option<Stopped>,
    /// What the method did to the state, as first found (before any restore).
    pub check: Check,
    /// Whether e put the previous state back.
    pub restored: bool,
    /// The container's stdout, masked.
    pub stdout: String,
    /// The container's stderr, masked.
    pub stderr: String,
    /// The id of the run in the history.
    pub run: String,
    /// The engine's id of the image that ran.
    pub image_id: String,
}

impl Report {
    /// Whether the method succeeded and left a valid state.
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0 && self.stopped.is_none() && !self.restored
    }
}

/// Prints container output (masked) and keeps a copy of it.
struct Console {
    stdout: Masker,
    stderr: Masker,
    captured: Mutex<(String, String)>,
    quiet: bool,
}

impl Console {
    fn emit(&self, stream: Stream, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.quiet {
            output::stream(stream, text);
        }
        let mut captured = self
            .captured
            .lock()
            .expect("the capture buffer is never poisoned");
        match stream {
            Stream::Stdout => captured.0.push_str(text),
            Stream::Stderr => captured.1.push_str(text),
        }
    }

    fn finish(&self) -> (String, String) {
        self.emit(Stream::Stdout, &self.stdout.finish());
        self.emit(Stream::Stderr, &self.stderr.finish());
        std::mem::take(
            &mut *self
                .captured
                .lock()
                .expect("the capture buffer is never poisoned"),
        )
    }
}

impl OutputSink for Console {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        let masker = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        self.emit(stream, &masker.feed(bytes));
    }
}

/// A fresh run id: time and process, unique enough to name a container and a history entry.
pub fn new_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{millis:x}-{:x}", std::process::id())
}

/// The environment variables every module gets: where things are (see docs/modules.md).
fn contract_env(entry: Entry<'_>, method: &str) -> Vec<(String, String)> {
    let shared = entry.version.shared_path().trim_end_matches('/').to_owned();
    let module = &entry.module.name;
    vec![
        ("E_MODULE".to_owned(), module.clone()),
        (
            "E_MODULE_VERSION".to_owned(),
            entry.version.version.to_string(),
        ),
        ("E_METHOD".to_owned(), method.to_owned()),
        ("E_SHARED".to_owned(), shared.clone()),
        ("E_STATE_FILE".to_owned(), format!("{shared}/state.yml")),
        (
            "E_CONFIG_FILE".to_owned(),
            format!("{shared}/{module}-config.yml"),
        ),
    ]
}

/// The uid and gid of the user running e, from which the module's user is chosen.
fn invoking_user() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Runs `method` of `entry` with `extra_args`. The caller holds the lock.
pub async fn run(
    engine: &dyn Engine,
    shared: &SharedDir,
    _lock: &Lock,
    entry: Entry<'_>,
    method: &str,
    extra_args: &[String],
    options: &Options,
) -> anyhow::Result<Report> {
    let id = entry.id();
    let command = entry.version.command(method).with_context(|| {
        let known: Vec<&str> = entry
            .version
            .commands
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        format!(
            "`{id}` has no command `{method}`\nhint: its commands are: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )
    })?;
    let resolved = resolve(
        &command.envs,
        &options.secrets,
        |k| std::env::var(k).ok(),
        &format!("`{id}` command `{method}`"),
    )?;

    let shared_path = entry.version.shared_path().trim_end_matches('/').to_owned();
    let mut binds = vec![
        Bind {
            host: shared.root().to_owned(),
            container: shared_path.clone(),
            read_only: false,
        },
        Bind {
            host: shared.e_dir(),
            container: format!("{shared_path}/.e"),
            read_only: true,
        },
    ];
    for mount in &entry.version.mounts {
        let host: PathBuf =
            shared.mount_dir(&entry.module.name, entry.version.version.as_str(), mount)?;
        binds.push(Bind {
            host,
            container: mount.clone(),
            read_only: false,
        });
    }
    for bind in &binds {
        shared.check_inside(&bind.host)?;
    }

    let run_id = new_run_id();
    let mut env = contract_env(entry, method);
    if let Some(file) = &options.requirements {
        let name = format!("{}.json", entry.module.name);
        shared.write_atomic(
            &shared.e_dir().join("requirements").join(&name),
            serde_json::to_string_pretty(file)?.as_bytes(),
        )?;
        env.push((
            "E_REQUIREMENTS_FILE".to_owned(),
            format!("{shared_path}/.e/requirements/{name}"),
        ));
    }
    env.extend(resolved.env);
    let spec = RunSpec {
        image: entry.version.image.clone(),
        args: command
            .command
            .iter()
            .chain(&command.args)
            .chain(extra_args)
            .filter(|a| !a.is_empty())
            .cloned()
            .collect(),
        env,
        workdir: entry.version.workdir.clone(),
        binds,
        confinement: confinement::for_version(entry.version, invoking_user()),
        network: entry.version.network.unwrap_or(Network::None),
        capabilities: entry.version.capabilities.clone(),
        labels: labels(&entry.module.name, &run_id),
        timeout: options.timeout,
    };

    let image = engine
        .ensure_image(&spec.image)
        .await
        .with_context(|| format!("cannot run `{id}`"))?;
    let snapshot = shared.snapshot()?;
    let console = Console {
        stdout: Masker::new(resolved.secrets.clone()),
        stderr: Masker::new(resolved.secrets),
        captured: Mutex::new((String::new(), String::new())),
        quiet: options.quiet,
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    let requirements = shared
        .e_dir()
        .join("requirements")
        .join(format!("{}.json", entry.module.name));
    let loan = crate::ownership::lend(&spec, &[requirements])?;
    let result = engine.run(&spec, &console).await;
    drop(loan);
    let (stdout, stderr) = console.finish();
    let check = shared.check(&snapshot);

    let mut record = Run {
        run: run_id.clone(),
        module: entry.module.name.clone(),
        version: entry.version.version.to_string(),
        command: method.to_owned(),
        started,
        duration_ms: clock.elapsed().as_millis() as u64,
        exit_code: None,
        outcome: String::new(),
        changed_keys: Vec::new(),
        notes: options.notes.clone(),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => {
            // The engine failed midway: whatever the container did is not trusted.
            if check != Check::Unchanged {
                shared.restore(&snapshot)?;
                record
                    .notes
                    .push("state restored after an engine error".to_owned());
            }
            record.outcome = "error".to_owned();
            shared.record(&record)?;
            return Err(err.context(format!("running `{id}` command `{method}` failed")));
        }
    };
    record.exit_code = Some(outcome.exit_code);
    let succeeded = outcome.exit_code == 0 && outcome.stopped.is_none();
    // A read-only method that changed the state broke the contract, whatever its exit code.
    let check = match check {
        Check::Changed { .. } if READ_ONLY_METHODS.contains(&method) => {
            Check::Invalid(format!("was changed, which `{method}` must never do"))
        }
        other => other,
    };
    let mut restored = false;
    match (&check, succeeded) {
        (Check::Unchanged, _) => {}
        (Check::Changed { keys }, true) => {
            shared.keep_backup(&snapshot)?;
            record.changed_keys = keys.clone();
        }
        (Check::Changed { .. } | Check::Invalid(_), _) => {
            shared.restore(&snapshot)?;
            restored = true;
            let what = match (&check, succeeded) {
                (Check::Invalid(reason), true) => format!("left a state.yml that {reason}"),
                (Check::Invalid(reason), false) => {
                    format!(
                        "failed (exit {}) and left a state.yml that {reason}",
                        outcome.exit_code
                    )
                }
                _ => format!("failed (exit {})", outcome.exit_code),
            };
            record.notes.push(format!("state.yml restored: {what}"));
            output::note(&format!(
                "e: `{id}` {method} {what}; state.yml restored to what it was before, byte for byte"
            ));
        }
    }
    record.outcome = match outcome.stopped {
        Some(Stopped::Timeout) => "timeout",
        Some(Stopped::Interrupted) => "interrupted",
        None if restored => "restored",
        None if succeeded => "ok",
        // Exit code 2 is an answer, not a failure, for the methods that report differences.
        None if outcome.exit_code == 2 && method == "plan" => "changes",
        None if outcome.exit_code == 2 && method == "audit" => "drift",
        None => "failed",
    }
    .to_owned();
    shared.record(&record)?;
    if let Some(stopped) = outcome.stopped {
        let why = match stopped {
            Stopped::Timeout => format!(
                "ran longer than {}",
                humantime::format_duration(options.timeout.unwrap_or_default())
            ),
            Stopped::Interrupted => "was interrupted".to_owned(),
        };
        output::note(&format!(
            "e: `{id}` {method} {why}; its container was stopped and removed"
        ));
    }
    Ok(Report {
        exit_code: outcome.exit_code,
        stopped: outcome.stopped,
        check,
        restored,
        stdout,
        stderr,
        run: run_id,
        image_id: image.id,
    })
}
