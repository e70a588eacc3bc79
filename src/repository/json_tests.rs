//! Differential tests of the JSON path (`json.rs`): over generated repositories written as JSON
//! the ways tools write it, and over hand-made edge cases, it must give exactly the repository,
//! warnings or error that serde_yaml's parse of the whole text gives, and take the fast path
//! wherever the text is good.

use std::path::Path;

use super::tests::generate;
use super::*;

/// The JSON path first, as `parse` takes it.
const FAST: Paths = Paths {
    json: true,
    split_from: PARALLEL_MIN_BYTES,
    block_yaml: true,
};

/// Everything a load gives, for comparing two: the repository in full, warnings, or the error.
fn outcome(text: &str, paths: Paths) -> String {
    match parse_with(text, Path::new("r.json"), paths) {
        Ok(loaded) => format!("{:#?}\n{:#?}", loaded.repository, loaded.warnings),
        Err(err) => format!("error: {err}"),
    }
}

/// The JSON path first, in parts on every core (see `json_parts.rs`) whatever the size.
const PARTS: Paths = Paths {
    split_from: 0,
    ..FAST
};

/// Asserts that the JSON path and the whole YAML parse agree on `text`, in parts or not, and
/// returns whether the JSON reader took it (rather than leaving it to the YAML path).
fn same_as_yaml(text: &str) -> bool {
    let fast = outcome(text, FAST);
    let whole = outcome(text, Paths::WHOLE);
    assert_eq!(fast, whole, "the JSON path differs on\n{text}");
    let parts = outcome(text, PARTS);
    assert_eq!(parts, whole, "the JSON path in parts differs on\n{text}");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    super::super::json::read(text, 2).is_some()
}

/// A generated repository as JSON the way python's `json.dump` (or `yq -o json`) writes it from
/// the YAML: every scalar resolved (`latest: true`, `provides-pubips: true` become JSON
/// booleans), on one line or indented.
fn resolved_json(yaml: &str, pretty: bool) -> String {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("the YAML parses");
    if pretty {
        serde_json::to_string_pretty(&value).expect("serializes")
    } else {
        serde_json::to_string(&value).expect("serializes")
    }
}

fn generated(modules: usize) -> String {
    let mut text = Vec::new();
    generate::write_repository(modules, &mut text).expect("the generator writes to memory");
    String::from_utf8(text).expect("the generator writes UTF-8")
}

#[test]
fn generated_repositories_as_json_load_through_the_fast_path() {
    let yaml = generated(300);
    let from_yaml = outcome(&yaml, Paths::WHOLE);
    for pretty in [false, true] {
        let json = resolved_json(&yaml, pretty);
        assert!(json.contains("\"provides-pubips\":") && json.contains(": true") || !pretty);
        assert!(same_as_yaml(&json), "the fast path declined");
        // The generator writes no scalar JSON would spell otherwise: the same repository.
        assert_eq!(outcome(&json, FAST), from_yaml);
    }
    let twin = serde_json::to_string(
        &parse_with(&yaml, Path::new("r.yaml"), Paths::WHOLE)
            .expect("loads")
            .repository,
    )
    .expect("serializes");
    assert!(same_as_yaml(&twin));
}

/// A repository of one module whose first version has `fields` (JSON members, after `image`).
fn one_module(fields: &str) -> String {
    format!(
        r#"{{"version": "v1", "kind": "Repository", "components": [{{"name": "a", "type": "docker", "versions": [{{"version": "1.0.0", "image": "i"{fields}}}]}}, {{"name": "b", "type": "docker", "versions": [{{"version": "2.0.0", "image": "j"}}]}}]}}"#
    )
}

#[test]
fn json_scalars_read_as_yaml_reads_them() {
    let fast = [
        r#", "labels": {"t": true, "f": false, "i": 7, "n": -3, "z": -0, "x": 1.10, "e": 1e3, "E": 2.5E-3, "big": 123456789012345678901234567890}"#,
        r#", "latest": true"#,
        r#", "latest": false"#,
        r#", "labels": {"s": "a\"b\\c\/d\n\u00e9\t"}"#,
        r#", "labels": {"v": "1.10", "w": "true", "q": "null"}"#,
        r#", "limits": {"cpus": 0.50, "memory": 536870912, "pids": 100}"#,
        r#", "limits": {"cpus": "1.5", "memory": "512Mi", "pids": "64"}"#,
        r#", "limits": {"cpus": 1e0}"#,
        r#", "user": 1000"#,
        r##", "user": "1000:1000""##,
        r#", "mounts": ["/a", "/b"], "capabilities": ["NET_ADMIN"]"#,
        r#", "commands": [{"name": "apply", "args": [1, true, 2.50], "envs": {"A": 1.0, "B": true}, "timeout": "90s"}]"#,
        r#", "requires": {"strong": [[{"key": "kind", "operator": "in", "values": [1.10, true, "x"]}]]}"#,
        r#", "influences": [[{"key": "kind", "operator": "eq", "values": [3]}]]"#,
        r#", "workdir": null, "shared": null, "network": null"#,
    ];
    for fields in fast {
        let text = one_module(fields);
        assert!(
            same_as_yaml(&text),
            "the fast path declined {fields}: {}",
            outcome(&text, FAST)
        );
    }
    // The same numbers at the version itself.
    let text = one_module("").replace("\"1.0.0\"", "1.10");
    assert!(same_as_yaml(&text));
    assert!(
        outcome(&text, FAST).contains("raw: \"1.10\""),
        "{}",
        outcome(&text, FAST)
    );
}

#[test]
fn what_serde_json_refuses_in_one_module_is_read_by_serde_yaml() {
    // Plain string fields take any scalar in YAML: serde_json refuses these, and the module
    // alone is read by serde_yaml.
    for fields in [
        r#", "workdir": 5"#,
        r#", "shared": true"#,
        r#", "commands": [{"name": "apply", "description": 1.10, "command": false}]"#,
        r#", "labels": {"k": "v"}, "requires": {"strong": [], "weak": []}"#,
    ] {
        let text = one_module(fields);
        assert!(same_as_yaml(&text), "the fast path declined {fields}");
    }
    let head = one_module("").replace(
        "\"kind\": \"Repository\"",
        "\"kind\": \"Repository\", \"name\": 5",
    );
    assert!(same_as_yaml(&head));
}

#[test]
fn errors_in_json_are_the_whole_parse_errors() {
    let errors = [
        r#", "labels": {"k": null}"#,
        r#", "labels": {"k": [1]}"#,
        r#", "labels": {"k": {"a": 1}}"#,
        r#", "labels": {"k": "a", "k": "b"}"#,
        r#", "labels": {"bad key!": "a"}"#,
        r##", "latest": "true""##,
        r#", "latest": null"#,
        r##", "image": "x""##,
        r##", "imgae": "x""##,
        r#", "limits": {"cpus": -0}"#,
        r#", "limits": {"cpus": 0}"#,
        r#", "limits": {"memory": 1e400}"#,
        r#", "limits": {"pids": 340282366920938463463374607431768211455}"#,
        r#", "limits": {"pids": [1]}"#,
        r#", "user": -1"#,
        r##", "commands": "apply""##,
        r#", "commands": [{"name": "apply", "timeout": 90}]"#,
        r#", "commands": [{"name": "apply"}, {"name": "apply"}]"#,
        r#", "commands": [{"name": "apply", "envs": {"A=B": "x"}}]"#,
        r#", "requires": {"strong": [[{"key": "kind", "operator": "like", "values": ["a"]}]]}"#,
        r#", "requires": {"strong": [[{"key": "kind", "operator": "in", "values": [null]}]]}"#,
        r#", "requires": {"string": []}"#,
        r#", "requirements": {"files": [{"url": "ftp://x", "sha256": "0"}]}"#,
    ];
    for fields in errors {
        let text = one_module(fields);
        assert!(
            !same_as_yaml(&text) || outcome(&text, FAST).starts_with("error: "),
            "{fields}"
        );
        assert!(
            outcome(&text, FAST).starts_with("error: "),
            "no error for {fields}"
        );
    }
    // Whole-repository problems: the versions check, the head, the top level.
    let repository = one_module("");
    for text in [
        repository.replace("\"b\"", "\"a\""),
        repository
            .replace("\"2.0.0\"", "\"1.0.0\"")
            .replace("\"b\"", "\"a\""),
        repository.replace("\"v1\"", "\"v2\""),
        repository.replace("\"kind\": \"Repository\", ", ""),
        repository.replace(
            "\"kind\"",
            "\"kind\": \"Repository\", \"components\": [], \"kind\"",
        ),
        repository.replace("\"kind\"", "\"extra\": 1, \"kind\""),
        repository.replace(
            "\"versions\": [{\"version\": \"2.0.0\", \"image\": \"j\"}]",
            "\"versions\": []",
        ),
        repository.replace("\"2.0.0\"", "\"latest\""),
        format!("{repository},"),
        repository.replace("}]}]}", "}]},]}"),
    ] {
        same_as_yaml(&text);
    }
}

#[test]
fn warnings_name_the_lines_and_columns_the_whole_parse_names() {
    // A version that is not semver is a warning with its place: found in the module's own
    // text, and moved to where that text begins in the file.
    let yaml = generated(40).replace("version: 1.1.0", "version: dev");
    for pretty in [false, true] {
        let json = resolved_json(&yaml, pretty);
        assert!(same_as_yaml(&json));
        let loaded = parse_with(&json, Path::new("r.json"), FAST).expect("loads");
        assert_eq!(loaded.warnings.len(), 40, "{:?}", loaded.warnings);
        let last = &loaded.warnings[39];
        let place = last.strip_prefix("r.json:").unwrap_or_default();
        assert!(place.starts_with(|c: char| c.is_ascii_digit()), "{last}");
    }
}

#[test]
fn layout_and_encoding_do_not_change_the_answer() {
    let repository = one_module(r#", "labels": {"k": "\ud83d\ude00 ok"}"#);
    let warned = one_module("").replace("\"2.0.0\"", "\"dev\"");
    for text in [
        one_module(r#", "labels": {"k": "é ü"}"#),
        format!("\u{feff}{}", one_module("")),
        one_module("").replace(", ", ",\r\n\t"),
        one_module("").replace(", ", ",\n    "),
        warned.clone(),
        warned.replace(", ", ",\n  "),
        format!("\n\n  {warned}\n"),
        warned.replace("\"i\"", "\"ïmage ✓\""),
        warned.replace(", ", ",\r\n"),
    ] {
        assert!(same_as_yaml(&text), "the fast path declined\n{text}");
    }
    // A character outside the basic plane, escaped as JSON escapes it (python's default), is
    // one YAML refuses: serde_json's reading stands, as it did before.
    let whole = outcome(&repository, Paths::WHOLE);
    assert!(
        whole.contains("invalid Unicode character escape"),
        "{whole}"
    );
    let loaded = parse_with(&repository, Path::new("r.json"), FAST).expect("serde_json reads it");
    assert_eq!(
        loaded.repository.components[0].versions[0].labels["k"],
        "\u{1f600} ok"
    );
}
