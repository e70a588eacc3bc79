//! One method run: a private copy of the shared directory in, a container, a checked result
//! out. A run never sees the live shared directory: it gets its own copy of the snapshot
//! (`workspace.rs`), handed to the engine as a bind-mounted directory or as an archive
//! ([`Transfer`]), with its secret files in a tmpfs (`secret_files.rs`); what it leaves is read
//! back as data (`tree.rs`), checked (`check.rs`) and searched for the secrets it was handed
//! (`leaks.rs`). Every run has a [`Deadline`]. Whether the result is committed, kept aside or
//! dropped is decided by the transaction it runs in (`transaction.rs`); the commit itself is
//! `store/commit.rs`. Runs of an e that died are found and settled by `recovery.rs`.

pub mod check;
pub mod console;
mod deadline;
pub mod leaks;
pub mod legacy;
pub mod memory_copy;
pub mod recovery;
pub mod secret_files;
pub mod transaction;
pub mod tree;
pub mod volumes;
pub mod workspace;

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

pub use deadline::{DEFAULT_TIMEOUT, Deadline, DeadlineSource};

use crate::repository::Entry;
use crate::requirements;
use crate::runtime::confinement;
use crate::runtime::{
    Confinement, Engine, LABEL_OWNER, LABEL_SHARED, LABEL_TRANSFER, Network, RunSpec, SharedCopy,
    Stopped, Transfer, labels,
};
use crate::secrets::{Handed, Secrets, Store, resolve};
use crate::store::{Run, SharedDir};
use check::{Rules, Verdict};
use console::Console;
use tree::{Limits, Refusal, Tree};
use workspace::{RunInfo, Workspace};

/// How to run a method, beyond what the repository says.
#[derive(Debug, Default)]
pub struct Options {
    /// Stop the container after this long, whatever the repository says (`--timeout`).
    pub timeout: Option<Duration>,
    /// Where `${secret:NAME}` values come from.
    pub secrets: Secrets,
    /// Print the container's output as it arrives (otherwise only capture it).
    pub quiet: bool,
    /// Notes to record in the history with the run (flags like `--force`).
    pub notes: Vec<String>,
    /// The requirements file to hand the module (`E_REQUIREMENTS_FILE`).
    pub requirements: Option<requirements::File>,
    /// How the copy reaches the container.
    pub transfer: Option<Transfer>,
    /// The e command, for the run's record.
    pub command: String,
    /// Printed before each line of the container's output (the module's name, when modules
    /// run side by side); the captured output has no prefix.
    pub prefix: Option<String>,
}

/// The methods that must leave the shared directory as they found it.
pub const READ_ONLY_METHODS: [&str; 3] = ["metadata", "plan", "audit"];

/// What a method did to the shared directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Nothing changed.
    Unchanged,
    /// A valid change; the top-level state keys it changed.
    Changed {
        /// Module sections added, removed or modified.
        keys: Vec<String>,
    },
    /// Refused by the checks; why.
    Invalid(String),
}

/// What happened when a method ran.
#[derive(Debug, Clone)]
pub struct Report {
    /// The container's exit code.
    pub exit_code: i64,
    /// Set when e stopped the container.
    pub stopped: Option<Stopped>,
    /// What the checks said of the result.
    pub check: Check,
    /// Whether the result was refused by the checks (nothing of it is committed).
    pub refused: bool,
    /// The run id of a result kept aside (see `e recover`).
    pub kept: Option<String>,
    /// The container's stdout, masked.
    pub stdout: String,
    /// The container's stderr, masked.
    pub stderr: String,
    /// The id of the run in the history.
    pub run: String,
    /// The engine's id of the image that ran.
    pub image_id: String,
    /// The run as its history record has it (module, method, start, duration, outcome).
    pub record: Run,
    /// How long the container could run.
    pub deadline: Deadline,
}

impl Report {
    /// Whether the method succeeded and left a valid result.
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0 && self.stopped.is_none() && !self.refused
    }

    /// Whether the container itself exited 0 or 2 by itself (2: "changes", for plan and audit).
    pub fn answered(&self) -> bool {
        (self.exit_code == 0 || self.exit_code == 2) && self.stopped.is_none() && !self.refused
    }
}

/// A finished run, before anything is committed.
pub struct Finished {
    /// What happened.
    pub report: Report,
    /// The history record.
    pub record: Run,
    /// The valid result (module-visible, without `.e/`), when the checks accepted it.
    pub result: Option<Tree>,
    /// The run's directory, still on disk.
    pub workspace: Workspace,
    /// The requirements file the module was given: its path and bytes.
    pub requirements: Option<(String, Vec<u8>)>,
}

/// A fresh run id: time and process, unique enough to name a container and a history entry.
pub fn new_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    // A counter keeps ids of one process apart when two runs start in the same millisecond.
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{millis:x}-{:x}-{n}", std::process::id())
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

/// Who a module runs as and within which limits (`runtime/confinement.rs`); that user owns the
/// run's copy, whichever way it travels: the user running e, or an unprivileged uid when that
/// is root, unless the version says otherwise.
fn container_confinement(entry: Entry<'_>) -> Confinement {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let invoking = unsafe { (libc::getuid(), libc::getgid()) };
    confinement::for_version(entry.version, invoking)
}

/// One method call: which module version, which method, which extra arguments.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The module version.
    pub entry: Entry<'a>,
    /// The method (a command of the version).
    pub method: &'a str,
    /// Arguments after `--`.
    pub extra: &'a [String],
}

/// What a run is about to hand the engine.
struct Prepared {
    spec: RunSpec,
    /// The copy the module gets: the base plus what e gives it under `.e/`.
    given: Tree,
    requirements: Option<(String, Vec<u8>)>,
    workspace: Workspace,
    /// Every value handed to the run, which must not stay in what it leaves.
    handed: Vec<Handed>,
    /// The secrets it may keep (`keep-secrets:`).
    keep: Vec<String>,
    /// Its secret files, removed when dropped.
    files: Option<secret_files::SecretFiles>,
    deadline: Deadline,
}

/// Runs `call` on `base` (what modules see of the shared directory) and checks what it left.
/// Nothing is committed here. The caller holds the lock.
pub async fn execute(
    engine: &dyn Engine,
    shared: &SharedDir,
    base: &Tree,
    call: Call<'_>,
    options: &Options,
) -> anyhow::Result<Finished> {
    let Call { entry, method, .. } = call;
    let id = entry.id();
    let image = engine
        .ensure_image(&entry.version.image)
        .await
        .with_context(|| format!("cannot run `{id}`"))?;
    let transfer = match options.transfer {
        Some(transfer) => transfer,
        None => engine.transfer().await?,
    };
    let Prepared {
        spec,
        given,
        requirements,
        workspace,
        handed,
        keep,
        files,
        deadline,
    } = prepare(shared, base, call, transfer, options)?;

    let values: Vec<String> = handed.iter().map(|h| h.value.clone()).collect();
    let console = Console::new(values, options.quiet, options.prefix.clone());
    let started = SystemTime::now();
    let clock = Instant::now();
    let result = engine.run(&spec, &console).await;
    // The container is gone: its secret files go at once.
    drop(files);
    let (stdout, stderr) = console.finish();
    if console.masked() {
        crate::output::warn(&format!(
            "`{id}` {method} printed a secret e handed it; e showed it as `{}`, here and in the history\nhint: a module should never print its secrets: fix module `{}`",
            crate::secrets::MASK,
            entry.module.name
        ));
    }
    let mut record = Run {
        run: workspace.info.run.clone(),
        module: entry.module.name.clone(),
        version: entry.version.version.to_string(),
        command: method.to_owned(),
        started,
        duration_ms: clock.elapsed().as_millis() as u64,
        exit_code: None,
        outcome: String::new(),
        changed_keys: Vec::new(),
        notes: options.notes.clone(),
        transfer: Some(workspace.info.transfer.clone()),
        by: Some(crate::store::machine::who()),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => {
            // The engine failed midway: nothing the container did is trusted or kept.
            record.outcome = "error".to_owned();
            shared.record(&record)?;
            workspace.remove()?;
            return Err(err.context(format!("running `{id}` command `{method}` failed")));
        }
    };
    record.exit_code = Some(outcome.exit_code);
    // Only bookkeeping: on failure (a full disk) the next run re-owns or moves again.
    if let Err(err) = volumes::settle(shared, &entry.module.name, &spec, &outcome) {
        crate::output::warn(&format!("{err:#}"));
    }

    let rules = Rules {
        module: &entry.module.name,
        method,
        read_only: READ_ONLY_METHODS.contains(&method),
    };
    let policy = leaks::Policy {
        module: &entry.module.name,
        method,
        handed: &handed,
        keep: &keep,
    };
    let verdict = collect(&spec, outcome.download)
        .and_then(|left| check::check(&given, &left, &rules).map(|v| (v, left)))
        .and_then(|(verdict, mut left)| {
            if let Verdict::Changed(changes) = &verdict {
                settle_secrets(shared, &spec, &mut left, &changes.written, &policy)?;
            }
            Ok((verdict, left))
        });
    let (check, result) = match verdict {
        Ok((Verdict::Unchanged, _)) => (Check::Unchanged, None),
        Ok((Verdict::Changed(changes), left)) => (
            Check::Changed {
                keys: changes.sections,
            },
            Some(left.without(".e")),
        ),
        Err(refusal) => (Check::Invalid(refusal.to_string()), None),
    };
    let refused = matches!(check, Check::Invalid(_));
    if let Check::Changed { keys } = &check {
        record.changed_keys = keys.clone();
    }
    record.outcome = outcome_name(method, outcome.exit_code, outcome.stopped, refused).to_owned();
    Ok(Finished {
        report: Report {
            exit_code: outcome.exit_code,
            stopped: outcome.stopped,
            check,
            refused,
            kept: None,
            stdout,
            stderr,
            run: workspace.info.run.clone(),
            image_id: image.id,
            record: record.clone(),
            deadline,
        },
        record,
        result,
        workspace,
        requirements,
    })
}

/// The command, environment, copy and labels of a run; creates its workspace.
fn prepare(
    shared: &SharedDir,
    base: &Tree,
    call: Call<'_>,
    transfer: Transfer,
    options: &Options,
) -> anyhow::Result<Prepared> {
    let Call {
        entry,
        method,
        extra,
    } = call;
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
    let what = format!("`{id}` command `{method}`");
    // The secret store holds what modules were allowed to keep; it is read only if needed.
    let secrets = if command
        .secret_names()
        .iter()
        .any(|name| options.secrets.get(name).is_none())
    {
        options
            .secrets
            .clone()
            .with_kept(Store::at(&shared.e_dir()).read()?)
    } else {
        options.secrets.clone()
    };
    let resolved = resolve(command, &secrets, |k| std::env::var(k).ok(), &what)?;
    secret_files::check_transfer(&resolved.files, transfer == Transfer::Bind, &what)?;
    let deadline = Deadline::of(options.timeout, command.timeout.map(|t| t.0));

    let shared_path = entry.version.shared_path().trim_end_matches('/').to_owned();
    let mut env = contract_env(entry, method);
    env.push((
        "E_TIMEOUT".to_owned(),
        deadline.duration.as_secs().to_string(),
    ));
    let mut given = base.clone();
    let mut requirements = None;
    if let Some(file) = &options.requirements {
        let name = format!(".e/requirements/{}.json", entry.module.name);
        let bytes = serde_json::to_string_pretty(file)?.into_bytes();
        given.insert_file(&name, bytes.clone(), 0o644);
        requirements = Some((name.clone(), bytes));
        env.push((
            "E_REQUIREMENTS_FILE".to_owned(),
            format!("{shared_path}/{name}"),
        ));
    }
    env.extend(resolved.env);

    let run_id = new_run_id();
    let shared_id = shared.id()?;
    let memory = match transfer {
        Transfer::Bind => memory_copy::create(&memory_copy::key(shared)?, &run_id)?,
        Transfer::Archive => None,
    };
    let info = RunInfo {
        run: run_id.clone(),
        module: entry.module.name.clone(),
        version: entry.version.version.to_string(),
        method: method.to_owned(),
        mutating: !READ_ONLY_METHODS.contains(&method),
        transfer: transfer.name().to_owned(),
        command: options.command.clone(),
        owner: workspace::owner(),
        pid: std::process::id(),
        started: SystemTime::now(),
        live_digest: None,
        kept: None,
        memory: memory.clone(),
    };
    let workspace = match Workspace::create(shared, info) {
        Ok(workspace) => workspace,
        Err(err) => {
            if let Some(dir) = &memory {
                let _ = memory_copy::remove(dir);
            }
            return Err(err);
        }
    };
    let confinement = container_confinement(entry);
    let owner = (confinement.user.uid, confinement.user.gid);
    let files = if resolved.files.is_empty() {
        None
    } else {
        Some(secret_files::SecretFiles::create(&resolved.files, owner)?)
    };
    let copy = match transfer {
        Transfer::Bind => SharedCopy::Bind {
            host: workspace.fill(&given, Some(owner))?,
        },
        Transfer::Archive => SharedCopy::Archive {
            upload: given.to_tar(owner)?,
            // The tar adds a header of 512 bytes (and padding) per entry.
            download_limit: Limits::DEFAULT.max_total_bytes
                + (Limits::DEFAULT.max_entries as u64 + 2) * 1024,
        },
    };
    let mut run_labels = labels(&entry.module.name, &run_id);
    run_labels.insert(LABEL_SHARED.to_owned(), shared_id.clone());
    run_labels.insert(
        LABEL_OWNER.to_owned(),
        format!("{} pid {}", workspace.info.owner, std::process::id()),
    );
    run_labels.insert(LABEL_TRANSFER.to_owned(), transfer.name().to_owned());
    let spec = RunSpec {
        image: entry.version.image.clone(),
        args: command
            .command
            .iter()
            .chain(&command.args)
            .chain(extra)
            .filter(|a| !a.is_empty())
            .cloned()
            .collect(),
        env,
        workdir: entry.version.workdir.clone(),
        shared: copy,
        shared_path,
        volumes: volumes::for_run(shared, &shared_id, entry, owner)?,
        confinement,
        network: entry.version.network.unwrap_or(Network::None),
        capabilities: entry.version.capabilities.clone(),
        labels: run_labels,
        secret_files: files.as_ref().map(|files| files.dir().to_owned()),
        timeout: Some(deadline.duration),
    };
    Ok(Prepared {
        spec,
        given,
        requirements,
        workspace,
        handed: resolved.handed,
        keep: command.keep_secrets.clone(),
        files,
        deadline,
    })
}

/// Looks for the secrets handed to the run in the files it wrote (`leaks.rs`): a kept one is
/// replaced by its reference, in the result and in a bind-mode copy (which is what a result
/// kept aside is made of), and its value goes to the secret store; any other is a refusal.
fn settle_secrets(
    shared: &SharedDir,
    spec: &RunSpec,
    result: &mut Tree,
    written: &[String],
    policy: &leaks::Policy<'_>,
) -> Result<(), Refusal> {
    let leaks::Guarded { kept, changed } = leaks::guard(result, written, policy)?;
    if kept.is_empty() {
        return Ok(());
    }
    if changed.iter().any(|path| path == tree::STATE_FILE)
        && let Some(bytes) = result.file(tree::STATE_FILE)
    {
        check::parse_state(bytes).map_err(|reason| {
            Refusal::new(
                tree::STATE_FILE,
                format!("{reason}, once e put the references of the secrets it keeps in place of their values"),
            )
        })?;
    }
    let store = Store::at(&shared.e_dir());
    let refuse = |err: anyhow::Error| {
        Refusal::new(
            store.path().display().to_string(),
            format!("could not keep the secrets `{}`: {err:#}", names(&kept)),
        )
    };
    if let SharedCopy::Bind { host } = &spec.shared {
        for path in &changed {
            if let Some(bytes) = result.file(path) {
                std::fs::write(host.join(path), bytes).map_err(|err| refuse(err.into()))?;
            }
        }
    }
    store.keep(&kept).map_err(refuse)?;
    Ok(())
}

/// `a`, `b`: the names of kept secrets.
fn names(kept: &[(String, String)]) -> String {
    kept.iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join("`, `")
}

/// What the run left in its copy: read from the bind-mounted directory, or from the download.
fn collect(spec: &RunSpec, download: Option<Result<Vec<u8>, String>>) -> Result<Tree, Refusal> {
    match (&spec.shared, download) {
        (SharedCopy::Bind { host }, _) => Tree::read_dir(host, &Limits::DEFAULT),
        (SharedCopy::Archive { .. }, Some(Ok(bytes))) => {
            Tree::read_tar(bytes.as_slice(), "shared", &Limits::DEFAULT)
        }
        (SharedCopy::Archive { .. }, Some(Err(reason))) => Err(Refusal {
            path: spec.shared_path.clone(),
            reason,
        }),
        (SharedCopy::Archive { .. }, None) => Err(Refusal {
            path: spec.shared_path.clone(),
            reason: "was not read back from the engine".to_owned(),
        }),
    }
}

/// The history's word for how a run ended.
fn outcome_name(
    method: &str,
    exit_code: i64,
    stopped: Option<Stopped>,
    refused: bool,
) -> &'static str {
    match stopped {
        Some(Stopped::Timeout) => "timeout",
        Some(Stopped::Interrupted) => "interrupted",
        None if refused => "refused",
        None if exit_code == 0 => "ok",
        // Exit code 2 is an answer, not a failure, for the methods that report differences.
        None if exit_code == 2 && method == "plan" => "changes",
        None if exit_code == 2 && method == "audit" => "drift",
        None => "failed",
    }
}
