//! `e destroy MODULE`: shows what will be destroyed and who uses it, asks, then runs the
//! module's `destroy`. Refused while an installed module is bound to it (`bindings.rs`),
//! whatever else could satisfy that module's requirement, unless `--force` (recorded).

use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::bindings::{self, BindingKind};
use crate::cli::DestroyArgs;
use crate::commands::method::pick;
use crate::commands::{approval, ended};
use crate::exit::{self, Two};
use crate::output;
use crate::repository::Entry;
use crate::requirements::dependents;
use crate::runtime::Engine;
use crate::store::SharedDir;
use crate::summary::Ended;

/// Runs `e destroy`.
pub async fn run(
    args: DestroyArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let target = args.module.to_string();
    let result = destroy(&args, context, engine).await;
    context.finish("destroy", &target, args.run.output, result)
}

/// Who uses a module: `module (for `selector`)` lines, strong and weak.
struct Users {
    strong: Vec<String>,
    weak: Vec<String>,
}

/// The installed modules that use `module`: by their bindings, or, for records made before
/// bindings, by labels.
fn users(
    module: &str,
    records: &std::collections::BTreeMap<String, crate::store::Installed>,
    installed: &crate::requirements::InstalledSet<'_>,
) -> Users {
    let mut users = Users {
        strong: Vec::new(),
        weak: Vec::new(),
    };
    for (record, binding) in bindings::bound_to(module, records) {
        let line = bindings::describe(record, binding);
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
    let by_labels = |list: Vec<Entry<'_>>| -> Vec<String> {
        list.iter()
            .filter(|e| unrecorded.contains(&e.module.name.as_str()))
            .map(|e| format!("{} (by its labels)", e.id()))
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
    let entry = pick(&repository, &shared, &args.module)?;
    let session = context.session(
        &repository,
        shared,
        engine,
        &format!("e destroy {}", entry.id()),
        &args.run,
    )?;
    let records = session.shared.installed()?;
    let users = users(&entry.module.name, &records, &session.installed()?);
    let mut notes = Vec::new();
    if !users.strong.is_empty() {
        if !args.force {
            bail!(
                "cannot destroy `{}`: installed modules use it:\n  {}\nhint: destroy them first (whatever else could satisfy their requirements, they were set up with this one), or pass `--force` to destroy it anyway (recorded in the history)",
                entry.id(),
                users.strong.join("\n  ")
            );
        }
        output::warn(&format!(
            "--force: destroying `{}` although {} use it",
            entry.id(),
            users.strong.join(", ")
        ));
        notes.push(format!("--force: used by {}", users.strong.join(", ")));
    }
    let mut what = format!("e will destroy `{}`", entry.id());
    match records.get(&entry.module.name) {
        Some(record) => what.push_str(&format!(
            ", installed {} by `{}`",
            crate::store::time::format(record.applied),
            record.command
        )),
        None => what.push_str(" (not recorded as installed)"),
    }
    what.push_str(&format!(
        "\n  used by:      {}",
        if users.strong.is_empty() {
            "nothing".to_owned()
        } else {
            users.strong.join(", ")
        }
    ));
    if !users.weak.is_empty() {
        what.push_str(&format!(
            "\n  used when present by: {} (they will do without it)",
            users.weak.join(", ")
        ));
    }
    output::note(&what);
    let question = format!("destroy `{}`?", entry.id());
    if !approval.confirm(&question, &format!("destroy `{}`", entry.id()))? {
        output::note("e: destroy cancelled; nothing was changed");
        return Ok(Ended::new(exit::FAILURE, "cancelled"));
    }
    let mut transaction = session.begin().await?;
    let report = session
        .run_in(
            &mut transaction,
            entry,
            "destroy",
            &args.extra,
            false,
            notes,
        )
        .await?;
    if report.kept.is_none() {
        if report.succeeded() {
            transaction.uninstall(&entry.module.name);
        }
        transaction.commit()?;
    }
    if report.succeeded() {
        output::note(&format!("e: `{}` is no longer installed", entry.id()));
        let id = session.shared.id()?;
        for mount in &entry.version.mounts {
            let volume = crate::run::volumes::volume_name(&id, &entry.module.name, mount);
            output::note(&format!(
                "e: its private data at `{mount}` stays in the engine volume `{volume}`; remove it with `docker volume rm {volume}` once you no longer need it"
            ));
        }
        return Ok(Ended::new(exit::SUCCESS, "destroyed"));
    }
    Ok(ended(&report, "destroy", Two::Failure))
}
