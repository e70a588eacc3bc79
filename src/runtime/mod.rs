//! The container engine, behind a trait that speaks e's own types.
//!
//! `docker/` implements it with bollard against a real Docker Engine API; `fake.rs` stands in
//! for unit and CLI tests. Which engine is `endpoint.rs`'s question (the docker CLI's rules),
//! and how to reach it `connect.rs`'s and `ssh.rs`'s. Nothing outside `runtime/` knows bollard
//! exists. Everything e creates in the engine carries the labels of [`labels`], so leftovers
//! can be found.

pub mod confinement;
mod connect;
pub mod docker;
pub mod endpoint;
pub mod fake;
mod ssh;

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
/// Label with the id of the shared directory the run belongs to.
pub const LABEL_SHARED: &str = "e.shared";
/// Label naming who started the run: `user@host pid N`.
pub const LABEL_OWNER: &str = "e.owner";
/// Label naming the container path a module's volume is mounted at.
pub const LABEL_MOUNT: &str = "e.mount";
/// Label with the run's [`Transfer`].
pub const LABEL_TRANSFER: &str = "e.transfer";

/// Where a run's secret files appear in its container (Docker's convention).
pub const SECRETS_PATH: &str = "/run/secrets";

/// The labels e puts on a container it starts.
pub fn labels(module: &str, run: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), "e".to_owned()),
        (LABEL_MODULE.to_owned(), module.to_owned()),
        (LABEL_RUN.to_owned(), run.to_owned()),
    ])
}

/// How a run's private copy of the shared directory reaches its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transfer {
    /// The engine sees e's files (a local socket): the copy is a host directory, bind-mounted.
    Bind,
    /// It may not (a remote engine): the copy is uploaded into the container before it starts
    /// and downloaded after it stops, through the engine's archive API.
    Archive,
}

impl Transfer {
    /// The word for messages and `--transfer`.
    pub fn name(self) -> &'static str {
        match self {
            Transfer::Bind => "bind",
            Transfer::Archive => "archive",
        }
    }
}

/// The run's private copy of the shared directory, as the engine gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedCopy {
    /// A host directory, bind-mounted through the API's `Mounts`, which fails on a missing
    /// source instead of creating an empty directory: an engine that cannot see e's files is
    /// detected rather than silently wrong.
    Bind {
        /// Absolute host path of the copy.
        host: PathBuf,
    },
    /// A tar uploaded into an anonymous volume before start; the volume's content is read back
    /// (up to `download_limit` bytes) after the container stops.
    Archive {
        /// The tar of the copy (see `run::tree::Tree::to_tar`).
        upload: Vec<u8>,
        /// The most bytes of the download that are read; past it the download is refused.
        download_limit: u64,
    },
}

/// A named volume of the engine mounted into the container: a module's private `mounts:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The volume's name; created (with e's labels) when missing.
    pub name: String,
    /// Absolute container path.
    pub container: String,
    /// Labels for a volume e creates.
    pub labels: BTreeMap<String, String>,
    /// A tar to fill the volume with when it does not exist yet: a module's private data from
    /// before mounts were volumes.
    pub seed: Option<Vec<u8>>,
    /// Whether an existing volume must first be given, whole, to the run's user (it was made
    /// for another uid, or e does not know for which).
    pub reown: bool,
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
    /// The run's private copy of the shared directory.
    pub shared: SharedCopy,
    /// Where the copy appears in the container (`/shared`).
    pub shared_path: String,
    /// Named volumes to mount.
    pub volumes: Vec<Volume>,
    /// Who the container runs as, what it may write, its memory, CPU and process limits.
    pub confinement: Confinement,
    /// Network mode; `None` is the default.
    pub network: Network,
    /// Capabilities to add back after dropping all.
    pub capabilities: Vec<String>,
    /// Labels for the container (see [`labels`]).
    pub labels: BTreeMap<String, String>,
    /// A host directory of secret files, bind-mounted read-only at `/run/secrets` (it is on
    /// a tmpfs of e's machine: see `run/secret_files.rs`).
    pub secret_files: Option<PathBuf>,
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
    /// Its timeout passed (`--timeout`, the command's `timeout:`, or e's default).
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
    /// For [`SharedCopy::Archive`]: the tar of the container's shared directory after it
    /// stopped, or why it could not be read.
    pub download: Option<Result<Vec<u8>, String>>,
    /// The volumes that were created and filled from their [`Volume::seed`].
    pub seeded: Vec<String>,
    /// The volumes that were created or re-owned for the run's user.
    pub owned: Vec<String>,
}

/// A container of a run whose e died, found and removed by [`Engine::reap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Its run id (label `e.run`).
    pub run: String,
    /// Its module (label `e.module`).
    pub module: String,
    /// For a run with [`Transfer::Archive`]: what the container left in its shared directory.
    pub download: Option<Result<Vec<u8>, String>>,
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

    /// How runs should hand their private copy to this engine: [`Transfer::Bind`] when it
    /// sees e's files (a local socket), else [`Transfer::Archive`].
    fn transfer(&self) -> BoxFuture<'_, anyhow::Result<Transfer>>;

    /// Stops and removes every container of the shared directory `shared_id` (label
    /// `e.shared`), first reading what archive-mode ones left. Called under the lock, when
    /// no run of that directory can be alive.
    fn reap<'a>(&'a self, shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Reaped>>>;

    /// Removes every volume of the shared directory `shared_id` (label `e.shared`): the
    /// modules' private volumes and any a run left. Only for a shared directory that is being
    /// thrown away (`e check`'s); returns how many went.
    fn remove_volumes<'a>(&'a self, shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<usize>>;

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

    /// What the engine knows of an image it has, without pulling; `None` when it has none.
    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<ImageInfo>>>;

    /// Gives the present image `image` the further name `target`.
    fn tag_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Tags the present image `image` as `target` (`REGISTRY/PATH:TAG`) and pushes it to that
    /// registry with the credentials the docker CLI would use; returns the digest the registry
    /// gave it. The tag stays in the engine.
    fn push_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<String>>;
}
