//! Writes a synthetic module repository, for benchmarks and for trying e on a large file.
//!
//! `cargo run --release --example generate_repository -- N OUT.yaml` writes N modules of three
//! versions each (`1.0.0`, `1.1.0` and `2.0.0`, the last one `latest`), with labels and
//! requirements shaped like those of `repository.yaml`. The output depends only on N: a
//! fixed-seed generator draws every choice, module by module, so the first thousand modules of
//! a 100,000-module file are the thousand modules of a 1,000-module file.
//!
//! `benches/search.rs` includes this file as a module, so there is one generator; it must stay
//! free of dependencies beyond std.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

/// The versions every module has, in file order; the last one is `latest`.
const VERSIONS: [&str; 3] = ["1.0.0", "1.1.0", "2.0.0"];

/// The seed of the generator: fixed, so the same N always gives the same file.
const SEED: u64 = 0x0e5e_a2c4_2024_0001;

/// One kind of module with the technologies a module of that kind is built on.
struct Kind {
    /// The `kind` label.
    name: &'static str,
    /// Words for the `name` label.
    title: &'static str,
    /// `(core-technology, what provides-<...> names, major.minor of its first version)`.
    technologies: &'static [(&'static str, &'static str, (u32, u32))],
}

/// The twelve kinds, drawn with equal odds.
const KINDS: [Kind; 12] = [
    Kind {
        name: "infrastructure",
        title: "Infrastructure",
        technologies: &[
            ("terraform", "vms", (1, 5)),
            ("ansible", "vms", (2, 14)),
            ("pulumi", "vms", (3, 90)),
        ],
    },
    Kind {
        name: "kubernetes",
        title: "Kubernetes",
        technologies: &[
            ("kubernetes", "kubernetes", (1, 18)),
            ("k3s", "kubernetes", (1, 24)),
            ("openshift", "kubernetes", (1, 26)),
        ],
    },
    Kind {
        name: "persistence",
        title: "Persistent Storage",
        technologies: &[
            ("ceph", "ceph", (17, 2)),
            ("longhorn", "longhorn", (1, 4)),
            ("nfs", "nfs", (4, 1)),
        ],
    },
    Kind {
        name: "database",
        title: "Database",
        technologies: &[
            ("postgresql", "postgresql", (14, 0)),
            ("mysql", "mysql", (8, 0)),
            ("mongodb", "mongodb", (6, 0)),
            ("cassandra", "cassandra", (4, 0)),
        ],
    },
    Kind {
        name: "monitoring",
        title: "Monitoring",
        technologies: &[
            ("prometheus", "prometheus", (2, 41)),
            ("zabbix", "zabbix", (6, 0)),
            ("datadog", "datadog", (7, 40)),
            ("victoria-metrics", "victoria-metrics", (1, 90)),
        ],
    },
    Kind {
        name: "logs-storage",
        title: "Logs Storage",
        technologies: &[
            ("elasticsearch", "elasticsearch", (8, 5)),
            ("loki", "loki", (2, 8)),
            ("opensearch", "opensearch", (2, 6)),
        ],
    },
    Kind {
        name: "stream-processor",
        title: "Streaming",
        technologies: &[
            ("apache-kafka", "kafka", (2, 5)),
            ("rabbitmq", "rabbitmq", (3, 11)),
            ("apache-pulsar", "pulsar", (2, 10)),
        ],
    },
    Kind {
        name: "load-balancer",
        title: "Load Balancer",
        technologies: &[
            ("haproxy", "haproxy", (2, 6)),
            ("nginx", "nginx", (1, 23)),
            ("envoy", "envoy", (1, 25)),
        ],
    },
    Kind {
        name: "cache",
        title: "Cache",
        technologies: &[
            ("redis", "redis", (7, 0)),
            ("memcached", "memcached", (1, 6)),
        ],
    },
    Kind {
        name: "secrets",
        title: "Secrets",
        technologies: &[("vault", "vault", (1, 12)), ("sops", "sops", (3, 7))],
    },
    Kind {
        name: "service-mesh",
        title: "Service Mesh",
        technologies: &[("istio", "istio", (1, 17)), ("linkerd", "linkerd", (2, 12))],
    },
    Kind {
        name: "ci-cd",
        title: "Delivery",
        technologies: &[
            ("jenkins", "jenkins", (2, 387)),
            ("gitlab-runner", "gitlab-runner", (15, 8)),
            ("argo-cd", "argo-cd", (2, 6)),
        ],
    },
];

/// Where infrastructure modules run.
const PROVIDERS: [(&str, &str); 4] = [
    ("azure", "Azure"),
    ("aws", "AWS"),
    ("gcp", "GCP"),
    ("on-prem", "Bare Metal"),
];

/// One match-expression as it is written in YAML: `(key, operator, values)`.
type Expression = (&'static str, &'static str, &'static [&'static str]);

/// A requirement a module may carry: the kind it selects (a module never requires its own
/// kind) and its match-expressions.
type Template = (&'static str, &'static [Expression]);

/// Strong requirements, drawn for every kind but infrastructure.
const STRONG: [Template; 6] = [
    (
        "infrastructure",
        &[
            ("kind", "eq", &["infrastructure"]),
            ("provider", "in", &["azure", "aws"]),
        ],
    ),
    ("persistence", &[("kind", "eq", &["persistence"])]),
    (
        "kubernetes",
        &[
            ("kind", "eq", &["kubernetes"]),
            ("provides-kubernetes", "semver", &[">=1.20"]),
        ],
    ),
    (
        "infrastructure",
        &[
            ("kind", "eq", &["infrastructure"]),
            ("provides-vms", "exists", &[]),
        ],
    ),
    (
        "database",
        &[
            ("kind", "eq", &["database"]),
            ("core-technology", "notin", &["mongodb", "cassandra"]),
        ],
    ),
    (
        "stream-processor",
        &[
            ("kind", "eq", &["stream-processor"]),
            ("provides-kafka", "ge", &["2.5.0"]),
        ],
    ),
];

/// Weak requirements.
const WEAK: [Template; 5] = [
    ("logs-storage", &[("kind", "eq", &["logs-storage"])]),
    (
        "monitoring",
        &[
            ("kind", "eq", &["monitoring"]),
            ("core-technology", "eq", &["prometheus"]),
        ],
    ),
    (
        "cache",
        &[
            ("kind", "eq", &["cache"]),
            ("core-technology", "in", &["redis"]),
        ],
    ),
    (
        "secrets",
        &[
            ("kind", "eq", &["secrets"]),
            ("provider", "notin", &["on-prem"]),
        ],
    ),
    (
        "load-balancer",
        &[
            ("kind", "eq", &["load-balancer"]),
            ("provides-haproxy", "exists", &[]),
        ],
    ),
];

/// Influences.
const INFLUENCES: [Template; 3] = [
    ("monitoring", &[("kind", "eq", &["monitoring"])]),
    ("load-balancer", &[("kind", "eq", &["load-balancer"])]),
    (
        "service-mesh",
        &[
            ("kind", "eq", &["service-mesh"]),
            ("core-technology", "in", &["istio", "linkerd"]),
        ],
    ),
];

/// The methods every module version answers, with what they do.
const COMMANDS: [(&str, &str); 5] = [
    (
        "metadata",
        "prints the module's labels, requires and influences",
    ),
    (
        "init",
        "writes the module's configuration to the shared directory",
    ),
    ("plan", "shows what apply would change"),
    ("apply", "makes the changes and records them in the state"),
    (
        "audit",
        "reports hand changes to the module's section of the state",
    ),
];

/// What was written, for the caller to report and to pick modules to query.
#[derive(Debug)]
pub struct Summary {
    /// Module versions written.
    pub versions: usize,
    /// The first module with strong and weak requirements and an influence, if any.
    pub module_with_requirements: Option<String>,
}

/// SplitMix64 (Steele, Lea and Flood): tiny, fast, and good enough to draw labels.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; the modulo bias is irrelevant for bounds this small.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// Up to `count` distinct templates, skipping those that select `own_kind`.
    fn pick<'t>(
        &mut self,
        templates: &'t [Template],
        own_kind: &str,
        count: usize,
    ) -> Vec<&'t Template> {
        let mut picked: Vec<&Template> = Vec::new();
        for _ in 0..count {
            let template = &templates[self.below(templates.len())];
            if template.0 != own_kind && !picked.iter().any(|p| std::ptr::eq(*p, template)) {
                picked.push(template);
            }
        }
        picked
    }
}

/// Writes a repository of `modules` modules to `out`.
pub fn write_repository(modules: usize, out: &mut impl Write) -> io::Result<Summary> {
    let mut random = SplitMix64(SEED);
    let mut summary = Summary {
        versions: 0,
        module_with_requirements: None,
    };
    writeln!(
        out,
        "# A synthetic repository of {modules} modules, written by examples/generate_repository.rs."
    )?;
    writeln!(
        out,
        "version: v1\nkind: Repository\nname: synthetic-{modules}\ncomponents:"
    )?;
    let mut text = String::new();
    for number in 0..modules {
        text.clear();
        let kind = &KINDS[random.below(KINDS.len())];
        let (technology, provided, (major, minor)) =
            kind.technologies[random.below(kind.technologies.len())];
        let provider =
            (kind.name == "infrastructure").then(|| PROVIDERS[random.below(PROVIDERS.len())]);
        let strong_count = if kind.name == "infrastructure" {
            0
        } else {
            random.below(3)
        };
        let strong = random.pick(&STRONG, kind.name, strong_count);
        let weak_count = random.below(3);
        let weak = random.pick(&WEAK, kind.name, weak_count);
        let influences_count = random.below(2);
        let influences = random.pick(&INFLUENCES, kind.name, influences_count);

        let name = format!("{technology}-{number}");
        if summary.module_with_requirements.is_none()
            && !strong.is_empty()
            && !weak.is_empty()
            && !influences.is_empty()
        {
            summary.module_with_requirements = Some(name.clone());
        }
        let title = match provider {
            Some((_, provider_title)) => format!(
                "{provider_title} {} {} {number}",
                title_case(technology),
                kind.title
            ),
            None => format!("{} {} {number}", title_case(technology), kind.title),
        };
        let initials: String = title
            .split(' ')
            .filter_map(|word| word.chars().next())
            .filter(char::is_ascii_alphabetic)
            .collect();
        let short = format!("{}{number}", initials.to_uppercase());

        writeln!(text, "  - name: {name}\n    type: docker\n    versions:")
            .expect("writing to a String cannot fail");
        for (v, version) in VERSIONS.iter().enumerate() {
            let latest = if v + 1 == VERSIONS.len() {
                "\n        latest: true"
            } else {
                ""
            };
            let provided_version = format!("{major}.{}.{}", minor as usize + v, random.below(10));
            let mut labels = format!(
                "          version: {version}\n          name: {title}\n          short: {short}\n          kind: {}\n          core-technology: {technology}\n          provides-{provided}: {provided_version}\n",
                kind.name
            );
            if let Some((provider, _)) = provider {
                writeln!(
                    labels,
                    "          provider: {provider}\n          provides-pubips: true"
                )
                .expect("writing to a String cannot fail");
            }
            writeln!(
                text,
                "      - version: {version}{latest}\n        image: e-modules/{name}:{version}\n        labels:\n{}",
                labels.trim_end()
            )
            .expect("writing to a String cannot fail");
            // The first version predates the weak requirements and influences, as a real
            // module's history would.
            let (weak, influences): (&[&Template], &[&Template]) = if v == 0 {
                (&[], &[])
            } else {
                (&weak, &influences)
            };
            if !strong.is_empty() || !weak.is_empty() {
                text.push_str("        requires:\n");
                write_selectors(&mut text, "          strong:\n", "            ", &strong);
                write_selectors(&mut text, "          weak:\n", "            ", weak);
            }
            write_selectors(&mut text, "        influences:\n", "          ", influences);
            text.push_str("        commands:\n");
            for (command, description) in COMMANDS {
                writeln!(
                    text,
                    "          - name: {command}\n            description: {description}\n            command: {command}"
                )
                .expect("writing to a String cannot fail");
            }
            summary.versions += 1;
        }
        out.write_all(text.as_bytes())?;
    }
    Ok(summary)
}

/// Appends a list of selectors under `heading`, each a list of match-expressions.
fn write_selectors(text: &mut String, heading: &str, indent: &str, selectors: &[&Template]) {
    if selectors.is_empty() {
        return;
    }
    text.push_str(heading);
    for (_, expressions) in selectors {
        for (i, (key, operator, values)) in expressions.iter().enumerate() {
            let dash = if i == 0 { "- - " } else { "  - " };
            writeln!(
                text,
                "{indent}{dash}key: {key}\n{indent}    operator: {operator}"
            )
            .expect("writing to a String cannot fail");
            if !values.is_empty() {
                let values: Vec<String> = values.iter().map(|v| quote(v)).collect();
                writeln!(text, "{indent}    values: [{}]", values.join(", "))
                    .expect("writing to a String cannot fail");
            }
        }
    }
}

/// Quotes a flow-sequence value that YAML would otherwise misread, such as `>=1.20`.
fn quote(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        value.to_owned()
    } else {
        format!("\"{value}\"")
    }
}

/// `apache-kafka` becomes `Apache Kafka`.
fn title_case(word: &str) -> String {
    word.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes a repository of `modules` modules to the file at `path`.
pub fn write_repository_file(modules: usize, path: &Path) -> io::Result<Summary> {
    let mut out = BufWriter::new(File::create(path)?);
    let summary = write_repository(modules, &mut out)?;
    out.flush()?;
    Ok(summary)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [modules, path] = args.as_slice() else {
        eprintln!("usage: generate_repository N OUT.yaml");
        return ExitCode::from(2);
    };
    let Ok(modules) = modules.parse::<usize>() else {
        eprintln!("error: N must be a number of modules, found `{modules}`");
        return ExitCode::from(2);
    };
    match write_repository_file(modules, Path::new(path)) {
        Ok(summary) => {
            eprintln!(
                "wrote {modules} modules ({} versions) to `{path}`",
                summary.versions
            );
            if let Some(module) = summary.module_with_requirements {
                eprintln!("try: e --repository {path} search --for {module}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: failed to write `{path}`: {err}");
            ExitCode::FAILURE
        }
    }
}
