//! One file per subcommand, each with a `run` function that takes its parsed arguments.

pub mod apply;
pub mod audit;
pub mod build;
pub mod check;
pub mod completions;
pub mod destroy;
pub mod export;
pub mod graph;
pub mod history;
pub mod import;
pub mod info;
pub mod list;
pub mod method;
pub mod new;
pub mod push;
pub mod recover;
pub mod search;
pub mod state;
pub mod status;
pub mod upgrade;
pub mod validate;
pub mod version;

use crate::repository::Entry;
use crate::selector::Labels;

/// Labels that identify rather than describe, left out of one-line label summaries.
const NAMING_LABELS: [&str; 3] = ["name", "short", "version"];

/// A one-line summary of labels, `kind` first, for tables.
pub fn label_summary(labels: &Labels) -> String {
    let kind = labels.get("kind").map(|k| format!("kind={k}"));
    let rest = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "kind" && !NAMING_LABELS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"));
    kind.into_iter().chain(rest).collect::<Vec<_>>().join(" ")
}

/// A module version as it appears in JSON and YAML output.
#[derive(Debug, serde::Serialize)]
pub struct EntryView<'r> {
    /// Module name.
    pub module: &'r str,
    /// Version.
    pub version: &'r str,
    /// Whether it is marked latest.
    pub latest: bool,
    /// Container image.
    pub image: &'r str,
    /// Labels.
    pub labels: &'r Labels,
}

impl<'r> From<Entry<'r>> for EntryView<'r> {
    fn from(entry: Entry<'r>) -> Self {
        EntryView {
            module: &entry.module.name,
            version: entry.version.version.as_str(),
            latest: entry.version.latest,
            image: &entry.version.image,
            labels: &entry.version.labels,
        }
    }
}

/// Table rows for module versions: MODULE, VERSION, LATEST, LABELS.
pub fn entry_rows(entries: &[Entry<'_>]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            vec![
                e.module.name.clone(),
                e.version.version.to_string(),
                if e.version.latest {
                    "*".to_owned()
                } else {
                    String::new()
                },
                label_summary(&e.version.labels),
            ]
        })
        .collect()
}

/// The header matching [`entry_rows`].
pub const ENTRY_HEADER: [&str; 4] = ["MODULE", "VERSION", "LATEST", "LABELS"];
