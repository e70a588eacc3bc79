//! Unit tests of `check.rs`: each rule, on trees shaped like a real shared directory.

use super::*;

const BASE_STATE: &str = "# written by hand, kept as is\nazi:\n  status: applied\n  nodes: [{name: n1, privateIP: 10.0.0.1}]\nbmk:\n  status: applied\n";

fn base() -> Tree {
    let mut tree = Tree::default();
    tree.insert_file("state.yml", BASE_STATE.as_bytes().to_vec(), 0o644);
    tree.insert_file("bmk-config.yml", b"brokers: 3\n".to_vec(), 0o644);
    tree.insert_file(
        ".e/requirements/bmk.json",
        br#"{"module": "bmk"}"#.to_vec(),
        0o444,
    );
    tree
}

fn with_state(state: &str) -> Tree {
    let mut tree = base();
    tree.insert_file("state.yml", state.as_bytes().to_vec(), 0o644);
    tree
}

fn apply(module: &str) -> Rules<'_> {
    Rules {
        module,
        method: "apply",
        read_only: false,
    }
}

fn refused(result: &Tree, rules: &Rules) -> String {
    check(&base(), result, rules).unwrap_err().to_string()
}

#[test]
fn the_same_tree_is_unchanged() {
    assert_eq!(
        check(&base(), &base(), &apply("bmk")),
        Ok(Verdict::Unchanged)
    );
    let plan = Rules {
        read_only: true,
        method: "plan",
        ..apply("bmk")
    };
    assert_eq!(check(&base(), &base(), &plan), Ok(Verdict::Unchanged));
}

#[test]
fn a_module_may_change_other_sections_and_files() {
    let mut result = with_state(
        "azi:\n  status: applied\n  nodes: [{name: n1, privateIP: 10.0.0.1, kafka: true}]\nbmk:\n  status: installed\nbmm: {}\n",
    );
    result.insert_file("bmk/out/brokers.txt", b"b1\n".to_vec(), 0o600);
    result.entries.remove("bmk-config.yml");
    let verdict = check(&base(), &result, &apply("bmk")).unwrap();
    assert_eq!(
        verdict,
        Verdict::Changed(Changes {
            written: vec![
                "bmk".into(),
                "bmk/out".into(),
                "bmk/out/brokers.txt".into(),
                "state.yml".into()
            ],
            removed: vec!["bmk-config.yml".into()],
            sections: vec!["azi".into(), "bmk".into(), "bmm".into()],
        })
    );
}

#[test]
fn a_comment_changed_writes_the_file_but_no_section() {
    let result = with_state(&BASE_STATE.replace("by hand", "by someone"));
    let Verdict::Changed(changes) = check(&base(), &result, &apply("bmk")).unwrap() else {
        panic!("changed");
    };
    assert_eq!(changes.written, ["state.yml"]);
    assert!(changes.sections.is_empty());
}

#[test]
fn nothing_may_be_written_under_e() {
    let mut added = base();
    added.insert_file(".e/planted", b"x".to_vec(), 0o644);
    assert_eq!(
        refused(&added, &apply("bmk")),
        "`.e/planted` was added by `apply`, but nothing may be written under `.e/`: it is e's own area"
    );
    let mut changed = base();
    changed.insert_file(".e/requirements/bmk.json", b"{}".to_vec(), 0o444);
    assert!(
        refused(&changed, &apply("bmk")).starts_with("`.e/requirements/bmk.json` was changed by"),
    );
    let mut chmod = base();
    chmod.insert_file(
        ".e/requirements/bmk.json",
        br#"{"module": "bmk"}"#.to_vec(),
        0o666,
    );
    assert!(refused(&chmod, &apply("bmk")).contains("changed mode by `apply`"));
    let removed = base().without(".e");
    assert!(refused(&removed, &apply("bmk")).starts_with("`.e` was removed by `apply`"));
    let mut replaced = base().without(".e");
    replaced.insert_file(".e", b"a file".to_vec(), 0o644);
    assert!(refused(&replaced, &apply("bmk")).starts_with("`.e` was replaced by"));
}

#[test]
fn read_only_methods_change_nothing() {
    let mut result = base();
    result.insert_file("bmk-config.yml", b"brokers: 4\n".to_vec(), 0o644);
    result.insert_file("zzz", b"late".to_vec(), 0o644);
    for method in ["metadata", "plan", "audit"] {
        let rules = Rules {
            module: "bmk",
            method,
            read_only: true,
        };
        assert_eq!(
            refused(&result, &rules),
            format!(
                "`bmk-config.yml` was changed, but `{method}` must not change the shared directory"
            )
        );
    }
    // Even a valid state with the same sections.
    let rules = Rules {
        read_only: true,
        method: "plan",
        ..apply("bmk")
    };
    assert!(
        refused(&with_state("azi: {}\nbmk: {}\n"), &rules).starts_with("`state.yml` was changed")
    );
}

#[test]
fn another_module_s_section_may_not_be_deleted() {
    let result = with_state("bmk:\n  status: applied\n");
    assert_eq!(
        refused(&result, &apply("bmk")),
        "`state.yml` lost the section `azi`: module `bmk` may change other modules' sections but not delete them"
    );
    let both = with_state("other: 1\n");
    assert!(refused(&both, &apply("k8s")).contains("lost the sections `azi`, `bmk`: module `k8s`"));
}

#[test]
fn a_module_may_delete_its_own_section() {
    let result =
        with_state("azi:\n  status: applied\n  nodes: [{name: n1, privateIP: 10.0.0.1}]\n");
    let destroy = Rules {
        method: "destroy",
        ..apply("bmk")
    };
    let Verdict::Changed(changes) = check(&base(), &result, &destroy).unwrap() else {
        panic!("changed");
    };
    assert_eq!(changes.sections, ["bmk"]);
}

#[test]
fn the_state_may_not_be_emptied_of_other_sections() {
    for empty in ["", "  \n", "# nothing left\n", "---\n", "{}\n"] {
        assert_eq!(
            refused(&with_state(empty), &apply("bmk")),
            "`state.yml` is empty after module `bmk` ran `apply`, but it held the section `azi`: a module may not empty the state",
            "{empty:?}"
        );
    }
    let gone = base().without("state.yml");
    assert!(refused(&gone, &apply("bmk")).starts_with("`state.yml` is gone after module `bmk`"));
    // Alone in the state, a module may empty it (destroy) or remove it.
    let mut alone = base();
    alone.insert_file("state.yml", b"bmk: {status: applied}\n".to_vec(), 0o644);
    let mut emptied = alone.clone();
    emptied.insert_file("state.yml", Vec::new(), 0o644);
    assert!(check(&alone, &emptied, &apply("bmk")).is_ok());
    assert!(check(&alone, &alone.without("state.yml"), &apply("bmk")).is_ok());
    // A first state where there was none.
    let first = base().without("state.yml");
    assert!(check(&first, &base(), &apply("azi")).is_ok());
}

#[test]
fn a_state_that_is_not_a_bounded_yaml_mapping_is_refused() {
    let mut block = String::new();
    for level in 0..100 {
        block.push_str(&format!("{}a:\n", " ".repeat(level)));
    }
    let mut bomb = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let cases: Vec<(String, &str)> = vec![
        (
            "- a\n- b\n".into(),
            "is not a YAML mapping of module sections",
        ),
        (
            "just text\n".into(),
            "is not a YAML mapping of module sections",
        ),
        ("azi: [unclosed\n".into(), "is not valid YAML: "),
        ("azi: 1\nazi: 2\n".into(), "is not valid YAML: "),
        (
            "azi: 1\n---\nbmk: 2\n".into(),
            "holds several YAML documents; the state is one mapping",
        ),
        (
            format!("azi: {}", "[".repeat(1000)),
            "is refused before parsing: brackets nest more than 64 levels deep at line 1, column 70",
        ),
        (
            block,
            "is refused before parsing: indented blocks nest more than 64 levels deep at line 65, column 65",
        ),
        (bomb, "expands YAML aliases to more than 1000000 nodes"),
    ];
    for (state, expected) in cases {
        let err = refused(&with_state(&state), &apply("bmk"));
        assert!(
            err.starts_with(&format!("`state.yml` {expected}")),
            "{expected}:\n{err}"
        );
    }
    let mut bytes = BASE_STATE.as_bytes().to_vec();
    bytes.extend_from_slice(b"bmm: \xff\n");
    let mut result = base();
    result.insert_file("state.yml", bytes, 0o644);
    assert_eq!(
        refused(&result, &apply("bmm")),
        "`state.yml` is not valid UTF-8 (line 7, column 6)"
    );
    let mut result = base();
    result.insert_file("state.yml/x", vec![], 0o644);
    assert_eq!(
        refused(&result, &apply("bmm")),
        "`state.yml` is a directory, not a regular file"
    );
}

#[test]
fn parse_state_bounds_size_and_keeps_empty_documents_empty() {
    for empty in ["", "\n\n", "# only a comment\n", "---\n", "~\n"] {
        assert_eq!(
            parse_state(empty.as_bytes()),
            Ok(serde_yaml::Mapping::new()),
            "{empty:?}"
        );
    }
    let huge = vec![b' '; Limits::DEFAULT.max_state_bytes as usize + 1];
    assert_eq!(
        parse_state(&huge),
        Err("is 16777217 bytes, over the limit of 16 MiB for the state".to_owned())
    );
    let aliased = parse_state(b"base: &b {size: 3}\nazi: *b\n").unwrap();
    assert_eq!(aliased.len(), 2, "a few aliases are fine");
}

#[test]
fn a_byte_order_mark_is_no_content_and_a_tag_is_refused() {
    let marked = parse_state("\u{feff}azi:\n  status: applied\n".as_bytes()).unwrap();
    assert_eq!(marked.len(), 1);
    let err = parse_state(b"azi:\n  size: !!int 3\n").unwrap_err();
    assert!(
        err.starts_with("is refused: the YAML tag `!!int` is not allowed")
            && err.ends_with("(line 2, column 9)"),
        "{err}"
    );
    // A `!` that only continues a plain scalar is no tag.
    assert!(parse_state(b"azi:\n  note: it works\n    !really\n").is_ok());
}

#[test]
fn large_states_are_checked_the_same_on_two_threads() {
    let mut big = String::from(BASE_STATE);
    big.push_str("k8s:\n  nodes:\n");
    while big.len() < 2 * PARALLEL_FROM {
        big.push_str("    - {name: node, privateIP: 10.0.0.1, role: worker}\n");
    }
    let mut base = base();
    base.insert_file("state.yml", big.clone().into_bytes(), 0o644);
    let mut added = base.clone();
    added.insert_file("state.yml", format!("{big}bmm: {{}}\n").into_bytes(), 0o644);
    let Verdict::Changed(changes) = check(&base, &added, &apply("bmm")).unwrap() else {
        panic!("changed");
    };
    assert_eq!(changes.sections, ["bmm"]);
    let mut deleted = base.clone();
    let without_k8s = &big[..big.find("k8s:").unwrap()];
    deleted.insert_file("state.yml", without_k8s.as_bytes().to_vec(), 0o644);
    let err = check(&base, &deleted, &apply("bmm"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("`state.yml` lost the section `k8s`"),
        "{err}"
    );
}
