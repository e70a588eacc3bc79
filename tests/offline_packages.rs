//! End-to-end test of the design's offline mode with operating-system packages, on the real
//! Docker engine: a module whose bill of materials lists a real Debian package with
//! dependencies (`jq`: libjq1, libonig5, libc6, ...) is exported on a machine with internet
//! (the package resolver runs in a container of Debian bookworm, with the host's network),
//! imported into a repository machine's store, served there by `e serve` (the image of
//! `modules/repo`) on loopback, and installed with apt-get on a host container whose only
//! source is that repository machine. The archive's own e binary is run too.
//!
//! The Debian base image comes from `modules/kits/debian/base.sh` (debootstrap, cached under
//! /var/cache/e-tests/kits). The server's port is one of 23830-23839, held by a lock file; the
//! server is stopped by its PID in a guard, even when the test fails.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod support;
use support::{e_in_with, root, stderr, stdout, text};

const DEBIAN: &str = "e-kits/debian:bookworm";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// Makes the images the test needs: the Debian base (by debootstrap, cached), the downloader
/// and the repository machine's server (from their folders in modules/).
fn images() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        if !docker(&["image", "inspect", DEBIAN]).status.success() {
            let status = Command::new(root().join("modules/kits/debian/base.sh"))
                .arg(DEBIAN)
                .status()
                .expect("base.sh runs");
            assert!(status.success(), "modules/kits/debian/base.sh failed");
        }
        for (folder, image) in [
            ("downloader", "e-modules/downloader:0.1.0"),
            ("repo", "e-modules/repo:0.1.0"),
        ] {
            if docker(&["image", "inspect", image]).status.success() {
                continue;
            }
            if !root().join("modules").join(folder).join("busybox").exists() {
                let status = Command::new(root().join("modules/build-contexts.sh"))
                    .status()
                    .expect("build-contexts.sh runs");
                assert!(status.success(), "modules/build-contexts.sh failed");
            }
            let dir = tempfile::tempdir().unwrap();
            let out = e_in_with(
                root(),
                &dir.path().join("repository.yaml"),
                &dir.path().join("shared"),
                &[
                    "build",
                    root().join("modules").join(folder).to_str().unwrap(),
                    "--tag",
                    image,
                ],
                &[],
            );
            assert!(out.status.success(), "{}", text(&out));
        }
    });
}

/// `e serve` running in the background; stopped (SIGINT, then SIGKILL) by its PID when
/// dropped, and its container removed by the labels e gave it if e could not.
struct Serving {
    child: Child,
    _port_lock: File,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill only signals the child this guard started.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let label = format!("label=e.run=serve-{pid}");
        let ids = docker(&["ps", "-aq", "--filter", &label]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            docker(&["rm", "-f", id]);
        }
    }
}

/// Holds the first port of 23830-23839 whose lock file is free and that nothing listens on.
fn reserve_port() -> (u16, File) {
    let dir = std::env::temp_dir().join("e-test-ports");
    fs::create_dir_all(&dir).unwrap();
    for port in 23830..=23839u16 {
        let lock = File::create(dir.join(format!("{port}.lock"))).unwrap();
        if lock.try_lock().is_err() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return (port, lock);
        }
    }
    panic!("no free port in 23830-23839 for the repository machine");
}

fn e(dir: &Path, side: &str, args: &[&str]) -> Output {
    let cache = dir.join("cache");
    e_in_with(
        dir,
        &dir.join(side).join("repository.yaml"),
        &dir.join(side).join("shared"),
        args,
        &[("E_CACHE_DIR", cache.to_str().unwrap())],
    )
}

fn expect(code: i32, dir: &Path, side: &str, args: &[&str]) -> Output {
    support::exited(code, args, e(dir, side, args))
}

#[test]
fn packages_install_on_a_host_from_the_repository_machine_alone() {
    images();
    let dir = tempfile::tempdir().unwrap();
    let online = dir.path().join("online");
    fs::create_dir_all(online.join("shared")).unwrap();
    fs::write(
        online.join("repository.yaml"),
        "version: v1\nkind: Repository\ncomponents:\n  - name: tool\n    type: docker\n    versions:\n      - version: 0.1.0\n        latest: true\n        image: e-modules/bmk:0.1.0\n        requirements:\n          packages:\n            - distribution: debian\n              release: bookworm\n              names: [jq]\n",
    )
    .unwrap();
    // A module's config travels as the environment's configuration, its secrets left out.
    let secret = "pw-8c1f0e4b7d";
    fs::write(
        online.join("shared/tool-config.yml"),
        format!("tool:\n  size: 3\n  password: {secret}\n"),
    )
    .unwrap();
    let secrets = dir.path().join("secrets.yml");
    fs::write(&secrets, format!("tool_password: {secret}\n")).unwrap();

    // The online side: what would go in, then the archive.
    let out = expect(0, dir.path(), "online", &["export", "tool", "--dry-run"]);
    let listing = stdout(&out);
    assert!(
        listing.contains(".deb to download for jq, with their dependencies")
            && listing.contains("bin/e  (e ")
            && listing.contains("environment/tool-config.yml"),
        "{listing}"
    );
    let archive = dir.path().join("tool.tar");
    let out = expect(
        0,
        dir.path(),
        "online",
        &[
            "--secrets",
            secrets.to_str().unwrap(),
            "export",
            "tool",
            "--out",
            archive.to_str().unwrap(),
        ],
    );
    let archived = Command::new("tar")
        .args([
            "-xOf",
            archive.to_str().unwrap(),
            "environment/tool-config.yml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&archived.stdout),
        "tool:\n  size: 3\n  password: '***'\n"
    );
    let whole = fs::read(&archive).unwrap();
    assert!(
        !whole.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is somewhere in the archive"
    );
    assert!(
        stderr(&out).contains("resolving 1 Debian package(s) for bookworm"),
        "{}",
        text(&out)
    );
    let listed = Command::new("tar")
        .args(["tf", archive.to_str().unwrap()])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for entry in [
        "packages/debian/bookworm/Packages",
        "packages/debian/bookworm/Release",
        "bin/e",
        "environment/settings.json",
        "environment/tool-config.yml",
    ] {
        assert!(listed.lines().any(|l| l == entry), "{entry}:\n{listed}");
    }
    for package in ["jq_", "libjq1_", "libonig5_"] {
        assert!(
            listed.lines().any(
                |l| l.starts_with(&format!("packages/debian/bookworm/{package}"))
                    && l.ends_with(".deb")
            ),
            "{package}:\n{listed}"
        );
    }
    // A second export finds the packages in the cache.
    let again = dir.path().join("again.tar");
    let out = expect(
        0,
        dir.path(),
        "online",
        &[
            "export",
            "tool",
            "--without-e",
            "--out",
            again.to_str().unwrap(),
        ],
    );
    assert!(!stderr(&out).contains("resolving"), "{}", text(&out));

    // The repository machine: import into a store, and serve it.
    let offline = dir.path().join("offline");
    let store = dir.path().join("store");
    let out = expect(
        0,
        dir.path(),
        "offline",
        &[
            "import",
            archive.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
    );
    let report = stdout(&out);
    // The repository machine's server came in the archive, with the module's image.
    assert!(report.contains("e-modules/repo:0.1.0"), "{report}");
    assert!(
        report.contains("install it on this machine and the others with `install -m 0755")
            && report.contains("deb [trusted=yes] http://REPOSITORY/debian/bookworm ./"),
        "{report}"
    );
    assert_eq!(
        fs::read_to_string(offline.join("shared/tool-config.yml")).unwrap(),
        "tool:\n  size: 3\n  password: '***'\n"
    );
    assert!(
        report.contains("environment/tool-config.yml") && report.contains("set them again"),
        "{report}"
    );
    // The air-gapped side exports again from what it imported: no mirror, no resolver (its
    // image does not even exist there), and a cache of its own that is empty.
    let again = dir.path().join("from-offline.tar");
    let offline_cache = dir.path().join("offline-cache");
    let args = [
        "export",
        "tool",
        "--without-e",
        "--out",
        again.to_str().unwrap(),
    ];
    let out = e_in_with(
        dir.path(),
        &offline.join("repository.yaml"),
        &offline.join("shared"),
        &args,
        &[
            ("E_CACHE_DIR", offline_cache.to_str().unwrap()),
            ("E_DEBIAN_IMAGE", "e-tests/no-such-image:{release}"),
        ],
    );
    let out = support::exited(0, &args, out);
    assert!(!stderr(&out).contains("resolving"), "{}", text(&out));
    let relisted = Command::new("tar")
        .args(["tf", again.to_str().unwrap()])
        .output()
        .unwrap();
    let relisted = String::from_utf8_lossy(&relisted.stdout).into_owned();
    assert!(
        relisted
            .lines()
            .any(|l| l.starts_with("packages/debian/bookworm/jq_") && l.ends_with(".deb")),
        "{relisted}"
    );

    // The archive's e runs.
    let version = Command::new(offline.join("bin/e"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{version:?}"
    );

    let (port, lock) = reserve_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_e"))
        .args([
            "serve",
            store.to_str().unwrap(),
            "--listen",
            &listen,
            "--timeout",
            "10m",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _serving = Serving {
        child,
        _port_lock: lock,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "e serve did not listen on {listen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A cluster host: bookworm with no mirror, only the repository machine, installs jq.
    let script = format!(
        "set -e\n\
         rm -f /etc/apt/sources.list.d/*\n\
         echo 'deb [trusted=yes] http://{listen}/debian/bookworm ./' >/etc/apt/sources.list\n\
         apt-get update\n\
         apt-get install -y --no-install-recommends jq\n\
         echo '{{\"from\": \"the repository machine\"}}' | jq -r .from\n"
    );
    let name = format!("e-offline-packages-host-{}", std::process::id());
    let out = docker(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--label",
        "e.test=offline-packages",
        "--network",
        "host",
        "-e",
        "DEBIAN_FRONTEND=noninteractive",
        DEBIAN,
        "sh",
        "-c",
        &script,
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("the repository machine\n"), "{said}");
    // apt-get fetched from the repository machine and nothing else.
    for line in said
        .lines()
        .filter(|l| l.starts_with("Get:") || l.starts_with("Hit:"))
    {
        assert!(
            line.contains(&format!("http://{listen}/")),
            "{line}\n{said}"
        );
    }
}
