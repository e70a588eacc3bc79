//! What a command that runs module methods did, as one versioned JSON (or YAML) document:
//! `e plan|apply|audit|destroy|upgrade|run|init|metadata -o json`. Scripts read this instead of
//! scraping the terminal; its schema is in docs/guide.md ("Machine-readable runs") and pinned
//! by a snapshot test. Errors are documents too: `ok: false` with the error's whole chain.
//!
//! The runs are gathered by a [`RunLog`] that every session of the command appends to, so a
//! command that fails midway still reports the runs it made.

use std::process::ExitCode;
use std::sync::Mutex;

use serde::Serialize;

use crate::cli::Format;
use crate::output;
use crate::run::Report;
use crate::store::Serial;

/// The version of the document's schema; raised on any change that is not an addition.
pub const FORMAT_VERSION: u32 = 1;

/// Every run a command made, in order.
#[derive(Debug, Default)]
pub struct RunLog {
    reports: Mutex<Vec<Report>>,
}

impl RunLog {
    /// Appends one run.
    pub fn push(&self, report: &Report) {
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report.clone());
        }
    }

    /// The runs so far.
    pub fn reports(&self) -> Vec<Report> {
        self.reports
            .lock()
            .map(|reports| reports.clone())
            .unwrap_or_default()
    }
}

/// How a command ended: e's exit code and one word for scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// e's exit code (see `exit.rs`).
    pub code: u8,
    /// `applied`, `no-changes`, `planned`, `cancelled`, `destroyed`, `upgraded`, `clean`,
    /// `drift`, `ok`, `failed`, `refused`, `kept`, `timeout`, `interrupted`.
    pub result: String,
}

impl Ended {
    /// Ends with `code` and `result`.
    pub fn new(code: u8, result: &str) -> Ended {
        Ended {
            code,
            result: result.to_owned(),
        }
    }

    /// How a single method run ends the command: its exit code (see `exit.rs`) and its
    /// outcome as the history names it.
    pub fn of(report: &Report, two: crate::exit::Two) -> Ended {
        let result = if report.kept.is_some() {
            "kept".to_owned()
        } else if report.refused {
            "refused".to_owned()
        } else {
            report.record.outcome.clone()
        };
        Ended {
            code: crate::exit::code_for(report, two),
            result,
        }
    }
}

/// The document.
#[derive(Debug, Serialize)]
pub struct Document {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// e's subcommand (`apply`, `plan`, ...).
    pub command: String,
    /// What it was run on (`azi@0.1.0`, a plan file).
    pub target: String,
    /// Whether it succeeded (exit code 0, or 2 where 2 reports changes or drift).
    pub ok: bool,
    /// e's exit code.
    pub exit_code: u8,
    /// One word: how it ended (see [`Ended::result`]); `error` when e failed.
    pub result: String,
    /// The shared directory's lineage and serial after the command, when it has them.
    pub lineage: Option<String>,
    /// Its serial.
    pub serial: Option<u64>,
    /// Every method run, in order.
    pub runs: Vec<RunView>,
    /// The error's whole chain, when e failed.
    pub error: Option<String>,
}

/// One method run in the document.
#[derive(Debug, Serialize)]
pub struct RunView {
    /// The run id (history, container label `e.run`).
    pub run: String,
    /// Module name.
    pub module: String,
    /// Module version.
    pub version: String,
    /// The method or command.
    pub method: String,
    /// When it started, RFC 3339.
    pub started: String,
    /// How long it took.
    pub duration_ms: u64,
    /// The container's exit code (`null` when e stopped it).
    pub exit_code: Option<i64>,
    /// As in the history: `ok`, `changes`, `drift`, `failed`, `timeout`, `interrupted`, ...
    pub outcome: String,
    /// Whether e refused what it left (nothing of it committed).
    pub refused: bool,
    /// The run id of a result kept aside (`e recover`).
    pub kept: Option<String>,
    /// Top-level state keys it changed.
    pub changed_keys: Vec<String>,
    /// Its standard output, secrets masked.
    pub stdout: String,
    /// Its standard error, secrets masked.
    pub stderr: String,
}

impl From<&Report> for RunView {
    fn from(report: &Report) -> Self {
        let record = &report.record;
        RunView {
            run: report.run.clone(),
            module: record.module.clone(),
            version: record.version.clone(),
            method: record.command.clone(),
            started: crate::store::time::format(record.started),
            duration_ms: record.duration_ms,
            exit_code: report.stopped.is_none().then_some(report.exit_code),
            outcome: record.outcome.clone(),
            refused: report.refused,
            kept: report.kept.clone(),
            changed_keys: record.changed_keys.clone(),
            stdout: report.stdout.clone(),
            stderr: report.stderr.clone(),
        }
    }
}

/// Finishes a run command: with `-o json|yaml`, writes its document (also when it failed,
/// with the error in it); returns its exit code, or the error for `main` to print.
pub fn finish(
    command: &str,
    target: &str,
    format: Format,
    log: &RunLog,
    serial: Option<Serial>,
    result: anyhow::Result<Ended>,
) -> anyhow::Result<ExitCode> {
    if format == Format::Table {
        return result.map(|ended| ExitCode::from(ended.code));
    }
    let (ended, error) = match &result {
        Ok(ended) => (ended.clone(), None),
        Err(err) => (
            Ended::new(crate::exit::FAILURE, "error"),
            Some(format!("{err:#}")),
        ),
    };
    let document = Document {
        format_version: FORMAT_VERSION,
        command: command.to_owned(),
        target: target.to_owned(),
        ok: ended.code == crate::exit::SUCCESS
            || (ended.code == crate::exit::CHANGES && error.is_none()),
        exit_code: ended.code,
        result: ended.result,
        lineage: serial.as_ref().map(|s| s.lineage.clone()),
        serial: serial.map(|s| s.serial),
        runs: log.reports().iter().map(RunView::from).collect(),
        error,
    };
    if let Some(text) = output::serialized(format, &document)? {
        output::data(&text)?;
    }
    result.map(|ended| ExitCode::from(ended.code))
}
