//! azi: a mock of an Azure infrastructure module. It "creates" virtual machines by recording them
//! in its state section, `{status, size, provide-pubips, nodes: [{privateIP, publicIP, usedBy}]}`,
//! from a config that names how many it should have, `azi: {size, provide-pubips}`.
//!
//! Nodes already in the state are kept as they are (an address edited by hand, the `usedBy` that
//! an application module wrote); apply only adds or removes nodes at the end to reach `size`.
//! `usedBy` belongs to the modules that use the nodes, so `audit` does not report it, and
//! `destroy` refuses to remove nodes that a module still uses.

use std::collections::HashSet;
use std::process::ExitCode;

use module_contract::nodes::{self, PRIVATE_IP, PUBLIC_IP, UNUSED, USED_BY};
use module_contract::record::Record;
use module_contract::state::{self, State};
use module_contract::{Contract, Error, Method, Outcome};
use module_contract::{audit, drift};
use serde_yaml::{Mapping, Value};

/// The name of the module, of its record mount (`/var/lib/azi`) and its default section.
const NAME: &str = "azi";
/// How many nodes `init` asks for when `--size` is not given.
const DEFAULT_SIZE: u64 = 5;
/// The mock gives out addresses from one /24 network.
const MAX_SIZE: u64 = 256;
const PRIVATE_NETWORK: &str = "10.0.0.";
const PUBLIC_NETWORK: &str = "213.1.1.";

fn main() -> ExitCode {
    module_contract::run(NAME, include_str!("metadata.yaml"), dispatch)
}

fn dispatch(contract: &Contract, method: Method) -> Result<Outcome, Error> {
    match method {
        Method::Init => init(contract),
        Method::Plan => plan(contract),
        Method::Apply => apply(contract),
        Method::Audit => audit(contract),
        Method::Destroy => destroy(contract),
    }
}

/// What the user asks of azi: its config file, `azi: {size, provide-pubips}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Config {
    size: u64,
    provide_pubips: bool,
}

fn init(contract: &Contract) -> Result<Outcome, Error> {
    let size = contract.size_option(DEFAULT_SIZE)?;
    check_size(size)?;
    let mut section = Mapping::new();
    section.insert("size".into(), size.into());
    section.insert("provide-pubips".into(), true.into());
    let mut config = Mapping::new();
    config.insert(contract.module().into(), section.into());
    state::write_atomically(
        contract.config_file(),
        &state::to_yaml(&config)?,
        contract.module(),
    )?;
    println!(
        "Wrote `{}`: {size} nodes with public addresses.",
        contract.config_file().display()
    );
    Ok(Outcome::Success)
}

fn plan(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let config = read_config(contract)?;
    let state = State::load(contract.state_file())?;
    let current = state.section(contract.module());
    let desired = desired_section(config, current, contract.module())?;
    let changes = describe_changes(current, &desired);
    if changes.lines.is_empty() {
        println!(
            "No changes: the `{}` section of the state matches its config.",
            contract.module()
        );
        return Ok(Outcome::Success);
    }
    for line in &changes.lines {
        println!("{line}");
    }
    println!(
        "Plan: {} to create, {} to remove, {} to change.",
        changes.created, changes.removed, changes.changed
    );
    Ok(Outcome::Changes)
}

fn apply(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let config = read_config(contract)?;
    let mut state = State::load(contract.state_file())?;
    let current = state.section(contract.module()).cloned();
    let desired = desired_section(config, current.as_ref(), contract.module())?;
    let changes = describe_changes(current.as_ref(), &desired);
    let record = Record::in_mount(NAME, contract.module());
    let prepared = record.prepare(&Value::Mapping(desired.clone()))?;
    let nodes = node_list(&desired).to_vec();
    state.set_section(contract.module(), Value::Mapping(desired));
    state.save(contract.module())?;
    prepared.commit()?;
    for line in &changes.lines {
        println!("{line}");
    }
    println!(
        "Applied: {} created, {} removed, {} changed; `{}` has {} nodes:",
        changes.created,
        changes.removed,
        changes.changed,
        contract.module(),
        nodes.len()
    );
    for node in &nodes {
        match nodes::used_by(node) {
            UNUSED => println!("  {} {UNUSED}", nodes::label(node)),
            user => println!("  {} used by {user}", nodes::label(node)),
        }
    }
    Ok(Outcome::Success)
}

fn audit(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let (applied, current) = match audit::subject(contract, NAME)? {
        audit::Subject::Compare(compared) => (compared.applied, compared.current),
        audit::Subject::Done(outcome) => return Ok(outcome),
    };
    let found: Vec<String> =
        drift::differences(&without_used_by(&applied), &without_used_by(&current))
            .iter()
            .map(drift::Difference::by_hand)
            .collect();
    Ok(audit::report(contract, &found, "section"))
}

fn destroy(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let module = contract.module();
    let mut state = State::load(contract.state_file())?;
    let record = Record::in_mount(NAME, module);
    let Some(section) = state.section(module) else {
        record.remove()?;
        println!("Nothing to destroy: the state has no `{module}` section.");
        return Ok(Outcome::Success);
    };
    check_unused(section, module)?;
    let count = section
        .get("nodes")
        .and_then(Value::as_sequence)
        .map_or(0, Vec::len);
    state.remove_section(module);
    // The state first: if the record cannot be removed, e puts the state back and the record
    // still matches it.
    state.save(module)?;
    record.remove()?;
    println!("Destroyed: removed the `{module}` section of the state and its {count} nodes.");
    Ok(Outcome::Success)
}

/// Fails, naming the modules and their nodes, while another module uses a node of the section:
/// destroying the machines under it would leave that module's section describing nothing.
fn check_unused(section: &Value, module: &str) -> Result<(), Error> {
    let mut users: Vec<(&str, Vec<String>)> = Vec::new();
    let listed = section
        .get("nodes")
        .and_then(Value::as_sequence)
        .map_or(&[][..], Vec::as_slice);
    for node in listed {
        let user = nodes::used_by(node);
        if user == UNUSED {
            continue;
        }
        let address = nodes::field(node, PRIVATE_IP)
            .unwrap_or("(no privateIP)")
            .to_owned();
        match users.iter_mut().find(|(name, _)| *name == user) {
            Some((_, addresses)) => addresses.push(address),
            None => users.push((user, vec![address])),
        }
    }
    if users.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = users
        .iter()
        .map(|(user, addresses)| format!("`{user}` ({})", addresses.join(", ")))
        .collect();
    let names: Vec<String> = users.iter().map(|(user, _)| format!("`{user}`")).collect();
    Err(Error::new(format!(
        "cannot destroy `{module}`: its nodes are used by {}",
        in_words(&described)
    ))
    .with_hint(format!("destroy {} first", in_words(&names))))
}

/// `a`, `a and b`, `a, b and c`.
fn in_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn read_config(contract: &Contract) -> Result<Config, Error> {
    let file = contract.config_file();
    let mapping = state::read_mapping(file, "run `init` first to write it")?;
    let invalid = |what: &str| Error::new(format!("invalid config `{}`: {what}", file.display()));
    let section = mapping
        .get(contract.module())
        .and_then(Value::as_mapping)
        .ok_or_else(|| invalid(&format!("no `{}` section", contract.module())))?;
    for key in section.keys() {
        if !matches!(key.as_str(), Some("size" | "provide-pubips")) {
            return Err(invalid(&format!("unknown key `{}`", drift::inline(key)))
                .with_hint("the keys are `size` and `provide-pubips`"));
        }
    }
    let size = section
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("`size` must be a whole number"))?;
    check_size(size)?;
    let provide_pubips = match section.get("provide-pubips") {
        None => true,
        Some(value) => value
            .as_bool()
            .ok_or_else(|| invalid("`provide-pubips` must be true or false"))?,
    };
    Ok(Config {
        size,
        provide_pubips,
    })
}

fn check_size(size: u64) -> Result<(), Error> {
    if size > MAX_SIZE {
        return Err(Error::new(format!(
            "azi can create at most {MAX_SIZE} nodes, not {size}"
        )));
    }
    Ok(())
}

/// The section apply writes: the nodes of `current` (kept as they are, with their public
/// address added or removed to follow `provide-pubips`), cut or extended at the end to `size`.
fn desired_section(
    config: Config,
    current: Option<&Value>,
    module: &str,
) -> Result<Mapping, Error> {
    let existing = match current.and_then(|section| section.get("nodes")) {
        None => &[][..],
        Some(Value::Sequence(nodes)) => nodes.as_slice(),
        Some(_) => {
            return Err(Error::new(format!(
                "the `nodes` of the `{module}` state section are not a list"
            )));
        }
    };
    let size = usize::try_from(config.size).expect("sizes are checked to be at most MAX_SIZE");
    if let Some(used) = existing
        .iter()
        .skip(size)
        .find(|node| nodes::used_by(node) != UNUSED)
    {
        let last_used = existing
            .iter()
            .rposition(|node| nodes::used_by(node) != UNUSED);
        let keep = last_used.map_or(0, |position| position + 1);
        return Err(Error::new(format!(
            "cannot remove node {}: it is used by `{}`",
            nodes::label(used),
            nodes::used_by(used)
        ))
        .with_hint(format!(
            "have `{}` release it first, or keep `size` at {keep} or more",
            nodes::used_by(used)
        )));
    }
    let mut taken = Addresses::of(existing);
    let mut nodes: Vec<Value> = Vec::with_capacity(size);
    for (position, node) in existing.iter().take(size).enumerate() {
        let mut node = node.clone();
        if let Value::Mapping(fields) = &mut node {
            let has_public = fields.contains_key(PUBLIC_IP);
            if config.provide_pubips && !has_public {
                let number = taken.next_free(position)?;
                fields.insert(PUBLIC_IP.into(), format!("{PUBLIC_NETWORK}{number}").into());
                node = Value::Mapping(in_node_order(fields));
            } else if !config.provide_pubips && has_public {
                fields.shift_remove(PUBLIC_IP);
            }
        }
        nodes.push(node);
    }
    for position in nodes.len()..size {
        let number = taken.next_free(position)?;
        let mut node = Mapping::new();
        node.insert(
            PRIVATE_IP.into(),
            format!("{PRIVATE_NETWORK}{number}").into(),
        );
        if config.provide_pubips {
            node.insert(PUBLIC_IP.into(), format!("{PUBLIC_NETWORK}{number}").into());
        }
        node.insert(USED_BY.into(), UNUSED.into());
        nodes.push(Value::Mapping(node));
    }
    let mut section = Mapping::new();
    section.insert("status".into(), "applied".into());
    section.insert("size".into(), config.size.into());
    section.insert("provide-pubips".into(), config.provide_pubips.into());
    section.insert("nodes".into(), Value::Sequence(nodes));
    Ok(section)
}

/// The host numbers (the last part of `10.0.0.N` and `213.1.1.N`) already given out, so that a
/// new node never gets the address of a node that was edited by hand.
struct Addresses(HashSet<u64>);

impl Addresses {
    fn of(nodes: &[Value]) -> Addresses {
        let numbers = nodes
            .iter()
            .flat_map(|node| {
                [(PRIVATE_IP, PRIVATE_NETWORK), (PUBLIC_IP, PUBLIC_NETWORK)].map(
                    |(key, network)| {
                        nodes::field(node, key)
                            .and_then(|address| address.strip_prefix(network))
                            .and_then(|number| number.parse().ok())
                    },
                )
            })
            .flatten()
            .collect();
        Addresses(numbers)
    }

    fn next_free(&mut self, position: usize) -> Result<u64, Error> {
        let mut number = position as u64;
        while self.0.contains(&number) {
            number += 1;
        }
        if number >= MAX_SIZE {
            return Err(Error::new(format!(
                "no free address left in {PRIVATE_NETWORK}0/24"
            )));
        }
        self.0.insert(number);
        Ok(number)
    }
}

/// A node's fields with the known ones first, in the order of the design: private address,
/// public address, user.
fn in_node_order(fields: &Mapping) -> Mapping {
    let mut ordered = Mapping::new();
    for key in [PRIVATE_IP, PUBLIC_IP, USED_BY] {
        if let Some(value) = fields.get(key) {
            ordered.insert(key.into(), value.clone());
        }
    }
    for (key, value) in fields {
        if !ordered.contains_key(key) {
            ordered.insert(key.clone(), value.clone());
        }
    }
    ordered
}

fn node_list(section: &Mapping) -> &[Value] {
    section
        .get("nodes")
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// What apply would change, one line each, with the counts for the summary.
#[derive(Debug, Default)]
struct Changes {
    lines: Vec<String>,
    created: usize,
    removed: usize,
    changed: usize,
}

fn describe_changes(current: Option<&Value>, desired: &Mapping) -> Changes {
    let mut changes = Changes::default();
    let empty = Value::Mapping(Mapping::new());
    let current = current.unwrap_or(&empty);
    let existing = current
        .get("nodes")
        .and_then(Value::as_sequence)
        .map_or(&[][..], Vec::as_slice);
    let wanted = node_list(desired);
    for (old, new) in existing.iter().zip(wanted) {
        for difference in drift::differences(old, new) {
            changes
                .lines
                .push(format!("~ {}: {difference}", nodes::label(old)));
            changes.changed += 1;
        }
    }
    for node in wanted.iter().skip(existing.len()) {
        changes.lines.push(format!("+ {}", nodes::label(node)));
        changes.created += 1;
    }
    for node in existing.iter().skip(wanted.len()) {
        changes.lines.push(format!("- {}", nodes::label(node)));
        changes.removed += 1;
    }
    let mut desired_rest = desired.clone();
    desired_rest.shift_remove("nodes");
    let mut current_rest = current.clone();
    if let Value::Mapping(fields) = &mut current_rest {
        fields.shift_remove("nodes");
    }
    for difference in drift::differences(&current_rest, &Value::Mapping(desired_rest)) {
        changes.lines.push(format!("~ {difference}"));
        changes.changed += 1;
    }
    changes
}

/// The section without the `usedBy` of its nodes, which other modules write.
fn without_used_by(section: &Value) -> Value {
    let mut section = section.clone();
    if let Some(Value::Sequence(nodes)) = section.get_mut("nodes") {
        for node in nodes {
            if let Value::Mapping(fields) = node {
                fields.shift_remove(USED_BY);
            }
        }
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;
    use module_contract::drift::Difference;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    fn section(config: Config, current: &str) -> Value {
        Value::Mapping(desired_section(config, Some(&yaml(current)), "azi").unwrap())
    }

    const FIVE: Config = Config {
        size: 5,
        provide_pubips: true,
    };

    #[test]
    fn creates_the_nodes_of_the_design() {
        let created = Value::Mapping(desired_section(FIVE, None, "azi").unwrap());
        let text = serde_yaml::to_string(&created).unwrap();
        assert!(text.starts_with(
            "status: applied\nsize: 5\nprovide-pubips: true\nnodes:\n\
             - privateIP: 10.0.0.0\n  publicIP: 213.1.1.0\n  usedBy: unused\n"
        ));
        assert_eq!(node_list(created.as_mapping().unwrap()).len(), 5);
    }

    #[test]
    fn keeps_edited_nodes_and_skips_their_addresses() {
        let current = "{nodes: [{privateIP: 10.0.0.0, publicIP: 213.1.1.0, usedBy: bmk},
                                {privateIP: 10.0.0.1, publicIP: 213.1.1.1, usedBy: unused}]}";
        let grown = section(
            Config {
                size: 3,
                provide_pubips: true,
            },
            current,
        );
        assert_eq!(
            grown["nodes"],
            yaml(
                "[{privateIP: 10.0.0.0, publicIP: 213.1.1.0, usedBy: bmk},
                  {privateIP: 10.0.0.1, publicIP: 213.1.1.1, usedBy: unused},
                  {privateIP: 10.0.0.2, publicIP: 213.1.1.2, usedBy: unused}]"
            )
        );
        let edited = "{nodes: [{privateIP: 10.0.0.1, usedBy: unused}]}";
        let grown = section(
            Config {
                size: 2,
                provide_pubips: true,
            },
            edited,
        );
        assert_eq!(
            grown["nodes"],
            yaml(
                "[{privateIP: 10.0.0.1, publicIP: 213.1.1.0, usedBy: unused},
                  {privateIP: 10.0.0.2, publicIP: 213.1.1.2, usedBy: unused}]"
            )
        );
    }

    #[test]
    fn refuses_to_remove_a_used_node() {
        let current = yaml(
            "{nodes: [{privateIP: 10.0.0.0, usedBy: unused}, {privateIP: 10.0.0.1, usedBy: bmk}]}",
        );
        let err = desired_section(
            Config {
                size: 1,
                provide_pubips: false,
            },
            Some(&current),
            "azi",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot remove node 10.0.0.1: it is used by `bmk`"
        );
        assert_eq!(
            err.hint(),
            Some("have `bmk` release it first, or keep `size` at 2 or more")
        );
    }

    #[test]
    fn plans_nothing_once_applied() {
        let applied = Value::Mapping(desired_section(FIVE, None, "azi").unwrap());
        let again = desired_section(FIVE, Some(&applied), "azi").unwrap();
        assert!(describe_changes(Some(&applied), &again).lines.is_empty());
    }

    #[test]
    fn describes_created_removed_and_changed_nodes() {
        let current = yaml(
            "{status: applied, size: 1, provide-pubips: true, nodes: [{privateIP: 10.0.0.0, publicIP: 213.1.1.0, usedBy: unused}]}",
        );
        let desired = desired_section(
            Config {
                size: 2,
                provide_pubips: false,
            },
            Some(&current),
            "azi",
        )
        .unwrap();
        let changes = describe_changes(Some(&current), &desired);
        assert_eq!(
            changes.lines,
            [
                "~ 10.0.0.0 (213.1.1.0): publicIP: 213.1.1.0 -> (none)",
                "+ 10.0.0.1",
                "~ size: 1 -> 2",
                "~ provide-pubips: true -> false",
            ]
        );
        let removed = desired_section(
            Config {
                size: 0,
                provide_pubips: true,
            },
            Some(&current),
            "azi",
        )
        .unwrap();
        assert_eq!(
            describe_changes(Some(&current), &removed).lines,
            ["- 10.0.0.0 (213.1.1.0)", "~ size: 1 -> 0"]
        );
    }

    #[test]
    fn destroy_names_the_modules_that_use_nodes() {
        let free = yaml("{nodes: [{privateIP: 10.0.0.0, usedBy: unused}, {privateIP: 10.0.0.1}]}");
        assert!(check_unused(&free, "azi").is_ok());
        assert!(check_unused(&yaml("{size: 0}"), "azi").is_ok());

        let used = yaml(
            "{nodes: [{privateIP: 10.0.0.0, usedBy: bmk}, {privateIP: 10.0.0.1, usedBy: unused},
                      {privateIP: 10.0.0.2, usedBy: k8s}, {privateIP: 10.0.0.3, usedBy: bmk}]}",
        );
        let err = check_unused(&used, "azi").unwrap_err();
        assert_eq!(
            (err.to_string(), err.hint()),
            (
                "cannot destroy `azi`: its nodes are used by `bmk` (10.0.0.0, 10.0.0.3) and `k8s` (10.0.0.2)".to_owned(),
                Some("destroy `bmk` and `k8s` first")
            )
        );
        let three = ["`a`", "`b`", "`c`"].map(str::to_owned);
        assert_eq!(in_words(&three), "`a`, `b` and `c`");
    }

    #[test]
    fn audit_ignores_used_by() {
        let applied = yaml("{nodes: [{privateIP: 10.0.0.1, usedBy: unused}]}");
        let current = yaml("{nodes: [{privateIP: 10.0.0.100, usedBy: bmk}]}");
        let found: Vec<String> =
            drift::differences(&without_used_by(&applied), &without_used_by(&current))
                .iter()
                .map(Difference::by_hand)
                .collect();
        assert_eq!(
            found,
            ["nodes[0].privateIP: 10.0.0.1 -> 10.0.0.100 (changed by hand)"]
        );
    }
}
