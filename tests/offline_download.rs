//! End-to-end tests of the downloader (`e download`, and `e export` fetching what the cache
//! lacks) on the real Docker engine, against an HTTP server each test starts on loopback: a
//! file that arrives whole, one whose connection drops halfway (resumed with a range request),
//! one whose bytes are not the ones the repository pins, and one the server does not have. The
//! server runs in the test's own thread and stops when its guard is dropped, even when the test
//! fails; its port is one of 23820-23829, held by a lock file so that no other test takes it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

mod support;
use support::{e_in_with, root, stderr, stdout, text};

/// What the server knows of one path.
#[derive(Clone)]
enum Behaviour {
    /// Serves the bytes, honouring `Range: bytes=N-`.
    Whole(Vec<u8>),
    /// Every request without a range gets half of the bytes, then the connection closes (with
    /// the full `Content-Length` promised); a range request gets the rest.
    DropsHalfway(Vec<u8>),
    /// The first three requests each get this many bytes from where they start, then the
    /// connection closes; later ones are served whole, honouring the range.
    DropsThrice(Vec<u8>, usize),
}

/// A request the server answered: path and `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    range: Option<String>,
}

/// An HTTP/1.1 server on 127.0.0.1, in a thread of the test; stopped when dropped.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _port_lock: File,
}

impl Server {
    fn start(paths: BTreeMap<String, Behaviour>) -> Server {
        let (listener, port, lock) = reserve_port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let seen = Arc::clone(&seen);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = answer(stream, &paths, &seen);
                }
            })
        };
        Server {
            port,
            seen,
            stop,
            thread: Some(thread),
            _port_lock: lock,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds the first free port of 23820-23829 whose lock file this process can hold.
fn reserve_port() -> (TcpListener, u16, File) {
    let dir = std::env::temp_dir().join("e-test-ports");
    fs::create_dir_all(&dir).unwrap();
    for port in 23820..=23829u16 {
        let lock = File::create(dir.join(format!("{port}.lock"))).unwrap();
        if lock.try_lock().is_err() {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return (listener, port, lock);
        }
    }
    panic!("no free port in 23820-23829 for the test's HTTP server");
}

fn answer(
    stream: TcpStream,
    paths: &BTreeMap<String, Behaviour>,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts
        .next()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_owned();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        range: range.clone(),
    });
    let mut stream = stream;
    let Some(behaviour) = paths.get(&path) else {
        let body = b"not here\n";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        return stream.write_all(body);
    };
    let asked = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.path == path)
        .count();
    let (bytes, cut) = match behaviour {
        Behaviour::Whole(bytes) => (bytes, None),
        Behaviour::DropsHalfway(bytes) => (bytes, range.is_none().then_some(bytes.len() / 2)),
        Behaviour::DropsThrice(bytes, chunk) => (bytes, (asked <= 3).then_some(*chunk)),
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    if start >= bytes.len() && start > 0 {
        return write!(
            stream,
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    if start > 0 {
        write!(
            stream,
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            bytes.len() - start,
            bytes.len() - 1,
            bytes.len()
        )?;
    } else {
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            bytes.len()
        )?;
    }
    if method == "HEAD" {
        return Ok(());
    }
    if let Some(cut) = cut {
        stream.write_all(&bytes[start..(start + cut).min(bytes.len())])?;
        // Closing here breaks the promise of Content-Length: the client sees a short read.
        return stream.shutdown(std::net::Shutdown::Both);
    }
    stream.write_all(&bytes[start..])
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes no other test serves: random, seeded by the name.
fn content(name: &str, size: usize) -> Vec<u8> {
    let seed = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut bytes = vec![0; size];
    fastrand::Rng::with_seed(seed).fill(&mut bytes);
    bytes
}

/// Makes sure the downloader image is in the engine: built from `modules/downloader` (the
/// contexts come from `modules/build-contexts.sh`, which tests/all.sh runs first).
fn downloader_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let inspect = Command::new("docker")
            .args(["image", "inspect", "e-modules/downloader:0.1.0"])
            .output()
            .expect("the docker CLI runs");
        if inspect.status.success() {
            return;
        }
        if !root().join("modules/downloader/busybox").exists() {
            let status = Command::new(root().join("modules/build-contexts.sh"))
                .status()
                .expect("build-contexts.sh runs");
            assert!(status.success(), "modules/build-contexts.sh failed");
        }
        let dir = tempfile::tempdir().unwrap();
        let out = e_in_with(
            root(),
            &dir.path().join("repository.yaml"),
            &dir.path().join("shared"),
            &[
                "build",
                root().join("modules/downloader").to_str().unwrap(),
                "--tag",
                "e-modules/downloader:0.1.0",
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
    });
}

/// A repository, a shared directory and a download cache of one test.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// A site whose module `tool@0.1.0` (image bmk's) lists these files: (name, url, sha256).
    fn new(files: &[(&str, String, String)]) -> Site {
        downloader_image();
        let dir = tempfile::tempdir().unwrap();
        let mut bill = String::new();
        for (name, url, sha256) in files {
            bill.push_str(&format!(
                "            - name: {name}\n              url: {url}\n              sha256: {sha256}\n"
            ));
        }
        fs::write(
            dir.path().join("repository.yaml"),
            format!(
                "version: v1\nkind: Repository\ncomponents:\n  - name: tool\n    type: docker\n    versions:\n      - version: 0.1.0\n        latest: true\n        image: e-modules/bmk:0.1.0\n        requirements:\n          files:\n{bill}"
            ),
        )
        .unwrap();
        Site { dir }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn e(&self, args: &[&str]) -> Output {
        let cache = self.cache();
        e_in_with(
            self.dir.path(),
            &self.dir.path().join("repository.yaml"),
            &self.dir.path().join("shared"),
            args,
            &[("E_CACHE_DIR", cache.to_str().unwrap())],
        )
    }

    fn expect(&self, code: i32, args: &[&str]) -> Output {
        support::exited(code, args, self.e(args))
    }

    /// The files the cache holds whole, as `sha256/name`.
    fn cached(&self) -> Vec<String> {
        let mut found = Vec::new();
        let files = self.cache().join("downloads/files");
        for sha in fs::read_dir(&files).into_iter().flatten().flatten() {
            for file in fs::read_dir(sha.path()).unwrap().flatten() {
                found.push(format!(
                    "{}/{}",
                    sha.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                ));
            }
        }
        found.sort();
        found
    }

    fn partial(&self, sha256: &str) -> Option<u64> {
        fs::metadata(self.cache().join("downloads/partial").join(sha256))
            .ok()
            .map(|m| m.len())
    }
}

/// The bytes of one entry of a tar file.
fn entry_bytes(archive: &Path, wanted: &str) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(File::open(archive).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(wanted) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

#[test]
fn files_arrive_whole_resumed_and_once() {
    let whole = content("whole", 300_000);
    let broken = content("broken", 500_000);
    let server = Server::start(BTreeMap::from([
        ("whole.bin".to_owned(), Behaviour::Whole(whole.clone())),
        (
            "broken.bin".to_owned(),
            Behaviour::DropsHalfway(broken.clone()),
        ),
    ]));
    let site = Site::new(&[
        ("whole.bin", server.url("whole.bin"), sha256(&whole)),
        ("broken.bin", server.url("broken.bin"), sha256(&broken)),
    ]);

    // A dry run asks for the sizes and downloads nothing.
    let out = site.expect(0, &["export", "tool", "--dry-run", "--without-e"]);
    let listing = stdout(&out);
    assert!(
        listing.contains(&format!("(to download from {})", server.url("whole.bin")))
            && listing.contains("300.0 kB")
            && listing.contains("500.0 kB"),
        "{listing}"
    );
    assert!(site.cached().is_empty(), "{:?}", site.cached());

    let out = site.expect(0, &["download", "tool"]);
    let report = stdout(&out);
    assert!(
        report.contains("downloaded, sha256 checked"),
        "{}",
        text(&out)
    );
    assert_eq!(
        site.cached(),
        [
            format!("{}/broken.bin", sha256(&broken)),
            format!("{}/whole.bin", sha256(&whole))
        ]
    );
    let path = |sha: &str, name: &str| site.cache().join("downloads/files").join(sha).join(name);
    assert_eq!(
        fs::read(path(&sha256(&broken), "broken.bin")).unwrap(),
        broken
    );
    assert_eq!(fs::read(path(&sha256(&whole), "whole.bin")).unwrap(), whole);
    assert_eq!(site.partial(&sha256(&broken)), None);
    // The broken download was resumed from where it stopped, not started again (the first
    // request is the dry run's, which busybox's `--spider` makes a GET it hangs up on).
    let ranges: Vec<Option<String>> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == "broken.bin")
        .map(|s| s.range)
        .collect();
    assert_eq!(
        ranges,
        [None, None, Some(format!("bytes={}-", broken.len() / 2))],
    );

    // The second time, and for the export, the cache answers: the server hears nothing more.
    let before = server.seen().len();
    let out = site.expect(0, &["download", "tool"]);
    assert!(stdout(&out).contains("in the cache"), "{}", text(&out));
    let archive = site.dir.path().join("tool.tar");
    site.expect(
        0,
        &[
            "export",
            "tool",
            "--without-e",
            "--out",
            archive.to_str().unwrap(),
        ],
    );
    assert_eq!(server.seen().len(), before, "{:?}", server.seen());
    let entry = format!("files/{}/broken.bin", sha256(&broken));
    assert_eq!(entry_bytes(&archive, &entry).as_deref(), Some(&broken[..]));
    // The archived repository names the files where `e import` puts them, without the URL.
    let repository = String::from_utf8(entry_bytes(&archive, "repository.yaml").unwrap()).unwrap();
    assert!(
        repository.contains(&format!("path: {entry}")) && !repository.contains("http://"),
        "{repository}"
    );
}

#[test]
fn a_wrong_or_missing_file_is_refused_and_nothing_kept_as_whole() {
    let right = content("right", 100_000);
    let served = content("served instead", 100_000);
    let server = Server::start(BTreeMap::from([(
        "wrong.bin".to_owned(),
        Behaviour::Whole(served),
    )]));
    let site = Site::new(&[
        ("wrong.bin", server.url("wrong.bin"), sha256(&right)),
        ("missing.bin", server.url("missing.bin"), sha256(b"missing")),
    ]);
    let out = site.expect(1, &["download", "tool"]);
    let err = stderr(&out);
    assert!(
        err.contains("2 of 2 file(s) could not be downloaded")
            && err.contains(&format!(
                "module `tool@0.1.0` file `wrong.bin` (`{}`): its sha256 is {}, but the repository says {}; it was deleted",
                server.url("wrong.bin"),
                sha256(&content("served instead", 100_000)),
                sha256(&right)
            ))
            && err.contains("file `missing.bin`")
            && err.contains("404 Not Found")
            && err.contains("hint: "),
        "{err}"
    );
    assert!(site.cached().is_empty(), "{:?}", site.cached());
    assert_eq!(site.partial(&sha256(&right)), None);
    // A 404 is not tried again: the server was asked once for each file.
    let mut asked: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    asked.sort();
    assert_eq!(asked, ["missing.bin", "wrong.bin"]);

    // An export stops before writing anything, for the same reasons.
    let archive = site.dir.path().join("tool.tar");
    let out = site.expect(
        1,
        &[
            "export",
            "tool",
            "--without-e",
            "--out",
            archive.to_str().unwrap(),
        ],
    );
    assert!(
        stderr(&out).contains("could not be downloaded"),
        "{}",
        text(&out)
    );
    assert!(!archive.exists());
    // A dry run says which file cannot be had.
    let out = site.expect(1, &["export", "tool", "--dry-run"]);
    assert!(
        stderr(&out).contains("file `missing.bin`") && stderr(&out).contains("404"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_download_that_keeps_breaking_is_kept_apart_and_resumed_by_the_next_one() {
    let bytes = content("keeps breaking", 400_000);
    let server = Server::start(BTreeMap::from([(
        "flaky.bin".to_owned(),
        Behaviour::DropsThrice(bytes.clone(), 100_000),
    )]));
    let site = Site::new(&[("flaky.bin", server.url("flaky.bin"), sha256(&bytes))]);

    // Three tries, each resuming the last: three quarters arrive, and the download fails.
    let out = site.expect(1, &["download", "tool"]);
    assert!(
        stderr(&out)
            .contains("(after 3 tries); what arrived is kept, and the next download resumes it"),
        "{}",
        text(&out)
    );
    assert!(site.cached().is_empty(), "{:?}", site.cached());
    assert_eq!(site.partial(&sha256(&bytes)), Some(300_000));
    let ranges = |server: &Server| -> Vec<Option<String>> {
        server.seen().into_iter().map(|s| s.range).collect()
    };
    assert_eq!(
        ranges(&server),
        [
            None,
            Some("bytes=100000-".to_owned()),
            Some("bytes=200000-".to_owned())
        ]
    );

    // The next run (an export) asks only for the last quarter, and archives the whole file.
    let archive = site.dir.path().join("tool.tar");
    site.expect(
        0,
        &[
            "export",
            "tool",
            "--without-e",
            "--out",
            archive.to_str().unwrap(),
        ],
    );
    assert_eq!(
        ranges(&server).last(),
        Some(&Some("bytes=300000-".to_owned()))
    );
    assert_eq!(ranges(&server).len(), 4);
    assert_eq!(site.partial(&sha256(&bytes)), None);
    let entry = format!("files/{}/flaky.bin", sha256(&bytes));
    assert_eq!(entry_bytes(&archive, &entry).as_deref(), Some(&bytes[..]));
}
