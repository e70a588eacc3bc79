//! The command line, as clap derive types. Doc comments here are the `--help` text.
//! No I/O happens here: arguments parse straight into domain types (`Selector`, `ModuleSpec`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;

use crate::completion;

use crate::registry::Registry;
use crate::repository::ModuleSpec;
use crate::selector::Selector;

/// Orchestrate dockerized infrastructure modules.
///
/// e reads a module repository (repository.yaml), finds the modules that satisfy a
/// requirement, and runs module methods in containers with the shared state kept safe:
/// requirements checked, influenced modules re-planned, upgrades gated on audit, and
/// everything exportable for machines with no internet.
#[derive(Debug, Parser)]
#[command(name = "e", version, propagate_version = true, max_term_width = 100)]
#[command(
    after_help = "Examples:\n  e list\n  e search 'kind=monitoring,core-technology in (prometheus)'\n  e search --for bmk\n  e info bmk@0.1.0\n  e graph bmk --format dot | dot -Tsvg > bmk.svg\n  e init azi -- --size 5 && e apply azi\n  e apply pg --with-requirements\n  e status"
)]
pub struct Cli {
    /// The module repository file.
    #[arg(
        long,
        global = true,
        env = "E_REPOSITORY",
        default_value = "repository.yaml",
        value_name = "PATH"
    )]
    pub repository: PathBuf,

    /// The shared directory mounted into every module: state.yml, module configs, and e's `.e/`.
    #[arg(
        long,
        global = true,
        env = "E_SHARED",
        default_value = "shared",
        value_name = "DIR"
    )]
    pub shared: PathBuf,

    /// Keep the environment in a backend instead of the shared directory:
    /// `postgres://USER@HOST:PORT/DB?schema=NAME&env=NAME` (docs/backends.md). Commands that
    /// change it take its lock; every commit is checked against the backend's serial.
    #[arg(long, global = true, env = "E_BACKEND", value_name = "URL")]
    pub backend: Option<String>,

    /// A YAML file of secrets for `${secret:NAME}` references in command envs.
    #[arg(long, global = true, env = "E_SECRETS", value_name = "FILE")]
    pub secrets: Option<PathBuf>,

    /// How a run's private copy of the shared directory reaches its container: `bind` mounts
    /// a directory of e's (the engine must see this machine's files), `archive` uploads and
    /// downloads it through the Engine API (any engine), `auto` takes `bind` for a local
    /// socket and `archive` otherwise.
    #[arg(
        long,
        global = true,
        env = "E_TRANSFER",
        value_enum,
        default_value_t = TransferChoice::Auto
    )]
    pub transfer: TransferChoice,

    /// Print nothing in color (also: a non-empty `NO_COLOR`).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command line as clap reads it: Terraform's single-dash `-out FILE` and `-out=FILE`
/// become `--out`, so the line every Terraform user types works.
pub fn normalize(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut seen_separator = false;
    args.into_iter()
        .map(|arg| {
            if seen_separator {
                return arg;
            }
            match arg.to_str() {
                Some("--") => {
                    seen_separator = true;
                    arg
                }
                Some("-out") => "--out".into(),
                Some(text) if text.starts_with("-out=") => format!("-{text}").into(),
                _ => arg,
            }
        })
        .collect()
}

/// How runs hand their copy to the engine (`--transfer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferChoice {
    /// `bind` for a local socket, `archive` otherwise.
    Auto,
    /// Bind-mount a private directory (the engine must see this machine's files).
    Bind,
    /// Upload and download through the Engine API's archive endpoints.
    Archive,
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
    /// Run a module's `metadata` method: print its labels, requires and influences.
    Metadata(MethodArgs),
    /// Run a module's `init` method: write its config from the state.
    Init(MethodArgs),
    /// Run a module's `plan` method: show what `apply` would change; `--out` saves it.
    Plan(PlanArgs),
    /// Plan a module, ask, then run its `apply` and plan the modules it influences; or apply
    /// a saved plan.
    Apply(ApplyArgs),
    /// Print a plan saved by `e plan --out FILE`.
    Show(ShowArgs),
    /// Run a module's `audit` method: report changes made by hand (exit 2 on drift).
    Audit(AuditArgs),
    /// Run any other command a module lists (backup, restore, ...; `destroy` as `e destroy`).
    Run(RunArgs),
    /// Upgrade an installed module, after its new version's audit accepts the current state.
    Upgrade(UpgradeArgs),
    /// Run a module's `destroy` (or several, users first), refused while an installed module
    /// strongly requires it.
    Destroy(DestroyArgs),
    /// Check that a module version follows the module contract, in a throwaway shared directory.
    Check(CheckArgs),
    /// Build a module image from a folder with a Dockerfile, through the Engine API.
    Build(BuildArgs),
    /// Print the shared state file.
    State(StateArgs),
    /// List the modules in the state: version, status, and whether their requirements hold.
    Status(StatusArgs),
    /// Show the recorded runs of module methods.
    History(HistoryArgs),
    /// Write modules, their images and files into one archive, for a machine without internet.
    Export(ExportArgs),
    /// Load an archive of `e export`: images into the engine, modules into the repository.
    Import(ImportArgs),
    /// Fetch what the modules' bills of materials name and this machine lacks: files by URL,
    /// Debian packages with their dependencies, into e's cache.
    Download(DownloadArgs),
    /// Serve a store of `e import --store` over HTTP, for the machines of a cluster.
    Serve(ServeArgs),
    /// Push the images of module versions into a registry, named under it.
    Push(PushArgs),
    /// Check the repository (and the shared state, if any) without an engine.
    Validate(ValidateArgs),
    /// Write a new module folder: Dockerfile, an implementation of every method, metadata.
    New(NewArgs),
    /// Show the versions of e and of the engine it uses, and how it reaches that engine.
    Version(VersionArgs),
    /// Inspect, commit or drop the results of runs that failed or whose e stopped midway.
    Recover(RecoverArgs),
}

/// Arguments of `e recover`.
#[derive(Debug, Args)]
#[command(
    after_help = "A mutating method (apply, destroy, ...) that fails, times out, is \
interrupted or whose e is killed may already have changed infrastructure that its result \
records. e never commits such a result by itself and never loses it: it is kept aside under \
`.e/kept/RUN/`.\n\n  e recover                 # list kept results\n  e recover show RUN        # what it would change\n  e recover commit RUN      # make it the shared directory's content\n  e recover drop RUN        # forget it"
)]
pub struct RecoverArgs {
    /// What to do; without one, list the kept results.
    #[command(subcommand)]
    pub action: Option<RecoverAction>,

    /// Output format of the list.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// How long to wait for another e working on the same shared directory.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION", global = true)]
    pub lock_timeout: std::time::Duration,
}

/// What `e recover` does with a kept result.
#[derive(Debug, Subcommand)]
pub enum RecoverAction {
    /// List the kept results.
    List,
    /// Show what committing a kept result would change.
    Show {
        /// The run id (from `e recover list`).
        run: String,
    },
    /// Commit a kept result: it becomes the shared directory's content, whole.
    Commit {
        /// The run id.
        run: String,
    },
    /// Forget a kept result.
    Drop {
        /// The run id.
        run: String,
    },
}

/// Options of every command that runs a container.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// Stop the module (then kill it) after this long, e.g. `90s`, `10m`.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<std::time::Duration>,

    /// How long to wait for another e working on the same shared directory.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: std::time::Duration,

    /// Output format: `table` streams the module's output; `json` and `yaml` write one
    /// document of every run when the command ends (see docs/guide.md, "Machine-readable
    /// runs"); commands that ask for confirmation then need `--auto-approve`.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e plan`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 success (with or without changes), 1 error; with --detailed-exitcode, 2 when
the plan has changes.

Examples:
  e plan azi
  e plan azi --out azi.plan && e show azi.plan && e apply azi.plan
  e plan azi --detailed-exitcode || echo \"changes or error: $?\""
)]
pub struct PlanArgs {
    /// The module; the version defaults to the installed one, else `latest`.
    #[arg(value_name = "MODULE[@VERSION]")]
    pub module: ModuleSpec,

    /// Save the plan to FILE, for `e show FILE` and `e apply FILE` (Terraform's `-out`;
    /// `-out FILE` is accepted too).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Exit 2 when the plan has changes, 0 when it has none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Run even if strong requirements are not met (recorded in the history).
    #[arg(long)]
    pub skip_requirements: bool,

    /// Options of the run.
    #[command(flatten)]
    pub run: RunOptions,

    /// Extra arguments for the module, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of the method subcommands (`e init`, `e metadata`).
#[derive(Debug, Args)]
#[command(after_help = "Arguments after `--` go to the module: e init azi -- --size 7")]
pub struct MethodArgs {
    /// The module; the version defaults to the installed one, else `latest`.
    #[arg(value_name = "MODULE[@VERSION]", add = ArgValueCompleter::new(completion::module_spec))]
    pub module: ModuleSpec,

    /// Run even if strong requirements are not met (recorded in the history).
    #[arg(long)]
    pub skip_requirements: bool,

    /// Options of the run.
    #[command(flatten)]
    pub run: RunOptions,

    /// Extra arguments for the module, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of `e apply`.
#[derive(Debug, Args)]
#[command(
    after_help = "e runs the module's plan first and shows it; only `yes` applies it. Without a terminal the\nanswer is read from standard input; `--auto-approve` skips the question. A plan with no\nchanges ends there.\n\nExamples:\n  e apply bmk\n  e apply bmk --auto-approve\n  e plan bmk --out bmk.plan && e apply bmk.plan\n  e apply pg --with-requirements --prefer rook\n  e apply pg --with-requirements --auto-approve"
)]
pub struct ApplyArgs {
    /// The module (the version defaults to the installed one, else `latest`), or a plan file
    /// saved by `e plan --out`, applied as it is without asking.
    #[arg(value_name = "MODULE[@VERSION]|PLAN", add = ArgValueCompleter::new(completion::module_spec))]
    pub target: crate::plan_file::ApplyTarget,

    /// First install, in dependency order, the modules its unmet strong requirements need
    /// (init, plan and apply each), after showing the plan.
    #[arg(long)]
    pub with_requirements: bool,

    /// With --with-requirements: choose this module when several satisfy a requirement.
    #[arg(long, value_name = "MODULE", requires = "with_requirements", add = ArgValueCompleter::new(completion::module_name))]
    pub prefer: Vec<String>,

    /// With --with-requirements: run at most N modules at a time. Modules with no requirement
    /// between them run side by side; 1 runs the stack one module after the other.
    #[arg(long, value_name = "N", default_value_t = crate::lifecycle::schedule::DEFAULT_PARALLELISM, requires = "with_requirements", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,

    /// Apply without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,

    /// Apply although the image behind the installed version is another image than the one
    /// it was applied with (`e upgrade` is the other way).
    #[arg(long)]
    pub allow_image_change: bool,

    /// Do not plan the installed modules this one influences afterwards.
    #[arg(long)]
    pub no_influences: bool,

    /// Run even if strong requirements are not met (recorded in the history).
    #[arg(long, conflicts_with = "with_requirements")]
    pub skip_requirements: bool,

    /// Options of the run.
    #[command(flatten)]
    pub run: RunOptions,

    /// Extra arguments for the module, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of `e audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The module; the version defaults to the installed one, else `latest`.
    #[arg(
        value_name = "MODULE[@VERSION]",
        required_unless_present = "all",
        conflicts_with = "all",
        add = ArgValueCompleter::new(completion::module_spec)
    )]
    pub module: Option<ModuleSpec>,

    /// Audit every installed module; exit 2 if any reports drift.
    #[arg(long)]
    pub all: bool,

    /// With --all: audit at most N modules at a time (audits only read, so all may overlap).
    #[arg(long, value_name = "N", default_value_t = crate::lifecycle::schedule::DEFAULT_PARALLELISM, requires = "all", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,

    /// Options of the run.
    #[command(flatten)]
    pub run: RunOptions,

    /// Extra arguments for the module, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of `e upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The installed module to upgrade.
    #[arg(add = ArgValueCompleter::new(completion::module_name))]
    pub module: String,

    /// The version to upgrade to.
    #[arg(long, value_name = "VERSION")]
    pub to: String,

    /// Allow going to a lower version.
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Upgrade without asking for confirmation after the audit and the plan.
    #[arg(long)]
    pub auto_approve: bool,

    /// Do not plan the installed modules it influences afterwards.
    #[arg(long)]
    pub no_influences: bool,

    /// Options of the runs.
    #[command(flatten)]
    pub run: RunOptions,
}

/// Arguments of `e destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The modules; each one's version defaults to the installed one. Several are destroyed
    /// users first: a module goes once every listed module bound to it is gone.
    #[arg(value_name = "MODULE[@VERSION]", required = true, num_args = 1.., add = ArgValueCompleter::new(completion::module_spec))]
    pub modules: Vec<ModuleSpec>,

    /// Destroy even though installed modules are bound to it (recorded in the history).
    #[arg(long)]
    pub force: bool,

    /// Destroy at most N of the listed modules at a time; modules with no requirement or
    /// influence between them go side by side. 1 destroys them one after the other.
    #[arg(long, value_name = "N", default_value_t = crate::lifecycle::schedule::DEFAULT_PARALLELISM, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,

    /// Destroy without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,

    /// Options of the run.
    #[command(flatten)]
    pub run: RunOptions,

    /// Extra arguments for the module, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of `e show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan file written by `e plan --out FILE`.
    #[arg(value_name = "PLAN")]
    pub file: PathBuf,

    /// Output format; `json` prints the whole saved plan.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The module versions to check (each by default its latest); each is checked in a
    /// throwaway shared directory of its own.
    #[arg(value_name = "MODULE[@VERSION]", required = true, num_args = 1.., add = ArgValueCompleter::new(completion::module_spec))]
    pub modules: Vec<ModuleSpec>,

    /// Check at most N of the modules at a time (each check has a directory of its own, so
    /// all may overlap).
    #[arg(long, value_name = "N", default_value_t = crate::lifecycle::schedule::DEFAULT_PARALLELISM, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,

    /// Stop each method after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m", value_name = "DURATION")]
    pub timeout: std::time::Duration,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The module; the version defaults to the installed one, else `latest`.
    #[arg(value_name = "MODULE[@VERSION]", add = ArgValueCompleter::new(completion::module_spec))]
    pub module: ModuleSpec,

    /// The command, as the repository names it (`e info MODULE` lists them).
    #[arg(add = ArgValueCompleter::new(completion::module_command))]
    pub command: String,

    /// Options of the run.
    #[command(flatten)]
    pub run: RunOptions,

    /// Extra arguments for the module, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of `e build`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example: e build modules/azi   (tags it with the image the repository gives module `azi`)"
)]
pub struct BuildArgs {
    /// The folder holding the Dockerfile.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,

    /// The image tag; by default, the image of the repository module named like the folder.
    #[arg(short, long, value_name = "IMAGE")]
    pub tag: Option<String>,
}

/// Arguments of `e export`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  e export bmk --out bmk.tar              bmk, azi (its strong requirement), their images\n  e export bmk --with-weak --out bmk.tar  and bmm, which bmk uses when present\n  e export --all --out everything.tar\n  e export azi bmk --dry-run              what would go in, with sizes\n  e export azi bmk --with-state --out site.tar\nOn the machine without internet: e import bmk.tar"
)]
pub struct ExportArgs {
    /// The modules, each with its strong requirements (default version: `latest`, else the
    /// highest).
    #[arg(
        value_name = "MODULE[@VERSION]",
        required_unless_present = "all",
        conflicts_with = "all",
        add = ArgValueCompleter::new(completion::module_spec)
    )]
    pub modules: Vec<ModuleSpec>,

    /// Export every version of every module.
    #[arg(long)]
    pub all: bool,

    /// Also export, for each weak requirement, its first candidate and its strong requirements.
    #[arg(long)]
    pub with_weak: bool,

    /// The archive to write (a tar file).
    #[arg(long, value_name = "FILE", required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,

    /// Output format of the report (the archive's path is `--out FILE`).
    #[arg(short, long, value_parser = export_format, default_value = "table", value_name = "FORMAT")]
    pub output: Format,

    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,

    /// Also export the shared directory (state, configs, history, installed modules, mounts),
    /// with every secret value replaced by `***`.
    #[arg(long)]
    pub with_state: bool,

    /// List what would go in, with sizes (downloading nothing, but asking for the sizes of what
    /// is still to download), and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Leave e itself out of the archive: the importing side has this version already.
    #[arg(long)]
    pub without_e: bool,
}

/// Arguments of `e download`.
#[derive(Debug, Args)]
#[command(
    after_help = "One downloader container fetches the files of every module (by http(s) URL, each checked\nagainst its sha256, resumed when a download broke); Debian packages are resolved with their\ndependencies in a container of their release. Everything lands in e's cache\n($E_CACHE_DIR/downloads), which `e export` reads. Examples:\n  e download pg                 pg, its strong requirements, their bills of materials\n  e download --all"
)]
pub struct DownloadArgs {
    /// The modules, each with its strong requirements (default version: `latest`, else the
    /// highest).
    #[arg(
        value_name = "MODULE[@VERSION]",
        required_unless_present = "all",
        conflicts_with = "all",
        add = ArgValueCompleter::new(completion::module_spec)
    )]
    pub modules: Vec<ModuleSpec>,

    /// Every version of every module.
    #[arg(long)]
    pub all: bool,

    /// Also, for each weak requirement, its first candidate and its strong requirements.
    #[arg(long)]
    pub with_weak: bool,

    /// Output format of the report.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e serve`.
#[derive(Debug, Args)]
#[command(
    after_help = "Runs the repository machine's server (the image of modules/repo, busybox httpd) with the\nhost's network, in the foreground until Ctrl-C. Cluster hosts then use, for Debian:\n  deb [trusted=yes] http://REPOSITORY:PORT/debian/RELEASE ./\nand fetch files from http://REPOSITORY:PORT/files/SHA256/NAME. Example:\n  e import site.tar --store /srv/e-store && e serve /srv/e-store --listen 0.0.0.0:8080"
)]
pub struct ServeArgs {
    /// The store that `e import --store` filled.
    #[arg(value_name = "DIR")]
    pub store: PathBuf,

    /// The address and port to listen on (the repository machine's setting `E_SERVE_LISTEN`).
    #[arg(
        long,
        env = "E_SERVE_LISTEN",
        default_value = "0.0.0.0:8080",
        value_name = "ADDRESS:PORT"
    )]
    pub listen: String,

    /// The server's image.
    #[arg(long, default_value = crate::offline::SERVER_IMAGE, value_name = "IMAGE")]
    pub image: String,

    /// Stop serving after this long (by default, only on Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<std::time::Duration>,
}

/// Arguments of `e import`.
#[derive(Debug, Args)]
#[command(
    after_help = "The whole archive is verified before anything changes. Example:\n  e import bmk.tar --repository /srv/e/repository.yaml --shared /srv/e/shared"
)]
pub struct ImportArgs {
    /// The archive written by `e export`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Replace module versions the repository defines differently, and write an archived state
    /// into a shared directory that already holds one (after asking).
    #[arg(long)]
    pub force: bool,

    /// With `--force`, replace a state without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,

    /// Also push every image into this registry (`HOST:PORT`), named under it, and write the
    /// imported modules with those names, so that every machine using the repository pulls
    /// them from there.
    #[arg(long, value_name = "REGISTRY")]
    pub push: Option<Registry>,

    /// Refuse the archive unless its manifest has this sha256 (`e export` prints it): the
    /// manifest pins every entry, so this one hash, passed on apart from the archive, shows
    /// the archive is the one exported.
    #[arg(long, value_name = "SHA256")]
    pub expect_sha256: Option<String>,

    /// Also put the files and the Debian packages into this store, the repository machine's,
    /// which `e serve DIR` serves to the cluster (`files/SHA256/NAME`, `debian/RELEASE/`).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

/// Arguments of `e push`.
#[derive(Debug, Args)]
#[command(
    after_help = "Each image is tagged REGISTRY/PATH:TAG (its path without the registry it came from) and\npushed with the credentials `docker login REGISTRY` stored (credential helpers included).\nExample:\n  e push azi bmk@0.1.0 127.0.0.1:5000"
)]
pub struct PushArgs {
    /// The module versions whose images (their own and their bills of materials') to push.
    #[arg(value_name = "MODULE[@VERSION]", required = true, num_args = 1..,
        add = ArgValueCompleter::new(completion::module_spec))]
    pub modules: Vec<ModuleSpec>,

    /// The registry, `HOST[:PORT][/PATH]`.
    #[arg(value_name = "REGISTRY")]
    pub registry: Registry,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e validate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes, as `terraform validate`: 0 valid (warnings may be printed), 1 invalid."
)]
pub struct ValidateArgs {
    /// Output format; `json` prints `{valid, error_count, warning_count, diagnostics}`.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// The language of a new module's implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// A busybox shell script in a `FROM scratch` image (no toolchain needed).
    Shell,
    /// A Rust program, built in the image, like the example modules azi and bmk.
    Rust,
}

/// Arguments of `e new`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  e new cache && e build cache --tag e-modules/cache:0.1.0\n  (paste cache/repository-entry.yaml into repository.yaml)\n  e check cache"
)]
pub struct NewArgs {
    /// The module's name: lowercase letters, digits and `-`; the folder it is written to.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// What the module's methods are written in.
    #[arg(long, value_enum, default_value_t = Template::Shell)]
    pub template: Template,

    /// The folder to create (default: NAME).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of `e state`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  e state                  # state.yml exactly as the modules wrote it\n  e state list             # one line per module section\n  e state show bmk         # one section, as written\n  e state rm bmk           # forget bmk without running it (asks; --auto-approve)"
)]
pub struct StateArgs {
    /// What to do; without one, print the whole state.
    #[command(subcommand)]
    pub action: Option<StateAction>,

    /// Output format; `table` prints the file (or the section) exactly as the modules wrote it.
    #[arg(short, long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
}

/// The state operations that repair things by hand (Terraform's `state list|show|rm`).
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// List the module sections of the state: status, installed version, who is bound to it.
    List,
    /// Print one module's section.
    Show {
        /// The module whose section to print.
        module: String,
    },
    /// Remove one module's section and its installed record, without running the module
    /// (what it made stays where it is). Asks first; refused while another module is bound
    /// to it; recorded in the history.
    Rm {
        /// The module whose section to remove.
        module: String,

        /// Remove without asking for confirmation.
        #[arg(long)]
        auto_approve: bool,

        /// How long to wait for another e working on the same shared directory.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
        lock_timeout: std::time::Duration,
    },
    /// Write the current snapshot of a backend's environment into a new directory: a shared
    /// directory with its lineage and serial, to inspect or to push back.
    Pull {
        /// The directory to write (it must not exist, or be empty).
        dir: PathBuf,
    },
    /// Move an environment between a shared directory and a backend: `--to URL` moves the
    /// shared directory (`--shared`) into the backend; `--to DIR` writes the backend's
    /// environment (`--backend`) into a new shared directory. Checked and complete, or nothing.
    Migrate {
        /// Where to: a backend URL (`postgres://...`) or a new directory.
        #[arg(long, value_name = "URL|DIR")]
        to: String,

        /// Replace an environment of another lineage, or a newer one, in the backend.
        #[arg(long)]
        force: bool,

        /// How long to wait for whoever holds the backend environment's lock.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
        lock_timeout: std::time::Duration,
    },
    /// Make a shared directory the content of a backend's environment, under its lock.
    /// Refused when the directory has another lineage or an older serial, unless `--force`.
    Push {
        /// The shared directory to push.
        dir: PathBuf,

        /// Push even over another lineage or a newer serial.
        #[arg(long)]
        force: bool,

        /// How long to wait for whoever holds the environment's lock.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
        lock_timeout: std::time::Duration,
    },
}

/// Arguments of `e status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e version`.
#[derive(Debug, Args)]
#[command(
    after_help = "The engine is the one the docker CLI would use: DOCKER_HOST (with DOCKER_TLS_VERIFY and\nDOCKER_CERT_PATH), else DOCKER_CONTEXT, else the current context of ~/.docker/config.json\n(or $DOCKER_CONFIG), else unix:///var/run/docker.sock."
)]
pub struct VersionArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only the runs of this module.
    #[arg(value_name = "MODULE", add = ArgValueCompleter::new(completion::module_name))]
    pub module: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Parses `e export -o`: a format, with a clear error for the old spelling `-o FILE`.
fn export_format(text: &str) -> Result<Format, String> {
    match Format::from_str(text, true) {
        Ok(format) => Ok(format),
        Err(_) => Err(format!(
            "`-o` is the output format (table, json, yaml); the archive is written with `--out {text}`"
        )),
    }
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
#[command(
    after_help = "Selector syntax (Kubernetes set-based, plus semver operators), expressions joined by `,`:\n  key=value  key!=value  key in (a, b)  key notin (a, b)  key  !key\n  key>1.0.0  key>=1.0.0  key<2.0.0  key<=2.0.0  key semver (>=2.5, <3)\nQuote values with spaces or commas: name=\"Bare Metal Kafka\""
)]
pub struct SearchArgs {
    /// The selector to match, e.g. `kind=monitoring,version>=0.1.0`.
    #[arg(required_unless_present = "for_module", conflicts_with = "for_module")]
    pub selector: Option<Selector>,

    /// Show, for each requirement of this module, what satisfies it and what comes close.
    #[arg(long = "for", value_name = "MODULE[@VERSION]", add = ArgValueCompleter::new(completion::module_spec))]
    pub for_module: Option<ModuleSpec>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Arguments of `e info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The module, optionally with a version (default: its `latest`, else highest version).
    #[arg(value_name = "MODULE[@VERSION]", add = ArgValueCompleter::new(completion::module_spec))]
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
    #[arg(value_name = "MODULE[@VERSION]", conflicts_with = "installed", add = ArgValueCompleter::new(completion::module_spec))]
    pub module: Option<ModuleSpec>,

    /// Draw the installed modules instead, and which one each uses for each requirement.
    #[arg(long)]
    pub installed: bool,

    /// How to draw it. Strong edges are solid, weak dashed, influences dotted.
    /// (`-o`, like every command's output format; `--format`/`-f` are the older spelling.)
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "format",
        short_alias = 'f',
        value_enum,
        default_value_t = GraphFormat::Tree
    )]
    pub format: GraphFormat,
}

/// Arguments of `e completions`.
#[derive(Debug, Args)]
#[command(
    after_help = "The script asks e for what to complete (module names, MODULE@VERSION, a module's commands\nfor `e run`, options), so it follows the repository. Install it by loading it anew in\nevery shell, so that it matches the e you run:\n  bash:        echo 'source <(e completions bash)' >> ~/.bashrc\n  zsh:         echo 'source <(e completions zsh)' >> ~/.zshrc\n  fish:        echo 'e completions fish | source' >> ~/.config/fish/config.fish\n  elvish:      echo 'eval (e completions elvish | slurp)' >> ~/.config/elvish/rc.elv\n  PowerShell:  Add-Content $PROFILE 'e completions powershell | Out-String | Invoke-Expression'\nThen open a new shell and try: e run <TAB>"
)]
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

    #[test]
    fn terraforms_single_dash_out_is_read_as_out_but_not_after_the_separator() {
        let args = ["e", "plan", "azi", "-out", "a.plan", "-out=b", "--", "-out"];
        let normalized: Vec<String> = normalize(args.map(Into::into))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            normalized,
            [
                "e", "plan", "azi", "--out", "a.plan", "--out=b", "--", "-out"
            ]
        );
    }
}
