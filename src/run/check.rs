//! What a run's result may be (stand-in; the checked implementation lands from the `check` branch).

use super::tree::{Node, Refusal, Tree};

/// What is checked.
pub struct Rules<'a> {
    /// The module that ran.
    pub module: &'a str,
    /// The method.
    pub method: &'a str,
    /// Whether the method must change nothing.
    pub read_only: bool,
}

/// The verdict on a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Identical to the base.
    Unchanged,
    /// Changed, validly.
    Changed(Changes),
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Paths written.
    pub written: Vec<String>,
    /// Paths removed.
    pub removed: Vec<String>,
    /// State sections changed.
    pub sections: Vec<String>,
}

/// Checks a result against its base.
pub fn check(base: &Tree, result: &Tree, rules: &Rules) -> Result<Verdict, Refusal> {
    let refuse = |path: &str, reason: String| Refusal {
        path: path.to_owned(),
        reason,
    };
    if base == result {
        return Ok(Verdict::Unchanged);
    }
    if rules.read_only {
        return Err(refuse(
            "",
            format!("was changed, which `{}` must never do", rules.method),
        ));
    }
    if base.subtree(".e") != result.subtree(".e")
        || base.entries.get(".e") != result.entries.get(".e")
    {
        return Err(refuse(".e", "was written to; it is e's area".to_owned()));
    }
    let state_before = match base.entries.get("state.yml") {
        Some(Node::File { bytes, .. }) => parse_state(bytes).unwrap_or_default(),
        _ => serde_yaml::Mapping::new(),
    };
    let state_after = match result.entries.get("state.yml") {
        Some(Node::File { bytes, .. }) => {
            parse_state(bytes).map_err(|reason| refuse("state.yml", reason))?
        }
        Some(Node::Dir { .. }) => return Err(refuse("state.yml", "is a directory".to_owned())),
        None if base.entries.contains_key("state.yml") => {
            return Err(refuse("state.yml", "was removed".to_owned()));
        }
        None => serde_yaml::Mapping::new(),
    };
    for key in state_before.keys() {
        let name = key.as_str().unwrap_or_default();
        if !state_after.contains_key(key) && name != rules.module {
            return Err(refuse(
                "state.yml",
                format!(
                    "lost the section `{name}` of another module; `{}` may only remove its own",
                    rules.module
                ),
            ));
        }
    }
    let mut sections: Vec<String> = state_after
        .iter()
        .filter(|(k, v)| state_before.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str().unwrap_or_default().to_owned())
        .chain(
            state_before
                .keys()
                .filter(|k| !state_after.contains_key(*k))
                .map(|k| k.as_str().unwrap_or_default().to_owned()),
        )
        .collect();
    sections.sort();
    let written = result
        .entries
        .iter()
        .filter(|(k, v)| base.entries.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    let removed = base
        .entries
        .keys()
        .filter(|k| !result.entries.contains_key(*k))
        .cloned()
        .collect();
    Ok(Verdict::Changed(Changes {
        written,
        removed,
        sections,
    }))
}

/// Parses a state as a YAML mapping.
pub fn parse_state(bytes: &[u8]) -> Result<serde_yaml::Mapping, String> {
    crate::store::parse_mapping(bytes)
}
