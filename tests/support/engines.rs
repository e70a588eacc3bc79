//! Engines that tests start themselves, on loopback, and stop by PID when dropped, even when
//! the test fails: a second `dockerd` (plain TCP or TLS) in a private mount namespace where a
//! folder of the test cannot be seen, an `sshd` whose sessions reach the local engine, and
//! Podman's Docker-compatible API service. Also test certificates (openssl), image loading
//! (`docker save | docker -H ... load`), and `e` run against one of these engines.
//!
//! Ports come from 23750-23759 only, each reserved by a lock file so that test processes
//! running at once never take the same one. A server that cannot start fails the test with
//! its log; a server whose package is absent skips the test with a printed reason, since
//! `tests/engine.sh` installs every package named here.

use std::fs::{self, File};
use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::root;

/// The ports tests may listen on.
const PORTS: std::ops::RangeInclusive<u16> = 23750..=23759;

/// How long a server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `program` can be run; if not, prints why the test is skipped. Only for programs
/// whose package `tests/engine.sh` installs, so CI never skips.
pub fn available(program: &str, package: &str) -> bool {
    let found = Path::new(program).is_file()
        || std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
        });
    if !found {
        eprintln!(
            "skipped: `{program}` is not installed (Debian package `{package}`; tests/engine.sh installs it)"
        );
    }
    found
}

/// A loopback port of [`PORTS`], free when reserved and kept for this test until dropped.
pub struct Port {
    /// The port number.
    pub number: u16,
    _lock: File,
}

impl Port {
    /// Reserves a free port, waiting for one for up to a minute.
    pub fn reserve() -> Port {
        Port::reserve_in(PORTS)
    }

    /// Reserves a free port of `ports` (another test file's own range), waiting for one for up
    /// to a minute.
    pub fn reserve_in(ports: std::ops::RangeInclusive<u16>) -> Port {
        let started = Instant::now();
        loop {
            for number in ports.clone() {
                let path = std::env::temp_dir().join(format!("e-test-port-{number}.lock"));
                let Ok(lock) = File::options().create(true).append(true).open(&path) else {
                    continue;
                };
                if lock.try_lock().is_err() {
                    continue;
                }
                // Locked by us; free for real only if nothing else listens there.
                if TcpListener::bind(("127.0.0.1", number)).is_ok() {
                    return Port {
                        number,
                        _lock: lock,
                    };
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no free port in {ports:?} for a minute"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A server process, stopped when dropped: SIGTERM, then SIGKILL if it lingers.
pub struct Server {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    /// Its log, shown when it fails.
    pub log: PathBuf,
}

impl Server {
    /// Starts `command` with stdout and stderr in `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Server {
        let file = File::create(log).expect("the server log can be created");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("{name} cannot be started: {err}"));
        Server {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until `ready` holds, failing the test with the log if the server exits or takes
    /// too long.
    pub fn wait_until(&mut self, mut ready: impl FnMut() -> bool) -> Duration {
        let started = Instant::now();
        loop {
            if ready() {
                return started.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it answered; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{} did not answer within {} s; its log:\n{}",
                self.name,
                START_TIMEOUT.as_secs(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it: SIGTERM, and SIGKILL after [`STOP_TIMEOUT`].
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal(self.child.id(), "TERM");
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a signal to one process by its PID.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Runs a program and returns its output, failing the test if it cannot run.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("`{program}` cannot run: {err}"))
}

/// Runs a program that must succeed.
fn must(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A directory under /tmp with a short path (unix socket paths hold 108 bytes at most).
fn short_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("a temporary directory in /tmp")
}

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
pub struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    /// Makes a new CA and its two certificates (P-256 keys, valid for two days).
    pub fn new() -> Certificates {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        fs::create_dir(dir.path().join("client")).expect("mkdir");
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca_key = path("ca-key.pem");
        let ca = path("ca.pem");
        let mut args = vec!["req", "-x509"];
        args.extend(key);
        args.extend([
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            "/CN=e-test-ca",
        ]);
        must("openssl", &args);
        for (name, subject, usage) in [
            (
                "server",
                "/CN=127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "/CN=e-test-client",
                "extendedKeyUsage=clientAuth\n",
            ),
        ] {
            let (key_file, cert_file) = if name == "client" {
                (path("client/key.pem"), path("client/cert.pem"))
            } else {
                (path("server-key.pem"), path("server-cert.pem"))
            };
            let csr = path(&format!("{name}.csr"));
            let extensions = path(&format!("{name}.ext"));
            fs::write(&extensions, usage).expect("write");
            let mut args = vec!["req"];
            args.extend(key);
            args.extend(["-keyout", &key_file, "-out", &csr, "-subj", subject]);
            must("openssl", &args);
            must(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca,
                    "-CAkey",
                    &ca_key,
                    "-CAcreateserial",
                    "-out",
                    &cert_file,
                    "-days",
                    "2",
                    "-extfile",
                    &extensions,
                ],
            );
        }
        fs::copy(dir.path().join("ca.pem"), dir.path().join("client/ca.pem")).expect("copy");
        Certificates { dir }
    }

    /// The CA's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server-cert.pem")
    }

    /// The server's key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server-key.pem")
    }

    /// A directory with `ca.pem`, `cert.pem` and `key.pem`, for DOCKER_CERT_PATH.
    pub fn client_dir(&self) -> PathBuf {
        self.dir.path().join("client")
    }
}

/// Counts the engines started by this process, for unique folder names.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A second Docker engine on a loopback TCP port, with its own data and exec roots, in a
/// private mount namespace where [`Dockerd::hidden_dir`] and `/dev/shm` are empty tmpfs: it
/// cannot see what the test puts there, as a remote engine cannot see the local disk.
pub struct Dockerd {
    server: Server,
    port: Port,
    tls: Option<PathBuf>,
    hidden: PathBuf,
    root: tempfile::TempDir,
    /// How long it took to answer.
    pub started_in: Duration,
}

impl Dockerd {
    /// Starts one in plain text.
    pub fn start() -> Dockerd {
        Dockerd::launch(None)
    }

    /// Starts one that speaks only TLS, with these certificates, and verifies its clients.
    pub fn start_tls(certificates: &Certificates) -> Dockerd {
        Dockerd::launch(Some(certificates))
    }

    fn launch(certificates: Option<&Certificates>) -> Dockerd {
        let port = Port::reserve();
        let root = short_dir("e-rd-");
        let hidden = PathBuf::from(format!(
            "/tmp/e-remote-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&hidden).expect("the hidden folder can be created");
        let path = |name: &str| root.path().join(name).display().to_string();
        fs::write(root.path().join("daemon.json"), "{}").expect("write");
        let host = format!("tcp://127.0.0.1:{}", port.number);
        let mut args = vec![
            "--config-file".to_owned(),
            path("daemon.json"),
            "--data-root".to_owned(),
            path("d"),
            "--exec-root".to_owned(),
            path("x"),
            "--pidfile".to_owned(),
            path("p"),
            "-H".to_owned(),
            host,
            "--iptables=false".to_owned(),
            "--ip6tables=false".to_owned(),
            "--bridge=none".to_owned(),
        ];
        if let Some(certificates) = certificates {
            args.extend([
                "--tlsverify".to_owned(),
                format!("--tlscacert={}", certificates.ca().display()),
                format!("--tlscert={}", certificates.server_cert().display()),
                format!("--tlskey={}", certificates.server_key().display()),
            ]);
        }
        let mut command = Command::new("unshare");
        command
            .args(["-m", "--propagation", "private", "sh", "-c"])
            // Nor the machine's tmpfs, where a run's copy may be (`run/memory_copy.rs`).
            .arg(
                r#"mount -t tmpfs -o size=1m,mode=0755 e-remote "$0" && \
                   mount -t tmpfs -o size=64m,mode=1777 e-remote-shm /dev/shm && \
                   exec dockerd "$@""#,
            )
            .arg(&hidden)
            .args(&args);
        let mut server = Server::spawn("the second dockerd", command, &root.path().join("log"));
        let tls = certificates.map(Certificates::client_dir);
        let mut dockerd = DockerdProbe {
            host: format!("tcp://127.0.0.1:{}", port.number),
            tls: tls.clone(),
        };
        let started_in = server.wait_until(|| dockerd.answers());
        Dockerd {
            server,
            port,
            tls,
            hidden,
            root,
            started_in,
        }
    }

    /// Its address, `tcp://127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port.number)
    }

    /// A folder this engine cannot see (it sees an empty tmpfs there); the test's shared
    /// directories go here to prove that nothing reaches the engine through the disk.
    pub fn hidden_dir(&self) -> &Path {
        &self.hidden
    }

    /// The environment that points `e` (or `docker`) at this engine.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("DOCKER_HOST".to_owned(), self.host())];
        if let Some(dir) = &self.tls {
            env.push(("DOCKER_TLS_VERIFY".to_owned(), "1".to_owned()));
            env.push(("DOCKER_CERT_PATH".to_owned(), dir.display().to_string()));
        }
        env
    }

    /// Runs the docker CLI against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        DockerdProbe {
            host: self.host(),
            tls: self.tls.clone(),
        }
        .docker(args)
    }

    /// Copies images from the local engine into this one.
    pub fn load_images(&self, images: &[&str]) {
        load_images(&self.env(), images);
    }

    /// Its PID.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.server.stop();
        // A dockerd that had to be killed leaves its containerd running.
        let containerd = self.root.path().join("x/containerd/containerd.pid");
        if let Some(pid) = fs::read_to_string(containerd)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
        {
            signal(pid, "KILL");
        }
        let _ = fs::remove_dir_all(&self.hidden);
    }
}

/// Asks a dockerd whether it answers, through the docker CLI.
struct DockerdProbe {
    host: String,
    tls: Option<PathBuf>,
}

impl DockerdProbe {
    fn docker(&self, args: &[&str]) -> Output {
        let mut command = Command::new("docker");
        command
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(&self.host);
        if let Some(dir) = &self.tls {
            command.arg("--tlsverify").env("DOCKER_CERT_PATH", dir);
        }
        command.args(args).output().expect("the docker CLI runs")
    }

    fn answers(&mut self) -> bool {
        self.docker(&["version"]).status.success()
    }
}

/// Copies images from the local engine into the engine that `env` points the docker CLI at:
/// `docker save IMAGES | docker load`.
pub fn load_images(env: &[(String, String)], images: &[&str]) {
    let mut save = Command::new("docker")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .arg("save")
        .args(images)
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save runs");
    let stream = save.stdout.take().expect("piped");
    let mut load = Command::new("docker");
    load.env_remove("DOCKER_CONTEXT");
    for (name, value) in env {
        load.env(name, value);
    }
    let loaded = load
        .args(["load", "-q"])
        .stdin(stream)
        .output()
        .expect("docker load runs");
    let saved = save.wait().expect("docker save ends");
    assert!(
        saved.success() && loaded.status.success(),
        "copying {images:?} failed: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
}

/// An sshd on a loopback port, with its own host key, configuration and authorized key, and
/// an `ssh` client set up to reach it without prompts: [`Sshd::path`] puts a wrapper first
/// on PATH that runs the system's ssh with the test's configuration and known host.
pub struct Sshd {
    server: Server,
    port: Port,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts it; its sessions get `session_env` (e.g. `DOCKER_HOST` for the remote docker).
    pub fn start(session_env: &[(&str, &str)]) -> Sshd {
        let port = Port::reserve();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name).display().to_string();
        for key in ["host_key", "client_key"] {
            must(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", &path(key)],
            );
        }
        fs::copy(path("client_key.pub"), path("authorized_keys")).expect("copy");
        let host_key = fs::read_to_string(path("host_key.pub")).expect("read");
        fs::write(
            path("known_hosts"),
            format!("[127.0.0.1]:{} {host_key}", port.number),
        )
        .expect("write");
        let mut config = format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel VERBOSE\n",
            port.number,
            path("host_key"),
            path("sshd.pid"),
            path("authorized_keys"),
        );
        if !session_env.is_empty() {
            let pairs: Vec<String> = session_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            config += &format!("SetEnv {}\n", pairs.join(" "));
        }
        fs::write(path("sshd_config"), config).expect("write");
        fs::write(
            path("ssh_config"),
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
                path("client_key"),
                path("known_hosts")
            ),
        )
        .expect("write");
        fs::create_dir(dir.path().join("bin")).expect("mkdir");
        let wrapper = dir.path().join("bin/ssh");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\nexec /usr/bin/ssh -F {} \"$@\"\n",
                path("ssh-calls"),
                path("ssh_config")
            ),
        )
        .expect("write");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
        // sshd refuses to start without its privilege separation directory.
        fs::create_dir_all("/run/sshd").expect("/run/sshd can be created");
        let mut command = Command::new("/usr/sbin/sshd");
        command.args(["-D", "-e", "-f", &path("sshd_config")]);
        let mut server = Server::spawn("the test sshd", command, &dir.path().join("log"));
        let number = port.number;
        server.wait_until(|| TcpStream::connect(("127.0.0.1", number)).is_ok());
        Sshd { server, port, dir }
    }

    /// The address for DOCKER_HOST: `ssh://root@127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port.number)
    }

    /// PATH with the test's `ssh` wrapper first.
    pub fn path(&self) -> String {
        let system = std::env::var("PATH").unwrap_or_default();
        format!("{}:{system}", self.dir.path().join("bin").display())
    }

    /// How many ssh connections the server accepted so far.
    pub fn connections(&self) -> usize {
        self.log_lines("Accepted publickey for root")
    }

    /// How many sessions (remote commands) the server started so far, over all connections.
    pub fn sessions(&self) -> usize {
        self.log_lines("Starting session: command")
    }

    /// How many times the `ssh` program was run.
    pub fn ssh_runs(&self) -> usize {
        fs::read_to_string(self.dir.path().join("ssh-calls"))
            .map(|calls| calls.lines().count())
            .unwrap_or(0)
    }

    fn log_lines(&self, needle: &str) -> usize {
        let Ok(file) = File::open(&self.server.log) else {
            return 0;
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|line| line.contains(needle))
            .count()
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}

/// Podman's Docker-compatible API service on a unix socket of the test, with its own storage,
/// so that it shares nothing with a system Podman.
pub struct Podman {
    server: Server,
    dir: tempfile::TempDir,
}

impl Podman {
    /// Starts it. Without `init`, it runs in a private mount namespace where
    /// `/usr/libexec/podman` (where Podman looks for `catatonit`) is empty: the engine of a
    /// host without `catatonit`.
    pub fn start(init: bool) -> Podman {
        let dir = short_dir("e-pm-");
        let path = |name: &str| dir.path().join(name).display().to_string();
        fs::write(
            path("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .expect("write");
        let socket = dir.path().join("s.sock");
        let mut command = if init {
            Command::new("podman")
        } else {
            let mut command = Command::new("unshare");
            command
                .args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(
                    "if [ -d /usr/libexec/podman ]; then \
                     mount -t tmpfs -o size=1m e-no-init /usr/libexec/podman || exit 1; fi; \
                     exec podman \"$@\"",
                )
                .arg("podman");
            command
        };
        command
            .env("CONTAINERS_CONF", path("containers.conf"))
            .args([
                "--root",
                &path("root"),
                "--runroot",
                &path("run"),
                "--tmpdir",
                &path("tmp"),
            ])
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()));
        let mut server = Server::spawn("podman system service", command, &dir.path().join("log"));
        let host = format!("unix://{}", socket.display());
        server.wait_until(|| {
            socket.exists()
                && Command::new("docker")
                    .args(["-H", &host, "version"])
                    .output()
                    .is_ok_and(|out| out.status.success())
        });
        Podman { server, dir }
    }

    /// Its address, `unix://SOCKET`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("s.sock").display())
    }

    /// The environment that points `e` (or `docker`) at it.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DOCKER_HOST".to_owned(), self.host())]
    }

    /// Copies images from the local engine into it.
    pub fn load_images(&self, images: &[&str]) {
        load_images(&self.env(), images);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.server.stop();
        // Podman's overlay driver keeps its home mounted private while it runs; a killed
        // service leaves it mounted, and the directory could not be removed.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("root/overlay"))
            .stderr(Stdio::null())
            .status();
    }
}

/// [`e_at`], asserting its exit code and showing everything it said when it differs.
pub fn expect_at(code: i32, shared: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    let out = e_at(shared, args, env);
    assert_eq!(
        out.status.code(),
        Some(code),
        "e {} with {env:?}:\n{}",
        args.join(" "),
        super::text(&out)
    );
    out
}

/// Runs `e ARGS` against the engine that `env` names, with the example repository and this
/// shared directory, and nothing of the caller's docker configuration: DOCKER_CONFIG is an
/// empty directory unless `env` gives one, and no other DOCKER_ variable passes through.
pub fn e_at(shared: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    let config = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_e"));
    command
        .args(args)
        .current_dir(root())
        .env("E_REPOSITORY", root().join("repository.yaml"))
        .env("E_SHARED", shared)
        .env("DOCKER_CONFIG", config.path())
        .env_remove("E_SECRETS")
        .env_remove("E_PROGRESS");
    for name in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the e binary runs")
}

/// Makes sure the local engine has `e-tests/misbehave:0.1.0` (see
/// [`super::misbehave_image`]) and returns its reference.
pub fn misbehave_image() -> String {
    super::misbehave_image();
    "e-tests/misbehave:0.1.0".to_owned()
}

/// Makes sure the local engine has the image of an example module (`e-modules/azi:0.1.0`),
/// building it with `e build` when it does not, and returns its reference.
pub fn example_image(module: &str) -> String {
    let image = format!("e-modules/{module}:0.1.0");
    let present = Command::new("docker")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|out| out.status.success());
    if present {
        return image;
    }
    let status = Command::new(root().join("modules/build-contexts.sh"))
        .status()
        .expect("build-contexts.sh runs");
    assert!(status.success(), "modules/build-contexts.sh failed");
    let shared = tempfile::tempdir().expect("temp dir");
    let out = e_at(shared.path(), &["build", &format!("modules/{module}")], &[]);
    assert!(
        out.status.success(),
        "e build modules/{module} failed:\n{}",
        super::text(&out)
    );
    image
}
