//! A container's configuration as the Engine API spells it: the run's spec, plus e's
//! confinement (all capabilities dropped, no new privileges, the limits), its mounts, and its
//! name.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, bail};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};

use super::NANO_CPUS_PER_CPU;
use super::volumes::run_volume;
use crate::runtime::{LABEL_MANAGED_BY, LABEL_MODULE, LABEL_RUN, RunSpec, SharedCopy};

/// The container's configuration: the spec, plus e's confinement; `init` adds an init process,
/// `network` is the network mode (`none`, `host`, or `container:ID` of a holder).
/// A CPU limit above what the engine has (`engine_cpus`) is lowered to all of them: the engine
/// refuses more.
pub(super) fn container_config(
    spec: &RunSpec,
    init: bool,
    engine_cpus: Option<i64>,
    network: &str,
) -> anyhow::Result<ContainerCreateBody> {
    let confinement = &spec.confinement;
    let nano_cpus = match engine_cpus {
        Some(cpus) => confinement
            .nano_cpus
            .min(cpus.saturating_mul(NANO_CPUS_PER_CPU)),
        None => confinement.nano_cpus,
    };
    let mounts = mounts(spec)?;
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_MANAGED_BY.to_owned(), "e".to_owned());
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        // The image's ENTRYPOINT receives these; an empty list keeps the image's CMD.
        cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(
            spec.env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        working_dir: spec.workdir.clone(),
        user: Some(confinement.user.to_string()),
        labels: Some(labels),
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            network_mode: Some(network.to_owned()),
            cap_drop: Some(vec!["ALL".to_owned()]),
            cap_add: Some(spec.capabilities.clone()),
            security_opt: Some(vec!["no-new-privileges".to_owned()]),
            // e removes the container itself, after it has read the exit code.
            auto_remove: Some(false),
            privileged: Some(false),
            readonly_rootfs: Some(confinement.read_only_rootfs),
            tmpfs: Some(confinement.tmpfs.iter().cloned().collect()),
            memory: Some(confinement.memory_bytes),
            // Equal to the memory: no swap on top of the limit, so it means what it says.
            memory_swap: Some(confinement.memory_bytes),
            nano_cpus: Some(nano_cpus),
            pids_limit: Some(confinement.pids),
            // A small init as PID 1 forwards SIGTERM and reaps zombies, so a module that
            // ignores signals (a shell script's `sleep`) still stops at once on a timeout.
            init: Some(init),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The container's mounts: the private copy at the shared path (a bind of e's own directory,
/// or an anonymous volume the copy is uploaded into), the secret files, then the module's
/// named volumes.
pub(crate) fn mounts(spec: &RunSpec) -> anyhow::Result<Vec<Mount>> {
    if !spec.shared_path.starts_with('/') {
        bail!(
            "cannot mount the shared directory at `{}`: the container path is not absolute",
            spec.shared_path
        );
    }
    let shared = match &spec.shared {
        SharedCopy::Bind { host } => {
            let text = host.to_str().with_context(|| {
                format!("cannot mount `{}`: the path is not UTF-8", host.display())
            })?;
            if !host.is_absolute() {
                bail!("cannot mount `{text}`: the host path is not absolute");
            }
            Mount {
                target: Some(spec.shared_path.clone()),
                source: Some(text.to_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(false),
                ..Default::default()
            }
        }
        SharedCopy::Archive { .. } => Mount {
            target: Some(spec.shared_path.clone()),
            source: run_volume(spec).map(|volume| volume.name),
            typ: Some(MountType::VOLUME),
            read_only: Some(false),
            ..Default::default()
        },
    };
    let mut mounts = vec![shared];
    if let Some(host) = &spec.secret_files {
        let text = host
            .to_str()
            .with_context(|| format!("cannot mount `{}`: the path is not UTF-8", host.display()))?;
        mounts.push(Mount {
            target: Some(crate::runtime::SECRETS_PATH.to_owned()),
            source: Some(text.to_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        });
    }
    for volume in &spec.volumes {
        if !volume.container.starts_with('/') {
            bail!(
                "cannot mount the volume `{}` at `{}`: the container path is not absolute",
                volume.name,
                volume.container
            );
        }
        mounts.push(Mount {
            target: Some(volume.container.clone()),
            source: Some(volume.name.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(false),
            ..Default::default()
        });
    }
    Ok(mounts)
}

/// `e-<module>-<run>` when both labels are there, cleaned to what the engine accepts.
pub(super) fn container_name(labels: &BTreeMap<String, String>) -> Option<String> {
    let module = labels.get(LABEL_MODULE)?;
    let run = labels.get(LABEL_RUN)?;
    Some(engine_name(&format!("e-{module}-{run}")))
}

/// `text` with every character an engine name cannot hold (container or volume) made `-`.
pub(super) fn engine_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::repository::model::User;
    use crate::runtime::{Confinement, Network, Volume};

    #[test]
    fn container_names_come_from_labels() {
        let labels = crate::runtime::labels("web/app", "20250101T000000Z");
        assert_eq!(
            container_name(&labels).as_deref(),
            Some("e-web-app-20250101T000000Z")
        );
        assert_eq!(container_name(&BTreeMap::new()), None);
    }

    #[test]
    fn the_shared_copy_is_mounted_through_mounts() {
        let mut spec = test_spec();
        spec.shared = SharedCopy::Bind {
            host: PathBuf::from("/e/runs/r1/shared"),
        };
        spec.volumes.push(Volume {
            name: "e-0123-azi-var-lib-azi".to_owned(),
            container: "/var/lib/azi".to_owned(),
            labels: BTreeMap::new(),
            seed: None,
            reown: false,
        });
        let bound = mounts(&spec).expect("valid mounts");
        assert_eq!(bound[0].typ, Some(MountType::BIND));
        assert_eq!(bound[0].source.as_deref(), Some("/e/runs/r1/shared"));
        assert_eq!(bound[0].target.as_deref(), Some("/shared"));
        assert_eq!(bound[1].typ, Some(MountType::VOLUME));
        assert_eq!(bound[1].source.as_deref(), Some("e-0123-azi-var-lib-azi"));
        spec.shared = SharedCopy::Archive {
            upload: Vec::new(),
            download_limit: 1,
        };
        let archived = mounts(&spec).expect("valid mounts");
        assert_eq!(
            (archived[0].typ, archived[0].source.as_deref()),
            (Some(MountType::VOLUME), Some("e-run-r1"))
        );
        spec.shared = SharedCopy::Bind {
            host: PathBuf::from("relative"),
        };
        let err = format!("{:#}", mounts(&spec).expect_err("relative"));
        assert!(err.contains("not absolute"), "{err}");
    }

    fn test_spec() -> RunSpec {
        RunSpec {
            image: "e-test:1".to_owned(),
            args: vec!["apply".to_owned()],
            env: vec![("A".to_owned(), "1".to_owned())],
            workdir: Some("/work".to_owned()),
            shared: SharedCopy::Bind {
                host: PathBuf::from("/tmp"),
            },
            shared_path: "/shared".to_owned(),
            volumes: Vec::new(),
            confinement: Confinement::defaults(User {
                uid: 1000,
                gid: 1000,
            }),
            network: Network::None,
            capabilities: vec!["NET_ADMIN".to_owned()],
            labels: crate::runtime::labels("web", "r1"),
            secret_files: None,
            timeout: None,
        }
    }

    #[test]
    fn container_config_confines_the_container() {
        let spec = test_spec();
        let config = container_config(&spec, true, None, "none").expect("config");
        assert_eq!(config.cmd, Some(vec!["apply".to_owned()]));
        assert_eq!(config.entrypoint, None);
        assert_eq!(config.env, Some(vec!["A=1".to_owned()]));
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        let host = config.host_config.expect("host config");
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(
            host.tmpfs,
            Some(HashMap::from([(
                "/tmp".to_owned(),
                "rw,nosuid,nodev,size=268435456,mode=1777".to_owned()
            )]))
        );
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.memory_swap, Some(1 << 30));
        assert_eq!(host.nano_cpus, Some(2_000_000_000));
        assert_eq!(host.pids_limit, Some(512));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.auto_remove, Some(false));
        assert_eq!(host.init, Some(true));
        let without = container_config(&spec, false, None, "none").expect("config");
        assert_eq!(without.host_config.expect("host config").init, Some(false));
    }

    #[test]
    fn a_cpu_limit_above_the_engines_cpus_is_lowered_to_all_of_them() {
        let mut spec = test_spec();
        spec.confinement.nano_cpus = 8_000_000_000;
        let nano = |cpus| {
            container_config(&spec, true, cpus, "none")
                .expect("config")
                .host_config
                .and_then(|host| host.nano_cpus)
        };
        assert_eq!(nano(Some(2)), Some(2_000_000_000));
        assert_eq!(nano(Some(16)), Some(8_000_000_000));
        assert_eq!(
            nano(None),
            Some(8_000_000_000),
            "unknown: left to the engine"
        );
    }
}
