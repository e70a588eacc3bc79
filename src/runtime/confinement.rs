//! The confinement of a module's container, as data: who it runs as, what it may write, and how
//! much memory, CPU and processes it may use.
//!
//! [`for_version`] turns e's defaults and what a version asks for in the repository (`limits:`,
//! `user:`) into a [`Confinement`]; `docker/` applies it, on top of what every container gets
//! anyway (all capabilities dropped, no new privileges, an init, no network unless asked). This
//! file decides; it never talks to the engine or touches the disk.

use crate::repository::model::{Cpus, Memory, ModuleVersion, User};

/// Memory of a module's container when its version sets none: 1 GiB. Infrastructure modules
/// run tools such as terraform with a cloud provider plugin, ansible or helm, which stay well
/// under 1 GiB for ordinary plans (the AWS provider, the largest, uses a few hundred MB), while
/// a runaway module cannot take a small machine's memory. A module with a large state raises it.
pub const DEFAULT_MEMORY_BYTES: i64 = 1 << 30;

/// CPU of a module's container when its version sets none: 2 CPUs. Modules mostly wait on
/// remote APIs; two CPUs let a tool's parallel walk (terraform's, ansible's forks) go at full
/// speed, and leave the rest of a larger machine to the user. Capped at what the engine has.
pub const DEFAULT_NANO_CPUS: i64 = 2_000_000_000;

/// Processes and threads of a module's container when its version sets none: 512. Threads
/// count against the limit, and a Go tool such as terraform runs one or two dozen per process,
/// with one process per provider plugin; 512 leaves room for that many times over, and stops a
/// fork bomb long before it hurts the machine.
pub const DEFAULT_PIDS: i64 = 512;

/// The user modules run as when e runs as root and the version asks for no user: `nobody`.
pub const UNPRIVILEGED: User = User {
    uid: 65534,
    gid: 65534,
};

/// The tmpfs at `/tmp` takes this fraction of the memory limit (it is memory, and counts
/// against the limit): 256 MiB with the default limit.
const TMP_SHARE_OF_MEMORY: i64 = 4;

/// How a module's container is confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The uid and gid the module runs as.
    pub user: User,
    /// Whether the image's filesystem is mounted read-only.
    pub read_only_rootfs: bool,
    /// tmpfs mounts: container path and mount options, as the engine takes them.
    pub tmpfs: Vec<(String, String)>,
    /// The memory limit in bytes; swap is not allowed on top of it.
    pub memory_bytes: i64,
    /// The CPU limit, in billionths of a CPU.
    pub nano_cpus: i64,
    /// The most processes and threads at once.
    pub pids: i64,
}

impl Confinement {
    /// e's defaults, running as `user`: what a version that asks for nothing gets.
    pub fn defaults(user: User) -> Confinement {
        Confinement {
            user,
            read_only_rootfs: true,
            tmpfs: vec![tmp(DEFAULT_MEMORY_BYTES)],
            memory_bytes: DEFAULT_MEMORY_BYTES,
            nano_cpus: DEFAULT_NANO_CPUS,
            pids: DEFAULT_PIDS,
        }
    }
}

/// The limits a version runs with: its own where it sets them, e's defaults otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The memory limit.
    pub memory: Memory,
    /// The CPU limit.
    pub cpus: Cpus,
    /// The process limit.
    pub pids: i64,
    /// Which of `memory`, `cpus`, `pids` the version set itself.
    pub from_repository: Vec<&'static str>,
}

/// The limits `version` runs with.
pub fn limits(version: &ModuleVersion) -> Limits {
    let asked = &version.limits;
    let from_repository = [
        ("memory", asked.memory.is_some()),
        ("cpus", asked.cpus.is_some()),
        ("pids", asked.pids.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    Limits {
        memory: asked
            .memory
            .clone()
            .unwrap_or_else(|| Memory::from_bytes(DEFAULT_MEMORY_BYTES)),
        cpus: asked
            .cpus
            .clone()
            .unwrap_or_else(|| Cpus::from_nano(DEFAULT_NANO_CPUS)),
        pids: asked.pids.map_or(DEFAULT_PIDS, |pids| pids.get()),
        from_repository,
    }
}

/// The user `version` runs as when e runs as `invoking` (uid, gid): the version's `user:` if
/// it has one; otherwise the invoking user, so that files it writes stay theirs, except that
/// root's modules run as [`UNPRIVILEGED`]: a module needs no root to write its files.
pub fn user(version: &ModuleVersion, invoking: (u32, u32)) -> User {
    match version.user {
        Some(user) => user,
        None if invoking.0 == 0 => UNPRIVILEGED,
        None => User {
            uid: invoking.0,
            gid: invoking.1,
        },
    }
}

/// The confinement of `version` when e runs as `invoking` (uid, gid).
pub fn for_version(version: &ModuleVersion, invoking: (u32, u32)) -> Confinement {
    let limits = limits(version);
    // A module that mounts something at /tmp, or the shared directory, writes there already;
    // the engine refuses two mounts at one path.
    let tmp_taken = version
        .mounts
        .iter()
        .map(String::as_str)
        .chain([version.shared_path()])
        .any(|path| path.trim_end_matches('/') == "/tmp");
    Confinement {
        user: user(version, invoking),
        read_only_rootfs: true,
        tmpfs: if tmp_taken {
            Vec::new()
        } else {
            vec![tmp(limits.memory.bytes())]
        },
        memory_bytes: limits.memory.bytes(),
        nano_cpus: limits.cpus.nano(),
        pids: limits.pids,
    }
}

/// The size of `/tmp` under a memory limit of `memory_bytes`.
pub fn tmp_bytes(memory_bytes: i64) -> i64 {
    memory_bytes / TMP_SHARE_OF_MEMORY
}

/// `/tmp` as a tmpfs: anyone may create files (sticky, like a host's `/tmp`), devices and
/// set-uid programs do not work, and it is capped at a share of the memory limit.
fn tmp(memory_bytes: i64) -> (String, String) {
    (
        "/tmp".to_owned(),
        format!("rw,nosuid,nodev,size={},mode=1777", tmp_bytes(memory_bytes)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(extra: &str) -> ModuleVersion {
        serde_yaml::from_str(&format!("version: 0.1.0\nimage: img:1\n{extra}"))
            .expect("a module version")
    }

    #[test]
    fn a_version_that_asks_nothing_gets_the_defaults() {
        let confinement = for_version(&version(""), (1000, 100));
        assert_eq!(
            confinement,
            Confinement::defaults(User {
                uid: 1000,
                gid: 100
            })
        );
        assert!(confinement.read_only_rootfs);
        assert_eq!(
            confinement.tmpfs,
            vec![(
                "/tmp".to_owned(),
                "rw,nosuid,nodev,size=268435456,mode=1777".to_owned()
            )]
        );
        assert_eq!(confinement.memory_bytes, 1 << 30);
        assert_eq!(confinement.nano_cpus, 2_000_000_000);
        assert_eq!(confinement.pids, 512);
    }

    #[test]
    fn root_runs_modules_unprivileged_unless_the_repository_asks() {
        assert_eq!(for_version(&version(""), (0, 0)).user, UNPRIVILEGED);
        assert_eq!(
            for_version(&version("user: \"0\"\n"), (0, 0)).user,
            User { uid: 0, gid: 0 }
        );
        assert_eq!(
            for_version(&version("user: \"2000:3000\"\n"), (1000, 1000)).user,
            User {
                uid: 2000,
                gid: 3000
            }
        );
    }

    #[test]
    fn limits_replace_the_defaults_one_by_one() {
        let confinement = for_version(&version("limits: {memory: 4Gi}\n"), (1000, 1000));
        assert_eq!(confinement.memory_bytes, 4 << 30);
        assert_eq!(confinement.nano_cpus, DEFAULT_NANO_CPUS);
        assert_eq!(confinement.pids, DEFAULT_PIDS);
        assert_eq!(
            confinement.tmpfs[0].1, "rw,nosuid,nodev,size=1073741824,mode=1777",
            "/tmp grows with the memory"
        );

        let version = version("limits: {cpus: 0.5, pids: 64}\n");
        let confinement = for_version(&version, (1000, 1000));
        assert_eq!(confinement.memory_bytes, DEFAULT_MEMORY_BYTES);
        assert_eq!(confinement.nano_cpus, 500_000_000);
        assert_eq!(confinement.pids, 64);
        assert_eq!(limits(&version).from_repository, ["cpus", "pids"]);
        assert_eq!(limits(&version).memory.to_string(), "1Gi");
    }

    #[test]
    fn a_mount_at_tmp_replaces_the_tmpfs() {
        let confinement = for_version(&version("mounts: [/tmp/]\n"), (1000, 1000));
        assert!(confinement.tmpfs.is_empty());
        assert!(confinement.read_only_rootfs);
        let confinement = for_version(&version("shared: /tmp\n"), (1000, 1000));
        assert!(confinement.tmpfs.is_empty());
    }
}
