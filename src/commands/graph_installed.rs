//! `e graph --installed`: the installed modules and their bindings (who uses whom, as
//! recorded when each was applied; `bindings.rs`), as a text tree, Graphviz DOT or Mermaid.
//! Strong bindings are solid, weak ones dashed, labelled with the requirement.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::Context;
use crate::bindings::BindingKind;
use crate::cli::GraphFormat;
use crate::output;
use crate::store::Installed;

/// Draws the installed modules of the shared directory (never creating it).
pub fn run(format: GraphFormat, context: &Context) -> anyhow::Result<ExitCode> {
    let path = context.shared_path.join(".e/installed.json");
    let records: BTreeMap<String, Installed> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
            anyhow::anyhow!(
                "`{}` is damaged: {err}\nhint: restore it from a backup of the shared directory",
                path.display()
            )
        })?,
        Err(_) => BTreeMap::new(),
    };
    if records.is_empty() && format == GraphFormat::Tree {
        output::note(&format!(
            "no module is installed in `{}`",
            context.shared_path.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let text = match format {
        GraphFormat::Tree => tree(&records),
        GraphFormat::Dot => dot(&records),
        GraphFormat::Mermaid => mermaid(&records),
    };
    output::data(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn id(record: &Installed) -> String {
    format!("{}@{}", record.module, record.version)
}

fn tree(records: &BTreeMap<String, Installed>) -> String {
    let mut text = String::new();
    for record in records.values() {
        text.push_str(&id(record));
        text.push('\n');
        let Some(bindings) = &record.bindings else {
            text.push_str("└── (applied before e recorded bindings)\n");
            continue;
        };
        for (i, binding) in bindings.iter().enumerate() {
            let fork = if i + 1 == bindings.len() {
                "└── "
            } else {
                "├── "
            };
            text.push_str(&format!(
                "{fork}{} {} -> {}@{}\n",
                kind(binding.relation),
                binding.selector,
                binding.module,
                binding.version
            ));
        }
    }
    text
}

fn kind(relation: BindingKind) -> &'static str {
    match relation {
        BindingKind::Strong => "strong",
        BindingKind::Weak => "weak",
    }
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn dot(records: &BTreeMap<String, Installed>) -> String {
    let mut text = String::from(
        "digraph installed {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    for record in records.values() {
        text.push_str(&format!("  {};\n", quoted(&id(record))));
    }
    for record in records.values() {
        for binding in record.bindings.iter().flatten() {
            let style = match binding.relation {
                BindingKind::Strong => "solid",
                BindingKind::Weak => "dashed",
            };
            text.push_str(&format!(
                "  {} -> {} [style={style}, label={}];\n",
                quoted(&id(record)),
                quoted(&format!("{}@{}", binding.module, binding.version)),
                quoted(&binding.selector)
            ));
        }
    }
    text.push_str("}\n");
    text
}

fn mermaid(records: &BTreeMap<String, Installed>) -> String {
    let mut text = String::from("flowchart LR\n");
    let node = |module: &str| format!("m_{}", module.replace(|c: char| !c.is_alphanumeric(), "_"));
    let escape = |s: &str| s.replace('"', "#quot;").replace('|', "#124;");
    for record in records.values() {
        text.push_str(&format!(
            "  {}[\"{}\"]\n",
            node(&record.module),
            escape(&id(record))
        ));
    }
    for record in records.values() {
        for binding in record.bindings.iter().flatten() {
            let arrow = match binding.relation {
                BindingKind::Strong => "-->",
                BindingKind::Weak => "-.->",
            };
            text.push_str(&format!(
                "  {} {arrow}|\"{}\"| {}\n",
                node(&record.module),
                escape(&binding.selector),
                node(&binding.module)
            ));
        }
    }
    text
}
