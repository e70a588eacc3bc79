//! Unit tests of `tree.rs`: reading host directories and tar streams, writing both back, and
//! every refusal, each planted the way a module would plant it.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

fn small(max_entries: usize, max_total_bytes: u64) -> Limits {
    Limits {
        max_entries,
        max_file_bytes: 1024,
        max_state_bytes: 512,
        max_total_bytes,
    }
}

fn sample() -> Tree {
    let mut tree = Tree::default();
    tree.insert_file("state.yml", b"azi:\n  status: applied\n".to_vec(), 0o644);
    tree.insert_file("azi-config.yml", b"size: 3\n".to_vec(), 0o600);
    tree.insert_file(".e/requirements/azi.json", b"{}".to_vec(), 0o444);
    tree.insert_file("tools/run.sh", b"#!/bin/sh\n".to_vec(), 0o755);
    tree.entries
        .insert("empty".to_owned(), Node::Dir { mode: 0o700 });
    tree
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn refusal<T: std::fmt::Debug>(result: Result<T, Refusal>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn a_directory_written_and_read_back_is_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = sample();
    tree.write_dir(dir.path(), None).unwrap();
    let meta = fs::metadata(dir.path().join("azi-config.yml")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let read = Tree::read_dir(dir.path(), &Limits::DEFAULT).unwrap();
    assert_eq!(read, tree);
    assert_eq!(read.digest(), tree.digest());
}

#[test]
fn read_only_directories_are_filled_before_they_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = Tree::default();
    tree.insert_file("locked/inner/file", b"x".to_vec(), 0o400);
    tree.entries
        .insert("locked".to_owned(), Node::Dir { mode: 0o555 });
    tree.write_dir(dir.path(), None).unwrap();
    let meta = fs::metadata(dir.path().join("locked")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o555);
    assert_eq!(Tree::read_dir(dir.path(), &Limits::DEFAULT).unwrap(), tree);
    // Let the temporary directory be removed even when the tests do not run as root.
    fs::set_permissions(dir.path().join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn write_dir_refuses_a_root_that_is_not_empty_and_keys_that_leave_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("there"), "x").unwrap();
    let err = sample()
        .write_dir(dir.path(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not empty"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let mut bad = Tree::default();
    bad.entries.insert(
        "../escape".to_owned(),
        Node::File {
            bytes: vec![],
            mode: 0o644,
        },
    );
    let err = bad.write_dir(empty.path(), None).unwrap_err().to_string();
    assert!(err.contains("`../escape` is not a relative path"), "{err}");
    assert!(!empty.path().parent().unwrap().join("escape").exists());
}

#[test]
fn write_dir_gives_everything_to_the_owner() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: changing owners needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    sample().write_dir(dir.path(), Some((4321, 8765))).unwrap();
    for path in ["", "state.yml", ".e", ".e/requirements/azi.json", "empty"] {
        let meta = fs::symlink_metadata(dir.path().join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 8765), "`{path}`");
    }
}

#[test]
fn links_fifos_sockets_and_hard_links_are_refused() {
    type Plant = fn(&Path, &Path);
    let cases: [(&str, Plant, &str); 6] = [
        (
            "link to a file",
            |root, outside| std::os::unix::fs::symlink(outside, root.join("state.yml")).unwrap(),
            "`state.yml` is a symbolic link",
        ),
        (
            "link to a directory",
            |root, outside| {
                std::os::unix::fs::symlink(outside.parent().unwrap(), root.join("sub/up")).unwrap()
            },
            "`sub/up` is a symbolic link",
        ),
        (
            "dangling link",
            |root, _| std::os::unix::fs::symlink("/nowhere", root.join("sub/x")).unwrap(),
            "`sub/x` is a symbolic link",
        ),
        (
            "FIFO",
            |root, _| mkfifo(&root.join("sub/pipe")),
            "`sub/pipe` is a FIFO",
        ),
        (
            "socket",
            |root, _| {
                std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
            },
            "`sock` is a socket",
        ),
        (
            "hard link",
            |root, outside| fs::hard_link(outside, root.join("sub/linked")).unwrap(),
            "`sub/linked` has 2 hard links",
        ),
    ];
    for (name, plant, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shared");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/ok"), "fine").unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, "secret").unwrap();
        plant(&root, &outside);
        let err = refusal(Tree::read_dir(&root, &Limits::DEFAULT));
        assert!(err.starts_with(expected), "{name}: {err}");
        assert_eq!(fs::read(&outside).unwrap(), b"secret", "{name}");
    }
}

#[test]
fn devices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("null");
    let c = CString::new(device.as_os_str().as_encoded_bytes()).unwrap();
    let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if made != 0 {
        eprintln!("skipped: creating a device needs CAP_MKNOD");
        return;
    }
    let err = refusal(Tree::read_dir(dir.path(), &Limits::DEFAULT));
    assert!(err.starts_with("`null` is a device"), "{err}");
}

#[test]
fn a_root_that_is_a_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let err = refusal(Tree::read_dir(&dir.path().join("link"), &Limits::DEFAULT));
    assert_eq!(err, "`.` is not a directory");
}

#[test]
fn a_huge_file_is_refused_from_its_size_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: 10 GiB that a reader would take minutes (and the memory) to read.
    let file = fs::File::create(dir.path().join("big")).unwrap();
    file.set_len(10 << 30).unwrap();
    let err = refusal(Tree::read_dir(dir.path(), &Limits::DEFAULT));
    assert_eq!(
        err,
        "`big` is 10737418240 bytes, over the limit of 32 MiB per file"
    );
    fs::remove_file(dir.path().join("big")).unwrap();
    let state = fs::File::create(dir.path().join("state.yml")).unwrap();
    state.set_len(Limits::DEFAULT.max_state_bytes + 1).unwrap();
    let err = refusal(Tree::read_dir(dir.path(), &Limits::DEFAULT));
    assert_eq!(
        err,
        "`state.yml` is 16777217 bytes, over the limit of 16 MiB for the state"
    );
    // The same size elsewhere is a file like any other.
    fs::rename(dir.path().join("state.yml"), dir.path().join("data.bin")).unwrap();
    let tree = Tree::read_dir(dir.path(), &Limits::DEFAULT).unwrap();
    assert_eq!(tree.total_bytes(), Limits::DEFAULT.max_state_bytes + 1);
}

#[test]
fn entry_count_and_total_size_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4 {
        fs::write(dir.path().join(format!("f{i}")), [0u8; 300]).unwrap();
    }
    fs::create_dir(dir.path().join("d")).unwrap();
    assert_eq!(
        Tree::read_dir(dir.path(), &small(5, 1200))
            .unwrap()
            .entries
            .len(),
        5
    );
    let err = refusal(Tree::read_dir(dir.path(), &small(4, 1200)));
    assert!(
        err.ends_with("is one entry too many: the limit is 4 files and directories"),
        "{err}"
    );
    let err = refusal(Tree::read_dir(dir.path(), &small(5, 1000)));
    assert_eq!(
        err,
        "`f3` brings the files to 1200 bytes, over the limit of 1000 bytes in total"
    );
}

#[test]
fn names_must_be_utf8_and_paths_not_too_long() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        "x",
    )
    .unwrap();
    let err = refusal(Tree::read_dir(dir.path(), &Limits::DEFAULT));
    assert_eq!(err, "`bad\u{fffd}name` is not named in UTF-8");

    // 17 levels of 250 bytes: longer than PATH_MAX, so made one level at a time with mkdirat.
    let dir = tempfile::tempdir().unwrap();
    let root = CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    let name = CString::new("d".repeat(250)).unwrap();
    unsafe {
        let mut fd = libc::open(root.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
        for _ in 0..17 {
            assert_eq!(libc::mkdirat(fd, name.as_ptr(), 0o755), 0, "mkdirat");
            let next = libc::openat(fd, name.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
            assert!(next >= 0, "openat");
            libc::close(fd);
            fd = next;
        }
        libc::close(fd);
    }
    let err = refusal(Tree::read_dir(dir.path(), &Limits::DEFAULT));
    assert!(err.contains("over the limit of 4096"), "{err}");
}

/// A GNU tar header for `path`, its name written byte by byte so that it may say what
/// `tar::Builder` refuses to write (`..`, absolute paths).
fn raw_header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_cksum();
    header
}

fn archive(entries: &[(tar::Header, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (header, data) in entries {
        builder.append(header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// An archive like the engine's: `shared/` and what it holds, built by `tar::Builder`
/// with GNU headers, so long names take GNU long-name entries.
fn engine_archive(tree: &Tree) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    builder
        .append_data(&mut header, "shared/", io::empty())
        .unwrap();
    for (path, node) in &tree.entries {
        let mut header = tar::Header::new_gnu();
        match node {
            Node::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("shared/{path}/"), io::empty())
                    .unwrap();
            }
            Node::File { bytes, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                builder
                    .append_data(&mut header, format!("shared/{path}"), bytes.as_slice())
                    .unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

#[test]
fn an_engine_archive_reads_as_the_tree_it_holds_long_names_included() {
    let mut tree = sample();
    let long = format!("{}/{}.yml", "l".repeat(150), "m".repeat(120));
    tree.insert_file(&long, b"long: true\n".to_vec(), 0o640);
    let read = Tree::read_tar(engine_archive(&tree).as_slice(), "shared", &Limits::DEFAULT);
    assert_eq!(read.unwrap(), tree);
}

#[test]
fn pax_long_names_are_read() {
    let path = format!("shared/{}", "p".repeat(300));
    let pax = format!("path={path}\n");
    let record = format!("{} {pax}", pax.len() + 4);
    assert_eq!(record.len(), pax.len() + 4, "a 3-digit length");
    let tar = archive(&[
        (raw_header("shared/", tar::EntryType::Directory, 0), b""),
        (
            raw_header("PaxHeader", tar::EntryType::XHeader, record.len() as u64),
            record.as_bytes(),
        ),
        (
            raw_header("shared/short", tar::EntryType::Regular, 2),
            b"ok",
        ),
    ]);
    let tree = Tree::read_tar(tar.as_slice(), "shared", &Limits::DEFAULT).unwrap();
    assert_eq!(tree.file(&"p".repeat(300)), Some(&b"ok"[..]));
}

#[test]
fn to_tar_gives_the_root_and_every_entry_to_the_owner() {
    let mut tree = sample();
    tree.insert_file("x/".repeat(80).trim_end_matches('/'), vec![1], 0o644);
    let tar = tree.to_tar((4321, 8765)).unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = archive.entries().unwrap();
    let root = entries.next().unwrap().unwrap();
    assert_eq!(&*root.path_bytes(), b"./");
    assert_eq!(root.header().entry_type(), tar::EntryType::Directory);
    assert_eq!(root.header().mode().unwrap(), 0o755);
    for entry in entries {
        let entry = entry.unwrap();
        let header = entry.header();
        assert_eq!(
            (header.uid().unwrap(), header.gid().unwrap()),
            (4321, 8765),
            "{:?}",
            entry.path()
        );
    }
    assert_eq!(
        Tree::read_tar(tar.as_slice(), "", &Limits::DEFAULT).unwrap(),
        tree
    );
}

#[test]
fn hostile_archives_are_refused() {
    let dir = || {
        (
            raw_header("shared/", tar::EntryType::Directory, 0),
            &b""[..],
        )
    };
    let mut link = raw_header("shared/state.yml", tar::EntryType::Symlink, 0);
    link.set_link_name("/etc/passwd").unwrap();
    link.set_cksum();
    let mut hard = raw_header("shared/h", tar::EntryType::Link, 0);
    hard.set_link_name("shared/state.yml").unwrap();
    hard.set_cksum();
    let mut sparse = raw_header("shared/s", tar::EntryType::GNUSparse, 0);
    sparse.as_gnu_mut().unwrap().set_real_size(0);
    sparse.set_cksum();
    type Entries<'a> = Vec<(tar::Header, &'a [u8])>;
    let cases: Vec<(Entries, &str)> = vec![
        (vec![dir(), (link, b"")], "`state.yml` is a symbolic link"),
        (vec![dir(), (hard, b"")], "`h` is a hard link"),
        (
            vec![
                dir(),
                (raw_header("shared/c", tar::EntryType::Char, 0), b""),
            ],
            "`c` is a device",
        ),
        (
            vec![
                dir(),
                (raw_header("shared/b", tar::EntryType::Block, 0), b""),
            ],
            "`b` is a device",
        ),
        (
            vec![
                dir(),
                (raw_header("shared/p", tar::EntryType::Fifo, 0), b""),
            ],
            "`p` is a FIFO",
        ),
        (
            vec![
                dir(),
                (raw_header("/etc/x", tar::EntryType::Regular, 1), b"x"),
            ],
            "`/etc/x` is an absolute path",
        ),
        (
            vec![
                dir(),
                (raw_header("shared/../x", tar::EntryType::Regular, 1), b"x"),
            ],
            "`shared/../x` leaves the directory",
        ),
        (
            vec![
                dir(),
                (raw_header("other/x", tar::EntryType::Regular, 1), b"x"),
            ],
            "`other/x` lies outside `shared/`",
        ),
        (
            vec![(raw_header("shared", tar::EntryType::Regular, 1), b"x")],
            "`shared` is not a directory",
        ),
        (
            vec![
                dir(),
                (raw_header("shared/a", tar::EntryType::Regular, 1), b"x"),
                (raw_header("shared/a/", tar::EntryType::Directory, 0), b""),
            ],
            "`a` appears twice in the archive, as a file and as a directory",
        ),
        (
            vec![
                dir(),
                (raw_header("shared/a", tar::EntryType::Regular, 1), b"x"),
                (raw_header("shared/a/b", tar::EntryType::Regular, 1), b"x"),
            ],
            "`a/b` lies under `a`, which is a file",
        ),
        (vec![dir(), (sparse, b"")], "`s` is a tar entry of type `S`"),
    ];
    for (entries, expected) in cases {
        let err = refusal(Tree::read_tar(
            archive(&entries).as_slice(),
            "shared",
            &Limits::DEFAULT,
        ));
        assert!(err.starts_with(expected), "{expected}: {err}");
    }
}

#[test]
fn archive_sizes_are_refused_from_the_headers_before_the_data() {
    // Headers that announce more than the caps, and no data at all behind them: reading the
    // data would fail with an early end of stream instead of naming the cap.
    let header_only = |path: &str, size: u64| {
        let mut bytes = raw_header(path, tar::EntryType::Regular, size)
            .as_bytes()
            .to_vec();
        bytes.splice(
            0..0,
            raw_header("shared/", tar::EntryType::Directory, 0)
                .as_bytes()
                .iter()
                .copied(),
        );
        bytes
    };
    let err = refusal(Tree::read_tar(
        header_only("shared/big", 100 << 20).as_slice(),
        "shared",
        &Limits::DEFAULT,
    ));
    assert_eq!(
        err,
        "`big` is 104857600 bytes, over the limit of 32 MiB per file"
    );
    let err = refusal(Tree::read_tar(
        header_only("shared/state.yml", 17 << 20).as_slice(),
        "shared",
        &Limits::DEFAULT,
    ));
    assert_eq!(
        err,
        "`state.yml` is 17825792 bytes, over the limit of 16 MiB for the state"
    );
    let files: Vec<(tar::Header, &[u8])> = (0..4)
        .map(|i| {
            (
                raw_header(&format!("shared/f{i}"), tar::EntryType::Regular, 300),
                &[0u8; 300][..],
            )
        })
        .collect();
    let err = refusal(Tree::read_tar(
        archive(&files).as_slice(),
        "shared",
        &small(3, 10_000),
    ));
    assert!(err.starts_with("`f3` is one entry too many"), "{err}");
    let err = refusal(Tree::read_tar(
        archive(&files).as_slice(),
        "shared",
        &small(10, 1000),
    ));
    assert!(
        err.starts_with("`f3` brings the files to 1200 bytes"),
        "{err}"
    );
}

#[test]
fn an_endless_long_name_stops_at_the_stream_limit() {
    let name = vec![b'n'; 2 << 20];
    let tar = archive(&[(
        raw_header(
            "././@LongLink",
            tar::EntryType::GNULongName,
            name.len() as u64,
        ),
        &name,
    )]);
    let err = refusal(Tree::read_tar(tar.as_slice(), "shared", &small(10, 1000)));
    assert!(err.contains("is an archive of more than"), "{err}");
}

#[test]
fn duplicates_of_the_same_kind_keep_the_last() {
    let tar = archive(&[
        (raw_header("shared/", tar::EntryType::Directory, 0), b""),
        (raw_header("shared/a", tar::EntryType::Regular, 1), b"1"),
        (raw_header("shared/a", tar::EntryType::Regular, 1), b"2"),
        (raw_header("shared/d/f", tar::EntryType::Regular, 1), b"3"),
    ]);
    let tree = Tree::read_tar(tar.as_slice(), "shared", &Limits::DEFAULT).unwrap();
    assert_eq!(tree.file("a"), Some(&b"2"[..]));
    assert_eq!(tree.entries.get("d"), Some(&Node::Dir { mode: 0o755 }));
}

#[test]
fn inserting_subtrees_and_digests() {
    let mut tree = sample();
    assert_eq!(
        tree.subtree(".e").entries.keys().collect::<Vec<_>>(),
        [".e/requirements", ".e/requirements/azi.json"]
    );
    assert!(
        !tree
            .without(".e")
            .entries
            .keys()
            .any(|k| k.starts_with(".e"))
    );
    assert!(tree.without(".e").entries.contains_key("state.yml"));
    assert_eq!(tree.subtree("").entries.len(), tree.entries.len());
    let before = tree.digest();
    assert_eq!(before.len(), 64);
    tree.insert_file("state.yml", b"azi:\n  status: applied\n".to_vec(), 0o644);
    assert_eq!(tree.digest(), before, "the same content");
    tree.insert_file("state.yml", b"azi:\n  status: applied\n".to_vec(), 0o600);
    assert_ne!(tree.digest(), before, "a mode counts");
    // A file replaces a directory and what it held; a directory replaces a file in the way.
    tree.insert_file("tools", b"now a file".to_vec(), 0o644);
    assert!(!tree.entries.contains_key("tools/run.sh"));
    tree.insert_file("azi-config.yml/inner", vec![], 0o644);
    assert_eq!(
        tree.entries.get("azi-config.yml"),
        Some(&Node::Dir { mode: 0o755 })
    );
    assert_eq!(
        tree.total_bytes(),
        (b"azi:\n  status: applied\n".len() + b"{}".len() + b"now a file".len()) as u64
    );
}
