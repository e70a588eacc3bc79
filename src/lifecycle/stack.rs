//! A stack: `e apply MODULE --with-requirements` resolves the chain of modules its strong
//! requirements need, shows it, asks once, then runs init, plan and (when the plan has
//! changes) apply of each in dependency order, stopping at the first failure with a report of
//! what ran, what failed and what never started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exit::{self, Two};
use crate::graph::{Preferences, resolve};
use crate::lifecycle::Session;
use crate::lifecycle::approve::Approval;
use crate::output;
use crate::repository::Entry;
use crate::summary::Ended;

/// What a stack is asked to do beyond its target.
#[derive(Debug)]
pub struct StackArgs<'a> {
    /// Modules to choose first when several satisfy a requirement.
    pub prefer: &'a [String],
    /// Arguments after `--`, for the target's apply.
    pub extra: &'a [String],
    /// Do not plan influenced modules after each apply.
    pub no_influences: bool,
}

/// One module version of a stack and why it is in it.
struct Step<'r> {
    entry: Entry<'r>,
    why: String,
}

/// Resolves, shows, confirms and installs the chain of requirements, then the target.
pub async fn apply(
    session: &Session<'_>,
    target: Entry<'_>,
    args: &StackArgs<'_>,
    approval: Approval,
) -> anyhow::Result<Ended> {
    let installed = session.installed()?;
    let preferences = Preferences {
        prefer: args.prefer.to_vec(),
        installed: installed
            .entries()
            .iter()
            .map(|e| (e.module.name.clone(), e.version.version.to_string()))
            .collect(),
    };
    for preferred in args.prefer {
        if session.repository.module(preferred).is_none() {
            anyhow::bail!(
                "--prefer `{preferred}`: no such module in the repository\nhint: `e list` shows the modules"
            );
        }
    }
    let resolution =
        resolve(&session.index, target, &preferences).map_err(|err| anyhow::anyhow!("{err}"))?;
    let is_installed = |e: &Entry<'_>| {
        installed
            .get(&e.module.name)
            .is_some_and(|i| i.version.version == e.version.version)
    };
    let steps: Vec<Step<'_>> = resolution
        .order
        .iter()
        .filter(|e| !is_installed(e) || e.module.name == target.module.name)
        .map(|entry| {
            let why = match resolution
                .choices
                .iter()
                .find(|c| c.chosen.module.name == entry.module.name)
            {
                None => "the module you asked for".to_owned(),
                Some(choice) => {
                    let mut why = format!(
                        "satisfies `{}` of {}: {}",
                        choice.selector,
                        choice.owner.id(),
                        choice.reason
                    );
                    if !choice.alternatives.is_empty() {
                        let others: Vec<String> =
                            choice.alternatives.iter().map(Entry::id).collect();
                        why.push_str(&format!(
                            "; also possible: {} (choose with --prefer)",
                            others.join(", ")
                        ));
                    }
                    why
                }
            };
            Step { entry: *entry, why }
        })
        .collect();

    // A stack installs what is missing; changing the version of an installed module is an
    // upgrade, which must go through the new version's audit.
    for step in &steps {
        if let Some(current) = installed.get(&step.entry.module.name)
            && step.entry.module.name != target.module.name
        {
            anyhow::bail!(
                "the stack for `{}` needs `{}`, but `{}` is installed\nhint: upgrade it first with `e upgrade {} --to {}`, which audits the state before changing it",
                target.id(),
                step.entry.id(),
                current.id(),
                step.entry.module.name,
                step.entry.version.version
            );
        }
    }

    let mut plan = format!(
        "e will install {} module version(s), in this order:\n",
        steps.len()
    );
    for (i, step) in steps.iter().enumerate() {
        plan.push_str(&format!(
            "  {}. {:<16} {}\n",
            i + 1,
            step.entry.id(),
            step.why
        ));
    }
    let already: Vec<String> = resolution
        .order
        .iter()
        .filter(|e| is_installed(e) && e.module.name != target.module.name)
        .map(Entry::id)
        .collect();
    if !already.is_empty() {
        plan.push_str(&format!(
            "already installed and used: {}\n",
            already.join(", ")
        ));
    }
    output::note(&plan);
    let question = format!("install these {} module version(s)?", steps.len());
    if !approval.confirm(
        &question,
        &format!("install {} module version(s)", steps.len()),
    )? {
        output::note("e: nothing was changed");
        return Ok(Ended::new(exit::FAILURE, "cancelled"));
    }

    // A Ctrl-C during a method stops its container (and so the stack); one between methods
    // is noticed here, before the next step starts.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    let listener = tokio::spawn(async move {
        crate::interrupt::requested().await;
        flag.store(true, Ordering::SeqCst);
    });
    let mut done: Vec<String> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if interrupted.load(Ordering::SeqCst) {
            let not_run: Vec<String> = steps[i..].iter().map(|s| s.entry.id()).collect();
            output::note(&format!(
                "\ne: interrupted\n  installed: {}\n  not run:   {}",
                if done.is_empty() {
                    "nothing".to_owned()
                } else {
                    done.join(", ")
                },
                not_run.join(", ")
            ));
            listener.abort();
            return Ok(Ended::new(exit::INTERRUPTED, "interrupted"));
        }
        let is_target = step.entry.module.name == target.module.name;
        let extra: &[String] = if is_target { args.extra } else { &[] };
        output::note(&format!(
            "\ne: [{}/{}] {}",
            i + 1,
            steps.len(),
            step.entry.id()
        ));
        let note = vec![format!("stack for {}", target.id())];
        let init = session
            .run(step.entry, "init", &[], false, note.clone())
            .await?;
        let failure = if !init.succeeded() {
            Some(("init", init))
        } else {
            let plan = session
                .run(step.entry, "plan", &[], false, note.clone())
                .await?;
            if !plan.answered() {
                Some(("plan", plan))
            } else if plan.exit_code == 0 {
                output::note(&format!(
                    "e: `{}`: no changes; apply was not run",
                    step.entry.id()
                ));
                None
            } else {
                let apply = session
                    .apply(step.entry, extra, false, args.no_influences, note)
                    .await?;
                (!apply.succeeded()).then_some(("apply", apply))
            }
        };
        if let Some((method, report)) = failure {
            let not_run: Vec<String> = steps[i + 1..].iter().map(|s| s.entry.id()).collect();
            output::note(&format!(
                "\ne: stopped: `{}` {method} failed (exit {}); the state is as the last successful step left it\n  installed: {}\n  failed:    {}\n  not run:   {}",
                step.entry.id(),
                report.exit_code,
                if done.is_empty() {
                    "nothing".to_owned()
                } else {
                    done.join(", ")
                },
                step.entry.id(),
                if not_run.is_empty() {
                    "nothing".to_owned()
                } else {
                    not_run.join(", ")
                },
            ));
            listener.abort();
            let mut ended = Ended::of(&report, Two::Failure);
            if ended.code == exit::SUCCESS {
                ended = Ended::new(exit::FAILURE, "failed");
            }
            return Ok(ended);
        }
        done.push(step.entry.id());
    }
    listener.abort();
    output::note(&format!("\ne: installed {}", done.join(", ")));
    Ok(Ended::new(exit::SUCCESS, "applied"))
}
