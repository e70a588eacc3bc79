//! `e recover`: the results kept aside from runs that failed, timed out, were interrupted or
//! whose e died (see `run/transaction.rs` and `run/recovery.rs`): list, show, commit, drop.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::{RecoverAction, RecoverArgs};
use crate::output;
use crate::run::check::Verdict;
use crate::run::recovery;
use crate::runtime::Engine;
use crate::store::SharedDir;

/// One kept result, as listed.
#[derive(Debug, Serialize)]
struct KeptView {
    run: String,
    module: String,
    version: String,
    method: String,
    started: String,
    by: String,
    why: String,
}

/// Runs `e recover`.
pub async fn run(
    args: RecoverArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let shared = SharedDir::open(&context.shared_path)?;
    let action = args.action.unwrap_or(RecoverAction::List);
    let command = match &action {
        RecoverAction::List => "e recover list".to_owned(),
        RecoverAction::Show { run } => format!("e recover show {run}"),
        RecoverAction::Commit { run } => format!("e recover commit {run}"),
        RecoverAction::Drop { run } => format!("e recover drop {run}"),
    };
    let _lock = shared.lock(&command, args.lock_timeout)?;
    // Runs of an e that died are settled first, so that they are listed too.
    if let Err(err) = recovery::settle_orphans(&shared, engine).await {
        output::warn(&format!("{err:#}"));
    }
    match action {
        RecoverAction::List => list(&shared, args.output),
        RecoverAction::Show { run } => show(&shared, &run),
        RecoverAction::Commit { run } => {
            let kept = recovery::open_kept(&shared, &run)?;
            recovery::commit_kept(&shared, kept, &command)?;
            output::note(&format!(
                "e: the result of run `{run}` is committed; the previous state.yml is in `state.yml.backup`"
            ));
            Ok(ExitCode::SUCCESS)
        }
        RecoverAction::Drop { run } => {
            let kept = recovery::open_kept(&shared, &run)?;
            kept.workspace.remove()?;
            output::note(&format!("e: the result of run `{run}` is dropped"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(shared: &SharedDir, format: crate::cli::Format) -> anyhow::Result<ExitCode> {
    let views: Vec<KeptView> = recovery::kept(shared)?
        .into_iter()
        .map(|w| KeptView {
            run: w.info.run.clone(),
            module: w.info.module.clone(),
            version: w.info.version.clone(),
            method: w.info.method.clone(),
            started: humantime::format_rfc3339_seconds(w.info.started).to_string(),
            by: format!("{} pid {}", w.info.owner, w.info.pid),
            why: w.info.kept.clone().unwrap_or_default(),
        })
        .collect();
    if let Some(text) = output::serialized(format, &views)? {
        output::data(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        output::note("e: no results are kept aside");
        return Ok(ExitCode::SUCCESS);
    }
    let rows = views
        .iter()
        .map(|v| {
            vec![
                v.run.clone(),
                format!("{}@{}", v.module, v.version),
                v.method.clone(),
                v.started.clone(),
                v.why.clone(),
            ]
        })
        .collect();
    output::data(&output::table(
        &["RUN", "MODULE", "METHOD", "STARTED", "WHY"],
        rows,
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn show(shared: &SharedDir, run: &str) -> anyhow::Result<ExitCode> {
    let kept = recovery::open_kept(shared, run)?;
    let info = &kept.workspace.info;
    let (live, verdict) = recovery::pending_change(shared, &kept)?;
    let mut text = format!(
        "run:      {}\nmodule:   {}@{}\nmethod:   {}\nstarted:  {} by {} pid {}\nkept:     {}\n",
        info.run,
        info.module,
        info.version,
        info.method,
        humantime::format_rfc3339_seconds(info.started),
        info.owner,
        info.pid,
        info.kept.clone().unwrap_or_default()
    );
    if info.live_digest.as_deref() != Some(live.digest().as_str()) {
        text.push_str("note:     the shared directory changed since the run started; it cannot be committed\n");
    }
    match verdict {
        Verdict::Unchanged => text.push_str("changes:  none\n"),
        Verdict::Changed(changes) => {
            let list = |items: &[String]| {
                if items.is_empty() {
                    "none".to_owned()
                } else {
                    items.join(", ")
                }
            };
            text.push_str(&format!(
                "sections: {}\nwritten:  {}\nremoved:  {}\n",
                list(&changes.sections),
                list(&changes.written),
                list(&changes.removed)
            ));
        }
    }
    if let Some(state) = kept.result.file("state.yml") {
        text.push_str("\n--- state.yml it left\n");
        text.push_str(&String::from_utf8_lossy(state));
    }
    output::data(&text)?;
    Ok(ExitCode::SUCCESS)
}
