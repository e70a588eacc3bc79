//! Bindings: which installed module a module uses for each of its requirements. A label
//! requirement can be satisfied by several installed modules (pg's `kind=persistence` by nfs
//! and by rook); the one it was given when it was applied is the one it uses, and only that
//! one may not be destroyed under it. e records the binding in the installed record, hands it
//! to the module in its requirements file, keeps it stable over re-applies, and re-checks it on
//! upgrades.
//!
//! Pure over data: the caller reads the records and statuses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph::Relation;
use crate::repository::Entry;
use crate::requirements::Status;
use crate::selector::Selector;
use crate::store::Installed;

/// One requirement of an installed module and the installed module it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// `strong` or `weak`.
    pub relation: BindingKind,
    /// The requirement, in selector syntax.
    pub selector: String,
    /// The module that satisfied it when the owner was applied.
    pub module: String,
    /// Its version then.
    pub version: String,
}

/// Whether a binding is for a strong or a weak requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingKind {
    /// The module cannot work without it.
    Strong,
    /// The module uses it when present.
    Weak,
}

impl From<Relation> for BindingKind {
    fn from(relation: Relation) -> Self {
        match relation {
            Relation::Weak => BindingKind::Weak,
            _ => BindingKind::Strong,
        }
    }
}

/// The bindings of a module about to be applied: for each requirement something installed
/// satisfies, the module it was bound to before if that one still satisfies it, else the
/// first of `prefer` that does, else the first by name. Unmet requirements get none.
pub fn choose(statuses: &[Status<'_>], previous: &[Binding], prefer: &[String]) -> Vec<Binding> {
    statuses
        .iter()
        .filter(|s| matches!(s.relation, Relation::Strong | Relation::Weak))
        .filter_map(|status| {
            let selector = status.selector.to_string();
            let kept = previous
                .iter()
                .filter(|b| b.selector == selector)
                .find_map(|b| {
                    status
                        .satisfied_by
                        .iter()
                        .find(|e| e.module.name == b.module)
                });
            let preferred = || {
                prefer
                    .iter()
                    .find_map(|p| status.satisfied_by.iter().find(|e| &e.module.name == p))
            };
            let chosen: &Entry<'_> = kept
                .or_else(preferred)
                .or_else(|| status.satisfied_by.first())?;
            Some(Binding {
                relation: status.relation.into(),
                selector,
                module: chosen.module.name.clone(),
                version: chosen.version.version.to_string(),
            })
        })
        .collect()
}

/// The installed modules bound to `module`, strongly and weakly, with the requirement each
/// binding is for. Records without bindings (from e before bindings) are not listed; see
/// [`unrecorded`].
pub fn bound_to<'i>(
    module: &str,
    installed: &'i BTreeMap<String, Installed>,
) -> Vec<(&'i Installed, &'i Binding)> {
    installed
        .values()
        .filter(|record| record.module != module)
        .flat_map(|record| {
            record
                .bindings
                .iter()
                .flatten()
                .filter(move |b| b.module == module)
                .map(move |b| (record, b))
        })
        .collect()
}

/// `db@1.0.0 (bound for `kind=storage`)`: a binding to a module, as messages name it.
pub fn describe(owner: &Installed, binding: &Binding) -> String {
    format!(
        "{}@{} (bound for `{}`)",
        owner.module, owner.version, binding.selector
    )
}

/// Installed records made before e recorded bindings: their users are found by labels.
pub fn unrecorded(installed: &BTreeMap<String, Installed>) -> Vec<&Installed> {
    installed
        .values()
        .filter(|record| record.bindings.is_none())
        .collect()
}

/// The bindings to `module` that its version `entry` would no longer satisfy: an upgrade to
/// it would take from their owners what they use.
pub fn broken_by<'i>(
    entry: Entry<'_>,
    installed: &'i BTreeMap<String, Installed>,
) -> Vec<(&'i Installed, &'i Binding)> {
    bound_to(&entry.module.name, installed)
        .into_iter()
        .filter(|(_, binding)| {
            binding
                .selector
                .parse::<Selector>()
                .is_ok_and(|selector| !selector.matches(&entry.version.labels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::{Repository, load};
    use crate::requirements::{InstalledSet, statuses};
    use std::time::SystemTime;

    fn repository() -> Repository {
        load::example()
    }

    fn record(module: &str, bindings: Option<Vec<Binding>>) -> Installed {
        Installed {
            module: module.into(),
            version: "0.1.0".into(),
            image: String::new(),
            image_id: String::new(),
            applied: SystemTime::UNIX_EPOCH,
            command: String::new(),
            bindings,
        }
    }

    fn installed(modules: &[&str]) -> BTreeMap<String, Installed> {
        modules
            .iter()
            .map(|m| (m.to_string(), record(m, Some(Vec::new()))))
            .collect()
    }

    #[test]
    fn a_binding_stays_with_the_module_chosen_first_whatever_else_satisfies_it() {
        let repository = repository();
        let records = installed(&["bmm", "azi", "k8s", "nfs", "rook"]);
        let set = InstalledSet::new(&repository, &records);
        let pg = repository.find(&"pg".parse().unwrap()).unwrap();
        let statuses = statuses(pg, &set);
        let persistence = statuses
            .iter()
            .find(|s| s.satisfied_by.len() > 1)
            .expect("nfs and rook both satisfy pg's persistence requirement");
        let selector = persistence.selector.to_string();
        let of = |bindings: &[Binding]| {
            bindings
                .iter()
                .find(|b| b.selector == selector)
                .unwrap()
                .module
                .clone()
        };
        // First by name without anything else to go by; `--prefer` wins over that.
        assert_eq!(of(&choose(&statuses, &[], &[])), "nfs");
        let preferred = choose(&statuses, &[], &["rook".to_owned()]);
        assert_eq!(of(&preferred), "rook");
        // Re-applied, it keeps its binding even when told to prefer another.
        assert_eq!(of(&choose(&statuses, &preferred, &[])), "rook");

        let mut records = records;
        records.insert("pg".into(), record("pg", Some(preferred)));
        let users: Vec<&str> = bound_to("rook", &records)
            .iter()
            .map(|(r, _)| r.module.as_str())
            .collect();
        assert_eq!(users, ["pg"]);
        assert!(bound_to("nfs", &records).is_empty());
        records.insert("old".into(), record("old", None));
        assert_eq!(unrecorded(&records).len(), 1);
    }
}
