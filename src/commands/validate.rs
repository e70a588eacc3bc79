//! `e validate`: loads the repository and checks it, and the shared state when there is one,
//! without an engine and without changing anything, like `terraform validate`: exit 0 when
//! valid (warnings may be printed), 1 when not. `-o json` prints Terraform's shape:
//! `{valid, error_count, warning_count, diagnostics: [{severity, summary, detail}]}`.
//!
//! Errors: a repository that does not load, strong requirements that form a cycle, a state
//! file or e's record of installed modules that cannot be read. Warnings: what loading warns
//! of, a strong requirement nothing in the repository satisfies (the module cannot be applied
//! without `--skip-requirements`), an installed module version the repository lacks.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::{Format, ValidateArgs};
use crate::graph::{Index, Preferences, ResolveError, resolve};
use crate::output;
use crate::repository::{self, Repository};
use crate::store::{SharedDir, parse_mapping};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Error,
    Warning,
}

/// One finding: a one-line summary and, when there is more to say, the rest.
#[derive(Debug, Serialize)]
struct Diagnostic {
    severity: Severity,
    summary: String,
    detail: String,
}

impl Diagnostic {
    /// A finding from a message whose first line is the summary.
    fn new(severity: Severity, message: &str) -> Diagnostic {
        let (summary, detail) = message.split_once('\n').unwrap_or((message, ""));
        Diagnostic {
            severity,
            summary: summary.to_owned(),
            detail: detail.to_owned(),
        }
    }
}

/// The answer of `-o json` and `-o yaml`.
#[derive(Debug, Serialize)]
struct Report {
    valid: bool,
    error_count: usize,
    warning_count: usize,
    diagnostics: Vec<Diagnostic>,
}

/// Runs `e validate`.
pub fn run(args: ValidateArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let mut diagnostics = Vec::new();
    let mut summary = Vec::new();
    match repository::load::load(&context.repository_path) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                diagnostics.push(Diagnostic::new(Severity::Warning, warning));
            }
            let versions = loaded.repository.entries().count();
            summary.push(format!(
                "the repository `{}` ({} module(s), {versions} version(s))",
                context.repository_path.display(),
                loaded.repository.components.len()
            ));
            check_requirements(&loaded.repository, &mut diagnostics);
            if let Some(state) = check_state(context, &loaded.repository, &mut diagnostics) {
                summary.push(state);
            }
        }
        Err(err) => diagnostics.push(Diagnostic::new(Severity::Error, &err.to_string())),
    }
    let count = |severity| {
        diagnostics
            .iter()
            .filter(|d: &&Diagnostic| d.severity == severity)
            .count()
    };
    let report = Report {
        valid: count(Severity::Error) == 0,
        error_count: count(Severity::Error),
        warning_count: count(Severity::Warning),
        diagnostics,
    };
    let code = if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if let Some(text) = output::serialized(args.output, &report)? {
        output::data(&text)?;
        return Ok(code);
    }
    debug_assert_eq!(args.output, Format::Table);
    for diagnostic in &report.diagnostics {
        let text = if diagnostic.detail.is_empty() {
            diagnostic.summary.clone()
        } else {
            format!("{}\n{}", diagnostic.summary, diagnostic.detail)
        };
        match diagnostic.severity {
            Severity::Error => output::note(&format!("error: {text}")),
            Severity::Warning => output::warn(&text),
        }
    }
    if report.valid {
        output::data(&format!("valid: {}", summary.join(" and ")))?;
    } else {
        output::note(&format!(
            "invalid: {} error(s), {} warning(s)",
            report.error_count, report.warning_count
        ));
    }
    Ok(code)
}

/// Every module version's strong requirements, resolved as `e apply --with-requirements`
/// would: a cycle is an error, a requirement nothing satisfies a warning.
fn check_requirements(repository: &Repository, diagnostics: &mut Vec<Diagnostic>) {
    let index = Index::new(repository);
    let mut cycles: Vec<Vec<String>> = Vec::new();
    for entry in repository.entries() {
        match resolve(&index, entry, &Preferences::default()) {
            Ok(_) => {}
            Err(ResolveError::Cycle(path)) => {
                // One cycle is reported once, whichever of its modules found it.
                let mut ids: Vec<String> = path.iter().map(|e| e.id()).collect();
                ids.sort();
                ids.dedup();
                if !cycles.contains(&ids) {
                    cycles.push(ids);
                    let err = ResolveError::Cycle(path);
                    diagnostics.push(Diagnostic::new(Severity::Error, &err.to_string()));
                }
            }
            Err(err @ ResolveError::Unsatisfiable { .. }) => {
                let ResolveError::Unsatisfiable { path, .. } = &err else {
                    unreachable!("matched above")
                };
                // Reported for the module that owns the requirement, not every one above it.
                if path.len() == 1 {
                    let message = format!(
                        "`{}` cannot be applied without `--skip-requirements`: {err}",
                        entry.id()
                    );
                    diagnostics.push(Diagnostic::new(Severity::Warning, &message));
                }
            }
        }
    }
}

/// The state file and e's record of installed modules, when the shared directory has them,
/// read without creating anything; returns what was checked, for the summary.
fn check_state(
    context: &Context,
    repository: &Repository,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<String> {
    let shared = match SharedDir::open_read_only(&context.shared_path) {
        Ok(shared) => shared,
        Err(err) => {
            diagnostics.push(Diagnostic::new(Severity::Error, &format!("{err:#}")));
            return None;
        }
    };
    let mut sections = None;
    match shared.read_state() {
        Ok(Some(bytes)) => match parse_mapping(&bytes) {
            Ok(mapping) => sections = Some(mapping.len()),
            Err(reason) => diagnostics.push(Diagnostic::new(
                Severity::Error,
                &format!(
                    "`{}` {reason}\nhint: restore it from `state.yml.backup`, or fix the YAML",
                    shared.state_path().display()
                ),
            )),
        },
        Ok(None) => {}
        Err(err) => diagnostics.push(Diagnostic::new(Severity::Error, &format!("{err:#}"))),
    }
    let installed = match shared.installed() {
        Ok(installed) => installed,
        Err(err) => {
            diagnostics.push(Diagnostic::new(Severity::Error, &format!("{err:#}")));
            Default::default()
        }
    };
    for record in installed.values() {
        let known = repository.entries().any(|e| {
            e.module.name == record.module && e.version.version.as_str() == record.version
        });
        if !known {
            diagnostics.push(Diagnostic::new(
                Severity::Warning,
                &format!(
                    "module `{}@{}` is installed, but the repository does not have that version\nhint: `e import` the archive it came from, or add it to the repository, before `e destroy` or `e upgrade` it",
                    record.module, record.version
                ),
            ));
        }
    }
    sections.map(|sections| {
        format!(
            "the state in `{}` ({sections} section(s), {} module(s) installed)",
            shared.root().display(),
            installed.len()
        )
    })
}
