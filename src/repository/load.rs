//! Reads `repository.yaml`, validates it, and turns every problem into an error that names the
//! file, line and column, the module and version, and says what to do.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{Document, Position, Step, locate, scalar_at};
use super::model::{Command, Repository};

/// A repository that loaded, with what the user should know about it.
#[derive(Debug)]
pub struct Loaded {
    /// The repository.
    pub repository: Repository,
    /// Problems that do not stop loading (non-semver versions), each a full sentence.
    pub warnings: Vec<String>,
}

/// A repository file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    file: PathBuf,
    position: Option<Position>,
    place: Option<String>,
    message: String,
    hint: Option<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(position) = self.position {
            write!(f, ":{}:{}", position.line, position.column)?;
        }
        write!(f, ": ")?;
        if let Some(place) = &self.place {
            write!(f, "{place}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// Reads and validates the repository file at `path`.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let fail = |message: String, hint: &str| LoadError {
        file: path.to_owned(),
        position: None,
        place: None,
        message,
        hint: Some(hint.to_owned()),
    };
    let bytes = read(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => fail(
            "no such file".to_owned(),
            "pass `--repository PATH` or set `E_REPOSITORY`, or run e in the folder that holds repository.yaml",
        ),
        std::io::ErrorKind::IsADirectory => fail(
            "is a directory, not a repository file".to_owned(),
            "point `--repository` at the repository.yaml file itself",
        ),
        _ => fail(format!("cannot be read: {err}"), "check the path and its permissions"),
    })?;
    let source = std::str::from_utf8(&bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let column = valid.len() - valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
        LoadError {
            position: Some(Position { line, column }),
            ..fail(
                "the file is not valid UTF-8".to_owned(),
                "save the file as UTF-8",
            )
        }
    })?;
    parse(source, path)
}

/// Files from this size on are mapped rather than read (see [`read`]).
const MAPPED_MIN_BYTES: u64 = 1 << 20;

/// A repository file's bytes: read, or mapped.
enum Bytes {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Read(bytes) => bytes,
            Bytes::Mapped(map) => map,
        }
    }
}

/// The bytes of the file at `path`. A large file is mapped: its pages are the kernel's page
/// cache, where reading it copied 30 MB into memory that the kernel must zero first, which this
/// machine makes slow (see docs/benchmarks.md). Any error is that of reading it.
fn read(path: &Path) -> std::io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() >= MAPPED_MIN_BYTES {
        // SAFETY: the map is only read, and dropped before `load` returns (the repository
        // owns copies of what it keeps). Another process that rewrites the file meanwhile
        // changes what is read, as it would change a read in progress; one that truncates it
        // makes the kernel stop e with SIGBUS, the price every reader of mapped files
        // (ripgrep, git) pays. An editor that saves by writing a new file and renaming it
        // leaves the map whole.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            return Ok(Bytes::Mapped(map));
        }
    }
    std::fs::read(path).map(Bytes::Read)
}

/// Files from this size on are parsed in parallel, one module at a time (see `split.rs`);
/// below it, threads would cost more than they save.
const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// Set to `whole` to read every repository the way e did before the JSON and parallel paths:
/// serde_yaml on the whole document; set to `serde_yaml` to keep the JSON and parallel paths
/// but read every module with serde_yaml (the block reader of `block_yaml.rs` off). Kept to
/// measure one against the other (`benches/search.rs`) and to rule the faster paths out when
/// in doubt.
pub const PARSER_VARIABLE: &str = "E_REPOSITORY_PARSER";

/// Parses and validates repository text; `file` is only used to name it in messages.
///
/// A text that is JSON is read by serde_json, and a large YAML text module by module on every
/// core; either gives up on the first problem, and the whole document is then parsed by
/// serde_yaml, which reports it with the file's line and column. So every path returns the
/// same repository, and every error is the one the whole parse gives.
pub fn parse(source: &str, file: &Path) -> Result<Loaded, LoadError> {
    let paths = if whole() {
        Paths::WHOLE
    } else {
        Paths {
            json: true,
            split_from: PARALLEL_MIN_BYTES,
            block_yaml: std::env::var_os(PARSER_VARIABLE).is_none_or(|value| value != "serde_yaml"),
        }
    };
    parse_with(source, file, paths)
}

/// Whether [`PARSER_VARIABLE`] asks for the whole parse only.
pub fn whole() -> bool {
    std::env::var_os(PARSER_VARIABLE).is_some_and(|value| value == "whole")
}

/// Which faster paths [`parse_with`] may take.
#[derive(Debug, Clone, Copy)]
struct Paths {
    /// Whether a JSON text is read by serde_json.
    json: bool,
    /// From how many bytes on a text is parsed on every core: YAML module by module, JSON
    /// in parts.
    split_from: usize,
    /// Whether those modules are read by the block reader first (serde_yaml when it declines).
    block_yaml: bool,
}

impl Paths {
    /// Only serde_yaml on the whole document.
    const WHOLE: Paths = Paths {
        json: false,
        split_from: usize::MAX,
        block_yaml: false,
    };
}

fn parse_with(source: &str, file: &Path, paths: Paths) -> Result<Loaded, LoadError> {
    // A byte order mark is no content: editors on Windows write one.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if paths.json
        && let Some(loaded) = parse_json(source, file, paths.split_from)
    {
        return loaded;
    }
    // The parser's time grows with the nesting depth: refuse deep nesting before parsing.
    let outline = if source.len() >= paths.split_from {
        crate::yaml_limits::outline(source)
    } else {
        crate::yaml_limits::Outline {
            scan: crate::yaml_limits::scan(source),
            ..Default::default()
        }
    };
    let scan = outline.scan;
    if let Some(deep) = scan.too_deep {
        return Err(LoadError {
            file: file.to_owned(),
            position: Some(Position {
                line: deep.line,
                column: deep.column,
            }),
            place: None,
            message: deep.to_string(),
            hint: Some(
                "a repository never needs this; check that the file is the one you meant"
                    .to_owned(),
            ),
        });
    }
    // serde drops tags without a word (`image: !Secret x` would run `x`): refuse them.
    if scan.tags
        && let Some(tag) = crate::yaml_limits::first_tag(source)
    {
        return Err(LoadError {
            file: file.to_owned(),
            position: Some(Position {
                line: tag.line,
                column: tag.column,
            }),
            place: None,
            message: tag.to_string(),
            hint: Some(
                "remove the tag; write the value plainly, in quotes if it must stay text (`\"!x\"`)"
                    .to_owned(),
            ),
        });
    }
    // Aliases may cross modules, and documents end where the split cannot see: whole parse.
    if !scan.aliases
        && !outline.documents
        && let Some(split) = super::split::split(source, &outline.lines)
        && let Some(repository) = split.parse(crate::parallel::threads(), paths.block_yaml)
    {
        let warnings = validate(&repository, &split.locator(), file)?;
        return Ok(Loaded {
            repository,
            warnings,
        });
    }
    let repository: Repository =
        serde_yaml::from_str(source).map_err(|err| yaml_error(source, file, &err))?;
    let document = Document::new(source);
    let warnings = validate(&repository, &|path| document.locate(path), file)?;
    Ok(Loaded {
        repository,
        warnings,
    })
}

/// Reads a text that is JSON with serde_json (see `json.rs`), ten times faster than serde_yaml
/// reads it, into the repository serde_yaml would make of it.
///
/// `None` when it is not JSON, or when a part of it reads neither as JSON nor as YAML: the YAML
/// path then reads it (JSON is YAML) and reports the error with its line, column and module, as
/// for any repository. JSON has no aliases, tags or block nesting, and serde_json descends no
/// deeper than the model's types (a value of the wrong shape fails where it starts), so the
/// limits of `yaml_limits` have nothing to bound here; deep nesting fails, and the YAML path
/// refuses it with its line and column.
fn parse_json(
    source: &str,
    file: &Path,
    parallel_from: usize,
) -> Option<Result<Loaded, LoadError>> {
    if !source.trim_start().starts_with('{') {
        return None;
    }
    let threads = if source.len() >= parallel_from {
        crate::parallel::threads()
    } else {
        1
    };
    let read = super::json::read(source, threads)?;
    let warnings = validate(&read.repository, &|path| read.locate(path), file);
    Some(warnings.map(|warnings| Loaded {
        repository: read.repository,
        warnings,
    }))
}

/// Turns a serde_yaml error into one that names the module and version and gives a hint.
fn yaml_error(source: &str, file: &Path, err: &serde_yaml::Error) -> LoadError {
    let mut message = err.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    let mut place = None;
    let mut position = err.location().map(|l| Position {
        line: l.line(),
        column: l.column(),
    });
    if message.starts_with("components[")
        && let Some((path, rest)) = message.split_once(": ")
    {
        let mut path = path.to_owned();
        message = rest.to_owned();
        // A value checked as it is read names its field (see `limits.rs`), which serde_yaml's
        // path lacks: point at the value itself.
        if let Some((field, rest)) = message
            .strip_prefix("field `")
            .and_then(|m| m.split_once("`: "))
        {
            path = format!("{path}.{field}");
            message = rest.to_owned();
            position = locate(source, &steps(&path)).or(position);
        }
        place = Some(describe_path(source, &path));
    }
    let hint = if message.contains("unknown field") {
        "check the spelling: only the fields listed above are allowed here (see docs/repository.md)"
    } else if message.contains("duplicate") {
        "each key may appear once; remove or rename the repeated one"
    } else if message.contains("recursion limit") {
        "the file nests too deeply to be a repository; check its indentation"
    } else if message.contains("repetition limit") || message.contains("alias") {
        "the file expands YAML aliases too many times; write the values out instead"
    } else if message.contains("label key") {
        "a key is `[prefix/]name`: letters, digits, `-`, `_`, `.`, beginning and ending with a letter or digit"
    } else if message.contains("operator") {
        "see the list of operators in docs/repository.md"
    } else if message.contains(" limit `") {
        "`limits` takes `memory` (like `512Mi`), `cpus` (like `0.5`) and `pids` (like `512`), each replacing e's default (see docs/repository.md)"
    } else if message.contains("invalid timeout") {
        "write `timeout` as a duration, like `30m` or `2h`; without one a method may run 1h (see docs/repository.md)"
    } else if message.contains("invalid user") {
        "write `user` in quotes, like `user: \"1000:1000\"`; without it e picks the uid (see docs/repository.md)"
    } else if message.contains("missing field") {
        "add the field; docs/repository.md lists what each item needs"
    } else {
        "see docs/repository.md for the format"
    };
    LoadError {
        file: file.to_owned(),
        position,
        place,
        message,
        hint: Some(hint.to_owned()),
    }
}

/// The steps of a serde path such as `components[1].versions[0].limits.memory`.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|key| !key.is_empty()) {
            steps.push(Step::Key(key));
        }
        for index in pieces {
            if let Some(index) = index.strip_suffix(']').and_then(|i| i.parse().ok()) {
                steps.push(Step::Index(index));
            }
        }
    }
    steps
}

/// Rewrites `components[1].versions[0].commands[2]` as `module `bmk` version `0.1.0`, commands[2]`.
fn describe_path(source: &str, path: &str) -> String {
    let index = |part: &str, field: &str| -> Option<usize> {
        part.strip_prefix(field)?
            .strip_prefix('[')?
            .strip_suffix(']')?
            .parse()
            .ok()
    };
    let parts: Vec<&str> = path.split('.').collect();
    let Some(m) = parts.first().and_then(|p| index(p, "components")) else {
        return path.to_owned();
    };
    let module = [Step::Key("components"), Step::Index(m)];
    let mut described = match scalar_at(source, &[module.as_slice(), &[Step::Key("name")]].concat())
    {
        Some(name) => format!("module `{name}`"),
        None => format!("module #{}", m + 1),
    };
    let mut rest = &parts[1..];
    if let Some(v) = rest.first().and_then(|p| index(p, "versions")) {
        let version = [
            module.as_slice(),
            &[Step::Key("versions"), Step::Index(v), Step::Key("version")],
        ]
        .concat();
        match scalar_at(source, &version) {
            Some(version) => described.push_str(&format!(" version `{version}`")),
            None => described.push_str(&format!(" version #{}", v + 1)),
        }
        rest = &rest[1..];
    }
    if !rest.is_empty() {
        described.push_str(&format!(", {}", rest.join(".")));
    }
    described
}

/// Where a path into the document is in the file, for messages.
type Locator<'a> = dyn Fn(&[Step<'_>]) -> Option<Position> + 'a;

/// The checks that span several items; returns warnings, or the first error.
fn validate<'r>(
    repository: &'r Repository,
    locate: &Locator<'_>,
    file: &Path,
) -> Result<Vec<String>, LoadError> {
    let error = |path: &[Step<'_>], place: Option<String>, message: String, hint: &str| LoadError {
        file: file.to_owned(),
        position: locate(path),
        place,
        message,
        hint: Some(hint.to_owned()),
    };
    let mut warnings = Vec::new();
    let mut modules: BTreeMap<&str, usize> = BTreeMap::new();
    for (m, module) in repository.components.iter().enumerate() {
        let module_path = [Step::Key("components"), Step::Index(m)];
        let name_path = [module_path[0], module_path[1], Step::Key("name")];
        if let Err(message) = check_module_name(&module.name) {
            return Err(error(&name_path, None, message, "rename the module"));
        }
        if let Some(first) = modules.insert(&module.name, m) {
            return Err(error(
                &name_path,
                None,
                format!(
                    "module `{}` is defined twice (items {} and {} of `components`)",
                    module.name,
                    first + 1,
                    m + 1
                ),
                "merge the two into one module with several versions, or rename one",
            ));
        }
        if module.versions.is_empty() {
            return Err(error(
                &[module_path.as_slice(), &[Step::Key("versions")]].concat(),
                Some(format!("module `{}`", module.name)),
                "has no versions".to_owned(),
                "add at least one item under `versions`",
            ));
        }
        let mut versions = HashSet::new();
        let mut latest: Option<&str> = None;
        for (v, version) in module.versions.iter().enumerate() {
            // Paths and places are made only for an error or a warning: made for each of
            // 30,000 versions and 150,000 commands, they were half of validating.
            let at = |field: &'static str| {
                vec![
                    module_path[0],
                    module_path[1],
                    Step::Key("versions"),
                    Step::Index(v),
                    Step::Key(field),
                ]
            };
            let place = || {
                Some(format!(
                    "module `{}` version `{}`",
                    module.name, version.version
                ))
            };
            if !versions.insert(version.version.as_str()) {
                return Err(error(
                    &at("version"),
                    place(),
                    "this version is defined twice".to_owned(),
                    "give each version of a module a distinct `version`",
                ));
            }
            if version.latest {
                if let Some(first) = latest {
                    return Err(error(
                        &at("latest"),
                        place(),
                        format!("`latest: true` is already set on version `{first}`"),
                        "mark at most one version of a module `latest: true`",
                    ));
                }
                latest = Some(version.version.as_str());
            }
            if let Some(shared) = &version.shared
                && let Err(message) = check_container_path(shared)
            {
                return Err(error(
                    &at("shared"),
                    place(),
                    format!("shared path `{shared}` {message}"),
                    "write the path inside the container, like `/shared`",
                ));
            }
            if version.image.trim().is_empty() {
                return Err(error(
                    &at("image"),
                    place(),
                    "`image` is empty".to_owned(),
                    "set `image` to the module's container image, like `e/bmk:0.1.0`",
                ));
            }
            for (i, mount) in version.mounts.iter().enumerate() {
                if !mount.starts_with('/') || mount.split('/').any(|part| part == "..") {
                    return Err(error(
                        &[at("mounts").as_slice(), &[Step::Index(i)]].concat(),
                        place(),
                        format!("mount `{mount}` must be an absolute container path without `..`"),
                        "write the path inside the container, like `/terraform`",
                    ));
                }
            }
            // Commands shared with the version before (see `Module::versions`) passed its
            // checks, which look at nothing but the commands.
            let shared_commands = v > 0
                && std::sync::Arc::ptr_eq(&module.versions[v - 1].commands, &version.commands);
            let commands_to_check = if shared_commands {
                &[][..]
            } else {
                version.commands.as_slice()
            };
            let mut commands = HashSet::new();
            for (c, command) in commands_to_check.iter().enumerate() {
                let command_at = |steps: &[Step<'r>]| {
                    [at("commands").as_slice(), &[Step::Index(c)], steps].concat()
                };
                if command.name.trim().is_empty() {
                    return Err(error(
                        &command_at(&[Step::Key("name")]),
                        place(),
                        "a command's `name` is empty".to_owned(),
                        "name the command after its method, like `apply`",
                    ));
                }
                check_command(command).map_err(|(path, message, hint)| {
                    error(
                        &command_at(&path),
                        Some(format!(
                            "module `{}` version `{}` command `{}`",
                            module.name, version.version, command.name
                        )),
                        message,
                        hint,
                    )
                })?;
                if !commands.insert(command.name.as_str()) {
                    return Err(error(
                        &command_at(&[Step::Key("name")]),
                        place(),
                        format!("command `{}` is defined twice", command.name),
                        "give each command of a version a distinct name",
                    ));
                }
            }
            if version.version.semver().is_none() {
                let position = locate(&at("version"))
                    .map(|p| format!(":{}:{}", p.line, p.column))
                    .unwrap_or_default();
                warnings.push(format!(
                    "{}{position}: module `{}` version `{}` is not a semver version; it never satisfies a semver comparison and sorts below every semver version",
                    file.display(),
                    module.name,
                    version.version
                ));
            }
        }
    }
    Ok(warnings)
}

/// A problem with one command: where (a path from the command), what, and the hint.
type CommandProblem<'p> = (Vec<Step<'p>>, String, &'static str);

/// Checks a command's environment, secrets and what it may keep of them.
fn check_command<'p>(command: &'p Command) -> Result<(), CommandProblem<'p>> {
    for (name, value) in &command.envs {
        let problem = if name.is_empty() {
            Some("an environment variable has an empty name".to_owned())
        } else if name.contains('=') {
            Some(format!(
                "environment variable `{name}` has `=` in its name: the module would get `{name}=...`, another variable"
            ))
        } else if name.contains('\0') {
            Some(format!(
                "environment variable `{}` has a NUL byte in its name",
                name.escape_default()
            ))
        } else if value.contains('\0') {
            Some(format!(
                "environment variable `{name}` has a NUL byte in its value"
            ))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err((
                vec![Step::Key("envs"), Step::Key(name)],
                message,
                "an environment variable's name is letters, digits and `_`, like `LOG_LEVEL`; neither name nor value may hold `=` (in the name) or a NUL byte",
            ));
        }
    }
    let mut files = HashSet::new();
    for (i, name) in command.secrets.iter().enumerate() {
        let problem = if let Err(message) = check_secret_name(name) {
            Some(message)
        } else if !files.insert(name.as_str()) {
            Some(format!("secret `{name}` is listed twice"))
        } else {
            None
        };
        if let Some(message) = problem {
            return Err((
                vec![Step::Key("secrets"), Step::Index(i)],
                message,
                "list each secret of the secrets file once; it becomes the file `/run/secrets/NAME`",
            ));
        }
    }
    if command.keep_secrets.is_empty() {
        return Ok(());
    }
    let handed = command.secret_names();
    for (i, name) in command.keep_secrets.iter().enumerate() {
        if !handed.contains(&name.as_str()) {
            return Err((
                vec![Step::Key("keep-secrets"), Step::Index(i)],
                format!(
                    "`keep-secrets` names `{name}`, which the command is not given (neither in `secrets:` nor as `${{secret:{name}}}` in `envs:`)"
                ),
                "list in `keep-secrets` only secrets the command is given",
            ));
        }
    }
    Ok(())
}

/// A secret's name becomes a file name under `/run/secrets/`, so it is kept to a safe alphabet.
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid secret name `{name}`: use 1 to 128 letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ))
    }
}

/// A container path e mounts something at: absolute, without `..`, and not `/` itself.
fn check_container_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        Err("is not an absolute container path")
    } else if path.split('/').any(|part| part == "..") {
        Err("must not hold `..`")
    } else if path.split('/').all(|part| part.is_empty() || part == ".") {
        Err("is the container's root; nothing can be mounted there")
    } else {
        Ok(())
    }
}

/// Module names become state keys and file names, so they are kept to a safe alphabet.
fn check_module_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid module name `{name}`: use 1 to 63 letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ))
    }
}

/// The project's own `repository.yaml` (the example modules), for unit tests elsewhere.
#[cfg(test)]
pub fn example() -> Repository {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("repository.yaml");
    let text = std::fs::read_to_string(&path).expect("the example repository is readable");
    parse(&text, Path::new("repository.yaml"))
        .expect("the example repository loads")
        .repository
}

#[cfg(test)]
#[path = "load_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "json_tests.rs"]
mod json_tests;
