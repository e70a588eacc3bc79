//! The module contract (docs/modules.md), checked by `e check` in a throwaway shared directory:
//! the version declares the required methods; its strong requirements install; `metadata`
//! prints the repository's labels, requires and influences; `init` writes the config; `plan`
//! reports changes before the first apply; `apply` writes the module's section with
//! `status: applied`; right after it `plan` reports no changes (convergence) and `audit` no
//! drift; a second `apply` changes nothing (idempotence); `destroy`, when the version lists
//! it, removes the section; and `metadata`, `plan` and `audit` change nothing.
//!
//! This file walks the lifecycle through a [`Session`] and records one [`Row`] per promise;
//! the verdicts themselves are pure functions in `judge.rs`. A step that later steps build on
//! (setup, `init`, `apply`) failing makes those later rows skipped, so each broken promise
//! fails its own row and no other. Printing is the command's (`commands/check.rs`).

pub mod judge;

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::graph::{Preferences, resolve};
use crate::lifecycle::Session;
use crate::repository::Entry;
use crate::run::Report;
use crate::run::tree::Tree;
use judge::Verdict;

/// The methods every module must answer.
pub const REQUIRED_METHODS: [&str; 5] = ["metadata", "init", "plan", "apply", "audit"];

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The promise holds.
    Pass,
    /// The promise is broken.
    Fail,
    /// Not checked: see the row's detail.
    Skip,
}

/// One line of `e check`'s report (a row of the table, an object of `-o json`).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is checked, in words.
    pub check: String,
    /// How it ended.
    pub result: Outcome,
    /// Whether it passed (`result` is `pass`).
    pub passed: bool,
    /// What was seen: why it failed, why it was skipped, or a detail worth showing.
    pub detail: String,
    /// How to fix a failure; empty otherwise.
    pub hint: String,
}

impl Row {
    fn new(check: String, verdict: Verdict) -> Row {
        let (result, detail, hint) = match verdict {
            Verdict::Pass(detail) => (Outcome::Pass, detail, String::new()),
            Verdict::Fail { detail, hint } => (Outcome::Fail, detail, hint),
            Verdict::Skip(why) => (Outcome::Skip, why, String::new()),
        };
        Row {
            check,
            passed: result == Outcome::Pass,
            result,
            detail,
            hint,
        }
    }
}

/// What `e check` found.
#[derive(Debug)]
pub struct Checked {
    /// One row per promise, in the order of the walk.
    pub rows: Vec<Row>,
    /// Whether a stop signal (Ctrl-C, SIGTERM, SIGHUP) ended the walk early; the rows after
    /// it are skipped.
    pub interrupted: bool,
}

/// Checks `target` in `session`, whose shared directory must be a throwaway one: every method
/// of the module runs in it, `apply` twice and `destroy` last.
pub async fn check(session: &Session<'_>, target: Entry<'_>) -> anyhow::Result<Checked> {
    // A stop signal during a method stops its container; one between methods is noticed
    // before the next starts.
    let mut walk = Walk {
        session,
        target,
        rows: Vec::new(),
        blocked: None,
        read_only: Vec::new(),
        interrupted: crate::interrupt::Watch::start(),
    };
    walk.all().await?;
    let interrupted = walk.interrupted.stopped().load(Ordering::SeqCst);
    Ok(Checked {
        rows: walk.rows,
        interrupted,
    })
}

/// The walk through one module's lifecycle, and what it found so far.
struct Walk<'s, 'a, 'e> {
    session: &'s Session<'a>,
    target: Entry<'e>,
    rows: Vec<Row>,
    /// Why the remaining steps cannot be checked (an earlier step they build on failed).
    blocked: Option<String>,
    /// The runs of read-only methods, named for the report, for the last row.
    read_only: Vec<(&'static str, Report)>,
    /// Set when a stop signal arrives.
    interrupted: crate::interrupt::Watch,
}

impl Walk<'_, '_, '_> {
    /// Every step, in order, then the row of the read-only methods.
    async fn all(&mut self) -> anyhow::Result<()> {
        let missing: Vec<&str> = REQUIRED_METHODS
            .iter()
            .copied()
            .filter(|m| self.target.version.command(m).is_none())
            .collect();
        self.judge(
            format!("declares {}", REQUIRED_METHODS.join(", ")),
            judge::declared(&missing),
        );
        self.setup().await?;
        self.metadata().await?;
        self.init().await?;
        self.lifecycle().await?;
        self.destroy().await?;
        let verdict = judge::read_only(&self.read_only);
        self.judge("metadata, plan and audit change nothing", verdict);
        Ok(())
    }

    fn judge(&mut self, check: impl Into<String>, verdict: Verdict) {
        self.rows.push(Row::new(check.into(), verdict));
    }

    fn skip(&mut self, checks: &[String], why: &str) {
        for check in checks {
            self.judge(check.clone(), Verdict::Skip(why.to_owned()));
        }
    }

    fn module(&self) -> &str {
        &self.target.module.name
    }

    /// The module-visible content of the shared directory (without `.e/`).
    fn shared(&self) -> anyhow::Result<Tree> {
        self.session.shared.load_tree()
    }

    /// Runs `method` of the target (`apply` as an apply: recorded installed, influences not
    /// planned), unless the walk is blocked or the version lacks it: then the rows named
    /// `checks`, which depend on this run, are skipped, saying why.
    async fn run(&mut self, method: &str, checks: &[String]) -> anyhow::Result<Option<Report>> {
        if self.interrupted.stopped().load(Ordering::SeqCst) {
            self.blocked = Some("interrupted".to_owned());
        }
        if let Some(why) = self.blocked.clone() {
            self.skip(checks, &why);
            return Ok(None);
        }
        if self.target.version.command(method).is_none() {
            self.skip(checks, &format!("the version declares no `{method}`"));
            return Ok(None);
        }
        let report = if method == "apply" {
            self.session
                .apply(self.target, &[], false, true, Vec::new())
                .await?
        } else {
            self.session
                .run(self.target, method, &[], false, Vec::new())
                .await?
        };
        Ok(Some(report))
    }

    /// Installs what the module strongly requires, so its init finds real state to work from.
    async fn setup(&mut self) -> anyhow::Result<()> {
        let session = self.session;
        let resolution = match resolve(&session.index, self.target, &Preferences::default()) {
            Ok(resolution) => resolution,
            Err(err) => {
                let first = err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                self.judge(
                    "strong requirements can be installed",
                    Verdict::Fail {
                        detail: first,
                        hint: format!(
                            "`e check` installs the strong requirements first: `e apply {} --with-requirements` says what is missing",
                            self.target.id()
                        ),
                    },
                );
                self.blocked = Some("its strong requirements cannot be installed".to_owned());
                return Ok(());
            }
        };
        for dependency in resolution
            .order
            .iter()
            .filter(|e| e.module.name != self.target.module.name)
        {
            if self.interrupted.stopped().load(Ordering::SeqCst) {
                self.blocked = Some("interrupted".to_owned());
                return Ok(());
            }
            let mut failed = None;
            for method in ["init", "plan", "apply"] {
                let report = if method == "apply" {
                    session
                        .apply(*dependency, &[], false, true, Vec::new())
                        .await?
                } else {
                    session
                        .run(*dependency, method, &[], false, Vec::new())
                        .await?
                };
                if !(report.succeeded() || (method == "plan" && report.answered())) {
                    failed = Some(format!("{method}: {}", judge::ending(&report)));
                    break;
                }
            }
            let check = format!("setup: install {}", dependency.id());
            match failed {
                None => self.judge(check, Verdict::Pass(String::new())),
                Some(detail) => {
                    self.judge(
                        check,
                        Verdict::Fail {
                            detail,
                            hint: format!(
                                "a strong requirement must install for the module to be checked: run `e check {}`",
                                dependency.id()
                            ),
                        },
                    );
                    self.blocked = Some(format!("`{}` did not install", dependency.id()));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    async fn metadata(&mut self) -> anyhow::Result<()> {
        let checks = [
            "metadata exits 0".to_owned(),
            "metadata equals the repository's labels, requires, influences".to_owned(),
        ];
        if let Some(report) = self.run("metadata", &checks).await? {
            self.judge(checks[0].clone(), judge::metadata_exit(&report));
            let expected = self.target.version.metadata();
            self.judge(
                checks[1].clone(),
                judge::metadata_content(&report, &expected),
            );
            self.read_only.push(("metadata", report));
        }
        Ok(())
    }

    async fn init(&mut self) -> anyhow::Result<()> {
        let config = judge::config_file(self.module());
        let checks = ["init exits 0".to_owned(), format!("init writes `{config}`")];
        if let Some(report) = self.run("init", &checks).await? {
            self.judge(checks[0].clone(), judge::init_exit(self.module(), &report));
            if report.succeeded() {
                let verdict = judge::config(self.module(), &self.shared()?);
                self.judge(checks[1].clone(), verdict);
            } else {
                self.skip(&checks[1..], "init failed");
                self.blocked = Some("init failed".to_owned());
            }
        }
        Ok(())
    }

    /// plan, apply, plan again, apply again, audit.
    async fn lifecycle(&mut self) -> anyhow::Result<()> {
        let module = self.module().to_owned();
        let check = "plan before apply reports changes (exit 2)".to_owned();
        if let Some(report) = self.run("plan", std::slice::from_ref(&check)).await? {
            self.judge(check, judge::plan_before(&report));
            self.read_only.push(("plan before apply", report));
        }

        let checks = [
            "apply exits 0 with a valid state".to_owned(),
            format!("apply writes its own `{module}` section with `status: applied`"),
        ];
        if let Some(report) = self.run("apply", &checks).await? {
            self.judge(checks[0].clone(), judge::apply_exit(&module, &report));
            if report.succeeded() {
                let verdict = judge::section(&module, &self.shared()?);
                self.judge(checks[1].clone(), verdict);
            } else {
                self.skip(&checks[1..], "apply failed");
                self.blocked = Some("apply failed".to_owned());
            }
        } else if self.blocked.is_none() {
            self.blocked = Some("the version declares no `apply`".to_owned());
        }

        let check = "plan after apply reports no changes (exit 0)".to_owned();
        if let Some(report) = self.run("plan", std::slice::from_ref(&check)).await? {
            self.judge(check, judge::plan_after(&report));
            self.read_only.push(("plan after apply", report));
        }

        let check = "a second apply changes nothing".to_owned();
        let before = self.shared()?;
        if let Some(report) = self.run("apply", std::slice::from_ref(&check)).await? {
            let verdict = judge::second_apply(&report, &before, &self.shared()?);
            self.judge(check, verdict);
        }

        let check = "audit after apply reports no drift (exit 0)".to_owned();
        if let Some(report) = self.run("audit", std::slice::from_ref(&check)).await? {
            self.judge(check, judge::audit_after(&report));
            self.read_only.push(("audit after apply", report));
        }
        Ok(())
    }

    async fn destroy(&mut self) -> anyhow::Result<()> {
        let module = self.module().to_owned();
        let check = format!("destroy removes the `{module}` section");
        if let Some(report) = self.run("destroy", std::slice::from_ref(&check)).await? {
            let verdict = judge::destroy(&module, &report, &self.shared()?);
            self.judge(check, verdict);
        }
        Ok(())
    }
}
