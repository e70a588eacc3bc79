//! `e serve DIR`: the repository machine's server. Runs the image of `modules/repo/` (busybox
//! httpd) with the host's network and the store that `e import --store DIR` filled mounted at
//! `/srv`, in the foreground until Ctrl-C (or `--timeout`), so that the machines of the cluster
//! install Debian packages and fetch files from it with no mirror and no internet. The
//! container is removed when the command ends, however it ends.

use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::cli::ServeArgs;
use crate::output;
use crate::repository::model::User;
use crate::runtime::{
    Confinement, Engine, Network, OutputSink, RunSpec, SharedCopy, Stream, Transfer, labels,
};

/// Passes the server's log on to stderr as it comes.
struct ServerLog;

impl OutputSink for ServerLog {
    fn write(&self, _stream: Stream, bytes: &[u8]) {
        output::stream(Stream::Stderr, &String::from_utf8_lossy(bytes));
    }
}

/// Runs `e serve`.
pub async fn run(args: ServeArgs, engine: &dyn Engine) -> anyhow::Result<ExitCode> {
    check_listen(&args.listen)?;
    let store = args.store.canonicalize().with_context(|| {
        format!(
            "no store `{}`\nhint: fill one with `e import FILE --store DIR`",
            args.store.display()
        )
    })?;
    if !store.is_dir() {
        bail!("`{}` is not a directory", store.display());
    }
    if engine.transfer().await? != Transfer::Bind {
        bail!(
            "`e serve` needs an engine on this machine: it serves `{}` from here\nhint: run it on the repository machine with its local engine (unset `DOCKER_HOST`)",
            store.display()
        );
    }
    if engine.inspect_image(&args.image).await?.is_none() {
        bail!(
            "the server image `{}` is not in the engine\nhint: build it: `modules/build-contexts.sh && e build modules/repo --tag {}`, or carry it in an archive",
            args.image,
            args.image
        );
    }
    // The server only reads the store: nobody, with nothing, on a read-only root.
    let confinement = Confinement::defaults(User {
        uid: 65534,
        gid: 65534,
    });
    let spec = RunSpec {
        image: args.image.clone(),
        args: vec![args.listen.clone()],
        env: Vec::new(),
        workdir: None,
        shared: SharedCopy::Bind {
            host: store.clone(),
        },
        shared_path: "/srv".to_owned(),
        volumes: Vec::new(),
        confinement,
        network: Network::Host,
        capabilities: Vec::new(),
        labels: labels("e-repository", &format!("serve-{}", std::process::id())),
        secret_files: None,
        timeout: Some(
            args.timeout
                .unwrap_or(std::time::Duration::from_secs(365 * 24 * 3600)),
        ),
    };
    let port = args.listen.rsplit(':').next().unwrap_or_default();
    output::note(&format!(
        "e: serving `{}` on http://{}/ until Ctrl-C; Debian hosts use `deb [trusted=yes] http://THIS-MACHINE:{port}/debian/RELEASE ./`",
        store.display(),
        args.listen,
    ));
    let outcome = engine.run(&spec, &ServerLog).await?;
    match outcome.stopped {
        Some(_) => {
            output::note("e: the server is stopped");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "the server `{}` ended by itself (exit code {})\nhint: its messages are above; is the port free?",
            args.image,
            outcome.exit_code
        ),
    }
}

/// Checks `ADDRESS:PORT`, so that nothing else reaches the server's command line.
fn check_listen(listen: &str) -> anyhow::Result<()> {
    let ok = listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|address| address.port() != 0);
    if !ok {
        bail!("`--listen {listen}` is not `ADDRESS:PORT`\nhint: for instance `0.0.0.0:8080`");
    }
    Ok(())
}
