//! One client connection: reads length-prefixed frames, runs each request's in-order part,
//! and writes the responses in request order.
//!
//! Requests are applied one after another (so a producer's pipelined batches reach the log in
//! the order sent, as on Kafka). A handler may defer the rest of its work (waiting for an
//! fsync, long-polling a fetch); deferred work runs concurrently as its own task, and the
//! writer sends responses strictly in request order. At most
//! `max_in_flight_requests_per_connection` responses are outstanding: past that the reader
//! waits, which pushes back on the client through TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::dispatch::{self, Outcome, Reply};
use crate::broker::BrokerState;

pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, state: Arc<BrokerState>) {
    tracing::debug!(%peer, "connection opened");
    let (mut reader, writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Reply>(state.config.max_in_flight_requests_per_connection);

    let writer_task = tokio::spawn(async move {
        let mut writer = BufWriter::new(writer);
        while let Some(reply) = rx.recv().await {
            let outcome = reply.resolve().await;
            match outcome {
                Outcome::Respond(frame) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                    // Flush when nothing else is ready, so pipelined responses share a write.
                    if rx.is_empty() && writer.flush().await.is_err() {
                        return;
                    }
                }
                Outcome::NoResponse => {
                    if rx.is_empty() && writer.flush().await.is_err() {
                        return;
                    }
                }
                Outcome::Close(reason) => {
                    tracing::warn!(%peer, %reason, "closing connection");
                    let _ = writer.flush().await;
                    return;
                }
            }
        }
        let _ = writer.flush().await;
    });

    let max_request_bytes = state.config.max_request_bytes;
    let mut shutdown = state.shutdown.clone();
    loop {
        let mut size_buf = [0u8; 4];
        let read = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            read = reader.read_exact(&mut size_buf) => read,
        };
        if read.is_err() {
            break; // closed by the client
        }
        let size = i32::from_be_bytes(size_buf);
        if size < 8 || size as usize > max_request_bytes {
            let reason = format!("request size {size} is outside 8..={max_request_bytes} (max_request_bytes)");
            let _ = tx.send(Reply::close(reason)).await;
            break;
        }
        let mut body = BytesMut::zeroed(size as usize);
        if reader.read_exact(&mut body).await.is_err() {
            break;
        }
        let body = body.freeze();
        let reply = dispatch::handle(&state, peer, body).await;
        let closing = reply.is_close();
        if tx.send(reply).await.is_err() || closing {
            break;
        }
    }
    drop(tx);
    let _ = writer_task.await;
    tracing::debug!(%peer, "connection closed");
}
