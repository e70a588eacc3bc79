//! Images in the Docker engine: inspect, pull (with the credentials of `credentials.rs`),
//! build from a folder, save and load `docker save` streams, tag and push. Split from `mod.rs`,
//! which runs the containers.

use super::*;

impl DockerEngine {
    /// Removes an image (forcing, so that tags and stopped containers do not keep it); an image
    /// that is already gone is not an error.
    pub async fn remove_image(&self, image: &str) -> anyhow::Result<()> {
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        match self.docker.remove_image(image, Some(options), None).await {
            Err(err) if is_not_found(&err) => Ok(()),
            result => result
                .map(drop)
                .engine_context(|| format!("failed to remove image `{image}`")),
        }
    }

    /// Inspects an image; `None` when the engine does not have it.
    pub(super) async fn inspect(&self, image: &str) -> anyhow::Result<Option<ImageInfo>> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(image_info(image, inspect)?)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(err).engine_context(|| format!("failed to inspect image `{image}`")),
        }
    }

    /// [`Engine::ensure_image`]: inspect, else pull.
    pub(super) async fn ensure_present(&self, image: &str) -> anyhow::Result<ImageInfo> {
        if let Some(info) = self.inspect(image).await? {
            return Ok(info);
        }
        if let Err(err) = self.pull(image).await {
            return Err(missing_image_error(image, &format!("{err:#}")));
        }
        self.inspect(image)
            .await?
            .ok_or_else(|| missing_image_error(image, "the engine pulled it but does not list it"))
    }

    /// Pulls an image, with a line of progress on stderr each time a layer changes state, and
    /// the credentials the docker CLI would use for its registry.
    async fn pull(&self, image: &str) -> anyhow::Result<()> {
        let reference = with_default_tag(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(&reference)
            .build();
        let credentials = credentials::for_reference(&reference).await;
        output::note(&format!("pulling image `{reference}`"));
        let mut stream = self
            .streaming
            .create_image(Some(options), None, credentials);
        let mut progress = PullProgress::default();
        while let Some(message) = stream.next().await {
            let message = message.map_err(|err| registry_error(&reference, &err))?;
            if let Some(line) = progress.line(&message) {
                output::note(&line);
            }
        }
        Ok(())
    }

    /// [`Engine::tag_image`].
    pub(super) async fn tag(&self, image: &str, target: &str) -> anyhow::Result<()> {
        let target = with_default_tag(target);
        let (repository, tag) = split_tag(&target);
        let options = TagImageOptionsBuilder::new()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .engine_context(|| format!("failed to tag image `{image}` as `{target}`"))
    }

    /// [`Engine::push_image`]: tags `image` as `target` (the tag stays, as `docker tag` leaves
    /// it) and pushes `target` with the credentials of its registry, noting the push's
    /// summary lines on stderr; returns the digest the registry gave it.
    pub(super) async fn push(&self, image: &str, target: &str) -> anyhow::Result<String> {
        self.tag(image, target).await?;
        let target = with_default_tag(target);
        let (repository, tag) = split_tag(&target);
        let credentials = credentials::for_reference(&target).await;
        output::note(&format!("pushing image `{target}`"));
        let options = PushImageOptionsBuilder::new().tag(tag).build();
        let mut stream = self
            .streaming
            .push_image(repository, Some(options), credentials);
        let mut digest = None;
        while let Some(message) = stream.next().await {
            let message = message.map_err(|err| registry_error(&target, &err))?;
            let Some(status) = message.status else {
                continue;
            };
            if let Some(found) = pushed_digest(&status) {
                digest = Some(found);
                output::note(&status);
            }
        }
        match digest {
            Some(digest) => Ok(digest),
            None => self
                .inspect(&target)
                .await?
                .and_then(|info| {
                    info.digests
                        .into_iter()
                        .find(|d| d.starts_with(repository) && d.contains('@'))
                        .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_owned()))
                })
                .ok_or_else(|| anyhow!("the engine pushed image `{target}` but named no digest")),
        }
    }
}

impl DockerEngine {
    /// [`Engine::build`]: tar the directory, build, stream the log, inspect the tag.
    pub(super) async fn build_image(
        &self,
        context: &Path,
        tag: &str,
        sink: &dyn OutputSink,
    ) -> anyhow::Result<ImageInfo> {
        let dir = context.display();
        if !context.join("Dockerfile").is_file() {
            return Err(no_dockerfile_error(context, tag));
        }
        let owned: PathBuf = context.to_owned();
        let archive = tokio::task::spawn_blocking(move || archive_context(&owned))
            .await
            .context("the task that archives the build context failed")??;
        let options = BuildImageOptionsBuilder::new()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let mut messages =
            self.streaming
                .build_image(options, None, Some(bollard::body_full(archive.into())));
        let mut logged = false;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|err| {
                let hint = if logged {
                    "the build log above shows the step that failed".to_owned()
                } else {
                    format!("check `{}`", context.join("Dockerfile").display())
                };
                anyhow!(
                    "failed to build image `{tag}` from `{dir}`: {}\nhint: {hint}",
                    engine_message(&err)
                )
            })?;
            if let Some(text) = message.stream {
                sink.write(Stream::Stdout, text.as_bytes());
                logged = true;
            }
            if let Some(status) = message.status {
                // Status lines come from pulls of base images during the build.
                sink.write(Stream::Stdout, format!("{status}\n").as_bytes());
                logged = true;
            }
        }
        self.inspect(tag).await?.ok_or_else(|| {
            anyhow!("the engine built image `{tag}` from `{dir}` but does not list it")
        })
    }

    /// [`Engine::save_images`]: one `GET /images/get` for all of them, streamed to `out`.
    pub(super) async fn save(
        &self,
        images: &[String],
        out: &mut (dyn Write + Send),
    ) -> anyhow::Result<u64> {
        let names: Vec<&str> = images.iter().map(String::as_str).collect();
        let what = || format!("failed to save the images `{}`", images.join("`, `"));
        let mut chunks = self.streaming.export_images(&names);
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.engine_context(what)?;
            out.write_all(&chunk).with_context(what)?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// [`Engine::load_images`]: `POST /images/load` with the stream read from `source` on a
    /// blocking thread, a megabyte at a time, so the whole stream is never in memory.
    pub(super) async fn load(&self, source: Box<dyn Read + Send>) -> anyhow::Result<Vec<String>> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        let reader = tokio::task::spawn_blocking(move || {
            let mut source = source;
            loop {
                let mut buffer = vec![0u8; LOAD_CHUNK];
                let item = match source.read(&mut buffer) {
                    Ok(0) => return,
                    Ok(read) => {
                        buffer.truncate(read);
                        Ok(buffer)
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(err) => Err(err),
                };
                let failed = item.is_err();
                // A closed channel means the engine stopped reading; it says why.
                if sender.blocking_send(item).is_err() || failed {
                    return;
                }
            }
        });
        let body = futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
            .map(|chunk| chunk.map(Into::into));
        let options = ImportImageOptionsBuilder::new().quiet(true).build();
        let mut messages = self.streaming.import_image_stream(options, body, None);
        let mut loaded = Vec::new();
        let mut failure = None;
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => {
                    let text = message.stream.unwrap_or_default();
                    for line in text.lines() {
                        // Docker says one image a line; Podman all on one, joined by `,`
                        // (which a reference cannot hold).
                        if let Some(images) = line
                            .strip_prefix("Loaded image: ")
                            .or_else(|| line.strip_prefix("Loaded image ID: "))
                        {
                            loaded.extend(
                                images
                                    .split(',')
                                    .map(str::trim)
                                    .filter(|image| !image.is_empty())
                                    .map(str::to_owned),
                            );
                        }
                    }
                }
                Err(err) => {
                    failure = Some(engine_message(&err));
                    break;
                }
            }
        }
        drop(messages);
        reader
            .await
            .context("the task that reads the images for the engine failed")?;
        match failure {
            Some(cause) => bail!("the engine failed to load the images: {cause}"),
            None => Ok(loaded),
        }
    }
}

/// How much of an image stream `load` reads at a time.
const LOAD_CHUNK: usize = 1 << 20;

/// Our view of an inspected image.
fn image_info(image: &str, inspect: ImageInspect) -> anyhow::Result<ImageInfo> {
    let id = inspect
        .id
        .with_context(|| format!("the engine returned no id for image `{image}`"))?;
    Ok(ImageInfo {
        id,
        digests: inspect.repo_digests.unwrap_or_default(),
        size: inspect
            .size
            .and_then(|size| u64::try_from(size).ok())
            .unwrap_or(0),
    })
}

/// What a registry said when it refused a pull or push, with `docker login` as the hint when
/// the refusal is about credentials.
fn registry_error(reference: &str, err: &BollardError) -> anyhow::Error {
    let message = engine_message(err);
    if credentials::is_auth_refusal(&message) {
        anyhow!("{message}\n{}", credentials::login_hint(reference))
    } else {
        anyhow!(message)
    }
}

/// A reference with a tag split into repository and tag (`127.0.0.1:5000/e/azi`, `0.1.0`).
fn split_tag(reference: &str) -> (&str, &str) {
    let last = reference.rfind('/').map_or(0, |slash| slash + 1);
    match reference[last..].rfind(':') {
        Some(colon) => (&reference[..last + colon], &reference[last + colon + 1..]),
        None => (reference, "latest"),
    }
}

/// The digest in the last line of a push (`0.1.0: digest: sha256:... size: 527`).
fn pushed_digest(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_owned())
}

/// Adds `:latest` to a reference without tag or digest: a pull without a tag pulls every tag.
pub(crate) fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Tars a build context, keeping file modes (executable bits matter) and symlinks as they are.
fn archive_context(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let failed = || format!("failed to archive the build context `{}`", dir.display());
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all("", dir).with_context(failed)?;
    builder.into_inner().with_context(failed)
}

/// Turns the messages of a pull into lines: one when a layer changes state, and one per
/// quarter of a download or extraction.
#[derive(Debug, Default)]
struct PullProgress {
    /// The last state and quarter reported per layer.
    layers: HashMap<String, (String, i64)>,
}

impl PullProgress {
    /// The line to print for a message, if it says something new.
    fn line(&mut self, message: &CreateImageInfo) -> Option<String> {
        let status = message.status.as_deref()?;
        let Some(layer) = message.id.as_deref() else {
            return Some(status.to_owned());
        };
        let detail = message.progress_detail.as_ref();
        let quarter = match detail.and_then(|d| Some((d.current?, d.total?))) {
            Some((current, total)) if total > 0 => current * 4 / total,
            _ => -1,
        };
        let current = (status.to_owned(), quarter);
        if self.layers.get(layer) == Some(&current) {
            return None;
        }
        self.layers.insert(layer.to_owned(), current);
        let size = detail.and_then(|d| d.total).filter(|total| *total > 0);
        Some(match size {
            Some(total) => format!(
                "{layer}: {status} {}% of {:.1} MB",
                quarter.clamp(0, 4) * 25,
                total as f64 / 1e6
            ),
            None => format!("{layer}: {status}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_without_tag_get_latest() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            with_default_tag("localhost:5000/tools/e"),
            "localhost:5000/tools/e:latest"
        );
        assert_eq!(
            with_default_tag("registry.example.com/e@sha256:abc"),
            "registry.example.com/e@sha256:abc"
        );
    }

    #[test]
    fn pushed_references_split_and_report_their_digest() {
        assert_eq!(
            split_tag("127.0.0.1:5000/e-modules/azi:0.1.0"),
            ("127.0.0.1:5000/e-modules/azi", "0.1.0")
        );
        assert_eq!(
            split_tag("localhost:5000/e"),
            ("localhost:5000/e", "latest")
        );
        assert_eq!(
            pushed_digest("0.1.0: digest: sha256:0123abcd size: 527").as_deref(),
            Some("sha256:0123abcd")
        );
        assert_eq!(pushed_digest("Pushed"), None);
    }

    #[test]
    fn pull_progress_reports_changes_only() {
        let message = |id: Option<&str>, status: &str, current: Option<i64>| CreateImageInfo {
            id: id.map(str::to_owned),
            status: Some(status.to_owned()),
            progress_detail: current.map(|current| bollard::models::ProgressDetail {
                current: Some(current),
                total: Some(4_000_000),
            }),
            ..Default::default()
        };
        let mut progress = PullProgress::default();
        let lines: Vec<_> = [
            message(None, "Pulling from library/busybox", None),
            message(Some("abc"), "Pulling fs layer", None),
            message(Some("abc"), "Downloading", Some(100)),
            message(Some("abc"), "Downloading", Some(200)),
            message(Some("abc"), "Downloading", Some(2_100_000)),
            message(Some("abc"), "Pull complete", None),
        ]
        .iter()
        .filter_map(|message| progress.line(message))
        .collect();
        assert_eq!(
            lines,
            [
                "Pulling from library/busybox",
                "abc: Pulling fs layer",
                "abc: Downloading 0% of 4.0 MB",
                "abc: Downloading 50% of 4.0 MB",
                "abc: Pull complete",
            ]
        );
    }

    #[test]
    fn archives_keep_modes_and_symlinks() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        let tool = dir.path().join("bin/tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::os::unix::fs::symlink("bin/tool", dir.path().join("link")).expect("symlink");

        let archive = archive_context(dir.path()).expect("archive");
        let mut archive = tar::Archive::new(archive.as_slice());
        let mut entries: Vec<(String, u32, bool)> = archive
            .entries()
            .expect("entries")
            .map(|entry| {
                let entry = entry.expect("entry");
                let header = entry.header();
                (
                    entry.path().expect("path").display().to_string(),
                    header.mode().expect("mode") & 0o777,
                    header.entry_type().is_symlink(),
                )
            })
            .collect();
        entries.sort();
        let tool_entry = entries
            .iter()
            .find(|(path, ..)| path == "bin/tool")
            .expect("bin/tool archived");
        assert_eq!(tool_entry.1, 0o755);
        assert!(
            entries
                .iter()
                .any(|(path, _, link)| path == "link" && *link)
        );
        assert!(entries.iter().any(|(path, ..)| path == "Dockerfile"));
    }
}
