//! `e search`: module versions that match a selector, or, with `--for`, what satisfies each
//! requirement of a module and why the near misses do not.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::SearchArgs;
use crate::commands::{ENTRY_HEADER, EntryView, entry_rows};
use crate::graph::{Index, Miss, Relation, requirements};
use crate::output;
use crate::repository::{Entry, ModuleSpec, Repository};

/// How many near misses to show per requirement.
const NEAR_MISSES: usize = 3;

/// Runs `e search`.
pub fn run(args: SearchArgs, context: &Context) -> anyhow::Result<ExitCode> {
    match (&args.selector, &args.for_module) {
        (_, Some(spec)) => {
            // Only the module and those its report can show are needed: from the cache, only
            // they are built. Never freed: e exits after the command, and freeing a large
            // repository one allocation at a time was a tenth of its time (`docs/benchmarks.md`).
            let repository = std::mem::ManuallyDrop::new(context.catalog_for(spec, NEAR_MISSES)?);
            let index = Index::new(&repository);
            search_for(&repository, &index, spec, args.output)
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

/// A near miss as it appears in JSON and YAML.
#[derive(Serialize)]
pub struct MissView<'r> {
    module: &'r str,
    version: &'r str,
    failed: Vec<String>,
}

impl<'r> From<Miss<'r>> for MissView<'r> {
    fn from(miss: Miss<'r>) -> Self {
        MissView {
            module: &miss.entry.module.name,
            version: miss.entry.version.version.as_str(),
            failed: miss.failed,
        }
    }
}

/// The report of every requirement of one module version.
pub fn requirement_reports<'r>(index: &Index<'r>, owner: Entry<'r>) -> Vec<RequirementReport<'r>> {
    requirements(owner)
        .into_iter()
        .map(|requirement| {
            let candidates = index.candidates(owner, requirement.selector);
            RequirementReport {
                relation: requirement.relation,
                number: requirement.index + 1,
                selector: requirement.selector.to_string(),
                candidates: candidates.into_iter().map(EntryView::from).collect(),
                near_misses: index
                    .near_misses(Some(owner), requirement.selector, NEAR_MISSES)
                    .into_iter()
                    .map(MissView::from)
                    .collect(),
            }
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

fn search_for(
    repository: &Repository,
    index: &Index<'_>,
    spec: &ModuleSpec,
    format: crate::cli::Format,
) -> anyhow::Result<ExitCode> {
    let owner = repository.find(spec)?;
    let reports = requirement_reports(index, owner);
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
            render_reports(&reports, "  ")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
