//! The frame every `audit` shares: find what the module last applied and the section as it is
//! now, and report the differences found between them. What counts as a difference is each
//! module's own business.

use serde_yaml::Value;

use crate::record::Record;
use crate::state::State;
use crate::{Contract, Error, Outcome};

/// What an audit compares.
pub struct Compared {
    /// The section as the module last applied it.
    pub applied: Value,
    /// The state as it is now.
    pub state: State,
    /// The module's section of it.
    pub current: Value,
}

/// What an audit compares, or its outcome when there is nothing to compare.
pub enum Subject {
    /// The two sides to compare.
    Compare(Box<Compared>),
    /// Nothing was applied yet (success), or the section was removed by hand (changes).
    Done(Outcome),
}

/// Loads what the module named `name` last applied (kept in its mount) and its section now.
pub fn subject(contract: &Contract, name: &str) -> Result<Subject, Error> {
    let record = Record::in_mount(name, contract.module());
    let Some(applied) = record.load()? else {
        println!(
            "Nothing to audit: `{}` has not applied anything yet.",
            contract.module()
        );
        return Ok(Subject::Done(Outcome::Success));
    };
    let state = State::load(contract.state_file())?;
    let Some(current) = state.section(contract.module()).cloned() else {
        println!(
            "The `{}` section was removed from the state by hand.",
            contract.module()
        );
        return Ok(Subject::Done(Outcome::Changes));
    };
    Ok(Subject::Compare(Box::new(Compared {
        applied,
        state,
        current,
    })))
}

/// Prints the hand changes found (`what` names the thing audited, such as `section`) and
/// returns the audit's outcome.
pub fn report(contract: &Contract, found: &[String], what: &str) -> Outcome {
    if found.is_empty() {
        println!(
            "No drift: the `{}` section matches what it applied.",
            contract.module()
        );
        return Outcome::Success;
    }
    for line in found {
        println!("{line}");
    }
    println!(
        "Audit: {} hand changes to the `{}` {what}.",
        found.len(),
        contract.module()
    );
    Outcome::Changes
}
