//! A stand-in [`Engine`] for unit and CLI tests: no containers, scripted behaviour.
//!
//! [`FakeEngine`] records every [`RunSpec`] it receives, holds a set of present images, and for
//! each image runs a closure the test gives it, which may print output and write into the bind
//! host paths. Where a test can see the difference it behaves like the Docker engine: the same
//! errors for a missing image, a bad bind or a missing Dockerfile, and a built image is present
//! afterwards. It never touches a real engine; [`RecordingSink`] collects output for asserts.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use futures_util::future::BoxFuture;

use super::docker::{
    absent_image_error, missing_image_error, mounts, no_dockerfile_error, with_default_tag,
};
use super::{
    Engine, ImageInfo, Outcome, OutputSink, Reaped, RunSpec, SharedCopy, Stream, Transfer,
};

/// What a fake container does: it gets the spec and the sink, and returns the exit code. Its
/// shared directory is always a host directory ([`SharedCopy::Bind`]): for an archive-mode
/// run, the fake unpacks the upload into one and packs it again afterwards, as the engine would.
pub type Behaviour = Box<dyn Fn(&RunSpec, &dyn OutputSink) -> anyhow::Result<i64> + Send + Sync>;

/// An [`Engine`] that runs closures instead of containers.
#[derive(Default)]
pub struct FakeEngine {
    state: Mutex<State>,
}

/// Everything the fake engine knows, behind one lock.
#[derive(Default)]
struct State {
    /// Present images, by reference with a tag (`name:latest` for `name`).
    images: BTreeMap<String, ImageInfo>,
    /// The scripted behaviour per image reference (with a tag).
    behaviours: HashMap<String, Arc<Behaviour>>,
    /// Every spec `run` received, in order.
    runs: Vec<RunSpec>,
    /// Every `(context, tag)` `build` received, in order.
    builds: Vec<(PathBuf, String)>,
    /// Every `(image, target)` `push_image` received, in order.
    pushes: Vec<(String, String)>,
}

impl std::fmt::Debug for FakeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("FakeEngine")
            .field("images", &state.images.keys().collect::<Vec<_>>())
            .field("behaviours", &state.behaviours.keys().collect::<Vec<_>>())
            .field("runs", &state.runs.len())
            .finish()
    }
}

impl FakeEngine {
    /// An engine without images, behaviours or runs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an image to the engine, as if it had been built or imported.
    pub fn with_image(self, image: &str) -> Self {
        self.add_image(image);
        self
    }

    /// Adds an image to an engine already in use.
    pub fn add_image(&self, image: &str) -> ImageInfo {
        let reference = with_default_tag(image);
        let info = ImageInfo {
            id: fake_image_id(&reference),
            digests: Vec::new(),
            size: FAKE_IMAGE_SIZE,
        };
        self.state().images.insert(reference, info.clone());
        info
    }

    /// Scripts what a run of `image` does; without a script a run prints nothing and exits 0.
    /// The image must still be added with [`FakeEngine::with_image`] for runs to find it.
    pub fn on_run(&self, image: &str, behaviour: Behaviour) {
        self.state()
            .behaviours
            .insert(with_default_tag(image), Arc::new(behaviour));
    }

    /// Every spec `run` received, in order (also those that failed).
    pub fn runs(&self) -> Vec<RunSpec> {
        self.state().runs.clone()
    }

    /// Every `(context, tag)` `build` received, in order.
    pub fn builds(&self) -> Vec<(PathBuf, String)> {
        self.state().builds.clone()
    }

    /// Every `(image, target)` pushed, in order.
    pub fn pushes(&self) -> Vec<(String, String)> {
        self.state().pushes.clone()
    }

    /// The references of the present images, sorted, each with a tag.
    pub fn images(&self) -> Vec<String> {
        self.state().images.keys().cloned().collect()
    }

    /// The state; a test that panicked while holding the lock does not make others panic.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Engine::ensure_image`]: the fake engine cannot pull.
    fn find_image(&self, image: &str) -> anyhow::Result<ImageInfo> {
        self.state()
            .images
            .get(&with_default_tag(image))
            .cloned()
            .ok_or_else(|| missing_image_error(image, "the fake engine has no registry"))
    }

    /// [`Engine::run`]: record, check like the engine would, then run the behaviour.
    fn run_behaviour(&self, spec: &RunSpec, sink: &dyn OutputSink) -> anyhow::Result<Outcome> {
        let reference = with_default_tag(&spec.image);
        let behaviour = {
            let mut state = self.state();
            state.runs.push(spec.clone());
            if !state.images.contains_key(&reference) {
                let cause = format!("No such image: {reference}");
                return Err(absent_image_error(&spec.image, &cause));
            }
            state.behaviours.get(&reference).cloned()
        };
        mounts(spec)?;
        if let SharedCopy::Bind { host } = &spec.shared
            && !host.is_dir()
        {
            anyhow::bail!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                host.display()
            );
        }
        // The container's view of an archive-mode copy: a directory of its own.
        let (volume, local_spec) = match &spec.shared {
            SharedCopy::Bind { .. } => (None, None),
            SharedCopy::Archive { upload, .. } => {
                let volume = tempfile::tempdir().context("failed to create the fake volume")?;
                tar::Archive::new(upload.as_slice())
                    .unpack(volume.path())
                    .context("failed to unpack the upload")?;
                let mut local = spec.clone();
                local.shared = SharedCopy::Bind {
                    host: volume.path().to_owned(),
                };
                (Some(volume), Some(local))
            }
        };
        // The lock is released: a behaviour may take its time or look at the engine.
        let exit_code = match behaviour {
            Some(behaviour) => behaviour(local_spec.as_ref().unwrap_or(spec), sink)?,
            None => 0,
        };
        let download = match volume {
            None => None,
            Some(volume) => {
                let mut builder = tar::Builder::new(Vec::new());
                builder.follow_symlinks(false);
                builder
                    .append_dir_all("shared", volume.path())
                    .context("failed to pack the fake volume")?;
                Some(Ok(builder.into_inner()?))
            }
        };
        Ok(Outcome {
            exit_code,
            stopped: None,
            download,
            seeded: Vec::new(),
            owned: Vec::new(),
        })
    }

    /// [`Engine::build`]: the image is present afterwards.
    fn build_image(
        &self,
        context: &Path,
        tag: &str,
        sink: &dyn OutputSink,
    ) -> anyhow::Result<ImageInfo> {
        self.state()
            .builds
            .push((context.to_owned(), tag.to_owned()));
        if !context.join("Dockerfile").is_file() {
            return Err(no_dockerfile_error(context, tag));
        }
        let info = self.add_image(tag);
        let log = format!("fake build of `{tag}` from `{}`\n", context.display());
        sink.write(Stream::Stdout, log.as_bytes());
        Ok(info)
    }
}

impl FakeEngine {
    /// [`Engine::save_images`]: a small `docker save`-like tar: one config file per image and
    /// a `manifest.json` naming their tags, which [`FakeEngine::load_stream`] reads back.
    fn save_stream(&self, images: &[String], out: &mut (dyn Write + Send)) -> anyhow::Result<u64> {
        let mut manifest = Vec::new();
        let mut builder = tar::Builder::new(Vec::new());
        for image in images {
            let info = self.find_image(image)?;
            let config = format!("{}.json", info.id.trim_start_matches("sha256:"));
            let body = format!("{{\"fake\": \"{}\"}}", with_default_tag(image));
            append(&mut builder, &config, body.as_bytes())?;
            let tags = [with_default_tag(image)];
            manifest.push(serde_json::json!({"Config": config, "RepoTags": tags, "Layers": []}));
        }
        append(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest)?,
        )?;
        let bytes = builder.into_inner()?;
        out.write_all(&bytes)?;
        Ok(bytes.len() as u64)
    }

    /// [`Engine::load_images`]: adds the images `manifest.json` names.
    fn load_stream(&self, source: Box<dyn Read + Send>) -> anyhow::Result<Vec<String>> {
        let mut archive = tar::Archive::new(source);
        let mut loaded = Vec::new();
        for entry in archive
            .entries()
            .context("the engine failed to load the images")?
        {
            let mut entry = entry.context("the engine failed to load the images")?;
            if entry.path()?.as_os_str() == "manifest.json" {
                let manifest: Vec<serde_json::Value> = serde_json::from_reader(&mut entry)?;
                for image in &manifest {
                    for tag in image["RepoTags"].as_array().into_iter().flatten() {
                        loaded.push(tag.as_str().unwrap_or_default().to_owned());
                    }
                }
            }
        }
        for image in &loaded {
            self.add_image(image);
        }
        Ok(loaded)
    }
}

/// Appends a regular file to a tar being built in memory.
fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, path, bytes)?;
    Ok(())
}

impl Engine for FakeEngine {
    fn transfer(&self) -> BoxFuture<'_, anyhow::Result<Transfer>> {
        Box::pin(async { Ok(Transfer::Bind) })
    }

    fn reap<'a>(&'a self, _shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Reaped>>> {
        // A fake container never outlives its run.
        Box::pin(async { Ok(Vec::new()) })
    }

    fn remove_volumes<'a>(&'a self, _shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<usize>> {
        // The fake engine keeps no volumes.
        Box::pin(async { Ok(0) })
    }

    fn ensure_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, anyhow::Result<ImageInfo>> {
        Box::pin(async move { self.find_image(image) })
    }

    fn run<'a>(
        &'a self,
        spec: &'a RunSpec,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<Outcome>> {
        Box::pin(async move { self.run_behaviour(spec, sink) })
    }

    fn build<'a>(
        &'a self,
        context: &'a Path,
        tag: &'a str,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<ImageInfo>> {
        Box::pin(async move { self.build_image(context, tag, sink) })
    }

    fn save_images<'a>(
        &'a self,
        images: &'a [String],
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move { self.save_stream(images, out) })
    }

    fn load_images(
        &self,
        source: Box<dyn Read + Send>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        Box::pin(async move { self.load_stream(source) })
    }

    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<ImageInfo>>> {
        Box::pin(async move { Ok(self.find_image(image).ok()) })
    }

    fn tag_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let info = self.find_image(image)?;
            self.state().images.insert(with_default_tag(target), info);
            Ok(())
        })
    }

    fn push_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<String>> {
        Box::pin(async move {
            let info = self.find_image(image)?;
            self.state().images.insert(with_default_tag(target), info);
            self.state()
                .pushes
                .push((image.to_owned(), target.to_owned()));
            Ok(fake_image_id(&with_default_tag(target)))
        })
    }
}

/// The size the fake engine reports for every image.
const FAKE_IMAGE_SIZE: u64 = 1_000_000;

/// A stable, image-like id (`sha256:` and 64 hex digits) derived from the reference.
fn fake_image_id(reference: &str) -> String {
    let mut id = String::from("sha256:");
    for seed in 0u64..4 {
        // FNV-1a, seeded four times for 256 bits; stable across runs and Rust versions.
        let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
        for byte in reference.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        id.push_str(&format!("{hash:016x}"));
    }
    id
}

/// An [`OutputSink`] that keeps every chunk, for tests to look at.
#[derive(Debug, Default)]
pub struct RecordingSink {
    chunks: Mutex<Vec<(Stream, Vec<u8>)>>,
}

impl RecordingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every chunk, in the order it arrived.
    pub fn chunks(&self) -> Vec<(Stream, Vec<u8>)> {
        self.lock().clone()
    }

    /// Everything written to one stream, as text (invalid UTF-8 replaced).
    pub fn text(&self, stream: Stream) -> String {
        let bytes: Vec<u8> = self
            .lock()
            .iter()
            .filter(|(from, _)| *from == stream)
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Everything written to stdout.
    pub fn stdout(&self) -> String {
        self.text(Stream::Stdout)
    }

    /// Everything written to stderr.
    pub fn stderr(&self) -> String {
        self.text(Stream::Stderr)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Stream, Vec<u8>)>> {
        self.chunks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl OutputSink for RecordingSink {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        self.lock().push((stream, bytes.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::model::User;
    use crate::runtime::{Confinement, Network, labels};

    fn spec(image: &str) -> RunSpec {
        RunSpec {
            image: image.to_owned(),
            args: vec!["apply".to_owned()],
            env: vec![("E_MODULE".to_owned(), "web".to_owned())],
            workdir: None,
            shared: SharedCopy::Bind {
                host: std::env::temp_dir(),
            },
            shared_path: "/shared".to_owned(),
            volumes: Vec::new(),
            confinement: Confinement::defaults(User {
                uid: 1000,
                gid: 1000,
            }),
            network: Network::None,
            capabilities: Vec::new(),
            labels: labels("web", "r1"),
            secret_files: None,
            timeout: None,
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn runs_are_recorded_and_scripted() {
        let engine = FakeEngine::new().with_image("web:1");
        engine.on_run(
            "web:1",
            Box::new(|spec, sink| {
                sink.write(
                    Stream::Stdout,
                    format!("{}\n", spec.args.join(" ")).as_bytes(),
                );
                sink.write(Stream::Stderr, b"warned\n");
                Ok(3)
            }),
        );
        let sink = RecordingSink::new();
        let outcome = block_on(engine.run(&spec("web:1"), &sink)).expect("run");
        assert_eq!(
            outcome,
            Outcome {
                exit_code: 3,
                stopped: None,
                download: None,
                seeded: Vec::new(),
                owned: Vec::new(),
            }
        );
        assert_eq!(sink.stdout(), "apply\n");
        assert_eq!(sink.stderr(), "warned\n");
        assert_eq!(engine.runs(), vec![spec("web:1")]);
    }

    #[test]
    fn an_unscripted_run_exits_zero_silently() {
        let engine = FakeEngine::new().with_image("web");
        let sink = RecordingSink::new();
        let outcome = block_on(engine.run(&spec("web:latest"), &sink)).expect("run");
        assert_eq!(outcome.exit_code, 0);
        assert!(sink.chunks().is_empty());
    }

    #[test]
    fn behaviours_write_into_binds() {
        let shared = tempfile::tempdir().expect("temp dir");
        let engine = FakeEngine::new().with_image("web:1");
        engine.on_run(
            "web:1",
            Box::new(|spec, _| {
                let SharedCopy::Bind { host } = &spec.shared else {
                    anyhow::bail!("a fake container always sees a directory");
                };
                std::fs::write(host.join("state.yaml"), "applied: true\n")?;
                Ok(0)
            }),
        );
        let mut spec = spec("web:1");
        spec.shared = SharedCopy::Bind {
            host: shared.path().to_owned(),
        };
        block_on(engine.run(&spec, &RecordingSink::new())).expect("run");
        let written = std::fs::read_to_string(shared.path().join("state.yaml")).expect("read");
        assert_eq!(written, "applied: true\n");

        // In archive mode the same behaviour's writes come back as a download.
        let mut upload = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        upload
            .append_data(&mut header, "before.txt", &b"old"[..])
            .expect("tar");
        spec.shared = SharedCopy::Archive {
            upload: upload.into_inner().expect("tar"),
            download_limit: 1 << 20,
        };
        let outcome = block_on(engine.run(&spec, &RecordingSink::new())).expect("run");
        let download = outcome.download.expect("a download").expect("readable");
        let mut names: Vec<String> = tar::Archive::new(download.as_slice())
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["shared/", "shared/before.txt", "shared/state.yaml"]);
    }

    #[test]
    fn a_failing_behaviour_is_an_error() {
        let engine = FakeEngine::new().with_image("web:1");
        engine.on_run("web:1", Box::new(|_, _| anyhow::bail!("scripted failure")));
        let err = block_on(engine.run(&spec("web:1"), &RecordingSink::new())).expect_err("fails");
        assert_eq!(format!("{err:#}"), "scripted failure");
        assert_eq!(engine.runs().len(), 1);
    }

    #[test]
    fn missing_images_are_errors_with_a_hint() {
        let engine = FakeEngine::new();
        let err = block_on(engine.ensure_image("web:1")).expect_err("missing");
        assert_eq!(
            format!("{err:#}"),
            "image `web:1` is not in the engine and could not be pulled: the fake engine has no registry\n\
             hint: build it with `e build DIR --tag web:1`, or import it with `e import FILE`"
        );
        let err = block_on(engine.run(&spec("web:1"), &RecordingSink::new())).expect_err("missing");
        assert_eq!(
            format!("{err:#}"),
            "image `web:1` is not in the engine: No such image: web:1\n\
             hint: build it with `e build DIR --tag web:1`, or import it with `e import FILE`"
        );
        assert_eq!(engine.runs().len(), 1, "a failed run is still recorded");
    }

    #[test]
    fn binds_are_checked_like_the_engine() {
        let engine = FakeEngine::new().with_image("web:1");
        let mut spec = spec("web:1");
        spec.shared = SharedCopy::Bind {
            host: PathBuf::from("/nonexistent/e-fake-test"),
        };
        let err = block_on(engine.run(&spec, &RecordingSink::new())).expect_err("bad bind");
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    }

    #[test]
    fn build_adds_the_image() {
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::write(context.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        let engine = FakeEngine::new();
        let sink = RecordingSink::new();
        let built = block_on(engine.build(context.path(), "web:2", &sink)).expect("build");
        let ensured = block_on(engine.ensure_image("web:2")).expect("present after build");
        assert_eq!(built, ensured);
        assert!(
            built.id.starts_with("sha256:") && built.id.len() == 7 + 64,
            "{}",
            built.id
        );
        assert!(sink.stdout().contains("web:2"));
        assert_eq!(engine.images(), ["web:2"]);
        assert_eq!(
            engine.builds(),
            [(context.path().to_owned(), "web:2".to_owned())]
        );
    }

    #[test]
    fn build_without_dockerfile_fails() {
        let context = tempfile::tempdir().expect("temp dir");
        let engine = FakeEngine::new();
        let err = block_on(engine.build(context.path(), "web:2", &RecordingSink::new()))
            .expect_err("no Dockerfile");
        assert!(format!("{err:#}").contains("has no Dockerfile"), "{err:#}");
        assert!(engine.images().is_empty());
    }

    #[test]
    fn saved_images_load_into_another_engine() {
        let engine = FakeEngine::new().with_image("web:1").with_image("db");
        let images = ["web:1".to_owned(), "db".to_owned()];
        let mut stream = Vec::new();
        let written = block_on(engine.save_images(&images, &mut stream)).expect("save");
        assert_eq!(written, stream.len() as u64);
        let other = FakeEngine::new();
        let loaded =
            block_on(other.load_images(Box::new(std::io::Cursor::new(stream)))).expect("load");
        assert_eq!(loaded, ["web:1", "db:latest"]);
        assert_eq!(other.images(), ["db:latest", "web:1"]);
        let err = block_on(engine.save_images(&["absent:1".to_owned()], &mut Vec::new()))
            .expect_err("absent");
        assert!(format!("{err:#}").contains("absent:1"), "{err:#}");
    }

    #[test]
    fn ids_differ_per_image_and_are_stable() {
        assert_eq!(fake_image_id("a:1"), fake_image_id("a:1"));
        assert_ne!(fake_image_id("a:1"), fake_image_id("a:2"));
    }
}
