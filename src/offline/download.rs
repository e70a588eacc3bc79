//! Files of the bills of materials fetched by `http(s)` URL, for every module at once, in one
//! container of the downloader image (`modules/downloader/`: busybox wget with resume and
//! retries), into the cache:
//!
//! ```text
//! files/<sha256>/<name>   whole files, each checked against its sha256 by e
//! partial/<sha256>        what a broken download left, resumed by the next one
//! jobs/<id>.list          the lines handed to the downloader (`SHA256 URL`)
//! ```
//!
//! The container only ever writes `partial/`; e hashes what it wrote and moves a file into
//! `files/` only when its sha256 is the one the repository pins. A wrong file is deleted, a
//! broken one kept in `partial/` to be resumed, and neither is ever taken for whole.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{Job, cache_dir, downloader_image};
use crate::archive::HashingReader;
use crate::runtime::Engine;

/// Where the cache appears in the downloader's container.
const MOUNT: &str = "/cache";
/// How long one downloader container may take for all its files.
const TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// One file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Who wants it, for messages: ``module `bmk@0.1.0` file `tool.tgz` ``.
    pub what: String,
    /// Its name under `files/<sha256>/`.
    pub name: String,
    /// The `http(s)` URL.
    pub url: String,
    /// The sha256 it must have.
    pub sha256: String,
}

/// Where a file is once whole: `files/<sha256>/<name>` under the cache.
pub fn cached_path(cache: &Path, sha256: &str, name: &str) -> PathBuf {
    cache.join("files").join(sha256).join(name)
}

/// The file if the cache holds it whole.
pub fn cached(cache: &Path, wanted: &Wanted) -> Option<PathBuf> {
    let path = cached_path(cache, &wanted.sha256, &wanted.name);
    path.is_file().then_some(path)
}

/// The hint for a missing downloader image.
pub const BUILD_HINT: &str = "build it: `modules/build-contexts.sh && e build modules/downloader --tag e-modules/downloader:0.1.0` (or name another with `E_DOWNLOADER_IMAGE`)";

/// Downloads every file the cache lacks, in one container; returns each file's path in the
/// cache, in the order given. Fails, naming each file that could not be had and why, after
/// keeping every file that did arrive whole.
pub async fn fetch(engine: &dyn Engine, wanted: &[Wanted]) -> anyhow::Result<Vec<PathBuf>> {
    let cache = cache_dir()?;
    let _lock = lock(&cache)?;
    let mut missing: BTreeMap<&str, &Wanted> = BTreeMap::new();
    for file in wanted {
        if cached(&cache, file).is_some() {
            continue;
        }
        // Another name for a file the cache has, or a partial file that is whole already.
        if let Some(other) = same_content(&cache, &file.sha256)? {
            place(&other, &cached_path(&cache, &file.sha256, &file.name))?;
            continue;
        }
        let partial = cache.join("partial").join(&file.sha256);
        if partial.is_file() && hash(&partial)? == file.sha256 {
            place(&partial, &cached_path(&cache, &file.sha256, &file.name))?;
            continue;
        }
        missing.entry(&file.sha256).or_insert(file);
    }
    if !missing.is_empty() {
        let lines: String = missing
            .values()
            .map(|file| format!("{} {}\n", file.sha256, file.url))
            .collect();
        let answers = run(engine, &cache, "fetch", &lines).await?;
        let mut problems = Vec::new();
        for (sha256, file) in &missing {
            let partial = cache.join("partial").join(sha256);
            match answers.get(*sha256).map(String::as_str) {
                Some("") => {
                    let actual = hash(&partial)?;
                    if actual == file.sha256 {
                        place(&partial, &cached_path(&cache, sha256, &file.name))?;
                    } else {
                        let _ = fs::remove_file(&partial);
                        problems.push(format!(
                            "{} (`{}`): its sha256 is {actual}, but the repository says {sha256}; it was deleted",
                            file.what, file.url
                        ));
                    }
                }
                Some(reason) => {
                    // wget creates its output before the server answers: nothing arrived.
                    if fs::metadata(&partial).is_ok_and(|m| m.len() == 0) {
                        let _ = fs::remove_file(&partial);
                    }
                    problems.push(format!(
                        "{} (`{}`): {reason}{}",
                        file.what,
                        file.url,
                        if partial.is_file() {
                            "; what arrived is kept, and the next download resumes it"
                        } else {
                            ""
                        }
                    ));
                }
                None => problems.push(format!(
                    "{} (`{}`): the downloader said nothing of it",
                    file.what, file.url
                )),
            }
        }
        if !problems.is_empty() {
            bail!(
                "{} of {} file(s) could not be downloaded:\n  {}\nhint: check the URLs and sha256 in the repository, and that this machine reaches them; `e download` again resumes",
                problems.len(),
                missing.len(),
                problems.join("\n  ")
            );
        }
    }
    for file in wanted {
        if cached(&cache, file).is_none()
            && let Some(other) = same_content(&cache, &file.sha256)?
        {
            place(&other, &cached_path(&cache, &file.sha256, &file.name))?;
        }
    }
    wanted
        .iter()
        .map(|file| {
            cached(&cache, file).with_context(|| {
                format!("{}: it is not in the cache after its download", file.what)
            })
        })
        .collect()
}

/// Asks, in one container, for the size of every file the cache lacks, without downloading
/// it; `None` where the server does not say.
pub async fn probe(
    engine: &dyn Engine,
    wanted: &[Wanted],
) -> anyhow::Result<Vec<Result<Option<u64>, String>>> {
    let cache = cache_dir()?;
    let lines: String = wanted
        .iter()
        .map(|file| format!("{} {}\n", file.sha256, file.url))
        .collect();
    let answers = run(engine, &cache, "probe", &lines).await?;
    Ok(wanted
        .iter()
        .map(|file| match answers.get(&file.sha256) {
            Some(answer) => match answer.strip_prefix("size ") {
                Some(size) => Ok(size.trim().parse().ok()),
                None => Err(answer.clone()),
            },
            None => Err("the downloader said nothing of it".to_owned()),
        })
        .collect())
}

/// Runs the downloader on these lines; returns, by sha256, `""` for `done`, `size N` for a
/// probe, or the reason of a `fail`.
async fn run(
    engine: &dyn Engine,
    cache: &Path,
    mode: &str,
    lines: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let jobs = cache.join("jobs");
    fs::create_dir_all(&jobs).with_context(|| format!("failed to create `{}`", jobs.display()))?;
    fs::create_dir_all(cache.join("partial"))
        .with_context(|| format!("failed to create `{}`", cache.join("partial").display()))?;
    let name = format!("{}-{mode}.list", std::process::id());
    let list = jobs.join(&name);
    fs::write(&list, lines).with_context(|| format!("failed to write `{}`", list.display()))?;
    let image = downloader_image();
    let ran = super::run(
        engine,
        Job {
            image: &image,
            args: vec![mode.to_owned(), format!("{MOUNT}/jobs/{name}")],
            cache,
            mount: MOUNT,
            as_root: false,
            timeout: TIMEOUT,
            prefix: "downloader",
        },
        BUILD_HINT,
    )
    .await;
    let _ = fs::remove_file(&list);
    let ran = ran?;
    if ran.exit_code != 0 {
        bail!(
            "the downloader `{image}` failed (exit code {})\nhint: its messages are above; is it the downloader of this e?",
            ran.exit_code
        );
    }
    Ok(parse(&ran.stdout))
}

/// Reads the downloader's protocol: `done SHA`, `size SHA N`, `fail SHA REASON`.
fn parse(stdout: &str) -> BTreeMap<String, String> {
    let mut answers = BTreeMap::new();
    for line in stdout.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(kind), Some(sha256)) = (parts.next(), parts.next()) else {
            continue;
        };
        let rest = parts.next().unwrap_or_default().trim().to_owned();
        let answer = match kind {
            "done" => String::new(),
            "size" => format!("size {rest}"),
            "fail" if rest.is_empty() => "the download failed".to_owned(),
            "fail" => rest,
            _ => continue,
        };
        answers.insert(sha256.to_owned(), answer);
    }
    answers
}

/// A file the cache holds whole with this sha256, under any name.
fn same_content(cache: &Path, sha256: &str) -> anyhow::Result<Option<PathBuf>> {
    let dir = cache.join("files").join(sha256);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("failed to read `{}`", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && !path.to_string_lossy().ends_with(".tmp") {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Puts a whole file at `target`: renamed from `partial/`, copied from another name.
fn place(source: &Path, target: &Path) -> anyhow::Result<()> {
    let dir = target.parent().context("a cached file has a folder")?;
    fs::create_dir_all(dir).with_context(|| format!("failed to create `{}`", dir.display()))?;
    if source.parent() == Some(dir) {
        fs::copy(source, target.with_extension("tmp"))
            .and_then(|_| fs::rename(target.with_extension("tmp"), target))
    } else {
        fs::rename(source, target)
    }
    .with_context(|| format!("failed to put `{}` in the cache", target.display()))
}

/// The sha256 of a file.
pub fn hash(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut hashing = HashingReader::new(io::BufReader::new(file));
    io::copy(&mut hashing, &mut io::sink())
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    Ok(hashing.finish())
}

/// Holds the cache's lock: two e on one machine never download into it at once.
pub(super) fn lock(cache: &Path) -> anyhow::Result<File> {
    let path = cache.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    if file.try_lock().is_err() {
        crate::output::note("e: waiting for another e that downloads into the same cache");
        file.lock()
            .with_context(|| format!("failed to lock `{}`", path.display()))?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_is_read_line_by_line() {
        let answers = parse(
            "done aa\nfail bb server returned error: HTTP/1.1 404 Not Found\nsize cc 1000\nnoise\nfail dd\n",
        );
        assert_eq!(answers["aa"], "");
        assert_eq!(
            answers["bb"],
            "server returned error: HTTP/1.1 404 Not Found"
        );
        assert_eq!(answers["cc"], "size 1000");
        assert_eq!(answers["dd"], "the download failed");
        assert_eq!(answers.len(), 4);
    }
}
