//! `e status`: the modules present in the state, with their installed version, their status,
//! whom each installed module is bound to (`bindings.rs`) and whether its strong requirements
//! still hold; and the state's lineage and serial.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::StatusArgs;
use crate::graph::Relation;
use crate::output;
use crate::requirements::{InstalledSet, statuses};
use crate::store::{SharedDir, parse_mapping};

#[derive(Serialize)]
struct ModuleStatus {
    module: String,
    version: Option<String>,
    status: Option<String>,
    installed: bool,
    /// For installed modules: the strong requirements no installed module satisfies any more
    /// (empty when all hold); `None` when it cannot be told.
    unmet_requirements: Option<Vec<String>>,
    /// For installed modules: the module it uses for each requirement (`None`: recorded
    /// before e kept bindings).
    bindings: Option<Vec<crate::bindings::Binding>>,
}

/// The whole answer, for `-o json` and `-o yaml`.
#[derive(Serialize)]
struct Status {
    lineage: Option<String>,
    serial: Option<u64>,
    modules: Vec<ModuleStatus>,
}

/// Lists the modules of the state and the installed ones.
pub fn run(args: StatusArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let shared = SharedDir::open_read_only(&context.shared_path)?;
    let installed = shared.installed()?;
    let state = match shared.read_state()? {
        Some(bytes) => parse_mapping(&bytes)
            .map_err(|reason| anyhow::anyhow!("`{}` {reason}", shared.state_path().display()))?,
        None => Default::default(),
    };
    // The labels of installed versions come from the repository; without one, say so.
    let repository = match context.catalog() {
        Ok(repository) => Some(repository),
        Err(err) => {
            output::warn(&format!("cannot tell whether requirements hold: {err:#}"));
            None
        }
    };
    let set = repository
        .as_ref()
        .map(|r| InstalledSet::new(r, &installed));
    let unmet = |module: &str| -> Option<Vec<String>> {
        let set = set.as_ref()?;
        let entry = set.get(module)?;
        Some(
            statuses(entry, set)
                .iter()
                .filter(|s| s.relation == Relation::Strong && !s.met())
                .map(|s| s.selector.to_string())
                .collect(),
        )
    };
    let mut modules: Vec<ModuleStatus> = state
        .iter()
        .filter_map(|(key, section)| {
            let module = key.as_str()?.to_owned();
            let status = section
                .get("status")
                .and_then(|s| s.as_str())
                .map(str::to_owned);
            let record = installed.get(&module);
            Some(ModuleStatus {
                version: record.map(|r| r.version.clone()),
                installed: record.is_some(),
                unmet_requirements: record.and_then(|_| unmet(&module)),
                bindings: record.and_then(|r| r.bindings.clone()),
                status,
                module,
            })
        })
        .collect();
    for (module, record) in &installed {
        if !modules.iter().any(|m| &m.module == module) {
            modules.push(ModuleStatus {
                module: module.clone(),
                version: Some(record.version.clone()),
                status: None,
                installed: true,
                unmet_requirements: unmet(module),
                bindings: record.bindings.clone(),
            });
        }
    }
    let serial = context.serial();
    let status = Status {
        lineage: serial.as_ref().map(|s| s.lineage.clone()),
        serial: serial.as_ref().map(|s| s.serial),
        modules,
    };
    let modules = &status.modules;
    if let Some(text) = output::serialized(args.output, &status)? {
        output::data(&text)?;
    } else if modules.is_empty() {
        output::note("no modules in the state yet");
    } else {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let rows = modules
            .iter()
            .map(|m| {
                vec![
                    m.module.clone(),
                    dash(&m.version),
                    dash(&m.status),
                    if m.installed { "yes" } else { "no" }.to_owned(),
                    match (&m.unmet_requirements, m.installed) {
                        (_, false) => "-".to_owned(),
                        (None, true) => "unknown".to_owned(),
                        (Some(unmet), true) if unmet.is_empty() => "met".to_owned(),
                        (Some(unmet), true) => format!("UNMET: {}", unmet.join("; ")),
                    },
                    match &m.bindings {
                        None if m.installed => "(not recorded)".to_owned(),
                        None => "-".to_owned(),
                        Some(list) if list.is_empty() => "-".to_owned(),
                        Some(list) => list
                            .iter()
                            .map(|b| format!("{}@{}", b.module, b.version))
                            .collect::<Vec<_>>()
                            .join(", "),
                    },
                ]
            })
            .collect();
        output::data(&output::table(
            &[
                "MODULE",
                "VERSION",
                "STATUS",
                "INSTALLED",
                "REQUIREMENTS",
                "USES",
            ],
            rows,
        ))?;
    }
    if args.output == crate::cli::Format::Table
        && let Some(serial) = &serial
    {
        output::note(&format!(
            "state: lineage {}, serial {}",
            serial.lineage, serial.serial
        ));
    }
    Ok(ExitCode::SUCCESS)
}
