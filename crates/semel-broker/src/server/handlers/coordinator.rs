//! FindCoordinator (10): this broker coordinates every group and transactional id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{code, text, NONE};
use crate::server::dispatch::{RequestContext, Response};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The error for one key, if it is not valid.
fn key_error(key_type: i8, key: &StrBytes) -> Option<(i16, String)> {
    match key_type {
        KEY_TYPE_GROUP => None,
        KEY_TYPE_TRANSACTION if key.is_empty() => Some((code(ResponseError::InvalidRequest), "empty transactional id".into())),
        KEY_TYPE_TRANSACTION => None,
        other => Some((code(ResponseError::InvalidRequest), format!("unknown coordinator key type {other}"))),
    }
}

pub(crate) async fn handle(ctx: &RequestContext, request: FindCoordinatorRequest) -> Response<FindCoordinatorResponse> {
    let state = &ctx.state;
    let node = BrokerId(state.config.node_id);
    let host = text(&state.advertised_host);
    let port = state.advertised_port;
    if ctx.version >= 4 {
        // Batched: one answer per key.
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let base = Coordinator::default().with_key(key.clone());
                match key_error(request.key_type, key) {
                    Some((error, message)) => {
                        base.with_node_id(BrokerId(-1)).with_port(-1).with_error_code(error).with_error_message(Some(text(message)))
                    }
                    None => base.with_node_id(node).with_host(host.clone()).with_port(port).with_error_code(NONE),
                }
            })
            .collect();
        return Response::Now(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let response = match key_error(request.key_type, &request.key) {
        Some((error, message)) => {
            let r = FindCoordinatorResponse::default().with_error_code(error).with_node_id(BrokerId(-1)).with_port(-1);
            if ctx.version >= 1 {
                r.with_error_message(Some(text(message)))
            } else {
                r
            }
        }
        None => FindCoordinatorResponse::default().with_error_code(NONE).with_node_id(node).with_host(host).with_port(port),
    };
    Response::Now(response)
}
