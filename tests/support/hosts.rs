//! Real hosts for the Ansible modules' tests: containers of `e-tests/ansible-host:0.1.0`
//! (Debian with sshd, python3 and sudo, built by `modules/kits/ansible/build.sh`) on the host
//! network, each with an sshd on 127.0.0.1 and a port of its own, and a second port reserved
//! for the PostgreSQL it may get. Ports come from 23800-23819 only, reserved by lock files like
//! the engines' ([`Port`]). A host is removed when dropped, even when the test fails; every
//! container carries the label `e.test=ansible-host` and the PID of its test, so one left by a
//! test killed with `kill -9` is removed by the next.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::engines::Port;
use super::root;

/// The ports the hosts' sshd and PostgreSQL listen on.
pub const PORTS: std::ops::RangeInclusive<u16> = 23800..=23819;

/// The test hosts' image.
pub const IMAGE: &str = "e-tests/ansible-host:0.1.0";

/// The label of every test host.
const LABEL: &str = "e.test=ansible-host";

/// Builds the kit, its modules and the test hosts' image once per test binary (a second or two
/// when nothing changed: `build.sh` skips images whose inputs did not change).
pub fn images() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let started = Instant::now();
        let out = Command::new(root().join("modules/kits/ansible/build.sh"))
            .output()
            .expect("modules/kits/ansible/build.sh runs");
        assert!(
            out.status.success(),
            "modules/kits/ansible/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "ansible kit images ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    });
}

/// Builds the module in `folder` on the kit (`build.sh FOLDER`): `e-modules/FOLDER:VERSION`.
pub fn build(folder: &Path) {
    let out = Command::new(root().join("modules/kits/ansible/build.sh"))
        .arg(folder)
        .output()
        .expect("modules/kits/ansible/build.sh runs");
    assert!(
        out.status.success(),
        "modules/kits/ansible/build.sh {} failed:\n{}",
        folder.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ssh key pair made for one test.
pub struct KeyPair {
    /// The private key file.
    pub private: PathBuf,
    /// The public key, one line.
    pub public: String,
}

impl KeyPair {
    /// Makes an ed25519 key pair in `dir` with ssh-keygen.
    pub fn new(dir: &Path) -> KeyPair {
        let private = dir.join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "e-test", "-f"])
            .arg(&private)
            .output()
            .expect("ssh-keygen runs");
        assert!(out.status.success(), "ssh-keygen failed: {out:?}");
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .expect("the public key")
            .trim()
            .to_owned();
        KeyPair { private, public }
    }

    /// The private key's text.
    pub fn private_text(&self) -> String {
        std::fs::read_to_string(&self.private).expect("the private key")
    }
}

/// A running test host, removed when dropped.
pub struct Host {
    /// Its name in onprem's config.
    pub name: String,
    /// The container's name.
    pub container: String,
    /// The port of its sshd on 127.0.0.1.
    pub ssh: Port,
    /// The port its PostgreSQL is to listen on.
    pub postgres: Port,
}

impl Host {
    /// Starts host `name` for root logins with `key`, and waits until its sshd answers.
    pub fn start(name: &str, key: &KeyPair) -> Host {
        remove_orphans();
        let ssh = Port::reserve_in(PORTS);
        let postgres = Port::reserve_in(PORTS);
        let container = format!("e-test-ansible-host-{}", ssh.number);
        // A container of that name can only be a leftover: its port was free.
        let _ = docker(&["rm", "-f", &container]);
        let pid = std::process::id().to_string();
        let out = docker(&[
            "run",
            "-d",
            "--name",
            &container,
            "--label",
            LABEL,
            "--label",
            &format!("e.test.pid={pid}"),
            "--network",
            "host",
            "-e",
            &format!("SSH_PORT={}", ssh.number),
            "-e",
            &format!("AUTHORIZED_KEY={}", key.public),
            IMAGE,
        ]);
        assert!(
            out.status.success(),
            "the test host `{container}` does not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let host = Host {
            name: name.to_owned(),
            container,
            ssh,
            postgres,
        };
        host.wait_for_sshd();
        host
    }

    fn wait_for_sshd(&self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.ssh.number)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the sshd of `{}` does not answer on port {}; its log:\n{}",
                self.container,
                self.ssh.number,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The host as `init --host` and ONPREM_HOSTS take it, with its PostgreSQL port.
    pub fn spec(&self) -> String {
        format!(
            "{}=root@127.0.0.1:{},postgresql_port={}",
            self.name, self.ssh.number, self.postgres.number
        )
    }

    /// Runs `sh -c SCRIPT` on the host, as root, outside e: a hand change.
    pub fn shell(&self, script: &str) -> Output {
        docker(&["exec", &self.container, "sh", "-c", script])
    }

    /// What the host's sshd said.
    pub fn logs(&self) -> String {
        let out = docker(&["logs", "--tail", "30", &self.container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.container]);
    }
}

/// Removes test hosts whose test process is gone (killed before its hosts were dropped).
fn remove_orphans() {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        "{{.ID}} {{.Label \"e.test.pid\"}}",
    ]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split_whitespace();
        let (Some(id), Some(pid)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = docker(&["rm", "-f", id]);
        }
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}
