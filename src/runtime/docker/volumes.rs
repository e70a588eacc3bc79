//! The Docker engine's volumes and archives for runs: a module's private volumes (created,
//! given to the module's user, filled from old data, re-owned), the run volume of an
//! archive-mode run, reading a directory back out of a container, and removing what runs of a
//! dead e left. Split from `mod.rs`, which runs the containers.

use super::*;

impl DockerEngine {
    /// Removes a volume; one that is gone already is not an error.
    pub(super) async fn remove_volume(&self, name: &str) -> anyhow::Result<()> {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Err(err) if is_not_found(&err) => Ok(()),
            result => result.engine_context(|| format!("failed to remove the volume `{name}`")),
        }
    }

    /// [`Engine::remove_volumes`]: every volume labelled `e.shared=<shared_id>`.
    pub(super) async fn remove_shared_volumes(&self, shared_id: &str) -> anyhow::Result<usize> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_SHARED}={shared_id}")])]);
        let volumes = self
            .docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .engine_context(|| "failed to list the volumes of the shared directory".to_owned())?;
        let volumes = volumes.volumes.unwrap_or_default();
        for volume in &volumes {
            self.remove_volume(&volume.name).await?;
        }
        Ok(volumes.len())
    }

    /// Reads the tar of `path` out of a stopped container, refusing more than `limit` bytes.
    pub(super) async fn download_copy(
        &self,
        id: &str,
        path: &str,
        limit: u64,
    ) -> Result<Vec<u8>, String> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut chunks = self.docker.download_from_container(id, Some(options));
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|err| {
                format!(
                    "could not be read from the container: {}",
                    engine_message(&err)
                )
            })?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(format!(
                    "is more than {} MiB, over the limit",
                    limit / 1024 / 1024
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Gives a new volume to the module's user, and fills it from its seed. A new volume's
    /// root belongs to the engine (root), and the module may run as another uid; the engine
    /// applies a tar's ownership to every directory it unpacks but the one it unpacks into, so
    /// the volume is mounted below `/` of a helper container that is created, never started,
    /// and removed, and the volume's directory comes in the tar with its owner.
    ///
    /// An existing volume (`new` false) is given whole: its content is read out of the helper
    /// and put back with the user's ownership on every entry.
    pub(super) async fn prepare_volume(
        &self,
        spec: &RunSpec,
        volume: &Volume,
        new: bool,
    ) -> anyhow::Result<()> {
        const AT: &str = "e-volume";
        let what = || format!("failed to prepare the volume `{}`", volume.name);
        let config = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    target: Some(format!("/{AT}")),
                    source: Some(volume.name.clone()),
                    typ: Some(MountType::VOLUME),
                    ..Default::default()
                }]),
                network_mode: Some("none".to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = match self
            .docker
            .create_container(None::<CreateContainerOptions>, config)
            .await
        {
            Ok(created) => created,
            Err(err) if is_not_found(&err) => {
                return Err(absent_image_error(&spec.image, &engine_message(&err)));
            }
            Err(err) => return Err(err).engine_context(what),
        };
        let mut guard = ContainerGuard {
            docker: self.docker.clone(),
            id: Some(created.id.clone()),
        };
        let user = &spec.confinement.user;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_uid(user.uid.into());
        header.set_gid(user.gid.into());
        header.set_size(0);
        let mut root = tar::Builder::new(Vec::new());
        root.append_data(&mut header, format!("{AT}/"), std::io::empty())
            .with_context(what)?;
        let root = root.into_inner().with_context(what)?;
        let uploads: Vec<(String, Vec<u8>)> = if new {
            [("/".to_owned(), root)]
                .into_iter()
                .chain(volume.seed.clone().map(|seed| (format!("/{AT}"), seed)))
                .collect()
        } else {
            let content = self
                .download_copy(&created.id, &format!("/{AT}"), 1 << 32)
                .await
                .map_err(|reason| anyhow!("the volume `{}` {reason}", volume.name))
                .with_context(what)?;
            vec![(
                "/".to_owned(),
                owned_by(&content, user.uid, user.gid).with_context(what)?,
            )]
        };
        let mut result = Ok(());
        for (path, tar) in uploads {
            let options = UploadToContainerOptionsBuilder::new().path(&path).build();
            result = self
                .docker
                .upload_to_container(&created.id, Some(options), bollard::body_full(tar.into()))
                .await
                .engine_context(what);
            if result.is_err() {
                break;
            }
        }
        guard.remove().await?;
        result
    }

    /// Creates a named volume with its labels, unless it exists; says whether it created it.
    pub(super) async fn create_volume(&self, volume: &Volume) -> anyhow::Result<bool> {
        match self.docker.inspect_volume(&volume.name).await {
            Ok(_) => return Ok(false),
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                return Err(err)
                    .engine_context(|| format!("failed to inspect the volume `{}`", volume.name));
            }
        }
        let request = VolumeCreateRequest {
            name: Some(volume.name.clone()),
            labels: Some(volume.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| true)
            .engine_context(|| format!("failed to create the volume `{}`", volume.name))
    }

    /// [`Engine::reap`]: every container of a shared directory, stopped, read, removed.
    pub(super) async fn reap_containers(&self, shared_id: &str) -> anyhow::Result<Vec<Reaped>> {
        let filters = HashMap::from([(
            "label",
            vec![
                format!("{LABEL_MANAGED_BY}=e"),
                format!("{LABEL_SHARED}={shared_id}"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .engine_context(|| "failed to list the containers of dead runs".to_owned())?;
        let mut reaped = Vec::new();
        for container in containers {
            let Some(id) = container.id else { continue };
            let labels = container.labels.unwrap_or_default();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            // Stopped first, so that it writes nothing more while it is read.
            let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
            let _ = self.docker.kill_container(&id, Some(options)).await;
            let download = if label(LABEL_TRANSFER) == Transfer::Archive.name() {
                Some(self.download_copy(&id, "/shared", 1 << 30).await)
            } else {
                None
            };
            remove_container(&self.docker, &id).await?;
            reaped.push(Reaped {
                run: label(LABEL_RUN),
                module: label(LABEL_MODULE),
                download,
            });
        }
        // The volumes of archive-mode runs (label `e.run`; modules' own volumes have none).
        let filters = HashMap::from([(
            "label",
            vec![format!("{LABEL_SHARED}={shared_id}"), LABEL_RUN.to_owned()],
        )]);
        let volumes = self
            .docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .engine_context(|| "failed to list the volumes of dead runs".to_owned())?;
        for volume in volumes.volumes.unwrap_or_default() {
            self.remove_volume(&volume.name).await?;
        }
        Ok(reaped)
    }
}

/// The volume of an archive-mode run, `e-run-<run>`, holding its copy: a named one rather than
/// the container's anonymous volume, so that it can be given to the module's user before the
/// container exists.
pub(super) fn run_volume(spec: &RunSpec) -> Option<Volume> {
    let SharedCopy::Archive { upload, .. } = &spec.shared else {
        return None;
    };
    let run = spec.labels.get(LABEL_RUN)?;
    Some(Volume {
        name: engine_name(&format!("e-run-{run}")),
        container: spec.shared_path.clone(),
        labels: spec.labels.clone(),
        seed: Some(upload.clone()),
        reown: false,
    })
}

/// The same tar with every entry owned by `uid:gid`.
pub(super) fn owned_by(tar_bytes: &[u8], uid: u32, gid: u32) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut header = entry.header().clone();
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        // Podman names the entries of a download from the root (`/e-volume/...`).
        let path = entry.path()?.into_owned();
        let path = path.strip_prefix("/").unwrap_or(&path).to_owned();
        if path.as_os_str().is_empty() {
            continue;
        }
        builder.append_data(&mut header, path, &mut entry)?;
    }
    builder.into_inner()
}
