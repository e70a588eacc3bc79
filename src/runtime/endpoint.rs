//! Which Docker engine e talks to, resolved as the docker CLI resolves it, so that `e` and
//! `docker` never reach different engines from the same environment.
//!
//! The order is the docker CLI's (`resolveContextName` in its `cli/command/cli.go`): a
//! non-empty `DOCKER_HOST` selects the `default` context, else `DOCKER_CONTEXT`, else
//! `currentContext` of `config.json` (in `$DOCKER_CONFIG`, else `~/.docker`), else `default`.
//! The `default` context is `DOCKER_HOST` (else `unix:///var/run/docker.sock`) with TLS from
//! `DOCKER_TLS_VERIFY`, `DOCKER_TLS` and `DOCKER_CERT_PATH`; a named context is read from the
//! context store: `contexts/meta/<sha256 of the name>/meta.json` for its host, and
//! `contexts/tls/<sha256 of the name>/docker/` for its certificates. This file only reads the
//! environment (through a closure, so tests never touch the process's) and those files; it
//! knows nothing of bollard, and connecting is `docker/`'s job.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};

/// The name of the context that the environment describes rather than the context store.
pub const DEFAULT_CONTEXT: &str = "default";

/// Where the engine is when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the engine is when TLS is asked for and `DOCKER_HOST` is not set.
const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// The port of a `tcp://` address that gives none (the docker CLI's, with or without TLS).
const DEFAULT_TCP_PORT: u16 = 2375;

/// The socket of a `unix://` address that gives no path.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// The engine to talk to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The Docker context it comes from (`default` for the environment).
    pub context: String,
    /// What chose that context.
    pub chosen_by: Choice,
    /// The engine's address: `unix://PATH`, `tcp://HOST:PORT` or `ssh://[USER@]HOST[:PORT]`.
    pub host: String,
    /// TLS for a `tcp://` address; `None` for plain text (and for sockets and ssh).
    pub tls: Option<Tls>,
    /// What was odd but not fatal (an unreadable `config.json`), for the caller to print.
    pub warnings: Vec<String>,
}

/// The certificates of a TLS connection: all three are required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The CA that signed the engine's certificate (`ca.pem`).
    pub ca: PathBuf,
    /// The client certificate (`cert.pem`).
    pub cert: PathBuf,
    /// The client certificate's private key (`key.pem`).
    pub key: PathBuf,
    /// Whether the engine's certificate is verified (`DOCKER_TLS_VERIFY`, or a context without
    /// `SkipTLSVerify`).
    pub verify: bool,
}

/// What chose the context of an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `DOCKER_HOST` was set, which selects the `default` context.
    DockerHost,
    /// `DOCKER_CONTEXT` named it.
    DockerContext,
    /// `currentContext` in this `config.json` named it.
    ConfigFile(PathBuf),
    /// Nothing was set.
    Default,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::DockerHost => f.write_str("DOCKER_HOST"),
            Choice::DockerContext => f.write_str("DOCKER_CONTEXT"),
            Choice::ConfigFile(path) => write!(f, "`currentContext` in `{}`", path.display()),
            Choice::Default => f.write_str("default"),
        }
    }
}

/// How e reaches the engine of an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A local unix socket.
    Unix,
    /// HTTP over TCP, in plain text.
    Tcp,
    /// HTTP over TCP, in TLS.
    Tls,
    /// `docker system dial-stdio` on the remote host, over one ssh connection.
    Ssh,
    /// A scheme e cannot use (`npipe://`, `fd://`).
    Unsupported,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Unix => "unix socket",
            Transport::Tcp => "tcp",
            Transport::Tls => "tcp+tls",
            Transport::Ssh => "ssh",
            Transport::Unsupported => "unsupported",
        })
    }
}

impl Endpoint {
    /// How the engine is reached.
    /// How runs hand their private copy to this engine unless told: a bind only where the
    /// engine is on this machine (a unix socket), the archive API otherwise.
    pub fn default_transfer(&self) -> super::Transfer {
        match self.transport() {
            Transport::Unix => super::Transfer::Bind,
            _ => super::Transfer::Archive,
        }
    }

    /// How the engine is reached, from the address's scheme.
    pub fn transport(&self) -> Transport {
        match self.host.split_once("://").map(|(scheme, _)| scheme) {
            Some("unix") => Transport::Unix,
            Some("tcp") if self.tls.is_some() => Transport::Tls,
            Some("tcp") => Transport::Tcp,
            Some("ssh") => Transport::Ssh,
            _ => Transport::Unsupported,
        }
    }

    /// One line for people: the address, how, and which context chose it.
    pub fn describe(&self) -> String {
        let how = match &self.tls {
            Some(tls) if tls.verify => " over TLS".to_owned(),
            Some(_) => " over TLS without verification".to_owned(),
            None if self.transport() == Transport::Ssh => " over ssh".to_owned(),
            None => String::new(),
        };
        match self.chosen_by {
            Choice::Default => format!("`{}`{how} (context `{}`)", self.host, self.context),
            _ => format!(
                "`{}`{how} (context `{}`, chosen by {})",
                self.host, self.context, self.chosen_by
            ),
        }
    }
}

/// Resolves the endpoint from the process's environment and the user's docker configuration.
pub fn from_environment() -> anyhow::Result<Endpoint> {
    resolve(&process_variable)
}

/// A variable of the process's environment; empty counts as unset, as for the docker CLI, and
/// `HOME` falls back to the user's home directory from the system.
fn process_variable(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if name == "HOME" => std::env::home_dir().map(|home| home.display().to_string()),
        _ => None,
    }
}

/// Resolves the endpoint from an environment given as a lookup (`None` for unset or empty).
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Endpoint> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".docker")));
    let mut warnings = Vec::new();
    let (name, chosen_by) = if env("DOCKER_HOST").is_some() {
        (DEFAULT_CONTEXT.to_owned(), Choice::DockerHost)
    } else if let Some(name) = env("DOCKER_CONTEXT") {
        (name, Choice::DockerContext)
    } else {
        let configured = config_dir
            .as_deref()
            .and_then(|dir| current_context(dir, &mut warnings));
        match configured {
            Some((name, file)) => (name, Choice::ConfigFile(file)),
            None => (DEFAULT_CONTEXT.to_owned(), Choice::Default),
        }
    };
    let (host, tls) = if name == DEFAULT_CONTEXT {
        default_endpoint(&env, config_dir.as_deref())?
    } else {
        let Some(dir) = config_dir.as_deref() else {
            bail!(
                "context `{name}` (chosen by {chosen_by}) cannot be looked up: neither DOCKER_CONFIG nor HOME is set\n\
                 hint: set DOCKER_CONFIG to the directory that holds `contexts/`"
            );
        };
        stored_endpoint(dir, &name, &chosen_by)?
    };
    Ok(Endpoint {
        context: name,
        chosen_by,
        host,
        tls,
        warnings,
    })
}

/// `currentContext` of `config.json`, if it names one. A file that cannot be read or parsed is
/// a warning, as the docker CLI makes it, and counts as naming none.
fn current_context(dir: &Path, warnings: &mut Vec<String>) -> Option<(String, PathBuf)> {
    let file = dir.join("config.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            warnings.push(format!("cannot read `{}`: {err}", file.display()));
            return None;
        }
    };
    let config: serde_json::Value = match serde_json::from_str(&text) {
        Ok(config) => config,
        Err(err) => {
            warnings.push(format!("cannot parse `{}`: {err}", file.display()));
            return None;
        }
    };
    let name = field(&config, "currentContext")?.as_str()?;
    (!name.is_empty()).then(|| (name.to_owned(), file))
}

/// A field of a JSON object, matched without regard to case, as Go's `encoding/json` does.
fn field<'v>(value: &'v serde_json::Value, name: &str) -> Option<&'v serde_json::Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// The `default` context: `DOCKER_HOST` and the TLS variables.
fn default_endpoint(
    env: &dyn Fn(&str) -> Option<String>,
    config_dir: Option<&Path>,
) -> anyhow::Result<(String, Option<Tls>)> {
    let verify = env("DOCKER_TLS_VERIFY").is_some();
    let tls_on = verify || env("DOCKER_TLS").is_some();
    let given = env("DOCKER_HOST");
    let host = parse_host(tls_on, given.as_deref().unwrap_or_default()).map_err(|reason| {
        anyhow!(
            "DOCKER_HOST is `{}`: {reason}\n\
             hint: give `unix:///PATH`, `tcp://HOST:PORT` or `ssh://[USER@]HOST[:PORT]`",
            given.as_deref().unwrap_or_default()
        )
    })?;
    if !tls_on {
        return Ok((host, None));
    }
    let asked = if verify {
        "DOCKER_TLS_VERIFY"
    } else {
        "DOCKER_TLS"
    };
    let (dir, from) = match env("DOCKER_CERT_PATH") {
        Some(dir) => (PathBuf::from(dir), "DOCKER_CERT_PATH"),
        None => match config_dir {
            Some(dir) => (dir.to_owned(), "the docker config directory"),
            None => bail!(
                "TLS is asked for (`{asked}` is set) but there is no directory to find the certificates in\n\
                 hint: set DOCKER_CERT_PATH to the directory that holds `ca.pem`, `cert.pem` and `key.pem`"
            ),
        },
    };
    let tls = certificates(&dir, verify).map_err(|missing| {
        anyhow!(
            "TLS is asked for (`{asked}` is set) but {missing} in `{}` ({from}): e never falls back to plain text\n\
             hint: put the engine's CA (`ca.pem`) and your client certificate and key (`cert.pem`, `key.pem`) there, or point DOCKER_CERT_PATH at the directory that holds them",
            dir.display()
        )
    })?;
    // TLS only applies to TCP: the docker CLI ignores it for sockets and ssh.
    Ok((host.clone(), host.starts_with("tcp://").then_some(tls)))
}

/// A context of the store: its host, and its certificates if it has some.
fn stored_endpoint(
    config_dir: &Path,
    name: &str,
    chosen_by: &Choice,
) -> anyhow::Result<(String, Option<Tls>)> {
    let id = crate::archive::sha256_hex(name.as_bytes());
    let store = config_dir.join("contexts");
    let meta_file = store.join("meta").join(&id).join("meta.json");
    let text = match std::fs::read_to_string(&meta_file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "context `{name}` (chosen by {chosen_by}) does not exist: there is no `{}`\n\
             hint: `docker context ls` lists the contexts; create it with `docker context create {name} --docker host=...`, or choose another",
            meta_file.display()
        ),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", meta_file.display()));
        }
    };
    let meta: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "failed to parse `{}`, the metadata of context `{name}`",
            meta_file.display()
        )
    })?;
    let Some(endpoint) = field(&meta, "Endpoints").and_then(|all| field(all, "docker")) else {
        bail!(
            "context `{name}` has no docker endpoint (in `{}`)\n\
             hint: `docker context inspect {name}` shows it; `docker context update {name} --docker host=...` gives it one",
            meta_file.display()
        );
    };
    let host = match field(endpoint, "Host").and_then(|host| host.as_str()) {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => DEFAULT_HOST.to_owned(),
    };
    if !matches!(
        host.split_once("://").map(|(scheme, _)| scheme),
        Some("unix" | "tcp" | "ssh" | "npipe" | "fd")
    ) {
        bail!(
            "context `{name}` has the host `{host}`, which is not an engine address\n\
             hint: `docker context update {name} --docker host=tcp://HOST:PORT` fixes it"
        );
    }
    let skip_verify = field(endpoint, "SkipTLSVerify")
        .and_then(|skip| skip.as_bool())
        .unwrap_or(false);
    let tls_dir = store.join("tls").join(&id).join("docker");
    let has_material = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|file| tls_dir.join(file).exists());
    if !host.starts_with("tcp://") || !(has_material || skip_verify) {
        return Ok((host, None));
    }
    let tls = certificates(&tls_dir, !skip_verify).map_err(|missing| {
        anyhow!(
            "context `{name}` uses TLS but {missing} in `{}`: e never falls back to plain text\n\
             hint: give the context all three with `docker context update {name} --docker host={host},ca=CA,cert=CERT,key=KEY`",
            tls_dir.display()
        )
    })?;
    Ok((host, Some(tls)))
}

/// The three certificate files of a directory, or which of them are missing.
fn certificates(dir: &Path, verify: bool) -> Result<Tls, String> {
    let [ca, cert, key] = ["ca.pem", "cert.pem", "key.pem"].map(|file| dir.join(file));
    let missing: Vec<String> = [&ca, &cert, &key]
        .iter()
        .filter(|path| !path.is_file())
        .map(|path| format!("`{}`", path.file_name().unwrap_or_default().display()))
        .collect();
    match missing.len() {
        0 => Ok(Tls {
            ca,
            cert,
            key,
            verify,
        }),
        1 => Err(format!("{} is missing", missing[0])),
        _ => Err(format!("{} are missing", missing.join(", "))),
    }
}

/// An engine address made whole, as the docker CLI's `ParseHost` does: empty is the default,
/// no scheme means `tcp://`, and a `tcp://` address gets a host and a port. `ssh://` is taken
/// as it is and checked when connecting.
pub fn parse_host(default_to_tls: bool, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(if default_to_tls {
            DEFAULT_TLS_HOST
        } else {
            DEFAULT_HOST
        }
        .to_owned());
    }
    let (scheme, rest) = value.split_once("://").unwrap_or(("tcp", value));
    match scheme {
        "tcp" => parse_tcp(rest),
        "unix" | "npipe" => {
            if rest.contains("://") {
                return Err(format!("invalid address, expected {scheme}"));
            }
            let path = match (rest, scheme) {
                ("", "unix") => DEFAULT_SOCKET,
                ("", _) => "//./pipe/docker_engine",
                (path, _) => path,
            };
            Ok(format!("{scheme}://{path}"))
        }
        "ssh" | "fd" => Ok(value.to_owned()),
        _ => Err("invalid bind address format".to_owned()),
    }
}

/// The `HOST:PORT[/PATH]` of a `tcp://` address, with `localhost` and 2375 where missing.
fn parse_tcp(rest: &str) -> Result<String, String> {
    if rest.is_empty() {
        return Ok(format!("tcp://localhost:{DEFAULT_TCP_PORT}"));
    }
    if rest.contains("://") {
        return Err("invalid address, expected tcp".to_owned());
    }
    let mut rest = if rest.ends_with("]:") {
        format!("{rest}{DEFAULT_TCP_PORT}")
    } else {
        rest.to_owned()
    };
    // Go's URL parser takes an empty host (`tcp://:2375`); the `url` crate does not.
    if rest.starts_with(':') {
        rest.insert_str(0, "localhost");
    }
    let url = url::Url::parse(&format!("tcp://{rest}"))
        .map_err(|_| "invalid bind address format".to_owned())?;
    let host = match url.host_str() {
        Some("") | None => "localhost",
        Some(host) => host,
    };
    let port = url.port().unwrap_or(DEFAULT_TCP_PORT);
    Ok(format!("tcp://{host}:{port}{}", url.path()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A docker config directory with contexts, as `docker context create` writes them.
    struct Config {
        dir: tempfile::TempDir,
    }

    impl Config {
        fn new() -> Config {
            Config {
                dir: tempfile::tempdir().expect("temp dir"),
            }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        fn write(&self, relative: &str, text: &str) {
            let path = self.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }

        fn context(&self, name: &str, endpoint: &str) {
            let id = crate::archive::sha256_hex(name.as_bytes());
            self.write(
                &format!("contexts/meta/{id}/meta.json"),
                &format!(
                    r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{endpoint}}}}}"#
                ),
            );
        }

        fn context_tls(&self, name: &str, files: &[&str]) -> PathBuf {
            let id = crate::archive::sha256_hex(name.as_bytes());
            for file in files {
                self.write(&format!("contexts/tls/{id}/docker/{file}"), "PEM");
            }
            self.path().join(format!("contexts/tls/{id}/docker"))
        }

        /// Resolves with DOCKER_CONFIG set to this directory and the given variables.
        fn resolve(&self, vars: &[(&str, &str)]) -> anyhow::Result<Endpoint> {
            let mut env: HashMap<String, String> = vars
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            env.entry("DOCKER_CONFIG".to_owned())
                .or_insert_with(|| self.path().display().to_string());
            resolve(&move |name| env.get(name).cloned())
        }
    }

    fn error(result: anyhow::Result<Endpoint>) -> String {
        format!("{:#}", result.expect_err("an error"))
    }

    #[test]
    fn nothing_set_is_the_default_socket() {
        let config = Config::new();
        let endpoint = config.resolve(&[]).expect("resolves");
        assert_eq!(endpoint.context, "default");
        assert_eq!(endpoint.chosen_by, Choice::Default);
        assert_eq!(endpoint.host, "unix:///var/run/docker.sock");
        assert_eq!(endpoint.tls, None);
        assert_eq!(endpoint.transport(), Transport::Unix);
        assert_eq!(
            endpoint.describe(),
            "`unix:///var/run/docker.sock` (context `default`)"
        );
    }

    #[test]
    fn the_config_dir_defaults_to_home() {
        let home = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(home.path().join(".docker")).expect("mkdir");
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"currentContext": "remote"}"#,
        )
        .expect("write");
        let home_path = home.path().display().to_string();
        let env = move |name: &str| (name == "HOME").then(|| home_path.clone());
        let message = format!("{:#}", resolve(&env).expect_err("no such context"));
        assert!(
            message.starts_with(&format!(
                "context `remote` (chosen by `currentContext` in `{}`) does not exist",
                home.path().join(".docker/config.json").display()
            )),
            "{message}"
        );
    }

    #[test]
    fn docker_host_wins_over_every_context() {
        let config = Config::new();
        config.write("config.json", r#"{"currentContext": "remote"}"#);
        config.context("remote", r#"{"Host":"tcp://10.0.0.1:2375"}"#);
        let endpoint = config
            .resolve(&[
                ("DOCKER_HOST", "tcp://127.0.0.1:23750"),
                ("DOCKER_CONTEXT", "remote"),
            ])
            .expect("resolves");
        assert_eq!(endpoint.context, "default");
        assert_eq!(endpoint.chosen_by, Choice::DockerHost);
        assert_eq!(endpoint.host, "tcp://127.0.0.1:23750");
        assert_eq!(endpoint.transport(), Transport::Tcp);
    }

    #[test]
    fn docker_context_wins_over_the_config_file() {
        let config = Config::new();
        config.write("config.json", r#"{"currentContext": "other"}"#);
        config.context(
            "remote",
            r#"{"Host":"tcp://127.0.0.1:23751","SkipTLSVerify":false}"#,
        );
        let endpoint = config
            .resolve(&[("DOCKER_CONTEXT", "remote")])
            .expect("resolves");
        assert_eq!(endpoint.context, "remote");
        assert_eq!(endpoint.chosen_by, Choice::DockerContext);
        assert_eq!(endpoint.host, "tcp://127.0.0.1:23751");
        assert_eq!(endpoint.tls, None);
    }

    #[test]
    fn the_config_file_names_the_current_context() {
        let config = Config::new();
        config.write(
            "config.json",
            r#"{"auths": {}, "currentContext": "ssh-box"}"#,
        );
        config.context("ssh-box", r#"{"Host":"ssh://root@127.0.0.1:23752"}"#);
        let endpoint = config.resolve(&[]).expect("resolves");
        assert_eq!(endpoint.context, "ssh-box");
        assert_eq!(
            endpoint.chosen_by,
            Choice::ConfigFile(config.path().join("config.json"))
        );
        assert_eq!(endpoint.transport(), Transport::Ssh);
        assert!(
            endpoint.describe().contains("over ssh"),
            "{}",
            endpoint.describe()
        );
    }

    #[test]
    fn a_context_named_default_is_the_environment() {
        let config = Config::new();
        config.write("config.json", r#"{"currentContext": "default"}"#);
        let endpoint = config
            .resolve(&[("DOCKER_TLS_VERIFY", "")])
            .expect("resolves");
        assert_eq!(endpoint.context, "default");
        assert_eq!(endpoint.host, DEFAULT_HOST);
    }

    #[test]
    fn go_field_names_match_without_case() {
        let config = Config::new();
        config.write("config.json", r#"{"CurrentContext": "remote"}"#);
        let id = crate::archive::sha256_hex(b"remote");
        config.write(
            &format!("contexts/meta/{id}/meta.json"),
            r#"{"name":"remote","endpoints":{"docker":{"host":"tcp://127.0.0.1:23753"}}}"#,
        );
        let endpoint = config.resolve(&[]).expect("resolves");
        assert_eq!(endpoint.host, "tcp://127.0.0.1:23753");
    }

    #[test]
    fn an_unreadable_config_file_is_a_warning() {
        let config = Config::new();
        config.write("config.json", "{not json");
        let endpoint = config.resolve(&[]).expect("resolves");
        assert_eq!(endpoint.context, "default");
        assert_eq!(endpoint.warnings.len(), 1, "{:?}", endpoint.warnings);
        assert!(endpoint.warnings[0].starts_with("cannot parse `"));
    }

    #[test]
    fn an_unknown_context_is_named_with_where_it_was_looked_for() {
        let config = Config::new();
        let message = error(config.resolve(&[("DOCKER_CONTEXT", "nowhere")]));
        let id = crate::archive::sha256_hex(b"nowhere");
        assert_eq!(
            message,
            format!(
                "context `nowhere` (chosen by DOCKER_CONTEXT) does not exist: there is no `{}`\n\
                 hint: `docker context ls` lists the contexts; create it with \
                 `docker context create nowhere --docker host=...`, or choose another",
                config
                    .path()
                    .join(format!("contexts/meta/{id}/meta.json"))
                    .display()
            )
        );
    }

    #[test]
    fn a_context_without_docker_endpoint_is_refused() {
        let config = Config::new();
        let id = crate::archive::sha256_hex(b"k8s");
        config.write(
            &format!("contexts/meta/{id}/meta.json"),
            r#"{"Name":"k8s","Endpoints":{"kubernetes":{}}}"#,
        );
        let message = error(config.resolve(&[("DOCKER_CONTEXT", "k8s")]));
        assert!(
            message.starts_with("context `k8s` has no docker endpoint"),
            "{message}"
        );
    }

    #[test]
    fn context_certificates_come_from_the_tls_store() {
        let config = Config::new();
        config.context("secure", r#"{"Host":"tcp://127.0.0.1:23754"}"#);
        let dir = config.context_tls("secure", &["ca.pem", "cert.pem", "key.pem"]);
        let endpoint = config
            .resolve(&[("DOCKER_CONTEXT", "secure")])
            .expect("resolves");
        assert_eq!(
            endpoint.tls,
            Some(Tls {
                ca: dir.join("ca.pem"),
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
                verify: true,
            })
        );
        assert_eq!(endpoint.transport(), Transport::Tls);
    }

    #[test]
    fn a_context_with_part_of_its_certificates_is_refused() {
        let config = Config::new();
        config.context("half", r#"{"Host":"tcp://127.0.0.1:23755"}"#);
        config.context_tls("half", &["ca.pem"]);
        let message = error(config.resolve(&[("DOCKER_CONTEXT", "half")]));
        assert!(
            message
                .starts_with("context `half` uses TLS but `cert.pem`, `key.pem` are missing in `"),
            "{message}"
        );
    }

    #[test]
    fn skip_tls_verify_is_kept() {
        let config = Config::new();
        config.context(
            "lax",
            r#"{"Host":"tcp://127.0.0.1:23756","SkipTLSVerify":true}"#,
        );
        config.context_tls("lax", &["ca.pem", "cert.pem", "key.pem"]);
        let endpoint = config
            .resolve(&[("DOCKER_CONTEXT", "lax")])
            .expect("resolves");
        assert_eq!(endpoint.tls.map(|tls| tls.verify), Some(false));
    }

    #[test]
    fn tls_variables_apply_to_the_default_context() {
        let config = Config::new();
        let certs = tempfile::tempdir().expect("temp dir");
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(certs.path().join(file), "PEM").expect("write");
        }
        let cert_path = certs.path().display().to_string();
        let endpoint = config
            .resolve(&[
                ("DOCKER_HOST", "tcp://127.0.0.1:23757"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", &cert_path),
            ])
            .expect("resolves");
        let tls = endpoint.tls.expect("tls");
        assert_eq!(tls.ca, certs.path().join("ca.pem"));
        assert!(tls.verify);
        // Without DOCKER_HOST, TLS means the TLS port of localhost.
        let endpoint = config
            .resolve(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &cert_path)])
            .expect("resolves");
        assert_eq!(endpoint.host, "tcp://localhost:2376");
        // DOCKER_TLS alone is TLS without verification.
        let endpoint = config
            .resolve(&[
                ("DOCKER_HOST", "tcp://127.0.0.1:23757"),
                ("DOCKER_TLS", "1"),
                ("DOCKER_CERT_PATH", &cert_path),
            ])
            .expect("resolves");
        assert_eq!(endpoint.tls.map(|tls| tls.verify), Some(false));
        // Certificates in the config directory serve when DOCKER_CERT_PATH is not set.
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            config.write(file, "PEM");
        }
        let endpoint = config
            .resolve(&[
                ("DOCKER_HOST", "tcp://127.0.0.1:23757"),
                ("DOCKER_TLS_VERIFY", "1"),
            ])
            .expect("resolves");
        assert_eq!(
            endpoint.tls.map(|tls| tls.key),
            Some(config.path().join("key.pem"))
        );
    }

    #[test]
    fn tls_asked_for_without_certificates_is_refused() {
        let config = Config::new();
        let certs = tempfile::tempdir().expect("temp dir");
        std::fs::write(certs.path().join("cert.pem"), "PEM").expect("write");
        let cert_path = certs.path().display().to_string();
        let message = error(config.resolve(&[
            ("DOCKER_HOST", "tcp://127.0.0.1:23758"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", &cert_path),
        ]));
        assert_eq!(
            message,
            format!(
                "TLS is asked for (`DOCKER_TLS_VERIFY` is set) but `ca.pem`, `key.pem` are \
                 missing in `{cert_path}` (DOCKER_CERT_PATH): e never falls back to plain text\n\
                 hint: put the engine's CA (`ca.pem`) and your client certificate and key \
                 (`cert.pem`, `key.pem`) there, or point DOCKER_CERT_PATH at the directory that \
                 holds them"
            )
        );
    }

    #[test]
    fn tls_is_not_for_sockets() {
        let config = Config::new();
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            config.write(file, "PEM");
        }
        let endpoint = config
            .resolve(&[
                ("DOCKER_HOST", "unix:///run/other.sock"),
                ("DOCKER_TLS_VERIFY", "1"),
            ])
            .expect("resolves");
        assert_eq!(endpoint.tls, None);
        assert_eq!(endpoint.transport(), Transport::Unix);
    }

    #[test]
    fn hosts_are_made_whole_like_the_docker_cli_does() {
        let cases = [
            ("", false, "unix:///var/run/docker.sock"),
            ("", true, "tcp://localhost:2376"),
            ("unix://", false, "unix:///var/run/docker.sock"),
            (
                "unix:///run/podman/podman.sock",
                false,
                "unix:///run/podman/podman.sock",
            ),
            ("tcp://127.0.0.1", false, "tcp://127.0.0.1:2375"),
            ("tcp://127.0.0.1:23750", true, "tcp://127.0.0.1:23750"),
            ("127.0.0.1:23750", false, "tcp://127.0.0.1:23750"),
            ("tcp://:23750", false, "tcp://localhost:23750"),
            ("tcp://[::1]:", false, "tcp://[::1]:2375"),
            ("tcp://", false, "tcp://localhost:2375"),
            (
                "ssh://root@127.0.0.1:23752",
                false,
                "ssh://root@127.0.0.1:23752",
            ),
            (" tcp://127.0.0.1:1/ ", false, "tcp://127.0.0.1:1/"),
        ];
        for (given, tls, expected) in cases {
            assert_eq!(parse_host(tls, given).as_deref(), Ok(expected), "{given}");
        }
        for bad in ["http://127.0.0.1:2375", "tcp://unix:///x", "unix://tcp://x"] {
            assert!(parse_host(false, bad).is_err(), "{bad}");
        }
        let config = Config::new();
        let message = error(config.resolve(&[("DOCKER_HOST", "http://127.0.0.1:2375")]));
        assert!(
            message.starts_with(
                "DOCKER_HOST is `http://127.0.0.1:2375`: invalid bind address format\nhint:"
            ),
            "{message}"
        );
    }
}
