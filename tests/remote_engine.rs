//! e on other engines than the local socket, each started by the test on loopback and stopped
//! after (see `support/engines.rs`): a second dockerd over plain TCP and over TLS, Docker
//! contexts that point at them, an sshd whose sessions reach the local engine, and Podman's
//! Docker-compatible socket, with and without an init binary.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::process::{Output, Stdio};
use std::time::Instant;

mod support;
use support::engines::expect_at as expect;
use support::engines::{self, Certificates, Dockerd, Podman, Sshd};
use support::{stderr, stdout, text};

/// The environment as `(name, value)` pairs of owned strings.
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// `e version -o json`, parsed, which must succeed.
fn version_json(env: &[(String, String)]) -> serde_json::Value {
    let shared = tempfile::tempdir().unwrap();
    let out = expect(0, shared.path(), &["version", "-o", "json"], env);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("{err}:\n{}", text(&out)))
}

/// The engine version `docker version` reports with these arguments.
fn docker_server_version(out: &Output) -> String {
    assert!(out.status.success(), "docker version: {}", text(out));
    stdout(out).trim().to_owned()
}

#[test]
fn a_second_dockerd_over_tcp_runs_modules_and_cannot_see_the_hidden_folder() {
    if !engines::available("dockerd", "docker.io") || !engines::available("unshare", "util-linux") {
        return;
    }
    let image = engines::example_image("azi");
    let dockerd = Dockerd::start();
    eprintln!("dockerd answered after {:?}", dockerd.started_in);
    dockerd.load_images(&[&image]);

    let started = Instant::now();
    let report = version_json(&dockerd.env());
    eprintln!("e version over tcp: {:?}", started.elapsed());
    assert_eq!(report["client"]["context"], "default");
    assert_eq!(report["client"]["chosen_by"], "DOCKER_HOST");
    assert_eq!(report["client"]["host"], dockerd.host());
    assert_eq!(report["client"]["transport"], "tcp");
    let docker =
        docker_server_version(&dockerd.docker(&["version", "--format", "{{.Server.Version}}"]));
    assert_eq!(report["engine"]["version"], docker.as_str());
    assert_eq!(report["engine"]["product"], "Docker Engine");
    // e speaks the older of its API version and the engine's, as the docker CLI does.
    let api = dockerd.docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(
        report["client"]["api_version"],
        String::from_utf8_lossy(&api.stdout).trim()
    );

    // The harness's promise: what the test puts in the hidden folder, the engine cannot see.
    let hidden = dockerd.hidden_dir().join("probe");
    fs::create_dir_all(&hidden).unwrap();
    fs::write(hidden.join("secret"), "local only").unwrap();
    let bmm = engines::example_image("bmm");
    dockerd.load_images(&[&bmm]);
    let mount = format!("{}:/probe", hidden.display());
    let seen = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/busybox",
        "-v",
        &mount,
        &bmm,
        "ls",
        "-a",
        "/probe",
    ]);
    assert!(seen.status.success(), "{}", text(&seen));
    assert!(!stdout(&seen).contains("secret"), "{}", text(&seen));

    // A module runs there; its shared directory is outside the hidden folder.
    let shared = tempfile::tempdir().unwrap();
    let out = expect(
        0,
        &shared.path().join("shared"),
        &["metadata", "azi"],
        &dockerd.env(),
    );
    assert!(
        stdout(&out).contains("kind: infrastructure"),
        "{}",
        text(&out)
    );
}

#[test]
fn tls_is_verified_and_never_falls_back_to_plain_text() {
    if !engines::available("dockerd", "docker.io") || !engines::available("openssl", "openssl") {
        return;
    }
    let certificates = Certificates::new();
    let dockerd = Dockerd::start_tls(&certificates);
    let shared = tempfile::tempdir().unwrap();

    let started = Instant::now();
    let report = version_json(&dockerd.env());
    eprintln!("e version over tls: {:?}", started.elapsed());
    assert_eq!(report["client"]["transport"], "tcp+tls");
    assert_eq!(report["client"]["host"], dockerd.host());
    let docker =
        docker_server_version(&dockerd.docker(&["version", "--format", "{{.Server.Version}}"]));
    assert_eq!(report["engine"]["version"], docker.as_str());

    // Plain text to the TLS port is refused, and says what to set.
    let plain = env(&[("DOCKER_HOST", &dockerd.host())]);
    let out = expect(1, shared.path(), &["version"], &plain);
    assert!(
        stderr(&out).contains("Client sent an HTTP request to an HTTPS server")
            && stderr(&out).contains("hint: the engine speaks TLS: set DOCKER_TLS_VERIFY=1"),
        "{}",
        text(&out)
    );

    // TLS asked for, certificates missing: refused before any connection.
    let empty = tempfile::tempdir().unwrap();
    let missing = env(&[
        ("DOCKER_HOST", &dockerd.host()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", &empty.path().display().to_string()),
    ]);
    let out = expect(1, shared.path(), &["version"], &missing);
    assert!(
        stderr(&out).contains("`ca.pem`, `cert.pem`, `key.pem` are missing")
            && stderr(&out).contains("e never falls back to plain text"),
        "{}",
        text(&out)
    );

    // Another CA's certificates: the engine's certificate is not trusted.
    let strangers = Certificates::new();
    let other = env(&[
        ("DOCKER_HOST", &dockerd.host()),
        ("DOCKER_TLS_VERIFY", "1"),
        (
            "DOCKER_CERT_PATH",
            &strangers.client_dir().display().to_string(),
        ),
    ]);
    let out = expect(1, shared.path(), &["version"], &other);
    assert!(stderr(&out).contains("certificate"), "{}", text(&out));

    // TLS without verification (DOCKER_TLS alone) is refused, not done.
    let lax = env(&[
        ("DOCKER_HOST", &dockerd.host()),
        ("DOCKER_TLS", "1"),
        (
            "DOCKER_CERT_PATH",
            &certificates.client_dir().display().to_string(),
        ),
    ]);
    let out = expect(1, shared.path(), &["version"], &lax);
    assert!(
        stderr(&out).contains("without verifying the engine's certificate"),
        "{}",
        text(&out)
    );
}

#[test]
fn docker_contexts_choose_the_engine_as_for_the_docker_cli() {
    if !engines::available("dockerd", "docker.io") || !engines::available("openssl", "openssl") {
        return;
    }
    let certificates = Certificates::new();
    let secure = Dockerd::start_tls(&certificates);
    let plain = Dockerd::start();
    let config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            text(&out)
        );
        out
    };
    let client = certificates.client_dir();
    let secure_endpoint = format!(
        "host={},ca={},cert={},key={}",
        secure.host(),
        client.join("ca.pem").display(),
        client.join("cert.pem").display(),
        client.join("key.pem").display()
    );
    docker(&["context", "create", "secure", "--docker", &secure_endpoint]);
    docker(&[
        "context",
        "create",
        "plain",
        "--docker",
        &format!("host={}", plain.host()),
    ]);
    let config_dir = config.path().display().to_string();

    // DOCKER_CONTEXT: the context's host, with its TLS material from the store.
    let report = version_json(&env(&[
        ("DOCKER_CONFIG", &config_dir),
        ("DOCKER_CONTEXT", "secure"),
    ]));
    let expected = docker_server_version(&docker(&[
        "--context",
        "secure",
        "version",
        "--format",
        "{{.Server.Version}}",
    ]));
    assert_eq!(report["client"]["context"], "secure");
    assert_eq!(report["client"]["chosen_by"], "DOCKER_CONTEXT");
    assert_eq!(report["client"]["host"], secure.host());
    assert_eq!(report["client"]["transport"], "tcp+tls");
    assert_eq!(report["engine"]["version"], expected.as_str());

    // `docker context use` writes currentContext; e follows it, as docker does.
    docker(&["context", "use", "plain"]);
    let report = version_json(&env(&[("DOCKER_CONFIG", &config_dir)]));
    let expected = docker_server_version(&docker(&["version", "--format", "{{.Server.Version}}"]));
    assert_eq!(report["client"]["context"], "plain");
    assert_eq!(report["client"]["host"], plain.host());
    assert_eq!(report["client"]["transport"], "tcp");
    assert_eq!(report["engine"]["version"], expected.as_str());
    assert!(
        report["client"]["chosen_by"]
            .as_str()
            .is_some_and(|chosen| chosen.starts_with("`currentContext` in `")),
        "{report}"
    );

    // DOCKER_CONTEXT wins over currentContext, DOCKER_HOST over both.
    let report = version_json(&env(&[
        ("DOCKER_CONFIG", &config_dir),
        ("DOCKER_CONTEXT", "secure"),
    ]));
    assert_eq!(report["client"]["host"], secure.host());
    let report = version_json(&env(&[
        ("DOCKER_CONFIG", &config_dir),
        ("DOCKER_CONTEXT", "secure"),
        ("DOCKER_HOST", &plain.host()),
    ]));
    assert_eq!(report["client"]["context"], "default");
    assert_eq!(report["client"]["host"], plain.host());

    // An unknown context is named, with where e looked and what to run.
    let shared = tempfile::tempdir().unwrap();
    let out = expect(
        1,
        shared.path(),
        &["version"],
        &env(&[
            ("DOCKER_CONFIG", &config_dir),
            ("DOCKER_CONTEXT", "nowhere"),
        ]),
    );
    assert!(
        stderr(&out).contains("context `nowhere` (chosen by DOCKER_CONTEXT) does not exist")
            && stderr(&out).contains("hint: `docker context ls` lists the contexts"),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).starts_with("Client:\n Version:"),
        "{}",
        text(&out)
    );
}

#[test]
fn ssh_holds_one_connection_for_the_whole_command() {
    if !engines::available("/usr/sbin/sshd", "openssh-server")
        || !engines::available("ssh", "openssh-client")
    {
        return;
    }
    engines::example_image("azi");
    // The sessions run the host's docker CLI, which reaches the local engine.
    let sshd = Sshd::start(&[("DOCKER_HOST", "unix:///var/run/docker.sock")]);
    let remote = env(&[("DOCKER_HOST", &sshd.host()), ("PATH", &sshd.path())]);
    let shared = tempfile::tempdir().unwrap();

    let started = Instant::now();
    let report = version_json(&remote);
    eprintln!("e version over ssh: {:?}", started.elapsed());
    assert_eq!(report["client"]["transport"], "ssh");
    assert_eq!(report["client"]["host"], sshd.host());
    assert_eq!(report["engine"]["product"], "Docker Engine");
    assert_eq!(sshd.connections(), 1, "{}", sshd.log_tail());

    let out = expect(
        0,
        &shared.path().join("shared"),
        &["metadata", "azi"],
        &remote,
    );
    assert!(
        stdout(&out).contains("kind: infrastructure"),
        "{}",
        text(&out)
    );
    // One more connection for the whole metadata run (create, attach, start, wait, remove),
    // however many sessions went through it.
    assert_eq!(sshd.connections(), 2, "{}", sshd.log_tail());
    eprintln!(
        "ssh: {} connections, {} sessions, {} ssh runs for e version and e metadata",
        sshd.connections(),
        sshd.sessions(),
        sshd.ssh_runs()
    );
    assert!(sshd.sessions() >= 2, "{}", sshd.log_tail());

    // No sshd there: the error says what ssh said and what to check.
    drop(sshd);
    let out = expect(1, shared.path(), &["version"], &remote);
    assert!(
        stderr(&out).contains("cannot reach the Docker engine at `ssh://root@127.0.0.1:")
            && stderr(&out).contains("hint: check that `ssh` reaches the host"),
        "{}",
        text(&out)
    );
}

#[test]
fn ctrl_c_over_ssh_still_stops_and_removes_the_container() {
    if !engines::available("/usr/sbin/sshd", "openssh-server")
        || !engines::available("ssh", "openssh-client")
    {
        return;
    }
    engines::misbehave_image();
    let sshd = Sshd::start(&[("DOCKER_HOST", "unix:///var/run/docker.sock")]);
    let scene = tempfile::tempdir().unwrap();
    let shared = scene.path().join("shared");
    let config = tempfile::tempdir().unwrap();
    // A terminal's Ctrl-C goes to the whole foreground process group: e and its children.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_e"))
        .args(["run", "misbehave", "hang", "--timeout", "60s"])
        .env(
            "E_REPOSITORY",
            support::root().join("tests/fixtures/e2e-repository.yaml"),
        )
        .env("E_SHARED", &shared)
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_HOST", sshd.host())
        .env("PATH", sshd.path())
        .env_remove("DOCKER_CONTEXT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let container = running_container_with(&shared).expect("the module's container runs");
    std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    let gone = std::process::Command::new("docker")
        .args(["inspect", &container])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the interrupted container was removed: {said}"
    );
}

/// The id of the running `misbehave` container whose shared directory is `shared`, waiting
/// for it up to 30 s.
fn running_container_with(shared: &std::path::Path) -> Option<String> {
    for _ in 0..300 {
        // Every container of a shared directory carries its id (label `e.shared`).
        if let Ok(id) = fs::read_to_string(shared.join(".e/id")) {
            let ids = std::process::Command::new("docker")
                .args(["ps", "-q", "--filter", "label=e.module=misbehave"])
                .args(["--filter", &format!("label=e.shared={}", id.trim())])
                .output()
                .unwrap();
            if let Some(id) = stdout(&ids).lines().next() {
                return Some(id.to_owned());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

#[test]
fn podman_runs_modules_with_its_init_and_without_one() {
    if !engines::available("podman", "podman") {
        return;
    }
    let image = engines::example_image("azi");
    for init in [true, false] {
        let podman = Podman::start(init);
        podman.load_images(&[&image]);
        let report = version_json(&podman.env());
        assert_eq!(report["engine"]["product"], "Podman Engine", "{report}");
        assert_eq!(report["client"]["transport"], "unix socket");

        let shared = tempfile::tempdir().unwrap();
        let out = expect(
            0,
            &shared.path().join("shared"),
            &["metadata", "azi"],
            &podman.env(),
        );
        assert!(
            stdout(&out).contains("kind: infrastructure"),
            "{}",
            text(&out)
        );
        let warned = stderr(&out).matches("has no init process").count();
        if init {
            assert_eq!(warned, 0, "{}", text(&out));
        } else {
            assert_eq!(warned, 1, "{}", text(&out));
            assert!(
                stderr(&out).contains("hint: install `catatonit` on the engine's host"),
                "{}",
                text(&out)
            );
        }
    }
}

/// The design's walkthrough (azi, a hand edit, bmk, bmm, audits) on the engine `env` names,
/// in the shared directory `shared`; returns the history.
fn walkthrough(shared: &std::path::Path, env: &[(String, String)]) -> Vec<serde_json::Value> {
    expect(0, shared, &["init", "azi"], env);
    expect(2, shared, &["plan", "azi", "--detailed-exitcode"], env);
    expect(0, shared, &["apply", "--auto-approve", "azi"], env);
    let state = fs::read_to_string(shared.join("state.yml")).expect("the local state");
    assert_eq!(state.matches("usedBy: unused").count(), 5, "{state}");
    let edited = state.replacen("privateIP: 10.0.0.1\n", "privateIP: 10.0.0.100\n", 1);
    fs::write(shared.join("state.yml"), &edited).unwrap();
    expect(0, shared, &["init", "bmk"], env);
    let config = fs::read_to_string(shared.join("bmk-config.yml")).unwrap();
    assert!(config.contains("10.0.0.100"), "{config}");
    expect(0, shared, &["apply", "--auto-approve", "bmk"], env);
    expect(0, shared, &["init", "bmm"], env);
    expect(0, shared, &["apply", "--auto-approve", "bmm"], env);
    let state = fs::read_to_string(shared.join("state.yml")).unwrap();
    assert_eq!(state.matches("usedBy: bmk").count(), 3, "{state}");
    assert!(state.contains("bmm:"), "{state}");
    // A hand edit azi does not know: its audit says so (exit 2).
    expect(2, shared, &["audit", "azi"], env);
    let status = stdout(&expect(0, shared, &["status", "-o", "json"], env));
    for module in ["azi", "bmk", "bmm"] {
        assert!(status.contains(&format!("\"{module}\"")), "{status}");
    }
    let history = expect(0, shared, &["history", "-o", "json"], env);
    serde_json::from_slice(&history.stdout).unwrap()
}

/// The containers e left on the engine `env` names (label `e.managed-by=e`).
/// The containers e left on the engine, but its network holders, which live two minutes by
/// design (`runtime/docker/holder.rs`).
fn left_on(env: &[(String, String)]) -> String {
    let mut docker = std::process::Command::new("docker");
    docker.args([
        "ps",
        "-a",
        "--filter",
        "label=e.managed-by=e",
        "--format",
        "{{.ID}} {{.Label \"e.holder\"}}",
    ]);
    for (name, value) in env {
        docker.env(name, value);
    }
    stdout(&docker.output().expect("docker ps"))
        .lines()
        .filter_map(|line| match line.trim().split_once(' ') {
            Some((_, holder)) if !holder.is_empty() => None,
            _ => Some(line.trim().to_owned()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_walkthrough_passes_on_a_remote_engine_that_cannot_see_the_shared_directory() {
    if !engines::available("dockerd", "docker.io") || !engines::available("unshare", "util-linux") {
        return;
    }
    let images: Vec<String> = ["azi", "bmk", "bmm"]
        .iter()
        .map(|m| engines::example_image(m))
        .collect();
    let dockerd = Dockerd::start();
    dockerd.load_images(&images.iter().map(String::as_str).collect::<Vec<_>>());
    // The shared directory is where this engine cannot look.
    let shared = dockerd.hidden_dir().join("shared");
    let runs = walkthrough(&shared, &dockerd.env());
    assert!(
        runs.iter().all(|run| run["transfer"] == "archive"),
        "a remote engine gets copies through the archive API: {runs:?}"
    );
    assert_eq!(
        left_on(&dockerd.env()),
        "",
        "no container is left on the engine"
    );
    // Forcing a bind on an engine that cannot see the directory fails clearly, and commits nothing.
    let before = fs::read_to_string(shared.join("state.yml")).unwrap();
    let mut forced = dockerd.env();
    forced.push(("E_TRANSFER".to_owned(), "bind".to_owned()));
    let out = expect(1, &shared, &["apply", "--auto-approve", "azi"], &forced);
    assert!(
        stderr(&out).contains("does not exist"),
        "the engine's reason is shown: {}",
        text(&out)
    );
    assert_eq!(
        fs::read_to_string(shared.join("state.yml")).unwrap(),
        before
    );
}

#[test]
fn the_walkthrough_passes_on_podman() {
    if !engines::available("podman", "podman") {
        return;
    }
    let images: Vec<String> = ["azi", "bmk", "bmm"]
        .iter()
        .map(|m| engines::example_image(m))
        .collect();
    let podman = Podman::start(true);
    podman.load_images(&images.iter().map(String::as_str).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let runs = walkthrough(&shared, &podman.env());
    assert!(
        runs.iter().all(|run| run["transfer"] == "bind"),
        "Podman's local socket sees e's files: {runs:?}"
    );
    assert_eq!(left_on(&podman.env()), "", "no container is left on Podman");
}

#[test]
fn the_walkthrough_passes_over_tls_and_over_ssh() {
    if !engines::available("dockerd", "docker.io")
        || !engines::available("openssl", "openssl")
        || !engines::available("/usr/sbin/sshd", "openssh-server")
        || !engines::available("ssh", "openssh-client")
    {
        return;
    }
    let images: Vec<String> = ["azi", "bmk", "bmm"]
        .iter()
        .map(|m| engines::example_image(m))
        .collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();

    let certificates = Certificates::new();
    let dockerd = Dockerd::start_tls(&certificates);
    dockerd.load_images(&images);
    let runs = walkthrough(&dockerd.hidden_dir().join("shared"), &dockerd.env());
    assert!(
        runs.iter().all(|run| run["transfer"] == "archive"),
        "{runs:?}"
    );
    assert_eq!(left_on(&dockerd.env()), "");

    // Over ssh to this machine's engine: archive too, since e cannot know the host is this one.
    let sshd = Sshd::start(&[("DOCKER_HOST", "unix:///var/run/docker.sock")]);
    let remote = env(&[("DOCKER_HOST", &sshd.host()), ("PATH", &sshd.path())]);
    let dir = tempfile::tempdir().unwrap();
    let runs = walkthrough(&dir.path().join("shared"), &remote);
    assert!(
        runs.iter().all(|run| run["transfer"] == "archive"),
        "{runs:?}"
    );
}
