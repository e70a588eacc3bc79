//! `e status`: the modules present in the state, with their installed version and status.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::StatusArgs;
use crate::output;
use crate::state::{SharedDir, parse_mapping};

#[derive(Serialize)]
struct ModuleStatus {
    module: String,
    version: Option<String>,
    status: Option<String>,
    installed: bool,
}

/// Lists the modules of the state and the installed ones.
pub fn run(args: StatusArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let shared = SharedDir::open(&context.shared_path)?;
    let installed = shared.installed()?;
    let state = match shared.read_state()? {
        Some(bytes) => parse_mapping(&bytes)
            .map_err(|reason| anyhow::anyhow!("`{}` {reason}", shared.state_path().display()))?,
        None => Default::default(),
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
            });
        }
    }
    if let Some(text) = output::serialized(args.output, &modules)? {
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
                ]
            })
            .collect();
        output::data(&output::table(
            &["MODULE", "VERSION", "STATUS", "INSTALLED"],
            rows,
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
