//! The repository machine's registry, as `e push` and `e import --push` name it: an address
//! (`HOST[:PORT][/PATH]`, as `docker tag` takes it), the name each image gets under it, and the
//! repository rewritten so that its modules pull their images from there. Pure: no disk, no
//! engine.

use std::fmt;
use std::str::FromStr;

use crate::repository::Repository;

/// A registry to push into: a host (with a port) and an optional path under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// `127.0.0.1:5000`, `registry.example.com/mirror`: what goes before an image's path.
    prefix: String,
}

impl FromStr for Registry {
    type Err = String;

    fn from_str(text: &str) -> Result<Registry, String> {
        let hint = "hint: give a registry as `docker tag` takes it: `HOST:PORT` or `HOST[/PATH]`, e.g. `127.0.0.1:5000` or `registry.example.com/e`";
        if let Some((scheme, rest)) = text.split_once("://") {
            return Err(format!(
                "`{text}` has a scheme (`{scheme}://`); registries are named without one: `{rest}`\n{hint}"
            ));
        }
        let prefix = text.trim_end_matches('/');
        let host = prefix.split('/').next().unwrap_or_default();
        let host_like = host.contains(['.', ':']) || host == "localhost";
        if prefix.is_empty() || !host_like {
            return Err(format!(
                "`{text}` is not a registry address: its first part must be a host (with a `.` or a `:PORT`, or `localhost`)\n{hint}"
            ));
        }
        let valid = prefix.split('/').skip(1).all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
        if !valid || prefix.contains(char::is_whitespace) {
            return Err(format!(
                "`{text}` is not a registry address: a path under the host holds lowercase letters, digits, `.`, `_` and `-`\n{hint}"
            ));
        }
        Ok(Registry {
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.prefix)
    }
}

impl Registry {
    /// The name `image` gets in this registry: its path without the registry it came from
    /// (`ghcr.io/org/x:1` is `REGISTRY/org/x:1`; Docker Hub's `busybox` is `REGISTRY/busybox`),
    /// with its tag (`:latest` when it has none). An image already under it keeps its name.
    pub fn reference(&self, image: &str) -> String {
        if image.starts_with(&format!("{}/", self.prefix)) {
            return with_tag(image);
        }
        let path = match image.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
            _ => image,
        };
        let path = path.strip_prefix("library/").unwrap_or(path);
        with_tag(&format!("{}/{path}", self.prefix))
    }

    /// The repository with every image (each version's and those of its bill of materials)
    /// named in this registry, so that whoever uses it pulls them from there.
    pub fn rewrite(&self, mut repository: Repository) -> Repository {
        for module in &mut repository.components {
            for version in &mut module.versions {
                version.image = self.reference(&version.image);
                for image in &mut version.requirements.images {
                    *image = self.reference(image);
                }
            }
        }
        repository
    }
}

/// A reference with `:latest` added when it has neither tag nor digest.
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(text: &str) -> Registry {
        text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    #[test]
    fn registries_are_hosts_with_an_optional_path() {
        assert_eq!(registry("127.0.0.1:5000").to_string(), "127.0.0.1:5000");
        assert_eq!(registry("localhost/").to_string(), "localhost");
        assert_eq!(
            registry("registry.example.com/e/mirror").to_string(),
            "registry.example.com/e/mirror"
        );
        let err = "http://127.0.0.1:5000".parse::<Registry>().unwrap_err();
        assert!(
            err.contains("registries are named without one: `127.0.0.1:5000`"),
            "{err}"
        );
        let err = "myregistry".parse::<Registry>().unwrap_err();
        assert!(err.contains("must be a host"), "{err}");
        let err = "127.0.0.1:5000/Big".parse::<Registry>().unwrap_err();
        assert!(err.contains("lowercase"), "{err}");
    }

    #[test]
    fn images_are_named_under_the_registry() {
        let local = registry("127.0.0.1:5000");
        assert_eq!(
            local.reference("e-modules/azi:0.1.0"),
            "127.0.0.1:5000/e-modules/azi:0.1.0"
        );
        assert_eq!(local.reference("busybox"), "127.0.0.1:5000/busybox:latest");
        assert_eq!(
            local.reference("docker.io/library/busybox:1.36"),
            "127.0.0.1:5000/busybox:1.36"
        );
        assert_eq!(
            local.reference("ghcr.io/org/tool:2"),
            "127.0.0.1:5000/org/tool:2"
        );
        assert_eq!(
            local.reference("localhost/e-modules/azi:0.1.0"),
            "127.0.0.1:5000/e-modules/azi:0.1.0"
        );
        assert_eq!(
            local.reference("127.0.0.1:5000/e-modules/azi:0.1.0"),
            "127.0.0.1:5000/e-modules/azi:0.1.0"
        );
        assert_eq!(
            registry("r.example/m").reference("e-modules/azi:0.1.0"),
            "r.example/m/e-modules/azi:0.1.0"
        );
    }
}
