//! The walkthrough of the design ("Dockerized Custom Modules"), run with the modules' programs
//! outside containers: azi and bmk as built by cargo, bmm as its script under busybox sh. Each
//! test has its own shared directory and record directories, set through the same variables e
//! gives a container (and `<NAME>_RECORD_DIR` for the mounts).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A shared directory and the modules' record directories, removed when the test ends.
struct Workspace {
    root: PathBuf,
}

/// What a method answered.
#[derive(Debug, PartialEq)]
struct Answer {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Workspace {
    fn new(name: &str) -> Workspace {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "e-modules-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        for dir in ["shared", "azi", "bmk", "bmm"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        Workspace { root }
    }

    fn shared(&self, file: &str) -> PathBuf {
        self.root.join("shared").join(file)
    }

    fn read(&self, file: &str) -> String {
        fs::read_to_string(self.shared(file)).unwrap()
    }

    fn write(&self, file: &str, text: &str) {
        fs::write(self.shared(file), text).unwrap();
    }

    fn run(&self, module: &str, args: &[&str]) -> Answer {
        let mut command = match module {
            "azi" => Command::new(env!("CARGO_BIN_EXE_azi")),
            "bmk" => Command::new(env!("CARGO_BIN_EXE_bmk")),
            "bmm" => {
                let mut command = Command::new(busybox());
                command
                    .arg("sh")
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bmm/bmm.sh"));
                command
            }
            other => panic!("no module `{other}`"),
        };
        let shared = self.root.join("shared");
        let output = command
            .args(args)
            .env_clear()
            .env("E_MODULE", module)
            .env("E_MODULE_VERSION", "0.1.0")
            .env("E_METHOD", args[0])
            .env("E_SHARED", &shared)
            .env("E_STATE_FILE", shared.join("state.yml"))
            .env("E_CONFIG_FILE", shared.join(format!("{module}-config.yml")))
            .env(
                format!("{}_RECORD_DIR", module.to_uppercase()),
                self.root.join(module),
            )
            .output()
            .unwrap();
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .unwrap()
                .replace(&*shared.to_string_lossy(), "/shared")
        };
        Answer {
            code: output.status.code().unwrap(),
            stdout: text(output.stdout),
            stderr: text(output.stderr),
        }
    }

    /// Runs a method that must succeed with exit code `code` and print nothing on stderr.
    fn ok(&self, module: &str, args: &[&str], code: i32) -> String {
        let answer = self.run(module, args);
        assert_eq!(
            (answer.code, answer.stderr.as_str()),
            (code, ""),
            "{module} {args:?}: {answer:?}"
        );
        answer.stdout
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("shared"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn busybox() -> PathBuf {
    let path = PathBuf::from(std::env::var_os("BUSYBOX").unwrap_or_else(|| "/bin/busybox".into()));
    assert!(
        path.exists(),
        "bmm's tests need busybox at `{}` (apt-get install busybox-static, or set BUSYBOX)",
        path.display()
    );
    path
}

const AZI_APPLIED: &str = "\
azi:
  status: applied
  size: 5
  provide-pubips: true
  nodes:
  - privateIP: 10.0.0.0
    publicIP: 213.1.1.0
    usedBy: unused
  - privateIP: 10.0.0.1
    publicIP: 213.1.1.1
    usedBy: unused
  - privateIP: 10.0.0.2
    publicIP: 213.1.1.2
    usedBy: unused
  - privateIP: 10.0.0.3
    publicIP: 213.1.1.3
    usedBy: unused
  - privateIP: 10.0.0.4
    publicIP: 213.1.1.4
    usedBy: unused
";

const BMK_APPLIED: &str = "\
azi:
  status: applied
  size: 5
  provide-pubips: true
  nodes:
  - privateIP: 10.0.0.0
    publicIP: 213.1.1.0
    usedBy: bmk
  - privateIP: 10.0.0.100
    publicIP: 213.1.1.100
    usedBy: bmk
  - privateIP: 10.0.0.2
    publicIP: 213.1.1.2
    usedBy: bmk
  - privateIP: 10.0.0.3
    publicIP: 213.1.1.3
    usedBy: unused
  - privateIP: 10.0.0.4
    publicIP: 213.1.1.4
    usedBy: unused
bmk:
  status: applied
  size: 3
  clusterNodes:
  - privateIP: 10.0.0.0
    publicIP: 213.1.1.0
    state: created
  - privateIP: 10.0.0.100
    publicIP: 213.1.1.100
    state: created
  - privateIP: 10.0.0.2
    publicIP: 213.1.1.2
    state: created
";

#[test]
fn the_walkthrough_of_the_design() {
    let work = Workspace::new("walkthrough");

    work.ok("azi", &["init"], 0);
    assert_eq!(
        work.read("azi-config.yml"),
        "azi:\n  size: 5\n  provide-pubips: true\n"
    );
    work.ok("azi", &["plan"], 2);
    work.ok("azi", &["apply"], 0);
    assert_eq!(work.read("state.yml"), AZI_APPLIED);
    work.ok("azi", &["plan"], 0);

    // The hand change of the design: the second node gets other addresses.
    let edited = work
        .read("state.yml")
        .replace("10.0.0.1\n", "10.0.0.100\n")
        .replace("213.1.1.1\n", "213.1.1.100\n");
    work.write("state.yml", &edited);

    assert_eq!(
        work.ok("bmk", &["init"], 0),
        "\
Wrote `/shared/bmk-config.yml`: Kafka on 3 nodes of `azi`:
  10.0.0.0 (213.1.1.0)
  10.0.0.100 (213.1.1.100)
  10.0.0.2 (213.1.1.2)
"
    );
    assert_eq!(
        work.read("bmk-config.yml"),
        "\
bmk:
  size: 3
  clusterNodes:
  - privateIP: 10.0.0.0
    publicIP: 213.1.1.0
  - privateIP: 10.0.0.100
    publicIP: 213.1.1.100
  - privateIP: 10.0.0.2
    publicIP: 213.1.1.2
"
    );
    assert_eq!(
        work.ok("bmk", &["plan"], 2),
        "\
+ 10.0.0.0 (213.1.1.0)
+ 10.0.0.100 (213.1.1.100)
+ 10.0.0.2 (213.1.1.2)
~ status: (none) -> applied
~ size: (none) -> 3
~ azi node 10.0.0.0 (213.1.1.0): usedBy: unused -> bmk
~ azi node 10.0.0.100 (213.1.1.100): usedBy: unused -> bmk
~ azi node 10.0.0.2 (213.1.1.2): usedBy: unused -> bmk
Plan: 3 to create, 0 to remove, 2 to change; 3 nodes of `azi` to mark used, 0 to release.
"
    );
    work.ok("bmk", &["apply"], 0);
    assert_eq!(work.read("state.yml"), BMK_APPLIED);
    work.ok("bmk", &["plan"], 0);
    work.ok("bmk", &["audit"], 0);

    assert_eq!(
        work.ok("azi", &["audit"], 2),
        "\
nodes[1].privateIP: 10.0.0.1 -> 10.0.0.100 (changed by hand)
nodes[1].publicIP: 213.1.1.1 -> 213.1.1.100 (changed by hand)
Audit: 2 hand changes to the `azi` section.
"
    );
    // azi keeps the edited node and the marks of bmk: nothing to apply.
    work.ok("azi", &["plan"], 0);

    assert_eq!(
        work.ok("bmm", &["init"], 0),
        "\
Wrote `/shared/bmm-config.yml` with no extra targets.
The state has these cluster addresses to monitor: 10.0.0.0 10.0.0.100 10.0.0.2
"
    );
    assert_eq!(
        work.ok("bmm", &["plan"], 2),
        "\
+ 10.0.0.0
+ 10.0.0.100
+ 10.0.0.2
~ status: (none) -> applied
Plan: 3 to add, 0 to remove.
"
    );
    work.ok("bmm", &["apply"], 0);
    let bmm_block =
        "bmm:\n  status: applied\n  targets:\n  - 10.0.0.0\n  - 10.0.0.100\n  - 10.0.0.2\n";
    assert_eq!(work.read("state.yml"), format!("{BMK_APPLIED}{bmm_block}"));
    work.ok("bmm", &["plan"], 0);
    work.ok("bmm", &["audit"], 0);

    // bmm's audit finds a target removed by hand.
    work.write(
        "state.yml",
        &work
            .read("state.yml")
            .replace("  - 10.0.0.100\n  - 10.0.0.2\n", "  - 10.0.0.2\n"),
    );
    assert_eq!(
        work.ok("bmm", &["audit"], 2),
        "\
targets: - 10.0.0.100 (removed by hand)
Audit: 1 hand changes to the `bmm` section.
"
    );

    assert_eq!(
        work.files(),
        [
            "azi-config.yml",
            "bmk-config.yml",
            "bmm-config.yml",
            "state.yml"
        ]
    );
}

#[test]
fn every_method_needs_its_config_but_audit() {
    let work = Workspace::new("no-config");
    for module in ["azi", "bmk", "bmm"] {
        for method in ["plan", "apply"] {
            let answer = work.run(module, &[method]);
            assert_eq!(
                (answer.code, answer.stdout.as_str(), answer.stderr.as_str()),
                (
                    1,
                    "",
                    &*format!(
                        "error: failed to read `/shared/{module}-config.yml`: {}\nhint: run `init` first to write it\n",
                        if module == "bmm" {
                            "no such file"
                        } else {
                            "No such file or directory (os error 2)"
                        }
                    )
                ),
            );
        }
        assert_eq!(
            work.ok(module, &["audit"], 0),
            format!("Nothing to audit: `{module}` has not applied anything yet.\n")
        );
    }
    assert!(work.files().is_empty());
}

#[test]
fn unknown_methods_and_arguments_are_errors() {
    let work = Workspace::new("usage");
    for module in ["azi", "bmk", "bmm"] {
        let answer = work.run(module, &["destroy"]);
        assert_eq!(
            (answer.code, answer.stderr.as_str()),
            (
                1,
                "error: unknown method `destroy`\nhint: methods are: metadata, init, plan, apply, audit\n"
            )
        );
        let answer = work.run(module, &["plan", "--force"]);
        assert_eq!(
            (answer.code, answer.stderr.as_str()),
            (
                1,
                "error: unexpected argument `--force` for `plan`\nhint: `plan` takes no arguments\n"
            )
        );
    }
}

#[test]
fn bmk_needs_an_infrastructure() {
    let work = Workspace::new("no-infrastructure");
    let answer = work.run("bmk", &["init"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            1,
            "error: the state has no infrastructure section with `nodes`\nhint: apply an infrastructure module such as `azi` first\n"
        )
    );
    work.ok("azi", &["init", "--size", "2"], 0);
    work.ok("azi", &["apply"], 0);
    let answer = work.run("bmk", &["init"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            1,
            "error: `azi` has 2 nodes that `bmk` can use, not 3\nhint: run `init --size 2`, or give `azi` more nodes\n"
        )
    );
}

#[test]
fn modules_keep_the_bytes_of_the_other_sections() {
    let work = Workspace::new("bytes");
    let other = "# written by hand\nbmm:\n    targets: ['10.9.9.9']   # a comment\n\nzzz: {kept: \"as is\"}\n";
    work.write("state.yml", other);
    work.ok("azi", &["init", "--size", "1"], 0);
    work.ok("azi", &["apply"], 0);
    let azi_block = "azi:\n  status: applied\n  size: 1\n  provide-pubips: true\n  nodes:\n  - privateIP: 10.0.0.0\n    publicIP: 213.1.1.0\n    usedBy: unused\n";
    assert_eq!(work.read("state.yml"), format!("{other}{azi_block}"));

    // bmm replaces its own block where it stands and keeps the blank line that opens the next.
    work.write("bmm-config.yml", "bmm: {targets: [10.1.1.1]}\n");
    work.ok("bmm", &["apply"], 0);
    assert_eq!(
        work.read("state.yml"),
        format!(
            "# written by hand\nbmm:\n  status: applied\n  targets:\n  - 10.1.1.1\n\nzzz: {{kept: \"as is\"}}\n{azi_block}"
        )
    );
}

#[test]
fn apply_fails_before_the_state_changes_without_the_record_mount() {
    let work = Workspace::new("no-mount");
    for module in ["azi", "bmm"] {
        work.ok(module, &["init"], 0);
        fs::remove_dir_all(work.root.join(module)).unwrap();
        let answer = work.run(module, &["apply"]);
        assert_eq!(answer.code, 1, "{answer:?}");
        assert!(
            answer.stderr.ends_with(&format!(
                "hint: `{module}` keeps its records in `{}`: declare it in the module's `mounts` in repository.yaml\n",
                work.root.join(module).display()
            )),
            "{answer:?}"
        );
        assert!(!work.shared("state.yml").exists());
    }
}

#[test]
fn bmm_follows_the_clusters_and_its_extra_targets() {
    let work = Workspace::new("bmm");
    work.write(
        "state.yml",
        "bmk:\n  clusterNodes:\n  - privateIP: 10.0.0.5\n    publicIP: 213.1.1.5\n  - {privateIP: '10.0.0.6'}\nother:\n  clusterNodes: [{privateIP: 10.0.0.7}]\n  nodes:\n  - privateIP: 10.0.0.8\n",
    );
    work.write("bmm-config.yml", "bmm:\n  targets:\n  - 192.168.1.1\n");
    work.ok("bmm", &["apply"], 0);
    work.write("bmm-config.yml", "bmm:\n  targets: []\n");
    assert_eq!(
        work.ok("bmm", &["plan"], 2),
        "- 192.168.1.1\nPlan: 0 to add, 1 to remove.\n"
    );
    assert!(work.read("state.yml").ends_with("bmm:\n  status: applied\n  targets:\n  - 10.0.0.5\n  - 10.0.0.6\n  - 10.0.0.7\n  - 192.168.1.1\n"));

    work.write("bmm-config.yml", "bmm:\n  targets: ['not an address']\n");
    let answer = work.run("bmm", &["plan"]);
    assert_eq!(answer.code, 1, "{answer:?}");
    assert!(
        answer
            .stderr
            .starts_with("error: invalid target `not an address` in"),
        "{answer:?}"
    );
}
