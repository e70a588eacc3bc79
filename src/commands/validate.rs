//! `e validate`: loads the repository and checks it, and the shared state when there is one,
//! without an engine and without changing anything, like `terraform validate`: exit 0 when
//! valid (warnings may be printed), 1 when not. `-o json` prints Terraform's shape:
//! `{valid, error_count, warning_count, diagnostics: [{severity, summary, detail}]}`.
//!
//! Errors: a repository that does not load, strong requirements that form a cycle, a state
//! file or e's record of installed modules that cannot be read. Warnings: what loading warns
//! of, a strong requirement nothing in the repository satisfies (the module cannot be applied
//! without `--skip-requirements`), an installed module version the repository lacks.

use std::collections::HashMap;
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

/// How many unmet strong requirements are reported with their nearest misses; the rest are
/// reported without (finding near misses reads every module version).
const EXPLAINED_MISSES: usize = 20;

/// How many module versions caught in cycles are resolved to name their cycle.
const NAMED_CYCLES: usize = 10;

/// Every module version's strong requirements: one nothing in the repository satisfies is a
/// warning; requirements that can only be met through a cycle are an error, as
/// `e apply --with-requirements` would find it.
///
/// Resolving every version on its own walks the same requirements again and again (25 s for
/// 30,000 versions), so which versions can be installed at all is found first, in one pass:
/// a version is *grounded* when each of its strong requirements has a grounded candidate (of
/// another module), starting from the versions that require nothing. A version left
/// ungrounded once the requirements nothing satisfies are set aside is caught in a cycle; a
/// few of those are resolved, for the resolver's words naming the cycle.
fn check_requirements(repository: &Repository, diagnostics: &mut Vec<Diagnostic>) {
    let index = Index::new(repository);
    let entries = index.entries();
    let position: HashMap<(&str, &str), usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| ((e.module.name.as_str(), e.version.version.as_str()), i))
        .collect();
    // Each distinct selector is looked up once: versions mostly repeat their requirements.
    let mut selector_id: HashMap<String, usize> = HashMap::new();
    let mut satisfied_by: Vec<Vec<usize>> = Vec::new();
    let mut requirements: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    let mut unmet = vec![false; entries.len()];
    let mut misses = 0;
    for (owner, entry) in entries.iter().enumerate() {
        for selector in &entry.version.requires.strong {
            let id = *selector_id.entry(selector.to_string()).or_insert_with(|| {
                satisfied_by.push(
                    index
                        .select(selector)
                        .iter()
                        .map(|c| position[&(c.module.name.as_str(), c.version.version.as_str())])
                        .collect(),
                );
                satisfied_by.len() - 1
            });
            let by_others = satisfied_by[id]
                .iter()
                .any(|c| entries[*c].module.name != entry.module.name);
            if by_others {
                requirements[owner].push(id);
                continue;
            }
            unmet[owner] = true;
            misses += 1;
            let near_misses = if misses <= EXPLAINED_MISSES {
                index.near_misses(Some(*entry), selector, 3)
            } else {
                Vec::new()
            };
            let err = ResolveError::Unsatisfiable {
                path: vec![*entry],
                selector,
                near_misses,
            };
            let message = format!(
                "`{}` cannot be applied without `--skip-requirements`: {err}",
                entry.id()
            );
            diagnostics.push(Diagnostic::new(Severity::Warning, &message));
        }
    }
    // A version with a requirement nothing meets counts as grounded here: what depends on it
    // is not caught in a cycle, only stopped by that requirement, which is reported above.
    let grounded = ground(entries, &requirements, &satisfied_by, &unmet);
    let caught: Vec<usize> = (0..entries.len()).filter(|v| !grounded[*v]).collect();
    let mut cycles: Vec<Vec<String>> = Vec::new();
    for version in caught.iter().take(NAMED_CYCLES) {
        let Err(ResolveError::Cycle(path)) =
            resolve(&index, entries[*version], &Preferences::default())
        else {
            continue;
        };
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
    if caught.len() > NAMED_CYCLES {
        let more: Vec<String> = caught[NAMED_CYCLES..]
            .iter()
            .take(20)
            .map(|v| entries[*v].id())
            .collect();
        diagnostics.push(Diagnostic::new(
            Severity::Error,
            &format!(
                "{} more module version(s) can only meet their strong requirements through a cycle: {}{}\nhint: `e search --for MODULE` shows what satisfies each requirement; make one requirement of each cycle weak",
                caught.len() - NAMED_CYCLES,
                more.join(", "),
                if caught.len() - NAMED_CYCLES > more.len() { ", ..." } else { "" }
            ),
        ));
    }
}

/// Which versions can be installed, requirements first: the least fixpoint of "every strong
/// requirement has a grounded candidate of another module", found by counting, as for Horn
/// clauses. `unmet` versions count as grounded (see [`check_requirements`]).
fn ground(
    entries: &[crate::repository::Entry<'_>],
    requirements: &[Vec<usize>],
    satisfied_by: &[Vec<usize>],
    unmet: &[bool],
) -> Vec<bool> {
    // For each selector: the versions that wait for it, and the modules of its grounded
    // candidates (two are enough: the owner's module never satisfies its own requirement).
    let mut waiting: Vec<Vec<usize>> = vec![Vec::new(); satisfied_by.len()];
    let mut pending: Vec<usize> = vec![0; entries.len()];
    for (version, ids) in requirements.iter().enumerate() {
        let mut ids = ids.clone();
        ids.sort_unstable();
        ids.dedup();
        pending[version] = ids.len();
        for id in ids {
            waiting[id].push(version);
        }
    }
    let mut candidate_of: Vec<Vec<usize>> = vec![Vec::new(); entries.len()];
    for (id, candidates) in satisfied_by.iter().enumerate() {
        for candidate in candidates {
            candidate_of[*candidate].push(id);
        }
    }
    let mut grounded_modules: Vec<Vec<&str>> = vec![Vec::new(); satisfied_by.len()];
    let mut grounded = vec![false; entries.len()];
    let mut queue: Vec<usize> = (0..entries.len())
        .filter(|v| pending[*v] == 0 || unmet[*v])
        .collect();
    for version in &queue {
        grounded[*version] = true;
    }
    while let Some(version) = queue.pop() {
        let module = entries[version].module.name.as_str();
        for id in &candidate_of[version] {
            let modules = &mut grounded_modules[*id];
            if modules.len() >= 2 || modules.contains(&module) {
                continue;
            }
            modules.push(module);
            // The first grounded module satisfies every waiter of another module; the second,
            // the rest.
            let first = modules[0];
            let second = modules.len() == 2;
            waiting[*id].retain(|waiter| {
                let owner = entries[*waiter].module.name.as_str();
                if !second && owner == first {
                    return true;
                }
                pending[*waiter] -= 1;
                if pending[*waiter] == 0 && !grounded[*waiter] {
                    grounded[*waiter] = true;
                    queue.push(*waiter);
                }
                false
            });
        }
    }
    grounded
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A module of one version with a `kind` and the kinds it strongly requires.
    fn module(name: &str, kind: &str, requires: &[&str]) -> String {
        let mut text = format!(
            "- name: {name}\n  type: docker\n  versions:\n  - version: 0.1.0\n    image: e/{name}:1\n    labels: {{kind: {kind}}}\n"
        );
        if !requires.is_empty() {
            text.push_str("    requires:\n      strong:\n");
            for kind in requires {
                text.push_str(&format!(
                    "      - - {{key: kind, operator: eq, values: [{kind}]}}\n"
                ));
            }
        }
        text + "    commands: []\n"
    }

    fn findings(modules: &[String]) -> Vec<(Severity, String)> {
        let text = format!(
            "version: v1\nkind: Repository\ncomponents:\n{}",
            modules.concat()
        );
        let repository = repository::load::parse(&text, std::path::Path::new("r.yaml"))
            .expect("loads")
            .repository;
        let mut diagnostics = Vec::new();
        check_requirements(&repository, &mut diagnostics);
        diagnostics
            .into_iter()
            .map(|d| (d.severity, d.summary))
            .collect()
    }

    #[test]
    fn a_cycle_with_a_way_around_it_is_no_error() {
        // a needs an x; b is an x that needs a, but c is an x that needs nothing.
        let found = findings(&[
            module("a", "ka", &["x"]),
            module("b", "x", &["ka"]),
            module("c", "x", &[]),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_cycle_without_a_way_around_is_one_error_and_unmet_requirements_warnings() {
        let found = findings(&[
            module("a", "ka", &["kb"]),
            module("b", "kb", &["kc"]),
            module("c", "kc", &["ka"]),
            module("d", "kd", &["ka"]),
            module("e", "ke", &["nothing"]),
            module("f", "kf", &["ke"]),
        ]);
        let errors: Vec<_> = found
            .iter()
            .filter(|(s, _)| *s == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 1, "{found:?}");
        assert!(
            errors[0]
                .1
                .starts_with("strong requirements form a cycle: "),
            "{found:?}"
        );
        let warnings: Vec<_> = found
            .iter()
            .filter(|(s, _)| *s == Severity::Warning)
            .collect();
        // e's requirement is unmet; f is stopped by it, not by a cycle.
        assert_eq!(warnings.len(), 1, "{found:?}");
        assert!(
            warnings[0].1.starts_with("`e@0.1.0` cannot be applied"),
            "{found:?}"
        );
    }
}
