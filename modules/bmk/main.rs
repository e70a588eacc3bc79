//! bmk: a mock of Apache Kafka installed on bare metal. It "installs" Kafka on nodes that an
//! infrastructure module (such as azi) recorded in the state, marks those nodes `usedBy: bmk` in
//! that module's section, and records the cluster in its own section,
//! `{status, size, clusterNodes: [{privateIP, publicIP, state}]}`.
//!
//! Its config, `bmk: {size, clusterNodes: [{privateIP, publicIP}]}`, is written by `init` from
//! the nodes the state holds at that moment, hand edits included: that is the "smart init" of the
//! design. `destroy` gives the nodes back (`usedBy: unused`) and removes the section.

use std::collections::HashSet;
use std::process::ExitCode;

use module_contract::nodes::{self, PRIVATE_IP, PUBLIC_IP, UNUSED, USED_BY};
use module_contract::record::Record;
use module_contract::state::{self, State};
use module_contract::{Contract, Error, Method, Outcome};
use module_contract::{audit, drift};
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
        Method::Destroy => destroy(contract),
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

/// What e says about bmk's first strong requirement (an infrastructure) in the requirements file
/// it writes before every method, `$E_REQUIREMENTS_FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    /// The selector as e prints it, and the best installed module that satisfies it, if any.
    Named {
        selector: String,
        module: Option<String>,
    },
    /// There is no requirements file (an older e, or bmk run by hand), for this reason.
    Unknown(String),
}

impl Requirement {
    /// Reads the requirements file that `E_REQUIREMENTS_FILE` names. It is JSON, which
    /// serde_yaml reads as well.
    fn from_env() -> Result<Requirement, Error> {
        let Some(path) = std::env::var_os("E_REQUIREMENTS_FILE") else {
            return Ok(Requirement::Unknown(
                "E_REQUIREMENTS_FILE is not set (an older e?)".to_owned(),
            ));
        };
        let path = std::path::PathBuf::from(path);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Requirement::Unknown(format!(
                    "no requirements file at `{}`",
                    path.display()
                )));
            }
            Err(err) => {
                return Err(Error::new(format!(
                    "failed to read `{}`: {err}",
                    path.display()
                )));
            }
        };
        Requirement::parse(&text).map_err(|what| {
            Error::new(format!(
                "invalid requirements file `{}`: {what}",
                path.display()
            ))
        })
    }

    /// The first strong requirement of a requirements file.
    fn parse(text: &str) -> Result<Requirement, String> {
        let file: Value = serde_yaml::from_str(text).map_err(|err| err.to_string())?;
        let first = &file["strong"][0];
        let selector = first["selector"]
            .as_str()
            .ok_or("no `strong[0].selector`")?
            .to_owned();
        let module = first["satisfied_by"][0]["module"]
            .as_str()
            .map(str::to_owned);
        Ok(Requirement::Named { selector, module })
    }
}

/// Finds the infrastructure bmk runs on: the module that e names in the requirements file as the
/// best installed one for bmk's strong requirement; without a requirements file, the first
/// section of the state, other than bmk's own, that has a list of `nodes` (and a note says so).
fn infrastructure<'a>(
    state: &'a State,
    module: &str,
    requirement: &Requirement,
) -> Result<Infrastructure<'a>, Error> {
    let with_nodes = |name: &'a Value, section: &'a Value| {
        let nodes = section.get("nodes")?.as_sequence()?;
        Some(Infrastructure {
            module: name.as_str()?,
            nodes,
        })
    };
    match requirement {
        Requirement::Named {
            selector,
            module: None,
        } => Err(Error::new(format!(
            "`{module}` needs an infrastructure ({selector}), and no installed module provides one"
        ))
        .with_hint(format!(
            "find one with `e search '{selector}'` and install it first"
        ))),
        Requirement::Named {
            module: Some(named),
            ..
        } => state
            .sections()
            .iter()
            .find(|(name, _)| name.as_str() == Some(named.as_str()))
            .and_then(|(name, section)| with_nodes(name, section))
            .ok_or_else(|| {
                Error::new(format!(
                    "`{named}` provides the infrastructure of `{module}`, but the state has no `{named}` section with `nodes`"
                ))
                .with_hint(format!("apply `{named}` first"))
            }),
        Requirement::Unknown(why) => {
            let found = state
                .sections()
                .iter()
                .filter(|(name, _)| name.as_str() != Some(module))
                .find_map(|(name, section)| with_nodes(name, section))
                .ok_or_else(|| {
                    Error::new("the state has no infrastructure section with `nodes`")
                        .with_hint("apply an infrastructure module such as `azi` first")
                })?;
            eprintln!(
                "note: {why}: taking `{}` as the infrastructure, guessed from the state",
                found.module
            );
            Ok(found)
        }
    }
}

fn init(contract: &Contract) -> Result<Outcome, Error> {
    let size = contract.size_option(DEFAULT_SIZE)?;
    let state = State::load(contract.state_file())?;
    let infrastructure = infrastructure(&state, contract.module(), &Requirement::from_env()?)?;
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
    let plan = make_plan(
        &config,
        &state,
        contract.module(),
        &Requirement::from_env()?,
    )?;
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
    let plan = make_plan(
        &config,
        &state,
        contract.module(),
        &Requirement::from_env()?,
    )?;
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
    let (applied, state, current) = match audit::subject(contract, NAME)? {
        audit::Subject::Compare(compared) => (compared.applied, compared.state, compared.current),
        audit::Subject::Done(outcome) => return Ok(outcome),
    };
    let mut found: Vec<String> = drift::differences(&applied, &current)
        .iter()
        .map(drift::Difference::by_hand)
        .collect();
    found.extend(missing_nodes(
        &state,
        &current,
        contract.module(),
        &Requirement::from_env()?,
    ));
    Ok(audit::report(contract, &found, "cluster"))
}

fn destroy(contract: &Contract) -> Result<Outcome, Error> {
    contract.no_arguments()?;
    let module = contract.module();
    let mut state = State::load(contract.state_file())?;
    let released = release_nodes(&mut state, module);
    let removed = state.remove_section(module).is_some();
    let record = Record::in_mount(NAME, module);
    if !removed && released.is_empty() {
        record.remove()?;
        println!("Nothing to destroy: the state has no `{module}` section.");
        return Ok(Outcome::Success);
    }
    // The state first: if the record cannot be removed, e puts the state back and the record
    // still matches it.
    state.save(module)?;
    record.remove()?;
    let mut done = Vec::new();
    if removed {
        done.push(format!("removed the `{module}` section of the state"));
    }
    for (infrastructure, count) in &released {
        done.push(format!("released {count} nodes of `{infrastructure}`"));
    }
    println!("Destroyed: {}.", done.join("; "));
    Ok(Outcome::Success)
}

/// Sets `usedBy: unused` on every node that `module` marked as its own, in every other section
/// with a `nodes` list, and returns how many it released in each. It looks at them all rather
/// than at the infrastructure e names now, so that nodes marked before a change of requirement
/// (or of the state by hand) are given back as well.
fn release_nodes(state: &mut State, module: &str) -> Vec<(String, usize)> {
    let mut released = Vec::new();
    let sections: Vec<(String, Value)> = state
        .sections()
        .iter()
        .filter_map(|(name, section)| Some((name.as_str()?.to_owned(), section.clone())))
        .filter(|(name, _)| name != module)
        .collect();
    for (name, mut section) in sections {
        let Some(Value::Sequence(hosts)) = section.get_mut("nodes") else {
            continue;
        };
        let mut count = 0;
        for host in hosts {
            if let Value::Mapping(fields) = host
                && fields.get(USED_BY).and_then(Value::as_str) == Some(module)
            {
                fields.insert(USED_BY.into(), UNUSED.into());
                count += 1;
            }
        }
        if count > 0 {
            state.set_section(&name, section);
            released.push((name, count));
        }
    }
    released
}

/// The cluster nodes that the infrastructure no longer has, or no longer marks as used by bmk.
fn missing_nodes(
    state: &State,
    current: &Value,
    module: &str,
    requirement: &Requirement,
) -> Vec<String> {
    let infrastructure = match infrastructure(state, module, requirement) {
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

fn make_plan(
    cluster: &[ClusterNode],
    state: &State,
    module: &str,
    requirement: &Requirement,
) -> Result<Plan, Error> {
    let infrastructure = infrastructure(state, module, requirement)?;
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

    fn guess() -> Requirement {
        Requirement::Unknown("no requirements file".to_owned())
    }

    fn named(module: Option<&str>) -> Requirement {
        Requirement::Named {
            selector: "kind=infrastructure,provider in (azure, aws)".to_owned(),
            module: module.map(str::to_owned),
        }
    }

    #[test]
    fn without_a_requirements_file_guesses_the_first_section_with_nodes() {
        let state = state(&format!("bmm: {{targets: []}}\n{AZI}"));
        assert_eq!(
            infrastructure(&state, "bmk", &guess()).unwrap().module,
            "azi"
        );
    }

    #[test]
    fn takes_the_infrastructure_that_e_names() {
        let state = state(&format!("{AZI}aws:\n  nodes: []\n"));
        let found = infrastructure(&state, "bmk", &named(Some("aws"))).unwrap();
        assert_eq!((found.module, found.nodes.len()), ("aws", 0));
        let err = infrastructure(&state, "bmk", &named(Some("gcp"))).unwrap_err();
        assert_eq!(
            (err.to_string(), err.hint()),
            (
                "`gcp` provides the infrastructure of `bmk`, but the state has no `gcp` section with `nodes`".to_owned(),
                Some("apply `gcp` first")
            )
        );
    }

    #[test]
    fn fails_when_no_installed_module_satisfies_the_requirement() {
        let err = infrastructure(&state(AZI), "bmk", &named(None)).unwrap_err();
        assert_eq!(
            (err.to_string(), err.hint()),
            (
                "`bmk` needs an infrastructure (kind=infrastructure,provider in (azure, aws)), and no installed module provides one".to_owned(),
                Some("find one with `e search 'kind=infrastructure,provider in (azure, aws)'` and install it first")
            )
        );
    }

    #[test]
    fn reads_the_requirements_file_e_writes() {
        let text = r#"{
  "module": "bmk",
  "version": "0.1.0",
  "strong": [
    {
      "selector": "kind=infrastructure,provider in (azure, aws)",
      "satisfied_by": [
        {
          "module": "azi",
          "version": "0.1.0"
        }
      ]
    }
  ],
  "weak": []
}"#;
        assert_eq!(Requirement::parse(text), Ok(named(Some("azi"))));
        let empty = text.replace(
            "[\n        {\n          \"module\": \"azi\",\n          \"version\": \"0.1.0\"\n        }\n      ]",
            "[]",
        );
        assert_eq!(Requirement::parse(&empty), Ok(named(None)));
        assert!(Requirement::parse(r#"{"strong": []}"#).is_err());
    }

    #[test]
    fn plans_the_cluster_and_marks_its_nodes() {
        let state = state(AZI);
        let plan = make_plan(&[node("10.0.0.0", "213.1.1.0")], &state, "bmk", &guess()).unwrap();
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
    fn destroy_releases_the_nodes_bmk_marked_in_every_infrastructure() {
        let mut state = state(&format!(
            "{AZI}aws:\n  nodes: [{{privateIP: 10.1.0.0, usedBy: bmk}}, {{privateIP: 10.1.0.1}}]\nbmk:\n  nodes: [{{usedBy: bmk}}]\n"
        ));
        assert_eq!(
            release_nodes(&mut state, "bmk"),
            [("azi".to_owned(), 1), ("aws".to_owned(), 1)]
        );
        let users = |section: &str| -> Vec<&str> {
            state.section(section).unwrap()["nodes"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(nodes::used_by)
                .collect()
        };
        assert_eq!(users("azi"), [UNUSED, "other", UNUSED]);
        assert_eq!(users("aws"), [UNUSED, UNUSED]);
        assert_eq!(users("bmk"), ["bmk"]);
        assert_eq!(release_nodes(&mut state, "bmk"), []);
    }

    #[test]
    fn refuses_a_node_another_module_uses() {
        let err = make_plan(
            &[node("10.0.0.100", "213.1.1.100")],
            &state(AZI),
            "bmk",
            &guess(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "node 10.0.0.100 is used by `other`");
    }

    #[test]
    fn refuses_a_stale_public_address() {
        let err = make_plan(
            &[node("10.0.0.0", "213.1.1.9")],
            &state(AZI),
            "bmk",
            &guess(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the config gives 10.0.0.0 the public address 213.1.1.9, but `azi` has 213.1.1.0"
        );
    }
}
