//! `e check MODULE[@VERSION]`: the design's "check required methods implementation", for
//! module authors' CI. In a throwaway shared directory (with the module's strong requirements
//! installed first), it verifies the required methods exist and exit 0, that `metadata` prints
//! exactly the repository's labels, requires and influences, that `apply` leaves a valid state
//! with the module's own section, and that `plan` and `audit` leave the state unchanged.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::{CheckArgs, RunOptions};
use crate::graph::{Preferences, resolve};
use crate::lifecycle::Session;
use crate::output;
use crate::repository::Entry;
use crate::repository::model::Metadata;
use crate::run::{Check, Report};
use crate::runtime::Engine;
use crate::store::{SharedDir, parse_mapping};

/// The methods every module must answer.
pub const REQUIRED_METHODS: [&str; 5] = ["metadata", "init", "plan", "apply", "audit"];

#[derive(Serialize)]
struct Row {
    check: String,
    passed: bool,
    detail: String,
}

/// Why a method's run failed, in a few words, with the last line it wrote to stderr.
fn failure(report: &Report) -> String {
    let last = report
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut detail = match (report.stopped, report.refused) {
        (Some(stopped), _) => format!("stopped ({stopped:?})"),
        (None, true) => format!("exit {}, result refused", report.exit_code),
        (None, false) => format!("exit {}", report.exit_code),
    };
    if !last.is_empty() {
        detail.push_str(&format!(": {last}"));
    }
    detail
}

/// Runs the checks.
pub async fn run(
    args: CheckArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let target = repository.find(&args.module)?;
    let scratch = tempfile::Builder::new().prefix("e-check-").tempdir()?;
    let shared = SharedDir::open(&scratch.path().join("shared"))?;
    let options = RunOptions {
        timeout: Some(args.timeout),
        lock_timeout: std::time::Duration::ZERO,
        output: crate::cli::Format::Table,
    };
    let mut session = context.session(
        &repository,
        shared,
        engine,
        &format!("e check {}", target.id()),
        &options,
    )?;
    session.quiet = true;
    let rows = checks(&session, target).await?;
    let passed = rows.iter().all(|r| r.passed);
    if let Some(text) = output::serialized(args.output, &rows)? {
        output::data(&text)?;
    } else {
        let table = rows
            .iter()
            .map(|r| {
                vec![
                    r.check.clone(),
                    if r.passed { "pass" } else { "FAIL" }.to_owned(),
                    r.detail.clone(),
                ]
            })
            .collect();
        output::data(&output::table(&["CHECK", "RESULT", "DETAIL"], table))?;
        let failed = rows.iter().filter(|r| !r.passed).count();
        output::note(&if passed {
            format!("e: `{}` follows the module contract", target.id())
        } else {
            format!(
                "e: `{}` fails {failed} of {} checks",
                target.id(),
                rows.len()
            )
        });
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn checks(session: &Session<'_>, target: Entry<'_>) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut row = |check: String, passed: bool, detail: String| {
        rows.push(Row {
            check,
            passed,
            detail,
        })
    };

    let missing: Vec<&str> = REQUIRED_METHODS
        .iter()
        .copied()
        .filter(|m| target.version.command(m).is_none())
        .collect();
    row(
        "declares metadata, init, plan, apply, audit".to_owned(),
        missing.is_empty(),
        if missing.is_empty() {
            String::new()
        } else {
            format!("missing: {}", missing.join(", "))
        },
    );

    // Install what the module strongly requires, so its init finds real state to work from.
    let resolution = match resolve(&session.index, target, &Preferences::default()) {
        Ok(resolution) => resolution,
        Err(err) => {
            row(
                "strong requirements can be installed".to_owned(),
                false,
                err.to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
            return Ok(rows);
        }
    };
    for dependency in resolution
        .order
        .iter()
        .filter(|e| e.module.name != target.module.name)
    {
        let mut failed = None;
        for method in ["init", "plan", "apply"] {
            let report = if method == "apply" {
                session
                    .apply(*dependency, &[], false, true, Vec::new())
                    .await?
            } else {
                session
                    .run(*dependency, method, &[], false, Vec::new())
                    .await?
            };
            let ok = report.succeeded()
                || (method == "plan" && report.exit_code == 2 && !report.refused);
            if !ok {
                failed = Some(format!("{method}: {}", failure(&report)));
                break;
            }
        }
        let passed = failed.is_none();
        row(
            format!("setup: install {}", dependency.id()),
            passed,
            failed.unwrap_or_default(),
        );
        if !passed {
            return Ok(rows);
        }
    }

    for method in REQUIRED_METHODS {
        if target.version.command(method).is_none() {
            continue;
        }
        let report = session.run(target, method, &[], false, Vec::new()).await?;
        match method {
            "metadata" => {
                row(
                    "metadata exits 0".to_owned(),
                    report.succeeded(),
                    if report.succeeded() {
                        String::new()
                    } else {
                        failure(&report)
                    },
                );
                let (passed, detail) = match serde_yaml::from_str::<Metadata>(&report.stdout) {
                    Ok(printed) if printed == target.version.metadata() => (true, String::new()),
                    Ok(printed) => (
                        false,
                        metadata_difference(&printed, &target.version.metadata()),
                    ),
                    Err(err) => (false, format!("not the metadata YAML: {err}")),
                };
                row(
                    "metadata equals the repository's labels, requires, influences".to_owned(),
                    passed,
                    detail,
                );
            }
            "plan" | "audit" => {
                let ok_exit = report.exit_code == 0 || report.exit_code == 2;
                let unchanged = report.check == Check::Unchanged;
                let passed = ok_exit && unchanged && report.stopped.is_none();
                let detail = if !unchanged {
                    "changed the state".to_owned()
                } else if !passed {
                    failure(&report)
                } else {
                    format!("exit {}", report.exit_code)
                };
                row(
                    format!("{method} exits 0 or 2 and leaves the state unchanged"),
                    passed,
                    detail,
                );
            }
            "apply" => {
                row(
                    "apply exits 0 with a valid state".to_owned(),
                    report.succeeded(),
                    if report.succeeded() {
                        String::new()
                    } else {
                        failure(&report)
                    },
                );
                let state = session
                    .shared
                    .read_state()
                    .ok()
                    .flatten()
                    .map(|b| parse_mapping(&b));
                let has_section = matches!(&state, Some(Ok(map)) if map.contains_key(target.module.name.as_str()));
                row(
                    format!("apply writes its own `{}` section", target.module.name),
                    has_section,
                    if has_section {
                        String::new()
                    } else {
                        format!("state.yml has no `{}` key", target.module.name)
                    },
                );
            }
            _ => row(
                format!("{method} exits 0"),
                report.succeeded(),
                if report.succeeded() {
                    String::new()
                } else {
                    failure(&report)
                },
            ),
        }
    }
    Ok(rows)
}

/// Which of labels, requires and influences differ, for the report.
fn metadata_difference(printed: &Metadata, expected: &Metadata) -> String {
    let mut parts = Vec::new();
    if printed.labels != expected.labels {
        let differing: Vec<String> = expected
            .labels
            .iter()
            .filter(|(k, v)| printed.labels.get(*k) != Some(*v))
            .map(|(k, v)| {
                format!(
                    "{k}: expected `{v}`, printed `{}`",
                    printed.labels.get(k).map_or("(none)", String::as_str)
                )
            })
            .chain(
                printed
                    .labels
                    .keys()
                    .filter(|k| !expected.labels.contains_key(*k))
                    .map(|k| format!("{k}: not in the repository")),
            )
            .collect();
        parts.push(format!("labels differ ({})", differing.join("; ")));
    }
    if printed.requires != expected.requires {
        parts.push("requires differ".to_owned());
    }
    if printed.influences != expected.influences {
        parts.push("influences differ".to_owned());
    }
    parts.join(", ")
}
