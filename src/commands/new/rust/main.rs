//! __NAME__: a module of e, in Rust with nothing but std (written by `e new __NAME__ --template
//! rust`).
//!
//! The module contract (docs/modules.md in e's sources) in a few lines: the first argument is
//! the method; E_STATE_FILE and E_CONFIG_FILE say where the state and this module's config are;
//! the exit code says what happened: 0 done (or no changes), 2 changes (plan) or drift (audit),
//! 1 an error, said on stderr with a hint.
//!
//! What this module does is a placeholder to replace: it keeps a number, `replicas`, from its
//! config in its section of the state, and a copy of what it applied in its mount
//! /var/lib/__NAME__, so that audit finds hand changes:
//!
//! ```yaml
//! __NAME__:
//!   status: applied
//!   replicas: 1
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where this module keeps a copy of what it applied (a mount in repository.yaml).
const RECORD_DIR: &str = "/var/lib/__NAME__";

/// What a method did: done, changes (plan) or drift (audit).
enum Done {
    Ok,
    Changes,
}

/// An error for stderr, and what to do about it.
struct Failure {
    message: String,
    hint: Option<String>,
}

fn fail(message: impl Into<String>, hint: Option<&str>) -> Failure {
    Failure {
        message: message.into(),
        hint: hint.map(str::to_owned),
    }
}

/// Where things are, from the environment e sets.
struct Module {
    name: String,
    state: PathBuf,
    config: PathBuf,
    record: PathBuf,
}

impl Module {
    fn from_env() -> Module {
        let name = std::env::var("E_MODULE").unwrap_or_else(|_| "__NAME__".to_owned());
        let shared = std::env::var("E_SHARED").unwrap_or_else(|_| "/shared".to_owned());
        let state = std::env::var("E_STATE_FILE").unwrap_or_else(|_| format!("{shared}/state.yml"));
        let config = std::env::var("E_CONFIG_FILE")
            .unwrap_or_else(|_| format!("{shared}/{name}-config.yml"));
        Module {
            name,
            state: state.into(),
            config: config.into(),
            record: Path::new(RECORD_DIR).join("applied.yml"),
        }
    }

    /// The text of a file; empty when it does not exist.
    fn read(path: &Path) -> Result<String, Failure> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(err) => Err(fail(format!("cannot read `{}`: {err}", path.display()), None)),
        }
    }

    /// Whether a line starts a top-level key (not indented, not a comment or a list item).
    fn top_level(line: &str) -> bool {
        !line.is_empty() && !line.starts_with([' ', '\t', '#', '-'])
    }

    /// The value of `key` in this module's top-level section of `text` (block style).
    fn value(&self, text: &str, key: &str) -> Option<String> {
        let mut inside = false;
        for line in text.lines() {
            if Self::top_level(line) {
                inside = line.starts_with(&format!("{}:", self.name));
            } else if inside {
                if let Some(value) = line.trim_start().strip_prefix(&format!("{key}:")) {
                    return Some(value.trim().to_owned());
                }
            }
        }
        None
    }

    /// `text` without this module's top-level section, every other line as it was.
    fn others(&self, text: &str) -> String {
        let mut skip = false;
        let mut kept = String::new();
        for line in text.lines() {
            if Self::top_level(line) {
                skip = line.starts_with(&format!("{}:", self.name));
            }
            if !skip {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        kept
    }

    /// Writes a file whole under a temporary name, then renames it.
    fn write(path: &Path, text: &str) -> Result<(), Failure> {
        let temporary = path.with_extension("tmp");
        fs::write(&temporary, text)
            .and_then(|()| fs::rename(&temporary, path))
            .map_err(|err| fail(format!("cannot write `{}`: {err}", path.display()), None))
    }

    /// The replicas the config asks for.
    fn desired(&self) -> Result<u32, Failure> {
        if !self.config.exists() {
            return Err(fail(
                format!("there is no config at `{}`", self.config.display()),
                Some("run `init` first"),
            ));
        }
        let text = Self::read(&self.config)?;
        let wanted = self.value(&text, "replicas").unwrap_or_default();
        wanted.parse().map_err(|_| {
            fail(
                format!(
                    "`replicas` in `{}` must be a whole number, not `{wanted}`",
                    self.config.display()
                ),
                Some("write `replicas: 1` under the module's key"),
            )
        })
    }

    fn metadata(&self) -> Result<Done, Failure> {
        print!("{}", include_str!("../metadata.yaml"));
        Ok(Done::Ok)
    }

    fn init(&self) -> Result<Done, Failure> {
        let state = Self::read(&self.state)?;
        let replicas = self.value(&state, "replicas").unwrap_or_else(|| "1".to_owned());
        let text = format!(
            "# What `apply` makes real for {0}.\n{0}:\n  replicas: {replicas}\n",
            self.name
        );
        Self::write(&self.config, &text)?;
        println!("Wrote `{}`: replicas {replicas}.", self.config.display());
        Ok(Done::Ok)
    }

    fn plan(&self) -> Result<Done, Failure> {
        let wanted = self.desired()?.to_string();
        let state = Self::read(&self.state)?;
        let have = self.value(&state, "replicas");
        if have.as_deref() == Some(wanted.as_str())
            && self.value(&state, "status").as_deref() == Some("applied")
        {
            println!("No changes: {} has {wanted} replicas.", self.name);
            return Ok(Done::Ok);
        }
        println!(
            "~ replicas: {} -> {wanted}",
            have.as_deref().unwrap_or("(none)")
        );
        println!("Plan: 1 to change.");
        Ok(Done::Changes)
    }

    fn apply(&self) -> Result<Done, Failure> {
        let wanted = self.desired()?;
        // The record first: a missing mount fails before the state changes.
        let record = format!("replicas: {wanted}\n");
        let temporary = self.record.with_extension("tmp");
        fs::write(&temporary, &record).map_err(|err| {
            fail(
                format!("cannot write `{}`: {err}", temporary.display()),
                Some("declare the record folder in the module's `mounts` in repository.yaml"),
            )
        })?;
        let state = Self::read(&self.state)?;
        let text = format!(
            "{}{}:\n  status: applied\n  replicas: {wanted}\n",
            self.others(&state),
            self.name
        );
        Self::write(&self.state, &text)?;
        fs::rename(&temporary, &self.record)
            .map_err(|err| fail(format!("cannot keep the record: {err}"), None))?;
        println!("Applied: {} has {wanted} replicas.", self.name);
        Ok(Done::Ok)
    }

    fn audit(&self) -> Result<Done, Failure> {
        if !self.record.exists() {
            println!("Nothing to audit: {} has not applied anything yet.", self.name);
            return Ok(Done::Ok);
        }
        let record = Self::read(&self.record)?;
        let applied = record
            .lines()
            .find_map(|line| line.strip_prefix("replicas:"))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned();
        let state = Self::read(&self.state)?;
        if !state.lines().any(|line| line.starts_with(&format!("{}:", self.name))) {
            println!("The `{}` section was removed from the state by hand.", self.name);
            return Ok(Done::Changes);
        }
        match self.value(&state, "replicas") {
            Some(have) if have == applied => {
                println!("No drift: {} has the {applied} replicas it applied.", self.name);
                Ok(Done::Ok)
            }
            have => {
                println!(
                    "replicas: {applied} -> {} (changed by hand)",
                    have.as_deref().unwrap_or("(none)")
                );
                Ok(Done::Changes)
            }
        }
    }

    fn destroy(&self) -> Result<Done, Failure> {
        let state = Self::read(&self.state)?;
        if state.lines().any(|line| line.starts_with(&format!("{}:", self.name))) {
            Self::write(&self.state, &self.others(&state))?;
        }
        let _ = fs::remove_file(&self.record);
        println!("Destroyed: {} has no section in the state.", self.name);
        Ok(Done::Ok)
    }
}

fn main() -> ExitCode {
    let module = Module::from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let methods = "metadata, init, plan, apply, audit, destroy";
    let result = match args.first().map(String::as_str) {
        None => Err(fail("no method given", Some(&format!("pass one of: {methods}")))),
        Some(method) if args.len() > 1 => Err(fail(
            format!("`{method}` takes no arguments, got: {}", args[1..].join(" ")),
            None,
        )),
        Some("metadata") => module.metadata(),
        Some("init") => module.init(),
        Some("plan") => module.plan(),
        Some("apply") => module.apply(),
        Some("audit") => module.audit(),
        Some("destroy") => module.destroy(),
        Some(other) => Err(fail(
            format!("unknown method `{other}`"),
            Some(&format!("methods are: {methods}")),
        )),
    };
    match result {
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::Changes) => ExitCode::from(2),
        Err(failure) => {
            eprintln!("{}: {}", module.name, failure.message);
            if let Some(hint) = failure.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
