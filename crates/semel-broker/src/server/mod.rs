//! The network side: the listener, connections (framing and in-order responses), request
//! dispatch, and one handler module per group of APIs.

mod connection;
mod dispatch;
mod handlers;
pub mod versions;
mod wire;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::broker::BrokerState;

/// Accepts connections until shutdown, at most `max_connections` at a time.
pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<BrokerState>) {
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let mut shutdown = state.shutdown.clone();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            tracing::warn!(%peer, max_connections = state.config.max_connections, "connection refused: max_connections reached");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        connections.spawn(async move {
            connection::serve(stream, peer, state).await;
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    // Stop reading new requests; connections finish what they have and close.
    while tokio::time::timeout(std::time::Duration::from_secs(10), connections.join_next()).await.ok().flatten().is_some() {}
    connections.abort_all();
}
