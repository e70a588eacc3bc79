//! Tests of the read in parts (`json_parts.rs`): wherever it answers, it must answer what
//! serde_json's read of the whole text answers, on any number of threads, and it must answer
//! for every good repository that has modules.

use serde_json::value::RawValue;

use super::*;
use crate::repository::load::tests::generate;

/// The modules of `components` as serde_json's raw values place them.
#[derive(Deserialize)]
struct Top<'s> {
    #[serde(borrow)]
    components: Vec<&'s RawValue>,
}

fn generated(modules: usize) -> String {
    let mut text = Vec::new();
    generate::write_repository(modules, &mut text).expect("the generator writes to memory");
    String::from_utf8(text).expect("the generator writes UTF-8")
}

/// The generated repository as JSON: e's model serialized one module per line (the bench's
/// twin), on one line, and indented.
fn as_json(modules: usize) -> [String; 3] {
    let yaml = generated(modules);
    let repository: Repository = serde_yaml::from_str(&yaml).expect("the generator's YAML reads");
    let lines: Vec<String> = repository
        .components
        .iter()
        .map(|module| serde_json::to_string(module).expect("serializes"))
        .collect();
    let twin = format!(
        "{{\"kind\":\"Repository\",\"name\":\"g\",\"version\":\"v1\",\"components\":[\n{}\n]}}\n",
        lines.join(",\n")
    );
    let value: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("the YAML reads");
    [
        twin,
        serde_json::to_string(&value).expect("serializes"),
        serde_json::to_string_pretty(&value).expect("serializes"),
    ]
}

/// Asserts that the read in parts gives what serde_json's whole read gives, or `None` where
/// that fails, on 1 to 7 threads; returns whether it answered.
fn same_as_whole(text: &str) -> bool {
    let whole = serde_json::from_str::<Repository>(text).map(|r| format!("{r:#?}"));
    let places = serde_json::from_str::<Top<'_>>(text).ok().map(|top| {
        top.components
            .iter()
            .map(|raw| {
                let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                start..start + raw.get().len()
            })
            .collect::<Vec<_>>()
    });
    let mut answered = None;
    for threads in 1..=7 {
        let parts = read(text, threads);
        if parts.as_ref().err() == Some(&GaveUp::Refused) {
            assert!(
                whole.is_err(),
                "refused where the whole read reads:\n{text}"
            );
        }
        let parts = parts.ok();
        match (&parts, &whole) {
            (Some(parts), Ok(whole)) => {
                assert_eq!(
                    &format!("{:#?}", parts.repository),
                    whole,
                    "{threads} threads"
                );
                assert_eq!(Some(&parts.modules), places.as_ref(), "{threads} threads");
            }
            (Some(_), Err(err)) => {
                panic!("read in {threads} parts where the whole read fails ({err}):\n{text}")
            }
            (None, _) => {}
        }
        assert_eq!(
            *answered.get_or_insert(parts.is_some()),
            parts.is_some(),
            "{threads} threads answer otherwise than 1 on\n{text}"
        );
    }
    answered.unwrap_or(false)
}

#[test]
fn generated_repositories_read_in_parts_as_they_read_whole() {
    for modules in [1, 2, 3, 17, 120] {
        for text in as_json(modules) {
            assert!(same_as_whole(&text), "declined {modules} modules");
        }
    }
}

#[test]
fn the_parts_begin_where_modules_begin() {
    let [twin, line, pretty] = as_json(120);
    for text in [&twin, &line, &pretty] {
        let first = text.find("[").expect("components") + 1;
        let first = skip_whitespace(text.as_bytes(), first);
        let places = read(text, 1).expect("reads").modules;
        for threads in 2..=7 {
            let from = first + (text.len() - first) / threads;
            let start = guess(text, from, text.len()).expect("a module begins after any place");
            assert!(
                places.iter().any(|place| place.start == start),
                "{start} begins no module"
            );
        }
    }
}

#[test]
fn a_part_at_a_wrong_guess_is_read_past() {
    let [twin, ..] = as_json(5);
    let places = read(&twin, 1).expect("reads").modules;
    // A start inside the third module (its first version) and one at the fourth module.
    let inside = places[2].start
        + twin[places[2].clone()]
            .find("{\"version\"")
            .expect("a version");
    let starts = [places[0].start, inside, places[3].start];
    let first = part(&twin, &starts, 0).expect("the first part reads");
    assert_eq!(
        first.end,
        End::Part(2),
        "read past the wrong start to the right one"
    );
    assert_eq!(first.places, places[..3]);
    // Which a part that begins there does not read as modules.
    assert!(part(&twin, &starts, 1).is_none());
    let last = part(&twin, &starts, 2).expect("the last part reads");
    assert_eq!(last.places, places[3..]);
    assert!(matches!(last.end, End::Array(end) if twin[end..].trim() == "}"));
    // Past every start: to the end of the array.
    let starts = [places[0].start, inside];
    assert!(matches!(
        part(&twin, &starts, 0).map(|p| p.end),
        Some(End::Array(_))
    ));
}

/// A small repository whose modules hold text that looks like the array's structure.
fn hostile_modules() -> Vec<String> {
    let module = |name: &str, description: &str| {
        format!(
            r#"{{"name": "{name}", "type": "docker", "versions": [{{"version": "1.0.0", "image": "i", "commands": [{{"name": "apply", "description": {description}}}]}}]}}"#
        )
    };
    vec![
        module("a", r#""plain""#),
        module(
            "b",
            r#""a,{\"name\": \"x\", \"type\": \"docker\", \"versions\": []}], \"kind\": 1}""#,
        ),
        module("c", r#""]}]}, {\"name\": \"d\"} \\\" \\\\\" [[{{ ,, }}""#),
        module("e", r#""\u005d\u007d,\u007b \ud83d\ude00 é""#),
        module("f", r#""\\""#),
        module("g", r#""line\nbreak\ttab, {\"a\": [1, 2]}""#),
    ]
}

fn repository(modules: &[String], separator: &str) -> String {
    format!(
        r#"{{"version": "v1", "kind": "Repository", "components": [{}]}}"#,
        modules.join(separator)
    )
}

#[test]
fn brackets_quotes_and_escapes_in_strings_do_not_cut_a_module() {
    let modules = hostile_modules();
    for separator in [",", ", ", ",\n", " ,\r\n\t ", "\n,\n"] {
        let text = repository(&modules, separator);
        assert!(same_as_whole(&text), "declined\n{text}");
        assert_eq!(
            read(&text, 4).expect("reads").repository.components.len(),
            6
        );
    }
}

#[test]
fn the_top_level_is_read_as_serde_json_reads_it() {
    let modules = hostile_modules();
    let text = repository(&modules, ", ");
    let body = modules.join(", ");
    // Each of these reads whole (and in parts), or fails both ways.
    let good = [
        text.clone(),
        format!(" \t\r\n{text} \n\t"),
        format!(r#"{{"components": [{body}], "kind": "Repository", "version": "v1"}}"#),
        format!(r#"{{"kind":"Repository","components":[{body}],"name":"n","version":"v1"}}"#),
        format!(
            r#"{{ "version" : "v1" , "kind" : "Repository" , "compo\u006eents" : [ {body} ] }}"#
        ),
        format!(
            r#"{{"version": "v1", "kind": "Repository", "components": [{}]}}"#,
            modules[0]
        ),
    ];
    for text in &good {
        assert!(same_as_whole(text), "declined\n{text}");
    }
    let bad = [
        format!(
            r#"{{"version": "v1", "kind": "Repository", "components": [{body}], "components": []}}"#
        ),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body},]}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body}],}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body}]}} x"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body}]}}}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body}] "name": "n"}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body}], "extra": 1}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body}], "name": 5}}"#),
        format!(r#"{{"version": "v1", "components": [{body}]}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": [{body} {body}]}}"#),
        format!(r#"{{"version": "v1", "kind": "Repository", "components": {{"a": {body}}}}}"#),
        r#"{"version": "v1", "kind": "Repository", "components": null}"#.to_owned(),
        format!(r#"{{"version": "v1", "kind": "Repository", 'components': [{body}]}}"#),
        format!("\u{feff}{text}"),
        format!("[{text}]"),
        text.replace("\"1.0.0\"", "1.0.0"),
        text.replace("\"apply\"", "\"apply\", \"name\": \"plan\""),
    ];
    for text in &bad {
        assert!(!same_as_whole(text), "read where serde_json fails:\n{text}");
    }
    // Without modules nothing is cut: left to the whole read.
    for text in [
        r#"{"version": "v1", "kind": "Repository"}"#,
        r#"{"version": "v1", "kind": "Repository", "components": []}"#,
        "{}",
        "",
        "   ",
    ] {
        let parts = read(text, 2).ok();
        if let Some(parts) = &parts {
            assert!(parts.repository.components.is_empty(), "{text}");
        }
        assert!(parts.is_none() || same_as_whole(text), "{text}");
    }
}

#[test]
fn a_truncated_text_never_reads() {
    let [twin, line, _] = as_json(6);
    for text in [twin.trim_end(), line.as_str()] {
        for end in (0..text.len() - 1)
            .step_by(29)
            .chain(text.len() - 40..text.len() - 1)
        {
            let cut = &text[..end];
            for threads in [1, 2, 3] {
                assert!(
                    read(cut, threads).is_err(),
                    "read {end} bytes on {threads} threads"
                );
            }
        }
        assert!(same_as_whole(text));
    }
}

#[test]
fn deep_nesting_fails_as_in_the_whole_read() {
    let modules = hostile_modules();
    for depth in [10, 200, 5000] {
        let deep = format!(
            r#"{{"name": "z", "type": "docker", "versions": [{{"version": "1.0.0", "image": "i", "labels": {{"k": {}1{}}}}}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let text = repository(&[modules[0].clone(), deep, modules[1].clone()], ", ");
        assert!(!same_as_whole(&text), "depth {depth}");
    }
}

#[test]
fn a_module_serde_json_refuses_is_told_from_a_top_level_it_declines() {
    let modules = hostile_modules();
    let refused = modules[3].replace("\"image\": \"i\"", "\"image\": \"i\", \"workdir\": 5");
    let cut = modules[2].replace("}]}]}", "}]}]");
    for (text, gave_up) in [
        (
            repository(&[modules[0].clone(), refused.clone()], ", "),
            GaveUp::Refused,
        ),
        (
            repository(&[refused, modules[0].clone()], ", "),
            GaveUp::Refused,
        ),
        (
            repository(&[modules[0].clone(), cut], ", "),
            GaveUp::Refused,
        ),
        (
            repository(&modules, ", ").replace("\"v1\"", "\"v2\""),
            GaveUp::Declined,
        ),
        (repository(&modules, ", ") + " x", GaveUp::Declined),
        (
            r#"{"version": "v1", "kind": "Repository"}"#.to_owned(),
            GaveUp::Declined,
        ),
    ] {
        for threads in 1..=4 {
            assert_eq!(
                read(&text, threads).err(),
                Some(gave_up),
                "{threads} threads:\n{text}"
            );
        }
        assert!(!same_as_whole(&text));
    }
}
