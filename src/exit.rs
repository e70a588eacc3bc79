//! e's exit codes, in one place (docs/guide.md, "Exit codes", shows the same table):
//!
//! | code | meaning                                                                        |
//! |------|--------------------------------------------------------------------------------|
//! | 0    | success; also a plan with changes, unless `--detailed-exitcode`                 |
//! | 1    | an error: a usage error, e's own, a method that failed (the module's own code  |
//! |      | is in the message and in `-o json`), a result e refused, an answer other than  |
//! |      | `yes`; `e search SELECTOR` that matches nothing (like `grep`)                  |
//! | 2    | `e plan --detailed-exitcode`: the plan has changes; `e audit`: drift           |
//! | 124  | a method ran past its timeout (as `timeout(1)`)                                |
//! | 130  | interrupted (Ctrl-C, SIGTERM)                                                  |
//!
//! Terraform users rely on 0, 1 and 2 meaning exactly this; a module's exit code never leaks
//! through, so a module that fails with 2 is not mistaken for "changes".

use std::process::ExitCode;

use crate::run::Report;
use crate::runtime::Stopped;

/// Success.
pub const SUCCESS: u8 = 0;
/// Any error, usage errors included.
pub const FAILURE: u8 = 1;
/// Changes (plan with `--detailed-exitcode`) or drift (audit).
pub const CHANGES: u8 = 2;
/// A method ran past its timeout.
pub const TIMEOUT: u8 = 124;
/// Interrupted.
pub const INTERRUPTED: u8 = 130;

/// What a method's exit code 2 means for e's own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Two {
    /// A failure, like any other code but 0 (apply, init, destroy, custom commands).
    Failure,
    /// An answer that e reports as success (a plan with changes, by default).
    Success,
    /// An answer that e reports as 2 (a plan with `--detailed-exitcode`, an audit's drift).
    Reported,
}

/// e's exit code for one method run.
pub fn for_report(report: &Report, two: Two) -> ExitCode {
    ExitCode::from(code_for(report, two))
}

/// The number behind [`for_report`].
pub fn code_for(report: &Report, two: Two) -> u8 {
    match report.stopped {
        Some(Stopped::Timeout) => return TIMEOUT,
        Some(Stopped::Interrupted) => return INTERRUPTED,
        None => {}
    }
    if report.refused {
        return FAILURE;
    }
    match (report.exit_code, two) {
        (0, _) => SUCCESS,
        (2, Two::Success) => SUCCESS,
        (2, Two::Reported) => CHANGES,
        _ => FAILURE,
    }
}

/// What exit code 2 means for `method`: drift for audit, changes for plan (reported only with
/// `--detailed-exitcode`), a failure for every other method.
pub fn two_for(method: &str, detailed: bool) -> Two {
    match method {
        "audit" => Two::Reported,
        "plan" if detailed => Two::Reported,
        "plan" => Two::Success,
        _ => Two::Failure,
    }
}
