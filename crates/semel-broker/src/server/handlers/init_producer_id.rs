//! InitProducerId (22) for idempotent producers.
//!
//! Without a transactional id Kafka hands out a fresh producer id with epoch 0 on every call,
//! whatever producer id and epoch the request carries (KIP-360 recovery for idempotent
//! producers is a new id). Transactional ids need the transaction coordinator, which semel
//! does not have yet: they are refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a fatal
//! error for clients, rather than a retriable one they would loop on.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{code, NONE};
use crate::server::dispatch::{RequestContext, Response};

pub(crate) async fn handle(ctx: &RequestContext, request: InitProducerIdRequest) -> Response<InitProducerIdResponse> {
    let refused = |error: ResponseError| {
        InitProducerIdResponse::default().with_error_code(code(error)).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
    };
    match request.transactional_id {
        Some(id) if id.0.is_empty() => return Response::Now(refused(ResponseError::InvalidRequest)),
        Some(id) => {
            tracing::warn!(transactional_id = %id.0.as_str(), "InitProducerId with a transactional id refused: transactions are not supported yet");
            return Response::Now(refused(ResponseError::TransactionalIdAuthorizationFailed));
        }
        None => {}
    }
    match ctx.state.producer_ids.next_id() {
        Ok(id) => {
            Response::Now(InitProducerIdResponse::default().with_error_code(NONE).with_producer_id(ProducerId(id)).with_producer_epoch(0))
        }
        Err(e) => {
            ctx.state.health.fail("allocate producer id", &std::io::Error::other(e.to_string()));
            Response::Now(refused(ResponseError::KafkaStorageError))
        }
    }
}
