//! A stack: `e apply MODULE --with-requirements` resolves the chain of modules its strong
//! requirements need, shows it, asks once, then runs init, plan and (when the plan has
//! changes) apply of each in dependency order. Modules with no requirement or influence
//! between them run side by side, up to `--parallelism` (`schedule.rs`), their commits merged
//! (`store/merge.rs`). The first failure stops new starts, with a report of what ran, what
//! failed and what never started.

use std::cell::{Cell, RefCell};

use crate::exit::{self, Two};
use crate::graph::{Preferences, resolve};
use crate::lifecycle::Session;
use crate::lifecycle::approve::Approval;
use crate::lifecycle::schedule::{self, Outcome};
use crate::output;
use crate::repository::Entry;
use crate::run::Report;
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
    /// How many modules may run at the same time.
    pub parallelism: usize,
}

/// One module version of a stack and why it is in it.
struct Step<'r> {
    entry: Entry<'r>,
    why: String,
}

/// Resolves, shows, confirms and installs the chain of requirements, then the target.
pub async fn apply(
    session: &mut Session<'_>,
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

    run_steps(session, target, &steps, args).await
}

/// Runs the steps side by side where they allow it (see [`needs`]) and reports how they ended.
async fn run_steps(
    session: &mut Session<'_>,
    target: Entry<'_>,
    steps: &[Step<'_>],
    args: &StackArgs<'_>,
) -> anyhow::Result<Ended> {
    let needs = needs(steps);
    session.prefix_output = args.parallelism > 1 && schedule::overlap(&needs);
    let session = &*session;
    // A Ctrl-C during a method stops its container (and so its step); one between methods
    // is noticed by the scheduler, before the next step starts.
    let interrupted = crate::interrupt::Watch::start();
    let failures: RefCell<Vec<(usize, &'static str, Report)>> = RefCell::new(Vec::new());
    let started = Cell::new(0);
    let outcomes = schedule::run(&needs, args.parallelism, interrupted.stopped(), |i| {
        let step = &steps[i];
        started.set(started.get() + 1);
        output::note(&format!(
            "\ne: [{}/{}] {}",
            started.get(),
            steps.len(),
            step.entry.id()
        ));
        let is_target = step.entry.module.name == target.module.name;
        let extra: &[String] = if is_target { args.extra } else { &[] };
        let note = vec![format!("stack for {}", target.id())];
        let failures = &failures;
        async move {
            let failure = install(session, step.entry, extra, args.no_influences, note).await?;
            let succeeded = failure.is_none();
            if let Some((method, report)) = failure {
                failures.borrow_mut().push((i, method, report));
            }
            Ok(succeeded)
        }
    })
    .await;
    Ok(report(steps, &outcomes?, &failures.into_inner()))
}

/// Says what was installed, what failed and what never started; the stack's end.
fn report(
    steps: &[Step<'_>],
    outcomes: &[Outcome],
    failures: &[(usize, &'static str, Report)],
) -> Ended {
    let names: Vec<String> = steps.iter().map(|s| s.entry.id()).collect();
    let ids = |outcome: Outcome| schedule::named(&names, outcomes, outcome);
    if let Some((i, method, report)) = failures.first() {
        let mut why = format!(
            "`{}` {method} failed (exit {})",
            steps[*i].entry.id(),
            report.exit_code
        );
        for (i, method, report) in &failures[1..] {
            why.push_str(&format!(
                ", `{}` {method} failed (exit {})",
                steps[*i].entry.id(),
                report.exit_code
            ));
        }
        output::note(&format!(
            "\ne: stopped: {why}; the state is as the successful steps left it\n  installed: {}\n  failed:    {}\n  not run:   {}",
            ids(Outcome::Succeeded),
            ids(Outcome::Failed),
            ids(Outcome::NotStarted),
        ));
        let mut ended = Ended::of(report, Two::Failure);
        if ended.code == exit::SUCCESS {
            ended = Ended::new(exit::FAILURE, "failed");
        }
        return ended;
    }
    if outcomes.contains(&Outcome::NotStarted) {
        output::note(&format!(
            "\ne: interrupted\n  installed: {}\n  not run:   {}",
            ids(Outcome::Succeeded),
            ids(Outcome::NotStarted)
        ));
        return Ended::new(exit::INTERRUPTED, "interrupted");
    }
    output::note(&format!("\ne: installed {}", ids(Outcome::Succeeded)));
    Ended::new(exit::SUCCESS, "applied")
}

/// Runs init, plan and (when the plan has changes) apply of one step; the method that
/// failed and its report, or `None` when the step is done.
async fn install(
    session: &Session<'_>,
    entry: Entry<'_>,
    extra: &[String],
    no_influences: bool,
    note: Vec<String>,
) -> anyhow::Result<Option<(&'static str, Report)>> {
    let init = session.run(entry, "init", &[], false, note.clone()).await?;
    if !init.succeeded() {
        return Ok(Some(("init", init)));
    }
    let plan = session.run(entry, "plan", &[], false, note.clone()).await?;
    if !plan.answered() {
        return Ok(Some(("plan", plan)));
    }
    if plan.exit_code == 0 {
        output::note(&format!(
            "e: `{}`: no changes; apply was not run",
            entry.id()
        ));
        return Ok(None);
    }
    let apply = session
        .apply(entry, extra, false, no_influences, note)
        .await?;
    Ok((!apply.succeeded()).then_some(("apply", apply)))
}

/// For each step, the earlier steps it must wait for: those it requires (strongly, or weakly
/// when they are in the stack), and those it influences or that influence it, so that a
/// module never runs beside one whose section it may read.
fn needs(steps: &[Step<'_>]) -> Vec<Vec<usize>> {
    let related = |a: Entry<'_>, b: Entry<'_>| {
        let v = a.version;
        v.requires
            .strong
            .iter()
            .chain(&v.requires.weak)
            .chain(&v.influences)
            .any(|selector| selector.matches(&b.version.labels))
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            (0..i)
                .filter(|&j| {
                    related(step.entry, steps[j].entry) || related(steps[j].entry, step.entry)
                })
                .collect()
        })
        .collect()
}
