//! `e metadata|init|plan|apply|audit MODULE` and `e run MODULE COMMAND`: one method of one
//! module version, in its container, with the shared state kept safe (see `crate::method`).

use std::process::ExitCode;
use std::time::SystemTime;

use crate::Context;
use crate::cli::RunOptions;
use crate::method::{self, Options, Report};
use crate::output;
use crate::repository::{Entry, ModuleSpec, Repository};
use crate::runtime::{Engine, Stopped};
use crate::state::{Installed, SharedDir};

/// Finds the version to run: the one named, else the installed one, else the default.
pub fn pick<'r>(repository: &'r Repository, shared: &SharedDir, spec: &ModuleSpec) -> anyhow::Result<Entry<'r>> {
    if spec.version.is_none()
        && let Some(installed) = shared.installed()?.get(&spec.module)
    {
        let pinned = ModuleSpec { module: spec.module.clone(), version: Some(installed.version.clone()) };
        return repository.find(&pinned);
    }
    repository.find(spec)
}

/// The exit code e gives for a report: the container's, or 124 for a timeout and 130 for an
/// interrupt (as `timeout` and shells do), or 1 when the state had to be restored.
pub fn exit_code(report: &Report) -> ExitCode {
    match report.stopped {
        Some(Stopped::Timeout) => return ExitCode::from(124),
        Some(Stopped::Interrupted) => return ExitCode::from(130),
        None => {}
    }
    match report.exit_code {
        0 if report.restored => ExitCode::FAILURE,
        code => ExitCode::from(u8::try_from(code).unwrap_or(1)),
    }
}

/// Runs one method, holding the lock for its whole length.
pub async fn run(
    method_name: &str,
    spec: &ModuleSpec,
    options: &RunOptions,
    extra: &[String],
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let shared = SharedDir::open(&context.shared_path)?;
    let entry = pick(&repository, &shared, spec)?;
    let command_line = format!("e {method_name} {}", entry.id());
    // Every method takes the lock, even `metadata`: any container could write to the state,
    // and the snapshot it is checked against must not be taken while another e works.
    let lock = shared.lock(&command_line, options.lock_timeout)?;
    let run_options = Options { timeout: options.timeout, secrets: context.secrets()?, ..Options::default() };
    let report = method::run(engine, &shared, &lock, entry, method_name, extra, &run_options).await?;
    if method_name == "apply" && report.succeeded() {
        let image = engine.ensure_image(&entry.version.image).await?;
        shared.set_installed(Installed {
            module: entry.module.name.clone(),
            version: entry.version.version.to_string(),
            image: entry.version.image.clone(),
            image_id: image.id,
            applied: SystemTime::now(),
            command: command_line,
        })?;
        output::note(&format!("e: `{}` is installed", entry.id()));
    }
    Ok(exit_code(&report))
}
