//! `e download MODULE... | --all`: fetches what the bills of materials of the modules (with
//! their strong requirements, as `e export` chooses them) name and this machine lacks, into
//! e's cache: files by `http(s)` URL in one downloader container, Debian packages with their
//! dependencies in a container of their release. `e export` does the same before it writes an
//! archive; this command does it alone, to fetch ahead or to check the URLs.

use std::process::ExitCode;

use crate::Context;
use crate::cli::DownloadArgs;
use crate::commands::export::{Chosen, closure, preferences};
use crate::graph::Index;
use crate::offline::bill;
use crate::output;
use crate::runtime::Engine;

/// One item of the report.
#[derive(Debug, serde::Serialize)]
struct Item {
    kind: &'static str,
    name: String,
    size: u64,
    path: String,
    result: String,
}

/// Runs `e download`.
pub async fn run(
    args: DownloadArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let index = Index::new(&repository);
    let chosen_by = Chosen {
        modules: &args.modules,
        all: args.all,
        with_weak: args.with_weak,
    };
    let entries = closure(
        &repository,
        &index,
        &chosen_by,
        &preferences(&context.shared_path)?,
    )?;
    let mut files = bill::files(&entries, &context.repository_path)?;
    let remote: Vec<bool> = files.iter().map(|f| f.remote).collect();
    let fetched: Vec<bool> = files.iter().map(|f| f.download.is_some()).collect();
    bill::fetch_files(engine, &mut files).await?;
    let mut items = Vec::new();
    for ((file, remote), fetched) in files.iter().zip(remote).zip(fetched) {
        let result = match (remote, fetched) {
            (_, true) => "downloaded, sha256 checked",
            (true, false) => "in the cache",
            (false, false) => "local",
        };
        items.push(Item {
            kind: "file",
            name: file.entry_path(),
            size: file.size,
            path: file.source.display().to_string(),
            result: result.to_owned(),
        });
    }
    let cache = crate::offline::cache_dir()?;
    let before: Vec<bool> = crate::offline::debian::sets(&entries)
        .iter()
        .map(|set| matches!(crate::offline::debian::cached(&cache, set), Ok(Some(_))))
        .collect();
    let packages = bill::packages(engine, &entries, &context.repository_path, false).await?;
    for (set, cached) in packages.iter().zip(before) {
        let Some(resolved) = &set.resolved else {
            continue;
        };
        items.push(Item {
            kind: "packages",
            name: format!("{}/ ({})", set.entry_dir(), set.set.names.join(" ")),
            size: set.size(),
            path: resolved.dir.display().to_string(),
            result: format!(
                "{} .deb with their dependencies, {}",
                resolved.packages(),
                if resolved.imported {
                    "imported beside the repository"
                } else if cached {
                    "in the cache"
                } else {
                    "downloaded and indexed"
                }
            ),
        });
    }
    if let Some(text) = output::serialized(args.output, &items)? {
        output::data(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() {
        output::note("e: the bills of materials of these modules name nothing to download");
        return Ok(ExitCode::SUCCESS);
    }
    let rows = items
        .iter()
        .map(|item| {
            vec![
                item.kind.to_owned(),
                item.name.clone(),
                output::size(item.size),
                item.result.clone(),
            ]
        })
        .collect();
    output::data(&output::table(&["KIND", "NAME", "SIZE", "RESULT"], rows))?;
    output::note(&format!("e: the download cache is `{}`", cache.display()));
    Ok(ExitCode::SUCCESS)
}
