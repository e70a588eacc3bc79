//! `e destroy MODULE...`: shows what will be destroyed and who uses it, asks once, then runs
//! each module's `destroy`. Refused while an installed module that is not being destroyed
//! too is bound to one of them, whatever else could satisfy that module's requirement,
//! unless `--force` (recorded). Several modules go users first: each once every listed
//! module that uses it is gone, side by side where nothing relates them (`--parallelism`,
//! as `lifecycle/stack.rs` runs a stack).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::bindings::{self, BindingKind};
use crate::cli::DestroyArgs;
use crate::commands::method::pick;
use crate::commands::{approval, ended};
use crate::exit::{self, Two};
use crate::lifecycle::Session;
use crate::lifecycle::schedule::{self, Outcome};
use crate::output;
use crate::repository::Entry;
use crate::requirements::dependents;
use crate::run::Report;
use crate::runtime::Engine;
use crate::store::{Installed, SharedDir};
use crate::summary::Ended;

/// Runs `e destroy`.
pub async fn run(
    args: DestroyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = args
        .modules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let result = destroy(&args, context, engine).await;
    context.finish("destroy", &target, args.run.output, result)
}

/// Who uses a module: `module (for `selector`)` lines, strong and weak, with the module of
/// each line.
#[derive(Default)]
struct Users {
    strong: Vec<(String, String)>,
    weak: Vec<(String, String)>,
}

impl Users {
    /// The users that are not among `going`, as lines.
    fn outside(list: &[(String, String)], going: &[Entry<'_>]) -> Vec<String> {
        list.iter()
            .filter(|(module, _)| !going.iter().any(|e| e.module.name == *module))
            .map(|(_, line)| line.clone())
            .collect()
    }
}

/// The installed modules that use `module`: by their bindings, or, for records made before
/// bindings, by labels.
fn users(
    module: &str,
    records: &BTreeMap<String, Installed>,
    installed: &crate::requirements::InstalledSet<'_>,
) -> Users {
    let mut users = Users::default();
    for (record, binding) in bindings::bound_to(module, records) {
        let line = (record.module.clone(), bindings::describe(record, binding));
        match binding.relation {
            BindingKind::Strong => users.strong.push(line),
            BindingKind::Weak => users.weak.push(line),
        }
    }
    let unrecorded: Vec<&str> = bindings::unrecorded(records)
        .iter()
        .map(|r| r.module.as_str())
        .collect();
    let (strong, weak) = dependents(module, installed);
    let by_labels = |list: Vec<Entry<'_>>| -> Vec<(String, String)> {
        list.iter()
            .filter(|e| unrecorded.contains(&e.module.name.as_str()))
            .map(|e| (e.module.name.clone(), format!("{} (by its labels)", e.id())))
            .collect()
    };
    users.strong.extend(by_labels(strong));
    users.weak.extend(by_labels(weak));
    users
}

async fn destroy(
    args: &DestroyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<Ended> {
    let approval = approval(args.auto_approve, args.run.output, "destroy")?;
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let mut listed: Vec<Entry<'_>> = Vec::new();
    for spec in &args.modules {
        let entry = pick(&repository, &shared, spec)?;
        if listed.iter().any(|e| e.module.name == entry.module.name) {
            bail!(
                "`{}` is listed twice\nhint: name each module once",
                entry.module.name
            );
        }
        listed.push(entry);
    }
    let ids: Vec<String> = listed.iter().map(Entry::id).collect();
    let mut session = context.session(
        &repository,
        shared,
        engine,
        &format!("e destroy {}", ids.join(" ")),
        &args.run,
    )?;
    let records = session.shared.installed()?;
    let installed = session.installed()?;
    let entries = users_first(&listed, &records)?;
    // What each run's history record notes (`--force`), by module, in `entries` order.
    let mut notes: Vec<Vec<String>> = vec![Vec::new(); entries.len()];
    let mut what = String::new();
    for (i, entry) in entries.iter().enumerate() {
        let users = users(&entry.module.name, &records, &installed);
        let strong = Users::outside(&users.strong, &entries);
        if !strong.is_empty() {
            if !args.force {
                bail!(
                    "cannot destroy `{}`: installed modules use it:\n  {}\nhint: destroy them first, or with it (whatever else could satisfy their requirements, they were set up with this one), or pass `--force` to destroy it anyway (recorded in the history)",
                    entry.id(),
                    strong.join("\n  ")
                );
            }
            output::warn(&format!(
                "--force: destroying `{}` although {} use it",
                entry.id(),
                strong.join(", ")
            ));
            notes[i].push(format!("--force: used by {}", strong.join(", ")));
        }
        what.push_str(&describe(*entry, &records, &users, &entries));
    }
    output::note(what.trim_end());
    let (question, action) = match entries.as_slice() {
        [entry] => (
            format!("destroy `{}`?", entry.id()),
            format!("destroy `{}`", entry.id()),
        ),
        _ => (
            format!("destroy these {} modules?", entries.len()),
            format!("destroy {} modules", entries.len()),
        ),
    };
    if !approval.confirm(&question, &action)? {
        output::note("e: destroy cancelled; nothing was changed");
        return Ok(Ended::new(exit::FAILURE, "cancelled"));
    }
    if let [entry] = entries.as_slice() {
        let report = session
            .destroy(*entry, &args.extra, notes.remove(0))
            .await?;
        return destroyed(&session, *entry, &report).await;
    }
    let needs = needs(&entries, &records);
    session.prefix_output = args.parallelism > 1 && schedule::overlap(&needs);
    destroy_all(&session, &entries, &needs, args, notes).await
}

/// What `e destroy` says of one module before it asks.
fn describe(
    entry: Entry<'_>,
    records: &BTreeMap<String, Installed>,
    users: &Users,
    going: &[Entry<'_>],
) -> String {
    let mut what = format!("e will destroy `{}`", entry.id());
    match records.get(&entry.module.name) {
        Some(record) => what.push_str(&format!(
            ", installed {} by `{}`",
            crate::store::time::format(record.applied),
            record.command
        )),
        None => what.push_str(" (not recorded as installed)"),
    }
    let lines = |list: &[(String, String)]| -> Vec<String> {
        list.iter().map(|(_, line)| line.clone()).collect()
    };
    let strong = lines(&users.strong);
    what.push_str(&format!(
        "\n  used by:      {}",
        if strong.is_empty() {
            "nothing".to_owned()
        } else {
            strong.join(", ")
        }
    ));
    let going_too: Vec<&str> = users
        .strong
        .iter()
        .chain(&users.weak)
        .filter(|(module, _)| going.iter().any(|e| e.module.name == *module))
        .map(|(module, _)| module.as_str())
        .collect();
    if !going_too.is_empty() {
        what.push_str(&format!(
            "\n  after:        {} (destroyed first)",
            going_too.join(", ")
        ));
    }
    let weak = Users::outside(&users.weak, going);
    if !weak.is_empty() {
        what.push_str(&format!(
            "\n  used when present by: {} (they will do without it)",
            weak.join(", ")
        ));
    }
    what.push('\n');
    what
}

/// Whether installed `user` uses `used`: bound to it, or requiring (strongly or weakly)
/// what its labels offer.
fn uses(user: Entry<'_>, used: Entry<'_>, records: &BTreeMap<String, Installed>) -> bool {
    let bound = records
        .get(&user.module.name)
        .and_then(|record| record.bindings.as_ref())
        .is_some_and(|list| list.iter().any(|b| b.module == used.module.name));
    let v = user.version;
    bound
        || v.requires
            .strong
            .iter()
            .chain(&v.requires.weak)
            .any(|selector| selector.matches(&used.version.labels))
}

/// The listed modules in the order they go: every module after the listed modules that use
/// it, otherwise as listed.
fn users_first<'r>(
    listed: &[Entry<'r>],
    records: &BTreeMap<String, Installed>,
) -> anyhow::Result<Vec<Entry<'r>>> {
    let mut left: Vec<Entry<'r>> = listed.to_vec();
    let mut order = Vec::new();
    while !left.is_empty() {
        let next = (0..left.len()).find(|&i| {
            !left
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && uses(*other, left[i], records))
        });
        let Some(i) = next else {
            let ids: Vec<String> = left.iter().map(Entry::id).collect();
            bail!(
                "cannot order the destroys of {}: they use each other\nhint: destroy them one at a time, with `--force` for the first",
                ids.join(", ")
            );
        };
        order.push(left.remove(i));
    }
    Ok(order)
}

/// For each module (in [`users_first`] order), the earlier ones it waits for: those that use
/// it, and those it influences or that influence it, so that a module never runs beside one
/// whose section it may read.
fn needs(entries: &[Entry<'_>], records: &BTreeMap<String, Installed>) -> Vec<Vec<usize>> {
    let influences = |a: Entry<'_>, b: Entry<'_>| {
        a.version
            .influences
            .iter()
            .any(|selector| selector.matches(&b.version.labels))
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            (0..i)
                .filter(|&j| {
                    let other = entries[j];
                    uses(other, *entry, records)
                        || uses(*entry, other, records)
                        || influences(other, *entry)
                        || influences(*entry, other)
                })
                .collect()
        })
        .collect()
}

/// Destroys the modules side by side where `needs` allows and reports how they ended.
async fn destroy_all(
    session: &Session<'_>,
    entries: &[Entry<'_>],
    needs: &[Vec<usize>],
    args: &DestroyArgs,
    notes: Vec<Vec<String>>,
) -> anyhow::Result<Ended> {
    let interrupted = crate::interrupt::Watch::start();
    let reports: RefCell<Vec<Option<Report>>> = RefCell::new(vec![None; entries.len()]);
    let outcomes = schedule::run(needs, args.parallelism.into(), interrupted.stopped(), |i| {
        let entry = entries[i];
        let notes = notes[i].clone();
        let reports = &reports;
        async move {
            output::note(&format!("\ne: destroying `{}`", entry.id()));
            let report = session.destroy(entry, &args.extra, notes).await?;
            let succeeded = report.succeeded();
            destroyed(session, entry, &report).await?;
            reports.borrow_mut()[i] = Some(report);
            Ok(succeeded)
        }
    })
    .await;
    Ok(report(entries, &outcomes?, &reports.into_inner()))
}

/// Says how one destroy ended: what is left of the module, or why it failed.
async fn destroyed(
    session: &Session<'_>,
    entry: Entry<'_>,
    report: &Report,
) -> anyhow::Result<Ended> {
    if !report.succeeded() {
        return Ok(ended(report, "destroy", Two::Failure));
    }
    output::note(&format!("e: `{}` is no longer installed", entry.id()));
    let id = session.shared.id()?;
    for mount in &entry.version.mounts {
        let volume = crate::run::volumes::volume_name(&id, &entry.module.name, mount);
        output::note(&format!(
            "e: its private data at `{mount}` stays in the engine volume `{volume}`; remove it with `docker volume rm {volume}` once you no longer need it"
        ));
    }
    Ok(Ended::new(exit::SUCCESS, "destroyed"))
}

/// Says what was destroyed, what failed and what never started; the command's end.
fn report(entries: &[Entry<'_>], outcomes: &[Outcome], reports: &[Option<Report>]) -> Ended {
    let names: Vec<String> = entries.iter().map(Entry::id).collect();
    let ids = |outcome: Outcome| schedule::named(&names, outcomes, outcome);
    let failed = outcomes.contains(&Outcome::Failed);
    if failed || outcomes.contains(&Outcome::NotStarted) {
        output::note(&format!(
            "\ne: {}\n  destroyed: {}\n  failed:    {}\n  not run:   {}",
            if failed { "stopped" } else { "interrupted" },
            ids(Outcome::Succeeded),
            ids(Outcome::Failed),
            ids(Outcome::NotStarted),
        ));
        if !failed {
            return Ended::new(exit::INTERRUPTED, "interrupted");
        }
        let first = reports
            .iter()
            .zip(outcomes)
            .find_map(|(r, o)| (*o == Outcome::Failed).then_some(r.as_ref()).flatten());
        return match first.map(|r| Ended::of(r, Two::Failure)) {
            Some(ended) if ended.code != exit::SUCCESS => ended,
            _ => Ended::new(exit::FAILURE, "failed"),
        };
    }
    output::note(&format!("\ne: destroyed {}", ids(Outcome::Succeeded)));
    Ended::new(exit::SUCCESS, "destroyed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::{Repository, load};

    /// Modules `a`, `b`, `c`: `a` requires `b` (strongly), `b` requires `c` (weakly), and, if
    /// `cycle`, `c` requires `a`.
    fn repository(cycle: bool) -> Repository {
        let module = |name: &str, requires: &str| {
            format!(
                "- name: {name}\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: x/{name}:1\n    labels: {{kind: {name}}}\n{requires}"
            )
        };
        let requires = |strength: &str, kind: &str| {
            format!(
                "    requires:\n      {strength}:\n      - [{{key: kind, operator: eq, values: [{kind}]}}]\n"
            )
        };
        let text = format!(
            "version: v1\nkind: Repository\ncomponents:\n{}{}{}",
            module("a", &requires("strong", "b")),
            module("b", &requires("weak", "c")),
            module(
                "c",
                &if cycle {
                    requires("strong", "a")
                } else {
                    String::new()
                }
            ),
        );
        load::parse(&text, std::path::Path::new("test.yaml"))
            .unwrap()
            .repository
    }

    fn listed<'r>(repository: &'r Repository, names: &[&str]) -> Vec<Entry<'r>> {
        names
            .iter()
            .map(|name| repository.find(&name.parse().unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn users_go_before_what_they_use_whatever_the_order_listed() {
        let repository = repository(false);
        for names in [["c", "b", "a"], ["a", "b", "c"], ["b", "c", "a"]] {
            let order = users_first(&listed(&repository, &names), &BTreeMap::new()).unwrap();
            let ids: Vec<String> = order.iter().map(Entry::id).collect();
            assert_eq!(ids, ["a@1.0.0", "b@1.0.0", "c@1.0.0"], "listed {names:?}");
        }
    }

    #[test]
    fn listed_modules_that_use_each_other_are_refused() {
        let repository = repository(true);
        let err = users_first(&listed(&repository, &["a", "b", "c"]), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "cannot order the destroys of a@1.0.0, b@1.0.0, c@1.0.0: they use each other\nhint: destroy them one at a time, with `--force` for the first"
        );
        // Without one of the cycle, the rest can be ordered.
        let order = users_first(&listed(&repository, &["b", "a"]), &BTreeMap::new()).unwrap();
        assert_eq!(
            order.iter().map(Entry::id).collect::<Vec<_>>(),
            ["a@1.0.0", "b@1.0.0"]
        );
    }
}
