//! One client connection: reads length-prefixed frames, runs each request's in-order part,
//! and writes the responses in request order.
//!
//! Requests are applied one after another (so a producer's pipelined batches reach the log in
//! the order sent, as on Kafka). A handler may defer the rest of its work (waiting for an
//! fsync, long-polling a fetch); deferred work runs concurrently as its own task, and the
//! writer sends responses strictly in request order.
//!
//! What one connection can hold, and for how long:
//! - At most `max_in_flight_requests_per_connection` responses are outstanding; past that the
//!   reader waits, which pushes back on the client through TCP.
//! - A frame's bytes are reserved in the broker's memory pool ([`super::memory`]) as they
//!   arrive, and the body buffer grows with them, never from the size the client claims.
//!   While the pool is used up the reader waits.
//! - At most one Fetch is outstanding: the next one is handled once the previous response has
//!   been written (Kafka handles one request of a connection at a time; consumers send one
//!   Fetch per broker at a time anyway), so a client that does not read holds one response.
//! - Once a frame has started (its first byte), all of it must arrive within
//!   `request_receive_timeout_ms`, waits for memory included.
//! - With no request outstanding and no byte read or written for `connections_max_idle_ms`,
//!   the connection is closed; a write that makes no progress for that long closes it too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::dispatch::{self, Outcome, Reply};
use super::memory::Reservation;
use crate::broker::BrokerState;

/// Frames up to this size get their whole buffer at once; larger ones grow as bytes arrive.
const WHOLE_FRAME_BYTES: usize = 64 * 1024;
/// How much a growing frame buffer is extended by for one read.
const READ_CHUNK_BYTES: usize = 1024 * 1024;
/// How often an idle-looking connection with a request outstanding is looked at again.
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// Responses are written in pieces of this size, each under the idle deadline.
const WRITE_CHUNK_BYTES: usize = 64 * 1024;

/// A reply on its way to the writer.
struct Queued {
    reply: Reply,
    /// Dropped once the reply has been written (the previous Fetch, for the reader).
    written: Option<oneshot::Sender<()>>,
}

/// When the connection last moved, and how many replies are not written yet.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
    outstanding: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { opened: Instant::now(), last_ms: AtomicU64::new(0), outstanding: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// When the connection becomes idle if nothing happens until then.
    fn idle_at(&self, idle: Duration) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Acquire)) + idle
    }

    fn is_idle(&self, idle: Duration) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_at(idle)
    }
}

/// Why the reader stopped.
enum Ended {
    /// The client closed its side (or the socket failed).
    ClientClosed,
    Shutdown,
    Idle,
    /// A started frame did not arrive in time.
    ReceiveTimeout {
        size: Option<usize>,
        received: usize,
    },
    /// Close after the responses so far, for this reason.
    Close(String),
    /// The writer stopped (it logged why), or dispatch answered with a close.
    WriterStopped,
}

pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, state: Arc<BrokerState>) {
    tracing::debug!(%peer, "connection opened");
    let (reader, writer) = stream.into_split();
    let activity = Arc::new(Activity::new());
    let idle = Duration::from_millis(state.config.connections_max_idle_ms);
    let (tx, rx) = mpsc::channel::<Queued>(state.config.max_in_flight_requests_per_connection);
    let writer_task = tokio::spawn(write_responses(writer, rx, Arc::clone(&activity), idle, peer));

    let ended = tokio::select! {
        ended = read_requests(reader, peer, &state, &activity, &tx) => ended,
        () = tx.closed() => Ended::WriterStopped,
    };
    match ended {
        Ended::ClientClosed | Ended::Shutdown | Ended::WriterStopped => {}
        Ended::Idle => {
            tracing::info!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection (connections_max_idle_ms)");
        }
        Ended::ReceiveTimeout { size, received } => {
            let timeout_ms = state.config.request_receive_timeout_ms;
            tracing::warn!(%peer, ?size, received, timeout_ms, "closing connection: a request frame did not arrive in time (request_receive_timeout_ms)");
        }
        Ended::Close(reason) => {
            let _ = tx.send(Queued { reply: Reply::close(reason), written: None }).await;
        }
    }
    drop(tx);
    let _ = writer_task.await;
    tracing::debug!(%peer, "connection closed");
}

/// Reads frames and hands each to dispatch, until the client closes, a limit is hit or the
/// broker stops.
async fn read_requests(
    mut reader: OwnedReadHalf,
    peer: SocketAddr,
    state: &Arc<BrokerState>,
    activity: &Activity,
    tx: &mpsc::Sender<Queued>,
) -> Ended {
    let max_request_bytes = state.config.max_request_bytes;
    let idle = Duration::from_millis(state.config.connections_max_idle_ms);
    let receive_timeout = Duration::from_millis(state.config.request_receive_timeout_ms);
    let mut shutdown = state.shutdown.clone();
    let mut previous_fetch: Option<oneshot::Receiver<()>> = None;
    loop {
        // The size prefix: `read` (not `read_exact`) because it is cancel safe.
        let mut size_buf = [0u8; 4];
        let mut filled = 0;
        let mut frame_deadline = None;
        while filled < 4 {
            // Past the idle time with a request outstanding: look again a second later.
            let wake = frame_deadline.unwrap_or_else(|| activity.idle_at(idle).max(Instant::now() + IDLE_RECHECK));
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return Ended::Shutdown,
                read = reader.read(&mut size_buf[filled..]) => match read {
                    Ok(0) | Err(_) => return Ended::ClientClosed,
                    Ok(n) => {
                        filled += n;
                        activity.touch();
                        frame_deadline.get_or_insert_with(|| Instant::now() + receive_timeout);
                    }
                },
                _ = tokio::time::sleep_until(wake) => {
                    if frame_deadline.is_some() {
                        return Ended::ReceiveTimeout { size: None, received: filled };
                    }
                    if activity.is_idle(idle) {
                        return Ended::Idle;
                    }
                }
            }
        }
        let size = i32::from_be_bytes(size_buf);
        if size < 8 || size as usize > max_request_bytes {
            return Ended::Close(format!("request size {size} is outside 8..={max_request_bytes} (max_request_bytes)"));
        }
        let size = size as usize;

        // The whole frame, memory waits included, within the deadline from its first byte.
        let deadline = frame_deadline.unwrap_or_else(|| Instant::now() + receive_timeout);
        let mut memory = state.memory.empty();
        let mut body = Vec::new();
        let read = read_body(&mut reader, &mut body, size, &mut memory, state, activity);
        let body = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ended::Shutdown,
            read = tokio::time::timeout_at(deadline, read) => match read {
                Ok(Ok(())) => Bytes::from(body),
                Ok(Err(())) => return Ended::ClientClosed,
                Err(_) => return Ended::ReceiveTimeout { size: Some(size), received: body.len() },
            },
        };

        let is_fetch = i16::from_be_bytes([body[0], body[1]]) == kafka_protocol::messages::ApiKey::Fetch as i16;
        if is_fetch {
            if let Some(written) = previous_fetch.take() {
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return Ended::Shutdown,
                    _ = written => {}
                }
            }
        }
        let reply = dispatch::handle(state, peer, body, memory).await;
        let closing = reply.is_close();
        let written = is_fetch.then(|| {
            let (done, written) = oneshot::channel();
            previous_fetch = Some(written);
            done
        });
        activity.outstanding.fetch_add(1, Ordering::AcqRel);
        if tx.send(Queued { reply, written }).await.is_err() || closing {
            return Ended::WriterStopped;
        }
    }
}

/// Reads a frame body of `size` bytes into `body`, reserving memory in the pool before the
/// buffer grows. The buffer grows geometrically (to at most twice what has arrived, and never
/// past `size`), so a large frame is not copied over and over; a client that claims a large
/// frame and stalls holds at most about twice what it sent, never what it claimed, and the
/// buffer's capacity is always covered by the reservation. Nothing is zero-filled ahead of the
/// bytes.
async fn read_body(
    reader: &mut OwnedReadHalf,
    body: &mut Vec<u8>,
    size: usize,
    memory: &mut Reservation,
    state: &BrokerState,
    activity: &Activity,
) -> Result<(), ()> {
    while body.len() < size {
        let left = size - body.len();
        if body.capacity() == body.len() {
            let want = if size <= WHOLE_FRAME_BYTES { left } else { left.min(READ_CHUNK_BYTES) };
            let target = (body.len() + want).max(body.capacity().saturating_mul(2)).min(size);
            let needed = target.saturating_sub(memory.bytes());
            if needed > 0 {
                memory.absorb(state.memory.reserve(needed).await);
            }
            body.reserve_exact(target - body.len());
            if body.capacity() > memory.bytes() {
                // The allocator gave more than asked: account for it (rare, and small).
                memory.resize(body.capacity());
            }
        }
        match (&mut *reader).take(left as u64).read_buf(body).await {
            Ok(0) | Err(_) => return Err(()),
            Ok(_) => activity.touch(),
        }
    }
    Ok(())
}

/// Writes the replies in order; stops when the channel closes, the socket fails, or a write
/// makes no progress for the idle time.
async fn write_responses(
    writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Queued>,
    activity: Arc<Activity>,
    idle: Duration,
    peer: SocketAddr,
) {
    let mut writer = BufWriter::new(writer);
    while let Some(Queued { reply, written }) = rx.recv().await {
        let outcome = reply.resolve().await;
        let result = match outcome {
            Outcome::Respond(frame, memory) => {
                let result = write_frame(&mut writer, &frame, &activity, idle).await;
                drop(memory);
                result
            }
            Outcome::NoResponse => Ok(()),
            Outcome::Close(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                let _ = tokio::time::timeout(idle, writer.flush()).await;
                return;
            }
        };
        // Flush when nothing else is ready, so pipelined responses share a write.
        let result = match result {
            Ok(()) if rx.is_empty() => flush(&mut writer, idle).await,
            other => other,
        };
        match result {
            Ok(()) => {}
            Err(WriteError::Stalled) => {
                let idle_ms = idle.as_millis() as u64;
                tracing::info!(%peer, idle_ms, "closing connection: the client has not read its responses (connections_max_idle_ms)");
                return;
            }
            Err(WriteError::Closed) => return,
        }
        activity.touch();
        activity.outstanding.fetch_sub(1, Ordering::AcqRel);
        drop(written);
    }
    let _ = flush(&mut writer, idle).await;
}

enum WriteError {
    /// No progress for the idle time.
    Stalled,
    Closed,
}

async fn write_frame(writer: &mut BufWriter<OwnedWriteHalf>, frame: &[u8], activity: &Activity, idle: Duration) -> Result<(), WriteError> {
    for chunk in frame.chunks(WRITE_CHUNK_BYTES) {
        match tokio::time::timeout(idle, writer.write_all(chunk)).await {
            Ok(Ok(())) => activity.touch(),
            Ok(Err(_)) => return Err(WriteError::Closed),
            Err(_) => return Err(WriteError::Stalled),
        }
    }
    Ok(())
}

async fn flush(writer: &mut BufWriter<OwnedWriteHalf>, idle: Duration) -> Result<(), WriteError> {
    match tokio::time::timeout(idle, writer.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(WriteError::Closed),
        Err(_) => Err(WriteError::Stalled),
    }
}
