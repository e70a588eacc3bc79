//! The dependency graph between module versions, and resolution of a module's strong
//! requirements into an ordered list of module versions to install.
//!
//! Nodes are module versions; an edge goes from a module version to every module version that
//! satisfies one of its requirements, tagged strong, weak or influences with the requirement's
//! index. Pure: no disk, no engine.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::repository::{Entry, Repository};
use crate::selector::{Nearness, Operator, Selector};

/// How one module version relates to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Must be installed first.
    Strong,
    /// Used when present.
    Weak,
    /// Is changed by applying the owner.
    Influences,
}

impl Relation {
    /// The word used in output.
    pub fn name(self) -> &'static str {
        match self {
            Relation::Strong => "strong",
            Relation::Weak => "weak",
            Relation::Influences => "influences",
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One requirement of a module version: a selector with its relation and position.
#[derive(Debug, Clone, Copy)]
pub struct Requirement<'r> {
    /// Strong, weak or influences.
    pub relation: Relation,
    /// Its index in the owner's list for that relation.
    pub index: usize,
    /// What it selects.
    pub selector: &'r Selector,
}

/// The requirements of a version in a fixed order: strong, weak, influences.
pub fn requirements(entry: Entry<'_>) -> Vec<Requirement<'_>> {
    let version = entry.version;
    let lists = [
        (Relation::Strong, &version.requires.strong),
        (Relation::Weak, &version.requires.weak),
        (Relation::Influences, &version.influences),
    ];
    lists
        .into_iter()
        .flat_map(|(relation, list)| {
            list.iter()
                .enumerate()
                .map(move |(index, selector)| Requirement {
                    relation,
                    index,
                    selector,
                })
        })
        .collect()
}

/// A module version that does not satisfy a requirement, with the expressions it fails.
#[derive(Debug, Clone)]
pub struct Miss<'r> {
    /// The module version.
    pub entry: Entry<'r>,
    /// The expressions it fails, in command-line form.
    pub failed: Vec<String>,
}

/// A fast hash for the label index: its keys are short strings from a trusted file, so
/// SipHash's protection against crafted collisions buys nothing and costs a tenth of a search.
#[derive(Default)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Every module version of a repository, indexed by label for fast selection.
///
/// The index of a label key is built the first time a selector asks about that key: a search
/// asks about one or two keys, and indexing every label of a large repository up front was a
/// tenth of a cached search.
pub struct Index<'r> {
    entries: Vec<Entry<'r>>,
    by_label: Mutex<FastMap<String, Arc<ByValue>>>,
}

/// The positions of the versions that carry one label key, by a hash of the label's value:
/// two values may share a hash, so a lookup finds a superset of the versions with a value,
/// which [`Index::select`] filters anyway. (Keeping the values' text would tie the map to the
/// repository's lifetime, which a `Mutex` cannot shorten.)
type ByValue = FastMap<u64, Vec<usize>>;

/// The hash a label value is indexed by.
fn value_hash(value: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<FxHasher>::default().hash_one(value)
}

impl<'r> Index<'r> {
    /// Indexes every module version of the repository.
    pub fn new(repository: &'r Repository) -> Index<'r> {
        Index {
            entries: repository.entries().collect(),
            by_label: Mutex::default(),
        }
    }

    /// The versions that carry the label `key`, by the hash of its value; empty if none does.
    fn by_value(&self, key: &str) -> Arc<ByValue> {
        let mut by_label = self
            .by_label
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(by_value) = by_label.get(key) {
            return Arc::clone(by_value);
        }
        let mut by_value = ByValue::default();
        for (i, entry) in self.entries.iter().enumerate() {
            if let Some(value) = entry.version.labels.get(key) {
                by_value.entry(value_hash(value)).or_default().push(i);
            }
        }
        let by_value = Arc::new(by_value);
        by_label.insert(key.to_owned(), Arc::clone(&by_value));
        by_value
    }

    /// Every module version, in repository order.
    pub fn entries(&self) -> &[Entry<'r>] {
        &self.entries
    }

    /// The positions of the versions that could match: a superset of the matches, found from
    /// the most selective expression the index can answer.
    fn narrow(&self, selector: &Selector) -> Option<Vec<usize>> {
        let mut best: Option<Vec<usize>> = None;
        for expression in selector.expressions() {
            if matches!(
                expression.operator(),
                Operator::Ne | Operator::NotIn | Operator::DoesNotExist
            ) {
                continue;
            }
            let by_value = self.by_value(expression.key().as_str());
            let values = Some(&*by_value).filter(|v| !v.is_empty());
            let found: Vec<usize> = match expression.operator() {
                Operator::Eq | Operator::In => {
                    let mut found: Vec<usize> = expression
                        .values()
                        .iter()
                        .filter_map(|v| values.and_then(|by_value| by_value.get(&value_hash(v))))
                        .flatten()
                        .copied()
                        .collect();
                    found.sort_unstable();
                    found.dedup();
                    found
                }
                Operator::Exists
                | Operator::Gt
                | Operator::Ge
                | Operator::Lt
                | Operator::Le
                | Operator::Semver => {
                    let mut found: Vec<usize> = values
                        .into_iter()
                        .flat_map(|v| v.values().flatten())
                        .copied()
                        .collect();
                    found.sort_unstable();
                    found
                }
                Operator::Ne | Operator::NotIn | Operator::DoesNotExist => continue,
            };
            if best.as_ref().is_none_or(|b| found.len() < b.len()) {
                best = Some(found);
            }
        }
        best
    }

    /// The module versions whose labels satisfy the selector, in repository order.
    pub fn select(&self, selector: &Selector) -> Vec<Entry<'r>> {
        match self.narrow(selector) {
            Some(positions) => positions
                .into_iter()
                .map(|i| self.entries[i])
                .filter(|e| selector.matches(&e.version.labels))
                .collect(),
            None => self
                .entries
                .iter()
                .filter(|e| selector.matches(&e.version.labels))
                .copied()
                .collect(),
        }
    }

    /// The versions that satisfy a requirement of `owner`: a module never satisfies its own.
    pub fn candidates(&self, owner: Entry<'r>, selector: &Selector) -> Vec<Entry<'r>> {
        let mut found = self.select(selector);
        found.retain(|e| e.module.name != owner.module.name);
        found
    }

    /// The versions that come closest to satisfying a selector without doing so: those that
    /// carry at least one of its keys, fewest failed expressions first.
    pub fn near_misses(
        &self,
        owner: Option<Entry<'r>>,
        selector: &Selector,
        limit: usize,
    ) -> Vec<Miss<'r>> {
        // Rank first, and describe only the few that are shown: most versions are misses.
        let mut misses: Vec<(Nearness, Entry<'r>)> = self
            .entries
            .iter()
            .filter(|e| owner.is_none_or(|o| o.module.name != e.module.name))
            .filter_map(|entry| {
                let labels = &entry.version.labels;
                let nearness = selector.nearness(|key| labels.get(key).map(String::as_str))?;
                Some((nearness, *entry))
            })
            .collect();
        // Stable: among equally near misses, file order.
        misses.sort_by_key(|(nearness, _)| *nearness);
        misses.truncate(limit);
        misses
            .into_iter()
            .map(|(_, entry)| Miss {
                entry,
                failed: selector
                    .failures(&entry.version.labels)
                    .into_iter()
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect()
    }

    /// The module versions whose `influences` select this one, with the requirement that does.
    pub fn influenced_by(&self, target: Entry<'r>) -> Vec<Entry<'r>> {
        self.entries
            .iter()
            .filter(|owner| owner.module.name != target.module.name)
            .filter(|owner| {
                owner
                    .version
                    .influences
                    .iter()
                    .any(|selector| selector.matches(&target.version.labels))
            })
            .copied()
            .collect()
    }
}

/// An edge of the graph: which requirement of the source the target satisfies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Strong, weak or influences.
    pub relation: Relation,
    /// The requirement's index in the source's list for that relation.
    pub index: usize,
}

/// The graph of module versions and the requirements between them.
pub struct Graph<'r> {
    /// The petgraph graph; node weights are module versions.
    pub graph: DiGraph<Entry<'r>, Edge>,
    /// For every requirement with no candidate: its owner's node and the requirement.
    pub unsatisfied: Vec<(NodeIndex, Edge)>,
}

impl<'r> Graph<'r> {
    /// Builds the whole graph. Its size grows with the number of edges, so commands that only
    /// need one module's requirements use [`Index`] directly.
    pub fn build(index: &Index<'r>) -> Graph<'r> {
        let mut graph = DiGraph::with_capacity(index.entries.len(), index.entries.len());
        let mut node_of: HashMap<(&str, &str), NodeIndex> = HashMap::new();
        for entry in &index.entries {
            let node = graph.add_node(*entry);
            node_of.insert(
                (entry.module.name.as_str(), entry.version.version.as_str()),
                node,
            );
        }
        let mut unsatisfied = Vec::new();
        for (i, owner) in index.entries.iter().enumerate() {
            let from = NodeIndex::new(i);
            for requirement in requirements(*owner) {
                let edge = Edge {
                    relation: requirement.relation,
                    index: requirement.index,
                };
                let candidates = index.candidates(*owner, requirement.selector);
                if candidates.is_empty() {
                    unsatisfied.push((from, edge));
                }
                for candidate in candidates {
                    let to = node_of[&(
                        candidate.module.name.as_str(),
                        candidate.version.version.as_str(),
                    )];
                    graph.add_edge(from, to, edge);
                }
            }
        }
        Graph { graph, unsatisfied }
    }

    /// The node of a module version.
    pub fn node(&self, entry: Entry<'_>) -> Option<NodeIndex> {
        self.graph.node_indices().find(|n| {
            let e = self.graph[*n];
            e.module.name == entry.module.name && e.version.version == entry.version.version
        })
    }

    /// The nodes reachable from `start` (itself included), following every kind of edge.
    pub fn reachable(&self, start: NodeIndex) -> BTreeSet<NodeIndex> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            if seen.insert(node) {
                stack.extend(self.graph.edges(node).map(|e| e.target()));
            }
        }
        seen
    }
}

/// What resolution prefers when several module versions satisfy a requirement.
#[derive(Debug, Clone, Default)]
pub struct Preferences {
    /// Modules named with `--prefer`: chosen first when they satisfy the requirement.
    pub prefer: Vec<String>,
    /// Installed module versions (module name to version): chosen next.
    pub installed: HashMap<String, String>,
}

/// One decision of a resolution: which version satisfies which requirement, and why.
#[derive(Debug, Clone)]
pub struct Choice<'r> {
    /// The module version whose requirement this is.
    pub owner: Entry<'r>,
    /// The requirement.
    pub selector: &'r Selector,
    /// The chosen module version.
    pub chosen: Entry<'r>,
    /// Why it was chosen over the others.
    pub reason: Reason,
    /// The other module versions that would satisfy it.
    pub alternatives: Vec<Entry<'r>>,
}

/// The result of resolving a module's strong requirements.
#[derive(Debug, Clone)]
pub struct Resolution<'r> {
    /// Module versions in install order: requirements before what requires them, target last.
    pub order: Vec<Entry<'r>>,
    /// The decisions made, in the order they were made.
    pub choices: Vec<Choice<'r>>,
}

/// Why a module's strong requirements cannot be resolved.
#[derive(Debug, Clone)]
pub enum ResolveError<'r> {
    /// The requirements lead back to a module already on the path.
    Cycle(Vec<Entry<'r>>),
    /// No module version satisfies a requirement.
    Unsatisfiable {
        /// The path of module versions from the target to the owner of the requirement.
        path: Vec<Entry<'r>>,
        /// The requirement.
        selector: &'r Selector,
        /// The closest module versions and what they fail.
        near_misses: Vec<Miss<'r>>,
    },
}

impl fmt::Display for ResolveError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Cycle(path) => {
                let ids: Vec<String> = path.iter().map(Entry::id).collect();
                write!(f, "strong requirements form a cycle: {}", ids.join(" -> "))?;
                write!(
                    f,
                    "\nhint: a module cannot require, directly or not, something that requires it; remove one of these requirements or make it weak"
                )
            }
            ResolveError::Unsatisfiable {
                path,
                selector,
                near_misses,
            } => {
                let owner = path.last().expect("a path holds at least the target");
                write!(
                    f,
                    "no module version satisfies the strong requirement `{selector}` of `{}`",
                    owner.id()
                )?;
                if path.len() > 1 {
                    let ids: Vec<String> = path.iter().map(Entry::id).collect();
                    write!(f, " (needed by {})", ids.join(" -> "))?;
                }
                if near_misses.is_empty() {
                    write!(f, "\n  no module version has any of its label keys")?;
                } else {
                    write!(f, "\n  nearest misses:")?;
                    for miss in near_misses {
                        write!(
                            f,
                            "\n    {} fails {}",
                            miss.entry.id(),
                            miss.failed.join(", ")
                        )?;
                    }
                }
                write!(
                    f,
                    "\nhint: add a module that provides these labels to the repository, or relax the requirement"
                )
            }
        }
    }
}

impl std::error::Error for ResolveError<'_> {}

/// Resolves the strong requirements of `target`, transitively, into an install order.
///
/// Each requirement is satisfied by one candidate, tried in this order: a module already in
/// this resolution, a module named in `--prefer`, an installed version, the version marked
/// `latest`, then by module name and highest version. If a candidate's own requirements cannot
/// be met, the next candidate is tried; the first error is reported when none works.
pub fn resolve<'r>(
    index: &Index<'r>,
    target: Entry<'r>,
    preferences: &Preferences,
) -> Result<Resolution<'r>, ResolveError<'r>> {
    let mut resolver = Resolver {
        index,
        preferences,
        order: Vec::new(),
        choices: Vec::new(),
        path: Vec::new(),
    };
    resolver.visit(target)?;
    Ok(Resolution {
        order: resolver.order,
        choices: resolver.choices,
    })
}

struct Resolver<'a, 'r> {
    index: &'a Index<'r>,
    preferences: &'a Preferences,
    order: Vec<Entry<'r>>,
    choices: Vec<Choice<'r>>,
    path: Vec<Entry<'r>>,
}

fn same(a: Entry<'_>, b: Entry<'_>) -> bool {
    a.module.name == b.module.name && a.version.version == b.version.version
}

impl<'r> Resolver<'_, 'r> {
    fn visit(&mut self, entry: Entry<'r>) -> Result<(), ResolveError<'r>> {
        if self.order.iter().any(|e| same(*e, entry)) {
            return Ok(());
        }
        if let Some(start) = self.path.iter().position(|e| same(*e, entry)) {
            let mut cycle = self.path[start..].to_vec();
            cycle.push(entry);
            return Err(ResolveError::Cycle(cycle));
        }
        self.path.push(entry);
        for selector in &entry.version.requires.strong {
            let candidates = self.rank(entry, selector);
            if candidates.is_empty() {
                let near_misses = self.index.near_misses(Some(entry), selector, 5);
                return Err(ResolveError::Unsatisfiable {
                    path: self.path.clone(),
                    selector,
                    near_misses,
                });
            }
            let mut first_error = None;
            for (i, (candidate, reason)) in candidates.iter().enumerate() {
                let (order_len, choices_len) = (self.order.len(), self.choices.len());
                self.choices.push(Choice {
                    owner: entry,
                    selector,
                    chosen: *candidate,
                    reason: *reason,
                    alternatives: candidates
                        .iter()
                        .filter(|(c, _)| !same(*c, *candidate))
                        .map(|(c, _)| *c)
                        .collect(),
                });
                match self.visit(*candidate) {
                    Ok(()) => {
                        first_error = None;
                        if i > 0 {
                            self.choices[choices_len].reason = Reason::Fallback;
                        }
                        break;
                    }
                    Err(err) => {
                        self.order.truncate(order_len);
                        self.choices.truncate(choices_len);
                        first_error.get_or_insert(err);
                    }
                }
            }
            if let Some(err) = first_error {
                return Err(err);
            }
        }
        self.path.pop();
        self.order.push(entry);
        Ok(())
    }

    fn rank(&self, owner: Entry<'r>, selector: &Selector) -> Vec<(Entry<'r>, Reason)> {
        let planned: Vec<Entry<'r>> = self.order.iter().chain(&self.path).copied().collect();
        rank(self.index, owner, selector, self.preferences, &planned)
    }
}

/// Why a candidate ranks where it does; earlier variants win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Its module is already part of this plan.
    InPlan,
    /// Its module was named with `--prefer`.
    Preferred,
    /// This version is installed.
    Installed,
    /// It is the version marked `latest`.
    Latest,
    /// It is the highest matching version of its module.
    Highest,
    /// It was chosen because the candidates ranked before it could not be installed.
    Fallback,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::InPlan => "already part of this plan",
            Reason::Preferred => "named with --prefer",
            Reason::Installed => "already installed",
            Reason::Latest => "the latest version of its module",
            Reason::Highest => "the highest version of its module that matches",
            Reason::Fallback => "the candidates before it could not be installed",
        })
    }
}

/// The candidates for a requirement of `owner`, best first, one version per module, each with
/// why it ranks where it does: modules in `planned`, then `--prefer`, installed, `latest`,
/// then by module name and highest version. Resolution and suggestions share this order.
pub fn rank<'r>(
    index: &Index<'r>,
    owner: Entry<'r>,
    selector: &Selector,
    preferences: &Preferences,
    planned: &[Entry<'r>],
) -> Vec<(Entry<'r>, Reason)> {
    let mut ranked: Vec<(Entry<'r>, Reason)> = index
        .candidates(owner, selector)
        .into_iter()
        .map(|candidate| {
            let name = candidate.module.name.as_str();
            let reason = if planned.iter().any(|e| e.module.name == name) {
                Reason::InPlan
            } else if preferences.prefer.iter().any(|p| p == name) {
                Reason::Preferred
            } else if preferences
                .installed
                .get(name)
                .is_some_and(|v| v == candidate.version.version.as_str())
            {
                Reason::Installed
            } else if candidate.version.latest {
                Reason::Latest
            } else {
                Reason::Highest
            };
            (candidate, reason)
        })
        .collect();
    ranked.sort_by(|(a, ra), (b, rb)| {
        ra.cmp(rb)
            .then_with(|| a.module.name.cmp(&b.module.name))
            .then_with(|| b.version.version.cmp(&a.version.version))
    });
    // Keep one version per module: the best one.
    let mut seen = HashSet::new();
    ranked.retain(|(c, _)| seen.insert(c.module.name.as_str()));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::load;
    use std::path::Path;

    fn repository(text: &str) -> Repository {
        load::parse(text, Path::new("test.yaml"))
            .unwrap()
            .repository
    }

    /// A repository from lines of `name version [latest] labels... | strong selectors`.
    fn modules(spec: &str) -> String {
        let mut out = String::from("version: v1\nkind: Repository\ncomponents:\n");
        let mut by_module: Vec<(String, Vec<String>)> = Vec::new();
        for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (head, strong) = line.split_once('|').unwrap_or((line, ""));
            let mut words = head.split_whitespace();
            let name = words.next().unwrap().to_owned();
            let version = words.next().unwrap();
            let mut text = format!("  - version: {version}\n    image: img/{name}:{version}\n");
            let mut labels = String::new();
            for word in words {
                if word == "latest" {
                    text.push_str("    latest: true\n");
                } else {
                    let (k, v) = word.split_once('=').unwrap();
                    labels.push_str(&format!("      {k}: {v}\n"));
                }
            }
            if !labels.is_empty() {
                text.push_str(&format!("    labels:\n{labels}"));
            }
            let strong: Vec<&str> = strong
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if !strong.is_empty() {
                text.push_str("    requires:\n      strong:\n");
                for selector in strong {
                    let selector: Selector = selector.parse().unwrap();
                    let yaml = serde_yaml::to_string(&selector).unwrap();
                    let indented: Vec<String> = yaml
                        .lines()
                        .enumerate()
                        .map(|(i, l)| {
                            if i == 0 {
                                format!("      - {l}")
                            } else {
                                format!("        {l}")
                            }
                        })
                        .collect();
                    text.push_str(&indented.join("\n"));
                    text.push('\n');
                }
            }
            match by_module.iter_mut().find(|(n, _)| *n == name) {
                Some((_, versions)) => versions.push(text),
                None => by_module.push((name, vec![text])),
            }
        }
        for (name, versions) in by_module {
            out.push_str(&format!("- name: {name}\n  type: docker\n  versions:\n"));
            for v in versions {
                out.push_str(&v.replace("\n    ", "\n      ").replacen(
                    "  - version",
                    "    - version",
                    1,
                ));
            }
        }
        out
    }

    fn order(repo: &Repository, target: &str) -> Result<Vec<String>, String> {
        let index = Index::new(repo);
        let entry = repo.find(&target.parse().unwrap()).unwrap();
        resolve(&index, entry, &Preferences::default())
            .map(|r| r.order.iter().map(Entry::id).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn chain_resolves_in_dependency_order() {
        let repo = repository(&modules(
            "pg 1.0.0 kind=database | kind=persistence
             rook 1.0.0 kind=persistence | kind=kubernetes
             k8s 1.0.0 kind=kubernetes | kind=infrastructure
             azi 1.0.0 kind=infrastructure",
        ));
        assert_eq!(
            order(&repo, "pg").unwrap(),
            ["azi@1.0.0", "k8s@1.0.0", "rook@1.0.0", "pg@1.0.0"]
        );
    }

    #[test]
    fn diamond_installs_shared_requirement_once() {
        let repo = repository(&modules(
            "top 1.0.0 | kind=left; kind=right
             left 1.0.0 kind=left | kind=base
             right 1.0.0 kind=right | kind=base
             base 1.0.0 kind=base",
        ));
        assert_eq!(
            order(&repo, "top").unwrap(),
            ["base@1.0.0", "left@1.0.0", "right@1.0.0", "top@1.0.0"]
        );
    }

    #[test]
    fn cycle_is_reported_with_its_path() {
        let repo = repository(&modules(
            "a 1.0.0 kind=a | kind=b
             b 1.0.0 kind=b | kind=c
             c 1.0.0 kind=c | kind=a",
        ));
        let err = order(&repo, "a").unwrap_err();
        assert!(
            err.contains("cycle: a@1.0.0 -> b@1.0.0 -> c@1.0.0 -> a@1.0.0"),
            "{err}"
        );
    }

    #[test]
    fn unsatisfiable_shows_nearest_misses() {
        let repo = repository(&modules(
            "bmk 1.0.0 | kind=infrastructure,provider in (azure, aws)
             gcp 1.0.0 kind=infrastructure provider=gcp
             mon 1.0.0 kind=monitoring",
        ));
        let err = order(&repo, "bmk").unwrap_err();
        assert!(
            err.contains("gcp@1.0.0 fails provider in (azure, aws)"),
            "{err}"
        );
        assert!(
            err.contains("mon@1.0.0 fails kind=infrastructure, provider in (azure, aws)"),
            "{err}"
        );
        let gcp = err.find("gcp@").unwrap();
        let mon = err.find("mon@").unwrap();
        assert!(gcp < mon, "the closest miss comes first: {err}");
    }

    #[test]
    fn candidate_choice_prefers_latest_then_name_and_backtracks() {
        let repo = repository(&modules(
            "app 1.0.0 | kind=db
             alpha 1.0.0 kind=db | kind=missing
             beta 1.0.0 kind=db
             beta 2.0.0 kind=db
             gamma 1.0.0 latest kind=db",
        ));
        // gamma is `latest`, so it wins over alpha and beta.
        assert_eq!(order(&repo, "app").unwrap(), ["gamma@1.0.0", "app@1.0.0"]);
        let repo = repository(&modules(
            "app 1.0.0 | kind=db
             alpha 1.0.0 kind=db | kind=missing
             beta 1.0.0 kind=db
             beta 2.0.0 kind=db",
        ));
        // alpha comes first by name but cannot be installed; beta's highest version is next.
        assert_eq!(order(&repo, "app").unwrap(), ["beta@2.0.0", "app@1.0.0"]);
    }

    #[test]
    fn prefer_and_installed_override_the_default_choice() {
        let repo = repository(&modules(
            "app 1.0.0 | kind=db
             alpha 1.0.0 kind=db
             beta 1.0.0 kind=db",
        ));
        let index = Index::new(&repo);
        let app = repo.find(&"app".parse().unwrap()).unwrap();
        let ids = |p: &Preferences| -> Vec<String> {
            resolve(&index, app, p)
                .unwrap()
                .order
                .iter()
                .map(Entry::id)
                .collect()
        };
        assert_eq!(ids(&Preferences::default()), ["alpha@1.0.0", "app@1.0.0"]);
        let installed = Preferences {
            installed: [("beta".into(), "1.0.0".into())].into(),
            ..Default::default()
        };
        assert_eq!(ids(&installed), ["beta@1.0.0", "app@1.0.0"]);
        let prefer = Preferences {
            prefer: vec!["beta".into()],
            ..Default::default()
        };
        assert_eq!(ids(&prefer), ["beta@1.0.0", "app@1.0.0"]);
    }

    #[test]
    fn a_module_never_satisfies_its_own_requirement() {
        let repo = repository(&modules("solo 1.0.0 kind=db | kind=db"));
        assert!(
            order(&repo, "solo")
                .unwrap_err()
                .contains("no module version satisfies")
        );
    }

    #[test]
    fn graph_has_edges_per_relation_and_records_unsatisfied() {
        let repo = repository(&modules(
            "app 1.0.0 | kind=db; kind=nothing
             db 1.0.0 kind=db",
        ));
        let index = Index::new(&repo);
        let graph = Graph::build(&index);
        assert_eq!(graph.graph.edge_count(), 1);
        assert_eq!(graph.unsatisfied.len(), 1);
        assert_eq!(
            graph.unsatisfied[0].1,
            Edge {
                relation: Relation::Strong,
                index: 1
            }
        );
    }

    #[test]
    fn index_selection_agrees_with_a_full_scan() {
        let repo = repository(&modules(
            "a 1.0.0 kind=db tier=1
             b 1.0.0 kind=db
             b 2.0.0 kind=cache tier=2
             c 0.1.0 tier=3",
        ));
        let index = Index::new(&repo);
        for text in [
            "kind=db",
            "kind in (db, cache),tier",
            "tier>=0.0.0",
            "!tier",
            "kind!=db",
            "tier notin (1),kind",
        ] {
            let selector: Selector = text.parse().unwrap();
            let fast: Vec<String> = index.select(&selector).iter().map(Entry::id).collect();
            let slow: Vec<String> = index
                .entries()
                .iter()
                .filter(|e| selector.matches(&e.version.labels))
                .map(Entry::id)
                .collect();
            assert_eq!(fast, slow, "{text}");
        }
    }
}
