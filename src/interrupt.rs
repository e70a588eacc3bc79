//! The signals that mean "stop": Ctrl-C (SIGINT), SIGTERM (sent by CI runners, `timeout` and
//! systemd) and SIGHUP (a closed terminal). e treats them alike: the running container is
//! stopped, what it left is collected and settled, the container is removed and the lock
//! released, so none of them leaves anything behind that `kill -9` would not.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves when one of the stop signals arrives. Listening starts at the first poll; until
/// then a signal keeps its default meaning. Without signal handlers it never resolves.
pub async fn requested() {
    let listeners = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(signal);
    let [Ok(mut int), Ok(mut term), Ok(mut hup)] = listeners else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// A stop signal noticed in the background: [`Watch::stopped`] turns true once one arrives,
/// for loops that check between steps (a stack, several destroys or checks). Listening ends
/// when the watch is dropped.
pub struct Watch {
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    listener: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Starts listening.
    pub fn start() -> Watch {
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stopped);
        let listener = tokio::spawn(async move {
            requested().await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Watch { stopped, listener }
    }

    /// The flag, true once a stop signal arrived.
    pub fn stopped(&self) -> &std::sync::atomic::AtomicBool {
        &self.stopped
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
