//! e orchestrates dockerized infrastructure modules.
//!
//! It loads a module repository (`repository`), evaluates label match-expressions
//! (`selector`), resolves requirements into a dependency graph (`graph`), and exposes all of
//! it through subcommands (`commands`). Only `output` writes to the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

pub mod archive;
pub mod bindings;
pub mod cli;
pub mod commands;
pub mod completion;
pub mod contract;
pub mod exit;
pub mod graph;
pub mod interrupt;
pub mod lifecycle;
pub mod offline;
pub mod output;
pub mod plan_file;
pub mod registry;
pub mod repository;
pub mod requirements;
pub mod run;
pub mod runtime;
pub mod secrets;
pub mod selector;
pub mod store;
pub mod summary;
pub mod yaml_emit;
pub mod yaml_limits;

use cli::{Cli, Command};
use repository::Repository;

/// What every command may need: where things are, loaded on demand.
#[derive(Debug)]
pub struct Context {
    /// The repository file.
    pub repository_path: PathBuf,
    /// The shared directory.
    pub shared_path: PathBuf,
    /// The secrets file, if any.
    pub secrets_path: Option<PathBuf>,
    /// How runs hand their copy to the engine; `None` lets the engine choose.
    pub transfer: Option<runtime::Transfer>,
    /// Every method run of this command, for its `-o json` document.
    pub runs: summary::RunLog,
}

impl Context {
    /// Loads the repository, printing its warnings.
    pub fn repository(&self) -> anyhow::Result<Repository> {
        Ok(Self::warned(repository::load(&self.repository_path)?))
    }

    /// Loads the repository for commands that never look at module commands (list, search,
    /// graph): they may be left empty, which makes a large cached repository faster to read.
    pub fn catalog(&self) -> anyhow::Result<Repository> {
        Ok(Self::warned(repository::load_without_commands(
            &self.repository_path,
        )?))
    }

    fn warned(loaded: repository::Loaded) -> Repository {
        for warning in &loaded.warnings {
            output::warn(warning);
        }
        loaded.repository
    }

    /// Locks the shared directory and opens a session for running methods in it.
    pub fn session<'a>(
        &'a self,
        repository: &'a Repository,
        shared: store::SharedDir,
        engine: &'a dyn runtime::Engine,
        command: &str,
        options: &cli::RunOptions,
    ) -> anyhow::Result<lifecycle::Session<'a>> {
        let mut session = lifecycle::Session::open(
            repository,
            shared,
            engine,
            self.secrets()?,
            command,
            options.lock_timeout,
        )?;
        session.log = Some(&self.runs);
        session.timeout = options.timeout;
        session.quiet = options.output != cli::Format::Table;
        session.transfer = self.transfer;
        Ok(session)
    }

    /// Ends a run command: its `-o json|yaml` document from this command's runs and the
    /// shared directory's serial after them (`summary.rs`), and its exit code.
    pub fn finish(
        &self,
        command: &str,
        target: &str,
        format: cli::Format,
        result: anyhow::Result<summary::Ended>,
    ) -> anyhow::Result<std::process::ExitCode> {
        summary::finish(command, target, format, &self.runs, self.serial(), result)
    }

    /// The shared directory's lineage and serial, if it has them (never creates anything).
    pub fn serial(&self) -> Option<store::Serial> {
        let bytes = std::fs::read(self.shared_path.join(store::serial::SERIAL_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The secrets for `${secret:NAME}` references (none without a secrets file).
    pub fn secrets(&self) -> anyhow::Result<secrets::Secrets> {
        match &self.secrets_path {
            Some(path) => secrets::Secrets::load(path),
            None => Ok(secrets::Secrets::default()),
        }
    }
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let context = Context {
        repository_path: cli.repository,
        shared_path: cli.shared,
        secrets_path: cli.secrets,
        transfer: match cli.transfer {
            cli::TransferChoice::Auto => None,
            cli::TransferChoice::Bind => Some(runtime::Transfer::Bind),
            cli::TransferChoice::Archive => Some(runtime::Transfer::Archive),
        },
        runs: summary::RunLog::default(),
    };
    let engine = runtime::docker::LazyDocker::default();
    match cli.command {
        Command::List(args) => commands::list::run(args, &context),
        Command::Search(args) => commands::search::run(args, &context),
        Command::Info(args) => commands::info::run(args, &context),
        Command::Graph(args) => commands::graph::run(args, &context),
        Command::Completions(args) => commands::completions::run(args),
        Command::Metadata(args) => commands::method::run("metadata", args, &context, &engine).await,
        Command::Init(args) => commands::method::run("init", args, &context, &engine).await,
        Command::Plan(args) => commands::method::plan(args, &context, &engine).await,
        Command::Apply(args) => commands::apply::run(args, &context, &engine).await,
        Command::Show(args) => commands::show::run(args),
        Command::Audit(args) => commands::audit::run(args, &context, &engine).await,
        Command::Run(args) => commands::method::run_command(args, &context, &engine).await,
        Command::Upgrade(args) => commands::upgrade::run(args, &context, &engine).await,
        Command::Destroy(args) => commands::destroy::run(args, &context, &engine).await,
        Command::Check(args) => commands::check::run(args, &context, &engine).await,
        Command::Build(args) => commands::build::run(args, &context, &engine).await,
        Command::State(args) => commands::state::run(args, &context).await,
        Command::Status(args) => commands::status::run(args, &context),
        Command::History(args) => commands::history::run(args, &context),
        Command::Export(args) => commands::export::run(args, &context, &engine).await,
        Command::Import(args) => commands::import::run(args, &context, &engine).await,
        Command::Push(args) => commands::push::run(args, &context, &engine).await,
        Command::Download(args) => commands::download::run(args, &context, &engine).await,
        Command::Serve(args) => commands::serve::run(args, &engine).await,
        Command::Validate(args) => commands::validate::run(args, &context),
        Command::New(args) => commands::new::run(args, &context),
        Command::Recover(args) => commands::recover::run(args, &context, &engine).await,
        Command::Version(args) => commands::version::run(args, &context).await,
    }
}
