//! The network holder: one small container whose network namespace (network `none`: loopback
//! only) the module containers of one shared directory join, the way the containers of a
//! Kubernetes pod join its pause container. The engine then does not build a namespace for
//! every method run, which is most of what a `--network none` start costs.
//!
//! The holder runs nothing but a 200-byte static program that sleeps for [`LIFETIME`] and
//! exits; the engine removes it then (auto-remove). It has no mounts, no capabilities, a
//! read-only root, one process, and labels that say whose it is
//! (`docker ps --filter label=e.holder`). e joins a holder only while it has at least
//! [`LIFETIME`] − [`REUSE_WITHIN`] left, so the commands of the next minute or two share it
//! and none lingers. A container that joined keeps its namespace when the holder goes.
//!
//! What modules see: the same isolation from the outside world as network `none`, and the
//! loopback of the other modules of the same shared directory that run at the same time
//! (a port one listens on, another can reach). `E_NETWORK_HOLDER=off` turns it off; an
//! engine on another architecture, or one that refuses the holder, gets namespaces of its own
//! per run, as before.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptionsBuilder,
};
use futures_util::StreamExt as _;

use super::{DockerEngine, EngineContext as _};
use crate::runtime::LABEL_MANAGED_BY;

/// How long a holder lives.
pub const LIFETIME: Duration = Duration::from_secs(120);

/// A holder is joined by new runs during the first part of its life only.
pub const REUSE_WITHIN: Duration = Duration::from_secs(90);

/// The holder's image, made by e from [`program`].
const IMAGE: &str = "e-holder:1";

/// The label that marks a holder, with the shared directory's id as its value.
pub const LABEL_HOLDER: &str = "e.holder";

/// The holders known to this e: per shared directory id, the container and when it started.
#[derive(Debug, Default)]
pub struct Holders {
    known: tokio::sync::Mutex<HashMap<String, (String, SystemTime)>>,
}

/// Whether `E_NETWORK_HOLDER` turns the holder off.
fn turned_off() -> bool {
    std::env::var("E_NETWORK_HOLDER").is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "false"))
}

impl DockerEngine {
    /// The network mode for a run of `shared` that asks for network `none`: `container:ID` of
    /// a holder, or `none` when there is none to be had.
    pub(super) async fn none_network(&self, shared: Option<&str>) -> String {
        let Some(shared) = shared else {
            return "none".to_owned();
        };
        if turned_off() || self.version().arch != "amd64" {
            return "none".to_owned();
        }
        let mut known = self.holders.known.lock().await;
        let now = SystemTime::now();
        let fresh = |started: &SystemTime| {
            now.duration_since(*started)
                .is_ok_and(|age| age < REUSE_WITHIN)
        };
        if let Some((id, started)) = known.get(shared)
            && fresh(started)
        {
            return format!("container:{id}");
        }
        let found = match self.running_holder(shared).await {
            Some((id, started)) if fresh(&started) => Ok((id, started)),
            _ => self
                .start_holder(shared)
                .await
                .map(|id| (id, SystemTime::now())),
        };
        match found {
            Ok((id, started)) => {
                let mode = format!("container:{id}");
                known.insert(shared.to_owned(), (id, started));
                mode
            }
            Err(err) => {
                crate::output::warn(&format!(
                    "no network holder ({err:#}): each module run gets a network namespace of its own"
                ));
                known.clear();
                "none".to_owned()
            }
        }
    }

    /// Forgets the holder of `shared`: a run could not join it (removed by hand).
    pub(super) async fn forget_holder(&self, shared: Option<&str>) {
        if let Some(shared) = shared {
            self.holders.known.lock().await.remove(shared);
        }
    }

    /// The youngest running holder of `shared`, if any.
    async fn running_holder(&self, shared: &str) -> Option<(String, SystemTime)> {
        let filters = HashMap::from([
            ("label", vec![format!("{LABEL_HOLDER}={shared}")]),
            ("status", vec!["running".to_owned()]),
        ]);
        let options = ListContainersOptionsBuilder::new()
            .filters(&filters)
            .build();
        let containers = self.docker.list_containers(Some(options)).await.ok()?;
        containers
            .into_iter()
            .filter_map(|c| {
                let started =
                    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(c.created?).ok()?);
                Some((c.id?, started))
            })
            .max_by_key(|(_, started)| *started)
    }

    /// Starts a holder for `shared`, making its image first if the engine lacks it.
    async fn start_holder(&self, shared: &str) -> anyhow::Result<String> {
        if self.docker.inspect_image(IMAGE).await.is_err() {
            self.make_image().await?;
        }
        // Not `e.shared`: that label marks the runs a dead e left, which are reaped.
        let labels = HashMap::from([
            (LABEL_MANAGED_BY.to_owned(), "e".to_owned()),
            (LABEL_HOLDER.to_owned(), shared.to_owned()),
        ]);
        let config = ContainerCreateBody {
            image: Some(IMAGE.to_owned()),
            user: Some("65534:65534".to_owned()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some("none".to_owned()),
                cap_drop: Some(vec!["ALL".to_owned()]),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                readonly_rootfs: Some(true),
                auto_remove: Some(true),
                memory: Some(8 * 1024 * 1024),
                memory_swap: Some(8 * 1024 * 1024),
                pids_limit: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let options = CreateContainerOptions {
            name: Some(format!(
                "e-holder-{}-{stamp}-{}",
                &shared[..shared.len().min(12)],
                std::process::id()
            )),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), config)
            .await
            .engine_context(|| "failed to create the network holder".to_owned())?;
        self.docker
            .start_container(&created.id, None)
            .await
            .engine_context(|| "failed to start the network holder".to_owned())?;
        Ok(created.id)
    }

    /// Imports the holder's image: one file, [`program`], as its entrypoint.
    async fn make_image(&self) -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(Vec::new());
        let program = program(LIFETIME);
        let mut header = tar::Header::new_gnu();
        header.set_size(program.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, "hold", program.as_slice())?;
        let archive = tar.into_inner()?;
        let (repo, tag) = IMAGE.split_once(':').expect("the image has a tag");
        let options = CreateImageOptions {
            from_src: Some("-".to_owned()),
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
            changes: vec!["ENTRYPOINT [\"/hold\"]".to_owned()],
            ..Default::default()
        };
        let mut stream = self.docker.create_image(
            Some(options),
            Some(bollard::body_full(archive.into())),
            None,
        );
        while let Some(item) = stream.next().await {
            item.engine_context(|| format!("failed to make the image `{IMAGE}`"))?;
        }
        Ok(())
    }
}

/// A static x86-64 Linux program that sleeps for `lifetime` and exits 0: an ELF header, one
/// loadable segment, and 25 bytes of code (`nanosleep`, then `exit`), followed by its
/// `timespec`.
pub fn program(lifetime: Duration) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    #[rustfmt::skip]
    let code: [u8; 25] = [
        0xb8, 35, 0, 0, 0,                   // mov eax, 35 (nanosleep)
        0x48, 0x8d, 0x3d, 13, 0, 0, 0,       // lea rdi, [rip + 13] (the timespec)
        0x31, 0xf6,                          // xor esi, esi
        0x0f, 0x05,                          // syscall
        0xb8, 60, 0, 0, 0,                   // mov eax, 60 (exit)
        0x31, 0xff,                          // xor edi, edi
        0x0f, 0x05,                          // syscall
    ];
    let size = HEADERS + code.len() as u64 + 16;
    let mut elf = Vec::with_capacity(size as usize);
    // The ELF header.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // an executable
    elf.extend_from_slice(&62u16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // the entry point
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers follow this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    // One program header: the whole file, loaded readable and executable.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf.extend_from_slice(&lifetime.as_secs().to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_program_sleeps_for_its_lifetime_and_exits_cleanly() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hold");
        std::fs::write(&path, program(Duration::from_secs(1))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = std::time::Instant::now();
        // Another test's fork may hold the file open for a moment (ETXTBSY): try again.
        let status = loop {
            match std::process::Command::new(&path).status() {
                Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => break other.unwrap(),
            }
        };
        assert!(status.success(), "{status}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }
}
