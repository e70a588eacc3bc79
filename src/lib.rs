//! e orchestrates dockerized infrastructure modules.
//!
//! It loads a module repository (`repository`), evaluates label match-expressions
//! (`selector`), resolves requirements into a dependency graph (`graph`), and exposes all of
//! it through subcommands (`commands`). Only `output` writes to the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

pub mod cli;
pub mod commands;
pub mod graph;
pub mod output;
pub mod repository;
pub mod selector;

use cli::{Cli, Command};
use repository::Repository;

/// What every command may need: where things are, loaded on demand.
#[derive(Debug)]
pub struct Context {
    /// The repository file.
    pub repository_path: PathBuf,
}

impl Context {
    /// Loads the repository, printing its warnings.
    pub fn repository(&self) -> anyhow::Result<Repository> {
        let loaded = repository::load(&self.repository_path)?;
        for warning in &loaded.warnings {
            output::warn(warning);
        }
        Ok(loaded.repository)
    }
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let context = Context { repository_path: cli.repository };
    match cli.command {
        Command::List(args) => commands::list::run(args, &context),
        Command::Search(args) => commands::search::run(args, &context),
        Command::Info(args) => commands::info::run(args, &context),
        Command::Graph(args) => commands::graph::run(args, &context),
        Command::Completions(args) => commands::completions::run(args),
    }
}
