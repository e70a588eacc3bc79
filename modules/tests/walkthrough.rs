//! The walkthrough of the design ("Dockerized Custom Modules"), run with the modules' programs
//! outside containers: azi and bmk as built by cargo, the shell modules (bmm, k8s, rook, nfs, pg)
//! as their scripts under busybox sh. Each test has its own shared directory and record
//! directories, set through the same variables e gives a container (and `<NAME>_RECORD_DIR` for
//! the mounts); a test writes the requirements file e would write with [`Workspace::requires`].

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
        for dir in ["shared/.e/requirements", "azi", "bmk"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for module in SHELL_MODULES {
            fs::create_dir_all(root.join(module)).unwrap();
        }
        Workspace { root }
    }

    /// Writes the requirements file e writes before running a method of `module`, laid out as
    /// serde_json's pretty printer does: each strong and weak requirement as its selector and
    /// the installed modules that satisfy it (all version 0.1.0).
    fn requires(&self, module: &str, strong: &[(&str, &[&str])], weak: &[(&str, &[&str])]) {
        fn list(requirements: &[(&str, &[&str])]) -> String {
            if requirements.is_empty() {
                return "[]".to_owned();
            }
            let items: Vec<String> = requirements
                .iter()
                .map(|(selector, modules)| {
                    let satisfied_by = if modules.is_empty() {
                        "[]".to_owned()
                    } else {
                        let modules: Vec<String> = modules
                            .iter()
                            .map(|module| {
                                format!(
                                    "        {{\n          \"module\": \"{module}\",\n          \"version\": \"0.1.0\"\n        }}"
                                )
                            })
                            .collect();
                        format!("[\n{}\n      ]", modules.join(",\n"))
                    };
                    format!(
                        "    {{\n      \"selector\": \"{selector}\",\n      \"satisfied_by\": {satisfied_by}\n    }}"
                    )
                })
                .collect();
            format!("[\n{}\n  ]", items.join(",\n"))
        }
        self.write(
            &format!(".e/requirements/{module}.json"),
            &format!(
                "{{\n  \"module\": \"{module}\",\n  \"version\": \"0.1.0\",\n  \"strong\": {},\n  \"weak\": {}\n}}",
                list(strong),
                list(weak)
            ),
        );
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
            shell if SHELL_MODULES.contains(&shell) => {
                let mut command = Command::new(busybox());
                command
                    .arg("sh")
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("{shell}/{shell}.sh")));
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
                "E_REQUIREMENTS_FILE",
                shared.join(format!(".e/requirements/{module}.json")),
            )
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

    /// Runs a method like [`Workspace::ok`] that must also leave state.yml byte for byte as it was.
    fn keeps_state(&self, module: &str, args: &[&str], code: i32) -> String {
        let before = fs::read(self.shared("state.yml")).ok();
        let stdout = self.ok(module, args, code);
        let after = fs::read(self.shared("state.yml")).ok();
        assert!(before == after, "{module} {args:?} changed state.yml");
        stdout
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("shared"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != ".e")
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

/// The modules written as busybox shell scripts.
const SHELL_MODULES: [&str; 5] = ["bmm", "k8s", "rook", "nfs", "pg"];

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

    work.requires(
        "bmk",
        &[("kind=infrastructure,provider in (azure, aws)", &["azi"])],
        &[
            ("kind=logs-storage", &[]),
            ("kind=monitoring,core-technology=prometheus", &[]),
        ],
    );
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

    // And down again: azi refuses while bmk runs on its nodes, and each destroy takes the state
    // back to what it was before the apply.
    let answer = work.run("azi", &["destroy"]);
    assert_eq!(
        (answer.code, answer.stdout.as_str(), answer.stderr.as_str()),
        (
            1,
            "",
            "error: cannot destroy `azi`: its nodes are used by `bmk` (10.0.0.0, 10.0.0.100, 10.0.0.2)\nhint: destroy `bmk` first\n"
        )
    );
    work.ok("bmm", &["destroy"], 0);
    assert_eq!(work.read("state.yml"), BMK_APPLIED);
    assert_eq!(
        work.ok("bmk", &["destroy"], 0),
        "Destroyed: removed the `bmk` section of the state; released 3 nodes of `azi`.\n"
    );
    assert_eq!(work.read("state.yml"), edited);
    assert_eq!(
        work.keeps_state("bmk", &["destroy"], 0),
        "Nothing to destroy: the state has no `bmk` section.\n"
    );
    assert_eq!(
        work.keeps_state("bmk", &["audit"], 0),
        "Nothing to audit: `bmk` has not applied anything yet.\n"
    );
    assert_eq!(
        work.ok("azi", &["destroy"], 0),
        "Destroyed: removed the `azi` section of the state and its 5 nodes.\n"
    );
    // There was no state before azi's apply; e needs the file to stay, so it stays empty.
    assert_eq!(work.read("state.yml"), "");
    assert_eq!(
        work.keeps_state("azi", &["destroy"], 0),
        "Nothing to destroy: the state has no `azi` section.\n"
    );
    assert_eq!(
        work.keeps_state("azi", &["audit"], 0),
        "Nothing to audit: `azi` has not applied anything yet.\n"
    );
    // The configs stay, as after the shell modules' destroy: `apply` would build it all again.
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
    for module in ["azi", "bmk", "bmm", "k8s", "rook", "nfs", "pg"] {
        for method in ["plan", "apply"] {
            let answer = work.run(module, &[method]);
            assert_eq!(
                (answer.code, answer.stdout.as_str(), answer.stderr.as_str()),
                (
                    1,
                    "",
                    &*format!(
                        "error: failed to read `/shared/{module}-config.yml`: {}\nhint: run `init` first to write it\n",
                        if SHELL_MODULES.contains(&module) {
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
        assert_eq!(
            work.ok(module, &["destroy"], 0),
            format!("Nothing to destroy: the state has no `{module}` section.\n")
        );
    }
    assert!(work.files().is_empty());
}

#[test]
fn unknown_methods_and_arguments_are_errors() {
    let work = Workspace::new("usage");
    for module in ["azi", "bmk", "bmm", "k8s", "rook", "nfs", "pg"] {
        let answer = work.run(module, &["backup"]);
        assert_eq!(
            (answer.code, answer.stderr.as_str()),
            (
                1,
                "error: unknown method `backup`\nhint: methods are: metadata, init, plan, apply, audit, destroy\n"
            ),
            "{module}"
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
    let selector = "kind=infrastructure,provider in (azure, aws)";
    work.requires("bmk", &[(selector, &[])], &[]);
    let answer = work.run("bmk", &["init"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            1,
            "error: `bmk` needs an infrastructure (kind=infrastructure,provider in (azure, aws)), and no installed module provides one\nhint: find one with `e search 'kind=infrastructure,provider in (azure, aws)'` and install it first\n"
        )
    );
    work.ok("azi", &["init", "--size", "2"], 0);
    work.ok("azi", &["apply"], 0);
    work.requires("bmk", &[(selector, &["azi"])], &[]);
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
fn bmk_without_a_requirements_file_guesses_its_infrastructure_and_says_so() {
    let work = Workspace::new("bmk-guess");
    work.write("state.yml", AZI_APPLIED);
    let answer = work.run("bmk", &["init"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            0,
            "note: no requirements file at `/shared/.e/requirements/bmk.json`: taking `azi` as the infrastructure, guessed from the state\n"
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

    // bmm's destroy drops its block and nothing else.
    assert_eq!(
        work.ok("bmm", &["destroy"], 0),
        "Destroyed: removed the `bmm` section of the state.\n"
    );
    assert_eq!(
        work.read("state.yml"),
        format!("# written by hand\n\nzzz: {{kept: \"as is\"}}\n{azi_block}")
    );
    assert_eq!(
        work.ok("bmm", &["audit"], 0),
        "Nothing to audit: `bmm` has not applied anything yet.\n"
    );
    assert_eq!(
        work.ok("bmm", &["destroy"], 0),
        "Nothing to destroy: the state has no `bmm` section.\n"
    );

    // azi's destroy drops its block and nothing else.
    work.ok("azi", &["destroy"], 0);
    assert_eq!(
        work.read("state.yml"),
        "# written by hand\n\nzzz: {kept: \"as is\"}\n"
    );
}

#[test]
fn destroy_undoes_apply_byte_for_byte() {
    let work = Workspace::new("destroy");
    let before = format!(
        "# written by hand\nbmm:\n    targets: ['10.9.9.9']   # a comment\n\n{AZI_APPLIED}zzz: {{kept: \"as is\"}}\n"
    );
    work.write("state.yml", &before);
    work.requires(
        "bmk",
        &[("kind=infrastructure,provider in (azure, aws)", &["azi"])],
        &[],
    );
    work.ok("bmk", &["init", "--size", "2"], 0);
    work.ok("bmk", &["apply"], 0);
    let applied = work.read("state.yml");
    assert!(
        applied.starts_with("# written by hand\nbmm:\n    targets: ['10.9.9.9']   # a comment\n\n")
            && applied.contains("zzz: {kept: \"as is\"}\nbmk:\n"),
        "{applied}"
    );

    let answer = work.run("azi", &["destroy"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            1,
            "error: cannot destroy `azi`: its nodes are used by `bmk` (10.0.0.0, 10.0.0.1)\nhint: destroy `bmk` first\n"
        )
    );
    assert_eq!(work.read("state.yml"), applied);

    assert_eq!(
        work.ok("bmk", &["destroy"], 0),
        "Destroyed: removed the `bmk` section of the state; released 2 nodes of `azi`.\n"
    );
    assert_eq!(work.read("state.yml"), before);
    assert!(!work.root.join("bmk/applied.yml").exists());

    // Nodes still marked after the section was removed by hand are given back all the same.
    work.write(
        "state.yml",
        &before.replacen("usedBy: unused", "usedBy: bmk", 1),
    );
    assert_eq!(
        work.ok("bmk", &["destroy"], 0),
        "Destroyed: released 1 nodes of `azi`.\n"
    );
    assert_eq!(work.read("state.yml"), before);

    work.write("azi-config.yml", "azi: {size: 5}\n");
    work.ok("azi", &["apply"], 0);
    assert!(work.root.join("azi/applied.yml").exists());
    assert_eq!(
        work.ok("azi", &["destroy"], 0),
        "Destroyed: removed the `azi` section of the state and its 5 nodes.\n"
    );
    assert_eq!(
        work.read("state.yml"),
        "# written by hand\nbmm:\n    targets: ['10.9.9.9']   # a comment\n\nzzz: {kept: \"as is\"}\n"
    );
    assert!(!work.root.join("azi/applied.yml").exists());
}

#[test]
fn destroy_takes_no_arguments() {
    let work = Workspace::new("destroy-usage");
    for module in ["azi", "bmk"] {
        let answer = work.run(module, &["destroy", "--force"]);
        assert_eq!(
            (answer.code, answer.stderr.as_str()),
            (
                1,
                "error: unexpected argument `--force` for `destroy`\nhint: `destroy` takes no arguments\n"
            ),
            "{module}"
        );
    }
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

// The stack of the design's walkthrough: "install PostgreSQL: it should check pre-requisites and
// throw an error that it cannot be installed because there is persistence layer missing; search
// persistence layer: it would provide some possibilities; install rook: ... Kubernetes cluster
// missing; install on-prem Kubernetes; install rook; install PostgreSQL".

const INFRASTRUCTURE: &str = "kind=infrastructure,provides-vms=true";
const KUBERNETES: &str = "kind=kubernetes,provides-kubernetes semver (>=1.25)";
const PERSISTENCE: &str = "kind=persistence";
const MONITORING: &str = "kind=monitoring";

const STACK_APPLIED: &str = "\
azi:
  status: applied
  size: 5
  provide-pubips: true
  nodes:
  - privateIP: 10.0.0.0
    publicIP: 213.1.1.0
    usedBy: k8s
  - privateIP: 10.0.0.1
    publicIP: 213.1.1.1
    usedBy: k8s
  - privateIP: 10.0.0.2
    publicIP: 213.1.1.2
    usedBy: k8s
  - privateIP: 10.0.0.3
    publicIP: 213.1.1.3
    usedBy: unused
  - privateIP: 10.0.0.4
    publicIP: 213.1.1.4
    usedBy: unused
k8s:
  status: applied
  version: 1.28.0
  controlPlane: 10.0.0.0
  workers:
  - 10.0.0.1
  - 10.0.0.2
  apiServer: https://10.0.0.0:6443
rook:
  status: applied
  storageClass: rook-ceph-block
  cluster: https://10.0.0.0:6443
pg:
  status: applied
  storageClass: rook-ceph-block
  replicas: 2
";

/// Installs azi, k8s, rook and pg, each after writing the requirements file e would write.
fn apply_stack(work: &Workspace) {
    for (module, strong, provider) in [
        ("azi", "", ""),
        ("k8s", INFRASTRUCTURE, "azi"),
        ("rook", KUBERNETES, "k8s"),
        ("pg", PERSISTENCE, "rook"),
    ] {
        if !strong.is_empty() {
            let weak: &[(&str, &[&str])] = if module == "pg" {
                &[(MONITORING, &[])]
            } else {
                &[]
            };
            work.requires(module, &[(strong, &[provider])], weak);
        }
        work.ok(module, &["init"], 0);
        work.ok(module, &["apply"], 0);
    }
}

#[test]
fn the_stack_of_the_design() {
    let work = Workspace::new("stack");

    work.requires("pg", &[(PERSISTENCE, &[])], &[(MONITORING, &[])]);
    let answer = work.run("pg", &["init"]);
    assert_eq!(
        (answer.code, answer.stdout.as_str(), answer.stderr.as_str()),
        (
            1,
            "",
            "error: `pg` needs a persistence layer (kind=persistence), and no installed module provides one\nhint: find one with `e search 'kind=persistence'` and install it first\n"
        )
    );
    work.requires("rook", &[(KUBERNETES, &[])], &[]);
    let answer = work.run("rook", &["init"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            1,
            "error: `rook` needs a Kubernetes cluster (kind=kubernetes,provides-kubernetes semver (>=1.25)), and no installed module provides one\nhint: find one with `e search 'kind=kubernetes,provides-kubernetes semver (>=1.25)'` and install it first\n"
        )
    );

    // Install on-prem Kubernetes, on azi's machines.
    work.ok("azi", &["init"], 0);
    work.ok("azi", &["apply"], 0);
    work.requires("k8s", &[(INFRASTRUCTURE, &["azi"])], &[]);
    assert_eq!(
        work.keeps_state("k8s", &["init"], 0),
        "\
Wrote `/shared/k8s-config.yml`: Kubernetes 1.28.0 on 3 nodes of `azi`:
  control plane 10.0.0.0
  worker 10.0.0.1
  worker 10.0.0.2
"
    );
    assert!(
        work.read("k8s-config.yml")
            .ends_with("k8s:\n  controlPlane: 10.0.0.0\n  workers:\n  - 10.0.0.1\n  - 10.0.0.2\n")
    );
    assert_eq!(
        work.keeps_state("k8s", &["plan"], 2),
        "\
+ status: applied
+ version: 1.28.0
+ controlPlane: 10.0.0.0
+ workers[0]: 10.0.0.1
+ workers[1]: 10.0.0.2
+ apiServer: https://10.0.0.0:6443
~ azi node 10.0.0.0: usedBy: unused -> k8s
~ azi node 10.0.0.1: usedBy: unused -> k8s
~ azi node 10.0.0.2: usedBy: unused -> k8s
Plan: 6 to add, 0 to change, 0 to remove; 3 nodes of `azi` to mark used, 0 to release.
"
    );
    work.ok("k8s", &["apply"], 0);
    work.keeps_state("k8s", &["plan"], 0);
    work.keeps_state("k8s", &["audit"], 0);

    // Install rook.
    work.requires("rook", &[(KUBERNETES, &["k8s"])], &[]);
    assert_eq!(
        work.keeps_state("rook", &["init"], 0),
        "Wrote `/shared/rook-config.yml`: Rook/Ceph on the cluster of `k8s` (https://10.0.0.0:6443), storage class rook-ceph-block.\n"
    );
    assert_eq!(
        work.keeps_state("rook", &["plan"], 2),
        "\
+ status: applied
+ storageClass: rook-ceph-block
+ cluster: https://10.0.0.0:6443
Plan: 3 to add, 0 to change, 0 to remove.
"
    );
    work.ok("rook", &["apply"], 0);
    work.keeps_state("rook", &["plan"], 0);
    work.keeps_state("rook", &["audit"], 0);

    // Install PostgreSQL.
    work.requires("pg", &[(PERSISTENCE, &["rook"])], &[(MONITORING, &[])]);
    assert_eq!(
        work.keeps_state("pg", &["init"], 0),
        "\
Wrote `/shared/pg-config.yml`: PostgreSQL 15.4.0, 2 replicas on the storage class rook-ceph-block of `rook`.
Monitoring: none installed (kind=monitoring, optional); `e search 'kind=monitoring'` finds one.
"
    );
    work.keeps_state("pg", &["plan"], 2);
    assert_eq!(
        work.ok("pg", &["apply"], 0),
        "\
+ status: applied
+ storageClass: rook-ceph-block
+ replicas: 2
Applied: 3 added, 0 changed, 0 removed.
PostgreSQL 15.4.0 runs 2 replicas on the storage class rook-ceph-block of `rook`.
"
    );
    assert_eq!(work.read("state.yml"), STACK_APPLIED);
    for module in ["azi", "k8s", "rook", "pg"] {
        work.keeps_state(module, &["plan"], 0);
        work.keeps_state(module, &["audit"], 0);
    }

    // And down again, in the reverse order.
    assert_eq!(
        work.ok("pg", &["destroy"], 0),
        "Destroyed: removed the `pg` section of the state.\n"
    );
    work.ok("rook", &["destroy"], 0);
    assert_eq!(
        work.ok("k8s", &["destroy"], 0),
        "Destroyed: removed the `k8s` section of the state; released 3 nodes of `azi`.\n"
    );
    assert_eq!(work.read("state.yml"), AZI_APPLIED);
    assert_eq!(
        work.keeps_state("k8s", &["destroy"], 0),
        "Nothing to destroy: the state has no `k8s` section.\n"
    );
    assert_eq!(
        work.keeps_state("k8s", &["audit"], 0),
        "Nothing to audit: `k8s` has not applied anything yet.\n"
    );
}

#[test]
fn destroy_warns_about_the_modules_left_without_a_provider() {
    let work = Workspace::new("stack-destroy");
    apply_stack(&work);
    let answer = work.run("k8s", &["destroy"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            0,
            "warning: the cluster at https://10.0.0.0:6443 is still used by `rook`\n"
        )
    );
    let answer = work.run("rook", &["destroy"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            0,
            "warning: the storage class rook-ceph-block is still used by `pg`\n"
        )
    );
    assert_eq!(
        work.ok("pg", &["audit"], 2),
        "\
storageClass: cannot check rook-ceph-block: `rook` provides a persistence layer for `pg`, but the state has no `rook` section
Audit: 1 hand changes to the `pg` section.
"
    );
}

#[test]
fn pg_takes_the_persistence_that_e_names_first() {
    let work = Workspace::new("stack-choice");
    apply_stack(&work);
    work.requires("nfs", &[(KUBERNETES, &["k8s"])], &[]);
    work.ok("nfs", &["init"], 0);
    work.ok("nfs", &["apply"], 0);

    // e lists nfs before rook (`--prefer rook` would swap them): pg takes nfs's storage class.
    work.requires(
        "pg",
        &[(PERSISTENCE, &["nfs", "rook"])],
        &[(MONITORING, &["bmm"])],
    );
    let answer = work.run("pg", &["plan"]);
    assert_eq!(
        (answer.code, answer.stderr.as_str()),
        (
            1,
            "error: the config asks for the storage class rook-ceph-block, but `nfs` provides nfs-client\nhint: run `init` again to take the storage class of `nfs` from the state\n"
        )
    );
    assert_eq!(
        work.ok("pg", &["init"], 0),
        "\
Wrote `/shared/pg-config.yml`: PostgreSQL 15.4.0, 2 replicas on the storage class nfs-client of `nfs`.
Monitoring: `bmm` (kind=monitoring).
"
    );
    assert_eq!(
        work.keeps_state("pg", &["plan"], 2),
        "~ storageClass: rook-ceph-block -> nfs-client\nPlan: 0 to add, 1 to change, 0 to remove.\n"
    );
}

#[test]
fn audits_find_hand_changes_to_the_stack() {
    let work = Workspace::new("stack-audit");
    apply_stack(&work);

    work.write(
        "state.yml",
        &STACK_APPLIED.replace("  replicas: 2\n", "  replicas: 3\n"),
    );
    assert_eq!(
        work.keeps_state("pg", &["audit"], 2),
        "replicas: 2 -> 3 (changed by hand)\nAudit: 1 hand changes to the `pg` section.\n"
    );

    // A worker released by hand in azi's section, and one replaced in k8s's.
    let released = STACK_APPLIED.replacen(
        "    publicIP: 213.1.1.1\n    usedBy: k8s\n",
        "    publicIP: 213.1.1.1\n    usedBy: unused\n",
        1,
    );
    work.write(
        "state.yml",
        &released.replace("  - 10.0.0.2\n", "  - 10.0.0.9\n"),
    );
    assert_eq!(
        work.keeps_state("k8s", &["audit"], 2),
        "\
workers[1]: 10.0.0.2 -> 10.0.0.9 (changed by hand)
workers[0]: 10.0.0.1 is marked `usedBy: unused` in `azi`
workers[1]: 10.0.0.9 is not a node of `azi`
Audit: 3 hand changes to the `k8s` cluster.
"
    );

    let without_k8s = STACK_APPLIED.replace(
        "k8s:\n  status: applied\n  version: 1.28.0\n  controlPlane: 10.0.0.0\n  workers:\n  - 10.0.0.1\n  - 10.0.0.2\n  apiServer: https://10.0.0.0:6443\n",
        "",
    );
    work.write("state.yml", &without_k8s);
    assert_eq!(
        work.keeps_state("k8s", &["audit"], 2),
        "The `k8s` section was removed from the state by hand.\n"
    );
    assert_eq!(
        work.keeps_state("rook", &["audit"], 2),
        "\
cluster: cannot check https://10.0.0.0:6443: `k8s` provides a Kubernetes cluster for `rook`, but the state has no `k8s` section
Audit: 1 hand changes to the `rook` section.
"
    );
}

#[test]
fn k8s_marks_its_nodes_and_keeps_every_other_byte() {
    let work = Workspace::new("k8s-bytes");
    let state = "\
# written by hand
bmm:
    targets: ['10.9.9.9']   # a comment

azi:
  nodes:
  - {privateIP: 10.0.0.0, usedBy: unused}   # flow
  - privateIP: \"10.0.0.1\"
    usedBy: unused   # quoted address

  - usedBy: bmk
    privateIP: 10.0.0.3
  - privateIP: 10.0.0.2
  size: 4
zzz: {kept: \"as is\"}
";
    work.write("state.yml", state);
    work.requires("k8s", &[(INFRASTRUCTURE, &["azi"])], &[]);
    work.ok("k8s", &["init"], 0);
    work.ok("k8s", &["apply"], 0);
    let marked = state
        .replace("usedBy: unused}", "usedBy: k8s}")
        .replace("usedBy: unused   #", "usedBy: k8s   #")
        .replace(
            "  - privateIP: 10.0.0.2\n",
            "  - privateIP: 10.0.0.2\n    usedBy: k8s\n",
        );
    assert_eq!(
        work.read("state.yml"),
        format!(
            "{marked}k8s:\n  status: applied\n  version: 1.28.0\n  controlPlane: 10.0.0.0\n  workers:\n  - 10.0.0.1\n  - 10.0.0.2\n  apiServer: https://10.0.0.0:6443\n"
        )
    );
    work.keeps_state("k8s", &["plan"], 0);
    work.keeps_state("k8s", &["audit"], 0);

    work.ok("k8s", &["destroy"], 0);
    assert_eq!(
        work.read("state.yml"),
        state.replace(
            "  - privateIP: 10.0.0.2\n",
            "  - privateIP: 10.0.0.2\n    usedBy: unused\n"
        )
    );
}

#[test]
fn shell_modules_guess_their_provider_without_a_requirements_file() {
    let work = Workspace::new("stack-guess");
    work.write("state.yml", AZI_APPLIED);
    for (module, provider, what) in [
        ("k8s", "azi", "an infrastructure with virtual machines"),
        ("rook", "k8s", "a Kubernetes cluster"),
        ("pg", "rook", "a persistence layer"),
    ] {
        for method in ["init", "apply"] {
            let answer = work.run(module, &[method]);
            assert_eq!(
                (answer.code, answer.stderr.as_str()),
                (
                    0,
                    &*format!(
                        "note: no requirements file at `/shared/.e/requirements/{module}.json`: taking `{provider}` as {what}, guessed from the state\n"
                    )
                ),
                "{module} {method}"
            );
        }
    }
    assert_eq!(work.read("state.yml"), STACK_APPLIED);
}

#[test]
fn shell_modules_fail_before_the_state_changes_without_the_record_mount() {
    let work = Workspace::new("stack-no-mount");
    work.write("state.yml", AZI_APPLIED);
    work.requires("k8s", &[(INFRASTRUCTURE, &["azi"])], &[]);
    work.ok("k8s", &["init"], 0);
    fs::remove_dir_all(work.root.join("k8s")).unwrap();
    let answer = work.run("k8s", &["apply"]);
    assert_eq!(answer.code, 1, "{answer:?}");
    assert!(
        answer.stderr.ends_with(&format!(
            "hint: `k8s` keeps its records in `{}`: declare it in the module's `mounts` in repository.yaml\n",
            work.root.join("k8s").display()
        )),
        "{answer:?}"
    );
    assert_eq!(work.read("state.yml"), AZI_APPLIED);
    assert_eq!(work.files(), ["k8s-config.yml", "state.yml"]);
}

#[test]
fn shell_modules_check_their_config() {
    let work = Workspace::new("stack-config");
    apply_stack(&work);
    for (module, config, error) in [
        (
            "k8s",
            "k8s:\n  controlPlane: 10.0.0.0\n  workers: [10.0.0.1, 10.0.0.0]\n",
            "invalid config `/shared/k8s-config.yml`: 10.0.0.0 is listed twice",
        ),
        (
            "k8s",
            "k8s:\n  controlPlane: 10.0.0.0\n  workers: [10.0.0.3]\n  size: 2\n",
            "invalid config `/shared/k8s-config.yml`: unknown key `size`",
        ),
        (
            "k8s",
            "k8s:\n  controlPlane: 10.0.0.0\n  workers: [10.0.0.77]\n",
            "10.0.0.77 is not a node of `azi`",
        ),
        (
            "rook",
            "rook: {cluster: http://10.0.0.0:6443}\n",
            "invalid config `/shared/rook-config.yml`: `cluster` must be an https:// URL, not `http://10.0.0.0:6443`",
        ),
        (
            "pg",
            "pg:\n  storageClass: rook-ceph-block\n  replicas: two\n",
            "invalid config `/shared/pg-config.yml`: `replicas` must be a whole number from 1, not `two`",
        ),
        (
            "pg",
            "pg:\n  storageClass: |\n    rook-ceph-block\n  replicas: 2\n",
            "cannot read `/shared/pg-config.yml`: block scalars are not supported at line 2",
        ),
    ] {
        work.write(&format!("{module}-config.yml"), config);
        let before = work.read("state.yml");
        let answer = work.run(module, &["apply"]);
        assert_eq!(answer.code, 1, "{answer:?}");
        assert!(
            answer.stderr.starts_with(&format!("error: {error}\n")),
            "{module}: {answer:?}"
        );
        assert_eq!(work.read("state.yml"), before);
    }

    // A worker moved to a free node: k8s marks the new one and releases the old one.
    work.write(
        "k8s-config.yml",
        "k8s:\n  controlPlane: 10.0.0.0\n  workers: [10.0.0.1, 10.0.0.3]\n",
    );
    assert_eq!(
        work.ok("k8s", &["apply"], 0),
        "\
~ workers[1]: 10.0.0.2 -> 10.0.0.3
~ azi node 10.0.0.2: usedBy: k8s -> unused
~ azi node 10.0.0.3: usedBy: unused -> k8s
Applied: 0 added, 1 changed, 0 removed; 1 nodes of `azi` marked used, 1 released.
"
    );
}
