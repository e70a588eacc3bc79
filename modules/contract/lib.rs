//! The module side of e's contract, shared by the example modules written in Rust.
//!
//! e runs a module's image with the method as the first argument and tells it where things are
//! through `E_*` variables; the module answers with an exit code (0 done or nothing to change,
//! 2 changes or drift, 1 error) and human-readable text on stdout. This library owns that
//! conversation ([`Contract`], [`run`]), the shared state file ([`state`]), the module's private
//! record of what it last applied ([`record`]), the comparison used by `plan` and `audit`
//! ([`drift`]), and the shape of the nodes that infrastructure modules share ([`nodes`]).

pub mod audit;
pub mod drift;
pub mod nodes;
pub mod record;
pub mod state;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// An error that ends a method with exit code 1: a message and, when we know one, what to do next.
#[derive(Debug)]
pub struct Error {
    message: String,
    hint: Option<String>,
}

impl Error {
    /// An error with a lowercase message fragment and no hint.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the line printed after the message that tells the user what to do next.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// The line that tells the user what to do next, if there is one.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The result of a method that did not fail, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: done, or (for `plan` and `audit`) nothing to change and no drift.
    Success,
    /// Exit 2: `plan` found changes to apply, or `audit` found hand changes.
    Changes,
}

/// The methods a module answers, as the hints of usage errors list them.
const METHODS: &str = "metadata, init, plan, apply, audit, destroy";

/// The methods every module answers besides `metadata`, which [`run`] answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Writes the module's config file from what the state holds.
    Init,
    /// Compares the config with the state and shows what `apply` would change.
    Plan,
    /// Makes the changes and records them in the state.
    Apply,
    /// Compares the state with what the module last applied, to find hand changes.
    Audit,
    /// Removes the module's section from the state (and undoes its marks in other sections) and
    /// forgets its record; with nothing to remove it says so and succeeds.
    Destroy,
}

/// What e tells a module about one run: which method, which arguments, where the files are.
#[derive(Debug, Clone)]
pub struct Contract {
    module: String,
    method: String,
    args: Vec<String>,
    shared: PathBuf,
    state_file: PathBuf,
    config_file: PathBuf,
}

impl Contract {
    /// Reads the contract from explicit arguments (method first) and `E_*` variables, falling back
    /// to the `/shared` layout e uses when a variable is absent.
    pub fn new(
        default_module: &str,
        mut args: Vec<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Contract, Error> {
        if args.is_empty() {
            return Err(Error::new("no method given").with_hint(format!("pass one of: {METHODS}")));
        }
        let method = args.remove(0);
        let module = var("E_MODULE").unwrap_or_else(|| default_module.to_owned());
        let shared = PathBuf::from(var("E_SHARED").unwrap_or_else(|| "/shared".to_owned()));
        let state_file =
            var("E_STATE_FILE").map_or_else(|| shared.join("state.yml"), PathBuf::from);
        let config_file = var("E_CONFIG_FILE").map_or_else(
            || shared.join(format!("{module}-config.yml")),
            PathBuf::from,
        );
        Ok(Contract {
            module,
            method,
            args,
            shared,
            state_file,
            config_file,
        })
    }

    /// The module's name, which is also the key of its section in the state and in its config.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The shared directory (`E_SHARED`).
    pub fn shared(&self) -> &Path {
        &self.shared
    }

    /// The shared state file (`E_STATE_FILE`).
    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    /// The module's config file (`E_CONFIG_FILE`).
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The value of `--size N` (or `--size=N`) among the method's arguments, or `default`;
    /// any other argument is an error, so that a typo is not silently ignored.
    pub fn size_option(&self, default: u64) -> Result<u64, Error> {
        let mut size = default;
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            let value = if arg == "--size" {
                args.next()
                    .ok_or_else(|| Error::new("`--size` needs a value"))?
                    .as_str()
            } else if let Some(value) = arg.strip_prefix("--size=") {
                value
            } else {
                return Err(Error::new(format!(
                    "unexpected argument `{arg}` for `{}`",
                    self.method
                ))
                .with_hint("the only option is `--size N`"));
            };
            size = value.parse().map_err(|_| {
                Error::new(format!("`--size` must be a whole number, not `{value}`"))
            })?;
        }
        Ok(size)
    }

    /// Fails if the method was given any argument, for the methods that take none.
    pub fn no_arguments(&self) -> Result<(), Error> {
        match self.args.first() {
            None => Ok(()),
            Some(arg) => Err(Error::new(format!(
                "unexpected argument `{arg}` for `{}`",
                self.method
            ))
            .with_hint(format!("`{}` takes no arguments", self.method))),
        }
    }

    fn parse_method(&self) -> Result<Option<Method>, Error> {
        Ok(Some(match self.method.as_str() {
            "metadata" => return Ok(None),
            "init" => Method::Init,
            "plan" => Method::Plan,
            "apply" => Method::Apply,
            "audit" => Method::Audit,
            "destroy" => Method::Destroy,
            other => {
                return Err(Error::new(format!("unknown method `{other}`"))
                    .with_hint(format!("methods are: {METHODS}")));
            }
        }))
    }
}

/// Runs one method of a module from the process's arguments and environment: answers `metadata`
/// with `metadata` (the module's labels, requires and influences, as in repository.yaml), hands
/// the other methods to `dispatch`, and turns the result into the contract's exit code.
pub fn run(
    default_module: &str,
    metadata: &str,
    dispatch: fn(&Contract, Method) -> Result<Outcome, Error>,
) -> ExitCode {
    let result = Contract::new(default_module, std::env::args().skip(1).collect(), |name| {
        std::env::var(name).ok()
    })
    .and_then(|contract| match contract.parse_method()? {
        None => {
            print!("{metadata}");
            Ok(Outcome::Success)
        }
        Some(method) => dispatch(&contract, method),
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Changes) => ExitCode::from(2),
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(args: &[&str], vars: &[(&str, &str)]) -> Result<Contract, Error> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Contract::new(
            "azi",
            args.iter().map(|a| (*a).to_owned()).collect(),
            move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
    }

    #[test]
    fn defaults_to_the_shared_layout() {
        let contract = contract(&["plan"], &[]).unwrap();
        assert_eq!(contract.state_file(), Path::new("/shared/state.yml"));
        assert_eq!(contract.config_file(), Path::new("/shared/azi-config.yml"));
        assert_eq!(contract.module(), "azi");
    }

    #[test]
    fn follows_the_variables() {
        let contract =
            contract(&["plan"], &[("E_MODULE", "infra"), ("E_SHARED", "/tmp/s")]).unwrap();
        assert_eq!(contract.state_file(), Path::new("/tmp/s/state.yml"));
        assert_eq!(contract.config_file(), Path::new("/tmp/s/infra-config.yml"));
    }

    #[test]
    fn reads_the_size_option() {
        assert_eq!(contract(&["init"], &[]).unwrap().size_option(5).unwrap(), 5);
        assert_eq!(
            contract(&["init", "--size", "7"], &[])
                .unwrap()
                .size_option(5)
                .unwrap(),
            7
        );
        assert_eq!(
            contract(&["init", "--size=2"], &[])
                .unwrap()
                .size_option(5)
                .unwrap(),
            2
        );
        assert!(
            contract(&["init", "--size", "x"], &[])
                .unwrap()
                .size_option(5)
                .is_err()
        );
        assert!(
            contract(&["init", "--sise", "3"], &[])
                .unwrap()
                .size_option(5)
                .is_err()
        );
    }

    #[test]
    fn reads_the_method() {
        let method = |name: &str| contract(&[name], &[]).unwrap().parse_method().unwrap();
        assert_eq!(method("metadata"), None);
        assert_eq!(method("apply"), Some(Method::Apply));
        assert_eq!(method("destroy"), Some(Method::Destroy));
    }

    #[test]
    fn rejects_an_unknown_method() {
        let err = contract(&["backup"], &[])
            .unwrap()
            .parse_method()
            .unwrap_err();
        assert_eq!(
            (err.to_string(), err.hint()),
            (
                "unknown method `backup`".to_owned(),
                Some("methods are: metadata, init, plan, apply, audit, destroy")
            )
        );
    }
}
