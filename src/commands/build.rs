//! `e build [DIR]`: builds a module image from a folder with a Dockerfile, through the Engine
//! API, so module authors need no docker CLI.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::Context;
use crate::cli::BuildArgs;
use crate::output;
use crate::runtime::{Engine, OutputSink, Stream};

struct BuildLog;

impl OutputSink for BuildLog {
    fn write(&self, _stream: Stream, bytes: &[u8]) {
        // The build log is progress, not data: it goes to stderr.
        output::stream(Stream::Stderr, &String::from_utf8_lossy(bytes));
    }
}

/// The tag for a build: the one given, else the image of the module named like the folder.
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
    Ok(module.default_version().image.clone())
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
    Ok(ExitCode::SUCCESS)
}
