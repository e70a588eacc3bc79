//! The API clients for an [`Endpoint`]: bollard `Docker`s over a unix socket, plain TCP, TCP
//! in TLS, or ssh. `docker/` asks the engine its version with one and negotiates; this
//! file only builds them.
//!
//! Every client of one [`Connection`] shares one hyper client, whose pool keeps an idle
//! connection for the next call: a method makes about eight API calls, and bollard's own unix
//! and TCP clients open a connection for each (they turn hyper's pool off). A connection the
//! engine closed (an idle timeout, a restart) is noticed by its task and left out of the pool,
//! and a request it had no time to send is sent again on a new one (hyper's own retry of a
//! request a reused connection never started).
//!
//! TLS is done here with rustls rather than by bollard's `ssl` feature, so that it trusts
//! exactly what the docker CLI trusts: the endpoint's `ca.pem` alone (bollard adds the system's
//! roots), with the client certificate and key, and keeps connections alive between calls
//! (bollard opens a new TLS connection for every call). ssh goes through [`super::ssh`]: one
//! connection for the whole command.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use anyhow::{Context as _, anyhow, bail};
use bollard::{BollardRequest, ClientVersion, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::UnixStream;

use super::endpoint::{Endpoint, Tls, Transport};
use super::ssh;

/// bollard's request timeout for short calls, in seconds (its own default).
const REQUEST_TIMEOUT_SECONDS: u64 = 120;

/// Makes API clients for one endpoint, speaking a given API version, all over one transport.
type Build = Box<dyn Fn(&ClientVersion) -> Result<Docker, bollard::errors::Error> + Send + Sync>;

/// The transport to an endpoint, and the ssh connection under it if there is one.
pub struct Connection {
    build: Build,
    /// The ssh connection the clients go through, for what it said when something fails.
    pub ssh: Option<Arc<ssh::Master>>,
}

impl Connection {
    /// A client that speaks this API version (bollard's own, before negotiation).
    pub fn docker(&self, version: &ClientVersion) -> anyhow::Result<Docker> {
        (self.build)(version).map_err(|err| anyhow!(super::docker::engine_message(&err)))
    }
}

/// Builds the transport to an endpoint; ssh connects and authenticates here.
pub async fn connection(endpoint: &Endpoint) -> anyhow::Result<Connection> {
    let host = endpoint.host.clone();
    let build: Build = match endpoint.transport() {
        Transport::Unix => {
            let path = host.strip_prefix("unix://").unwrap_or(&host);
            if !Path::new(path).exists() {
                bail!("there is no socket at `{path}`");
            }
            let connector = UnixConnector {
                path: Arc::from(Path::new(path)),
            };
            pooled(connector, "http://docker".to_owned())
        }
        Transport::Tcp => {
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            pooled(http, host.replacen("tcp://", "http://", 1))
        }
        Transport::Tls => {
            let tls = endpoint.tls.as_ref().context("a TLS endpoint has TLS")?;
            pooled(tls_connector(tls)?, host.replacen("tcp://", "https://", 1))
        }
        Transport::Ssh => {
            let target = ssh::Target::parse(&host)?;
            let master = Arc::new(ssh::Master::start(target).await?);
            let connector = ssh::Connector::new(Arc::clone(&master));
            return Ok(Connection {
                build: pooled(connector, "http://docker".to_owned()),
                ssh: Some(master),
            });
        }
        Transport::Unsupported => bail!("the scheme of `{host}` is not supported"),
    };
    Ok(Connection { build, ssh: None })
}

/// Clients whose requests all go through one hyper client over `connector`, whose pool keeps
/// idle connections for the next call, at `address` (`http://docker` where the connector
/// decides where to connect).
fn pooled<C>(connector: C, address: String) -> Build
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Client::builder(TokioExecutor::new()).build(connector);
    Box::new(move |version| {
        let client = client.clone();
        Docker::connect_with_custom_transport(
            move |request: BollardRequest| {
                let client = client.clone();
                async move {
                    client
                        .request(request)
                        .await
                        .map_err(bollard::errors::Error::from)
                }
            },
            Some(address.as_str()),
            REQUEST_TIMEOUT_SECONDS,
            version,
        )
    })
}

/// Connects to the engine's unix socket, whatever the request's address.
#[derive(Clone)]
struct UnixConnector {
    path: Arc<Path>,
}

impl tower_service::Service<hyper::Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let path = Arc::clone(&self.path);
        Box::pin(async move { Ok(TokioIo::new(UnixStream::connect(&*path).await?)) })
    }
}

/// The error for a certificate or key file that cannot be read.
fn pem_error(path: &Path, err: rustls_pki_types::pem::Error) -> anyhow::Error {
    anyhow!(
        "failed to read `{}`: {err}\nhint: it must hold PEM data",
        path.display()
    )
}

/// A TLS connector that trusts only the endpoint's CA and presents its client certificate.
fn tls_connector(tls: &Tls) -> anyhow::Result<hyper_rustls::HttpsConnector<HttpConnector>> {
    if !tls.verify {
        bail!(
            "the endpoint asks for TLS without verifying the engine's certificate, which e does not do\n\
             hint: set DOCKER_TLS_VERIFY=1 (not only DOCKER_TLS), or drop `SkipTLSVerify` from the context with `docker context update NAME --docker host=...,skip-tls-verify=false`"
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in
        CertificateDer::pem_file_iter(&tls.ca).map_err(|err| pem_error(&tls.ca, err))?
    {
        roots
            .add(certificate.map_err(|err| pem_error(&tls.ca, err))?)
            .with_context(|| format!("`{}` holds an invalid CA certificate", tls.ca.display()))?;
    }
    if roots.is_empty() {
        bail!("`{}` holds no certificate", tls.ca.display());
    }
    let chain = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|err| pem_error(&tls.cert, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(&tls.cert, err))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|err| pem_error(&tls.key, err))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls has no protocol version in common with its provider")?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .with_context(|| {
            format!(
                "`{}` and `{}` are not a certificate and its key",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::UnixListener;

    use super::*;
    use crate::runtime::endpoint::{Choice, DEFAULT_CONTEXT};

    /// What the fake engine does with a connection after answering on it.
    #[derive(Clone, Copy)]
    enum After {
        /// Wait for the next request, as the engine does.
        KeepAlive,
        /// Close it, as an engine that stops or times idle connections out does.
        Close,
    }

    /// An engine on a unix socket that answers every request with its `/version`, counting
    /// the connections it accepts.
    struct FakeEngine {
        accepted: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl FakeEngine {
        fn start(path: &Path, after: After) -> FakeEngine {
            let listener = UnixListener::bind(path).expect("bind the socket");
            let accepted = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&accepted);
            // Aborting the task drops the set, which ends every connection with it.
            let task = tokio::spawn(async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(answer(stream, after));
                }
            });
            FakeEngine { accepted, task }
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }
    }

    impl Drop for FakeEngine {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// Answers the requests of one connection (bodiless GETs) until the client closes it,
    /// or after the first when `after` says so.
    async fn answer(mut stream: UnixStream, after: After) {
        let body = r#"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux","Arch":"amd64","KernelVersion":"6"}"#;
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let Ok(read) = stream.read(&mut buffer).await else {
                return;
            };
            if read == 0 {
                return;
            }
            request.extend_from_slice(&buffer[..read]);
            while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                request.drain(..end + 4);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                if let After::Close = after {
                    return;
                }
            }
        }
    }

    /// A client of the engine at `path`, as `docker/` makes one.
    async fn client(path: &Path) -> Docker {
        let endpoint = Endpoint {
            context: DEFAULT_CONTEXT.to_owned(),
            chosen_by: Choice::DockerHost,
            host: format!("unix://{}", path.display()),
            tls: None,
            warnings: Vec::new(),
        };
        let connection = connection(&endpoint).await.expect("a connection");
        connection
            .docker(bollard::API_DEFAULT_VERSION)
            .expect("a client")
    }

    #[tokio::test]
    async fn calls_share_one_connection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engine.sock");
        let engine = FakeEngine::start(&path, After::KeepAlive);
        let docker = client(&path).await;
        for _ in 0..5 {
            docker.version().await.expect("the engine answers");
        }
        // A clone (the streaming client) shares the pool too.
        docker
            .clone()
            .with_timeout(Duration::from_secs(5))
            .version()
            .await
            .expect("the engine answers");
        assert_eq!(engine.accepted(), 1);
    }

    #[tokio::test]
    async fn a_connection_the_engine_closed_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engine.sock");
        let engine = FakeEngine::start(&path, After::Close);
        let docker = client(&path).await;
        for _ in 0..3 {
            docker.version().await.expect("the engine answers");
            // The engine closed the connection after answering, as when idle for long.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(engine.accepted(), 3);
    }

    #[tokio::test]
    async fn calls_go_on_after_the_engine_restarts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engine.sock");
        let engine = FakeEngine::start(&path, After::KeepAlive);
        let docker = client(&path).await;
        docker.version().await.expect("the engine answers");
        // The engine stops (its connections with it) and a new one listens on the same path.
        drop(engine);
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::remove_file(&path).expect("remove the old socket");
        docker
            .version()
            .await
            .expect_err("no engine listens while it restarts");
        let engine = FakeEngine::start(&path, After::KeepAlive);
        docker.version().await.expect("the new engine answers");
        docker.version().await.expect("the new engine answers");
        assert_eq!(engine.accepted(), 1);
    }
}
