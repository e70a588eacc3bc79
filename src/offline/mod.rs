//! The downloader of the design's offline mode: each module lists what it needs in its bill of
//! materials, and one downloader collects it for all of them, into a cache on this machine that
//! every later `e download` and `e export` reuses.
//!
//! `download.rs` fetches files by `http(s)` URL in one container of the downloader image (a
//! static busybox's wget), `debian.rs` resolves Debian packages with their dependencies in a
//! container of the target release and indexes them as an apt repository. Both run with the
//! host's network (the only containers e gives it to by itself) and write only into the cache,
//! which is bind-mounted: a partial download never sits where a whole one is looked for, and e
//! checks every file's sha256 itself before it takes it. This module never prints tables or
//! writes archives: `commands/download.rs` and `commands/export.rs` do.

pub mod bill;
pub mod debian;
pub mod download;
pub mod redact;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::output;
use crate::repository::model::User;
use crate::runtime::{
    Confinement, Engine, Network, OutputSink, RunSpec, SharedCopy, Stream, Transfer, labels,
};

/// The cache's folder under e's cache directory.
const DOWNLOADS_DIR: &str = "downloads";

/// Where the downloads are kept: `$E_CACHE_DIR/downloads` (else under `$XDG_CACHE_HOME/e` or
/// `~/.cache/e`), created if missing.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    let Some(base) = crate::repository::cache_directory() else {
        bail!(
            "e has no cache directory for its downloads\nhint: set `E_CACHE_DIR` (or `HOME`) to a directory e may write"
        );
    };
    let dir = base.join(DOWNLOADS_DIR);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create the download cache `{}`", dir.display()))?;
    // The engine mounts what it is given by absolute path.
    dir.canonicalize()
        .with_context(|| format!("failed to resolve `{}`", dir.display()))
}

/// What a downloader container printed, and how it ended.
pub struct Ran {
    /// Its standard output: the lines of its protocol.
    pub stdout: String,
    /// Its exit code.
    pub exit_code: i64,
}

/// Collects a downloader's stdout, and passes its stderr (its progress) on as it comes.
struct Collect {
    stdout: Mutex<Vec<u8>>,
    prefix: &'static str,
}

impl OutputSink for Collect {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self
                .stdout
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(bytes),
            Stream::Stderr => {
                for line in String::from_utf8_lossy(bytes).lines() {
                    if !line.trim().is_empty() {
                        output::note(&format!("{}: {line}", self.prefix));
                    }
                }
            }
        }
    }
}

/// How a downloader container runs: as whom, with which rights.
pub struct Job<'a> {
    /// The image.
    pub image: &'a str,
    /// The arguments of its entrypoint (or its command, for an image without one).
    pub args: Vec<String>,
    /// The host folder mounted at `mount`.
    pub cache: &'a Path,
    /// Where the cache appears in the container.
    pub mount: &'a str,
    /// Root with the capabilities a package manager needs and a writable root filesystem
    /// (the package resolver), or the invoking user with nothing (the file downloader).
    pub as_root: bool,
    /// Stop it after this long.
    pub timeout: Duration,
    /// Names its lines on stderr.
    pub prefix: &'static str,
}

/// Runs one downloader container with the host's network and the cache bind-mounted, and
/// returns what it printed. The image must be present (it is never pulled from a registry
/// here: the error says how to build it).
pub async fn run(engine: &dyn Engine, job: Job<'_>, hint: &str) -> anyhow::Result<Ran> {
    if engine.transfer().await? != Transfer::Bind {
        bail!(
            "the downloader needs an engine on this machine: it writes into e's cache here\nhint: run `e download` with a local engine (unset `DOCKER_HOST`), then export"
        );
    }
    if engine.inspect_image(job.image).await?.is_none() {
        bail!(
            "the downloader image `{}` is not in the engine\nhint: {hint}",
            job.image
        );
    }
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let invoking = unsafe { (libc::getuid(), libc::getgid()) };
    let user = if job.as_root {
        User { uid: 0, gid: 0 }
    } else {
        User {
            uid: invoking.0,
            gid: invoking.1,
        }
    };
    let mut confinement = Confinement::defaults(user);
    confinement.read_only_rootfs = !job.as_root;
    let capabilities = if job.as_root {
        ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"]
            .map(str::to_owned)
            .to_vec()
    } else {
        Vec::new()
    };
    let run = format!("download-{}", std::process::id());
    let spec = RunSpec {
        image: job.image.to_owned(),
        args: job.args,
        env: vec![("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned())],
        workdir: None,
        shared: SharedCopy::Bind {
            host: job.cache.to_owned(),
        },
        shared_path: job.mount.to_owned(),
        volumes: Vec::new(),
        confinement,
        network: Network::Host,
        capabilities,
        labels: labels("e-downloader", &run),
        secret_files: None,
        timeout: Some(job.timeout),
    };
    let sink = Collect {
        stdout: Mutex::new(Vec::new()),
        prefix: job.prefix,
    };
    let outcome = engine
        .run(&spec, &sink)
        .await
        .with_context(|| format!("the downloader `{}` did not run", job.image))?;
    if let Some(stopped) = outcome.stopped {
        bail!(
            "the downloader `{}` was stopped ({stopped:?}) before it finished; what it fetched whole is kept\nhint: run it again: it resumes",
            job.image
        );
    }
    let stdout = sink
        .stdout
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(Ran {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        exit_code: outcome.exit_code,
    })
}

/// The repository machine's server image (`modules/repo/`), which `e serve` runs and `e export`
/// carries when the archive holds something to serve.
pub const SERVER_IMAGE: &str = "e-modules/repo:0.1.0";

/// The downloader image of this e: `E_DOWNLOADER_IMAGE`, else `e-modules/downloader:0.1.0`.
pub fn downloader_image() -> String {
    std::env::var("E_DOWNLOADER_IMAGE")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "e-modules/downloader:0.1.0".to_owned())
}
