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
mod json_scalar;
pub mod lifecycle;
pub mod offline;
pub mod output;
pub mod parallel;
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
    /// The backend (`--backend`), if the environment lives in one.
    pub backend: Option<String>,
    /// The command's private mirror of the backend's environment, if it uses one: then
    /// `shared_path` is its directory.
    pub mirror: Option<store::mirror::Mirror>,
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

    /// Loads the repository for `e search SELECTOR`: it may hold only the modules with a
    /// version the selector matches (see [`repository::load_matching`]).
    pub fn catalog_matching(&self, selector: &selector::Selector) -> anyhow::Result<Repository> {
        Ok(Self::warned(repository::load_matching(
            &self.repository_path,
            selector,
        )?))
    }

    /// For `e search --for SPEC`, from the cache: gives `show` the version `spec` names and what
    /// satisfies or nearly satisfies each of its requirements, after the load's warnings (see
    /// [`repository::related`]); `None` when the cache cannot answer.
    pub fn related<T>(
        &self,
        spec: &repository::ModuleSpec,
        near_misses: usize,
        show: impl FnOnce(
            repository::Entry<'_>,
            Vec<(graph::Requirement<'_>, repository::Found<'_>)>,
        ) -> T,
    ) -> Option<T> {
        repository::related(
            &self.repository_path,
            spec,
            near_misses,
            |owner, found, warnings| {
                for warning in warnings {
                    output::warn(warning);
                }
                show(owner, found)
            },
        )
    }

    /// Gives `show` what `make` makes of every module version, after the load's warnings (see
    /// [`repository::listing::list`]).
    pub fn listing<R: Send, T>(
        &self,
        make: impl Fn(repository::EntryView<'_>) -> R + Sync,
        show: impl FnOnce(Vec<R>) -> T,
    ) -> anyhow::Result<T> {
        Ok(repository::listing::list(
            &self.repository_path,
            make,
            |made, warnings| {
                for warning in warnings {
                    output::warn(warning);
                }
                show(made)
            },
        )?)
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
        session.mirror = self.mirror.as_ref();
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

    /// The backend `--backend` (or `E_BACKEND`) names; an error when none does.
    pub fn backend(&self) -> anyhow::Result<&str> {
        self.backend.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "no backend given\nhint: pass `--backend postgres://USER@HOST:PORT/DB?schema=NAME` or set `E_BACKEND` (docs/backends.md)"
            )
        })
    }

    /// The secrets for `${secret:NAME}` references (none without a secrets file).
    pub fn secrets(&self) -> anyhow::Result<secrets::Secrets> {
        match &self.secrets_path {
            Some(path) => secrets::Secrets::load(path),
            None => Ok(secrets::Secrets::default()),
        }
    }
}

/// Runs one parsed command line: against the shared directory, or against a private mirror
/// of the backend's environment (`store/mirror.rs`), synced when the command ends.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let access = match &cli.backend {
        Some(_) => store::mirror::access(&cli.command),
        None => store::mirror::Access::None,
    };
    let mirror = match (&cli.backend, access) {
        (Some(url), access) if access != store::mirror::Access::None => {
            let command: Vec<String> = std::env::args().collect();
            Some(store::mirror::Mirror::open(url, access, &command.join(" ")).await?)
        }
        _ => None,
    };
    let mut context = Context {
        shared_path: mirror.as_ref().map_or(cli.shared, |m| m.path()),
        repository_path: cli.repository,
        secrets_path: cli.secrets,
        transfer: match cli.transfer {
            cli::TransferChoice::Auto => None,
            cli::TransferChoice::Bind => Some(runtime::Transfer::Bind),
            cli::TransferChoice::Archive => Some(runtime::Transfer::Archive),
        },
        runs: summary::RunLog::default(),
        backend: cli.backend,
        mirror,
    };
    let result = dispatch(cli.command, &context).await;
    match context.mirror.take() {
        Some(mirror) => {
            let synced = mirror.finish().await;
            match (result, synced) {
                (Ok(code), Ok(())) => Ok(code),
                (Ok(_), Err(err)) => Err(err),
                (Err(err), Ok(())) => Err(err),
                (Err(err), Err(sync)) => {
                    // The same failure again (a lost connection) is said once.
                    if format!("{sync:#}") != format!("{err:#}") {
                        output::error(&sync);
                    }
                    Err(err)
                }
            }
        }
        None => result,
    }
}

async fn dispatch(command: Command, context: &Context) -> anyhow::Result<ExitCode> {
    let engine = runtime::docker::LazyDocker::default();
    match command {
        Command::List(args) => commands::list::run(args, context),
        Command::Search(args) => commands::search::run(args, context),
        Command::Info(args) => commands::info::run(args, context),
        Command::Graph(args) => commands::graph::run(args, context),
        Command::Completions(args) => commands::completions::run(args),
        Command::Metadata(args) => commands::method::run("metadata", args, context, &engine).await,
        Command::Init(args) => commands::method::run("init", args, context, &engine).await,
        Command::Plan(args) => commands::method::plan(args, context, &engine).await,
        Command::Apply(args) => commands::apply::run(args, context, &engine).await,
        Command::Show(args) => commands::show::run(args),
        Command::Audit(args) => commands::audit::run(args, context, &engine).await,
        Command::Run(args) => commands::method::run_command(args, context, &engine).await,
        Command::Upgrade(args) => commands::upgrade::run(args, context, &engine).await,
        Command::Destroy(args) => commands::destroy::run(args, context, &engine).await,
        Command::Check(args) => commands::check::run(args, context, &engine).await,
        Command::Build(args) => commands::build::run(args, context, &engine).await,
        Command::State(args) => commands::state::run(args, context).await,
        Command::Status(args) => commands::status::run(args, context),
        Command::History(args) => commands::history::run(args, context),
        Command::Export(args) => commands::export::run(args, context, &engine).await,
        Command::Import(args) => commands::import::run(args, context, &engine).await,
        Command::Push(args) => commands::push::run(args, context, &engine).await,
        Command::Download(args) => commands::download::run(args, context, &engine).await,
        Command::Serve(args) => commands::serve::run(args, &engine).await,
        Command::Validate(args) => commands::validate::run(args, context),
        Command::New(args) => commands::new::run(args, context),
        Command::Recover(args) => commands::recover::run(args, context, &engine).await,
        Command::Version(args) => commands::version::run(args, context).await,
    }
}
