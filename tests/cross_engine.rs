//! Archives of `e export` carried between Docker and Podman, both ways, on engines the tests
//! start on loopback and stop after (see `support/engines.rs`): Podman names every image that
//! came from no registry `localhost/NAME`, in what it saves and in what it loads, and reports
//! a load on one line. The import must say what happened, and the modules must run there.

use std::fs;

mod support;
use support::engines::expect_at as expect;
use support::engines::{self, Dockerd, Podman};
use support::{stderr, stdout, text};

/// Imports `archive` into the engine of `env` with a repository of its own, checks that the
/// import warned of nothing and that azi runs there, and returns the import's stdout.
fn import_and_run(dir: &std::path::Path, archive: &str, env: &[(String, String)]) -> String {
    fs::create_dir_all(dir).unwrap();
    let repository = dir.join("repository.yaml");
    let repository = repository.to_str().unwrap();
    let shared = dir.join("shared");
    let out = expect(
        0,
        &shared,
        &["--repository", repository, "import", archive],
        env,
    );
    assert!(!stderr(&out).contains("warning"), "{}", text(&out));
    let run = expect(
        0,
        &shared,
        &["--repository", repository, "metadata", "azi"],
        env,
    );
    assert!(
        stdout(&run).contains("kind: infrastructure"),
        "{}",
        text(&run)
    );
    stdout(&out)
}

#[test]
fn an_archive_exported_through_podman_imports_into_docker() {
    if !engines::available("podman", "podman") || !engines::available("dockerd", "docker.io") {
        return;
    }
    let image = engines::example_image("azi");
    let podman = Podman::start(true);
    podman.load_images(&[&image]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("from-podman.tar");
    let archive = archive.to_str().unwrap();
    let out = expect(
        0,
        &dir.path().join("shared"),
        &["export", "azi", "--out", archive],
        &podman.env(),
    );
    assert!(
        stdout(&out).contains("images:   e-modules/azi:0.1.0"),
        "{}",
        text(&out)
    );

    // A Docker engine without the image: it loads `localhost/...`, and e adds the name the
    // repository uses.
    let docker = Dockerd::start();
    let report = import_and_run(&dir.path().join("docker"), archive, &docker.env());
    assert!(
        report.contains(
            "e-modules/azi:0.1.0   loaded as `localhost/e-modules/azi:0.1.0`, tagged `e-modules/azi:0.1.0`"
        ),
        "{report}"
    );
}

#[test]
fn an_archive_exported_through_docker_imports_into_podman() {
    if !engines::available("podman", "podman") {
        return;
    }
    engines::example_image("azi");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("from-docker.tar");
    let archive = archive.to_str().unwrap();
    expect(
        0,
        &dir.path().join("shared"),
        &["export", "azi", "--out", archive],
        &[],
    );
    let podman = Podman::start(true);
    let report = import_and_run(&dir.path().join("podman"), archive, &podman.env());
    assert!(
        report.contains(
            "e-modules/azi:0.1.0   loaded (the engine names it `localhost/e-modules/azi:0.1.0`)"
        ),
        "{report}"
    );
}
