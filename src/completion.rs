//! Shell completion from the repository: module names, `MODULE@VERSION`, and the commands of
//! a module for `e run MODULE COMMAND`, through clap_complete's dynamic completion (the shell
//! calls `e` back with `COMPLETE=SHELL`, see `main.rs` and `e completions`).
//!
//! The repository is the one the command line being completed names (`--repository PATH`),
//! else `E_REPOSITORY`, else `repository.yaml`, as for a real run. A repository that does not
//! load completes nothing: completion never prints errors into the user's prompt.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;

use crate::repository::{self, ModuleSpec, Repository};

/// The words of the command line being completed: what the shell passed after `--`, without
/// the program's name.
fn words() -> Vec<OsString> {
    let mut args = std::env::args_os().skip_while(|arg| arg != "--");
    args.next();
    args.skip(1).collect()
}

/// The repository file the command line names.
fn repository_path(words: &[OsString]) -> PathBuf {
    let mut iter = words.iter();
    while let Some(word) = iter.next() {
        if word == "--repository" {
            if let Some(path) = iter.next() {
                return PathBuf::from(path);
            }
        } else if let Some(path) = word.to_str().and_then(|w| w.strip_prefix("--repository=")) {
            return PathBuf::from(path);
        }
    }
    std::env::var_os("E_REPOSITORY").map_or_else(|| PathBuf::from("repository.yaml"), PathBuf::from)
}

/// The repository, or `None` when it does not load.
fn load(words: &[OsString]) -> Option<Repository> {
    repository::load(&repository_path(words))
        .ok()
        .map(|loaded| loaded.repository)
}

/// Completes `MODULE` or `MODULE@VERSION`: module names, and a module's versions once `@` is
/// typed (or the name is complete).
pub fn module_spec(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let Some(repository) = load(&words()) else {
        return Vec::new();
    };
    candidates(&repository, current)
}

/// The candidates for `current` in `repository` (see [`module_spec`]).
fn candidates(repository: &Repository, current: &str) -> Vec<CompletionCandidate> {
    if let Some((name, _)) = current.split_once('@') {
        let Some(module) = repository.module(name) else {
            return Vec::new();
        };
        return module
            .versions
            .iter()
            .map(|version| {
                let mut candidate = CompletionCandidate::new(format!("{name}@{}", version.version));
                if version.latest {
                    candidate = candidate.help(Some("latest".into()));
                }
                candidate
            })
            .filter(|candidate| candidate.get_value().to_string_lossy().starts_with(current))
            .collect();
    }
    let mut found: Vec<CompletionCandidate> = repository
        .components
        .iter()
        .filter(|module| module.name.starts_with(current))
        .map(|module| {
            let kind = module.default_version().labels.get("kind").cloned();
            CompletionCandidate::new(module.name.clone()).help(kind.map(Into::into))
        })
        .collect();
    // A complete name also offers its versions.
    if let Some(module) = repository.module(current)
        && module.versions.len() > 1
    {
        found.extend(candidates(repository, &format!("{current}@")));
    }
    found
}

/// Completes the module names of the repository (for arguments that take no version).
pub fn module_name(current: &OsStr) -> Vec<CompletionCandidate> {
    module_spec(current)
        .into_iter()
        .filter(|candidate| !candidate.get_value().to_string_lossy().contains('@'))
        .collect()
}

/// Completes `COMMAND` of `e run MODULE COMMAND`: the commands the repository lists for that
/// module's version, with their descriptions.
pub fn module_command(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let words = words();
    let Some(repository) = load(&words) else {
        return Vec::new();
    };
    let Some(spec) = run_module(&words) else {
        return Vec::new();
    };
    commands(&repository, &spec, current)
}

/// The commands of `spec` in `repository` that start with `current`.
fn commands(repository: &Repository, spec: &ModuleSpec, current: &str) -> Vec<CompletionCandidate> {
    let Ok(entry) = repository.find(spec) else {
        return Vec::new();
    };
    entry
        .version
        .commands
        .iter()
        .filter(|command| command.name.starts_with(current))
        .map(|command| {
            CompletionCandidate::new(command.name.clone())
                .help(command.description.clone().map(Into::into))
        })
        .collect()
}

/// The `MODULE[@VERSION]` of `e run MODULE COMMAND` on the command line: the first word after
/// `run` that is not an option (options that take a value are skipped with it).
fn run_module(words: &[OsString]) -> Option<ModuleSpec> {
    let run = words.iter().position(|word| word == "run")?;
    let mut rest = words[run + 1..].iter();
    while let Some(word) = rest.next() {
        let word = word.to_str()?;
        if matches!(
            word,
            "--timeout"
                | "--lock-timeout"
                | "--repository"
                | "--shared"
                | "--secrets"
                | "--transfer"
        ) {
            rest.next();
        } else if !word.starts_with('-') {
            return word.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository() -> Repository {
        let text = "version: v1\nkind: Repository\ncomponents:\n\
- name: azi\n  type: docker\n  versions:\n  - version: 0.1.0\n    image: a:1\n    labels: {kind: infrastructure}\n    commands: [{name: apply, command: apply, description: makes nodes}, {name: audit, command: audit}]\n  - version: 0.2.0\n    latest: true\n    image: a:2\n    labels: {kind: infrastructure}\n    commands: [{name: apply, command: apply}, {name: backup, command: backup}]\n\
- name: bmk\n  type: docker\n  versions:\n  - version: 0.1.0\n    image: b:1\n    commands: []\n";
        repository::load::parse(text, std::path::Path::new("r.yaml"))
            .expect("loads")
            .repository
    }

    fn values(candidates: Vec<CompletionCandidate>) -> Vec<String> {
        candidates
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn modules_and_versions_are_completed() {
        let repository = repository();
        assert_eq!(values(candidates(&repository, "")), ["azi", "bmk"]);
        assert_eq!(values(candidates(&repository, "b")), ["bmk"]);
        assert_eq!(
            values(candidates(&repository, "azi")),
            ["azi", "azi@0.1.0", "azi@0.2.0"]
        );
        assert_eq!(values(candidates(&repository, "azi@0.2")), ["azi@0.2.0"]);
        assert!(candidates(&repository, "nope@").is_empty());
    }

    #[test]
    fn a_modules_commands_are_completed_for_its_version() {
        let repository = repository();
        let spec = |text: &str| text.parse::<ModuleSpec>().unwrap();
        assert_eq!(
            values(commands(&repository, &spec("azi"), "")),
            ["apply", "backup"]
        );
        assert_eq!(
            values(commands(&repository, &spec("azi@0.1.0"), "a")),
            ["apply", "audit"]
        );
        let words: Vec<OsString> = ["--shared", "s", "run", "--timeout", "5m", "azi@0.1.0", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(run_module(&words), Some(spec("azi@0.1.0")));
    }
}
