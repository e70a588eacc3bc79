//! `e state`: the shared state file, exactly as the modules wrote it (or as JSON/YAML data).

use std::process::ExitCode;

use crate::Context;
use crate::cli::{Format, StateArgs};
use crate::output;
use crate::store::{SharedDir, parse_mapping};

/// Prints the state.
pub fn run(args: StateArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let shared = SharedDir::open_read_only(&context.shared_path)?;
    let Some(bytes) = shared.read_state()? else {
        output::note(&format!(
            "no state yet: `{}` does not exist",
            shared.state_path().display()
        ));
        return Ok(ExitCode::SUCCESS);
    };
    match args.output {
        Format::Table => output::data(&String::from_utf8_lossy(&bytes))?,
        format => {
            let map = parse_mapping(&bytes).map_err(|reason| {
                anyhow::anyhow!("`{}` {reason}", shared.state_path().display())
            })?;
            output::data(&output::serialized(format, &map)?.unwrap_or_default())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
