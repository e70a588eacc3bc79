//! End-to-end tests of `e export` and `e import` on the real Docker engine: the example stack
//! carried to a fresh directory with its images removed from the engine and run there with
//! nothing but the archive, damaged archives refused with nothing changed, merges, dry runs,
//! bills of materials, and a shared state exported with its secrets left out.
//!
//! The tests use copies of the example images, tagged `e-offline-tests/<module>:0.1.0`, each with
//! one layer of its own: removing them from the engine removes real layers, yet never touches
//! the `e-modules/*` images other tests may be running at the same time. Tests that change the
//! engine's images hold one lock, so they never see each other's changes, and put the images
//! back when they end, even when they fail.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

mod support;
use support::{e_in_with as e_in, root, stderr, stdout, text as text_of};

const MODULES: [&str; 3] = ["azi", "bmk", "bmm"];

fn image(module: &str) -> String {
    format!("e-offline-tests/{module}:0.1.0")
}

/// Serializes the tests that change the engine's images.
fn engine_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// The engine's id of an image, or `None` when it does not have it.
fn image_id(reference: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Builds the test images that are missing: each example module's build context plus one file
/// of its own, so the image has a layer no other image has. Returns an error instead of
/// panicking, so that it can run in `Drop`.
fn build_images() -> Result<(), String> {
    static CONTEXTS: OnceLock<()> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        let docker = docker(&["version"]);
        assert!(
            docker.status.success(),
            "no Docker engine answers; run tests/engine.sh (or tests/all.sh) first"
        );
        if !root().join("modules/azi/azi").exists() || !root().join("modules/bmm/busybox").exists()
        {
            let status = Command::new(root().join("modules/build-contexts.sh"))
                .status()
                .expect("build-contexts.sh runs");
            assert!(status.success(), "modules/build-contexts.sh failed");
        }
    });
    for module in MODULES {
        if image_id(&image(module)).is_some() {
            continue;
        }
        let context = tempfile::tempdir().map_err(|err| err.to_string())?;
        for entry in
            fs::read_dir(root().join("modules").join(module)).map_err(|err| err.to_string())?
        {
            let entry = entry.map_err(|err| err.to_string())?;
            if entry.file_type().map_err(|err| err.to_string())?.is_file() {
                fs::copy(entry.path(), context.path().join(entry.file_name()))
                    .map_err(|err| err.to_string())?;
            }
        }
        let dockerfile = context.path().join("Dockerfile");
        let mut text = fs::read_to_string(&dockerfile).map_err(|err| err.to_string())?;
        text.push_str("\nCOPY offline-test /offline-test\n");
        fs::write(&dockerfile, text).map_err(|err| err.to_string())?;
        fs::write(
            context.path().join("offline-test"),
            format!("e offline tests: {module}\n"),
        )
        .map_err(|err| err.to_string())?;
        let dir = context.path().to_str().expect("utf-8 temp dir");
        let out = e_in(
            root(),
            &root().join("repository.yaml"),
            &context.path().join("shared"),
            &["build", dir, "--tag", &image(module)],
            &[],
        );
        if !out.status.success() {
            return Err(format!(
                "building {} failed:\n{}",
                image(module),
                text_of(&out)
            ));
        }
    }
    Ok(())
}

/// Holds the engine lock, with the test images present; puts them back when dropped.
struct Engine {
    _lock: MutexGuard<'static, ()>,
}

impl Engine {
    fn take() -> Engine {
        let lock = engine_lock();
        build_images().unwrap_or_else(|err| panic!("{err}"));
        Engine { _lock: lock }
    }

    /// Removes the test images from the engine.
    fn remove_images(&self) {
        for module in MODULES {
            let out = docker(&["rmi", "-f", &image(module)]);
            assert!(
                out.status.success(),
                "docker rmi {}:\n{}",
                image(module),
                text_of(&out)
            );
            assert_eq!(
                image_id(&image(module)),
                None,
                "{} is still there",
                image(module)
            );
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(err) = build_images() {
            eprintln!("could not put the test images back: {err}");
        }
    }
}

/// Stdout with every run of spaces made one, so that table rows read `azi@0.1.0 added`.
fn rows(out: &Output) -> String {
    stdout(out)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The example repository, with the test images.
fn test_repository_text() -> String {
    fs::read_to_string(root().join("repository.yaml"))
        .expect("the top-level repository")
        .replace("image: e-modules/", "image: e-offline-tests/")
}

/// A directory with a repository and a shared directory: the machine that exports, or the one
/// that imports.
struct Site {
    dir: PathBuf,
    envs: Vec<(String, String)>,
}

impl Drop for Site {
    fn drop(&mut self) {
        drop(support::Volumes(self.shared()));
    }
}

impl Site {
    fn new(parent: &Path, name: &str, repository: Option<&str>) -> Site {
        let dir = parent.join(name);
        fs::create_dir_all(&dir).unwrap();
        if let Some(text) = repository {
            fs::write(dir.join("repository.yaml"), text).unwrap();
        }
        Site {
            dir,
            envs: Vec::new(),
        }
    }

    fn repository(&self) -> PathBuf {
        self.dir.join("repository.yaml")
    }

    fn shared(&self) -> PathBuf {
        self.dir.join("shared")
    }

    fn e(&self, args: &[&str]) -> Output {
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        e_in(&self.dir, &self.repository(), &self.shared(), args, &envs)
    }

    /// Runs e and asserts its exit code, showing everything it said when it differs.
    fn expect(&self, code: i32, args: &[&str]) -> Output {
        let out = self.e(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "e {}:\n{}",
            args.join(" "),
            text_of(&out)
        );
        out
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.shared().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
    }
}

/// The entries of an archive: path, offset of the data in the file, size.
fn entries(archive: &Path) -> Vec<(String, u64, u64)> {
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    tar.entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.path().unwrap().display().to_string(),
                entry.raw_file_position(),
                entry.size(),
            )
        })
        .collect()
}

/// The bytes of one entry of an archive.
fn entry_bytes(archive: &Path, wanted: &str) -> Vec<u8> {
    let mut tar = tar::Archive::new(fs::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().display().to_string() == wanted {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("no `{wanted}` in {}", archive.display());
}

/// The seed's walkthrough: azi init/plan/apply, a node's IPs edited by hand, bmk init/plan/apply,
/// and azi's audit reporting the hand change. No method may pull an image.
fn walkthrough(site: &Site) {
    site.expect(0, &["init", "azi"]);
    assert!(
        site.read("azi-config.yml").contains("size: 5"),
        "{}",
        site.read("azi-config.yml")
    );
    site.expect(2, &["plan", "azi", "--detailed-exitcode"]);
    site.expect(0, &["apply", "--auto-approve", "azi"]);
    let state = site.read("state.yml");
    assert_eq!(state.matches("usedBy: unused").count(), 5, "{state}");
    let edited = state
        .replacen("privateIP: 10.0.0.1\n", "privateIP: 10.0.0.100\n", 1)
        .replacen("publicIP: 213.1.1.1\n", "publicIP: 213.1.1.100\n", 1);
    assert_ne!(edited, state, "the walkthrough edits node 1");
    fs::write(site.shared().join("state.yml"), &edited).unwrap();
    site.expect(0, &["init", "bmk"]);
    assert!(
        site.read("bmk-config.yml").contains("10.0.0.100"),
        "{}",
        site.read("bmk-config.yml")
    );
    let plan = site.expect(2, &["plan", "bmk", "--detailed-exitcode"]);
    assert!(stdout(&plan).contains("10.0.0.100"), "{}", text_of(&plan));
    let apply = site.expect(0, &["apply", "--auto-approve", "bmk"]);
    assert_eq!(
        site.read("state.yml").matches("usedBy: bmk").count(),
        3,
        "{}",
        site.read("state.yml")
    );
    let audit = site.e(&["audit", "azi"]);
    assert_ne!(audit.status.code(), Some(0), "{}", text_of(&audit));
    assert!(stdout(&audit).contains("10.0.0.100"), "{}", text_of(&audit));
    for out in [&plan, &apply, &audit] {
        assert!(
            !stderr(out).contains("pulling"),
            "an image was pulled:\n{}",
            text_of(out)
        );
    }
}

#[test]
fn the_example_stack_runs_from_an_archive_alone() {
    let engine = Engine::take();
    let ids: Vec<String> = MODULES
        .iter()
        .map(|m| image_id(&image(m)).expect("built"))
        .collect();
    let temp = tempfile::tempdir().unwrap();
    let source = Site::new(temp.path(), "online", Some(&test_repository_text()));
    let archive = temp.path().join("stack.tar");
    let archive_arg = archive.to_str().unwrap();

    let out = source.expect(0, &["export", "azi", "bmk", "bmm", "--out", archive_arg]);
    assert!(
        stdout(&out).contains("3 module version(s), 3 image(s)"),
        "{}",
        text_of(&out)
    );
    let paths: Vec<String> = entries(&archive)
        .into_iter()
        .map(|(path, ..)| path)
        .collect();
    // e itself and its settings travel too (tests/offline_packages.rs runs the archived e).
    assert_eq!(
        paths,
        [
            "bin/e",
            "environment/settings.json",
            "images.tar",
            "repository.yaml",
            "manifest.json"
        ]
    );
    assert_eq!(
        entry_bytes(&archive, "bin/e"),
        fs::read(env!("CARGO_BIN_EXE_e")).unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry_bytes(&archive, "manifest.json")).unwrap();
    assert_eq!(manifest["format"], 2);
    assert_eq!(manifest["e_binary"], "bin/e");
    assert_eq!(manifest["e_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        manifest["modules"],
        serde_json::json!(["azi@0.1.0", "bmk@0.1.0", "bmm@0.1.0"])
    );
    let manifest_sha256 = stdout(&out).split("manifest sha256: ").nth(1).unwrap()[..64].to_owned();

    // The machine without the images: a new directory, and the engine without them.
    engine.remove_images();
    let offline = Site::new(temp.path(), "offline", None);
    let out = offline.expect(
        0,
        &["import", archive_arg, "--expect-sha256", &manifest_sha256],
    );
    for module in MODULES {
        assert!(
            rows(&out).contains(&format!("image {} loaded", image(module))),
            "{}",
            text_of(&out)
        );
        assert!(
            rows(&out).contains(&format!("module {module}@0.1.0 added")),
            "{}",
            text_of(&out)
        );
    }
    let back: Vec<String> = MODULES
        .iter()
        .map(|m| image_id(&image(m)).expect("imported"))
        .collect();
    assert_eq!(back, ids, "the images come back with the same ids");
    let list = stdout(&offline.expect(0, &["list"]));
    for module in MODULES {
        assert!(list.contains(module), "{list}");
    }
    walkthrough(&offline);
}

#[test]
fn damaged_archives_are_refused_with_nothing_changed() {
    let engine = Engine::take();
    let temp = tempfile::tempdir().unwrap();
    let source = Site::new(temp.path(), "online", Some(&test_repository_text()));
    let good = temp.path().join("good.tar");
    let out = source.expect(
        0,
        &[
            "export",
            "azi",
            "bmk",
            "bmm",
            "--out",
            good.to_str().unwrap(),
        ],
    );
    let manifest_sha256 = stdout(&out).split("manifest sha256: ").nth(1).unwrap()[..64].to_owned();
    let bytes = fs::read(&good).unwrap();
    let located = |wanted: &str| {
        entries(&good)
            .into_iter()
            .find(|(path, ..)| path == wanted)
            .unwrap()
    };

    let (_, images_at, images_size) = located("images.tar");
    let mut flipped = bytes.clone();
    flipped[(images_at + images_size / 2) as usize] ^= 0x01;
    let truncated = bytes[..bytes.len() / 2].to_vec();
    // The manifest edited in place: another size for repository.yaml.
    let (_, manifest_at, manifest_size) = located("manifest.json");
    let manifest = String::from_utf8(
        bytes[manifest_at as usize..(manifest_at + manifest_size) as usize].to_vec(),
    )
    .unwrap();
    let (_, _, repository_size) = located("repository.yaml");
    let lied = manifest.replacen(
        &format!("\"size\": {repository_size}"),
        &format!("\"size\": {}", repository_size - 1),
        1,
    );
    assert_ne!(lied, manifest);
    assert_eq!(lied.len(), manifest.len());
    let mut tampered_manifest = bytes.clone();
    tampered_manifest.splice(
        manifest_at as usize..(manifest_at + manifest_size) as usize,
        lied.bytes(),
    );
    // A consistent forgery: repository.yaml changed and its sha256 updated in the manifest. Only
    // the manifest's sha256, passed on apart from the archive, can tell.
    let (_, repository_at, _) = located("repository.yaml");
    let original = String::from_utf8(
        bytes[repository_at as usize..(repository_at + repository_size) as usize].to_vec(),
    )
    .unwrap();
    let forged_repository = original.replacen(
        "image: e-offline-tests/azi",
        "image: e-offline-tests/azj",
        1,
    );
    assert_ne!(forged_repository, original);
    assert_eq!(forged_repository.len(), original.len());
    let sha = |text: &str| {
        let out = Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                child.stdin.take().unwrap().write_all(text.as_bytes())?;
                child.wait_with_output()
            });
        String::from_utf8(out.unwrap().stdout).unwrap()[..64].to_owned()
    };
    let forged_manifest = manifest.replace(&sha(&original), &sha(&forged_repository));
    assert_eq!(forged_manifest.len(), manifest.len());
    let mut forged = bytes.clone();
    forged.splice(
        repository_at as usize..(repository_at + repository_size) as usize,
        forged_repository.bytes(),
    );
    forged.splice(
        manifest_at as usize..(manifest_at + manifest_size) as usize,
        forged_manifest.bytes(),
    );
    // An entry the manifest does not know, appended before the end of the archive.
    let mut extra = tar::Builder::new(Vec::new());
    for (path, at, size) in entries(&good) {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        extra
            .append_data(
                &mut header,
                &path,
                &bytes[at as usize..(at + size) as usize],
            )
            .unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    extra
        .append_data(&mut header, "shared/state.yml", &b"x: 1"[..])
        .unwrap();
    let extra = extra.into_inner().unwrap();

    engine.remove_images();
    let target = Site::new(
        temp.path(),
        "offline",
        Some("# the repository of the offline machine\nversion: v1\nkind: Repository\n"),
    );
    let before = fs::read(target.repository()).unwrap();
    let cases: [(&str, Vec<u8>, &[&str], &str); 5] = [
        ("flipped", flipped, &[], "`images.tar` has sha256"),
        ("truncated", truncated, &[], "truncated"),
        (
            "tampered-manifest",
            tampered_manifest,
            &[],
            "`repository.yaml` has",
        ),
        (
            "forged",
            forged,
            &["--expect-sha256", &manifest_sha256],
            "is not the archive expected",
        ),
        (
            "extra",
            extra,
            &[],
            "`shared/state.yml` is in the archive but not in the manifest",
        ),
    ];
    for (name, bytes, options, message) in cases {
        let path = temp.path().join(format!("{name}.tar"));
        fs::write(&path, bytes).unwrap();
        let mut args = vec!["import", path.to_str().unwrap()];
        args.extend(options);
        let out = target.expect(1, &args);
        assert!(
            stderr(&out).contains(message),
            "{name}: expected `{message}`:\n{}",
            text_of(&out)
        );
        assert!(
            stderr(&out).contains("nothing was imported"),
            "{name}:\n{}",
            text_of(&out)
        );
        assert_eq!(
            fs::read(target.repository()).unwrap(),
            before,
            "{name}: the repository changed"
        );
        assert!(
            !target.dir.join("files").exists(),
            "{name}: files/ was created"
        );
        assert!(
            !target.shared().exists(),
            "{name}: the shared directory was created"
        );
        assert!(
            !target.dir.join("repository.yaml.backup").exists(),
            "{name}: a backup was written"
        );
        for module in MODULES {
            assert_eq!(
                image_id(&image(module)),
                None,
                "{name}: {} was loaded",
                image(module)
            );
        }
    }
    // The good archive, for comparison, imports.
    target.expect(
        0,
        &[
            "import",
            good.to_str().unwrap(),
            "--expect-sha256",
            &manifest_sha256,
        ],
    );
}

#[test]
fn a_different_definition_is_refused_unless_forced_and_an_identical_one_skipped() {
    let _engine = Engine::take();
    let temp = tempfile::tempdir().unwrap();
    let source = Site::new(temp.path(), "online", Some(&test_repository_text()));
    let archive = temp.path().join("stack.tar");
    let archive_arg = archive.to_str().unwrap();
    source.expect(0, &["export", "azi", "bmk", "bmm", "--out", archive_arg]);

    let local = test_repository_text().replace("provides-kafka: 2.5.1", "provides-kafka: 2.6.0");
    let target = Site::new(temp.path(), "offline", Some(&local));
    let out = target.expect(1, &["import", archive_arg]);
    assert!(
        stderr(&out).contains("differently: `bmk@0.1.0`"),
        "{}",
        text_of(&out)
    );
    assert!(
        stderr(&out).contains("hint: compare with `e info MODULE@VERSION`; pass `--force`"),
        "{}",
        text_of(&out)
    );
    assert_eq!(fs::read_to_string(target.repository()).unwrap(), local);

    let out = target.expect(0, &["import", archive_arg, "--force"]);
    assert!(
        rows(&out).contains("module bmk@0.1.0 replaced (--force)"),
        "{}",
        text_of(&out)
    );
    assert!(
        rows(&out).contains("module azi@0.1.0 skipped"),
        "{}",
        text_of(&out)
    );
    assert!(
        stderr(&out).contains("the previous file is"),
        "{}",
        text_of(&out)
    );
    assert_eq!(
        fs::read_to_string(target.dir.join("repository.yaml.backup")).unwrap(),
        local
    );
    let info = stdout(&target.expect(0, &["info", "bmk"]));
    assert!(info.contains("provides-kafka: 2.5.1"), "{info}");

    let merged = fs::read(target.repository()).unwrap();
    let out = target.expect(0, &["import", archive_arg]);
    for module in MODULES {
        assert!(
            rows(&out).contains(&format!("module {module}@0.1.0 skipped")),
            "{}",
            text_of(&out)
        );
    }
    assert!(stderr(&out).contains("is unchanged"), "{}", text_of(&out));
    assert_eq!(
        fs::read(target.repository()).unwrap(),
        merged,
        "an identical import rewrites nothing"
    );
}

/// The example repository with a bill of materials on bmk: azi's image, a file by path, and a
/// file by `file://` URL.
fn with_bill_of_materials(tool_sha256: &str, url: &str, url_sha256: &str) -> String {
    let materials = format!(
        "        requirements:\n          images: [e-offline-tests/azi:0.1.0]\n          files:\n            - path: tools/tool.txt\n              sha256: {tool_sha256}\n            - name: other.bin\n              url: {url}\n              sha256: {url_sha256}\n"
    );
    let text = test_repository_text();
    let at = text
        .find("        image: e-offline-tests/bmk:0.1.0\n")
        .expect("bmk's image line");
    format!("{}{materials}{}", &text[..at], &text[at..])
}

#[test]
fn bills_of_materials_are_listed_carried_and_checked() {
    let _engine = Engine::take();
    let temp = tempfile::tempdir().unwrap();
    let tool = "a tool the module needs\n";
    let other = temp.path().join("other.bin");
    fs::write(&other, b"\x00\x01binary").unwrap();
    let sha = |path: &Path| {
        let out = Command::new("sha256sum").arg(path).output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    };
    let source = Site::new(temp.path(), "online", None);
    fs::create_dir_all(source.dir.join("tools")).unwrap();
    fs::write(source.dir.join("tools/tool.txt"), tool).unwrap();
    let tool_sha256 = sha(&source.dir.join("tools/tool.txt"));
    let url = format!("file://{}", other.display());
    fs::write(
        source.repository(),
        with_bill_of_materials(&tool_sha256, &url, &sha(&other)),
    )
    .unwrap();

    let info = stdout(&source.expect(0, &["info", "bmk"]));
    assert!(info.contains("bill of materials"), "{info}");
    assert!(
        info.contains(&format!(
            "file   tool.txt  sha256 {tool_sha256}  from tools/tool.txt"
        )),
        "{info}"
    );
    assert!(info.contains("image  e-offline-tests/azi:0.1.0"), "{info}");

    // --dry-run: every entry with its size, and nothing written.
    let archive = temp.path().join("bmk.tar");
    let archive_arg = archive.to_str().unwrap();
    let out = source.expect(0, &["export", "bmk", "--dry-run", "--out", archive_arg]);
    let listing = rows(&out);
    for row in [
        "KIND NAME SIZE",
        "module azi@0.1.0",
        "module bmk@0.1.0",
        "repository repository.yaml",
    ] {
        assert!(listing.contains(row), "no `{row}`:\n{listing}");
    }
    for module in ["azi", "bmk"] {
        let row = listing
            .lines()
            .find(|l| l.starts_with(&format!("image {}", image(module))))
            .unwrap_or_else(|| panic!("{listing}"));
        assert!(row.ends_with(" MB"), "image sizes are shown: {row}");
    }
    assert_eq!(
        listing.matches("image ").count(),
        2,
        "azi's image is listed once:\n{listing}"
    );
    assert!(
        listing.contains(&format!("file files/{tool_sha256}/tool.txt 24 B")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("file files/{}/other.bin 8 B", sha(&other))),
        "{listing}"
    );
    assert!(
        listing.lines().last().unwrap().starts_with("total "),
        "{listing}"
    );
    assert!(
        !archive.exists() && !temp.path().join("bmk.tar.partial").exists(),
        "a dry run writes nothing"
    );

    // The files travel with the archive and land next to the repository file.
    source.expect(0, &["export", "bmk", "--out", archive_arg]);
    let target = Site::new(temp.path(), "offline", None);
    let out = target.expect(0, &["import", archive_arg]);
    assert!(
        stdout(&out).contains(&format!("files/{tool_sha256}/tool.txt")),
        "{}",
        text_of(&out)
    );
    assert_eq!(
        fs::read_to_string(target.dir.join(format!("files/{tool_sha256}/tool.txt"))).unwrap(),
        tool
    );
    assert_eq!(
        fs::read(target.dir.join(format!("files/{}/other.bin", sha(&other)))).unwrap(),
        b"\x00\x01binary"
    );
    // The imported repository finds them there: it can be exported again.
    target.expect(0, &["export", "bmk", "--dry-run"]);
    let out = target.expect(0, &["import", archive_arg]);
    assert!(stdout(&out).contains("already there"), "{}", text_of(&out));

    // A file that is not the one the repository pins stops the export, naming both hashes.
    fs::write(source.dir.join("tools/tool.txt"), "another tool\n").unwrap();
    let out = source.expect(1, &["export", "bmk", "--out", archive_arg, "--force"]);
    let message = stderr(&out);
    assert!(
        message.contains("module `bmk@0.1.0` file `tool.txt`"),
        "{message}"
    );
    assert!(
        message.contains(&sha(&source.dir.join("tools/tool.txt")))
            && message.contains(&tool_sha256),
        "{message}"
    );
    assert!(
        !temp.path().join("bmk.tar.partial").exists(),
        "a failed export leaves nothing half-written"
    );
    assert!(
        archive.exists(),
        "a failed export leaves the previous archive alone"
    );

    // Files by http(s) URL go through the downloader: tests/offline_download.rs.

    // A sha256 that is not one is a load error, with its line, module and version.
    fs::write(
        source.repository(),
        with_bill_of_materials("abc", &url, &sha(&other)),
    )
    .unwrap();
    let out = source.expect(1, &["list"]);
    assert!(
        stderr(&out).contains("module `bmk` version `0.1.0`, requirements.files"),
        "{}",
        text_of(&out)
    );
    assert!(
        stderr(&out).contains("sha256 `abc` is not 64 hexadecimal digits"),
        "{}",
        text_of(&out)
    );
}

#[test]
fn a_state_travels_with_its_secrets_left_out() {
    let _engine = Engine::take();
    let temp = tempfile::tempdir().unwrap();
    let token = "tok-3f9a1c77e2";
    let password = "pw-91b2c4d8aa";
    // azi's init takes a token from e's environment, as a module would for a cloud API.
    let repository = test_repository_text().replacen(
        "            command: init\n",
        "            command: init\n            envs:\n              API_TOKEN: ${env:E_OFFLINE_TEST_TOKEN}\n",
        1,
    );
    let mut source = Site::new(temp.path(), "online", Some(&repository));
    source
        .envs
        .push(("E_OFFLINE_TEST_TOKEN".to_owned(), token.to_owned()));
    source.expect(0, &["init", "azi"]);
    source.expect(0, &["apply", "--auto-approve", "azi"]);
    // Secrets that ended up in the shared directory, as a careless module might leave them.
    let state = source.read("state.yml");
    fs::write(
        source.shared().join("state.yml"),
        format!("{state}notes:\n  token: {token}\n  db: {password}\n"),
    )
    .unwrap();
    let secrets = temp.path().join("secrets.yml");
    fs::write(&secrets, format!("db_password: {password}\n")).unwrap();

    let archive = temp.path().join("site.tar");
    let archive_arg = archive.to_str().unwrap();
    let out = source.expect(
        0,
        &[
            "--secrets",
            secrets.to_str().unwrap(),
            "export",
            "azi",
            "--with-state",
            "--out",
            archive_arg,
        ],
    );
    assert!(
        stdout(&out).contains("secret values replaced by `***` in: shared/state.yml"),
        "{}",
        text_of(&out)
    );
    let bytes = fs::read(&archive).unwrap();
    for secret in [token, password] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "`{secret}` is in the archive"
        );
    }
    let archived_state = String::from_utf8(entry_bytes(&archive, "shared/state.yml")).unwrap();
    assert!(
        archived_state.contains("token: '***'") && archived_state.contains("db: '***'"),
        "{archived_state}"
    );
    let paths: Vec<String> = entries(&archive)
        .into_iter()
        .map(|(path, ..)| path)
        .collect();
    for wanted in [
        "shared/state.yml",
        "shared/azi-config.yml",
        "shared/.e/installed.json",
    ] {
        assert!(
            paths.iter().any(|p| p == wanted),
            "no `{wanted}` in {paths:?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.starts_with("shared/.e/history/")),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("/lock") || p.contains("/tmp/") || p.ends_with("snapshot.yml")),
        "{paths:?}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&entry_bytes(&archive, "manifest.json")).unwrap();
    assert_eq!(manifest["state"], true);
    assert_eq!(
        manifest["redacted"],
        serde_json::json!(["shared/state.yml"])
    );

    let target = Site::new(temp.path(), "offline", None);
    let out = target.expect(0, &["import", archive_arg]);
    assert!(
        stdout(&out).contains("shared/state.yml"),
        "{}",
        text_of(&out)
    );
    assert!(
        stdout(&out).contains("secret values are `***`"),
        "{}",
        text_of(&out)
    );
    assert_eq!(target.read("state.yml"), archived_state);
    let status = stdout(&target.expect(0, &["status"]));
    assert!(
        status.contains("azi") && status.contains("applied"),
        "{status}"
    );
    let history = stdout(&target.expect(0, &["history"]));
    assert!(history.contains("apply"), "{history}");

    // A shared directory that holds a state is not overwritten without --force.
    let out = target.expect(1, &["import", archive_arg]);
    assert!(
        stderr(&out).contains("already holds a state"),
        "{}",
        text_of(&out)
    );
    fs::write(target.shared().join("state.yml"), "mine: true\n").unwrap();
    let out = target.expect(1, &["import", archive_arg]);
    assert!(
        // It imported this archive before: the same lineage (a hand edit is no commit).
        stderr(&out).contains("of the same environment, at the same serial"),
        "{}",
        text_of(&out)
    );
    assert_eq!(target.read("state.yml"), "mine: true\n");
    // --force replaces it only after a yes (none on a closed stdin) or --auto-approve.
    let out = target.expect(1, &["import", archive_arg, "--force"]);
    assert!(stderr(&out).contains("--auto-approve"), "{}", text_of(&out));
    assert_eq!(target.read("state.yml"), "mine: true\n");
    target.expect(0, &["import", archive_arg, "--force", "--auto-approve"]);
    assert_eq!(target.read("state.yml"), archived_state);
    // The imported state keeps the lineage it was exported with.
    assert_eq!(
        target.read(".e/serial.json").into_bytes(),
        entry_bytes(&archive, "shared/.e/serial.json")
    );
}
