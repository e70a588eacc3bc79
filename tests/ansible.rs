//! End-to-end tests of the Ansible kit (modules/kits/ansible) with the real `e` binary, the
//! real engine and real hosts: containers running sshd (tests/support/hosts.rs). `onprem`
//! records the hosts as nodes; `postgresql` installs PostgreSQL from Debian's packages on each
//! node over ssh, and the test connects to it with `psql`; a hand change on a node is drift
//! that `e audit` reports, `e plan` shows and `e apply` puts back; destroy removes PostgreSQL
//! from the nodes; and `e check` passes both modules. The ssh key and the database password
//! reach the modules as secret files only.
//!
//! The hosts reach Debian's mirror as this machine does. Both tests run at once (about two
//! minutes and a half with warm images; see docs/benchmarks.md).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::engines::available;
use support::hosts::{self, Host, KeyPair};
use support::{Volumes, e_in, exited, stdout, text};

/// A shared directory, a repository, a secrets file and the hosts of one test.
struct Scene {
    dir: tempfile::TempDir,
    repository: PathBuf,
    password: String,
    hosts: Vec<Host>,
    _volumes: Volumes,
}

impl Scene {
    /// Starts `count` hosts and writes the secrets file (the ssh key, a password made now) and
    /// a copy of the repository whose onprem init lists the hosts in ONPREM_HOSTS.
    fn new(count: usize) -> Option<Scene> {
        if !(available("ssh-keygen", "openssh-client")
            && available("psql", "postgresql-client")
            && available("debootstrap", "debootstrap"))
        {
            return None;
        }
        hosts::images();
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::new(dir.path());
        let hosts: Vec<Host> = (1..=count)
            .map(|n| Host::start(&format!("host-{n}"), &key))
            .collect();
        let password = format!(
            "pw-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let indented: String = key
            .private_text()
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect();
        std::fs::write(
            dir.path().join("secrets.yml"),
            format!("ssh-key: |\n{indented}postgresql-password: {password}\n"),
        )
        .unwrap();
        let specs: Vec<String> = hosts.iter().map(Host::spec).collect();
        let fixture =
            std::fs::read_to_string(support::root().join("tests/fixtures/ansible-repository.yaml"))
                .unwrap();
        let listed = fixture.replace(
            "ONPREM_HOSTS: \"\"",
            &format!("ONPREM_HOSTS: \"{}\"", specs.join(" ")),
        );
        assert_ne!(listed, fixture, "the fixture sets ONPREM_HOSTS");
        let repository = dir.path().join("repository.yaml");
        std::fs::write(&repository, listed).unwrap();
        let shared = dir.path().join("shared");
        Some(Scene {
            repository,
            password,
            hosts,
            _volumes: Volumes(shared),
            dir,
        })
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    /// Runs `e --secrets FILE ARGS` and asserts its exit code.
    fn e(&self, code: i32, args: &[&str]) -> Output {
        let secrets = self.dir.path().join("secrets.yml");
        let mut all = vec!["--secrets", secrets.to_str().unwrap()];
        all.extend(args);
        let started = std::time::Instant::now();
        let out = e_in(self.dir.path(), &self.repository, &self.shared(), &all);
        eprintln!(
            "e {}: {:.1} s",
            args.join(" "),
            started.elapsed().as_secs_f64()
        );
        exited(code, args, out)
    }

    /// Runs a query on host `host`'s database as its owner, with the password.
    fn psql(&self, host: &Host, query: &str) -> Output {
        Command::new("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-p",
                &host.postgres.number.to_string(),
                "-U",
                "app",
                "-d",
                "app",
                "-c",
                query,
            ])
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .expect("psql runs")
    }

    /// The answer of a query that must succeed.
    fn query(&self, host: &Host, query: &str) -> String {
        let out = self.psql(host, query);
        assert!(
            out.status.success(),
            "psql on `{}` (port {}) failed: {}",
            host.name,
            host.postgres.number,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn state(&self) -> serde_yaml::Value {
        let text = std::fs::read_to_string(self.shared().join("state.yml")).unwrap();
        serde_yaml::from_str(&text).unwrap()
    }
}

/// The paths under `dir` of files whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn postgresql_on_two_hosts_installs_answers_psql_drifts_converges_and_is_removed() {
    let Some(scene) = Scene::new(2) else { return };
    let [one, two] = &scene.hosts[..] else {
        unreachable!()
    };

    // The infrastructure: the hosts as the user lists them.
    let specs: Vec<String> = scene.hosts.iter().map(Host::spec).collect();
    scene.e(
        0,
        &[
            "init", "onprem", "--", "--host", &specs[0], "--host", &specs[1],
        ],
    );
    scene.e(0, &["apply", "onprem", "--auto-approve"]);
    let state = scene.state();
    let nodes = state["onprem"]["nodes"].as_sequence().unwrap();
    assert_eq!(nodes.len(), 2, "{state:?}");
    for (node, host) in nodes.iter().zip(&scene.hosts) {
        assert_eq!(node["name"].as_str(), Some(host.name.as_str()));
        assert_eq!(node["sshPort"].as_u64(), Some(u64::from(host.ssh.number)));
        assert!(
            node["hostKey"]
                .as_str()
                .is_some_and(|key| key.starts_with("ssh-ed25519 ")),
            "{node:?}"
        );
        assert_eq!(node["os"].as_str(), Some("Debian 12"), "{node:?}");
    }

    // PostgreSQL on both nodes, each on its own port.
    let out = scene.e(0, &["init", "postgresql"]);
    assert!(stdout(&out).contains("2 host(s)"), "{}", text(&out));
    scene.e(0, &["apply", "postgresql", "--auto-approve"]);
    for host in &scene.hosts {
        assert_eq!(
            scene.query(host, "SELECT current_user, current_database(), 6 * 7"),
            "app|app|42"
        );
    }
    let state = scene.state();
    let servers = state["postgresql"]["servers"].as_sequence().unwrap();
    for (server, host) in servers.iter().zip(&scene.hosts) {
        assert_eq!(server["host"].as_str(), Some("127.0.0.1"));
        assert_eq!(
            server["port"].as_u64(),
            Some(u64::from(host.postgres.number))
        );
        assert_eq!(server["database"].as_str(), Some("app"));
        assert!(
            server["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("15.")),
            "{server:?}"
        );
    }
    assert_eq!(
        files_holding(&scene.shared(), &scene.password),
        Vec::<PathBuf>::new(),
        "the password is in the shared directory"
    );
    assert_eq!(
        files_holding(&scene.shared(), "PRIVATE KEY"),
        Vec::<PathBuf>::new(),
        "the ssh key is in the shared directory"
    );

    // A hand change on host-1, live: audit reports it, plan shows it back, apply converges.
    let conf = "/etc/postgresql/15/main/conf.d/e-managed.conf";
    let out = one.shell(&format!(
        "sed -i 's/^max_connections = 100$/max_connections = 42/' {conf} && pg_ctlcluster 15 main restart"
    ));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(scene.query(one, "SHOW max_connections"), "42");
    let out = scene.e(2, &["audit", "postgresql"]);
    let said = stdout(&out);
    assert!(
        said.contains("Drift:")
            && said.contains("~ host-1: Configure where the server listens")
            && !said.contains("~ host-2"),
        "{}",
        text(&out)
    );
    let plan = scene.dir.path().join("postgresql.plan");
    let out = scene.e(
        2,
        &[
            "plan",
            "postgresql",
            "--detailed-exitcode",
            "--out",
            plan.to_str().unwrap(),
        ],
    );
    let said = stdout(&out);
    assert!(
        said.contains("-max_connections = 42") && said.contains("+max_connections = 100"),
        "{}",
        text(&out)
    );
    scene.e(0, &["apply", plan.to_str().unwrap()]);
    assert_eq!(scene.query(one, "SHOW max_connections"), "100");

    // Destroy removes PostgreSQL from both nodes; then the nodes from the state.
    scene.e(0, &["destroy", "postgresql", "--auto-approve"]);
    for host in [one, two] {
        let out =
            host.shell("dpkg-query -W -f '${Status}' postgresql-15 2>&1; ls /etc/postgresql 2>&1");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            !said.contains("install ok installed") && said.contains("No such file"),
            "PostgreSQL is still on `{}`: {said}",
            host.name
        );
        assert!(!scene.psql(host, "SELECT 1").status.success());
    }
    assert!(scene.state().get("postgresql").is_none());
    scene.e(0, &["destroy", "onprem", "--auto-approve"]);
}

#[test]
fn check_passes_onprem_postgresql_and_the_template() {
    let Some(scene) = Scene::new(1) else { return };
    let out = scene.e(0, &["info", "postgresql"]);
    assert!(
        stdout(&out).contains("network:       host"),
        "{}",
        text(&out)
    );
    // The copy-this folder, copied as its docs say, built, and added to the repository.
    let folder = scene.dir.path().join("ansible-example");
    copy_folder(
        &support::root().join("modules/kits/ansible/template"),
        &folder,
    );
    hosts::build(&folder);
    let entry = std::fs::read_to_string(folder.join("repository-entry.yaml"))
        .unwrap()
        .replace("- name: example", "- name: ansible-example")
        .replace("e-modules/example:", "e-modules/ansible-example:");
    let mut repository = std::fs::read_to_string(&scene.repository).unwrap();
    repository.push_str(&entry);
    std::fs::write(&scene.repository, repository).unwrap();

    // All at once: onprem's check never changes the host, the others each have their own
    // onprem, and they touch different files.
    let scene = &scene;
    let checks = std::thread::scope(|scope| {
        let runs: Vec<_> = ["onprem", "postgresql", "ansible-example"]
            .into_iter()
            .map(|module| scope.spawn(move || scene.e(0, &["check", module])))
            .collect();
        runs.into_iter()
            .map(|run| run.join().unwrap())
            .collect::<Vec<_>>()
    });
    for out in checks {
        let said = stdout(&out);
        assert!(
            !said.contains("FAIL") && !said.contains("skip") && said.contains("destroy removes"),
            "{}",
            text(&out)
        );
    }
    // The checks destroyed what they installed on the host.
    let out = scene.hosts[0]
        .shell("test ! -e /etc/postgresql && test ! -e /etc/e-example.conf && echo gone");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "gone");
}

/// Copies the files of `from` into a new folder `to`.
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
