//! The repository machine and registry credentials, against real servers the tests start on
//! loopback and stop after: Debian's `docker-registry` (open, and behind an htpasswd file), a
//! second dockerd that pulls from it, and a `docker-credential-*` helper script on PATH.
//!
//! `e push` and `e import --push` tag images in the local engine under the registry; each test
//! removes the tags it made.

use std::fs;
use std::process::Command;

mod support;
use support::engines::expect_at as expect;
use support::engines::{self, Dockerd};
use support::registry::{
    CredentialHelper, LocalTags, Registry, arg, docker_config, repository_with_image,
};
use support::{stderr, stdout, text};

/// The environment as `(name, value)` pairs of owned strings.
fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// base64 of `text`, as `config.json` stores `user:password`.
fn base64(text: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("printf %s \"$0\" | base64 -w0")
        .arg(text)
        .output()
        .expect("base64 runs");
    String::from_utf8(out.stdout).expect("ascii")
}

#[test]
fn an_imported_archive_is_pushed_and_a_second_engine_pulls_it_from_the_registry() {
    if !engines::available("docker-registry", "docker-registry")
        || !engines::available("dockerd", "docker.io")
    {
        return;
    }
    engines::example_image("azi");
    let registry = Registry::start();
    let pushed = format!("{}/e-modules/azi:0.1.0", registry.address());
    let _tags = LocalTags(vec![pushed.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let archive = arg(dir.path(), "azi.tar");
    expect(0, &shared, &["export", "azi", "--out", &archive], &[]);

    // The repository machine: import, push every image, and write the modules with the
    // registry's names.
    let machine = dir.path().join("machine");
    fs::create_dir(&machine).unwrap();
    let repository = arg(&machine, "repository.yaml");
    let out = expect(
        0,
        &machine.join("shared"),
        &[
            "--repository",
            &repository,
            "import",
            &archive,
            "--push",
            &registry.address(),
        ],
        &[],
    );
    assert!(
        stdout(&out).contains(&format!("loaded, pushed as `{pushed}` (sha256:")),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains(&format!("pushing image `{pushed}`")),
        "{}",
        text(&out)
    );
    let written = fs::read_to_string(&repository).unwrap();
    let parsed: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
    assert_eq!(
        parsed["components"][0]["versions"][0]["image"].as_str(),
        Some(pushed.as_str()),
        "{written}"
    );

    // A machine of the cluster: an engine without the image, the machine's repository.
    let second = Dockerd::start();
    let out = expect(
        0,
        &dir.path().join("cluster-shared"),
        &["--repository", &repository, "metadata", "azi"],
        &second.env(),
    );
    assert!(
        stderr(&out).contains(&format!("pulling image `{pushed}`")),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).contains("kind: infrastructure"),
        "{}",
        text(&out)
    );
    let listed = second.docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    // Besides the module's image, only e's network holder (`runtime/docker/holder.rs`).
    let listed: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|image| !image.starts_with("e-holder:"))
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&pushed));

    // Importing it again with the same registry finds the same modules: nothing to change.
    let out = expect(
        0,
        &machine.join("shared"),
        &[
            "--repository",
            &repository,
            "import",
            &archive,
            "--push",
            &registry.address(),
        ],
        &[],
    );
    assert!(
        stdout(&out).contains("skipped: already there, identical"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_registry_with_a_password_takes_the_credentials_of_docker_login_and_of_helpers() {
    if !engines::available("docker-registry", "docker-registry")
        || !engines::available("htpasswd", "apache2-utils")
        || !engines::available("dockerd", "docker.io")
    {
        return;
    }
    engines::example_image("azi");
    let registry = Registry::start_with_password("e-user", "e-secret");
    let address = registry.address();
    let pushed = format!("{address}/e-modules/azi:0.1.0");
    let _tags = LocalTags(vec![pushed.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");

    // No credentials: refused, and the hint says how to log in.
    let out = expect(1, &shared, &["push", "azi", &address], &[]);
    assert!(
        stderr(&out).contains(&format!(
            "error: failed to push image `e-modules/azi:0.1.0` to `{address}`: no basic auth credentials\nhint: log in with `docker login {address}`"
        )),
        "{}\nregistry log:\n{}",
        text(&out),
        registry.log_tail()
    );

    // What `docker login` writes without a helper: `auths` with base64 of user:password.
    let login = docker_config(&format!(
        r#"{{"auths": {{"{address}": {{"auth": "{}"}}}}}}"#,
        base64("e-user:e-secret")
    ));
    let login_env = env(&[("DOCKER_CONFIG", login.path().to_str().unwrap())]);
    let out = expect(
        0,
        &shared,
        &["push", "azi", &address, "-o", "json"],
        &login_env,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["pushed_as"], pushed.as_str(), "{report}");
    assert!(
        report[0]["digest"].as_str().unwrap().starts_with("sha256:"),
        "{report}"
    );

    // A helper named for this registry (`credHelpers`) is asked, by the protocol.
    let helper = CredentialHelper::new("e-test", &address, "e-user", "e-secret");
    let helped = docker_config(&format!(r#"{{"credHelpers": {{"{address}": "e-test"}}}}"#));
    let helped_env = env(&[
        ("DOCKER_CONFIG", helped.path().to_str().unwrap()),
        ("PATH", &helper.path()),
    ]);
    expect(0, &shared, &["push", "azi", &address], &helped_env);
    assert_eq!(helper.calls(), format!("get {address}\n"));

    // A second engine pulls through the `credsStore` helper; without it, the pull is refused
    // with the same hint.
    let second = Dockerd::start();
    let repository = repository_with_image(dir.path(), "e-modules/azi:0.1.0", &pushed);
    let repository = repository.to_str().unwrap();
    let cluster = dir.path().join("cluster-shared");
    let out = expect(
        1,
        &cluster,
        &["--repository", repository, "metadata", "azi"],
        &second.env(),
    );
    assert!(
        stderr(&out).contains(&format!("hint: log in with `docker login {address}`")),
        "{}",
        text(&out)
    );
    let store = docker_config(r#"{"credsStore": "e-test"}"#);
    let mut store_env = second.env();
    store_env.extend(env(&[
        ("DOCKER_CONFIG", store.path().to_str().unwrap()),
        ("PATH", &helper.path()),
    ]));
    let out = expect(
        0,
        &cluster,
        &["--repository", repository, "metadata", "azi"],
        &store_env,
    );
    assert!(
        stdout(&out).contains("kind: infrastructure"),
        "{}",
        text(&out)
    );
    assert_eq!(
        helper.calls(),
        format!("get {address}\nget {address}\n"),
        "the helper is asked once more, for the pull"
    );
}

#[test]
fn a_broken_helper_is_a_warning_and_the_pull_goes_on_anonymously() {
    if !engines::available("docker-registry", "docker-registry") {
        return;
    }
    let image = engines::example_image("azi");
    let registry = Registry::start();
    let pushed = format!("{}/e-modules/azi:0.1.0", registry.address());
    let tags = LocalTags(vec![pushed.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let absent = docker_config(r#"{"credsStore": "e-test-absent"}"#);
    let absent_env = env(&[("DOCKER_CONFIG", absent.path().to_str().unwrap())]);
    let out = expect(
        0,
        &shared,
        &["push", "azi", &registry.address()],
        &absent_env,
    );
    assert!(
        stderr(&out).contains(&format!(
            "warning: the credential helper that `config.json` names for `{}` cannot be run; going on without credentials",
            registry.address()
        )),
        "{}",
        text(&out)
    );
    // The pushed tag goes; the pull brings it back from the registry.
    drop(tags);
    let repository = repository_with_image(dir.path(), &image, &pushed);
    let _tags = LocalTags(vec![pushed.clone()]);
    let out = expect(
        0,
        &shared,
        &[
            "--repository",
            repository.to_str().unwrap(),
            "metadata",
            "azi",
        ],
        &absent_env,
    );
    assert!(
        stderr(&out).contains(&format!("pulling image `{pushed}`")),
        "{}",
        text(&out)
    );
}
