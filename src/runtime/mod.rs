//! The container engine, behind a trait that speaks e's own types.
//!
//! `docker.rs` implements it with bollard against a real Docker Engine API; `fake.rs` stands in
//! for unit and CLI tests. Nothing outside `docker.rs` knows bollard exists. Everything e
//! creates in the engine carries the labels of [`labels`], so leftovers can be found.

pub mod confinement;
pub mod docker;
pub mod fake;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use crate::repository::model::Network;
pub use confinement::Confinement;

/// Label on everything e creates in the engine.
pub const LABEL_MANAGED_BY: &str = "e.managed-by";
/// Label naming the module a container runs.
pub const LABEL_MODULE: &str = "e.module";
/// Label with the id of the run (one e invocation of one method).
pub const LABEL_RUN: &str = "e.run";

/// The labels e puts on a container it starts.
pub fn labels(module: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "e".to_owned()),
        (LABEL_MODULE.to_owned(), module.to_owned()),
        (LABEL_RUN.to_owned(), run.to_owned()),
    ])
}

/// A host directory mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Absolute host path; it must exist.
    pub host: PathBuf,
    /// Absolute container path.
    pub container: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// Everything needed to run one module method in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// Image reference; must be present in the engine (see [`Engine::ensure_image`]).
    pub image: String,
    /// Arguments given to the image's entrypoint: command, args, extra args.
    pub args: Vec<String>,
    /// Environment variables, already resolved (may hold secrets: never log them).
    pub env: Vec<(String, String)>,
    /// Working directory in the container.
    pub workdir: Option<String>,
    /// Host directories to mount.
    pub binds: Vec<Bind>,
    /// Who the container runs as, what it may write, its memory, CPU and process limits.
    pub confinement: Confinement,
    /// Network mode; `None` is the default.
    pub network: Network,
    /// Capabilities to add back after dropping all.
    pub capabilities: Vec<String>,
    /// Labels for the container (see [`labels`]).
    pub labels: BTreeMap<String, String>,
    /// Stop the container (then kill it) after this long.
    pub timeout: Option<Duration>,
}

/// Which stream a chunk of container output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

/// Receives container output as it arrives.
pub trait OutputSink: Send + Sync {
    /// Called for every chunk, in order.
    fn write(&self, stream: Stream, bytes: &[u8]);
}

/// Why a container was stopped before it exited by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// `--timeout` passed.
    Timeout,
    /// The user pressed Ctrl-C.
    Interrupted,
}

/// How a run ended. The container is gone in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The container's exit code (for a stopped container, what the engine reported).
    pub exit_code: i64,
    /// Set when e stopped the container.
    pub stopped: Option<Stopped>,
}

/// What the engine knows about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:...`).
    pub id: String,
    /// Repository digests, if the image came from a registry.
    pub digests: Vec<String>,
    /// Its size in bytes, as the engine reports it (all layers, uncompressed).
    pub size: u64,
}

/// A container engine that can run module methods.
pub trait Engine: Send + Sync {
    /// Makes sure the image is present, pulling it (with progress on stderr) when it is not.
    /// The error names the image and says how to build or import it.
    fn ensure_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, anyhow::Result<ImageInfo>>;

    /// Runs a container to completion, streaming its output to `sink`, and always removes it:
    /// on success, failure, timeout and Ctrl-C (stop, then kill).
    fn run<'a>(
        &'a self,
        spec: &'a RunSpec,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<Outcome>>;

    /// Builds an image from a directory holding a Dockerfile, tagging it `tag`, streaming the
    /// build log to `sink`.
    fn build<'a>(
        &'a self,
        context: &'a Path,
        tag: &'a str,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<ImageInfo>>;

    /// Writes one `docker save` stream of these images (each layer once, however many images
    /// share it) to `out`, and returns the number of bytes written. The images must be present.
    fn save_images<'a>(
        &'a self,
        images: &'a [String],
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, anyhow::Result<u64>>;

    /// Loads the images of a `docker save` stream read from `source`, without any registry,
    /// and returns the references loaded. An error from `source` aborts the load.
    fn load_images(
        &self,
        source: Box<dyn Read + Send>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<String>>>;
}
