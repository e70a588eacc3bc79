//! The command line, as clap derive types. Doc comments here are the `--help` text.
//! No I/O happens here: arguments parse straight into domain types (`Selector`, `ModuleSpec`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::repository::ModuleSpec;
use crate::selector::Selector;

/// Orchestrate dockerized infrastructure modules.
///
/// e reads a module repository (repository.yaml), finds the modules that satisfy a
/// requirement, and shows how modules depend on and influence each other.
#[derive(Debug, Parser)]
#[command(name = "e", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Examples:\n  e list\n  e search 'kind=monitoring,core-technology in (prometheus)'\n  e search --for bmk\n  e info bmk@0.1.0\n  e graph bmk --format dot | dot -Tsvg > bmk.svg")]
pub struct Cli {
    /// The module repository file.
    #[arg(long, global = true, env = "E_REPOSITORY", default_value = "repository.yaml", value_name = "PATH")]
    pub repository: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of e.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the modules and versions of the repository.
    List(ListArgs),
    /// Find the module versions that match a selector, or that satisfy a module's requirements.
    Search(SearchArgs),
    /// Show everything about one module version: image, commands, labels, requirements.
    Info(InfoArgs),
    /// Draw the dependency graph as a text tree, Graphviz DOT or Mermaid.
    Graph(GraphArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Output formats for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    /// JSON, for scripts.
    Json,
    /// YAML, for scripts.
    Yaml,
}

/// Arguments of `e list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e search`.
#[derive(Debug, Args)]
#[command(after_help = "Selector syntax (Kubernetes set-based, plus semver operators), expressions joined by `,`:\n  key=value  key!=value  key in (a, b)  key notin (a, b)  key  !key\n  key>1.0.0  key>=1.0.0  key<2.0.0  key<=2.0.0  key semver (>=2.5, <3)\nQuote values with spaces or commas: name=\"Bare Metal Kafka\"")]
pub struct SearchArgs {
    /// The selector to match, e.g. `kind=monitoring,version>=0.1.0`.
    #[arg(required_unless_present = "for_module", conflicts_with = "for_module")]
    pub selector: Option<Selector>,

    /// Show, for each requirement of this module, what satisfies it and what comes close.
    #[arg(long = "for", value_name = "MODULE[@VERSION]")]
    pub for_module: Option<ModuleSpec>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The module, optionally with a version (default: its `latest`, else highest version).
    #[arg(value_name = "MODULE[@VERSION]")]
    pub module: ModuleSpec,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// How `e graph` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// An indented tree in the terminal.
    Tree,
    /// Graphviz DOT: `e graph --format dot | dot -Tsvg > graph.svg`.
    Dot,
    /// A Mermaid flowchart, for Markdown.
    Mermaid,
}

/// Arguments of `e graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Draw only what this module version reaches (default: the whole repository).
    #[arg(value_name = "MODULE[@VERSION]")]
    pub module: Option<ModuleSpec>,

    /// How to draw it. Strong edges are solid, weak dashed, influences dotted.
    #[arg(short, long, value_enum, default_value_t = GraphFormat::Tree)]
    pub format: GraphFormat,
}

/// Arguments of `e completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
