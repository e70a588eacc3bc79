//! How long a method run may take: its [`Deadline`], from `--timeout`, else its command's
//! `timeout:` in the repository, else [`DEFAULT_TIMEOUT`]; and how to say which one it was when
//! it fires. Pure: the engine enforces it (see `runtime/`).

use std::time::Duration;

/// How long a method may run when neither `--timeout` nor its command's `timeout:` says: one
/// hour. Generous, since an apply may create a cluster, but a module that hangs is stopped and
/// removed in the end, and its lock released.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// How long a run may take, and who said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The time the container may run.
    pub duration: Duration,
    /// Where it comes from.
    pub source: DeadlineSource,
}

/// Where a run's [`Deadline`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineSource {
    /// `--timeout`.
    Flag,
    /// The command's `timeout:` in the repository.
    Repository,
    /// [`DEFAULT_TIMEOUT`].
    Default,
}

impl Deadline {
    /// `--timeout` wins, then the command's `timeout:`, then [`DEFAULT_TIMEOUT`].
    pub fn of(flag: Option<Duration>, command: Option<Duration>) -> Deadline {
        match (flag, command) {
            (Some(duration), _) => Deadline {
                duration,
                source: DeadlineSource::Flag,
            },
            (None, Some(duration)) => Deadline {
                duration,
                source: DeadlineSource::Repository,
            },
            (None, None) => Deadline {
                duration: DEFAULT_TIMEOUT,
                source: DeadlineSource::Default,
            },
        }
    }

    /// The deadline in words, with where it comes from: `1h (e's default timeout)`.
    pub fn describe(&self) -> String {
        let origin = match self.source {
            DeadlineSource::Flag => "`--timeout`",
            DeadlineSource::Repository => "the command's `timeout:` in the repository",
            DeadlineSource::Default => "e's default timeout",
        };
        format!("{} ({origin})", humantime::format_duration(self.duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_command_then_the_default() {
        let (flag, command) = (Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(
            Deadline::of(Some(flag), Some(command)),
            Deadline {
                duration: flag,
                source: DeadlineSource::Flag
            }
        );
        assert_eq!(
            Deadline::of(None, Some(command)),
            Deadline {
                duration: command,
                source: DeadlineSource::Repository
            }
        );
        let default = Deadline::of(None, None);
        assert_eq!(default.duration, Duration::from_secs(3600));
        assert_eq!(default.describe(), "1h (e's default timeout)");
    }
}
