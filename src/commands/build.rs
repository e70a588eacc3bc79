//! `e build [DIR]`: builds a module image from a folder with a Dockerfile, through the Engine
//! API, so module authors need no docker CLI. It says which tag it gives the image and why,
//! and warns when that tag is the image an installed version was applied with: e pins that
//! image (see `e upgrade`).

use std::process::ExitCode;

use anyhow::Context as _;

use crate::Context;
use crate::cli::BuildArgs;
use crate::output;
use crate::runtime::{Engine, OutputSink, Stream};
use crate::store::Installed;

struct BuildLog;

impl OutputSink for BuildLog {
    fn write(&self, _stream: Stream, bytes: &[u8]) {
        // The build log is progress, not data: it goes to stderr.
        output::stream(Stream::Stderr, &String::from_utf8_lossy(bytes));
    }
}

/// The tag for a build: the one given, else the image of the module named like the folder
/// (its default version's), saying so.
fn tag_for(args: &BuildArgs, context: &Context) -> anyhow::Result<String> {
    if let Some(tag) = &args.tag {
        return Ok(tag.clone());
    }
    let dir = args
        .dir
        .canonicalize()
        .with_context(|| format!("no folder `{}`", args.dir.display()))?;
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let repository = context.repository()?;
    let module = repository.module(&name).with_context(|| {
        format!(
            "no module `{name}` in the repository to take the image tag from\nhint: pass `--tag IMAGE`, or name the folder after the module"
        )
    })?;
    let version = module.default_version();
    output::note(&format!(
        "e: tagging the image `{}`: the image of `{name}@{}`, the default version of module `{name}`, named like the folder",
        version.image, version.version
    ));
    let others: Vec<String> = module
        .versions
        .iter()
        .filter(|v| v.image != version.image)
        .map(|v| format!("{} ({})", v.version, v.image))
        .collect();
    if !others.is_empty() {
        output::note(&format!(
            "e: other versions of `{name}` name other images: {}; build them with `--tag IMAGE`",
            others.join(", ")
        ));
    }
    Ok(version.image.clone())
}

/// Warns when `tag` is the image an installed version was applied with and is now another.
fn warn_pinned(context: &Context, tag: &str, id: &str) {
    let path = context.shared_path.join(".e/installed.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return;
    };
    let Ok(records) =
        serde_json::from_slice::<std::collections::BTreeMap<String, Installed>>(&bytes)
    else {
        return;
    };
    for record in records.values() {
        if record.image == tag && !record.image_id.is_empty() && record.image_id != id {
            output::warn(&format!(
                "`{}@{}` is installed with the image `{tag}` as it was ({}); e pins it, so `e apply {}` refuses the rebuilt one until `e upgrade {} --to {}` audits the state with it",
                record.module,
                record.version,
                crate::plan_file::short(&record.image_id),
                record.module,
                record.module,
                record.version
            ));
        }
    }
}

/// Builds the image.
pub async fn run(
    args: BuildArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    if !args.dir.join("Dockerfile").is_file() {
        anyhow::bail!(
            "`{}` has no Dockerfile\nhint: e build takes a folder holding a Dockerfile and everything it copies",
            args.dir.display()
        );
    }
    let tag = tag_for(&args, context)?;
    let image = engine.build(&args.dir, &tag, &BuildLog).await?;
    output::note(&format!("built `{tag}` ({})", image.id));
    warn_pinned(context, &tag, &image.id);
    Ok(ExitCode::SUCCESS)
}
