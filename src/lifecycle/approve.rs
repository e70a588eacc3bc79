//! Asking before changing anything, as Terraform does: the plan is shown, then the question,
//! and only `yes` proceeds. On a terminal the user types the answer; without one the answer is
//! read from standard input (`echo yes | e apply ...`), and a closed standard input is a
//! refusal that names the flag to pass. `--auto-approve` skips the question.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::bail;

use crate::output;

/// Whether a command asks before it changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Ask, and proceed only on `yes`.
    Ask,
    /// `--auto-approve`: proceed without asking.
    Auto,
}

impl Approval {
    /// `Auto` for `--auto-approve`, else `Ask`.
    pub fn from_flag(auto_approve: bool) -> Approval {
        if auto_approve {
            Approval::Auto
        } else {
            Approval::Ask
        }
    }

    /// Asks `question` (e.g. "apply these changes?") about `what` (e.g. "apply `azi@0.1.0`");
    /// true only for the answer `yes`. Fails when there is no answer to read.
    pub fn confirm(self, question: &str, what: &str) -> anyhow::Result<bool> {
        if self == Approval::Auto {
            return Ok(true);
        }
        let stdin = std::io::stdin();
        let terminal = stdin.is_terminal();
        output::prompt(&format!(
            "\nDo you want to {question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
        ));
        let mut answer = String::new();
        let read = stdin.lock().read_line(&mut answer)?;
        if !terminal {
            // The answer came from a pipe: show it after the question, as if typed.
            output::note(answer.trim_end());
        }
        if read == 0 {
            bail!(
                "cannot {what} without confirmation: standard input is not a terminal and gave no answer\nhint: review the plan above, then pass `--auto-approve` (or pipe `yes` into e)"
            );
        }
        Ok(answer.trim() == "yes")
    }
}
