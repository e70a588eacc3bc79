//! `e apply MODULE`: apply one module, then plan the installed modules it influences; with
//! `--with-requirements`, first install the chain of modules its strong requirements need,
//! in dependency order, after showing the plan and asking for confirmation.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Context;
use crate::cli::ApplyArgs;
use crate::commands::method::{exit_code, pick};
use crate::graph::{Preferences, resolve};
use crate::lifecycle::Session;
use crate::output;
use crate::repository::Entry;
use crate::runtime::Engine;
use crate::store::SharedDir;

/// Runs `e apply`.
pub async fn run(
    args: ApplyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, &args.module)?;
    // Applying another version of an installed module is an upgrade (or a downgrade): it goes
    // through `e upgrade`, which first has the new version audit the state.
    if let Some(installed) = shared.installed()?.get(&entry.module.name)
        && installed.version != entry.version.version.as_str()
    {
        anyhow::bail!(
            "`{}@{}` is installed; applying `{}` would change its version without an audit\nhint: run `e upgrade {} --to {}`",
            installed.module,
            installed.version,
            entry.id(),
            entry.module.name,
            entry.version.version
        );
    }
    let command = format!(
        "e apply {}{}",
        entry.id(),
        if args.with_requirements {
            " --with-requirements"
        } else {
            ""
        }
    );
    let session = context.session(&repository, shared, engine, &command, &args.run)?;
    if args.with_requirements {
        return stack(&session, entry, &args).await;
    }
    let report = session
        .apply(
            entry,
            &args.extra,
            args.skip_requirements,
            args.no_influences,
            Vec::new(),
        )
        .await?;
    Ok(exit_code(&report))
}

/// One module version of a stack and why it is in it.
struct Step<'r> {
    entry: Entry<'r>,
    why: String,
}

/// Resolves, shows, confirms and installs the chain of requirements, then the target.
async fn stack(
    session: &Session<'_>,
    target: Entry<'_>,
    args: &ApplyArgs,
) -> anyhow::Result<ExitCode> {
    let installed = session.installed()?;
    let preferences = Preferences {
        prefer: args.prefer.clone(),
        installed: installed
            .entries()
            .iter()
            .map(|e| (e.module.name.clone(), e.version.version.to_string()))
            .collect(),
    };
    for preferred in &args.prefer {
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
    if !args.auto_approve && !confirm(steps.len())? {
        output::note("e: nothing was changed");
        return Ok(ExitCode::FAILURE);
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
            return Ok(ExitCode::from(130));
        }
        let is_target = step.entry.module.name == target.module.name;
        let extra: &[String] = if is_target { &args.extra } else { &[] };
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
            if !(plan.succeeded() || plan.exit_code == 2 && !plan.refused && plan.stopped.is_none())
            {
                Some(("plan", plan))
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
            let code = exit_code(&report);
            return Ok(if code == ExitCode::SUCCESS {
                ExitCode::FAILURE
            } else {
                code
            });
        }
        done.push(step.entry.id());
    }
    listener.abort();
    output::note(&format!("\ne: installed {}", done.join(", ")));
    Ok(ExitCode::SUCCESS)
}

/// Asks the user to type `yes`, as terraform does; without a terminal, refuses.
fn confirm(count: usize) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to install {count} module version(s) without confirmation\nhint: review the plan above and pass `--auto-approve`"
        );
    }
    output::prompt("Do you want to install these? Only 'yes' will be accepted: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
