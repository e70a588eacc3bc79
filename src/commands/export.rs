//! `e export MODULE... | --all --out FILE`: one archive holding everything the modules need on a
//! machine without internet: their images and the images of their bills of materials (one
//! `docker save` stream, each layer once), the files and Debian packages of their bills of
//! materials (fetched first by the downloader when e's cache lacks them: `offline/`), the e
//! binary that runs the export, the environment's configuration (e's settings, the modules'
//! configs with secret values as `***`), the repository subset that describes them, and with
//! `--with-state` the shared directory with secret values replaced by `***`. `--dry-run` lists
//! what would go in, with sizes, including what is still to download.
//!
//! The archive's layout and integrity belong to `archive.rs`, where each item's bytes are to
//! `offline/bill.rs`; this file decides what goes in.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};

use crate::Context;
use crate::archive::{self, ArchiveWriter, FILES_DIR, IMAGES, Manifest, REPOSITORY, SHARED_DIR};
use crate::cli::ExportArgs;
use crate::graph::{Index, Preferences, resolve};
use crate::offline::bill::{self, FileSource, Packages};
use crate::offline::redact::redact;
use crate::output::{self, Progress};
use crate::repository::model::FileRequirement;
use crate::repository::{Entry, Module, ModuleSpec, Repository};
use crate::runtime::Engine;
use crate::secrets::MASK;
use crate::store::{E_DIR, Installed};

/// Runs `e export`.
pub async fn run(
    args: ExportArgs,
    context: &Context,
    engine: &dyn Engine,
) -> anyhow::Result<ExitCode> {
    let repository = context.repository()?;
    let index = Index::new(&repository);
    let chosen_by = Chosen {
        modules: &args.modules,
        all: args.all,
        with_weak: args.with_weak,
    };
    let entries = closure(
        &repository,
        &index,
        &chosen_by,
        &preferences(&context.shared_path)?,
    )?;
    let mut images = images(&entries);
    let mut files = bill::files(&entries, &context.repository_path)?;
    // What the cache lacks is downloaded first (or, for a dry run, only sized): the archive is
    // then written from files that are whole and checked.
    if args.dry_run {
        bill::probe_files(engine, &mut files).await?;
    } else {
        bill::fetch_files(engine, &mut files).await?;
    }
    let packages = bill::packages(engine, &entries, &context.repository_path, args.dry_run).await?;
    // What the repository machine will serve needs its server there too.
    if files.iter().any(|f| f.remote) || !packages.is_empty() {
        add_server(engine, &mut images).await?;
    }
    let binary = if args.without_e {
        None
    } else {
        Some(binary()?)
    };
    let environment = environment(context, &entries)?;
    let subset = crate::yaml_emit::to_string(&subset(&repository, &entries, &files))
        .context("failed to write the repository subset")?;
    let state = if args.with_state {
        Some(state(context, &entries)?)
    } else {
        None
    };

    let mut image_sizes = Vec::new();
    for image in &images {
        if image.contains('@') {
            output::warn(&format!(
                "image `{image}` is named by digest: `docker load` restores tags, not digests, so the machine that imports it will not find it by this name\nhint: name the image by tag in the repository"
            ));
        }
        image_sizes.push(engine.ensure_image(image).await?.size);
    }

    if args.dry_run {
        for file in files.iter().filter(|f| f.download.is_none()) {
            let actual = bill::hash_file(&file.source)?;
            bill::check_hash(file, &actual)?;
        }
        let contents = Contents {
            entries: &entries,
            images: &images,
            image_sizes: &image_sizes,
            files: &files,
            packages: &packages,
            binary: binary.as_ref(),
            environment: &environment,
            subset: &subset,
            state: state.as_ref(),
        };
        output::data(&listing(&contents))?;
        output::note(
            "image sizes are the engine's; layers shared by several images are written once, so the archive can be smaller",
        );
        return Ok(ExitCode::SUCCESS);
    }
    let target = args
        .out
        .as_deref()
        .context("`--out FILE` is required unless `--dry-run`")?;

    // What the engine streams for the images is known only once it has: the progress counts
    // the bytes really written, without a total or a time left that it would have to invent.
    let mut progress = Progress::unbounded("exporting");
    let mut writer = ArchiveWriter::create(target, args.force)?;
    // Files first: a file whose sha256 is wrong stops the export before the long part.
    for file in &files {
        let source = File::open(&file.source).with_context(|| {
            format!("failed to read `{}` ({})", file.source.display(), file.what)
        })?;
        let reader = Counted {
            inner: source,
            progress: &mut progress,
        };
        let actual = writer.append_reader(&file.entry_path(), file.size, reader)?;
        bill::check_hash(file, &actual)?;
    }
    for set in &packages {
        let resolved = set
            .resolved
            .as_ref()
            .context("a package set is resolved before the archive is written")?;
        for (name, size) in &resolved.files {
            let path = resolved.dir.join(name);
            let source = File::open(&path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            let reader = Counted {
                inner: source,
                progress: &mut progress,
            };
            writer.append_reader(&format!("{}/{name}", set.entry_dir()), *size, reader)?;
        }
    }
    if let Some(binary) = &binary {
        let source = File::open(&binary.path)
            .with_context(|| format!("failed to read e itself, `{}`", binary.path.display()))?;
        let reader = Counted {
            inner: source,
            progress: &mut progress,
        };
        writer.append_reader(archive::E_BINARY, binary.size, reader)?;
    }
    for (path, bytes) in &environment.files {
        writer.append_bytes(path, bytes)?;
        progress.advance(bytes.len() as u64);
    }
    if !images.is_empty() {
        output::note(&format!(
            "exporting: asking the engine for {} image(s); it prepares them before the first byte",
            images.len()
        ));
        let mut stream = writer.begin_stream(IMAGES)?;
        let mut counted = Counted {
            inner: &mut stream,
            progress: &mut progress,
        };
        // Ctrl-C during the long part ends the export cleanly: the partial file is removed.
        tokio::select! {
            saved = engine.save_images(&images, &mut counted) => saved?,
            () = crate::interrupt::requested() => bail!("interrupted: `{}` was not written", target.display()),
        };
        stream.finish()?;
    }
    writer.append_bytes(REPOSITORY, subset.as_bytes())?;
    progress.advance(subset.len() as u64);
    let mut redacted = Vec::new();
    if let Some(state) = &state {
        for file in &state.files {
            let path = format!("{SHARED_DIR}/{}", file.relative);
            writer.append_bytes(&path, &file.bytes)?;
            progress.advance(file.bytes.len() as u64);
            if file.redacted {
                redacted.push(path);
            }
        }
    }
    let manifest = Manifest {
        format: archive::FORMAT,
        e_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        modules: entries.iter().map(Entry::id).collect(),
        images: images.clone(),
        state: state.is_some(),
        redacted: redacted.clone(),
        packages: packages
            .iter()
            .map(|p| archive::PackageSetEntry {
                distribution: "debian".to_owned(),
                release: p.set.release.clone(),
                names: p.set.names.clone(),
            })
            .collect(),
        e_binary: binary.as_ref().map(|_| archive::E_BINARY.to_owned()),
        environment: environment
            .files
            .iter()
            .map(|(path, _)| path.clone())
            .collect(),
        entries: Vec::new(),
    };
    let written = writer.finish(manifest)?;
    progress.finish();

    let report = Report {
        archive: target.display().to_string(),
        size: written.size,
        modules: entries.iter().map(Entry::id).collect(),
        images,
        files: files.len(),
        packages: packages
            .iter()
            .map(|p| p.resolved.as_ref().map_or(0, |r| r.packages()))
            .sum(),
        e_binary: !args.without_e,
        state_files: state.as_ref().map(|s| s.files.len()),
        redacted,
        manifest_sha256: written.manifest_sha256,
    };
    if let Some(text) = output::serialized(args.output, &report)? {
        output::data(&text)?;
    } else {
        output::data(&report.text())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `e export` wrote, for people or (`-o json`) for scripts.
#[derive(Debug, serde::Serialize)]
struct Report {
    archive: String,
    size: u64,
    modules: Vec<String>,
    images: Vec<String>,
    files: usize,
    packages: usize,
    e_binary: bool,
    state_files: Option<usize>,
    redacted: Vec<String>,
    manifest_sha256: String,
}

impl Report {
    fn text(&self) -> String {
        let mut report = format!(
            "wrote `{}` ({}): {} module version(s), {} image(s), {} file(s), {} package(s){}{}\n",
            self.archive,
            output::size(self.size),
            self.modules.len(),
            self.images.len(),
            self.files,
            self.packages,
            if self.e_binary { ", e itself" } else { "" },
            match self.state_files {
                Some(count) => format!(", the shared directory ({count} file(s))"),
                None => String::new(),
            }
        );
        report.push_str(&format!("  modules:  {}\n", self.modules.join(", ")));
        report.push_str(&format!("  images:   {}\n", self.images.join(", ")));
        if !self.redacted.is_empty() {
            report.push_str(&format!(
                "  secret values replaced by `{MASK}` in: {}\n",
                self.redacted.join(", ")
            ));
        }
        report.push_str(&format!(
            "  manifest sha256: {}  (`e import` shows it too: compare them)\n",
            self.manifest_sha256
        ));
        report
    }
}

/// Installed versions from the shared directory, read without creating anything there.
pub(crate) fn preferences(shared: &Path) -> anyhow::Result<Preferences> {
    let path = shared.join(E_DIR).join("installed.json");
    let installed: BTreeMap<String, Installed> = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("`{}` is damaged", path.display()))?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read `{}`", path.display()));
        }
    };
    Ok(Preferences {
        prefer: Vec::new(),
        installed: installed
            .into_values()
            .map(|i| (i.module, i.version))
            .collect(),
    })
}

fn same(a: &Entry<'_>, b: &Entry<'_>) -> bool {
    a.module.name == b.module.name && a.version.version == b.version.version
}

/// Which module versions a command names: `MODULE...` or `--all`, and `--with-weak`.
pub(crate) struct Chosen<'a> {
    /// The modules named.
    pub modules: &'a [ModuleSpec],
    /// `--all`.
    pub all: bool,
    /// `--with-weak`.
    pub with_weak: bool,
}

/// The module versions to export: each named one with its strong requirements, resolved as
/// `e apply --with-requirements` would; with `--with-weak`, for every weak requirement not
/// already met by the export, its first candidate and that one's strong requirements.
pub(crate) fn closure<'r>(
    repository: &'r Repository,
    index: &Index<'r>,
    chosen_by: &Chosen<'_>,
    preferences: &Preferences,
) -> anyhow::Result<Vec<Entry<'r>>> {
    if chosen_by.all {
        return Ok(repository.entries().collect());
    }
    let mut chosen: Vec<Entry<'r>> = Vec::new();
    let add = |chosen: &mut Vec<Entry<'r>>, order: &[Entry<'r>]| {
        for entry in order {
            if !chosen.iter().any(|e| same(e, entry)) {
                chosen.push(*entry);
            }
        }
    };
    for spec in chosen_by.modules {
        let target = repository.find(spec)?;
        let resolution = resolve(index, target, preferences)
            .map_err(|err| anyhow!("cannot export `{}`: {err}", target.id()))?;
        add(&mut chosen, &resolution.order);
    }
    if chosen_by.with_weak {
        let mut next = 0;
        while next < chosen.len() {
            let owner = chosen[next];
            next += 1;
            for selector in &owner.version.requires.weak {
                let candidates = index.candidates(owner, selector);
                if candidates.iter().any(|c| chosen.iter().any(|e| same(e, c))) {
                    continue;
                }
                let Some(candidate) = candidates.first() else {
                    continue;
                };
                match resolve(index, *candidate, preferences) {
                    Ok(resolution) => add(&mut chosen, &resolution.order),
                    Err(err) => output::warn(&format!(
                        "weak requirement `{selector}` of `{}`: `{}` is left out: {err}",
                        owner.id(),
                        candidate.id()
                    )),
                }
            }
        }
    }
    Ok(chosen)
}

/// The images of the module versions and of their bills of materials, each once.
fn images(entries: &[Entry<'_>]) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    for entry in entries {
        let version = entry.version;
        for image in std::iter::once(&version.image).chain(&version.requirements.images) {
            if !images
                .iter()
                .any(|i| archive::with_tag(i) == archive::with_tag(image))
            {
                images.push(image.clone());
            }
        }
    }
    images
}

/// The repository of the exported module versions, in the original order, with each file of
/// a bill of materials pointing where `e import` puts it: `files/<sha256>/<name>`.
fn subset(repository: &Repository, entries: &[Entry<'_>], files: &[FileSource]) -> Repository {
    let components = repository
        .components
        .iter()
        .filter_map(|module| {
            let versions: Vec<_> = module
                .versions
                .iter()
                .filter(|v| {
                    entries
                        .iter()
                        .any(|e| e.module.name == module.name && e.version.version == v.version)
                })
                .map(|version| {
                    let mut version = version.clone();
                    for file in &mut version.requirements.files {
                        let name = file.file_name().to_owned();
                        debug_assert!(
                            files
                                .iter()
                                .any(|f| f.sha256 == file.sha256 && f.name == name)
                        );
                        *file = FileRequirement {
                            path: Some(format!("{FILES_DIR}/{}/{name}", file.sha256)),
                            name: Some(name),
                            url: None,
                            sha256: file.sha256.clone(),
                        };
                    }
                    version
                })
                .collect();
            (!versions.is_empty()).then(|| Module {
                name: module.name.clone(),
                kind: module.kind,
                versions,
            })
        })
        .collect();
    Repository {
        version: repository.version,
        kind: repository.kind,
        name: repository.name.clone(),
        components,
    }
}

/// A file of the shared directory, as it goes into the archive.
struct StateFile {
    /// Its path relative to the shared directory.
    relative: String,
    /// Its bytes, secret values replaced.
    bytes: Vec<u8>,
    /// Whether a secret value was replaced.
    redacted: bool,
}

/// The shared directory's files for `--with-state`.
struct State {
    files: Vec<StateFile>,
}

/// Reads the shared directory's state, configs, backups and e's records, replacing every
/// secret value (of the secrets file, and of `${env:NAME}` references of the exported modules'
/// commands that are set in this environment) with `***`.
fn state(context: &Context, entries: &[Entry<'_>]) -> anyhow::Result<State> {
    let root = &context.shared_path;
    if !root.join(crate::store::STATE_FILE).is_file() {
        bail!(
            "`--with-state`: `{}` holds no state\nhint: point `--shared` at the shared directory to export, or leave out `--with-state`",
            root.display()
        );
    }
    let secrets = secret_values(context, entries)?;
    let mut relatives = Vec::new();
    for entry in
        fs::read_dir(root).with_context(|| format!("failed to read `{}`", root.display()))?
    {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && archive::is_shared_file(name)
        {
            relatives.push(name.to_owned());
        }
    }
    relatives.push(format!("{E_DIR}/installed.json"));
    relatives.push(format!("{E_DIR}/serial.json"));
    walk(root, &format!("{E_DIR}/history"), &mut relatives)?;
    walk(root, &format!("{E_DIR}/mounts"), &mut relatives)?;
    relatives.sort();
    let mut files = Vec::new();
    for relative in relatives {
        let path = root.join(&relative);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("failed to inspect `{}`", path.display()));
            }
        };
        if !meta.is_file() {
            output::warn(&format!(
                "`{}` is not a regular file; it is left out of the archive",
                path.display()
            ));
            continue;
        }
        if archive::check_entry_path(&relative).is_err() {
            output::warn(&format!(
                "`{}` has a name an archive cannot hold; it is left out",
                path.display()
            ));
            continue;
        }
        let bytes =
            fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let (bytes, redacted) = redact(&relative, bytes, &secrets);
        files.push(StateFile {
            relative,
            bytes,
            redacted,
        });
    }
    Ok(State { files })
}

/// Adds the regular files under `root/relative` (recursively, links left out) to `found`.
fn walk(root: &Path, relative: &str, found: &mut Vec<String>) -> anyhow::Result<()> {
    let dir = root.join(relative);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("failed to read `{}`", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read `{}`", dir.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            output::warn(&format!(
                "`{}` is not UTF-8; it is left out of the archive",
                entry.path().display()
            ));
            continue;
        };
        let child = format!("{relative}/{name}");
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &child, found)?;
        } else if kind.is_file() {
            found.push(child);
        } else {
            output::warn(&format!(
                "`{}` is a link or a special file; it is left out of the archive",
                entry.path().display()
            ));
        }
    }
    Ok(())
}

/// The values to keep out of an archive, longest first.
fn secret_values(context: &Context, entries: &[Entry<'_>]) -> anyhow::Result<Vec<String>> {
    let mut values = Vec::new();
    if context.secrets_path.is_some() {
        values.extend(context.secrets()?.values().map(str::to_owned));
    }
    for entry in entries {
        for command in entry.version.commands.iter() {
            for template in command.envs.values() {
                let mut rest = template.as_str();
                while let Some(start) = rest.find("${env:") {
                    let after = &rest[start + 6..];
                    let Some(end) = after.find('}') else { break };
                    if let Ok(value) = std::env::var(&after[..end]) {
                        values.push(value);
                    }
                    rest = &after[end + 1..];
                }
            }
        }
    }
    values.retain(|v| !v.is_empty());
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    Ok(values)
}

/// Everything an archive would hold, for the `--dry-run` table.
struct Contents<'a> {
    entries: &'a [Entry<'a>],
    images: &'a [String],
    image_sizes: &'a [u64],
    files: &'a [FileSource],
    packages: &'a [Packages],
    binary: Option<&'a Binary>,
    environment: &'a Environment,
    subset: &'a str,
    state: Option<&'a State>,
}

/// The `--dry-run` table: KIND, NAME, SIZE, and the total; what is still to download says so.
fn listing(contents: &Contents<'_>) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut total = 0;
    let mut row = |rows: &mut Vec<Vec<String>>, kind: &str, name: String, size: Option<u64>| {
        total += size.unwrap_or(0);
        rows.push(vec![
            kind.to_owned(),
            name,
            size.map(output::size).unwrap_or_default(),
        ]);
    };
    for entry in contents.entries {
        row(&mut rows, "module", entry.id(), None);
    }
    for (image, size) in contents.images.iter().zip(contents.image_sizes) {
        row(&mut rows, "image", image.clone(), Some(*size));
    }
    for file in contents.files {
        let name = match &file.download {
            Some(url) if file.size == 0 => format!(
                "{}  (to download from {url}; size unknown)",
                file.entry_path()
            ),
            Some(url) => format!("{}  (to download from {url})", file.entry_path()),
            None => file.entry_path(),
        };
        row(&mut rows, "file", name, Some(file.size));
    }
    for set in contents.packages {
        let name = match &set.resolved {
            Some(resolved) => format!(
                "{}/  ({} .deb for {}, with their dependencies, and the index)",
                set.entry_dir(),
                resolved.packages(),
                set.set.names.join(" ")
            ),
            None => format!(
                "{}/  ({} .deb to download for {}, with their dependencies)",
                set.entry_dir(),
                set.to_download.len(),
                set.set.names.join(" ")
            ),
        };
        row(&mut rows, "packages", name, Some(set.size()));
    }
    if let Some(binary) = contents.binary {
        row(
            &mut rows,
            "e",
            format!(
                "{}  (e {}, this binary)",
                archive::E_BINARY,
                env!("CARGO_PKG_VERSION")
            ),
            Some(binary.size),
        );
    }
    for (path, bytes) in &contents.environment.files {
        row(
            &mut rows,
            "environment",
            path.clone(),
            Some(bytes.len() as u64),
        );
    }
    row(
        &mut rows,
        "repository",
        REPOSITORY.to_owned(),
        Some(contents.subset.len() as u64),
    );
    for file in contents.state.map_or(&[][..], |s| &s.files) {
        let mut name = format!("{SHARED_DIR}/{}", file.relative);
        if file.redacted {
            name.push_str(&format!("  (secret values as `{MASK}`)"));
        }
        row(&mut rows, "state", name, Some(file.bytes.len() as u64));
    }
    rows.push(vec!["total".to_owned(), String::new(), output::size(total)]);
    output::table(&["KIND", "NAME", "SIZE"], rows)
}

/// Adds the repository machine's server image, so that `e serve` runs on the other side, when
/// this engine has it; says what to do when it has not.
async fn add_server(engine: &dyn Engine, images: &mut Vec<String>) -> anyhow::Result<()> {
    let server = crate::offline::SERVER_IMAGE;
    if images.iter().any(|i| archive::same_image(i, server)) {
        return Ok(());
    }
    if engine.inspect_image(server).await?.is_some() {
        images.push(server.to_owned());
    } else {
        output::warn(&format!(
            "the repository machine's server image `{server}` is not in this engine, so the archive does not carry it: `e serve` needs it on the other side\nhint: build it (`modules/build-contexts.sh && e build modules/repo --tag {server}`) and export again"
        ));
    }
    Ok(())
}

/// The e binary that runs this export, which the archive carries.
struct Binary {
    path: PathBuf,
    size: u64,
}

fn binary() -> anyhow::Result<Binary> {
    let path = std::env::current_exe().context("failed to find e's own binary")?;
    let size = fs::metadata(&path)
        .with_context(|| format!("failed to read e's own binary `{}`", path.display()))?
        .len();
    Ok(Binary { path, size })
}

/// The environment's configuration, as it goes into the archive: e's settings (the variables
/// that choose the repository, the shared directory and the images e uses, never a secret),
/// and the modules' configs of the shared directory, secret values replaced.
struct Environment {
    files: Vec<(String, Vec<u8>)>,
}

/// The variables of e's settings that travel: none of them holds a secret (`E_SECRETS` names
/// a file, which stays behind).
const SETTINGS: [&str; 6] = [
    "E_REPOSITORY",
    "E_SHARED",
    "E_DOWNLOADER_IMAGE",
    "E_DEBIAN_IMAGE",
    "E_SERVE_LISTEN",
    "E_PROGRESS",
];

fn environment(context: &Context, entries: &[Entry<'_>]) -> anyhow::Result<Environment> {
    let variables: BTreeMap<&str, String> = SETTINGS
        .iter()
        .filter_map(|name| Some((*name, std::env::var(name).ok()?)))
        .collect();
    let settings = serde_json::json!({
        "repository": context.repository_path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "variables": variables,
        "secrets": "not exported: set them again on the importing side (`--secrets FILE`)",
    });
    let mut files = vec![(
        archive::SETTINGS.to_owned(),
        serde_json::to_vec_pretty(&settings)?,
    )];
    let root = &context.shared_path;
    let mut configs = Vec::new();
    if let Ok(dir) = fs::read_dir(root) {
        for entry in dir.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && name.ends_with("-config.yml")
                && entry.file_type().is_ok_and(|t| t.is_file())
                && crate::repository::model::check_file_name(name).is_ok()
            {
                configs.push(name.to_owned());
            }
        }
    }
    configs.sort();
    if !configs.is_empty() {
        let secrets = secret_values(context, entries)?;
        for name in configs {
            let path = root.join(&name);
            let bytes =
                fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
            let (bytes, _) = redact(&name, bytes, &secrets);
            files.push((format!("{}/{name}", archive::ENVIRONMENT_DIR), bytes));
        }
    }
    Ok(Environment { files })
}

/// Counts the bytes that pass through, for the progress line.
struct Counted<'p, T> {
    inner: T,
    progress: &'p mut Progress,
}

impl<T: Read> Read for Counted<'_, T> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.progress.advance(read as u64);
        Ok(read)
    }
}

impl<T: Write> Write for Counted<'_, T> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.progress.advance(written as u64);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
