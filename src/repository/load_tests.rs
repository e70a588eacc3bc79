//! Tests of the faster paths of `load.rs`: the JSON path and the parallel parse must give the
//! repository, warnings and errors the whole document's parse gives.

use std::path::Path;

use super::*;

#[path = "../../examples/generate_repository.rs"]
#[expect(
    dead_code,
    reason = "the tests use the generator, not its command line"
)]
pub(crate) mod generate;

/// Always split, whatever the size; each module read by the block reader first.
const SPLIT: Paths = Paths {
    json: false,
    split_from: 0,
    block_yaml: true,
};

/// Always split, each module read by serde_yaml (the block reader off).
const SPLIT_SERDE: Paths = Paths {
    json: false,
    split_from: 0,
    block_yaml: false,
};

/// Only the JSON path, else the whole parse.
const JSON: Paths = Paths {
    json: true,
    split_from: usize::MAX,
    block_yaml: false,
};

fn generated(modules: usize) -> String {
    let mut text = Vec::new();
    generate::write_repository(modules, &mut text).expect("the generator writes to memory");
    String::from_utf8(text).expect("the generator writes UTF-8")
}

fn example_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("repository.yaml");
    std::fs::read_to_string(path).expect("the example repository is readable")
}

/// A repository as JSON, the way the cache and `e info -o json` write it.
fn as_json(repository: &Repository) -> String {
    serde_json::to_string(repository).expect("a repository serializes")
}

fn load(text: &str, paths: Paths) -> Result<Loaded, String> {
    parse_with(text, Path::new("r.yaml"), paths).map_err(|err| err.to_string())
}

#[test]
fn a_json_repository_loads_the_same_repository_as_its_yaml_twin() {
    for yaml in [example_text(), generated(40)] {
        let from_yaml = load(&yaml, Paths::WHOLE).expect("the YAML loads");
        let json = serde_json::to_string_pretty(&from_yaml.repository).expect("serializes");
        let fast = parse_json(&json, Path::new("r.json"), 0)
            .expect("the JSON path takes a JSON text")
            .expect("the JSON loads");
        let slow = load(&json, Paths::WHOLE).expect("serde_yaml reads the JSON too");
        assert_eq!(as_json(&fast.repository), as_json(&from_yaml.repository));
        assert_eq!(as_json(&slow.repository), as_json(&from_yaml.repository));
        assert_eq!(fast.warnings, slow.warnings);
    }
    assert!(parse_json("version: v1\n", Path::new("r.yaml"), 0).is_none());
}

#[test]
fn json_numbers_keep_their_spelling_as_in_yaml() {
    // A label value written as a number keeps its spelling, as in YAML: serde_json hands the
    // JSON path the text `1.10`, not the number 1.1.
    let text = r#"{"version": "v1", "kind": "Repository", "components": [{"name": "a", "type": "docker", "versions": [{"version": "1.0.0", "image": "i", "labels": {"v": 1.10}}]}]}"#;
    let loaded = parse_json(text, Path::new("r.json"), 0)
        .expect("the JSON path reads it")
        .expect("it loads");
    let labels = &loaded.repository.components[0].versions[0].labels;
    assert_eq!(labels.get("v").map(String::as_str), Some("1.10"));
    // YAML that begins like JSON but is not: a comment.
    let commented = format!("{text} # modules\n");
    assert!(parse_json(&commented, Path::new("r.json"), 0).is_none());
    assert!(load(&commented, JSON).is_ok());
}

#[test]
fn errors_in_json_are_reported_as_for_yaml() {
    let text = "{\n  \"version\": \"v1\",\n  \"kind\": \"Repository\",\n  \"components\": [\n    {\"name\": \"a\", \"type\": \"docker\", \"versions\": [{\"version\": \"1\", \"image\": \"i\"}]},\n    {\"name\": \"b\", \"type\": \"docker\", \"versions\": [{\"version\": \"1\", \"imgae\": \"i\"}]}\n  ]\n}\n";
    let err = load(text, JSON).expect_err("an unknown field");
    assert_eq!(err, load(text, Paths::WHOLE).expect_err("an unknown field"));
    assert!(
        err.starts_with("r.yaml:6:") && err.contains("module `b`"),
        "{err}"
    );
    let twice = text
        .replace("\"name\": \"b\"", "\"name\": \"a\"")
        .replace("imgae", "image");
    let err = load(&twice, JSON).expect_err("a module defined twice");
    assert_eq!(err, load(&twice, Paths::WHOLE).expect_err("defined twice"));
    assert!(err.contains("defined twice"), "{err}");
}

#[test]
fn the_limits_hold_on_the_json_path() {
    let deep = |depth: usize| {
        format!(
            "{{\"version\": \"v1\", \"kind\": \"Repository\", \"components\": [{{\"name\": \"a\", \"type\": \"docker\", \"versions\": [{{\"version\": \"1\", \"image\": \"i\", \"labels\": {{\"k\": {}1{}}}}}]}}]}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let err = load(&deep(100), JSON).expect_err("too deep");
    assert!(
        err.starts_with("r.yaml:1:") && err.contains("brackets nest more than 64 levels deep"),
        "{err}"
    );
    // A megabyte of brackets is refused at once, by both paths (serde_yaml alone would take
    // minutes, see `yaml_limits.rs`).
    let started = std::time::Instant::now();
    let err = load(&deep(1 << 20), JSON).expect_err("too deep");
    assert!(err.contains("brackets nest more than 64"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn the_parallel_parse_gives_the_whole_parse_repository() {
    for yaml in [example_text(), generated(120)] {
        let outline = crate::yaml_limits::outline(&yaml);
        let split = super::super::split::split(&yaml, &outline.lines).expect("a split");
        let whole = load(&yaml, Paths::WHOLE).expect("the YAML loads");
        for fast in [false, true] {
            let parallel = split.parse(3, fast).expect("every module parses alone");
            assert_eq!(as_json(&parallel), as_json(&whole.repository));
        }
        for paths in [SPLIT, SPLIT_SERDE] {
            let through_load = load(&yaml, paths).expect("the YAML loads");
            assert_eq!(
                as_json(&through_load.repository),
                as_json(&whole.repository)
            );
        }
    }
    // Versions with equal commands share them, as after the whole parse.
    let generated = load(&generated(10), SPLIT).expect("loads");
    let module = &generated.repository.components[0];
    assert!(std::sync::Arc::ptr_eq(
        &module.versions[0].commands,
        &module.versions[1].commands
    ));
}

/// The generated text with `old` replaced by `new` in module `#n` (from 1).
fn change_module(text: &str, n: usize, old: &str, new: &str) -> (String, usize) {
    let starts: Vec<usize> = text
        .match_indices("\n  - name: ")
        .map(|(i, _)| i + 1)
        .collect();
    let start = starts[n - 1];
    let at = start + text[start..].find(old).expect("the module has the text");
    let line = text[..at].matches('\n').count() + 1;
    (
        format!("{}{new}{}", &text[..at], &text[at + old.len()..]),
        line,
    )
}

#[test]
fn an_error_in_module_n_of_a_parallel_parse_names_its_line() {
    let text = generated(120);
    let (broken, line) = change_module(&text, 97, "    image:", "    imgae:");
    let err = load(&broken, SPLIT).expect_err("an unknown field");
    assert_eq!(
        err,
        load(&broken, Paths::WHOLE).expect_err("an unknown field")
    );
    assert!(
        err.starts_with(&format!("r.yaml:{line}:")) && err.contains("unknown field `imgae`"),
        "line {line}: {err}"
    );
    // Errors found after parsing are located in the module's own text.
    let (twice, line) = change_module(
        &text,
        110,
        &format!("- name: {}\n", module_name(&text, 110)),
        &format!("- name: {}\n", module_name(&text, 4)),
    );
    let err = load(&twice, SPLIT).expect_err("a module defined twice");
    assert_eq!(err, load(&twice, Paths::WHOLE).expect_err("defined twice"));
    assert!(
        err.starts_with(&format!("r.yaml:{line}:")) && err.contains("items 4 and 110"),
        "line {line}: {err}"
    );
}

/// The name of module `#n` (from 1) of a generated text.
fn module_name(text: &str, n: usize) -> String {
    let (at, _) = text
        .match_indices("\n  - name: ")
        .nth(n - 1)
        .expect("the module exists");
    let rest = &text[at + "\n  - name: ".len()..];
    rest[..rest.find('\n').expect("a line")].to_owned()
}

#[test]
fn warnings_of_a_parallel_parse_name_their_lines() {
    let text = generated(120);
    let (dev, line) = change_module(&text, 77, "version: 1.1.0", "version: dev");
    let split = load(&dev, SPLIT).expect("loads with a warning");
    assert_eq!(
        split.warnings,
        load(&dev, Paths::WHOLE).expect("loads").warnings
    );
    assert_eq!(split.warnings.len(), 1);
    assert!(
        split.warnings[0].starts_with(&format!("r.yaml:{line}:")),
        "line {line}: {:?}",
        split.warnings
    );
}

#[test]
fn the_limits_hold_on_the_parallel_path() {
    let text = generated(120);
    let deep = format!("k: {}1{}", "[".repeat(100), "]".repeat(100));
    let (broken, line) = change_module(&text, 88, "kind: ", &format!("{deep}\n          kind: "));
    let err = load(&broken, SPLIT).expect_err("too deep");
    assert_eq!(err, load(&broken, Paths::WHOLE).expect_err("too deep"));
    assert!(
        err.starts_with(&format!("r.yaml:{line}:")) && err.contains("brackets nest"),
        "line {line}: {err}"
    );
    // Aliases may cross modules: the whole document is parsed, and serde_yaml resolves them.
    let (aliased, _) = change_module(&text, 2, "type: docker", "type: &t docker");
    let (aliased, _) = change_module(&aliased, 9, "type: docker", "type: *t");
    let loaded = load(&aliased, SPLIT).expect("an alias across modules loads");
    assert_eq!(
        as_json(&loaded.repository),
        as_json(&load(&text, Paths::WHOLE).expect("loads").repository)
    );
}

#[test]
fn errors_are_those_of_the_whole_parse_with_the_block_reader_on_or_off() {
    let text = generated(120);
    let breaks = [
        ("    image:", "    imgae:"),
        ("operator: eq", "operator: equals"),
        ("kind: ", "Bad Key: x\n          kind: "),
        ("kind: ", "kind: x\n          kind: "),
        (
            "        commands:",
            "        limits:\n          memory: 512m\n        commands:",
        ),
        (
            "        commands:",
            "        limits:\n          cpus: 0x\n        commands:",
        ),
        ("        commands:", "        user: root\n        commands:"),
        ("command: apply", "command: apply\n            timeout: 0s"),
        ("image: e-modules", "image: ~\n        workdir: e-modules"),
        ("latest: true", "latest: yes"),
        ("type: docker", "type: podman"),
        ("name: ", "name: 'unclosed\n"),
        ("    type: docker", "\ttype: docker"),
        ("values: [", "values: [[], "),
        ("values: [", "values: {a: "),
        ("- version: 1.1.0", "- version: ''"),
        ("- version: 1.1.0", "- version: 1.0.0"),
        (
            "operator: exists",
            "operator: exists\n                values: [x]",
        ),
    ];
    let bodies: Vec<&str> = text.split("\n  - name: ").skip(1).collect();
    for (n, (old, new)) in breaks.iter().enumerate() {
        // A module from #40 on that has the text to break, a different one for each break.
        let module = (40 + n * 4..=bodies.len())
            .find(|&m| bodies[m - 1].contains(old))
            .unwrap_or_else(|| panic!("no module has `{old}`"));
        let (broken, _) = change_module(&text, module, old, new);
        let whole = load(&broken, Paths::WHOLE).expect_err("a broken module");
        for (paths, name) in [(SPLIT, "block reader"), (SPLIT_SERDE, "serde_yaml")] {
            assert_eq!(
                load(&broken, paths).expect_err("a broken module"),
                whole,
                "{name}: `{old}` -> `{new}`"
            );
        }
    }
}
