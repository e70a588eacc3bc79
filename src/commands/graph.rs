//! `e graph [MODULE]`: the dependency graph as a text tree, Graphviz DOT or Mermaid.
//!
//! Strong edges are drawn solid, weak ones dashed and influences dotted (thick in Mermaid,
//! which has no third line style). Requirements nothing satisfies are drawn too, because they
//! are what a user most needs to see.

use std::collections::{BTreeSet, HashSet};
use std::process::ExitCode;

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use crate::Context;
use crate::cli::{GraphArgs, GraphFormat};
use crate::graph::{Graph, Index, Relation, requirements};
use crate::output;
use crate::repository::Entry;

/// Draws the graph.
pub fn run(args: GraphArgs, context: &Context) -> anyhow::Result<ExitCode> {
    if args.installed {
        return super::graph_installed::run(args.format, context);
    }
    // Never freed: e exits after the command, and freeing a large repository one allocation at
    // a time was a tenth of the command's time (`docs/benchmarks.md`).
    let repository = std::mem::ManuallyDrop::new(context.catalog()?);
    let index = Index::new(&repository);
    let graph = Graph::build(&index);
    let (roots, nodes): (Vec<NodeIndex>, BTreeSet<NodeIndex>) = match &args.module {
        Some(spec) => {
            let entry = repository.find(spec)?;
            let root = graph.node(entry).expect("every repository entry is a node");
            (vec![root], graph.reachable(root))
        }
        None => {
            let all: BTreeSet<NodeIndex> = graph.graph.node_indices().collect();
            (all.iter().copied().collect(), all)
        }
    };
    let text = match args.format {
        GraphFormat::Tree => tree(&graph, &roots, args.module.is_some()),
        GraphFormat::Dot => dot(&graph, &nodes),
        GraphFormat::Mermaid => mermaid(&graph, &nodes),
    };
    output::data(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The label of an edge or requirement: `strong #1`.
fn requirement_label(relation: Relation, index: usize) -> String {
    format!("{relation} #{}", index + 1)
}

/// An indented tree; with one root, strong requirements are followed all the way down.
fn tree(graph: &Graph<'_>, roots: &[NodeIndex], recurse: bool) -> String {
    let mut text = String::new();
    for root in roots {
        text.push_str(&graph.graph[*root].id());
        text.push('\n');
        let mut shown = HashSet::from([*root]);
        branch(graph, *root, "", recurse, &mut shown, &mut text);
    }
    text
}

fn branch(
    graph: &Graph<'_>,
    node: NodeIndex,
    prefix: &str,
    recurse: bool,
    shown: &mut HashSet<NodeIndex>,
    text: &mut String,
) {
    let owner: Entry<'_> = graph.graph[node];
    let requirements = requirements(owner);
    for (r, requirement) in requirements.iter().enumerate() {
        let last_requirement = r + 1 == requirements.len();
        let (fork, pipe) = if last_requirement {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        text.push_str(&format!(
            "{prefix}{fork}{} {}\n",
            requirement_label(requirement.relation, requirement.index),
            requirement.selector
        ));
        let mut targets: Vec<NodeIndex> = graph
            .graph
            .edges(node)
            .filter(|e| {
                e.weight().relation == requirement.relation && e.weight().index == requirement.index
            })
            .map(|e| e.target())
            .collect();
        targets.sort();
        let child_prefix = format!("{prefix}{pipe}");
        if targets.is_empty() {
            text.push_str(&format!(
                "{child_prefix}└── (nothing in the repository satisfies it)\n"
            ));
        }
        for (t, target) in targets.iter().enumerate() {
            let fork = if t + 1 == targets.len() {
                "└── "
            } else {
                "├── "
            };
            let seen_before = !shown.insert(*target);
            let follow = recurse && requirement.relation == Relation::Strong;
            let note = if follow && seen_before {
                " (see above)"
            } else {
                ""
            };
            text.push_str(&format!(
                "{child_prefix}{fork}{}{note}\n",
                graph.graph[*target].id()
            ));
            if follow && !seen_before {
                let pipe = if t + 1 == targets.len() {
                    "    "
                } else {
                    "│   "
                };
                branch(
                    graph,
                    *target,
                    &format!("{child_prefix}{pipe}"),
                    recurse,
                    shown,
                    text,
                );
            }
        }
    }
}

fn quoted(text: &str) -> String {
    quoted_lines(&[text])
}

/// A DOT string of several lines: each escaped, joined by DOT's `\n` line break.
fn quoted_lines(lines: &[&str]) -> String {
    let escaped: Vec<String> = lines
        .iter()
        .map(|line| line.replace('\\', "\\\\").replace('"', "\\\""))
        .collect();
    format!("\"{}\"", escaped.join("\\n"))
}

fn dot(graph: &Graph<'_>, nodes: &BTreeSet<NodeIndex>) -> String {
    let mut text = String::from(
        "digraph e {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    for node in nodes {
        text.push_str(&format!("  {};\n", quoted(&graph.graph[*node].id())));
    }
    for edge in graph.graph.edge_references() {
        if !nodes.contains(&edge.source()) {
            continue;
        }
        let style = match edge.weight().relation {
            Relation::Strong => "solid",
            Relation::Weak => "dashed",
            Relation::Influences => "dotted",
        };
        text.push_str(&format!(
            "  {} -> {} [style={style}, label={}];\n",
            quoted(&graph.graph[edge.source()].id()),
            quoted(&graph.graph[edge.target()].id()),
            quoted(&requirement_label(
                edge.weight().relation,
                edge.weight().index
            )),
        ));
    }
    for (i, (node, edge)) in graph.unsatisfied.iter().enumerate() {
        if !nodes.contains(node) {
            continue;
        }
        let selector = requirement_selector(graph, *node, edge.relation, edge.index);
        text.push_str(&format!(
            "  unsatisfied{i} [shape=note, color=red, label={}];\n  {} -> unsatisfied{i} [style=dashed, color=red, label={}];\n",
            quoted_lines(&["nothing satisfies", &selector]),
            quoted(&graph.graph[*node].id()),
            quoted(&requirement_label(edge.relation, edge.index)),
        ));
    }
    text.push_str("}\n");
    text
}

fn requirement_selector(
    graph: &Graph<'_>,
    node: NodeIndex,
    relation: Relation,
    index: usize,
) -> String {
    requirements(graph.graph[node])
        .into_iter()
        .find(|r| r.relation == relation && r.index == index)
        .map(|r| r.selector.to_string())
        .unwrap_or_default()
}

fn mermaid(graph: &Graph<'_>, nodes: &BTreeSet<NodeIndex>) -> String {
    let mut text = String::from("flowchart LR\n");
    let escape = |s: &str| s.replace('"', "#quot;");
    for node in nodes {
        text.push_str(&format!(
            "  n{}[\"{}\"]\n",
            node.index(),
            escape(&graph.graph[*node].id())
        ));
    }
    for edge in graph.graph.edge_references() {
        if !nodes.contains(&edge.source()) {
            continue;
        }
        let arrow = match edge.weight().relation {
            Relation::Strong => "-->",
            Relation::Weak => "-.->",
            Relation::Influences => "==>",
        };
        text.push_str(&format!(
            "  n{} {arrow}|{}| n{}\n",
            edge.source().index(),
            requirement_label(edge.weight().relation, edge.weight().index),
            edge.target().index()
        ));
    }
    for (i, (node, edge)) in graph.unsatisfied.iter().enumerate() {
        if !nodes.contains(node) {
            continue;
        }
        let selector = requirement_selector(graph, *node, edge.relation, edge.index);
        text.push_str(&format!(
            "  u{i}[\"nothing satisfies {}\"]\n  n{} -.->|{}| u{i}\n",
            escape(&selector),
            node.index(),
            requirement_label(edge.relation, edge.index)
        ));
    }
    text
}
