//! End-to-end tests of `DockerEngine` against a real Docker engine.
//!
//! They need a running engine (the default socket, or `DOCKER_HOST`) and fail, never skip,
//! without one. No registry is needed: each test builds its own tiny image `FROM scratch` with
//! the host's static `/bin/busybox`, gives its containers their own run label, and removes its
//! image and containers through a [`Cleanup`] guard, so even a failing test leaves nothing.
//! Tests may use bollard directly to look at what the engine did.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use e::repository::model::User;
use e::runtime::docker::{DockerEngine, connect};
use e::runtime::fake::RecordingSink;
use e::runtime::{
    Confinement, Engine, ImageInfo, LABEL_MANAGED_BY, LABEL_MODULE, LABEL_RUN, Network, Outcome,
    RunSpec, SharedCopy, Stopped, Stream, labels,
};

/// The module name on every container these tests start.
const MODULE: &str = "e-test";

/// The repository of the images these tests build; each test has its own tag.
const REPOSITORY: &str = "e-test-engine";

/// How long any single engine call may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// The environment variable that makes [`interrupted_child`] run (see [`ctrl_c_stops_the_run`]).
const CHILD_RUN: &str = "E_TEST_INTERRUPT_RUN";
/// The image the child process runs.
const CHILD_IMAGE: &str = "E_TEST_INTERRUPT_IMAGE";

/// A name no other test, and no other run of this test binary, uses.
fn unique(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{what}-{}-{nanos}-{count}", std::process::id())
}

/// Fails, with what to do, when there is no engine to test against.
fn require_engine() {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    assert!(
        !host.is_empty() || Path::new("/var/run/docker.sock").exists(),
        "these tests need a Docker engine, but /var/run/docker.sock is absent and DOCKER_HOST is unset\n\
         hint: start one (`sudo systemctl start docker` or `dockerd`), or set DOCKER_HOST"
    );
}

/// Connects e's engine, failing the test with e's own message when the engine is unreachable.
async fn engine() -> DockerEngine {
    require_engine();
    match connect().await {
        Ok(engine) => engine,
        Err(err) => panic!("{err:#}"),
    }
}

/// A plain bollard client, to look at what e did behind its back.
fn docker() -> Docker {
    require_engine();
    Docker::connect_with_defaults().expect("a bollard client for the test engine")
}

/// Removes a test's image and every container of its run when dropped, even on panic.
struct Cleanup {
    image: String,
    run: String,
}

impl Cleanup {
    fn new(what: &str) -> Self {
        Self {
            image: format!("{REPOSITORY}:{}", unique(what)),
            run: unique(what),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (image, run) = (self.image.clone(), self.run.clone());
        // Drop cannot await, and may run inside the test's runtime: clean up from a thread
        // with a runtime of its own.
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async {
                let docker = docker();
                for container in containers_of_run(&docker, &run).await {
                    let id = container.id.unwrap_or_default();
                    let options = RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build();
                    let _ = docker.remove_container(&id, Some(options)).await;
                }
                if let Ok(engine) = connect().await {
                    let _builds = BUILDS.lock().await;
                    let _ = engine.remove_image(&image).await;
                }
            });
        })
        .join();
        if cleaned.is_err() {
            eprintln!("warning: cleanup of `{}` failed", self.image);
        }
    }
}

/// Every container (any state) labelled with this run.
async fn containers_of_run(docker: &Docker, run: &str) -> Vec<ContainerSummary> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_RUN}={run}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
}

/// Waits until the run's container is running and returns its id.
async fn running_container(docker: &Docker, run: &str) -> String {
    let started = Instant::now();
    loop {
        let running = containers_of_run(docker, run)
            .await
            .into_iter()
            .find(|container| container.state == Some(ContainerSummaryStateEnum::RUNNING));
        if let Some(container) = running {
            return container.id.expect("a container id");
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the container of run `{run}` did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Held while a test builds or removes an image: the engine's legacy builder can pick a cache
/// entry that a concurrent removal is deleting ("unable to find image").
static BUILDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds the busybox test image as `tag`, from a context holding busybox and a Dockerfile.
///
/// The label makes every test's image, and every step of its build, its own: with identical
/// images, one test removing its tag could delete the image or build cache another test is
/// tagging at that moment.
async fn build_test_image(engine: &DockerEngine, tag: &str) -> ImageInfo {
    let _builds = BUILDS.lock().await;
    let context = tempfile::tempdir().expect("a build context");
    std::fs::copy("/bin/busybox", context.path().join("busybox"))
        .expect("copy /bin/busybox (install busybox-static) into the build context");
    let dockerfile = format!(
        "FROM scratch\nLABEL e.test={tag:?}\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n"
    );
    std::fs::write(context.path().join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    let sink = RecordingSink::new();
    let built = tokio::time::timeout(PATIENCE, engine.build(context.path(), tag, &sink))
        .await
        .expect("the build finished in time");
    match built {
        Ok(info) => info,
        Err(err) => panic!(
            "building the test image failed: {err:#}\nlog:\n{}",
            sink.stdout()
        ),
    }
}

/// A run of the test image with e's labels, an empty archive-mode shared directory, and the
/// given busybox arguments, confined as e confines a module that asks for nothing, but as root
/// (the tests that need another user say so).
fn spec(image: &str, run: &str, args: &[&str]) -> RunSpec {
    RunSpec {
        image: image.to_owned(),
        args: args.iter().map(|arg| arg.to_string()).collect(),
        env: vec![("E_TEST".to_owned(), "1".to_owned())],
        workdir: None,
        shared: SharedCopy::Archive {
            upload: tar::Builder::new(Vec::new())
                .into_inner()
                .expect("an empty tar"),
            download_limit: 1 << 20,
        },
        shared_path: "/shared".to_owned(),
        volumes: Vec::new(),
        confinement: Confinement::defaults(User { uid: 0, gid: 0 }),
        network: Network::None,
        capabilities: Vec::new(),
        labels: labels(MODULE, run),
        secret_files: None,
        timeout: None,
    }
}

/// Runs a spec, failing the test instead of hanging.
async fn run(
    engine: &DockerEngine,
    spec: &RunSpec,
    sink: &RecordingSink,
) -> anyhow::Result<Outcome> {
    tokio::time::timeout(PATIENCE, engine.run(spec, sink))
        .await
        .expect("the run finished in time")
}

/// The names of e's containers (any state) that belong to this run.
async fn managed_containers_of_run(engine: &DockerEngine, run: &str) -> Vec<String> {
    engine
        .list_managed_containers()
        .await
        .expect("list managed containers")
        .into_iter()
        .filter(|name| name.contains(run))
        .collect()
}

#[tokio::test]
async fn output_streams_stay_apart_and_the_exit_code_is_returned() {
    let engine = engine().await;
    let cleanup = Cleanup::new("streams");
    build_test_image(&engine, &cleanup.image).await;

    let sink = RecordingSink::new();
    let spec = spec(
        &cleanup.image,
        &cleanup.run,
        &[
            "sh",
            "-c",
            "echo out; echo err >&2; echo \"$E_TEST\"; exit 3",
        ],
    );
    let outcome = run(&engine, &spec, &sink).await.expect("the run");
    let left = managed_containers_of_run(&engine, &cleanup.run).await;

    assert_eq!(
        outcome,
        Outcome {
            exit_code: 3,
            stopped: None,
            download: outcome.download.clone(),
            seeded: Vec::new(),
            owned: Vec::new(),
        }
    );
    assert!(
        matches!(&outcome.download, Some(Ok(tar)) if !tar.is_empty()),
        "the shared directory comes back: {:?}",
        outcome.download.as_ref().map(|d| d.as_ref().map(Vec::len))
    );
    assert_eq!(sink.stdout(), "out\n1\n");
    assert_eq!(sink.stderr(), "err\n");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[tokio::test]
async fn a_bind_is_writable_and_files_belong_to_the_user() {
    let engine = engine().await;
    let cleanup = Cleanup::new("bind");
    build_test_image(&engine, &cleanup.image).await;
    let shared = tempfile::tempdir().expect("a shared directory");
    // The container runs as 12345, not as the owner of the temp dir.
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777))
        .expect("open the shared directory to the container's user");

    let mut spec = spec(
        &cleanup.image,
        &cleanup.run,
        &["sh", "-c", "echo written > /shared/state; id -u; id -g"],
    );
    spec.confinement.user = User {
        uid: 12345,
        gid: 12345,
    };
    spec.shared = SharedCopy::Bind {
        host: shared.path().to_owned(),
    };
    let sink = RecordingSink::new();
    let outcome = run(&engine, &spec, &sink).await.expect("the run");

    assert_eq!(outcome.exit_code, 0, "stderr: {}", sink.stderr());
    assert_eq!(outcome.download, None, "a bind-mode run downloads nothing");
    assert_eq!(sink.stdout(), "12345\n12345\n");
    let file = shared.path().join("state");
    let metadata = std::fs::metadata(&file).expect("the file the container wrote");
    assert_eq!((metadata.uid(), metadata.gid()), (12345, 12345));
    assert_eq!(
        std::fs::read_to_string(&file).expect("read it"),
        "written\n"
    );
}

#[tokio::test]
async fn a_bind_of_a_path_the_engine_cannot_see_fails_instead_of_creating_it() {
    let engine = engine().await;
    let cleanup = Cleanup::new("unseen");
    build_test_image(&engine, &cleanup.image).await;
    let missing = std::env::temp_dir().join(format!("e-unseen-{}", cleanup.run));

    let mut spec = spec(&cleanup.image, &cleanup.run, &["true"]);
    spec.shared = SharedCopy::Bind {
        host: missing.clone(),
    };
    let err = run(&engine, &spec, &RecordingSink::new())
        .await
        .expect_err("a missing bind source is an error");
    assert!(
        format!("{err:#}").contains("does not exist"),
        "the engine's reason is shown: {err:#}"
    );
    assert!(
        !missing.exists(),
        "the engine created `{}`",
        missing.display()
    );
    let left = managed_containers_of_run(&engine, &cleanup.run).await;
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[tokio::test]
async fn an_archive_copy_goes_in_owned_by_the_user_and_comes_back() {
    let engine = engine().await;
    let cleanup = Cleanup::new("archive");
    build_test_image(&engine, &cleanup.image).await;
    let mut tree = e::run::tree::Tree::default();
    tree.insert_file("state.yml", b"a: 1\n".to_vec(), 0o644);
    tree.insert_file("sub/config.yml", b"c: 2\n".to_vec(), 0o600);

    let mut spec = spec(
        &cleanup.image,
        &cleanup.run,
        &[
            "sh",
            "-c",
            "cat /shared/state.yml; stat -c '%u %a' /shared /shared/sub/config.yml; echo 'b: 3' >> /shared/state.yml; rm /shared/sub/config.yml; echo new > /shared/new.yml",
        ],
    );
    // The copy's volume is given to the module's user before the container is made.
    spec.confinement.user = User {
        uid: 12345,
        gid: 12345,
    };
    spec.shared = SharedCopy::Archive {
        upload: tree.to_tar((12345, 12345)).expect("a tar"),
        download_limit: 1 << 20,
    };
    let sink = RecordingSink::new();
    let outcome = run(&engine, &spec, &sink).await.expect("the run");

    assert_eq!(outcome.exit_code, 0, "stderr: {}", sink.stderr());
    assert_eq!(sink.stdout(), "a: 1\n12345 755\n12345 600\n");
    let tar = outcome.download.expect("a download").expect("readable");
    let back =
        e::run::tree::Tree::read_tar(tar.as_slice(), "shared", &e::run::tree::Limits::DEFAULT)
            .expect("a valid tree");
    assert_eq!(back.file("state.yml"), Some(&b"a: 1\nb: 3\n"[..]));
    assert_eq!(back.file("sub/config.yml"), None);
    assert_eq!(back.file("new.yml"), Some(&b"new\n"[..]));
    let left = managed_containers_of_run(&engine, &cleanup.run).await;
    assert!(left.is_empty(), "containers left behind: {left:?}");
    let volumes = std::process::Command::new("docker")
        .args(["volume", "ls", "-q", "--filter"])
        .arg(format!("label={LABEL_RUN}={}", cleanup.run))
        .output()
        .expect("docker volume ls");
    assert_eq!(
        String::from_utf8_lossy(&volumes.stdout).trim(),
        "",
        "the run's volume is removed"
    );
}

#[tokio::test]
async fn containers_are_confined() {
    let engine = engine().await;
    let docker = docker();
    let cleanup = Cleanup::new("confined");
    build_test_image(&engine, &cleanup.image).await;

    let mut spec = spec(&cleanup.image, &cleanup.run, &["sleep", "30"]);
    spec.confinement.user = User {
        uid: 12345,
        gid: 12345,
    };
    spec.timeout = Some(PATIENCE);
    let task = {
        let (engine, spec) = (engine.clone(), spec.clone());
        tokio::spawn(async move { engine.run(&spec, &RecordingSink::new()).await })
    };
    let id = running_container(&docker, &cleanup.run).await;
    let inspected: ContainerInspectResponse = docker
        .inspect_container(&id, None::<InspectContainerOptions>)
        .await
        .expect("inspect the running container");
    // End the run before asserting, so that a failed assert leaves nothing running.
    let kill = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    docker
        .kill_container(&id, Some(kill))
        .await
        .expect("kill the container");
    let outcome = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the run ended after the kill")
        .expect("the run task")
        .expect("the run");
    let left = containers_of_run(&docker, &cleanup.run).await;

    let host = inspected.host_config.expect("a host config");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.cap_add.unwrap_or_default(), Vec::<String>::new());
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.auto_remove, Some(false));
    assert_eq!(host.init, Some(true));
    assert_eq!(host.binds, None, "e mounts through `Mounts`, never `Binds`");
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
    assert_eq!(host.pids_limit, Some(512));
    assert!(
        host.nano_cpus
            .is_some_and(|nano| nano > 0 && nano <= 2_000_000_000),
        "{:?}",
        host.nano_cpus
    );
    let mounts = inspected.mounts.unwrap_or_default();
    assert!(
        mounts.iter().all(|mount| !mount
            .source
            .as_deref()
            .unwrap_or_default()
            .contains("docker.sock")),
        "the engine's socket is mounted: {mounts:?}"
    );
    let config = inspected.config.expect("a container config");
    assert_eq!(config.user.as_deref(), Some("12345:12345"));
    let labels = config.labels.unwrap_or_default();
    assert_eq!(labels.get(LABEL_MANAGED_BY).map(String::as_str), Some("e"));
    assert_eq!(labels.get(LABEL_MODULE).map(String::as_str), Some(MODULE));
    assert_eq!(labels.get(LABEL_RUN), Some(&cleanup.run));
    assert_eq!(
        inspected.name.as_deref(),
        Some(format!("/e-{MODULE}-{}", cleanup.run).as_str())
    );
    assert_eq!(
        outcome.exit_code, 137,
        "a killed container exits with 128 + 9"
    );
    assert_eq!(outcome.stopped, None);
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[tokio::test]
async fn a_timeout_stops_the_container_and_removes_it() {
    let engine = engine().await;
    let cleanup = Cleanup::new("timeout");
    build_test_image(&engine, &cleanup.image).await;

    let mut spec = spec(&cleanup.image, &cleanup.run, &["sleep", "60"]);
    spec.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let outcome = run(&engine, &spec, &RecordingSink::new())
        .await
        .expect("the run");
    let elapsed = started.elapsed();
    let left = managed_containers_of_run(&engine, &cleanup.run).await;

    assert_eq!(outcome.stopped, Some(Stopped::Timeout));
    // The init e runs as PID 1 passes SIGTERM on, so sleep ends at once (128 + 15).
    assert_eq!(outcome.exit_code, 143);
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[tokio::test]
async fn a_dropped_run_still_removes_its_container() {
    let engine = engine().await;
    let docker = docker();
    let cleanup = Cleanup::new("dropped");
    build_test_image(&engine, &cleanup.image).await;

    let spec = spec(&cleanup.image, &cleanup.run, &["sleep", "60"]);
    let task = {
        let (engine, spec) = (engine.clone(), spec.clone());
        tokio::spawn(async move { engine.run(&spec, &RecordingSink::new()).await })
    };
    running_container(&docker, &cleanup.run).await;
    task.abort();
    let started = Instant::now();
    let mut left = containers_of_run(&docker, &cleanup.run).await;
    while !left.is_empty() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = containers_of_run(&docker, &cleanup.run).await;
    }

    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[tokio::test]
async fn ctrl_c_stops_the_run() {
    let docker = docker();
    let engine = engine().await;
    let cleanup = Cleanup::new("interrupt");
    build_test_image(&engine, &cleanup.image).await;

    // SIGINT reaches the whole process, so it is sent to a child running `interrupted_child`,
    // where it cannot stop the runs of other tests.
    let child = tokio::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["interrupted_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_RUN, &cleanup.run)
        .env(CHILD_IMAGE, &cleanup.image)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the child test");
    running_container(&docker, &cleanup.run).await;
    let pid = child.id().expect("the child's pid");
    let pid = libc::pid_t::try_from(pid).expect("a pid that fits pid_t");
    // SAFETY: kill(2) with a valid signal has no memory-safety preconditions.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "send SIGINT to the child");
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("the child ended in time")
        .expect("the child's output");
    let left = containers_of_run(&docker, &cleanup.run).await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("outcome: Interrupted"), "stdout:\n{stdout}");
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// The half of [`ctrl_c_stops_the_run`] that receives the SIGINT; on its own it does nothing.
#[tokio::test]
#[ignore = "run by ctrl_c_stops_the_run in a child process"]
async fn interrupted_child() {
    let (Ok(run_label), Ok(image)) = (std::env::var(CHILD_RUN), std::env::var(CHILD_IMAGE)) else {
        return;
    };
    let engine = engine().await;
    let mut spec = spec(&image, &run_label, &["sleep", "60"]);
    spec.timeout = Some(PATIENCE);
    let outcome = run(&engine, &spec, &RecordingSink::new())
        .await
        .expect("the run");
    assert_eq!(outcome.stopped, Some(Stopped::Interrupted));
    println!("outcome: Interrupted");
}

#[tokio::test]
async fn a_missing_image_is_named_with_a_hint() {
    let engine = engine().await;
    let image = format!("{REPOSITORY}-missing:{}", unique("missing"));

    let err = engine
        .ensure_image(&image)
        .await
        .expect_err("the image is missing");
    let message = format!("{err:#}");
    assert!(
        message.starts_with(&format!(
            "image `{image}` is not in the engine and could not be pulled: "
        )),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "\nhint: build it with `e build DIR --tag {image}`, or import it with `e import FILE`"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn running_a_missing_image_is_named_with_a_hint() {
    let engine = engine().await;
    let run_label = unique("missing-run");
    let image = format!("{REPOSITORY}-missing:{}", unique("missing"));

    let spec = spec(&image, &run_label, &["true"]);
    let err = run(&engine, &spec, &RecordingSink::new())
        .await
        .expect_err("the image is missing");
    let message = format!("{err:#}");
    assert!(
        message.starts_with(&format!("image `{image}` is not in the engine: ")),
        "{message}"
    );
    assert!(
        message.contains("\nhint: build it with `e build DIR --tag "),
        "{message}"
    );
}

#[tokio::test]
async fn a_bad_dockerfile_fails_with_the_builders_message() {
    let engine = engine().await;
    let cleanup = Cleanup::new("bad-dockerfile");
    let context = tempfile::tempdir().expect("a build context");
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nBOGUS nothing\n",
    )
    .expect("write the Dockerfile");

    let err = engine
        .build(context.path(), &cleanup.image, &RecordingSink::new())
        .await
        .expect_err("the build fails");
    let message = format!("{err:#}");
    assert!(
        message.starts_with(&format!(
            "failed to build image `{}` from `{}`: ",
            cleanup.image,
            context.path().display()
        )),
        "{message}"
    );
    assert!(message.contains("unknown instruction: BOGUS"), "{message}");
}

#[tokio::test]
async fn a_failing_build_step_fails_with_the_builders_message() {
    let engine = engine().await;
    let cleanup = Cleanup::new("failing-step");
    let base = Cleanup::new("failing-step-base");
    build_test_image(&engine, &base.image).await;
    let context = tempfile::tempdir().expect("a build context");
    let dockerfile = format!("FROM {}\nRUN [\"/bin/busybox\", \"false\"]\n", base.image);
    std::fs::write(context.path().join("Dockerfile"), dockerfile).expect("write the Dockerfile");

    let sink = RecordingSink::new();
    let err = engine
        .build(context.path(), &cleanup.image, &sink)
        .await
        .expect_err("the build fails");
    let message = format!("{err:#}");
    assert!(
        message.starts_with(&format!("failed to build image `{}` from ", cleanup.image)),
        "{message}"
    );
    assert!(message.contains("returned a non-zero code: 1"), "{message}");
    assert!(
        sink.stdout().contains("Step 2/2"),
        "log:\n{}",
        sink.stdout()
    );
    assert!(
        sink.chunks()
            .iter()
            .all(|(stream, _)| *stream == Stream::Stdout)
    );
}

#[tokio::test]
async fn a_built_image_keeps_executable_bits() {
    let engine = engine().await;
    let cleanup = Cleanup::new("modes");
    let base = Cleanup::new("modes-base");
    build_test_image(&engine, &base.image).await;
    let context = tempfile::tempdir().expect("a build context");
    let tool = context.path().join("tool");
    std::fs::write(&tool, "#!/bin/busybox sh\necho tool ran\n").expect("write the tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    let dockerfile = format!("FROM {}\nCOPY tool /tool\n", base.image);
    std::fs::write(context.path().join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    let built = engine
        .build(context.path(), &cleanup.image, &RecordingSink::new())
        .await
        .expect("the build");

    let sink = RecordingSink::new();
    let spec = spec(
        &cleanup.image,
        &cleanup.run,
        &["sh", "-c", "stat -c %a /tool && /tool"],
    );
    let outcome = run(&engine, &spec, &sink).await.expect("the run");

    assert!(built.id.starts_with("sha256:"), "{}", built.id);
    assert_eq!(outcome.exit_code, 0, "stderr: {}", sink.stderr());
    assert_eq!(sink.stdout(), "750\ntool ran\n");
}
