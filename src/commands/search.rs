//! `e search`: module versions that match a selector, or, with `--for`, what satisfies each
//! requirement of a module and why the near misses do not.

use std::borrow::Cow;
use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::SearchArgs;
use crate::commands::{ENTRY_HEADER, EntryView, entry_rows};
use crate::graph::{Index, Miss, Relation, Requirement, requirements};
use crate::output;
use crate::repository::{Entry, Found};
use crate::selector::Selector;

/// How many near misses to show per requirement.
const NEAR_MISSES: usize = 3;

/// Runs `e search`.
pub fn run(args: SearchArgs, context: &Context) -> anyhow::Result<ExitCode> {
    match (&args.selector, &args.for_module) {
        (_, Some(spec)) => {
            // From the cache, only the module is built; the others are looked at where they lie.
            let from_cache = context.related(spec, NEAR_MISSES, |owner, found| {
                show_reports(owner, &found_reports(found), args.output)
            });
            if let Some(shown) = from_cache {
                return shown;
            }
            // Never freed: e exits after the command, and freeing a large repository one
            // allocation at a time was a tenth of its time (`docs/benchmarks.md`).
            let repository = std::mem::ManuallyDrop::new(context.catalog()?);
            let owner = repository.find(spec)?;
            let reports = requirement_reports(&Index::new(&repository), owner);
            show_reports(owner, &reports, args.output)
        }
        (Some(selector), None) => {
            // Only the modules with a match are needed: from the cache, only they are built (and,
            // as above, never freed: from the file, they are all of them).
            let repository = std::mem::ManuallyDrop::new(context.catalog_matching(selector)?);
            let index = Index::new(&repository);
            let found = index.select(selector);
            let views: Vec<EntryView<'_>> = found.iter().copied().map(EntryView::from).collect();
            match output::serialized(args.output, &views)? {
                Some(text) => output::data(&text)?,
                None if found.is_empty() => {
                    output::note(&format!("no module version matches `{selector}`"))
                }
                None => output::data(&output::table(&ENTRY_HEADER, entry_rows(&views)))?,
            }
            // Like grep: 1 when nothing matches, so scripts can test for a match.
            Ok(if found.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        (None, None) => unreachable!("clap requires a selector or --for"),
    }
}

/// One requirement with what satisfies it and what nearly does.
#[derive(Serialize)]
pub struct RequirementReport<'r> {
    relation: Relation,
    /// Counted from 1 within its relation, as shown in tables.
    number: usize,
    selector: String,
    candidates: Vec<EntryView<'r>>,
    near_misses: Vec<MissView<'r>>,
}

impl<'r> RequirementReport<'r> {
    /// The report of `requirement` with what satisfies it and its nearest misses.
    pub fn new(
        requirement: Requirement<'_>,
        candidates: Vec<EntryView<'r>>,
        near_misses: Vec<MissView<'r>>,
    ) -> RequirementReport<'r> {
        RequirementReport {
            relation: requirement.relation,
            number: requirement.index + 1,
            selector: requirement.selector.to_string(),
            candidates,
            near_misses,
        }
    }
}

/// A near miss as it appears in JSON and YAML.
#[derive(Serialize)]
pub struct MissView<'r> {
    module: Cow<'r, str>,
    version: Cow<'r, str>,
    failed: Vec<String>,
}

impl<'r> From<Miss<'r>> for MissView<'r> {
    fn from(miss: Miss<'r>) -> Self {
        MissView {
            module: Cow::Borrowed(&miss.entry.module.name),
            version: Cow::Borrowed(miss.entry.version.version.as_str()),
            failed: miss.failed,
        }
    }
}

impl<'r> MissView<'r> {
    /// The miss of `selector` by this version, with the expressions it fails.
    pub fn of(selector: &Selector, miss: EntryView<'r>) -> MissView<'r> {
        let failed = selector
            .failures_with(|key| miss.labels.get(key))
            .into_iter()
            .map(ToString::to_string)
            .collect();
        MissView {
            module: miss.module,
            version: miss.version,
            failed,
        }
    }
}

/// The reports of requirements with what the cache found for each (see
/// [`crate::repository::related`]).
pub fn found_reports<'r>(found: Vec<(Requirement<'_>, Found<'r>)>) -> Vec<RequirementReport<'r>> {
    found
        .into_iter()
        .map(|(requirement, found)| {
            let misses = found
                .misses
                .into_iter()
                .map(|miss| MissView::of(requirement.selector, miss))
                .collect();
            RequirementReport::new(requirement, found.candidates, misses)
        })
        .collect()
}

/// The report of every requirement of one module version.
pub fn requirement_reports<'r>(index: &Index<'r>, owner: Entry<'r>) -> Vec<RequirementReport<'r>> {
    requirements(owner)
        .into_iter()
        .map(|requirement| {
            let candidates = index.candidates(owner, requirement.selector);
            let misses = index.near_misses(Some(owner), requirement.selector, NEAR_MISSES);
            RequirementReport::new(
                requirement,
                candidates.into_iter().map(EntryView::from).collect(),
                misses.into_iter().map(MissView::from).collect(),
            )
        })
        .collect()
}

/// Renders requirement reports as indented text, as `e search --for` and `e info` show them.
pub fn render_reports(reports: &[RequirementReport<'_>], indent: &str) -> String {
    let mut text = String::new();
    for report in reports {
        text.push_str(&format!(
            "{indent}{} #{}  {}\n",
            report.relation, report.number, report.selector
        ));
        if report.candidates.is_empty() {
            text.push_str(&format!(
                "{indent}  satisfied by: nothing in the repository\n"
            ));
        } else {
            let ids: Vec<String> = report
                .candidates
                .iter()
                .map(|c| format!("{}@{}", c.module, c.version))
                .collect();
            text.push_str(&format!("{indent}  satisfied by: {}\n", ids.join(", ")));
        }
        if !report.near_misses.is_empty() {
            text.push_str(&format!("{indent}  close, but not:\n"));
            for miss in &report.near_misses {
                text.push_str(&format!(
                    "{indent}    {}@{}  fails {}\n",
                    miss.module,
                    miss.version,
                    miss.failed.join(", ")
                ));
            }
        }
    }
    text
}

/// Prints the reports of `owner`'s requirements as `format` asks.
fn show_reports(
    owner: Entry<'_>,
    reports: &[RequirementReport<'_>],
    format: crate::cli::Format,
) -> anyhow::Result<ExitCode> {
    if let Some(text) = output::serialized(format, &reports)? {
        output::data(&text)?;
    } else if reports.is_empty() {
        output::note(&format!(
            "`{}` has no requirements and influences nothing",
            owner.id()
        ));
    } else {
        output::data(&format!(
            "{} requirements:\n{}",
            owner.id(),
            render_reports(reports, "  ")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
