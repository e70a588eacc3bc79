//! A Docker registry (Debian's `docker-registry`, the CNCF distribution) that a test serves on a
//! loopback port, with storage of its own, optionally behind a password file made with
//! `htpasswd` (bcrypt, the only kind the registry reads); stopped by its PID when dropped.
//! Also a `docker-credential-*` helper script for tests, which answers the credential-helper
//! protocol for one registry and records every call.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::engines::{Port, Server};

/// A registry on `127.0.0.1:PORT`, plain HTTP (which engines accept on loopback).
pub struct Registry {
    server: Server,
    port: Port,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one that anyone may push to and pull from.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// Starts one that wants `user` and `password` (HTTP basic auth) for every call.
    pub fn start_with_password(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user, password)))
    }

    fn launch(auth: Option<(&str, &str)>) -> Registry {
        let port = Port::reserve();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{}\n",
            dir.path().join("data").display(),
            port.number
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd runs (apache2-utils; tests/engine.sh installs it)");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            fs::write(&file, &out.stdout).expect("write");
            config += &format!(
                "auth:\n  htpasswd:\n    realm: e-test\n    path: {}\n",
                file.display()
            );
        }
        let config_file = dir.path().join("config.yml");
        fs::write(&config_file, config).expect("write");
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config_file);
        let mut server = Server::spawn("docker-registry", command, &dir.path().join("log"));
        let number = port.number;
        server.wait_until(|| TcpStream::connect(("127.0.0.1", number)).is_ok());
        Registry {
            server,
            port,
            _dir: dir,
        }
    }

    /// Its address for image names, `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port.number)
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }
}

/// A `docker-credential-NAME` program in a folder of its own, for PATH: `get` answers
/// `user`/`secret` for `server` and "credentials not found" for any other; every call is
/// recorded as `VERB SERVER` in [`CredentialHelper::calls`].
pub struct CredentialHelper {
    dir: tempfile::TempDir,
}

impl CredentialHelper {
    /// Writes the helper `docker-credential-NAME`.
    pub fn new(name: &str, server: &str, user: &str, secret: &str) -> CredentialHelper {
        let dir = tempfile::tempdir().expect("temp dir");
        let calls = dir.path().join("calls");
        let script = format!(
            "#!/bin/sh\nserver=$(cat)\necho \"$1 $server\" >> '{}'\n\
             if [ \"$1\" = get ] && [ \"$server\" = '{server}' ]; then\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}\\n' \"$server\"\n\
             exit 0\nfi\necho 'credentials not found in native keychain'\nexit 1\n",
            calls.display()
        );
        let path = dir.path().join(format!("docker-credential-{name}"));
        fs::write(&path, script).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        CredentialHelper { dir }
    }

    /// PATH with the helper's folder first.
    pub fn path(&self) -> String {
        let system = std::env::var("PATH").unwrap_or_default();
        format!("{}:{system}", self.dir.path().display())
    }

    /// Every call so far, one `VERB SERVER` per line.
    pub fn calls(&self) -> String {
        fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }
}

/// A docker configuration folder (for DOCKER_CONFIG) holding `config.json` with this text.
pub fn docker_config(json: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("config.json"), json).expect("write");
    dir
}

/// Removes image tags from the local engine when dropped: what a push test tagged there.
pub struct LocalTags(pub Vec<String>);

impl Drop for LocalTags {
    fn drop(&mut self) {
        for tag in &self.0 {
            let _ = Command::new("docker")
                .env_remove("DOCKER_HOST")
                .env_remove("DOCKER_CONTEXT")
                .args(["rmi", tag])
                .output();
        }
    }
}

/// The path of a file in a folder, as text for arguments.
pub fn arg(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The repository file of the project, with `from` replaced by `to` in every image.
pub fn repository_with_image(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = fs::read_to_string(super::root().join("repository.yaml")).expect("read");
    let path = dir.join("repository.yaml");
    fs::write(
        &path,
        text.replace(&format!("image: {from}"), &format!("image: {to}")),
    )
    .expect("write");
    path
}
