//! `e state`: the shared state file, exactly as the modules wrote it (or as JSON/YAML data);
//! `e state list|show|rm`: the state operations Terraform users repair things with, without
//! opening the YAML. `rm` cuts a section out of the bytes (`store/sections.rs`), commits it
//! with the installed record under the lock, and records it in the history.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::bail;
use serde::Serialize;

use crate::Context;
use crate::bindings;
use crate::cli::{Format, StateAction, StateArgs};
use crate::lifecycle::approve::Approval;
use crate::output;
use crate::store::sections::{section_text, without_section};
use crate::store::{BACKUP_FILE, Change, Run, STATE_FILE, SharedDir, parse_mapping};

/// Runs `e state` and its subcommands.
pub async fn run(args: StateArgs, context: &Context) -> anyhow::Result<ExitCode> {
    // Only `rm` writes; the others never create the shared directory.
    let read_only = || SharedDir::open_read_only(&context.shared_path);
    match args.action {
        None => print(&read_only()?, context, args.output),
        Some(StateAction::List) => list(&read_only()?, args.output),
        Some(StateAction::Show { module }) => show(&read_only()?, &module, args.output),
        Some(StateAction::Rm {
            module,
            auto_approve,
            lock_timeout,
        }) => remove(
            &SharedDir::open(&context.shared_path)?,
            &module,
            auto_approve,
            lock_timeout,
        ),
        Some(StateAction::Pull { dir }) => {
            super::state_backend::pull(&dir, context.backend()?).await
        }
        Some(StateAction::Migrate {
            to,
            force,
            lock_timeout,
        }) => {
            if to.starts_with("postgres://") || to.starts_with("postgresql://") {
                if context.backend.is_some() {
                    anyhow::bail!(
                        "`e state migrate --to URL` moves a shared directory into a backend, but `--backend` (or `E_BACKEND`) is set too\nhint: unset it; to move between backends, migrate into a directory first"
                    );
                }
                super::state_backend::migrate_in(&context.shared_path, &to, force, lock_timeout)
                    .await
            } else {
                super::state_backend::pull(std::path::Path::new(&to), context.backend()?).await
            }
        }
        Some(StateAction::Push {
            dir,
            force,
            lock_timeout,
        }) => super::state_backend::push(&dir, context.backend()?, force, lock_timeout).await,
    }
}

fn state_bytes(shared: &SharedDir) -> anyhow::Result<Option<Vec<u8>>> {
    let bytes = shared.read_state()?;
    if bytes.is_none() {
        output::note(&format!(
            "no state yet: `{}` does not exist",
            shared.state_path().display()
        ));
    }
    Ok(bytes)
}

fn mapping(shared: &SharedDir, bytes: &[u8]) -> anyhow::Result<serde_yaml::Mapping> {
    parse_mapping(bytes)
        .map_err(|reason| anyhow::anyhow!("`{}` {reason}", shared.state_path().display()))
}

fn print(shared: &SharedDir, context: &Context, format: Format) -> anyhow::Result<ExitCode> {
    let Some(bytes) = state_bytes(shared)? else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(serial) = context.serial() {
        output::note(&format!(
            "# lineage {}, serial {}",
            serial.lineage, serial.serial
        ));
    }
    match format {
        Format::Table => output::data(&String::from_utf8_lossy(&bytes))?,
        format => {
            let map = mapping(shared, &bytes)?;
            output::data(&output::serialized(format, &map)?.unwrap_or_default())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `e state list`.
#[derive(Serialize)]
struct Listed {
    module: String,
    status: Option<String>,
    installed: Option<String>,
    bound_by: Vec<String>,
}

fn list(shared: &SharedDir, format: Format) -> anyhow::Result<ExitCode> {
    let map = match shared.read_state()? {
        Some(bytes) => mapping(shared, &bytes)?,
        None => Default::default(),
    };
    let records = shared.installed()?;
    let listed: Vec<Listed> = map
        .iter()
        .filter_map(|(key, section)| {
            let module = key.as_str()?.to_owned();
            Some(Listed {
                status: section
                    .get("status")
                    .and_then(|s| s.as_str())
                    .map(str::to_owned),
                installed: records.get(&module).map(|r| r.version.clone()),
                bound_by: bindings::bound_to(&module, &records)
                    .iter()
                    .map(|(owner, _)| format!("{}@{}", owner.module, owner.version))
                    .collect(),
                module,
            })
        })
        .collect();
    if let Some(text) = output::serialized(format, &listed)? {
        output::data(&text)?;
    } else if listed.is_empty() {
        output::note("no module sections in the state");
    } else {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let rows = listed
            .iter()
            .map(|l| {
                vec![
                    l.module.clone(),
                    dash(&l.status),
                    dash(&l.installed),
                    if l.bound_by.is_empty() {
                        "-".to_owned()
                    } else {
                        l.bound_by.join(", ")
                    },
                ]
            })
            .collect();
        output::data(&output::table(
            &["MODULE", "STATUS", "INSTALLED", "BOUND BY"],
            rows,
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show(shared: &SharedDir, module: &str, format: Format) -> anyhow::Result<ExitCode> {
    let Some(bytes) = state_bytes(shared)? else {
        return Ok(ExitCode::FAILURE);
    };
    let map = mapping(shared, &bytes)?;
    let Some(section) = map.get(serde_yaml::Value::String(module.to_owned())) else {
        bail!("the state has no section `{module}`\nhint: `e state list` lists the sections");
    };
    let text = String::from_utf8_lossy(&bytes);
    match (format, section_text(&text, module)) {
        (Format::Table, Some(written)) => output::data(written)?,
        (Format::Table, None) => output::data(&serde_yaml::to_string(section)?)?,
        (format, _) => output::data(&output::serialized(format, section)?.unwrap_or_default())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn remove(
    shared: &SharedDir,
    module: &str,
    auto_approve: bool,
    lock_timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let _lock = shared.lock(&format!("e state rm {module}"), lock_timeout)?;
    let records = shared.installed()?;
    let bound = bindings::bound_to(module, &records);
    if !bound.is_empty() {
        let users: Vec<String> = bound
            .iter()
            .map(|(owner, b)| bindings::describe(owner, b))
            .collect();
        bail!(
            "cannot remove `{module}` from the state: installed modules are bound to it:\n  {}\nhint: remove or destroy them first",
            users.join("\n  ")
        );
    }
    let state = shared.read_state()?.unwrap_or_default();
    let has_section = parse_mapping(&state)
        .map(|m| m.contains_key(serde_yaml::Value::String(module.to_owned())))
        .unwrap_or(false);
    let record = records.get(module);
    if !has_section && record.is_none() {
        bail!(
            "the state has no section `{module}` and it is not installed\nhint: `e state list` lists the sections"
        );
    }
    let mut change = Change::default();
    if has_section {
        let after = without_section(&state, module).map_err(|why| {
            anyhow::anyhow!(
                "`{}` {why}\nhint: edit the file by hand (e keeps the previous state in `{BACKUP_FILE}` after every change)",
                shared.state_path().display()
            )
        })?;
        change.write(STATE_FILE, after);
        change.write(BACKUP_FILE, state.clone());
    }
    if record.is_some() {
        let mut rest = records.clone();
        rest.remove(module);
        change.write(".e/installed.json", serde_json::to_vec_pretty(&rest)?);
    }
    output::note(&format!(
        "e will remove from the state, without running `{module}`:{}{}\n  what it made stays where it is, and its config file stays",
        if has_section {
            format!("\n  its section `{module}` of state.yml")
        } else {
            String::new()
        },
        record.map_or_else(String::new, |r| format!(
            "\n  its installed record ({}@{})",
            r.module, r.version
        )),
    ));
    let question = format!("remove `{module}` from the state?");
    if !Approval::from_flag(auto_approve).confirm(&question, &format!("remove `{module}`"))? {
        output::note("e: nothing was changed");
        return Ok(ExitCode::FAILURE);
    }
    let entry = Run {
        run: crate::run::new_run_id(),
        module: module.to_owned(),
        version: record.map(|r| r.version.clone()).unwrap_or_default(),
        command: "state rm".to_owned(),
        started: SystemTime::now(),
        duration_ms: 0,
        exit_code: None,
        outcome: "ok".to_owned(),
        changed_keys: if has_section {
            vec![module.to_owned()]
        } else {
            Vec::new()
        },
        notes: vec!["removed by hand with `e state rm`; the module was not run".to_owned()],
        transfer: None,
        by: Some(crate::store::machine::who()),
    };
    change.write(
        shared.history_path(&entry),
        serde_json::to_vec_pretty(&entry)?,
    );
    shared.commit(change, &entry.run)?;
    output::note(&format!("e: `{module}` is no longer in the state"));
    Ok(ExitCode::SUCCESS)
}
