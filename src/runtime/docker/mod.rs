//! The Docker Engine implementation of [`Engine`], through bollard.
//!
//! This module (with its files) is the only one that imports bollard: what it returns is in
//! e's own types, and every bollard error is wrapped with context that names the image,
//! container or module, because bollard's messages are not written for users. Containers it
//! starts carry e's labels, drop all capabilities, cannot gain privileges, are confined as
//! their spec's [`Confinement`](super::Confinement) says (user, read-only root filesystem,
//! tmpfs, memory, CPU and process limits: `container_config.rs`), and are removed whatever
//! happens: success, failure, timeout, Ctrl-C, an error midway, or the caller dropping the
//! future. Images are `images.rs`, volumes `volumes.rs`, the network holder `holder.rs`,
//! registry credentials `credentials.rs`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, CreateImageInfo, HostConfig, ImageInspect, Mount, MountType,
    SystemVersion, VolumeCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, CreateContainerOptions,
    CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder, ImportImageOptionsBuilder,
    InspectContainerOptions, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListVolumesOptionsBuilder, PushImageOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RemoveVolumeOptions, StartContainerOptions,
    StopContainerOptionsBuilder, TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
    WaitContainerOptions,
};
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, StreamExt as _};

mod container_config;
mod credentials;
mod holder;
mod images;
mod volumes;

use super::connect;
use super::endpoint::{self, Choice, Endpoint, Transport};
use super::{
    Engine, ImageInfo, LABEL_MANAGED_BY, LABEL_MODULE, LABEL_RUN, LABEL_SHARED, LABEL_TRANSFER,
    Network, Outcome, OutputSink, Reaped, RunSpec, SharedCopy, Stopped, Stream, Transfer, Volume,
};
use crate::output;
use crate::repository::model::Memory;
pub(crate) use container_config::mounts;
use container_config::{container_config, container_name, engine_name};
pub(crate) use images::with_default_tag;
use volumes::run_volume;

/// How long `connect` waits for the engine to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The request timeout of calls whose answer may take as long as a container runs (wait,
/// attach, build, pull). bollard's default of two minutes would cut a long module short.
const STREAMING_TIMEOUT: Duration = Duration::from_secs(60 * 60 * 24 * 365);

/// How long a stopped container gets to exit after SIGTERM before it is killed.
const STOP_GRACE_SECONDS: i32 = 5;

/// The engine counts CPU limits in billionths of a CPU.
const NANO_CPUS_PER_CPU: i64 = 1_000_000_000;

/// How many numbered names (`e-<module>-<run>-2`, ...) to try when a name is taken.
const NAME_ATTEMPTS: usize = 5;

/// A Docker Engine reached through its API, at the endpoint the docker CLI would use.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    /// For short calls, with bollard's default request timeout.
    docker: Docker,
    /// The same connection, for calls that last as long as a container or a build.
    streaming: Docker,
    /// The address connected to, for messages.
    address: String,
    /// Which engine, how, and what chose it.
    endpoint: Endpoint,
    /// Whether containers get an init process; cleared, once, by an engine that has none.
    init: Arc<AtomicBool>,
    /// What the engine said of itself when e connected.
    version: EngineVersion,
    /// How many CPUs the engine has, asked once (see [`DockerEngine::cpus`]).
    cpus: std::sync::Arc<tokio::sync::OnceCell<Option<i64>>>,
    /// The network holders runs join (`holder.rs`).
    holders: Arc<holder::Holders>,
}

/// What the engine says of itself, for `e version`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineVersion {
    /// `Docker Engine`, `Podman Engine`, ...
    pub product: String,
    /// The engine's version.
    pub version: String,
    /// The API version the engine speaks.
    pub api_version: String,
    /// The oldest API version the engine accepts.
    pub min_api_version: String,
    /// The engine's operating system (`linux`).
    pub os: String,
    /// The engine's architecture (`amd64`).
    pub arch: String,
    /// The kernel the engine runs on.
    pub kernel: String,
}

/// The newest Engine API version this e speaks.
pub fn client_api_version() -> String {
    API_DEFAULT_VERSION.to_string()
}

/// Connects to the engine the docker CLI would use (`DOCKER_HOST`, `DOCKER_CONTEXT`, the
/// current context of `config.json`, else the default socket) and checks that it answers, so
/// that an absent engine is reported here and not in the middle of a plan.
pub async fn connect() -> anyhow::Result<DockerEngine> {
    connect_to(endpoint::from_environment()?).await
}

/// Connects to the engine of `endpoint` (`unix://`, `tcp://` in plain text or TLS, `ssh://`)
/// and pings it.
pub async fn connect_to(endpoint: Endpoint) -> anyhow::Result<DockerEngine> {
    for warning in &endpoint.warnings {
        output::warn(warning);
    }
    let address = endpoint.host.clone();
    let fail = |cause: &str| unreachable_error(&endpoint, cause);
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect::connection(&endpoint))
        .await
        .map_err(|_| fail(&format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|err| fail(&format!("{err:#}")))?;
    let first = connection
        .docker(API_DEFAULT_VERSION)
        .map_err(|err| fail(&format!("{err:#}")))?;
    // The engine's version is the proof it is there, and says which API version to speak:
    // one call, as `negotiate_version` would make, whose answer `e version` shows.
    let answered = tokio::time::timeout(CONNECT_TIMEOUT, first.version()).await;
    let answer = match answered {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            let mut cause = engine_message(&err);
            if let Some(master) = &connection.ssh {
                // The session's stderr says why (`docker: command not found`); give it time
                // to arrive after the session closed.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let said = master.diagnostics();
                if !said.is_empty() {
                    cause = format!("{cause}; the remote host said: {said}");
                }
            }
            return Err(fail(&cause));
        }
        Err(_) => {
            return Err(fail(&format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
    };
    let negotiated = negotiated_version(answer.api_version.as_deref());
    let docker = connection
        .docker(&negotiated)
        .map_err(|err| fail(&format!("{err:#}")))?;
    let streaming = docker.clone().with_timeout(STREAMING_TIMEOUT);
    Ok(DockerEngine {
        docker,
        streaming,
        address,
        endpoint,
        init: Arc::new(AtomicBool::new(true)),
        version: engine_version(answer),
        cpus: Default::default(),
        holders: Default::default(),
    })
}

/// The API version to speak: the engine's when it is older than bollard's, as bollard's
/// `negotiate_version` decides.
fn negotiated_version(engine: Option<&str>) -> ClientVersion {
    let parsed = engine.and_then(|version| {
        let (major, minor) = version.split_once('.')?;
        Some(ClientVersion {
            major_version: major.parse().ok()?,
            minor_version: minor.parse().ok()?,
        })
    });
    match parsed {
        Some(engine) if engine < *API_DEFAULT_VERSION => engine,
        _ => *API_DEFAULT_VERSION,
    }
}

/// Our view of the engine's `/version` answer.
fn engine_version(answer: SystemVersion) -> EngineVersion {
    let components = answer.components.unwrap_or_default();
    let product = if components.iter().any(|c| c.name.contains("Podman")) {
        "Podman Engine".to_owned()
    } else {
        answer
            .platform
            .map(|platform| platform.name)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "Docker Engine".to_owned())
    };
    EngineVersion {
        product,
        version: answer.version.unwrap_or_default(),
        api_version: answer.api_version.unwrap_or_default(),
        min_api_version: answer.min_api_version.unwrap_or_default(),
        os: answer.os.unwrap_or_default(),
        arch: answer.arch.unwrap_or_default(),
        kernel: answer.kernel_version.unwrap_or_default(),
    }
}

/// The error for an engine that cannot be reached, with what to do about it.
fn unreachable_error(endpoint: &Endpoint, cause: &str) -> anyhow::Error {
    let tls = endpoint.transport() == Transport::Tls;
    let hint = if cause.contains("hint:") {
        // The cause already says what to do.
        String::new()
    } else if cause.contains("ermission denied") {
        "\nhint: add your user to the `docker` group (then log in again), or run e as a user who can use the engine".to_owned()
    } else if cause.contains("not supported") {
        "\nhint: e reaches engines at `unix://`, `tcp://` and `ssh://` addresses; set DOCKER_HOST or the context to one of those".to_owned()
    } else if cause.contains("HTTP request to an HTTPS server") {
        "\nhint: the engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the directory of `ca.pem`, `cert.pem` and `key.pem`".to_owned()
    } else if tls && !cause.contains("certificate") {
        "\nhint: check that the engine listens there with TLS (`dockerd --tlsverify`), or start it"
            .to_owned()
    } else if tls {
        "\nhint: the engine's certificate must be signed by `ca.pem`, name the host you connect to, and accept your client certificate".to_owned()
    } else if endpoint.transport() == Transport::Ssh {
        "\nhint: check that `ssh` reaches the host without a prompt and that `docker` runs there (`ssh HOST docker version`)".to_owned()
    } else if endpoint.chosen_by == Choice::Default {
        "\nhint: start an engine (`sudo systemctl start docker`, or run `dockerd`), or set DOCKER_HOST to one that runs".to_owned()
    } else {
        format!(
            "\nhint: start that engine, or choose another (it was chosen by {})",
            endpoint.chosen_by
        )
    };
    anyhow!(
        "cannot reach the Docker engine at {}: {cause}{hint}",
        endpoint.describe()
    )
}

/// The error for an image that is not in the engine; `fake.rs` uses the same words.
pub(crate) fn missing_image_error(image: &str, cause: &str) -> anyhow::Error {
    anyhow!(
        "image `{image}` is not in the engine and could not be pulled: {cause}\n\
         hint: build it with `e build DIR --tag {image}`, or import it with `e import FILE`"
    )
}

/// The error for running an image that is not in the engine; `fake.rs` uses the same words.
pub(crate) fn absent_image_error(image: &str, cause: &str) -> anyhow::Error {
    anyhow!(
        "image `{image}` is not in the engine: {cause}\n\
         hint: build it with `e build DIR --tag {image}`, or import it with `e import FILE`"
    )
}

/// The error for building from a directory without a Dockerfile; `fake.rs` uses it too.
pub(crate) fn no_dockerfile_error(context: &Path, tag: &str) -> anyhow::Error {
    anyhow!(
        "cannot build image `{tag}`: `{}` has no Dockerfile\n\
         hint: give the directory of a module, the one that holds its Dockerfile",
        context.display()
    )
}

/// What the engine said, without bollard's wording around it.
pub(crate) fn engine_message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } if !message.is_empty() => {
            message.trim().to_owned()
        }
        BollardError::DockerResponseServerError { status_code, .. } => {
            format!("the engine answered with HTTP status {status_code}")
        }
        BollardError::DockerStreamError { error } => error.trim().to_owned(),
        BollardError::RequestTimeoutError => "the engine did not answer in time".to_owned(),
        BollardError::SocketNotFoundError(path) => format!("there is no socket at `{path}`"),
        BollardError::UnsupportedURISchemeError { uri } => {
            format!("the scheme of `{uri}` is not supported")
        }
        other => {
            // bollard's own words wrap the cause (`connection refused`, `permission denied`),
            // which is at the end of the source chain.
            let mut innermost: &dyn std::error::Error = other;
            while let Some(cause) = innermost.source() {
                innermost = cause;
            }
            innermost.to_string()
        }
    }
}

/// Turns a bollard error into an anyhow error with context that names the object.
trait EngineContext<T> {
    /// Replaces bollard's message with the engine's, under `what`.
    fn engine_context(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T> EngineContext<T> for Result<T, BollardError> {
    fn engine_context(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|err| anyhow!(engine_message(&err)).context(what()))
    }
}

/// Whether the engine answered "no such ...".
fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Names the module and image of a run, for messages.
fn describe(spec: &RunSpec) -> String {
    match spec.labels.get(LABEL_MODULE) {
        Some(module) => format!("module `{module}` (image `{}`)", spec.image),
        None => format!("image `{}`", spec.image),
    }
}

impl DockerEngine {
    /// The address of the engine (`unix:///var/run/docker.sock`, `DOCKER_HOST`, or the
    /// context's host).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Which engine this is, how it is reached, and what chose it.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The Engine API version e speaks with this engine: the engine's, when older than e's.
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// What the engine said of itself when e connected.
    pub fn version(&self) -> &EngineVersion {
        &self.version
    }

    /// Whether containers still get an init process.
    fn with_init(&self) -> bool {
        self.init.load(Ordering::Relaxed)
    }

    /// Creates the container, with an init process unless the engine has none: an engine that
    /// says so (Podman without `catatonit`) gets the container without one, with a warning,
    /// once per command.
    async fn create_confined(&self, spec: &RunSpec, cpus: Option<i64>) -> anyhow::Result<String> {
        let with_init = self.with_init();
        let shared = spec.labels.get(LABEL_SHARED).map(String::as_str);
        let mut network = match spec.network {
            Network::None => self.none_network(shared).await,
            Network::Host => "host".to_owned(),
        };
        let mut created = self
            .create_container(spec, container_config(spec, with_init, cpus, &network)?)
            .await;
        if created.is_err() && network.starts_with("container:") {
            // The holder went (removed by hand): this run gets a namespace of its own.
            self.forget_holder(shared).await;
            network = "none".to_owned();
            created = self
                .create_container(spec, container_config(spec, with_init, cpus, &network)?)
                .await;
        }
        let config = |init| container_config(spec, init, cpus, &network);
        match created {
            Err(err) if with_init && lacks_init(&err) => {
                if self.init.swap(false, Ordering::Relaxed) {
                    output::warn(&format!(
                        "the engine at `{}` has no init process for containers ({}): modules run without one, so a module that ignores SIGTERM takes {STOP_GRACE_SECONDS} s to stop\n\
                         hint: install `catatonit` on the engine's host (`apt-get install catatonit`)",
                        self.address,
                        last_cause(&err)
                    ));
                }
                self.create_container(spec, config(false)?).await
            }
            created => created,
        }
    }

    /// The names of all containers e created (label `e.managed-by=e`) in any state; the
    /// names are `e-<module>-<run>` for containers started with e's labels.
    pub async fn list_managed_containers(&self) -> anyhow::Result<Vec<String>> {
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED_BY}=e")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .engine_context(|| "failed to list the containers e created".to_owned())?;
        Ok(containers
            .into_iter()
            .filter_map(|container| {
                let name = container
                    .names
                    .and_then(|names| names.into_iter().next())
                    .map(|name| name.trim_start_matches('/').to_owned());
                name.or(container.id)
            })
            .collect())
    }

    /// [`Engine::run`]: for an archive-mode run, its copy goes into a volume of its own first,
    /// given to the module's user (see [`DockerEngine::prepare_volume`]), and the volume goes
    /// when the run ends.
    async fn run_container(
        &self,
        spec: &RunSpec,
        sink: &dyn OutputSink,
    ) -> anyhow::Result<Outcome> {
        let Some(volume) = run_volume(spec) else {
            return self.run_in_container(spec, sink).await;
        };
        let result = match self.create_volume(&volume).await {
            Ok(_) => match self.prepare_volume(spec, &volume, true).await {
                Ok(()) => self.run_in_container(spec, sink).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        if let Err(err) = self.remove_volume(&volume.name).await {
            output::warn(&format!(
                "{err:#}\nhint: remove it with `docker volume rm {}`",
                volume.name
            ));
        }
        result
    }

    /// Creates, runs and removes the container on every path.
    async fn run_in_container(
        &self,
        spec: &RunSpec,
        sink: &dyn OutputSink,
    ) -> anyhow::Result<Outcome> {
        // Listen for Ctrl-C from the start: a listener only sees signals sent after its first
        // poll, so one created at the select below would miss a Ctrl-C during creation.
        let mut interrupt: Pin<Box<dyn Future<Output = ()> + Send>> =
            Box::pin(crate::interrupt::requested());
        let interrupted_early = matches!(futures_util::poll!(interrupt.as_mut()), Poll::Ready(()));
        if interrupted_early {
            interrupt = Box::pin(std::future::ready(()));
        }

        // Every engine has a CPU: only a larger limit needs to know how many it has.
        let cpus = if spec.confinement.nano_cpus > NANO_CPUS_PER_CPU {
            self.cpus().await
        } else {
            None
        };
        let (mut seeded, mut owned) = (Vec::new(), Vec::new());
        for volume in &spec.volumes {
            let new = self.create_volume(volume).await?;
            if new || volume.reown {
                self.prepare_volume(spec, volume, new).await?;
                owned.push(volume.name.clone());
            }
            if new && volume.seed.is_some() {
                seeded.push(volume.name.clone());
            }
        }
        let id = self.create_confined(spec, cpus).await?;
        let mut guard = ContainerGuard {
            docker: self.docker.clone(),
            id: Some(id.clone()),
        };
        let mut result = self.drive(&id, spec, sink, interrupt).await;
        if let Ok(outcome) = &mut result {
            outcome.seeded = seeded;
            outcome.owned = owned;
        }
        if let (Ok(outcome), SharedCopy::Archive { download_limit, .. }) =
            (&mut result, &spec.shared)
        {
            outcome.download = Some(
                self.download_copy(&id, &spec.shared_path, *download_limit)
                    .await,
            );
        }
        if let Ok(Outcome {
            exit_code: code @ 1..,
            stopped: None,
            ..
        }) = &result
        {
            self.explain_failure(&id, spec, *code).await;
        }
        let removal = guard.remove().await;
        match (result, removal) {
            (result, Ok(())) => result,
            (result, Err(err)) => {
                // The run itself is what the caller must know about; a leftover container is
                // found again by its labels.
                output::warn(&format!(
                    "{err:#}\nhint: remove it with `docker rm -f {id}`"
                ));
                result
            }
        }
    }

    /// How many CPUs the engine has (its `/info`), asked once; `None` when it does not say.
    async fn cpus(&self) -> Option<i64> {
        *self
            .cpus
            .get_or_init(|| async {
                let info = self.docker.info().await.ok()?;
                info.ncpu.filter(|cpus| *cpus > 0)
            })
            .await
    }

    /// Says so when a failed container ran out of memory: the engine killed one of its
    /// processes (SIGKILL, exit 137 if it was the module's own), which says nothing by itself,
    /// and the user needs to know which limit to raise. The engine's flag for it is not always
    /// set (cgroup v2 engines miss the event at times), so a SIGKILL that e did not send (exit
    /// 137) is said to be the likely cause.
    async fn explain_failure(&self, id: &str, spec: &RunSpec, exit_code: i64) {
        let inspected = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await;
        let oom = inspected
            .ok()
            .and_then(|container| container.state?.oom_killed)
            .unwrap_or(false);
        let how = if oom {
            ""
        } else if exit_code == 137 {
            "was killed by SIGKILL (exit 137), which e did not send: it most likely "
        } else {
            return;
        };
        output::note(&format!(
            "e: {} {how}ran out of memory: the engine killed a process of it at its limit of {}\nhint: raise `limits.memory` of its version in the repository (`e info` shows the limits)",
            describe(spec),
            Memory::from_bytes(spec.confinement.memory_bytes)
        ));
    }

    /// Creates the container, named `e-<module>-<run>` when the labels allow it.
    async fn create_container(
        &self,
        spec: &RunSpec,
        config: ContainerCreateBody,
    ) -> anyhow::Result<String> {
        let base = container_name(&spec.labels);
        for attempt in 1..=NAME_ATTEMPTS {
            let name = base.as_ref().map(|base| match attempt {
                1 => base.clone(),
                n => format!("{base}-{n}"),
            });
            let options = CreateContainerOptions {
                name,
                ..Default::default()
            };
            match self
                .docker
                .create_container(Some(options), config.clone())
                .await
            {
                Ok(created) => return Ok(created.id),
                Err(BollardError::DockerResponseServerError {
                    status_code: 409, ..
                }) if base.is_some() && attempt < NAME_ATTEMPTS => {}
                Err(err) if is_not_found(&err) => {
                    return Err(absent_image_error(&spec.image, &engine_message(&err)));
                }
                Err(err) => {
                    return Err(err).engine_context(|| {
                        format!("failed to create a container for {}", describe(spec))
                    });
                }
            }
        }
        bail!(
            "failed to create a container for {}: the names `{}` to `-{NAME_ATTEMPTS}` are taken\n\
             hint: `docker ps -a --filter label={LABEL_MANAGED_BY}=e` lists the containers e left",
            describe(spec),
            base.unwrap_or_default()
        )
    }

    /// Attaches, starts, streams output, and waits for the container to exit, stopping it on
    /// timeout or Ctrl-C.
    async fn drive(
        &self,
        id: &str,
        spec: &RunSpec,
        sink: &dyn OutputSink,
        mut interrupt: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> anyhow::Result<Outcome> {
        // Attach before starting, so that not a byte of output is missed. Not `logs`: the
        // engine would replay what the container wrote during the attach and stream it again.
        let options = AttachContainerOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = self
            .streaming
            .attach_container(id, Some(options))
            .await
            .engine_context(|| {
                format!("failed to attach to the container of {}", describe(spec))
            })?;
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .engine_context(|| format!("failed to start the container of {}", describe(spec)))?;

        let mut output = attached.output;
        let pump = async {
            while let Some(chunk) = output.next().await {
                let chunk = chunk.engine_context(|| {
                    format!("lost the output of the container of {}", describe(spec))
                })?;
                match chunk {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        sink.write(Stream::Stdout, &message);
                    }
                    LogOutput::StdErr { message } => sink.write(Stream::Stderr, &message),
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<(), anyhow::Error>(())
        };
        // The exit code alone is not the end: the output is drained too.
        let exited = async {
            let (code, pumped) = tokio::join!(self.wait(id, spec), pump);
            pumped?;
            code
        };
        tokio::pin!(exited);
        let deadline = async {
            match spec.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };

        let stopped = tokio::select! {
            result = &mut exited => {
                return result.map(|exit_code| Outcome {
                    exit_code,
                    stopped: None,
                    download: None,
                    seeded: Vec::new(),
                    owned: Vec::new(),
                });
            }
            () = deadline => Stopped::Timeout,
            () = &mut interrupt => Stopped::Interrupted,
        };
        let (_, exit_code) = tokio::try_join!(self.stop(id, spec), &mut exited)?;
        Ok(Outcome {
            exit_code,
            stopped: Some(stopped),
            download: None,
            seeded: Vec::new(),
            owned: Vec::new(),
        })
    }

    /// Waits for the container to exit and returns its exit code.
    async fn wait(&self, id: &str, spec: &RunSpec) -> anyhow::Result<i64> {
        let mut answers = self
            .streaming
            .wait_container(id, None::<WaitContainerOptions>);
        match answers.next().await {
            Some(Ok(answer)) => Ok(answer.status_code),
            // bollard turns a non-zero exit code into an error; it is an answer here.
            Some(Err(BollardError::DockerContainerWaitError { error, code }))
                if error.is_empty() =>
            {
                Ok(code)
            }
            Some(Err(err)) => Err(err).engine_context(|| {
                format!("failed to wait for the container of {}", describe(spec))
            }),
            None => bail!(
                "the engine did not say how the container of {} exited",
                describe(spec)
            ),
        }
    }

    /// Stops the container: SIGTERM, then SIGKILL after the grace period.
    async fn stop(&self, id: &str, spec: &RunSpec) -> anyhow::Result<()> {
        let options = StopContainerOptionsBuilder::new()
            .t(STOP_GRACE_SECONDS)
            .build();
        let stopped = self.docker.stop_container(id, Some(options)).await;
        if stopped.is_ok() {
            return Ok(());
        }
        // The engine could not stop it gracefully; kill it outright.
        let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        self.docker
            .kill_container(id, Some(options))
            .await
            .engine_context(|| format!("failed to stop the container of {}", describe(spec)))
    }
}

impl Engine for DockerEngine {
    fn transfer(&self) -> BoxFuture<'_, anyhow::Result<Transfer>> {
        // Only a local socket promises that the engine sees this machine's files.
        let transfer = self.endpoint.default_transfer();
        async move { Ok(transfer) }.boxed()
    }

    fn reap<'a>(&'a self, shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Reaped>>> {
        self.reap_containers(shared_id).boxed()
    }

    fn remove_volumes<'a>(&'a self, shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<usize>> {
        self.remove_shared_volumes(shared_id).boxed()
    }

    fn ensure_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, anyhow::Result<ImageInfo>> {
        self.ensure_present(image).boxed()
    }

    fn run<'a>(
        &'a self,
        spec: &'a RunSpec,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<Outcome>> {
        self.run_container(spec, sink).boxed()
    }

    fn build<'a>(
        &'a self,
        context: &'a Path,
        tag: &'a str,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<ImageInfo>> {
        self.build_image(context, tag, sink).boxed()
    }

    fn save_images<'a>(
        &'a self,
        images: &'a [String],
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, anyhow::Result<u64>> {
        self.save(images, out).boxed()
    }

    fn load_images(
        &self,
        source: Box<dyn Read + Send>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        self.load(source).boxed()
    }

    fn push_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<String>> {
        self.push(image, target).boxed()
    }

    fn tag_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        self.tag(image, target).boxed()
    }

    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<ImageInfo>>> {
        self.inspect(image).boxed()
    }
}

/// The Docker engine, connected on first use: a command that stops before it needs the
/// engine (a bad repository, an unmet requirement) says so whether or not an engine runs.
#[derive(Default)]
pub struct LazyDocker {
    engine: tokio::sync::OnceCell<DockerEngine>,
}

impl LazyDocker {
    async fn get(&self) -> anyhow::Result<&DockerEngine> {
        self.engine.get_or_try_init(connect).await
    }
}

impl Engine for LazyDocker {
    fn transfer(&self) -> BoxFuture<'_, anyhow::Result<Transfer>> {
        async move { self.get().await?.transfer().await }.boxed()
    }

    fn reap<'a>(&'a self, shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<Reaped>>> {
        async move { self.get().await?.reap(shared_id).await }.boxed()
    }

    fn remove_volumes<'a>(&'a self, shared_id: &'a str) -> BoxFuture<'a, anyhow::Result<usize>> {
        async move { self.get().await?.remove_volumes(shared_id).await }.boxed()
    }

    fn ensure_image<'a>(&'a self, image: &'a str) -> BoxFuture<'a, anyhow::Result<ImageInfo>> {
        async move { self.get().await?.ensure_image(image).await }.boxed()
    }

    fn run<'a>(
        &'a self,
        spec: &'a RunSpec,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<Outcome>> {
        async move { self.get().await?.run(spec, sink).await }.boxed()
    }

    fn build<'a>(
        &'a self,
        context: &'a Path,
        tag: &'a str,
        sink: &'a dyn OutputSink,
    ) -> BoxFuture<'a, anyhow::Result<ImageInfo>> {
        async move { self.get().await?.build(context, tag, sink).await }.boxed()
    }

    fn save_images<'a>(
        &'a self,
        images: &'a [String],
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, anyhow::Result<u64>> {
        async move { self.get().await?.save_images(images, out).await }.boxed()
    }

    fn load_images(
        &self,
        source: Box<dyn Read + Send>,
    ) -> BoxFuture<'_, anyhow::Result<Vec<String>>> {
        async move { self.get().await?.load_images(source).await }.boxed()
    }

    fn push_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<String>> {
        async move { self.get().await?.push_image(image, target).await }.boxed()
    }

    fn tag_image<'a>(
        &'a self,
        image: &'a str,
        target: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        async move { self.get().await?.tag_image(image, target).await }.boxed()
    }

    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<ImageInfo>>> {
        async move { self.get().await?.inspect_image(image).await }.boxed()
    }
}

/// Removes a container when dropped, unless [`ContainerGuard::remove`] already did: this is
/// what removes it when the caller drops the run future or a sink panics.
struct ContainerGuard {
    docker: Docker,
    id: Option<String>,
}

impl ContainerGuard {
    /// Removes the container (killing it if it runs) and its anonymous volumes.
    async fn remove(&mut self) -> anyhow::Result<()> {
        let Some(id) = self.id.clone() else {
            return Ok(());
        };
        // The id is forgotten only once removed, so that a drop during removal tries again.
        let removed = remove_container(&self.docker, &id).await;
        self.id = None;
        removed
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        // Drop cannot await: hand the removal to the runtime, if there still is one.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let docker = self.docker.clone();
            runtime.spawn(async move {
                if let Err(err) = remove_container(&docker, &id).await {
                    output::warn(&format!("{err:#}"));
                }
            });
        }
    }
}

/// Removes a container by force; one that is already gone is not an error.
async fn remove_container(docker: &Docker, id: &str) -> anyhow::Result<()> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Err(err) if is_not_found(&err) => Ok(()),
        result => result.engine_context(|| format!("failed to remove container `{id}`")),
    }
}

/// Whether the engine refused a container because it has no init binary to give it (Podman
/// without `catatonit`: "container-init binary not found on the host").
fn lacks_init(err: &anyhow::Error) -> bool {
    let message = format!("{err:#}");
    message.contains("init binary not found")
}

/// The innermost message of an error chain.
fn last_cause(err: &anyhow::Error) -> String {
    err.chain()
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endpoint of the `default` context at `host`, chosen by `chosen_by`.
    fn endpoint(host: &str, chosen_by: Choice) -> Endpoint {
        Endpoint {
            context: endpoint::DEFAULT_CONTEXT.to_owned(),
            chosen_by,
            host: host.to_owned(),
            tls: None,
            warnings: Vec::new(),
        }
    }

    #[tokio::test]
    async fn an_absent_engine_is_reported_with_a_hint() {
        let err = connect_to(endpoint("unix:///nonexistent/e-test.sock", Choice::Default))
            .await
            .expect_err("no engine there");
        assert_eq!(
            format!("{err:#}"),
            "cannot reach the Docker engine at `unix:///nonexistent/e-test.sock` \
             (context `default`): \
             there is no socket at `/nonexistent/e-test.sock`\n\
             hint: start an engine (`sudo systemctl start docker`, or run `dockerd`), \
             or set DOCKER_HOST to one that runs"
        );
        let err = connect_to(endpoint("fd://3", Choice::DockerHost))
            .await
            .expect_err("fd is not supported");
        assert!(
            format!("{err:#}").ends_with("set DOCKER_HOST or the context to one of those"),
            "{err:#}"
        );
    }

    #[test]
    fn the_api_version_is_the_older_of_the_two() {
        let version = |v: ClientVersion| (v.major_version, v.minor_version);
        assert_eq!(version(negotiated_version(Some("1.41"))), (1, 41));
        let bollard = version(*API_DEFAULT_VERSION);
        assert_eq!(version(negotiated_version(Some("1.99"))), bollard);
        assert_eq!(version(negotiated_version(Some("not a version"))), bollard);
        assert_eq!(version(negotiated_version(None)), bollard);
    }

    #[test]
    fn an_engine_without_init_is_recognised() {
        let podman = anyhow!(
            "container create: container-init binary not found on the host: \
             stat /usr/libexec/podman/catatonit: no such file or directory"
        )
        .context("failed to create a container for module `azi`");
        assert!(lacks_init(&podman));
        assert_eq!(
            last_cause(&podman),
            "container create: container-init binary not found on the host: \
             stat /usr/libexec/podman/catatonit: no such file or directory"
        );
        assert!(!lacks_init(&anyhow!("no such image")));
    }
}
