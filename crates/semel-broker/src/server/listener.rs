//! The listener: accepts connections until shutdown and admits each one, or refuses it with a
//! log line, by three limits:
//! - `max_connections` over all clients, and `max_connections_per_ip` for one address
//!   (Kafka's `max.connections` and `max.connections.per.ip`);
//! - file descriptors: when accept fails for want of one (EMFILE, ENFILE), a spare descriptor
//!   held for the purpose is closed, the waiting connection is accepted and closed at once, and
//!   the spare is taken again. The client sees a refused connection instead of a hang, and the
//!   failure never reaches storage.
//!
//! Refusals are logged at most once per 10 s of each kind, with the count of those that were not.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::connection;
use crate::broker::BrokerState;

/// Open connections per client address.
struct PerIp {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in [`PerIp`]; given back on drop.
struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpSlot { per_ip: Arc::clone(self), ip })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.per_ip.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// How often each kind of refusal is logged at most; the line says how many were not.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Refusals of one kind: a flood of them is one log line per interval, not one per refusal.
#[derive(Default)]
struct RefusalLog {
    last_line: Option<std::time::Instant>,
    not_logged: u64,
}

impl RefusalLog {
    /// `Some(refusals not logged since the last line)` if this one is to be logged.
    fn note(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.last_line {
            Some(at) if now.duration_since(at) < REFUSAL_LOG_INTERVAL => {
                self.not_logged += 1;
                None
            }
            _ => {
                self.last_line = Some(now);
                Some(std::mem::take(&mut self.not_logged))
            }
        }
    }
}

/// A descriptor kept open so that one can be freed when the process runs out.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE (process limit) and ENFILE (system limit) on Linux.
    matches!(e.raw_os_error(), Some(24) | Some(23))
}

/// Accepts connections until shutdown.
pub(crate) async fn accept_loop(listener: TcpListener, state: Arc<BrokerState>) {
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let per_ip = Arc::new(PerIp { limit: state.config.max_connections_per_ip, open: Mutex::new(HashMap::new()) });
    let mut spare = spare_descriptor();
    let (mut fd_refusals, mut total_refusals, mut ip_refusals) = (RefusalLog::default(), RefusalLog::default(), RefusalLog::default());
    let mut shutdown = state.shutdown.clone();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if out_of_descriptors(&e) && spare.is_some() => {
                drop(spare.take());
                if let Ok(Ok((stream, peer))) = tokio::time::timeout(Duration::from_secs(1), listener.accept()).await {
                    drop(stream);
                    if let Some(more) = fd_refusals.note() {
                        tracing::warn!(%peer, error = %e, refused_before_unlogged = more, "connection refused: out of file descriptors (raise the open-files limit)");
                    }
                }
                spare = spare_descriptor();
                continue;
            }
            Err(e) => {
                // Out of descriptors with no spare left, and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                spare = spare.or_else(spare_descriptor);
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            if let Some(more) = total_refusals.note() {
                let max_connections = state.config.max_connections;
                tracing::warn!(%peer, max_connections, refused_before_unlogged = more, "connection refused: max_connections reached");
            }
            drop(stream);
            continue;
        };
        let Some(slot) = per_ip.admit(peer.ip()) else {
            if let Some(more) = ip_refusals.note() {
                let max_connections_per_ip = per_ip.limit;
                tracing::warn!(%peer, max_connections_per_ip, refused_before_unlogged = more, "connection refused: max_connections_per_ip reached");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        connections.spawn(async move {
            connection::serve(stream, peer, state).await;
            drop((permit, slot));
        });
        while connections.try_join_next().is_some() {}
    }
    // Stop reading new requests; connections finish what they have and close.
    while tokio::time::timeout(Duration::from_secs(10), connections.join_next()).await.ok().flatten().is_some() {}
    connections.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_slots_are_counted_and_given_back() {
        let per_ip = Arc::new(PerIp { limit: 2, open: Mutex::new(HashMap::new()) });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = per_ip.admit(a).expect("1 of 2");
        let _second = per_ip.admit(a).expect("2 of 2");
        assert!(per_ip.admit(a).is_none(), "a third from the same address is refused");
        assert!(per_ip.admit(b).is_some(), "another address has its own count");
        drop(first);
        assert!(per_ip.admit(a).is_some(), "a closed connection frees its slot");
    }
}
