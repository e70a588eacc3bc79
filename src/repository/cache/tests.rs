//! The cache's tests: hits and misses, the matching read, and caches that must be ignored.

use super::*;
use crate::repository::ModuleSpec;
use crate::selector::Labels;

/// A repository file just large enough to be cached, with `kind: kN` on each module's first
/// version; every seventh module's label holds a quote and a non-ASCII letter, which JSON
/// escapes or keeps as written.
fn large_repository(dir: &Path) -> (PathBuf, String, usize) {
    let path = dir.join("repository.yaml");
    let mut text = String::from("version: v1\nkind: Repository\ncomponents:\n");
    let mut i = 0;
    while (text.len() as u64) < MIN_CACHED_BYTES {
        let note = if i % 7 == 0 {
            "say \\\"é\\\""
        } else {
            "plain"
        };
        text.push_str(&format!("- name: m{i}\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: img/m{i}:1\n    labels: {{kind: k{i}, note: \"{note}\"}}\n    commands: [{{name: apply, command: apply}}]\n  - version: 1.1.0\n    image: img/m{i}:1\n    limits: {{memory: 512Mi, cpus: 0.5, pids: 64}}\n    user: \"0\"\n    commands: [{{name: apply, command: apply}}]\n"));
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    (path, text, i)
}

/// Loads `path` and fills the cache; returns the load and the cache file.
fn filled(cache: &Path, path: &Path) -> (Loaded, PathBuf) {
    let mut loaded = super::super::load::load(path).unwrap();
    put_in(cache, path, &mut loaded);
    let file = file_for(cache, &key(path).unwrap());
    assert!(file.exists(), "the cache is written");
    (loaded, file)
}

fn json(repository: &Repository) -> String {
    serde_json::to_string(repository).unwrap()
}

#[test]
fn a_changed_file_misses_and_an_unchanged_one_hits() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, text, count) = large_repository(dir.path());
    assert!(get_in(&cache, &path, Want::Everything).is_none());
    let (loaded, _) = filled(&cache, &path);
    let cached = get_in(&cache, &path, Want::Everything).expect("a cached load");
    assert_eq!(cached.repository.components.len(), count);
    assert_eq!(
        json(&cached.repository),
        json(&loaded.repository),
        "the cache gives back what was loaded"
    );
    let limited = &cached.repository.components[0].versions[1];
    assert_eq!(
        limited.limits.memory.as_ref().map(|m| m.bytes()),
        Some(512 << 20)
    );
    assert_eq!(limited.user.map(|u| u.uid), Some(0));
    let bare = get_in(&cache, &path, Want::WithoutCommands).expect("a load without commands");
    assert_eq!(bare.repository.components.len(), count);
    assert!(
        bare.repository
            .entries()
            .all(|e| e.version.commands.is_empty())
    );
    std::fs::write(&path, text.replace("kind: k0,", "kind: k9,")).unwrap();
    assert!(
        get_in(&cache, &path, Want::Everything).is_none(),
        "a changed file is read again"
    );
}

#[test]
fn the_matching_read_builds_exactly_the_modules_with_a_match() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, _, _) = large_repository(dir.path());
    let (loaded, _) = filled(&cache, &path);
    for selector in [
        "kind in (k3, k7, k8)",
        "note=\"say \\\"é\\\"\"",
        "note=plain,kind notin (k1)",
        "!note",
        "nothing",
    ] {
        let selector: Selector = selector.parse().unwrap();
        let matching = get_in(&cache, &path, Want::Matching(&selector)).expect("a cached load");
        let mut expected = loaded.repository.clone();
        expected.components.retain(|module| {
            module
                .versions
                .iter()
                .any(|version| selector.matches(&version.labels))
        });
        for module in &mut expected.components {
            for version in &mut module.versions {
                version.commands = Arc::default();
            }
        }
        assert_eq!(
            json(&matching.repository),
            json(&expected),
            "the modules `{selector}` matches, with all their versions"
        );
        assert_eq!(matching.warnings, loaded.warnings);
    }
}

#[test]
fn a_truncated_damaged_or_foreign_cache_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, _, _) = large_repository(dir.path());
    let (_, file) = filled(&cache, &path);
    let good = std::fs::read(&file).unwrap();
    let selector: Selector = "kind=k3".parse().unwrap();
    let wants = [
        Want::Everything,
        Want::WithoutCommands,
        Want::Matching(&selector),
    ];
    let ignored = |bytes: &[u8], what: &str| {
        std::fs::write(&file, bytes).unwrap();
        for want in wants {
            assert!(
                get_in(&cache, &path, want).is_none(),
                "{what} is ignored ({want:?})"
            );
        }
        let lines = read::mapped(&cache, &path).and_then(|mapped| mapped.lines().map(|_| ()));
        assert!(lines.is_none(), "{what} is ignored (its lines)");
    };
    let line_ends: Vec<usize> = good
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    // Cut after a whole line (the first, the header, a module, its commands, the last but
    // one) and in the middle of lines.
    let n = line_ends.len();
    for end in [
        line_ends[0],
        line_ends[1],
        line_ends[2],
        line_ends[3],
        line_ends[n - 2],
    ] {
        ignored(&good[..end], &format!("a cache cut after byte {end}"));
    }
    for end in [10, line_ends[1] + 5, good.len() / 2, good.len() - 1] {
        ignored(&good[..end], &format!("a cache cut at byte {end}"));
    }
    // One changed byte anywhere: in the seal, the header, a module name, a label value, the
    // commands, the very end.
    let label = good.windows(6).position(|w| w == b"\"k123\"").unwrap() + 2;
    for at in [
        3,
        line_ends[0] + 30,
        line_ends[1] + 12,
        label,
        line_ends[3] - 8,
        good.len() - 2,
    ] {
        for flip in [0x01, 0x20] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            ignored(
                &bad,
                &format!("a cache with byte {at} changed by {flip:#x}"),
            );
        }
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&good[line_ends[1]..line_ends[3]]);
    ignored(&longer, "a cache with a module too many");
    // Written by another e, or in another layout: the header's key differs.
    let text = String::from_utf8(good.clone()).unwrap();
    let version = format!("\"e_version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version));
    ignored(
        text.replacen(&version, "\"e_version\":\"0.0.1\"", 1)
            .as_bytes(),
        "a cache of another e version",
    );
    // A count no file could hold sizes nothing before the seal is checked.
    let count = text.find("\"modules\":").unwrap() + "\"modules\":".len();
    let digits = text[count..].find(',').unwrap();
    let mut huge = text.clone();
    huge.replace_range(count..count + digits, "99999999999999999");
    ignored(huge.as_bytes(), "a cache with a damaged module count");
    let format = format!("\"format\":{FORMAT}");
    assert!(text.contains(&format));
    ignored(
        text.replacen(&format, "\"format\":6", 1).as_bytes(),
        "a cache of another layout",
    );
    std::fs::write(&file, &good).unwrap();
    assert!(
        get_in(&cache, &path, Want::Everything).is_some(),
        "the cache put back whole is read again"
    );
}

/// A repository file just large enough to be cached whose modules require and influence each
/// other through every kind of expression, with many equally near misses (so the order among
/// them counts), and a module whose label holds an escape.
fn related_repository(dir: &Path) -> (PathBuf, usize) {
    let path = dir.join("related.yaml");
    let mut text = String::from("version: v1\nkind: Repository\ncomponents:\n");
    let mut i = 0;
    while (text.len() as u64) < MIN_CACHED_BYTES {
        let (kind, tier, zone) = (i % 6, i % 4, i % 3);
        let next = (kind + 1) % 6;
        let quoted = if i % 11 == 0 { "\"q\\\"é\"" } else { "plain" };
        text.push_str(&format!(
            "- name: r{i}\n  type: docker\n  versions:\n  - version: 1.0.0\n    image: img/r{i}:1\n    labels: {{kind: k{kind}, tier: \"{tier}\", zone: z{zone}, note: {quoted}}}\n    requires:\n      strong:\n      - {}\n      weak:\n      - {}\n      - {}\n    influences:\n    - {}\n  - version: 2.0.0\n    latest: true\n    image: img/r{i}:2\n    labels: {{kind: k{kind}, tier: \"{tier}\", zone: z{zone}, provides: '{i}.0.0'}}\n    requires:\n      strong:\n      - {}\n",
            flow(&[("kind", "eq", &[&format!("k{next}")]), ("tier", "in", &["1", "2"])]),
            flow(&[("zone", "notin", &["z0", "z1"]), ("note", "eq", &["q\"é"])]),
            flow(&[("provides", "le", &["3.0.0"]), ("kind", "eq", &[&format!("k{kind}")])]),
            flow(&[("kind", "in", &[&format!("k{kind}"), &format!("k{next}")]), ("tier", "in", &["3"]), ("zone", "eq", &[&format!("z{zone}")]), ("missing", "doesnotexist", &[])]),
            flow(&[("kind", "eq", &[&format!("k{next}")]), ("provides", "semver", &[&format!("^{i}")])]),
        ));
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    (path, i)
}

/// A selector in the repository's flow form, from (key, operator, values) triples.
fn flow(expressions: &[(&str, &str, &[&str])]) -> String {
    let items: Vec<String> = expressions
        .iter()
        .map(|(key, operator, values)| {
            let values: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            format!(
                "{{key: {key}, operator: {operator}, values: [{}]}}",
                values.join(", ")
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// `e search --for`'s report of `spec` in `repository`, as JSON.
fn report(repository: &Repository, spec: &str) -> String {
    let spec: ModuleSpec = spec.parse().unwrap();
    let index = crate::graph::Index::new(repository);
    let owner = repository.find(&spec).unwrap();
    serde_json::to_string(&crate::commands::search::requirement_reports(&index, owner)).unwrap()
}

#[test]
fn the_read_for_a_module_gives_the_report_of_the_whole_repository() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, count) = related_repository(dir.path());
    let (loaded, _) = filled(&cache, &path);
    let (mut checked, mut with_misses) = (0, 0);
    for i in (0..count).step_by(97).chain([1, count - 1]) {
        for spec in [
            format!("r{i}"),
            format!("r{i}@1.0.0"),
            format!("r{i}@2.0.0"),
        ] {
            let whole = report(&loaded.repository, &spec);
            let from_cache = relevant::related_in(
                &cache,
                &path,
                &spec.parse().unwrap(),
                3,
                |_, found, warnings| {
                    assert_eq!(warnings, loaded.warnings);
                    let reports = crate::commands::search::found_reports(found);
                    serde_json::to_string(&reports).unwrap()
                },
            )
            .expect("a cached read");
            assert_eq!(from_cache, whole, "the report of `{spec}`");
            checked += 1;
            with_misses += usize::from(whole.contains("\"near_misses\":[{"));
        }
    }
    assert!(
        checked > 20 && with_misses > checked / 2,
        "{with_misses} of {checked}"
    );
    // No such module, no such version: the caller loads the whole repository for the error.
    for missing in ["nothing", "r1@9.9.9", "r1\"", "r"] {
        let spec = missing.parse().unwrap();
        assert!(relevant::related_in(&cache, &path, &spec, 3, |_, _, _| ()).is_none());
    }
}

#[test]
fn the_nearest_misses_kept_are_the_first_of_the_nearest() {
    let mut nearest = super::relevant::Nearest::<usize>::new(2);
    let near = |failed: usize, shared: usize| {
        let selector: Selector = (0..failed + shared)
            .map(|k| format!("k{k}=v"))
            .collect::<Vec<_>>()
            .join(",")
            .parse()
            .unwrap();
        let labels: Labels = (0..failed + shared)
            .map(|k| {
                (
                    format!("k{k}"),
                    if k < shared { "v" } else { "w" }.to_owned(),
                )
            })
            .collect();
        selector
            .nearness(|key| labels.get(key).map(String::as_str))
            .unwrap()
    };
    nearest.offer((near(2, 1), (0, 0)), 10);
    nearest.offer((near(1, 1), (1, 0)), 11);
    nearest.offer((near(1, 1), (2, 0)), 12);
    nearest.offer((near(1, 3), (3, 0)), 13);
    nearest.offer((near(3, 0), (4, 0)), 14);
    assert_eq!(nearest.kept().copied().collect::<Vec<_>>(), [13, 11]);
}

#[test]
fn the_listing_from_the_cache_is_the_listing_of_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (path, _) = related_repository(dir.path());
    let (loaded, _) = filled(&cache, &path);
    let mut from_cache: Vec<serde_json::Value> = Vec::new();
    let cached = read::mapped(&cache, &path).expect("a cached read");
    for line in cached.lines().expect("every line checks out") {
        let module = view(line).expect("every line a view");
        for version in &module.versions {
            from_cache.push(serde_json::json!({
                "module": module.name,
                "version": version.version,
                "latest": version.latest,
                "image": version.image,
                "labels": version.labels,
            }));
        }
    }
    assert_eq!(cached.warnings(), loaded.warnings);
    let from_load: Vec<serde_json::Value> = loaded
        .repository
        .entries()
        .map(|entry| serde_json::to_value(crate::repository::EntryView::from(entry)).unwrap())
        .collect();
    assert_eq!(from_cache, from_load);
    assert!(
        from_cache
            .iter()
            .any(|entry| entry["labels"]["note"] == "q\"é"),
        "an escaped label reads back unescaped"
    );
}
