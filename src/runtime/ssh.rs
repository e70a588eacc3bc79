//! The `ssh://` transport: one ssh connection held for the whole command, and every HTTP
//! connection of the API client a `docker system dial-stdio` session multiplexed over it.
//!
//! The docker CLI runs `ssh [-l USER] [-p PORT] -- HOST docker system dial-stdio` for each
//! connection it opens (`cli/connhelper`), with the user's own ssh configuration, keys and
//! agent. e runs the same commands through the system's `ssh`, but first starts one OpenSSH
//! ControlMaster (`-M -N`, its control socket in a private temporary directory) and then
//! opens every session through it (`-S`), so that a command that makes many API calls, some at
//! once (attach, start and wait of a container), authenticates once and holds one TCP
//! connection. The master and the sessions are e's children: they end when the [`Master`] is
//! dropped, and, through the parent-death signal, when e dies.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long ssh may take to reach the host (the docker CLI's `ConnectTimeout`).
const CONNECT_TIMEOUT_SECONDS: u32 = 30;

/// How long the master may take to connect and authenticate before e gives up.
const MASTER_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the master's control socket is looked for while it starts.
const MASTER_POLL: Duration = Duration::from_millis(5);

/// How much of the sessions' stderr is kept for error messages.
const DIAGNOSTICS_LIMIT: usize = 4096;

/// Where to connect, from an `ssh://[USER@]HOST[:PORT][/SOCKET]` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The remote user, if the address names one.
    pub user: Option<String>,
    /// The host name or address.
    pub host: String,
    /// The port, if the address names one.
    pub port: Option<u16>,
    /// The engine's socket on the remote host, if the address names one.
    pub socket: Option<String>,
}

impl Target {
    /// Parses an `ssh://` address with the docker CLI's rules: no password, no query, no
    /// fragment, a host.
    pub fn parse(address: &str) -> anyhow::Result<Target> {
        let invalid = |reason: &str| {
            anyhow!(
                "`{address}` is not a valid ssh address: {reason}\n\
                 hint: write it `ssh://[USER@]HOST[:PORT]`"
            )
        };
        let url = url::Url::parse(address).map_err(|err| invalid(&err.to_string()))?;
        if url.scheme() != "ssh" {
            return Err(invalid("the scheme is not `ssh`"));
        }
        if url.password().is_some() {
            return Err(invalid("a password in the address is not supported"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("query parameters and fragments are not allowed"));
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| invalid("the host name is empty"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let user = Some(url.username())
            .filter(|user| !user.is_empty())
            .map(str::to_owned);
        let socket = Some(url.path())
            .filter(|path| !path.trim_matches('/').is_empty())
            .map(str::to_owned);
        Ok(Target {
            user,
            host,
            port: url.port(),
            socket,
        })
    }

    /// The arguments that name the destination, after the options: `-l`, `-p`, `--`, host.
    fn destination(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.into()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string().into()]);
        }
        args.extend(["--".into(), self.host.clone().into()]);
        args
    }

    /// The remote command, quoted for the remote shell as the docker CLI quotes it.
    fn remote_command(&self) -> String {
        match &self.socket {
            Some(socket) => format!(
                "docker {} system dial-stdio",
                shell_quote(&format!("--host=unix://{socket}"))
            ),
            None => "docker system dial-stdio".to_owned(),
        }
    }
}

/// A word quoted for a POSIX shell, unchanged when it needs no quoting.
fn shell_quote(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_=/.:@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One ssh connection to the engine's host, held until dropped.
pub struct Master {
    target: Target,
    /// The control socket of the master.
    control: PathBuf,
    /// The master process; killed on drop.
    _child: Child,
    /// The private directory of the control socket; removed on drop, after the child.
    _dir: tempfile::TempDir,
    /// The last bytes the sessions wrote on stderr (`docker: command not found`).
    diagnostics: Arc<Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master")
            .field("target", &self.target)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl Master {
    /// Connects and authenticates once, and waits until sessions can be opened through it.
    pub async fn start(target: Target) -> anyhow::Result<Master> {
        let dir = tempfile::Builder::new().prefix("e-ssh-").tempdir()?;
        let control = dir.path().join("control");
        let mut command = ssh_command();
        command
            .arg("-o")
            .arg(format!("ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"))
            .args(["-T", "-N", "-M", "-o", "ControlPersist=no", "-S"])
            .arg(&control)
            .args(target.destination())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|err| spawn_error(&err))?;
        let started = Instant::now();
        loop {
            if control.exists() {
                break;
            }
            if let Some(status) = child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    pipe.read_to_string(&mut stderr).await?;
                }
                let said = stderr.trim();
                let said = if said.is_empty() {
                    format!("ssh exited with {status}")
                } else {
                    said.to_owned()
                };
                bail!("{said}");
            }
            if started.elapsed() > MASTER_TIMEOUT {
                bail!("ssh did not connect within {} s", MASTER_TIMEOUT.as_secs());
            }
            tokio::time::sleep(MASTER_POLL).await;
        }
        Ok(Master {
            target,
            control,
            _child: child,
            _dir: dir,
            diagnostics: Arc::default(),
        })
    }

    /// What the sessions said on stderr, for an error message; empty when they said nothing.
    pub fn diagnostics(&self) -> String {
        let bytes = self
            .diagnostics
            .lock()
            .map(|bytes| bytes.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    /// Opens a session through the master that runs `docker system dial-stdio` on the host:
    /// its stdin and stdout are a connection to the engine.
    fn dial(&self) -> io::Result<Session> {
        let mut command = ssh_command();
        command
            .args(["-T", "-o", "ControlMaster=no", "-S"])
            .arg(&self.control)
            .args(self.target.destination())
            .arg(self.target.remote_command())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
        if let Some(mut stderr) = child.stderr.take() {
            let diagnostics = Arc::clone(&self.diagnostics);
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                while let Ok(read) = stderr.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    if let Ok(mut kept) = diagnostics.lock() {
                        kept.extend_from_slice(&buffer[..read]);
                        let excess = kept.len().saturating_sub(DIAGNOSTICS_LIMIT);
                        kept.drain(..excess);
                    }
                }
            });
        }
        Ok(Session {
            _child: child,
            stdin: Some(TokioIo::new(stdin)),
            stdout: TokioIo::new(stdout),
        })
    }
}

/// `ssh`, as a child in a session of its own that gets SIGTERM when e dies and is killed when
/// dropped. Its own session, as the docker CLI gives it: a Ctrl-C on the terminal goes to e,
/// which then needs the connection to stop and remove the container, and not to ssh, which
/// would drop it. (So ssh cannot prompt on the terminal either: it needs a key or an agent.)
fn ssh_command() -> Command {
    let mut command = Command::new("ssh");
    command.kill_on_drop(true);
    // SAFETY: `setsid` and `prctl` are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// The error for an `ssh` that cannot be run.
fn spawn_error(err: &io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::NotFound {
        anyhow!("there is no `ssh` program\nhint: install the OpenSSH client (`openssh-client`)")
    } else {
        anyhow!("failed to run `ssh`: {err}")
    }
}

/// One session through the master: a connection to the engine over `dial-stdio`.
pub struct Session {
    _child: Child,
    stdin: Option<TokioIo<ChildStdin>>,
    stdout: TokioIo<ChildStdout>,
}

impl Session {
    fn stdin(self: Pin<&mut Self>) -> io::Result<Pin<&mut TokioIo<ChildStdin>>> {
        self.get_mut()
            .stdin
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::BrokenPipe.into())
    }
}

impl hyper::rt::Read for Session {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(context, buffer)
    }
}

impl hyper::rt::Write for Session {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stdin()?.poll_write(context, buffer)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stdin()?.poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(stdin) = this.stdin.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = std::task::ready!(Pin::new(stdin).poll_shutdown(context));
        // Closing stdin is what tells `dial-stdio` that this side is done writing.
        this.stdin = None;
        Poll::Ready(result)
    }
}

impl Connection for Session {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Opens a [`Session`] through the master for each connection the HTTP client wants.
#[derive(Clone)]
pub struct Connector {
    master: Arc<Master>,
}

impl Connector {
    /// A connector over this master.
    pub fn new(master: Arc<Master>) -> Connector {
        Connector { master }
    }
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = Session;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Session>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let session = self.master.dial();
        Box::pin(std::future::ready(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_the_docker_cli_does() {
        assert_eq!(
            Target::parse("ssh://root@127.0.0.1:23752").expect("valid"),
            Target {
                user: Some("root".to_owned()),
                host: "127.0.0.1".to_owned(),
                port: Some(23752),
                socket: None,
            }
        );
        let target = Target::parse("ssh://box/run/user/1000/docker.sock").expect("valid");
        assert_eq!(target.user, None);
        assert_eq!(target.port, None);
        assert_eq!(
            target.remote_command(),
            "docker --host=unix:///run/user/1000/docker.sock system dial-stdio"
        );
        assert_eq!(Target::parse("ssh://[::1]:22").expect("valid").host, "::1");
        assert_eq!(
            Target::parse("ssh://box").expect("valid").destination(),
            ["--", "box"].map(OsString::from)
        );
        for bad in [
            "ssh://user:secret@box",
            "ssh://box?x=1",
            "ssh://box#top",
            "ssh://",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_words_are_quoted() {
        assert_eq!(
            shell_quote("--host=unix:///a/b.sock"),
            "--host=unix:///a/b.sock"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
