//! `e push MODULE... REGISTRY`: tags the images of module versions (their own and those of
//! their bills of materials) under a registry and pushes them there, for the machines that
//! pull from it. The images must be in the engine (`e build`, `e import`).

use std::process::ExitCode;

use anyhow::Context as _;

use crate::Context;
use crate::cli::PushArgs;
use crate::output;
use crate::registry::Registry;
use crate::runtime::Engine;

/// One image pushed: where from, where to, and the digest the registry gave it.
#[derive(Debug, serde::Serialize)]
pub struct Pushed {
    /// The image as the repository names it.
    pub image: String,
    /// Its name in the registry.
    pub pushed_as: String,
    /// The registry's digest of it.
    pub digest: String,
}

/// Runs `e push`.
pub async fn run(
    args: PushArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let mut images: Vec<String> = Vec::new();
    for spec in &args.modules {
        let entry = repository.find(spec)?;
        let version = entry.version;
        for image in std::iter::once(&version.image).chain(&version.requirements.images) {
            if !images.contains(image) {
                images.push(image.clone());
            }
        }
    }
    let pushed = push_all(engine, &args.registry, &images).await?;
    if let Some(text) = output::serialized(args.output, &pushed)? {
        output::data(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = pushed
        .iter()
        .map(|p| vec![p.image.clone(), p.pushed_as.clone(), p.digest.clone()])
        .collect();
    output::data(&output::table(&["IMAGE", "PUSHED AS", "DIGEST"], rows))?;
    output::note(&format!(
        "hint: a repository whose images are named under `{}` pulls them from there (`e import FILE --push {}` writes one)",
        args.registry, args.registry
    ));
    Ok(ExitCode::SUCCESS)
}

/// Pushes each image under `registry`, in order, stopping at the first that fails.
pub async fn push_all(
    engine: &dyn Engine,
    registry: &Registry,
    images: &[String],
) -> anyhow::Result<Vec<Pushed>> {
    let mut pushed = Vec::new();
    for image in images {
        engine.ensure_image(image).await?;
        let target = registry.reference(image);
        let digest = engine
            .push_image(image, &target)
            .await
            .with_context(|| format!("failed to push image `{image}` to `{registry}`"))?;
        pushed.push(Pushed {
            image: image.clone(),
            pushed_as: target,
            digest,
        });
    }
    Ok(pushed)
}
