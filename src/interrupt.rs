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
