//! The nodes an infrastructure module records in its state section and that application modules
//! build on: `{privateIP, publicIP, usedBy}`. The field names are the agreement between azi (which
//! writes nodes) and bmk (which reads them and marks the ones it uses). Pure: no I/O.

use serde_yaml::Value;

/// The key of a node's private address.
pub const PRIVATE_IP: &str = "privateIP";
/// The key of a node's public address, absent when the infrastructure gives none.
pub const PUBLIC_IP: &str = "publicIP";
/// The key that names the module using a node.
pub const USED_BY: &str = "usedBy";
/// The value of `usedBy` for a node that no module uses.
pub const UNUSED: &str = "unused";

/// A string field of a node, if the node is a mapping that has it.
pub fn field<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    node.get(key).and_then(Value::as_str)
}

/// The module that uses a node; a node without `usedBy` is unused.
pub fn used_by(node: &Value) -> &str {
    field(node, USED_BY).unwrap_or(UNUSED)
}

/// A node as one short line: `10.0.0.1 (213.1.1.1)`, or only the private address.
pub fn label(node: &Value) -> String {
    let private = field(node, PRIVATE_IP).unwrap_or("(no privateIP)");
    match field(node, PUBLIC_IP) {
        Some(public) => format!("{private} ({public})"),
        None => private.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_a_node_by_its_addresses() {
        let node: Value =
            serde_yaml::from_str("{privateIP: 10.0.0.1, publicIP: 213.1.1.1}").unwrap();
        assert_eq!(label(&node), "10.0.0.1 (213.1.1.1)");
        assert_eq!(used_by(&node), UNUSED);
    }
}
