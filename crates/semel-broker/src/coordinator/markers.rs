//! Completing a transaction: after PrepareCommit/PrepareAbort is durable, write the marker to
//! every partition of the transaction and the outcome to every group whose offsets it
//! carries, make them durable, then record CompleteCommit/CompleteAbort.
//!
//! If anything fails on the way the transaction stays prepared; the next start-up completes it
//! again (markers are idempotent for readers: a second marker for a closed transaction ends
//! nothing). So a crash anywhere between PrepareCommit and CompleteCommit never leaves markers
//! on only some partitions for good.

use std::sync::Arc;

use super::txn::Completion;
use crate::broker::BrokerState;
use crate::storage::batch::Marker;

/// Runs a completion to the end (spawned by EndTxn, InitProducerId fencing, timeouts and
/// start-up).
pub async fn complete(state: Arc<BrokerState>, completion: Completion) {
    let marker = Marker { commit: completion.commit, coordinator_epoch: 0 };
    let mut flushes = Vec::new();
    for (topic, index) in &completion.partitions {
        let Some(topic_entry) = state.metadata.topic(topic) else {
            // Deleted since it was added: nothing to mark.
            continue;
        };
        let Some(partition) = topic_entry.partition(*index) else { continue };
        let settings = topic_entry.settings(state.metadata.defaults());
        match partition.write_marker(completion.producer_id, completion.producer_epoch, marker, &settings) {
            Ok(end) => flushes.push((Arc::clone(partition), end)),
            Err(error) => {
                tracing::error!(transactional_id = %completion.transactional_id, topic, partition = index, %error, "cannot write a transaction marker; the transaction completes at the next start");
                return;
            }
        }
    }
    // The partitions flush concurrently.
    let flushes: Vec<_> = flushes.into_iter().map(|(partition, end)| tokio::spawn(async move { partition.flush_to(end).await })).collect();
    for flush in flushes {
        let outcome = flush.await.unwrap_or_else(|e| Err(crate::storage::AppendError::Io(std::io::Error::other(e))));
        if let Err(error) = outcome {
            tracing::error!(transactional_id = %completion.transactional_id, %error, "cannot flush a transaction marker");
            return;
        }
    }
    if !completion.groups.is_empty() {
        // One marker in the offsets log covers every group of the transaction.
        let durable = state.groups.complete_txn(completion.producer_id, completion.producer_epoch, completion.commit);
        if let Err(error) = state.groups.wait_durable(durable).await {
            tracing::error!(transactional_id = %completion.transactional_id, %error, "cannot write the transaction marker to the offsets log");
            return;
        }
    }
    // The markers are durable: the transaction is complete. The producer may start its next
    // transaction at once: whatever it does next is written to the same log and fsynced before
    // it is answered, which covers this record too (a crash before that leaves the transaction
    // prepared, and start-up completes it again).
    if let Some(durable) = state.txns.complete(&completion) {
        if let Err(error) = state.txns.flush(durable).await {
            tracing::error!(transactional_id = %completion.transactional_id, %error, "cannot record the transaction's completion");
        }
    }
    tracing::debug!(transactional_id = %completion.transactional_id, commit = completion.commit, partitions = completion.partitions.len(), "transaction completed");
}
