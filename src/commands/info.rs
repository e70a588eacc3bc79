//! `e info MODULE[@VERSION]`: everything about one module version.

use std::process::ExitCode;

use serde::Serialize;

use crate::Context;
use crate::cli::InfoArgs;
use crate::commands::search::{RequirementReport, render_reports, requirement_reports};
use crate::graph::Index;
use crate::output;
use crate::repository::model::{Command, Memory, ModuleVersion, Network, Requirements};
use crate::runtime::confinement;
use crate::selector::Labels;

#[derive(Serialize)]
struct InfoView<'r> {
    module: &'r str,
    version: &'r str,
    latest: bool,
    versions: Vec<&'r str>,
    image: &'r str,
    workdir: Option<&'r str>,
    shared: &'r str,
    mounts: &'r [String],
    network: Network,
    capabilities: &'r [String],
    confinement: ConfinementView,
    commands: &'r [Command],
    /// How long a command without its own `timeout:` may run.
    default_timeout: String,
    labels: &'r Labels,
    requirements: Vec<RequirementReport<'r>>,
    influenced_by: Vec<String>,
    #[serde(skip_serializing_if = "Requirements::is_empty")]
    bill_of_materials: &'r Requirements,
}

/// How the version's container is confined (see `runtime/confinement.rs`).
#[derive(Serialize)]
struct ConfinementView {
    /// The `user:` of the version; `None` when e chooses (see [`confinement::user`]).
    user: Option<String>,
    memory: String,
    memory_bytes: i64,
    cpus: String,
    pids: i64,
    /// Which limits the version sets itself; the others are e's defaults.
    limits_from_repository: Vec<&'static str>,
    read_only_rootfs: bool,
    /// The size of the tmpfs at `/tmp`; `None` when a mount takes `/tmp`.
    tmp: Option<String>,
}

impl ConfinementView {
    fn new(version: &ModuleVersion) -> ConfinementView {
        let limits = confinement::limits(version);
        // The user does not matter here: it is shown as a rule, whoever runs `e info`.
        let confined = confinement::for_version(version, (0, 0));
        ConfinementView {
            user: version.user.map(|user| user.to_string()),
            memory_bytes: limits.memory.bytes(),
            memory: limits.memory.to_string(),
            cpus: limits.cpus.to_string(),
            pids: limits.pids,
            limits_from_repository: limits.from_repository,
            read_only_rootfs: confined.read_only_rootfs,
            tmp: (!confined.tmpfs.is_empty()).then(|| {
                Memory::from_bytes(confinement::tmp_bytes(confined.memory_bytes)).to_string()
            }),
        }
    }
}

/// Shows one module version.
pub fn run(args: InfoArgs, context: &Context) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let index = Index::new(&repository);
    let entry = repository.find(&args.module)?;
    let version = entry.version;
    let view = InfoView {
        module: &entry.module.name,
        version: version.version.as_str(),
        latest: version.latest,
        versions: entry
            .module
            .versions
            .iter()
            .map(|v| v.version.as_str())
            .collect(),
        image: &version.image,
        workdir: version.workdir.as_deref(),
        shared: version.shared_path(),
        mounts: &version.mounts,
        network: version.network.unwrap_or(Network::None),
        capabilities: &version.capabilities,
        confinement: ConfinementView::new(version),
        commands: &version.commands[..],
        default_timeout: humantime::format_duration(crate::run::DEFAULT_TIMEOUT).to_string(),
        labels: &version.labels,
        requirements: requirement_reports(&index, entry),
        influenced_by: index.influenced_by(entry).iter().map(|e| e.id()).collect(),
        bill_of_materials: &version.requirements,
    };
    let text = match output::serialized(args.output, &view)? {
        Some(text) => text,
        None => render(&view),
    };
    output::data(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn render(view: &InfoView<'_>) -> String {
    let none = |list: &[String]| {
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    };
    let mut text = String::new();
    let latest = if view.latest { " (latest)" } else { "" };
    text.push_str(&format!("module:        {}\n", view.module));
    text.push_str(&format!(
        "version:       {}{latest}   (versions: {})\n",
        view.version,
        view.versions.join(", ")
    ));
    text.push_str(&format!("image:         {}\n", view.image));
    if let Some(workdir) = view.workdir {
        text.push_str(&format!("workdir:       {workdir}\n"));
    }
    text.push_str(&format!("shared:        {}\n", view.shared));
    text.push_str(&format!("mounts:        {}\n", none(view.mounts)));
    let network = match view.network {
        Network::None => "none",
        Network::Host => "host",
    };
    text.push_str(&format!("network:       {network}\n"));
    text.push_str(&format!("capabilities:  {}\n", none(view.capabilities)));
    text.push_str(&render_confinement(&view.confinement));
    text.push_str(&format!(
        "timeout:       {} for each method (e's default), unless its command has its own (below); `--timeout` wins\n",
        view.default_timeout
    ));
    text.push_str("\ncommands:\n");
    if view.commands.is_empty() {
        text.push_str("  none\n");
    }
    for command in view.commands {
        let argv: Vec<&str> = command
            .command
            .iter()
            .chain(&command.args)
            .map(String::as_str)
            .collect();
        text.push_str(&format!(
            "  {:<10} {}",
            command.name,
            command.description.as_deref().unwrap_or("")
        ));
        if !argv.is_empty() {
            text.push_str(&format!("  [{}]", argv.join(" ")));
        }
        if let Some(timeout) = command.timeout {
            text.push_str(&format!("  timeout {timeout}"));
        }
        if !command.secrets.is_empty() {
            text.push_str(&format!("  secret files: {}", command.secrets.join(", ")));
        }
        if !command.keep_secrets.is_empty() {
            text.push_str(&format!("  may keep: {}", command.keep_secrets.join(", ")));
        }
        text.push('\n');
    }
    text.push_str("\nlabels:\n");
    if view.labels.is_empty() {
        text.push_str("  none\n");
    }
    for (key, value) in view.labels {
        let value = if value.is_empty() { "\"\"" } else { value };
        text.push_str(&format!("  {key}: {value}\n"));
    }
    text.push_str("\nrequirements and influences:\n");
    if view.requirements.is_empty() {
        text.push_str("  none\n");
    }
    text.push_str(&render_reports(&view.requirements, "  "));
    text.push_str(&format!(
        "\ninfluenced by:  {}\n",
        none(&view.influenced_by)
    ));
    // Shown only when there is one, so that modules without it read as before.
    let materials = view.bill_of_materials;
    if !materials.is_empty() {
        text.push_str("\nbill of materials (what `e export` carries besides the image):\n");
        for image in &materials.images {
            text.push_str(&format!("  image  {image}\n"));
        }
        for file in &materials.files {
            text.push_str(&format!(
                "  file   {}  sha256 {}  from {}\n",
                file.file_name(),
                file.sha256,
                file.source()
            ));
        }
        for packages in &materials.packages {
            text.push_str(&format!(
                "  packages  {} {}: {}  (with their dependencies)\n",
                packages.distribution.name(),
                packages.release,
                packages.names.join(" ")
            ));
        }
    }
    text
}

/// The `user:`, `limits:` and `filesystem:` lines.
fn render_confinement(view: &ConfinementView) -> String {
    let user = match &view.user {
        Some(user) => format!("{user} (repository)"),
        None => format!(
            "the invoking user; {} when e runs as root",
            confinement::UNPRIVILEGED
        ),
    };
    let origin = |name: &str| {
        if view.limits_from_repository.contains(&name) {
            "repository"
        } else {
            "default"
        }
    };
    let filesystem = match (&view.tmp, view.read_only_rootfs) {
        (Some(tmp), true) => format!("read-only; /tmp is a {tmp} tmpfs"),
        (None, true) => "read-only; /tmp is a mount".to_owned(),
        (_, false) => "writable".to_owned(),
    };
    format!(
        "user:          {user}\nlimits:        memory {} ({}), cpus {} ({}), pids {} ({})\nfilesystem:    {filesystem}\n",
        view.memory,
        origin("memory"),
        view.cpus,
        origin("cpus"),
        view.pids,
        origin("pids"),
    )
}
