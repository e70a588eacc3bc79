//! The verdicts of `e check`: what one method run (or the shared directory after it) says about
//! one promise of the module contract, with a hint for the author when it is broken. Pure: the
//! walk (`mod.rs`) runs the methods and hands their reports and the shared directory's content
//! here; nothing in this file touches the engine or the disk.

use crate::repository::model::Metadata;
use crate::run::tree::Tree;
use crate::run::{Check, Report};
use crate::runtime::Stopped;
use crate::store::{STATE_FILE, parse_mapping};

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The promise holds; a detail worth showing, or nothing.
    Pass(String),
    /// The promise is broken: what was seen, and what the author should do.
    Fail {
        /// What failed, with the module's own words where it gave any.
        detail: String,
        /// How to fix it.
        hint: String,
    },
    /// Not checked, and why (a method the version lacks, or an earlier step that failed).
    Skip(String),
}

fn fail(detail: impl Into<String>, hint: impl Into<String>) -> Verdict {
    Verdict::Fail {
        detail: detail.into(),
        hint: hint.into(),
    }
}

/// The last line a stream holds, trimmed (empty when it holds none).
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// The first line a stream holds, trimmed (empty when it holds none).
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// How a run ended, in a few words, with the last line it wrote to stderr: `exit 1: boom`.
pub fn ending(report: &Report) -> String {
    let mut detail = match (report.stopped, &report.check) {
        (Some(Stopped::Timeout), _) => "stopped by the timeout".to_owned(),
        (Some(Stopped::Interrupted), _) => "interrupted".to_owned(),
        (None, Check::Invalid(reason)) => {
            format!(
                "exit {}, and e refused what it left: {reason}",
                report.exit_code
            )
        }
        (None, _) => format!("exit {}", report.exit_code),
    };
    let last = last_line(&report.stderr);
    if !last.is_empty() {
        detail.push_str(&format!(": {last}"));
    }
    detail
}

/// Whether the container itself ended with `code` (e's refusal of its result is judged apart).
fn exited(report: &Report, code: i64) -> bool {
    report.stopped.is_none() && report.exit_code == code
}

/// The version declares every method the contract requires.
pub fn declared(missing: &[&str]) -> Verdict {
    if missing.is_empty() {
        Verdict::Pass(String::new())
    } else {
        fail(
            format!("missing: {}", missing.join(", ")),
            "add them to the version's `commands:` in the repository (docs/modules.md, \"Methods and exit codes\")",
        )
    }
}

/// `metadata` exits 0.
pub fn metadata_exit(report: &Report) -> Verdict {
    if exited(report, 0) {
        Verdict::Pass(String::new())
    } else {
        fail(
            ending(report),
            "`metadata` prints the version's labels, requires and influences as YAML and exits 0",
        )
    }
}

/// `metadata` prints exactly the repository's labels, requires and influences.
pub fn metadata_content(report: &Report, expected: &Metadata) -> Verdict {
    let hint = "print exactly the `labels`, `requires` and `influences` of this version in the repository, or change the repository to match";
    match serde_yaml::from_str::<Metadata>(&report.stdout) {
        Ok(printed) if printed == *expected => Verdict::Pass(String::new()),
        Ok(printed) => fail(metadata_difference(&printed, expected), hint),
        Err(err) => fail(format!("not the metadata YAML: {err}"), hint),
    }
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

/// `init` of `module` exits 0 with a result e accepts.
pub fn init_exit(module: &str, report: &Report) -> Verdict {
    if report.succeeded() {
        Verdict::Pass(String::new())
    } else {
        fail(
            ending(report),
            format!(
                "`init` writes `$E_CONFIG_FILE` from the state and exits 0; `e init {module}` in a shared directory of your own shows all it says"
            ),
        )
    }
}

/// The file name of a module's config in the shared directory (`$E_CONFIG_FILE`).
pub fn config_file(module: &str) -> String {
    format!("{module}-config.yml")
}

/// `init` wrote `$E_CONFIG_FILE`: a YAML mapping with the module's name as its only key.
pub fn config(module: &str, shared: &Tree) -> Verdict {
    let name = config_file(module);
    let hint = format!(
        "`init` writes `$E_CONFIG_FILE` (`{name}` in the shared directory), a mapping with `{module}:` as its only key"
    );
    let Some(bytes) = shared.file(&name) else {
        return fail(format!("no `{name}` after init"), hint);
    };
    match parse_mapping(bytes) {
        Err(reason) => fail(format!("`{name}` {reason}"), hint),
        Ok(mapping) => {
            let keys: Vec<String> = mapping.keys().map(key_text).collect();
            if keys == [module] {
                Verdict::Pass(String::new())
            } else if keys.is_empty() {
                fail(format!("`{name}` is empty"), hint)
            } else {
                fail(
                    format!("`{name}` has the keys `{}`", keys.join("`, `")),
                    hint,
                )
            }
        }
    }
}

/// A YAML key as the user would read it.
fn key_text(key: &serde_yaml::Value) -> String {
    match key {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// `plan` before the first apply reports changes: exit 2.
pub fn plan_before(report: &Report) -> Verdict {
    if exited(report, 2) {
        Verdict::Pass(String::new())
    } else if exited(report, 0) {
        fail(
            "exit 0 (no changes), although nothing is applied yet",
            "before the first apply there is everything to do: `plan` prints the changes and exits 2",
        )
    } else {
        fail(
            ending(report),
            "`plan` exits 0 when there is nothing to change, 2 when there is, 1 on an error",
        )
    }
}

/// `apply` of `module` exits 0 with a result e accepts.
pub fn apply_exit(module: &str, report: &Report) -> Verdict {
    if report.succeeded() {
        return Verdict::Pass(String::new());
    }
    let hint = if report.refused {
        "`apply` writes its own section and may change another's where it means to, but never deletes another module's section, empties the state or writes under `.e/` (docs/modules.md, \"The state\")".to_owned()
    } else {
        format!(
            "`apply` exits 0 when it succeeds; `e apply {module}` in a shared directory of your own shows all it says"
        )
    };
    fail(ending(report), hint)
}

/// After `apply`, the state has the module's own section with `status: applied`.
pub fn section(module: &str, shared: &Tree) -> Verdict {
    let hint = format!(
        "a successful `apply` writes its own section into `$E_STATE_FILE`, with `status: applied`: `{module}: {{status: applied, ...}}`"
    );
    let Some(bytes) = shared.file(STATE_FILE) else {
        return fail(format!("no `{STATE_FILE}` after apply"), hint);
    };
    let mapping = match parse_mapping(bytes) {
        Ok(mapping) => mapping,
        Err(reason) => return fail(format!("`{STATE_FILE}` {reason}"), hint),
    };
    let Some(own) = mapping.get(module) else {
        return fail(format!("`{STATE_FILE}` has no `{module}` section"), hint);
    };
    let Some(own) = own.as_mapping() else {
        return fail(format!("the `{module}` section is not a mapping"), hint);
    };
    match own.get("status") {
        Some(serde_yaml::Value::String(status)) if status == "applied" => {
            Verdict::Pass(String::new())
        }
        Some(other) => fail(
            format!("`{module}.status` is `{}`, not `applied`", key_text(other)),
            hint,
        ),
        None => fail(format!("the `{module}` section has no `status`"), hint),
    }
}

/// `plan` right after the module's own apply reports no changes: exit 0 (convergence).
pub fn plan_after(report: &Report) -> Verdict {
    if exited(report, 0) {
        Verdict::Pass(String::new())
    } else if exited(report, 2) {
        let printed = first_line(&report.stdout);
        fail(
            if printed.is_empty() {
                "exit 2 (changes) right after its own apply".to_owned()
            } else {
                format!("exit 2 (changes) right after its own apply: {printed}")
            },
            "`plan` compares the config with what `apply` recorded and exits 0 when they agree; a plan that never converges makes every apply look needed",
        )
    } else {
        fail(
            ending(report),
            "`plan` exits 0 when there is nothing to change, 2 when there is, 1 on an error",
        )
    }
}

/// A second `apply`, with nothing left to do, succeeds and changes no file (idempotence).
/// `before` and `after` are the shared directory's module-visible content around it.
pub fn second_apply(report: &Report, before: &Tree, after: &Tree) -> Verdict {
    if !report.succeeded() {
        return fail(
            format!("the second apply failed: {}", ending(report)),
            "`apply` with nothing left to do succeeds and changes nothing",
        );
    }
    let changed = changed_paths(before, after);
    if changed.is_empty() {
        return Verdict::Pass(String::new());
    }
    let sections = match &report.check {
        Check::Changed { keys } if !keys.is_empty() => {
            format!(" (sections `{}`)", keys.join("`, `"))
        }
        _ => String::new(),
    };
    let files: Vec<String> = changed
        .iter()
        .map(|path| {
            if path == STATE_FILE {
                format!("`{path}`{sections}")
            } else {
                format!("`{path}`")
            }
        })
        .collect();
    fail(
        format!("the second apply changed {}", files.join(", ")),
        "when the state already matches the config, `apply` leaves every byte as it is: no timestamps, counters or reordering (idempotence)",
    )
}

/// The paths whose entry differs between two trees (added, removed or changed), sorted.
fn changed_paths(before: &Tree, after: &Tree) -> Vec<String> {
    let mut paths: Vec<String> = before
        .entries
        .iter()
        .filter(|(path, node)| after.entries.get(*path) != Some(*node))
        .map(|(path, _)| path.clone())
        .chain(
            after
                .entries
                .keys()
                .filter(|path| !before.entries.contains_key(*path))
                .cloned(),
        )
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// `audit` right after the module's own apply reports no drift: exit 0.
pub fn audit_after(report: &Report) -> Verdict {
    if exited(report, 0) {
        Verdict::Pass(String::new())
    } else if exited(report, 2) {
        let printed = first_line(&report.stdout);
        fail(
            if printed.is_empty() {
                "exit 2 (drift) right after its own apply".to_owned()
            } else {
                format!("exit 2 (drift) right after its own apply: {printed}")
            },
            "`audit` compares the state with what `apply` recorded; right after apply nobody changed anything by hand, so it exits 0",
        )
    } else {
        fail(
            ending(report),
            "`audit` exits 0 when there is no drift, 2 when there is, 1 on an error",
        )
    }
}

/// `destroy` exits 0 and removes the module's own section.
pub fn destroy(module: &str, report: &Report, shared: &Tree) -> Verdict {
    let hint = format!(
        "`destroy` removes what the module made and its `{module}` section of `$E_STATE_FILE`, then exits 0"
    );
    if !report.succeeded() {
        return fail(ending(report), hint);
    }
    let left = shared
        .file(STATE_FILE)
        .map(parse_mapping)
        .is_some_and(|state| state.is_ok_and(|m| m.contains_key(module)));
    if left {
        fail(
            format!("`{STATE_FILE}` still has the `{module}` section"),
            hint,
        )
    } else {
        Verdict::Pass(String::new())
    }
}

/// `metadata`, `plan` and `audit` left the shared directory as they found it: `runs` names
/// each run (`plan before apply`) with its report.
pub fn read_only(runs: &[(&str, Report)]) -> Verdict {
    if runs.is_empty() {
        return Verdict::Skip("none of them ran".to_owned());
    }
    let refused: Vec<String> = runs
        .iter()
        .filter_map(|(name, report)| match &report.check {
            Check::Invalid(reason) => Some(format!("{name}: {reason}")),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        Verdict::Pass(String::new())
    } else {
        fail(
            refused.join("; "),
            "`metadata`, `plan` and `audit` only print: they write nothing under `$E_SHARED` (e refuses and drops such a result)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(exit_code: i64, stdout: &str, stderr: &str) -> Report {
        Report {
            exit_code,
            stopped: None,
            check: Check::Unchanged,
            refused: false,
            kept: None,
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            run: "run".to_owned(),
            image_id: "sha256:0".to_owned(),
            deadline: crate::run::Deadline::of(None, None),
            record: crate::store::Run {
                run: "run".to_owned(),
                module: "m".to_owned(),
                version: "1.0.0".to_owned(),
                command: "apply".to_owned(),
                started: std::time::SystemTime::UNIX_EPOCH,
                duration_ms: 0,
                exit_code: Some(exit_code),
                outcome: String::new(),
                changed_keys: Vec::new(),
                notes: Vec::new(),
                transfer: None,
                by: None,
            },
        }
    }

    fn refused(exit_code: i64, reason: &str) -> Report {
        Report {
            check: Check::Invalid(reason.to_owned()),
            refused: true,
            ..report(exit_code, "", "")
        }
    }

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            tree.insert_file(path, text.as_bytes().to_vec(), 0o644);
        }
        tree
    }

    fn detail(verdict: &Verdict) -> &str {
        match verdict {
            Verdict::Fail { detail, .. } => detail,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn ending_names_the_exit_the_refusal_and_the_last_error_line() {
        assert_eq!(
            ending(&report(1, "", "working\nerror: no nodes\n\n")),
            "exit 1: error: no nodes"
        );
        assert_eq!(
            ending(&refused(0, "`state.yml` is not a YAML mapping")),
            "exit 0, and e refused what it left: `state.yml` is not a YAML mapping"
        );
        let stopped = Report {
            stopped: Some(Stopped::Timeout),
            ..report(137, "", "")
        };
        assert_eq!(ending(&stopped), "stopped by the timeout");
    }

    #[test]
    fn config_must_be_a_mapping_under_the_module_name_only() {
        assert_eq!(
            config("m", &tree(&[("m-config.yml", "m:\n  size: 1\n")])),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&config("m", &tree(&[("state.yml", "a: 1\n")]))),
            "no `m-config.yml` after init"
        );
        assert_eq!(
            detail(&config("m", &tree(&[("m-config.yml", "")]))),
            "`m-config.yml` is empty"
        );
        assert_eq!(
            detail(&config(
                "m",
                &tree(&[("m-config.yml", "m: {}\nversion: 1\n")])
            )),
            "`m-config.yml` has the keys `m`, `version`"
        );
        assert!(
            detail(&config("m", &tree(&[("m-config.yml", "- a\n")])))
                .starts_with("`m-config.yml` ")
        );
    }

    #[test]
    fn section_needs_status_applied() {
        let state = |text| tree(&[("state.yml", text)]);
        assert_eq!(
            section("m", &state("a: 1\nm:\n  status: applied\n")),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&section("m", &state("a: 1\n"))),
            "`state.yml` has no `m` section"
        );
        assert_eq!(
            detail(&section("m", &state("m:\n  status: pending\n"))),
            "`m.status` is `pending`, not `applied`"
        );
        assert_eq!(
            detail(&section("m", &state("m:\n  size: 1\n"))),
            "the `m` section has no `status`"
        );
        assert_eq!(
            detail(&section("m", &state("m: [1]\n"))),
            "the `m` section is not a mapping"
        );
        assert_eq!(
            detail(&section("m", &Tree::default())),
            "no `state.yml` after apply"
        );
    }

    #[test]
    fn plan_changes_before_apply_and_none_after() {
        assert_eq!(
            plan_before(&report(2, "+ m\n", "")),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&plan_before(&report(0, "", ""))),
            "exit 0 (no changes), although nothing is applied yet"
        );
        assert_eq!(
            detail(&plan_before(&report(1, "", "error: no config"))),
            "exit 1: error: no config"
        );
        assert_eq!(
            plan_after(&report(0, "no changes", "")),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&plan_after(&report(2, "\n~ m.size: 1 -> 2\n", ""))),
            "exit 2 (changes) right after its own apply: ~ m.size: 1 -> 2"
        );
        // A plan refused for writing is judged by its exit code here, and in the read-only row.
        assert_eq!(
            plan_after(&refused(0, "`state.yml` was changed")),
            Verdict::Pass(String::new())
        );
    }

    #[test]
    fn audit_after_apply_is_clean() {
        assert_eq!(
            audit_after(&report(0, "", "")),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&audit_after(&report(2, "drift: m.size\n", ""))),
            "exit 2 (drift) right after its own apply: drift: m.size"
        );
    }

    #[test]
    fn second_apply_names_what_it_changed() {
        let before = tree(&[
            ("state.yml", "m:\n  count: 1\n"),
            ("m-config.yml", "m: {}\n"),
        ]);
        assert_eq!(
            second_apply(&report(0, "", ""), &before, &before.clone()),
            Verdict::Pass(String::new())
        );
        let after = tree(&[
            ("state.yml", "m:\n  count: 2\n"),
            ("m-config.yml", "m: {}\n"),
            ("dir/new", "x"),
        ]);
        let changed = Report {
            check: Check::Changed {
                keys: vec!["m".to_owned()],
            },
            ..report(0, "", "")
        };
        assert_eq!(
            detail(&second_apply(&changed, &before, &after)),
            "the second apply changed `dir`, `dir/new`, `state.yml` (sections `m`)"
        );
        assert_eq!(
            detail(&second_apply(&report(1, "", "boom"), &before, &before)),
            "the second apply failed: exit 1: boom"
        );
    }

    #[test]
    fn destroy_removes_the_section() {
        let gone = tree(&[("state.yml", "a: 1\n")]);
        let kept = tree(&[("state.yml", "a: 1\nm: {status: applied}\n")]);
        assert_eq!(
            destroy("m", &report(0, "", ""), &gone),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&destroy("m", &report(0, "", ""), &kept)),
            "`state.yml` still has the `m` section"
        );
        assert_eq!(
            detail(&destroy("m", &report(1, "", "busy"), &gone)),
            "exit 1: busy"
        );
    }

    #[test]
    fn read_only_names_each_run_that_wrote() {
        assert_eq!(
            read_only(&[("metadata", report(0, "", ""))]),
            Verdict::Pass(String::new())
        );
        assert_eq!(
            detail(&read_only(&[
                ("metadata", report(0, "", "")),
                ("plan before apply", refused(2, "`state.yml` was changed"))
            ])),
            "plan before apply: `state.yml` was changed"
        );
        assert_eq!(read_only(&[]), Verdict::Skip("none of them ran".to_owned()));
    }
}
