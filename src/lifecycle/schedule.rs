//! Jobs of a dependency graph run side by side: each starts once every job it needs has
//! succeeded, at most `parallelism` at a time, in the order given when several are ready. The
//! first failure (or a Ctrl-C) stops new starts; the jobs already running are waited for, so
//! that each ends with its result recorded, and the rest are reported as never started.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{FuturesUnordered, StreamExt as _};

/// The default of `--parallelism`, Terraform's: modules mostly wait on their containers.
pub const DEFAULT_PARALLELISM: u16 = 10;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed.
    Failed,
    /// It never started: a job it needs failed, or the run was stopped first.
    NotStarted,
}

/// Runs job `i` by `start(i)` once every job in `needs[i]` has succeeded. `start` answers
/// whether the job succeeded; an error stops new starts like a failure and is returned once
/// the running jobs have ended. `stop` is checked before every start.
pub async fn run<F, Fut>(
    needs: &[Vec<usize>],
    parallelism: usize,
    stop: &AtomicBool,
    mut start: F,
) -> anyhow::Result<Vec<Outcome>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let mut outcomes = vec![Outcome::NotStarted; needs.len()];
    let mut started = vec![false; needs.len()];
    let mut running = FuturesUnordered::new();
    let mut stopped = false;
    let mut error = None;
    loop {
        while !stopped && running.len() < parallelism.max(1) && !stop.load(Ordering::SeqCst) {
            let ready = (0..needs.len()).find(|&i| {
                !started[i] && needs[i].iter().all(|&n| outcomes[n] == Outcome::Succeeded)
            });
            let Some(i) = ready else { break };
            started[i] = true;
            let job = start(i);
            running.push(async move { (i, job.await) });
        }
        let Some((i, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(true) => outcomes[i] = Outcome::Succeeded,
            Ok(false) => {
                outcomes[i] = Outcome::Failed;
                stopped = true;
            }
            Err(err) => {
                outcomes[i] = Outcome::Failed;
                stopped = true;
                error.get_or_insert(err);
            }
        }
    }
    match error {
        Some(err) => Err(err),
        None => Ok(outcomes),
    }
}

/// The names of the jobs that ended as `outcome`, for a report: `a, b`, or `nothing`.
pub fn named(names: &[String], outcomes: &[Outcome], outcome: Outcome) -> String {
    let named: Vec<&str> = names
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| **o == outcome)
        .map(|(name, _)| name.as_str())
        .collect();
    if named.is_empty() {
        "nothing".to_owned()
    } else {
        named.join(", ")
    }
}

/// Whether any two jobs may run at the same time, for jobs whose needs are all earlier jobs
/// (a dependency order): a job that does not need its predecessor, directly or through
/// others, may run beside it.
pub fn overlap(needs: &[Vec<usize>]) -> bool {
    (1..needs.len()).any(|i| !reaches(needs, i, i - 1))
}

fn reaches(needs: &[Vec<usize>], from: usize, to: usize) -> bool {
    needs[from]
        .iter()
        .any(|&n| n == to || (n > to && reaches(needs, n, to)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::time::Duration;

    /// A diamond: 0 below 1 and 2, which are below 3; 4 on its own.
    fn diamond() -> Vec<Vec<usize>> {
        vec![vec![], vec![0], vec![0], vec![1, 2], vec![]]
    }

    #[tokio::test]
    async fn independent_jobs_overlap_and_dependents_wait_for_what_they_need() {
        let log = RefCell::new(Vec::new());
        let stop = AtomicBool::new(false);
        let outcomes = run(&diamond(), 4, &stop, |i| {
            let log = &log;
            async move {
                log.borrow_mut().push(format!("start {i}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.borrow_mut().push(format!("end {i}"));
                Ok(true)
            }
        })
        .await
        .unwrap();
        assert_eq!(outcomes, vec![Outcome::Succeeded; 5]);
        let log = log.into_inner();
        let at = |s: &str| log.iter().position(|l| l == s).unwrap();
        // 0 and 4 start together; 1 and 2 together after 0; 3 after both.
        assert!(at("start 4") < at("end 0"), "{log:?}");
        assert!(at("start 2") < at("end 1"), "{log:?}");
        assert!(at("end 0") < at("start 1"), "{log:?}");
        assert!(
            at("end 1") < at("start 3") && at("end 2") < at("start 3"),
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn parallelism_one_runs_in_the_given_order() {
        let log = RefCell::new(Vec::new());
        let stop = AtomicBool::new(false);
        run(&diamond(), 1, &stop, |i| {
            log.borrow_mut().push(i);
            async { Ok(true) }
        })
        .await
        .unwrap();
        assert_eq!(log.into_inner(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_failure_stops_new_starts_and_running_jobs_finish() {
        let stop = AtomicBool::new(false);
        let outcomes = run(&diamond(), 2, &stop, |i| async move {
            tokio::time::sleep(Duration::from_millis(if i == 4 { 50 } else { 5 })).await;
            Ok(i != 0)
        })
        .await
        .unwrap();
        assert_eq!(
            outcomes,
            vec![
                Outcome::Failed,
                Outcome::NotStarted,
                Outcome::NotStarted,
                Outcome::NotStarted,
                Outcome::Succeeded
            ]
        );
    }

    #[tokio::test]
    async fn an_error_is_returned_after_the_running_jobs_end_and_stop_starts_nothing() {
        let stop = AtomicBool::new(false);
        let ended = RefCell::new(Vec::new());
        let err = run(&diamond(), 2, &stop, |i| {
            let ended = &ended;
            async move {
                tokio::time::sleep(Duration::from_millis(if i == 4 { 30 } else { 1 })).await;
                ended.borrow_mut().push(i);
                if i == 0 {
                    anyhow::bail!("engine gone")
                }
                Ok(true)
            }
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "engine gone");
        assert_eq!(ended.into_inner(), vec![0, 4]);
        let stopped = AtomicBool::new(true);
        let outcomes = run(&diamond(), 2, &stopped, |_| async { Ok(true) })
            .await
            .unwrap();
        assert_eq!(outcomes, vec![Outcome::NotStarted; 5]);
    }
}
