//! Work spread over the cores: a slice mapped in chunks on scoped threads, the results in the
//! slice's order. Used where one command has thousands of like items (the modules of a large
//! repository as it is parsed, or read from the cache).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many threads to use for work of this kind: every core, up to eight.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f` applied to every item, `chunk` items at a time on up to `threads` threads, the results
/// in the items' order; `None` as soon as `f` gives `None` for one (the other chunks then
/// stop at their next start). Each thread starts with a state of its own from `state`, which
/// `f` may reuse from chunk to chunk (a buffer, say).
pub fn map_chunks<'a, I: Sync, T: Send, S>(
    items: &'a [I],
    chunk: usize,
    threads: usize,
    state: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &'a I) -> Option<T> + Sync,
) -> Option<Vec<T>> {
    let chunk = chunk.max(1);
    let chunks = items.len().div_ceil(chunk);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done: Mutex<Vec<(usize, Vec<T>)>> = Mutex::new(Vec::with_capacity(chunks));
    let work = || {
        let mut state = state();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            if at >= chunks || failed.load(Ordering::Relaxed) {
                return;
            }
            let these = &items[at * chunk..((at + 1) * chunk).min(items.len())];
            match these.iter().map(|item| f(&mut state, item)).collect() {
                Some(results) => done
                    .lock()
                    .expect("no thread panics holding the results")
                    .push((at, results)),
                None => failed.store(true, Ordering::Relaxed),
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.clamp(1, chunks.max(1)) {
            scope.spawn(work);
        }
        work();
    });
    if failed.into_inner() {
        return None;
    }
    let mut done = done.into_inner().ok()?;
    done.sort_unstable_by_key(|(at, _)| *at);
    let mut results = Vec::with_capacity(items.len());
    for (_, these) in done {
        results.extend(these);
    }
    Some(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_on_any_number_of_threads() {
        let items: Vec<usize> = (0..1000).collect();
        for threads in [1, 2, 3, 8] {
            for chunk in [1, 7, 64, 5000] {
                let squares = map_chunks(&items, chunk, threads, || (), |_, n| Some(n * n));
                let expected: Vec<usize> = items.iter().map(|n| n * n).collect();
                assert_eq!(
                    squares,
                    Some(expected),
                    "{threads} threads, chunks of {chunk}"
                );
            }
        }
        assert_eq!(
            map_chunks(&[] as &[u8], 4, 2, || (), |_, n| Some(*n)),
            Some(vec![])
        );
    }

    #[test]
    fn one_failure_fails_the_whole_map() {
        let items: Vec<usize> = (0..1000).collect();
        for threads in [1, 2, 4] {
            let mapped = map_chunks(&items, 10, threads, || (), |_, n| (*n != 777).then_some(*n));
            assert_eq!(mapped, None, "{threads} threads");
        }
    }

    #[test]
    fn each_thread_keeps_its_state_from_chunk_to_chunk() {
        let items = vec![1u32; 100];
        // The state counts the items a thread has seen: with one thread it reaches 100.
        let seen = map_chunks(
            &items,
            10,
            1,
            || 0u32,
            |count, n| {
                *count += n;
                Some(*count)
            },
        );
        assert_eq!(seen.unwrap().last(), Some(&100));
    }
}
