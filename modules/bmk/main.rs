//! bmk: a mock of Apache Kafka installed on bare metal. It "installs" Kafka on nodes that an
//! infrastructure module (such as azi) recorded in the state, marks those nodes `usedBy: bmk` in
//! that module's section, and records the cluster in its own section,
//! `{status, size, clusterNodes: [{privateIP, publicIP, state}]}`.
//!
//! Its config, `bmk: {size, clusterNodes: [{privateIP, publicIP}]}`, is written by `init` from
//! the nodes the state holds at that moment, hand edits included: that is the "smart init" of the
//! design.

use std::collections::HashSet;
use std::process::ExitCode;

use module_contract::drift;
use module_contract::nodes::{self, PRIVATE_IP, PUBLIC_IP, UNUSED, USED_BY};
use module_contract::record::Record;
use module_contract::state::{self, State};
use module_contract::{Contract, Error, Method, Outcome};
use serde_yaml::{Mapping, Value};

/// The name of the module, of its record mount (`/var/lib/bmk`) and its default section.
const NAME: &str = "bmk";
/// How many nodes `init` takes when `--size` is not given.
const DEFAULT_SIZE: u64 = 3;
/// The value of `state` for a node Kafka runs on.
const CREATED: &str = "created";

fn main() -> ExitCode {
    module_contract::run(NAME, include_str!("metadata.yaml"), dispatch)
}

fn dispatch(contract: &Contract, method: Method) -> Result<Outcome, Error> {
    match method {
        Method::Init => init(contract),
        Method::Plan => plan(contract),
        Method::Apply => apply(contract),
        Method::Audit => audit(contract),
    }
}

/// One node of the cluster, as the config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClusterNode {
    private_ip: String,
    public_ip: Option<String>,
}

/// The section of the state of the module whose nodes bmk runs on.
#[derive(Debug)]
struct Infrastructure<'a> {
    module: &'a str,
    nodes: &'a [Value],
}

/// Finds the infrastructure bmk runs on: for now the first section, other than bmk's own, that
/// has a list of `nodes`. This is the one place to change when e tells modules which module
/// satisfies their requirement.
fn infrastructure<'a>(state: &'a State, module: &str) -> Result<Infrastructure<'a>, Error> {
    state
        .sections()
        .iter()
        .filter(|(name, _)| name.as_str() != Some(module))
        .find_map(|(name, section)| {
            let nodes = section.get("nodes")?.as_sequence()?;
            Some(Infrastructure {
                module: name.as_str()?,
                nodes,
            })
        })
        .ok_or_else(|| {
            Error::new("the state has no infrastructure section with `nodes`")
                .with_hint("apply an infrastructure module such as `azi` first")
        })
}

fn init(contract: &Contract) -> Result<Outcome, Error> {
    let size = contract.size_option(DEFAULT_SIZE)?;
    let state = State::load(contract.state_file())?;
    let infrastructure = infrastructure(&state, contract.module())?;
    let usable: Vec<&Value> = infrastructure
        .nodes
        .iter()
        .filter(|node| [UNUSED, contract.module()].contains(&nodes::used_by(node)))
        .collect();
    if (usable.len() as u64) < size {
        return Err(Error::new(format!(
            "`{}` has {} nodes that `{}` can use, not {size}",
            infrastructure.module,
            usable.len(),
            contract.module()
        ))
        .with_hint(format!(
            "run `init --size {}`, or give `{}` more nodes",
            usable.len(),
            infrastructure.module
        )));
    }
    let chosen: Vec<Value> = usable
        .iter()
        .take(usize::try_from(size).expect("size is at most the number of usable nodes"))
        .map(|node| {
            let mut fields = Mapping::new();
            for key in [PRIVATE_IP, PUBLIC_IP] {
                if let Some(value) = node.get(key) {
                    fields.insert(key.into(), value.clone());
                }
            }
            Value::Mapping(fields)
        })
        .collect();
    let mut section = Mapping::new();
    section.insert("size".into(), size.into());
    section.insert("clusterNodes".into(), Value::Sequence(chosen.clone()));
    let mut config = Mapping::new();
    config.insert(contract.module().into(), section.into());
    state::write_atomically(
        contract.config_file(),
        &state::to_yaml(&config)?,
        contract.module(),
    )?;
    println!(
        "Wrote `{}`: Kafka on {size} nodes of `{}`:",
        contract.config_file().display(),
        infrastructure.module
    );
    for node in &chosen {
        println!("  {}", nodes::label(node));
    }
    Ok(Outcome::Success)
}

fn plan(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let config = read_config(contract)?;
    let state = State::load(contract.state_file())?;
    let plan = make_plan(&config, &state, contract.module())?;
    if plan.lines.is_empty() {
        println!(
            "No changes: the `{}` section of the state matches its config.",
            contract.module()
        );
        return Ok(Outcome::Success);
    }
    for line in &plan.lines {
        println!("{line}");
    }
    println!("{}", plan.summary(false));
    Ok(Outcome::Changes)
}

fn apply(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let config = read_config(contract)?;
    let mut state = State::load(contract.state_file())?;
    let plan = make_plan(&config, &state, contract.module())?;
    let record = Record::in_mount(NAME, contract.module());
    let prepared = record.prepare(&Value::Mapping(plan.section.clone()))?;
    let mut infrastructure_section = state
        .section(&plan.infrastructure)
        .cloned()
        .expect("the plan was made from this state's infrastructure section");
    infrastructure_section["nodes"] = Value::Sequence(plan.infrastructure_nodes.clone());
    state.set_section(&plan.infrastructure, infrastructure_section);
    state.set_section(contract.module(), Value::Mapping(plan.section.clone()));
    state.save(contract.module())?;
    prepared.commit()?;
    for line in &plan.lines {
        println!("{line}");
    }
    println!("{}", plan.summary(true));
    Ok(Outcome::Success)
}

fn audit(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let record = Record::in_mount(NAME, contract.module());
    let Some(applied) = record.load()? else {
        println!(
            "Nothing to audit: `{}` has not applied anything yet.",
            contract.module()
        );
        return Ok(Outcome::Success);
    };
    let state = State::load(contract.state_file())?;
    let Some(current) = state.section(contract.module()) else {
        println!(
            "The `{}` section was removed from the state by hand.",
            contract.module()
        );
        return Ok(Outcome::Changes);
    };
    let mut found: Vec<String> = drift::differences(&applied, current)
        .iter()
        .map(drift::Difference::by_hand)
        .collect();
    found.extend(missing_nodes(&state, current, contract.module()));
    if found.is_empty() {
        println!(
            "No drift: the `{}` section matches what it applied.",
            contract.module()
        );
        return Ok(Outcome::Success);
    }
    for line in &found {
        println!("{line}");
    }
    println!(
        "Audit: {} hand changes to the `{}` cluster.",
        found.len(),
        contract.module()
    );
    Ok(Outcome::Changes)
}

/// The cluster nodes that the infrastructure no longer has, or no longer marks as used by bmk.
fn missing_nodes(state: &State, current: &Value, module: &str) -> Vec<String> {
    let infrastructure = match infrastructure(state, module) {
        Ok(infrastructure) => infrastructure,
        Err(err) => return vec![err.to_string()],
    };
    let cluster = current
        .get("clusterNodes")
        .and_then(Value::as_sequence)
        .map_or(&[][..], Vec::as_slice);
    cluster
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let address = nodes::field(node, PRIVATE_IP)?;
            let found = infrastructure
                .nodes
                .iter()
                .find(|host| nodes::field(host, PRIVATE_IP) == Some(address));
            match found.map(nodes::used_by) {
                None => Some(format!(
                    "clusterNodes[{index}]: {address} is not a node of `{}`",
                    infrastructure.module
                )),
                Some(user) if user != module => Some(format!(
                    "clusterNodes[{index}]: {address} is marked `usedBy: {user}` in `{}`",
                    infrastructure.module
                )),
                Some(_) => None,
            }
        })
        .collect()
}

fn read_config(contract: &Contract) -> Result<Vec<ClusterNode>, Error> {
    let file = contract.config_file();
    let mapping = state::read_mapping(file, "run `init` first to write it")?;
    let invalid = |what: String| Error::new(format!("invalid config `{}`: {what}", file.display()));
    let section = mapping
        .get(contract.module())
        .and_then(Value::as_mapping)
        .ok_or_else(|| invalid(format!("no `{}` section", contract.module())))?;
    for key in section.keys() {
        if !matches!(key.as_str(), Some("size" | "clusterNodes")) {
            return Err(invalid(format!("unknown key `{}`", drift::inline(key)))
                .with_hint("the keys are `size` and `clusterNodes`"));
        }
    }
    let size = section
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("`size` must be a whole number".into()))?;
    let listed = section
        .get("clusterNodes")
        .and_then(Value::as_sequence)
        .ok_or_else(|| invalid("`clusterNodes` must be a list".into()))?;
    let mut cluster = Vec::with_capacity(listed.len());
    let mut seen = HashSet::new();
    for (index, node) in listed.iter().enumerate() {
        let fields = node
            .as_mapping()
            .ok_or_else(|| invalid(format!("`clusterNodes[{index}]` must be a mapping")))?;
        for key in fields.keys() {
            if !matches!(key.as_str(), Some(PRIVATE_IP | PUBLIC_IP)) {
                return Err(invalid(format!(
                    "unknown key `{}` in `clusterNodes[{index}]`",
                    drift::inline(key)
                ))
                .with_hint("a node has a `privateIP` and a `publicIP`"));
            }
        }
        let address = |key: &str| match fields.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .map(|text| Some(text.to_owned()))
                .ok_or_else(|| {
                    invalid(format!("`clusterNodes[{index}].{key}` must be an address"))
                }),
        };
        let private_ip = address(PRIVATE_IP)?
            .ok_or_else(|| invalid(format!("`clusterNodes[{index}]` has no `privateIP`")))?;
        if !seen.insert(private_ip.clone()) {
            return Err(invalid(format!(
                "{private_ip} is listed twice in `clusterNodes`"
            )));
        }
        cluster.push(ClusterNode {
            private_ip,
            public_ip: address(PUBLIC_IP)?,
        });
    }
    if cluster.len() as u64 != size {
        return Err(invalid(format!(
            "`size` is {size} but `clusterNodes` lists {} nodes",
            cluster.len()
        ))
        .with_hint("make them agree, or run `init --size N` again"));
    }
    Ok(cluster)
}

/// What apply does: the new sections, and one line per change with the counts for the summary.
#[derive(Debug)]
struct Plan {
    infrastructure: String,
    infrastructure_nodes: Vec<Value>,
    section: Mapping,
    lines: Vec<String>,
    created: usize,
    removed: usize,
    changed: usize,
    marked: usize,
    released: usize,
}

impl Plan {
    /// The counts of the plan, as what plan would do or (`done`) what apply did.
    fn summary(&self, done: bool) -> String {
        let (verb, create, remove, change, mark, release) = if done {
            (
                "Applied",
                "created",
                "removed",
                "changed",
                "marked used",
                "released",
            )
        } else {
            (
                "Plan",
                "to create",
                "to remove",
                "to change",
                "to mark used",
                "to release",
            )
        };
        format!(
            "{verb}: {} {create}, {} {remove}, {} {change}; {} nodes of `{}` {mark}, {} {release}.",
            self.created,
            self.removed,
            self.changed,
            self.marked,
            self.infrastructure,
            self.released
        )
    }
}

fn make_plan(cluster: &[ClusterNode], state: &State, module: &str) -> Result<Plan, Error> {
    let infrastructure = infrastructure(state, module)?;
    let rerun_init = format!(
        "run `init` again to take the nodes from the state of `{}`",
        infrastructure.module
    );
    for node in cluster {
        let host = infrastructure
            .nodes
            .iter()
            .find(|host| nodes::field(host, PRIVATE_IP) == Some(node.private_ip.as_str()))
            .ok_or_else(|| {
                Error::new(format!(
                    "{} is not a node of `{}`",
                    node.private_ip, infrastructure.module
                ))
                .with_hint(&rerun_init)
            })?;
        let user = nodes::used_by(host);
        if user != UNUSED && user != module {
            return Err(
                Error::new(format!("node {} is used by `{user}`", node.private_ip))
                    .with_hint("choose another node in the config, or run `init` again"),
            );
        }
        if nodes::field(host, PUBLIC_IP) != node.public_ip.as_deref() {
            return Err(Error::new(format!(
                "the config gives {} the public address {}, but `{}` has {}",
                node.private_ip,
                node.public_ip.as_deref().unwrap_or("(none)"),
                infrastructure.module,
                nodes::field(host, PUBLIC_IP).unwrap_or("(none)")
            ))
            .with_hint(rerun_init));
        }
    }

    let mut plan = Plan {
        infrastructure: infrastructure.module.to_owned(),
        infrastructure_nodes: Vec::with_capacity(infrastructure.nodes.len()),
        section: Mapping::new(),
        lines: Vec::new(),
        created: 0,
        removed: 0,
        changed: 0,
        marked: 0,
        released: 0,
    };

    let wanted: Vec<Value> = cluster
        .iter()
        .map(|node| {
            let mut fields = Mapping::new();
            fields.insert(PRIVATE_IP.into(), node.private_ip.clone().into());
            if let Some(public) = &node.public_ip {
                fields.insert(PUBLIC_IP.into(), public.clone().into());
            }
            fields.insert("state".into(), CREATED.into());
            Value::Mapping(fields)
        })
        .collect();
    let empty = Value::Mapping(Mapping::new());
    let current = state.section(module).unwrap_or(&empty);
    let existing = current
        .get("clusterNodes")
        .and_then(Value::as_sequence)
        .map_or(&[][..], Vec::as_slice);
    let address = |node: &Value| nodes::field(node, PRIVATE_IP).map(str::to_owned);
    for node in &wanted {
        match existing.iter().find(|old| address(old) == address(node)) {
            None => {
                plan.lines.push(format!("+ {}", nodes::label(node)));
                plan.created += 1;
            }
            Some(old) => {
                for difference in drift::differences(old, node) {
                    plan.lines
                        .push(format!("~ {}: {difference}", nodes::label(old)));
                    plan.changed += 1;
                }
            }
        }
    }
    for old in existing {
        if !wanted.iter().any(|node| address(node) == address(old)) {
            plan.lines.push(format!("- {}", nodes::label(old)));
            plan.removed += 1;
        }
    }

    plan.section.insert("status".into(), "applied".into());
    plan.section
        .insert("size".into(), (cluster.len() as u64).into());
    plan.section
        .insert("clusterNodes".into(), Value::Sequence(wanted));
    let mut current_rest = current.clone();
    if let Value::Mapping(fields) = &mut current_rest {
        fields.shift_remove("clusterNodes");
    }
    let mut desired_rest = plan.section.clone();
    desired_rest.shift_remove("clusterNodes");
    for difference in drift::differences(&current_rest, &Value::Mapping(desired_rest)) {
        plan.lines.push(format!("~ {difference}"));
        plan.changed += 1;
    }

    let in_cluster: HashSet<&str> = cluster
        .iter()
        .map(|node| node.private_ip.as_str())
        .collect();
    for host in infrastructure.nodes {
        let mut host = host.clone();
        let user = nodes::used_by(&host).to_owned();
        let member =
            nodes::field(&host, PRIVATE_IP).is_some_and(|address| in_cluster.contains(address));
        let new_user = match (member, user == module) {
            (true, false) => Some(module),
            (false, true) => Some(UNUSED),
            _ => None,
        };
        if let (Some(new_user), Value::Mapping(fields)) = (new_user, &mut host) {
            plan.lines.push(format!(
                "~ {} node {}: {USED_BY}: {user} -> {new_user}",
                plan.infrastructure,
                nodes::label(&Value::Mapping(fields.clone()))
            ));
            if new_user == module {
                plan.marked += 1
            } else {
                plan.released += 1
            }
            fields.insert(USED_BY.into(), new_user.into());
        }
        plan.infrastructure_nodes.push(host);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(text: &str) -> State {
        State::from_text(std::path::Path::new("state.yml"), text.to_owned()).unwrap()
    }

    const AZI: &str = "azi:
  nodes:
  - {privateIP: 10.0.0.0, publicIP: 213.1.1.0, usedBy: unused}
  - {privateIP: 10.0.0.100, publicIP: 213.1.1.100, usedBy: other}
  - {privateIP: 10.0.0.2, publicIP: 213.1.1.2, usedBy: bmk}
";

    fn node(private: &str, public: &str) -> ClusterNode {
        ClusterNode {
            private_ip: private.into(),
            public_ip: Some(public.into()),
        }
    }

    #[test]
    fn finds_the_first_section_with_nodes() {
        let state = state(&format!("bmm: {{targets: []}}\n{AZI}"));
        assert_eq!(infrastructure(&state, "bmk").unwrap().module, "azi");
    }

    #[test]
    fn plans_the_cluster_and_marks_its_nodes() {
        let state = state(AZI);
        let plan = make_plan(&[node("10.0.0.0", "213.1.1.0")], &state, "bmk").unwrap();
        assert_eq!(
            plan.lines,
            [
                "+ 10.0.0.0 (213.1.1.0)",
                "~ status: (none) -> applied",
                "~ size: (none) -> 1",
                "~ azi node 10.0.0.0 (213.1.1.0): usedBy: unused -> bmk",
                "~ azi node 10.0.0.2 (213.1.1.2): usedBy: bmk -> unused",
            ]
        );
        assert_eq!((plan.created, plan.marked, plan.released), (1, 1, 1));
    }

    #[test]
    fn refuses_a_node_another_module_uses() {
        let err = make_plan(&[node("10.0.0.100", "213.1.1.100")], &state(AZI), "bmk").unwrap_err();
        assert_eq!(err.to_string(), "node 10.0.0.100 is used by `other`");
    }

    #[test]
    fn refuses_a_stale_public_address() {
        let err = make_plan(&[node("10.0.0.0", "213.1.1.9")], &state(AZI), "bmk").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the config gives 10.0.0.0 the public address 213.1.1.9, but `azi` has 213.1.1.0"
        );
    }
}
