//! Each module's `metadata` answer must be exactly its labels, requires and influences in the
//! repository file at the root of the project, which e reads to choose and order modules.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::{Mapping, Value};

/// The example modules, each in its own folder and each with an entry in the repository file.
const MODULES: [&str; 7] = ["azi", "bmk", "bmm", "k8s", "rook", "nfs", "pg"];

/// The repository file at the root of the project.
fn repository_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../repository.yaml")
}

/// The first (and only) version of a module's entry in the repository file.
fn repository_entry(module: &str) -> Value {
    let path = repository_file();
    let repository: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let component = repository["components"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|component| component["name"].as_str() == Some(module))
        .unwrap_or_else(|| panic!("`{module}` is not in `{}`", path.display()));
    component["versions"][0].clone()
}

fn repository_version(module: &str) -> Mapping {
    let version = repository_entry(module);
    let mut expected = Mapping::new();
    for key in ["labels", "requires", "influences"] {
        if let Some(value) = version.get(key) {
            expected.insert(key.into(), value.clone());
        }
    }
    expected
}

fn metadata_file(module: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(module)
        .join("metadata.yaml")
}

#[test]
fn metadata_files_match_the_repository() {
    for module in MODULES {
        let path = metadata_file(module);
        let metadata: Mapping =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(metadata, repository_version(module), "{}", path.display());
    }
}

#[test]
fn the_repository_lists_every_method_of_every_module() {
    let methods = ["metadata", "init", "plan", "apply", "audit", "destroy"];
    for module in MODULES {
        let entry = repository_entry(module);
        let listed: Vec<(String, String)> = entry["commands"]
            .as_sequence()
            .unwrap_or_else(|| panic!("`{module}` lists no commands"))
            .iter()
            .map(|command| {
                let text = |key: &str| command[key].as_str().unwrap_or_default().to_owned();
                (text("name"), text("command"))
            })
            .collect();
        let expected: Vec<(String, String)> = methods
            .iter()
            .map(|method| ((*method).to_owned(), (*method).to_owned()))
            .collect();
        assert_eq!(listed, expected, "{module}");
    }
}

#[test]
fn the_modules_print_their_metadata() {
    let busybox = std::env::var_os("BUSYBOX").unwrap_or_else(|| "/bin/busybox".into());
    for module in MODULES {
        let mut command = match module {
            "azi" => Command::new(env!("CARGO_BIN_EXE_azi")),
            "bmk" => Command::new(env!("CARGO_BIN_EXE_bmk")),
            shell => {
                let mut command = Command::new(&busybox);
                command
                    .arg("sh")
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{shell}/{shell}.sh")));
                command
            }
        };
        let output = command.arg("metadata").output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{module}: {output:?}");
        let expected = std::fs::read(metadata_file(module)).unwrap();
        assert_eq!(output.stdout, expected, "{module}");
    }
}
