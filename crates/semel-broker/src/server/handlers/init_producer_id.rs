//! InitProducerId (22).
//!
//! Without a transactional id Kafka hands out a fresh producer id with epoch 0 on every call,
//! whatever producer id and epoch the request carries (KIP-360 recovery for idempotent
//! producers is a new id). With one, the transaction coordinator decides (epoch bump,
//! fencing, KIP-360 from v3).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{code, NONE};
use crate::coordinator::txn::InitOutcome;
use crate::server::dispatch::{RequestContext, Response};

pub(crate) async fn handle(ctx: &RequestContext, request: InitProducerIdRequest) -> Response<InitProducerIdResponse> {
    let answer = |error: i16, producer_id: i64, epoch: i16| {
        InitProducerIdResponse::default().with_error_code(error).with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch)
    };
    let state = ctx.state.clone();
    let Some(transactional_id) = request.transactional_id.map(|t| t.0.to_string()) else {
        return match state.producer_ids.next_id() {
            Ok(id) => Response::Now(answer(NONE, id, 0)),
            Err(e) => {
                state.health.fail("allocate producer id", &std::io::Error::other(e.to_string()));
                Response::Now(answer(code(ResponseError::KafkaStorageError), -1, -1))
            }
        };
    };
    let expected = if ctx.version >= 3 { (request.producer_id.0, request.producer_epoch) } else { (-1, -1) };
    let ids = &state.producer_ids;
    let outcome = state.txns.init_producer_id(&transactional_id, request.transaction_timeout_ms, expected, || ids.next_id().ok());
    match outcome {
        InitOutcome::Now(error, pid, epoch) => Response::Now(answer(error, pid, epoch)),
        InitOutcome::AfterWrite(durable, pid, epoch) => Response::Later(Box::pin(async move {
            match state.txns.wait_durable(&transactional_id, durable).await {
                Ok(()) => answer(NONE, pid, epoch),
                Err(_) => answer(code(ResponseError::KafkaStorageError), -1, -1),
            }
        })),
        InitOutcome::Aborting(durable, completion) => Response::Later(Box::pin(async move {
            if state.txns.wait_durable(&transactional_id, durable).await.is_ok() {
                tokio::spawn(crate::coordinator::markers::complete(state.clone(), completion));
            }
            // The client retries until the abort is complete.
            answer(code(ResponseError::ConcurrentTransactions), -1, -1)
        })),
    }
}
