//! `e show PLAN`: a plan saved by `e plan --out`, for people (what was planned, from what)
//! or whole as JSON.

use std::process::ExitCode;

use crate::cli::ShowArgs;
use crate::output;
use crate::plan_file::{SavedPlan, short};

/// Prints the saved plan.
pub fn run(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let plan = SavedPlan::read(&args.file)?;
    if let Some(text) = output::serialized(args.output, &plan)? {
        output::data(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = vec![
        vec!["module".to_owned(), plan.id()],
        vec![
            "made".to_owned(),
            format!(
                "{} by e {}",
                crate::store::time::format(plan.created),
                plan.e_version
            ),
        ],
        vec![
            "image".to_owned(),
            format!("{} ({})", plan.image, short(&plan.image_id)),
        ],
        vec![
            "state".to_owned(),
            format!("lineage {} serial {}", plan.lineage, plan.serial),
        ],
        vec![
            "changes".to_owned(),
            if plan.changes { "yes" } else { "no" }.to_owned(),
        ],
    ];
    let mut text = output::table(&["PLAN", &args.file.display().to_string()], rows);
    text.push('\n');
    text.push_str(&plan.stdout);
    output::data(&text)?;
    Ok(ExitCode::SUCCESS)
}
