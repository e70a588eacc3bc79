//! Registry credentials, found as the docker CLI finds them: in `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`), through the credential helper that `credHelpers` names for
//! the registry, else the clear `auths` entry, else the `credsStore` helper. The file and the
//! helpers' protocol (`docker-credential-NAME get`, the server on stdin, JSON on stdout) are
//! the `docker_credential` crate's; this file picks the server name to ask for, turns the answer
//! into what the engine wants, and decides what a failure means: without credentials a pull or
//! push is anonymous, and a refusal then says `docker login REGISTRY`.

use bollard::auth::DockerCredentials;
use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::output;

/// The name the docker CLI gives Docker Hub in `config.json` and to credential helpers.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry host of an image reference, as the engine resolves it: the first part when it
/// looks like a host (`ghcr.io`, `localhost:5000`), else Docker Hub.
pub(crate) fn registry_host(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            normalize_registry(first)
        }
        _ => normalize_registry("docker.io"),
    }
}

/// A registry address (`https://index.docker.io/v1/`, `docker.io`, `127.0.0.1:5000/`) reduced
/// to a comparable host.
fn normalize_registry(address: &str) -> String {
    let host = address
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// The server name under which `config.json` and credential helpers know a registry host.
fn server_name(host: &str) -> String {
    if host == "index.docker.io" {
        DOCKER_HUB.to_owned()
    } else {
        host.to_owned()
    }
}

/// What `docker login` would have to be given to reach the registry of `reference`, for hints:
/// nothing for Docker Hub, else the host.
pub(crate) fn login_target(reference: &str) -> String {
    match registry_host(reference).as_str() {
        "index.docker.io" => String::new(),
        host => format!(" {host}"),
    }
}

/// The credentials for the registry of `reference`, or `None` for an anonymous pull or push. A
/// helper that fails for another reason than "not found" is a warning, and the call goes on
/// anonymously: a public image still comes, and a private one is refused with a hint.
pub(crate) async fn for_reference(reference: &str) -> Option<DockerCredentials> {
    let server = server_name(&registry_host(reference));
    let asked = server.clone();
    let found = tokio::task::spawn_blocking(move || docker_credential::get_credential(&asked))
        .await
        .ok()?;
    match interpret(&server, found) {
        Ok(credentials) => credentials,
        Err(warning) => {
            output::warn(&warning);
            None
        }
    }
}

/// Turns the crate's answer into credentials for the engine, `None` when there are none, or
/// the warning to print.
fn interpret(
    server: &str,
    found: Result<DockerCredential, CredentialRetrievalError>,
) -> Result<Option<DockerCredentials>, String> {
    let credentials = match found {
        Ok(DockerCredential::UsernamePassword(username, password)) => DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        },
        Ok(DockerCredential::IdentityToken(token)) => DockerCredentials {
            identitytoken: Some(token),
            serveraddress: Some(server.to_owned()),
            ..Default::default()
        },
        // No config.json, or nothing in it for this registry: anonymous, as docker does.
        Err(
            CredentialRetrievalError::ConfigNotFound
            | CredentialRetrievalError::ConfigReadError
            | CredentialRetrievalError::NoCredentialConfigured,
        ) => return Ok(None),
        // The protocol's answer for a registry the helper holds nothing for.
        Err(CredentialRetrievalError::HelperFailure { stdout, .. })
            if stdout.contains("credentials not found") =>
        {
            return Ok(None);
        }
        Err(CredentialRetrievalError::HelperFailure {
            helper,
            stdout,
            stderr,
        }) => {
            let said = [stderr.trim(), stdout.trim()]
                .into_iter()
                .find(|text| !text.is_empty())
                .unwrap_or("nothing");
            return Err(format!(
                "the credential helper `{helper}` failed for `{server}` (it said: {said}); going on without credentials\n\
                 hint: check the helper (`echo {server} | {helper} get`), or log in again with `docker login{}`",
                login_suffix(server)
            ));
        }
        Err(CredentialRetrievalError::HelperCommunicationError) => {
            return Err(format!(
                "the credential helper that `config.json` names for `{server}` cannot be run; going on without credentials\n\
                 hint: install the `docker-credential-*` program `credsStore` or `credHelpers` names (it must be on PATH), or remove it from `config.json`"
            ));
        }
        Err(CredentialRetrievalError::MalformedHelperResponse) => {
            return Err(format!(
                "the credential helper for `{server}` answered something that is not `{{\"Username\": ..., \"Secret\": ...}}`; going on without credentials"
            ));
        }
        Err(
            CredentialRetrievalError::CredentialDecodingError
            | CredentialRetrievalError::CredentialMismatchError,
        ) => {
            return Err(format!(
                "the `auths` entry for `{server}` in `config.json` cannot be read (`auth` must be base64 of `user:password`); going on without credentials\n\
                 hint: log in again with `docker login{}`",
                login_suffix(server)
            ));
        }
    };
    Ok(Some(credentials))
}

/// ` HOST` for `docker login HOST`, nothing for Docker Hub.
fn login_suffix(server: &str) -> String {
    if server == DOCKER_HUB {
        String::new()
    } else {
        format!(" {server}")
    }
}

/// Whether an engine's refusal of a pull or push is about credentials.
pub(crate) fn is_auth_refusal(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// The hint for a pull or push refused for credentials.
pub(crate) fn login_hint(reference: &str) -> String {
    format!(
        "hint: log in with `docker login{}` (e reads `~/.docker/config.json` or `$DOCKER_CONFIG`, credential helpers included)",
        login_target(reference)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_resolved_like_the_engine_does() {
        assert_eq!(registry_host("busybox:latest"), "index.docker.io");
        assert_eq!(registry_host("library/busybox"), "index.docker.io");
        assert_eq!(registry_host("ghcr.io/org/e:1"), "ghcr.io");
        assert_eq!(registry_host("localhost:5000/e"), "localhost:5000");
        assert_eq!(registry_host("127.0.0.1:5000/e/azi:1"), "127.0.0.1:5000");
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(server_name("index.docker.io"), DOCKER_HUB);
        assert_eq!(server_name("ghcr.io"), "ghcr.io");
        assert_eq!(login_target("busybox"), "");
        assert_eq!(login_target("ghcr.io/org/e:1"), " ghcr.io");
    }

    #[test]
    fn credentials_come_from_auths_and_helpers() {
        // base64("user:secret")
        let config = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpzZWNyZXQ="},
            "ghcr.io": {"identitytoken": "token"},
            "bad.example": {"auth": "not base64!"}
        }, "credHelpers": {"helped.example": "e-test-absent"}}"#;
        let lookup = |server: &str| {
            interpret(
                server,
                docker_credential::get_credential_from_reader(config.as_bytes(), server),
            )
        };
        let hub = lookup(DOCKER_HUB).unwrap().expect("hub credentials");
        assert_eq!(hub.username.as_deref(), Some("user"));
        assert_eq!(hub.password.as_deref(), Some("secret"));
        assert_eq!(hub.serveraddress.as_deref(), Some(DOCKER_HUB));
        let ghcr = lookup("ghcr.io").unwrap().expect("ghcr credentials");
        assert_eq!(ghcr.identitytoken.as_deref(), Some("token"));
        assert_eq!(lookup("quay.io").unwrap(), None);
        let bad = lookup("bad.example").unwrap_err();
        assert!(bad.contains("docker login bad.example"), "{bad}");
        let absent = lookup("helped.example").unwrap_err();
        assert!(absent.contains("cannot be run"), "{absent}");
    }

    #[test]
    fn a_helper_without_credentials_means_anonymous() {
        let not_found = Err(CredentialRetrievalError::HelperFailure {
            helper: "docker-credential-pass".to_owned(),
            stdout: "credentials not found in native keychain\n".to_owned(),
            stderr: String::new(),
        });
        assert_eq!(interpret("ghcr.io", not_found), Ok(None));
        let broken = Err(CredentialRetrievalError::HelperFailure {
            helper: "docker-credential-pass".to_owned(),
            stdout: String::new(),
            stderr: "gpg: decryption failed\n".to_owned(),
        });
        let warning = interpret("ghcr.io", broken).unwrap_err();
        assert!(
            warning.contains(
                "`docker-credential-pass` failed for `ghcr.io` (it said: gpg: decryption failed)"
            ),
            "{warning}"
        );
    }

    #[test]
    fn auth_refusals_are_recognised() {
        assert!(is_auth_refusal(
            "Head \"http://127.0.0.1:5000/v2/e/azi/manifests/1\": no basic auth credentials"
        ));
        assert!(is_auth_refusal("unauthorized: authentication required"));
        assert!(!is_auth_refusal("manifest unknown"));
    }
}
