//! The operating-system packages of a bill of materials: for a distribution and release, the
//! package names (each optionally pinned to a version) that the hosts a module manages must be
//! able to install with their own package manager, from the repository machine, with no mirror.
//!
//! Any module may list them; `e download` and `e export` resolve them, with every dependency,
//! in a container of the target release (see `offline/debian.rs`). This file only says what a
//! valid entry is; it never touches the disk.

use serde::{Deserialize, Serialize};

/// The distributions whose packages e can carry offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Debian (`.deb` packages, installed with apt-get).
    Debian,
}

impl Distribution {
    /// The word in the repository file and in paths (`debian`).
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Debian => "debian",
        }
    }
}

/// One entry of a bill of materials' `packages:`: names to install on a release.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawPackageRequirement")]
pub struct PackageRequirement {
    /// The distribution (`debian`).
    pub distribution: Distribution,
    /// The release the hosts run (`bookworm`): the packages are resolved for it.
    pub release: String,
    /// Package names, each `NAME` or `NAME=VERSION`, as apt-get takes them.
    pub names: Vec<String>,
}

/// A package requirement as written, checked by `TryFrom` so that the error names the entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackageRequirement {
    distribution: Distribution,
    release: String,
    names: Vec<String>,
}

impl TryFrom<RawPackageRequirement> for PackageRequirement {
    type Error = String;

    fn try_from(raw: RawPackageRequirement) -> Result<Self, String> {
        check_release(&raw.release)?;
        if raw.names.is_empty() {
            return Err(format!(
                "the packages for `{}` list no `names`",
                raw.release
            ));
        }
        for name in &raw.names {
            check_package(name)?;
        }
        Ok(PackageRequirement {
            distribution: raw.distribution,
            release: raw.release,
            names: raw.names,
        })
    }
}

/// Checks a release name: a codename such as `bookworm`, safe as one path segment.
pub fn check_release(release: &str) -> Result<(), String> {
    let ok = !release.is_empty()
        && release.len() <= 40
        && release.starts_with(|c: char| c.is_ascii_lowercase())
        && release
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid release `{release}`: name it by its codename, such as `bookworm`"
        ))
    }
}

/// Checks `NAME` or `NAME=VERSION` against Debian's rules for names and versions, so that
/// nothing else can reach apt-get's command line.
pub fn check_package(spec: &str) -> Result<(), String> {
    let (name, version) = match spec.split_once('=') {
        Some((name, version)) => (name, Some(version)),
        None => (spec, None),
    };
    let name_ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        });
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.starts_with(|c: char| c.is_ascii_digit())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'~' | b':'))
    });
    if name_ok && version_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid package `{spec}`: write `NAME` or `NAME=VERSION` as apt-get takes them (lowercase letters, digits, `+`, `-`, `.`)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_follow_debian() {
        for good in [
            "jq",
            "libc6",
            "g++",
            "postgresql-15",
            "jq=1.6-2.1+deb12u2",
            "a1=1:2.3~rc1",
        ] {
            check_package(good).unwrap_or_else(|err| panic!("{good}: {err}"));
        }
        for bad in [
            "",
            "j",
            "Jq",
            "jq;rm",
            "-o",
            "jq=",
            "jq=v1",
            "jq=1 2",
            "jq/bookworm",
        ] {
            assert!(check_package(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(check_release("bookworm").is_ok());
        for bad in ["", "Bookworm", "../x", "a/b", "-x"] {
            assert!(check_release(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn entries_are_checked_whole() {
        let entry: PackageRequirement =
            serde_yaml::from_str("distribution: debian\nrelease: bookworm\nnames: [jq]\n").unwrap();
        assert_eq!(entry.names, ["jq"]);
        for bad in [
            "distribution: debian\nrelease: bookworm\nnames: []\n",
            "distribution: fedora\nrelease: f40\nnames: [jq]\n",
            "distribution: debian\nrelease: bookworm\nnames: [jq]\narch: amd64\n",
        ] {
            assert!(
                serde_yaml::from_str::<PackageRequirement>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
