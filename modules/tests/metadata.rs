//! Each module's `metadata` answer must be exactly its labels, requires and influences in the
//! repository file at the root of the project, which e reads to choose and order modules.

use std::path::Path;
use std::process::Command;

use serde_yaml::{Mapping, Value};

fn repository_version(module: &str) -> Mapping {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../repository.yaml");
    let repository: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let component = repository["components"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|component| component["name"].as_str() == Some(module))
        .unwrap_or_else(|| panic!("`{module}` is not in `{}`", path.display()));
    let version = &component["versions"][0];
    let mut expected = Mapping::new();
    for key in ["labels", "requires", "influences"] {
        if let Some(value) = version.get(key) {
            expected.insert(key.into(), value.clone());
        }
    }
    expected
}

#[test]
fn metadata_files_match_the_repository() {
    for module in ["azi", "bmk", "bmm"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(module)
            .join("metadata.yaml");
        let metadata: Mapping =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(metadata, repository_version(module), "{}", path.display());
    }
}

#[test]
fn the_binaries_print_their_metadata() {
    for (module, program) in [
        ("azi", env!("CARGO_BIN_EXE_azi")),
        ("bmk", env!("CARGO_BIN_EXE_bmk")),
    ] {
        let output = Command::new(program).arg("metadata").output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        let expected = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(module)
                .join("metadata.yaml"),
        )
        .unwrap();
        assert_eq!(output.stdout, expected, "{module}");
    }
}
