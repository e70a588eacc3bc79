//! Differences between two YAML values, named by their path inside a section
//! (`nodes[1].privateIP`): what `plan` shows it would change and what `audit` reports as changed
//! by hand. Pure: no I/O.

use std::fmt;

use serde_yaml::Value;

/// One value that differs: absent `before` means added, absent `after` means removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where the value sits, such as `nodes[1].privateIP`; empty for the whole value.
    pub path: String,
    /// The value on the old side, if it has one.
    pub before: Option<Value>,
    /// The value on the new side, if it has one.
    pub after: Option<Value>,
}

impl Difference {
    /// The difference read as a change made by hand to what the module applied, for `audit`.
    pub fn by_hand(&self) -> String {
        let how = match (&self.before, &self.after) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        };
        format!("{self} ({how} by hand)")
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side =
            |value: &Option<Value>| value.as_ref().map_or_else(|| "(none)".to_owned(), inline);
        let path = if self.path.is_empty() {
            "(section)"
        } else {
            &self.path
        };
        write!(f, "{path}: {} -> {}", side(&self.before), side(&self.after))
    }
}

/// Every difference between `before` and `after`, mapping keys in the order they have in `before`
/// (then the keys only `after` has), sequence items by position.
pub fn differences(before: &Value, after: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    walk(String::new(), before, after, &mut found);
    found
}

fn walk(path: String, before: &Value, after: &Value, found: &mut Vec<Difference>) {
    match (before, after) {
        (Value::Mapping(old), Value::Mapping(new)) => {
            for (key, value) in old {
                let at = child(&path, key);
                match new.get(key) {
                    Some(other) => walk(at, value, other, found),
                    None => found.push(Difference {
                        path: at,
                        before: Some(value.clone()),
                        after: None,
                    }),
                }
            }
            for (key, value) in new {
                if !old.contains_key(key) {
                    found.push(Difference {
                        path: child(&path, key),
                        before: None,
                        after: Some(value.clone()),
                    });
                }
            }
        }
        (Value::Sequence(old), Value::Sequence(new)) => {
            for index in 0..old.len().max(new.len()) {
                let at = format!("{path}[{index}]");
                match (old.get(index), new.get(index)) {
                    (Some(value), Some(other)) => walk(at, value, other, found),
                    (value, other) => found.push(Difference {
                        path: at,
                        before: value.cloned(),
                        after: other.cloned(),
                    }),
                }
            }
        }
        _ if before == after => {}
        _ => found.push(Difference {
            path,
            before: Some(before.clone()),
            after: Some(after.clone()),
        }),
    }
}

fn child(path: &str, key: &Value) -> String {
    let key = inline(key);
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// A value on one line: scalars as YAML writes them, collections in flow style.
pub fn inline(value: &Value) -> String {
    match value {
        Value::Mapping(mapping) => {
            let entries: Vec<String> = mapping
                .iter()
                .map(|(key, value)| format!("{}: {}", inline(key), inline(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, inline(&tagged.value)),
        scalar => serde_yaml::to_string(scalar)
            .map_or_else(|_| "?".to_owned(), |text| text.trim_end().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn names_a_changed_item_by_its_path() {
        let before = yaml("{size: 2, nodes: [{privateIP: 10.0.0.0}, {privateIP: 10.0.0.1}]}");
        let after = yaml("{size: 2, nodes: [{privateIP: 10.0.0.0}, {privateIP: 10.0.0.100}]}");
        let found: Vec<String> = differences(&before, &after)
            .iter()
            .map(Difference::by_hand)
            .collect();
        assert_eq!(
            found,
            ["nodes[1].privateIP: 10.0.0.1 -> 10.0.0.100 (changed by hand)"]
        );
    }

    #[test]
    fn reports_added_and_removed_values() {
        let before = yaml("{status: applied, nodes: [a]}");
        let after = yaml("{nodes: [a, {privateIP: b}], extra: '5'}");
        let found: Vec<String> = differences(&before, &after)
            .iter()
            .map(Difference::by_hand)
            .collect();
        assert_eq!(
            found,
            [
                "status: applied -> (none) (removed by hand)",
                "nodes[1]: (none) -> {privateIP: b} (added by hand)",
                "extra: (none) -> '5' (added by hand)",
            ]
        );
    }

    #[test]
    fn finds_nothing_in_equal_values() {
        let value = yaml("{a: [1, {b: c}]}");
        assert!(differences(&value, &value).is_empty());
    }
}
