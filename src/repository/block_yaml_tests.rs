//! Differential tests of the block reader against serde_yaml: on every text, the reader either
//! declines or gives exactly what serde_yaml gives, both for the model (`Module`) and for a
//! probe that records every scalar as serde_yaml resolves it (null, boolean, number, string)
//! with every mapping's keys in order. Generated repositories, a corpus of tricky items, and
//! random items within and just outside the subset (a fixed-seed generator, so a failure
//! repeats; its seed and text are in the message).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::*;
use crate::repository::model::Module;

use crate::repository::load::tests::generate;

/// A YAML value as a `Deserialize` that asks for "any" sees it.
#[derive(Debug, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Wide(String),
    /// The bits, so that two NaNs compare equal.
    Float(u64),
    Text(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Unsigned(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Signed(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
                Ok(Node::Wide(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
                Ok(Node::Wide(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v.to_bits()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Text(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(Any)
    }
}

/// What the block reader and serde_yaml make of one item.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    /// The reader gave a module (equal to serde_yaml's).
    module: bool,
    /// The reader read the text (equal to serde_yaml's probe).
    node: bool,
}

/// Checks one item both ways; panics, with `context`, when the reader gives anything
/// serde_yaml does not.
fn check(text: &str, context: &dyn fmt::Display) -> Outcome {
    let mut events = Vec::new();
    let mut outcome = Outcome::default();
    if let Some(fast) = parse_item::<Module>(text, &mut events) {
        let slow: Vec<Module> = serde_yaml::from_str(text).unwrap_or_else(|err| {
            panic!("{context}: the reader gave a module, serde_yaml fails ({err}):\n{text}")
        });
        assert_eq!(slow.len(), 1, "{context}: one item:\n{text}");
        assert_eq!(
            format!("{fast:?}"),
            format!("{:?}", slow[0]),
            "{context}: the modules differ:\n{text}"
        );
        outcome.module = true;
    }
    if let Some(fast) = parse_item::<Node>(text, &mut events) {
        let slow: Vec<Node> = serde_yaml::from_str(text).unwrap_or_else(|err| {
            panic!("{context}: the reader read it, serde_yaml fails ({err}):\n{text}")
        });
        assert_eq!(slow.len(), 1, "{context}: one item:\n{text}");
        assert_eq!(fast, slow[0], "{context}: the values differ:\n{text}");
        outcome.node = true;
    }
    outcome
}

/// The items of a generated repository's `components:`, as the split cuts them.
fn items(source: &str) -> Vec<&str> {
    let outline = crate::yaml_limits::outline(source);
    let split = super::super::split::split(source, &outline.lines).expect("a split");
    split.item_texts().collect()
}

#[test]
fn every_module_of_generated_repositories_is_read_as_serde_yaml_reads_it() {
    for modules in [1, 37, 400] {
        let mut text = Vec::new();
        generate::write_repository(modules, &mut text).expect("writes to memory");
        let text = String::from_utf8(text).expect("UTF-8");
        let items = items(&text);
        assert_eq!(items.len(), modules);
        for (n, item) in items.iter().enumerate() {
            let outcome = check(item, &format!("{modules} modules, item {n}"));
            assert!(
                outcome.module && outcome.node,
                "the reader declined a generated module:\n{item}"
            );
        }
    }
}

#[test]
fn every_module_of_the_example_repository_is_read() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("repository.yaml");
    let text = std::fs::read_to_string(path).expect("the example repository is readable");
    for item in items(&text) {
        let outcome = check(item, &"repository.yaml");
        assert!(outcome.module, "the reader declined:\n{item}");
    }
}

/// A module around `body`, lines of a version's fields at 6 spaces.
fn module_with(body: &str) -> String {
    format!(
        "  - name: m\n    type: docker\n    versions:\n      - version: 1.0.0\n        image: i\n{body}"
    )
}

/// Items the reader must read, each equal to serde_yaml's.
const READ: &[&str] = &[
    "- a\n",
    "- 'a'\n",
    "- \"a\"\n",
    "-   spaced   \n",
    "- a # comment\n",
    "- a#b\n",
    "- 1.10\n",
    "- 0x1F\n",
    "- 0o17\n",
    "- 0b101\n",
    "- 017\n",
    "- -017\n",
    "- +12\n",
    "- -12\n",
    "- 1e3\n",
    "- .inf\n",
    "- -.Inf\n",
    "- .NaN\n",
    "- 18446744073709551616\n",
    "- -9223372036854775809\n",
    "- yes\n",
    "- True\n",
    "- FALSE\n",
    "- ~\n",
    "- null\n",
    "- Null\n",
    "- NULL\n",
    "- nULL\n",
    "-\n",
    "- # only a comment\n",
    "- ''\n",
    "- 'it''s'\n",
    "- ''''\n",
    "- \"\\t\\n\\\\ \\\" \\/ \\x41 \\u00e9 \\U0001F600 \\0 \\e \\N \\_ \\L \\P\"\n",
    "- \"#not a comment\"\n",
    "- 'a: b'\n",
    "- a, b\n",
    "- a [b] {c}\n",
    "- a - b\n",
    "- -a\n",
    "- ---\n",
    "- héllo wörld ✓\n",
    "- [a, b, c]\n",
    "- []\n",
    "- [ ]\n",
    "- ['a', \"b\" , c d]\n",
    "- [1.10, ~, true, 0x1F, '', \"\"]\n",
    "- a: 1\n  b: ~\n  c:\n  'd': \"e\"\n",
    "- a:\n  - 1\n  - 2\n  b: x\n",
    "- a:\n    - 1\n    - 2\n",
    "- - a\n  - b\n",
    "- - - a\n    - b\n  - c\n",
    "-\n  a: 1\n",
    "-\n  - 1\n",
    "- a:\n    b:\n      c: d\n",
    "-   a: 1\n    b: 2\n",
    "- a: 1 # c\n  # between\n\n  b: 2\n",
    "- a: x:y\n",
    "- a:b: c\n",
    "- key with spaces: v\n",
    "- a: [x, y] # c\n",
    "- a: 'q' # c\n",
    "- a: -1\n  b: -x\n  c: --\n",
    "- \"a\": 1\n  'b c': 2\n",
    "- é: ü\n  😀: \"😀\"\n",
    "- a: b\n      # an indented comment\n  c: d\n",
    "- a: ' x '\n  b: \"  \"\n",
    "- a:\n  - b: 1\n    c: 2\n  - d\n  e: f\n",
    "- \u{a0}a \u{a0}\n",
    "- ~: 1\n  null: 2\n  1: 3\n  true: 4\n",
];

#[test]
fn the_reader_reads_the_subset_as_serde_yaml_does() {
    for text in READ {
        let outcome = check(text, &"the corpus");
        assert!(outcome.node, "the reader declined:\n{text}");
    }
}

/// Items the reader must decline: outside the subset, or errors for serde_yaml.
const DECLINED: &[&str] = &[
    "- &a x\n",
    "- *a\n",
    "- !tag x\n",
    "- !!str 1\n",
    "- |\n  text\n",
    "- >\n  text\n",
    "- a\n  continued\n",
    "- a: b\n    continued\n",
    "- 'a\n  b'\n",
    "- \"a\\\n  b\"\n",
    "- {a: 1}\n",
    "- [a, [b]]\n",
    "- [a,]\n",
    "- [a: b]\n",
    "- [a\n  ]\n",
    "- a: b: c\n",
    "- a: b:\n",
    "- a:\tb\n",
    "- a\r\n",
    "- \u{85}\n",
    "- a\u{2028}b\n",
    "- \u{feff}a\n",
    "- \u{7}\n",
    "- ? a\n  : b\n",
    "- a : b\n",
    "- a: 1\n  a: 2\n",
    "- a: 1\n  'a': 2\n",
    "- a: 1\n   b: 2\n",
    "- a: 1\n b: 2\n",
    "- a: 1\n  - b\n",
    "- a:\n  - 1\n  b\n",
    "- 'a' b\n",
    "- 'a'#c\n",
    "- \"\\q\"\n",
    "- \"\\ud800\"\n",
    "- %x\n",
    "- @x\n",
    "- `x\n",
    "- a\n- b\n",
    "---\n- a\n",
    "- a\n...\n",
    "- a: 1\n  b:\n  - c\n  - d\n  e: 2\n  - f\n",
    "a: 1\n",
    "",
    "- [a, b]: c\n",
    "- a: [b]: c\n",
    "- a: [b] c\n",
    "- a: 'b' c\n",
    "- a: \"b\":c\n",
];

#[test]
fn the_reader_declines_what_it_cannot_be_sure_of() {
    let mut events = Vec::new();
    for text in DECLINED {
        assert!(
            parse_item::<Node>(text, &mut events).is_none(),
            "the reader read:\n{text}"
        );
        check(text, &"the declined corpus");
    }
}

#[test]
fn module_fields_resolve_as_with_serde_yaml() {
    let bodies = [
        "        latest: true\n",
        "        latest: True\n",
        "        latest: 'true'\n",
        "        latest: yes\n",
        "        latest:\n",
        "        workdir: ~\n",
        "        workdir: '~'\n",
        "        workdir:\n",
        "        workdir: 017\n",
        "        network: host\n",
        "        network: \"none\"\n",
        "        network: ~\n",
        "        network: bridge\n",
        "        mounts: [/a, '/b']\n",
        "        mounts:\n        - /a\n        - ~\n",
        "        mounts:\n",
        "        labels:\n          v: 1.10\n          w: 0x1F\n          x: true\n          y: ''\n",
        "        labels:\n          v: ~\n",
        "        labels:\n          v:\n",
        "        labels:\n          a: 1\n          a: 2\n",
        "        labels:\n          Bad Key: 1\n",
        "        limits:\n          memory: 512Mi\n          cpus: 0.5\n          pids: 0x100\n",
        "        limits:\n          memory: 1e9\n          cpus: .inf\n          pids: 512\n",
        "        limits:\n          cpus: '1.50'\n          pids: ~\n",
        "        limits:\n",
        "        user: 1000\n",
        "        user: \"1000:1000\"\n",
        "        requires:\n",
        "        requires:\n          strong:\n            - - key: kind\n                operator: in\n                values: [a, 'b', \"c\"]\n",
        "        requires:\n          weak:\n          - - key: kind\n              operator: exists\n",
        "        requires:\n          strong:\n            - - key: kind\n                operator: eq\n                values: [~]\n",
        "        requires:\n          strong:\n            - []\n",
        "        influences:\n          - - key: a\n              operator: semver\n              values: [\">=1.20\"]\n",
        "        commands:\n          - name: apply\n            envs:\n              A: 1\n              B: ~\n              C: \"x\"\n            args: [-v, '--x']\n            timeout: 90s\n",
        "        commands:\n          - name: apply\n            timeout: 0s\n",
        "        commands:\n",
        "        requirements:\n          images: [a, b]\n          files:\n            - url: https://x/y\n              sha256: 0000000000000000000000000000000000000000000000000000000000000000\n",
        "        requirements:\n          packages:\n            - distribution: debian\n              release: bookworm\n              names: [curl]\n",
        "        imgae: x\n",
    ];
    let mut read = 0;
    for body in bodies {
        let text = module_with(body);
        if check(&text, &"a module field").module {
            read += 1;
        }
    }
    assert!(
        read >= 25,
        "the reader read {read} of {} modules",
        bodies.len()
    );
}

/// SplitMix64, as in the generator: a failure repeats with its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Scalars that YAML resolves in many ways, as they may be written.
const SCALARS: &[&str] = &[
    "a",
    "abc def",
    "1.0.0",
    "1.10",
    "0x1F",
    "017",
    "+1",
    "-1",
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "yes",
    "no",
    "true",
    "False",
    "~",
    "null",
    "NULL",
    "'1.10'",
    "'it''s'",
    "''",
    "\"\"",
    "\"a\\tb\"",
    "\"\\u00e9\"",
    "\"~\"",
    "x#y",
    "x # comment",
    "a, b",
    "-a",
    "e-modules/m:1.0.0",
    "https://x/y?z=1",
    "512Mi",
    "0.5",
    "90s",
    "docker",
    "host",
    "é",
    "",
];

/// Scalars outside the subset, or wrong YAML.
const ODD: &[&str] = &[
    "&a x", "*a", "!t x", "|", ">", "{a: 1}", "[a, [b]]", "a: b", "'a", "\"a", "? a", "@a", "`a",
    "%a", "a\tb", "[a,]",
];

/// A random scalar: mostly from [`SCALARS`], sometimes from [`ODD`].
fn random_scalar(random: &mut Random, odd: usize) -> String {
    if random.chance(odd) {
        random.pick(ODD).to_owned()
    } else {
        random.pick(SCALARS).to_owned()
    }
}

/// A random value for a key or entry at `indent`, written after `lead` (`key:` or `-`).
fn random_value(random: &mut Random, indent: usize, depth: usize, odd: usize, out: &mut String) {
    let step = *[2, 2, 4, 1, 3].get(random.below(5)).unwrap_or(&2);
    match random.below(if depth > 3 { 3 } else { 6 }) {
        0 | 1 => {
            let scalar = random_scalar(random, odd);
            if !scalar.is_empty() {
                out.push(' ');
            }
            out.push_str(&scalar);
            out.push('\n');
        }
        2 => {
            let count = random.below(4);
            let items: Vec<String> = (0..count)
                .map(|_| random_scalar(random, odd))
                .filter(|s| !s.is_empty())
                .collect();
            out.push_str(&format!(
                " [{}]\n",
                items.join(random.pick(&[", ", ",", " , "]))
            ));
        }
        3 => {
            out.push('\n');
            random_mapping(random, indent + step, depth + 1, odd, out);
        }
        _ => {
            out.push('\n');
            let at = if random.chance(30) {
                indent
            } else {
                indent + step
            };
            random_sequence(random, at, depth + 1, odd, out);
        }
    }
}

fn random_comment(random: &mut Random, out: &mut String) {
    if random.chance(5) {
        out.push_str(random.pick(&["\n", "# note\n", "    # indented note\n", "  \n"]));
    }
}

fn random_mapping(random: &mut Random, indent: usize, depth: usize, odd: usize, out: &mut String) {
    let keys = [
        "name", "type", "a", "'q'", "\"d\"", "key", "values", "x-y", "1", "~",
    ];
    for _ in 0..1 + random.below(4) {
        random_comment(random, out);
        out.push_str(&" ".repeat(indent));
        out.push_str(random.pick(&keys));
        out.push(':');
        random_value(random, indent, depth, odd, out);
    }
}

fn random_sequence(random: &mut Random, indent: usize, depth: usize, odd: usize, out: &mut String) {
    for _ in 0..1 + random.below(3) {
        random_comment(random, out);
        out.push_str(&" ".repeat(indent));
        out.push('-');
        if random.chance(40) {
            // A compact mapping: its first key on the entry's line.
            let mut inner = String::new();
            random_mapping(random, indent + 2, depth + 1, odd, &mut inner);
            out.push(' ');
            out.push_str(inner.trim_start_matches(' '));
        } else {
            random_value(random, indent, depth, odd, out);
        }
    }
}

/// A random module, shaped like a repository's, with random scalars in its fields.
fn random_module(random: &mut Random, odd: usize) -> String {
    let mut s = || random_scalar(random, odd);
    let (name, version, latest, image, value, values) = (s(), s(), s(), s(), s(), s());
    let (memory, command, env, description) = (s(), s(), s(), s());
    let mut text = format!(
        "  - name: {name}\n    type: docker\n    versions:\n      - version: {version}\n        latest: {latest}\n        image: {image}\n        labels:\n          kind: {value}\n          other: {values}\n        limits:\n          memory: {memory}\n        requires:\n          strong:\n            - - key: kind\n                operator: in\n                values: [{values}, {value}]\n        commands:\n          - name: {command}\n            description: {description}\n            envs:\n              A: {env}\n"
    );
    text = text.replace(": \n", ":\n");
    text
}

/// Changes one character of `text`, into one that often matters to YAML.
fn mutate(random: &mut Random, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = random.below(chars.len().max(1));
    let replacement = [
        ' ', ':', '-', '#', '\'', '"', '[', ']', '{', ',', '&', '*', '!', '|', '>', '?', '\t',
        '\n', '\\', 'x', '0',
    ][random.below(21)];
    match random.below(3) {
        0 => {
            chars.insert(at, replacement);
        }
        1 if !chars.is_empty() => {
            chars.remove(at);
        }
        _ => {
            if let Some(c) = chars.get_mut(at) {
                *c = replacement;
            }
        }
    }
    chars.into_iter().collect()
}

/// Set to a number of seeds to run the random test longer than the default 3,000.
const SEEDS_VARIABLE: &str = "E_TEST_BLOCK_YAML_SEEDS";

#[test]
fn random_items_within_and_just_outside_the_subset() {
    let seeds: u64 = std::env::var(SEEDS_VARIABLE)
        .ok()
        .and_then(|seeds| seeds.parse().ok())
        .unwrap_or(3000);
    let mut read = 0;
    let mut tried = 0;
    for seed in 0..seeds {
        let mut random = Random(seed);
        let odd = [0, 0, 5, 20][random.below(4)];
        let mut text = String::new();
        if random.chance(50) {
            text = random_module(&mut random, odd);
        } else {
            let indent = random.below(3);
            random_sequence(&mut random, indent, 0, odd, &mut text);
            // One item: cut at the second entry of the outer sequence.
            let mut lines = text.split_inclusive('\n');
            let first = lines.next().unwrap_or_default().to_owned();
            text = first
                + &lines
                    .take_while(|line| {
                        !line
                            .strip_prefix(&" ".repeat(indent))
                            .is_some_and(|rest| rest.starts_with('-'))
                    })
                    .collect::<String>();
        }
        for round in 0..3 {
            if round > 0 {
                text = mutate(&mut random, &text);
            }
            let outcome = check(&text, &format!("seed {seed}, round {round}"));
            tried += 1;
            if outcome.node {
                read += 1;
            }
        }
    }
    // The test is worth something only if the reader reads a good share of the texts.
    assert!(read * 4 > tried, "the reader read {read} of {tried} texts");
}
