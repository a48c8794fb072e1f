//! Request dispatch: reads the request header, checks the API and version against
//! [`super::versions::SUPPORTED`], checks the body's counts and lengths against the bytes
//! received ([`super::wire`]), decodes it with the `kafka-protocol` codecs, runs the handler and
//! frames its response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{self as m, ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::task::JoinHandle;

use super::handlers;
use super::memory::Reservation;
use super::versions::{self, PRODUCE_MIN_DECODABLE};
use crate::broker::BrokerState;

/// What the writer does for one request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A framed response (size prefix included), with the memory it holds until written.
    Respond(Bytes, Option<Reservation>),
    /// Nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection after the responses before this one.
    Close(String),
}

/// A request's answer: ready now, or being computed by its own task.
#[derive(Debug)]
pub(crate) enum Reply {
    Ready(Outcome),
    Deferred(JoinHandle<Outcome>),
}

impl Reply {
    pub(crate) fn close(reason: String) -> Self {
        Self::Ready(Outcome::Close(reason))
    }

    pub(crate) fn is_close(&self) -> bool {
        matches!(self, Self::Ready(Outcome::Close(_)))
    }

    pub(crate) async fn resolve(self) -> Outcome {
        match self {
            Self::Ready(outcome) => outcome,
            Self::Deferred(task) => task.await.unwrap_or_else(|e| Outcome::Close(format!("request task failed: {e}"))),
        }
    }
}

/// What a handler returns.
pub(crate) enum Response<R> {
    Now(R),
    Later(Pin<Box<dyn Future<Output = R> + Send + 'static>>),
    None,
}

/// Everything a handler may need about its request.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) state: Arc<BrokerState>,
    pub(crate) version: i16,
    pub(crate) client_id: String,
    pub(crate) peer: std::net::SocketAddr,
}

fn frame<R: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, response: &R) -> Outcome {
    // ApiVersions responses always use header v0 so that a client can read them whatever
    // version it asked for.
    let header_version = if api_key == ApiKey::ApiVersions { 0 } else { api_key.response_header_version(version) };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Sized once: a buffer that doubles as it fills would hold up to twice a large response.
    let size = header.compute_size(header_version).and_then(|h| response.compute_size(version).map(|b| h + b));
    let mut buf = BytesMut::with_capacity(4 + size.unwrap_or(64));
    buf.put_i32(0);
    if let Err(e) = header.encode(&mut buf, header_version).and_then(|()| response.encode(&mut buf, version)) {
        tracing::error!(?api_key, version, error = %e, "cannot encode a response (a bug)");
        return Outcome::Close(format!("cannot encode the {api_key:?} v{version} response"));
    }
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Outcome::Respond(buf.freeze(), None)
}

/// Frames a handler's response. `request_memory` (the frame's reservation) is given back when
/// the answer is known: now, or when the deferred part has finished.
fn finish<R: Encodable + Send + 'static>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: Response<R>,
    request_memory: Reservation,
) -> Reply {
    match response {
        Response::Now(r) => Reply::Ready(frame(api_key, version, correlation_id, &r)),
        Response::None => Reply::Ready(Outcome::NoResponse),
        Response::Later(future) => Reply::Deferred(tokio::spawn(async move {
            let r = future.await;
            drop(request_memory);
            frame(api_key, version, correlation_id, &r)
        })),
    }
}

/// What every request passes before its body is read: the header, and the API and version
/// against [`versions::SUPPORTED`]. `Err` is the reply: a close, or the answer to an
/// ApiVersions version semel does not know. ([`crate::fuzzing`] runs the same two steps.)
pub(crate) fn read_header(body: &mut Bytes) -> Result<(ApiKey, i16, RequestHeader), Reply> {
    let Some(&[k0, k1, v0, v1]) = body.first_chunk::<4>() else {
        return Err(Reply::close(format!("a request of {} bytes", body.len())));
    };
    let raw_key = i16::from_be_bytes([k0, k1]);
    let version = i16::from_be_bytes([v0, v1]);
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Err(Reply::close(format!("unknown API key {raw_key}")));
    };
    let header_version = api_key.request_header_version(version);
    let header = match RequestHeader::decode(body, header_version) {
        Ok(h) => h,
        Err(e) => return Err(Reply::close(format!("malformed {api_key:?} v{version} request header: {e}"))),
    };
    let correlation_id = header.correlation_id;
    let Some(range) = versions::supported(api_key) else {
        return Err(Reply::close(format!("{api_key:?} (key {raw_key}) is not supported by semel")));
    };
    if version < range.min || version > range.max {
        if api_key == ApiKey::ApiVersions {
            // Kafka answers an unknown ApiVersions version with a v0 body listing what it
            // supports, so the client can retry with a version both sides know.
            let response = handlers::api_versions::unsupported_version();
            return Err(Reply::Ready(frame(api_key, 0, correlation_id, &response)));
        }
        return Err(Reply::close(format!("{api_key:?} v{version} is not supported (supported: v{}-v{})", range.min, range.max)));
    }
    if api_key == ApiKey::Produce && version < PRODUCE_MIN_DECODABLE {
        return Err(Reply::close(format!("Produce v{version} is not supported: Kafka 4 removed v0-v2 (KIP-896)")));
    }
    Ok((api_key, version, header))
}

/// A request body: its counts and lengths checked against the bytes received first
/// ([`super::wire`]: kafka-protocol allocates from them unchecked), then decoded.
pub(crate) fn decode_body<R: Decodable>(api_key: ApiKey, version: i16, body: &mut Bytes) -> Result<R, Reply> {
    if let Err(e) = super::wire::check_request(api_key as i16, version, body) {
        return Err(Reply::close(format!("malformed {api_key:?} v{version} request: {e}")));
    }
    R::decode(body, version).map_err(|e| Reply::close(format!("malformed {api_key:?} v{version} request: {e}")))
}

/// Handles one request frame (without its size prefix); `request_memory` is the frame's
/// reservation in the broker's memory pool.
pub(crate) async fn handle(state: &Arc<BrokerState>, peer: std::net::SocketAddr, mut body: Bytes, request_memory: Reservation) -> Reply {
    let (api_key, version, header) = match read_header(&mut body) {
        Ok(h) => h,
        Err(reply) => return reply,
    };
    let correlation_id = header.correlation_id;
    let client_id = header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let ctx = RequestContext { state: Arc::clone(state), version, client_id, peer };

    macro_rules! route {
        ($($api:ident => $request:ty => $handler:path),* $(,)?) => {
            match api_key {
                $(ApiKey::$api => {
                    let request = match decode_body::<$request>(api_key, version, &mut body) {
                        Ok(r) => r,
                        Err(reply) => return reply,
                    };
                    finish(api_key, version, correlation_id, $handler(&ctx, request).await, request_memory)
                })*
                // The Fetch response holds memory of its own until it is written.
                ApiKey::Fetch => {
                    let request = match decode_body::<m::FetchRequest>(api_key, version, &mut body) {
                        Ok(r) => r,
                        Err(reply) => return reply,
                    };
                    drop(request_memory);
                    let read = handlers::fetch::handle(&ctx, request);
                    Reply::Deferred(tokio::spawn(async move {
                        let (response, memory) = read.await;
                        match frame(api_key, version, correlation_id, &response) {
                            Outcome::Respond(bytes, _) => Outcome::Respond(bytes, memory),
                            other => other,
                        }
                    }))
                }
                other => Reply::close(format!("{other:?} has no handler")),
            }
        };
    }

    route! {
        ApiVersions => m::ApiVersionsRequest => handlers::api_versions::handle,
        Metadata => m::MetadataRequest => handlers::metadata::handle,
        Produce => m::ProduceRequest => handlers::produce::handle,
        ListOffsets => m::ListOffsetsRequest => handlers::list_offsets::handle,
        OffsetForLeaderEpoch => m::OffsetForLeaderEpochRequest => handlers::list_offsets::offset_for_leader_epoch,
        CreateTopics => m::CreateTopicsRequest => handlers::topics::create_topics,
        DeleteTopics => m::DeleteTopicsRequest => handlers::topics::delete_topics,
        CreatePartitions => m::CreatePartitionsRequest => handlers::topics::create_partitions,
        DeleteRecords => m::DeleteRecordsRequest => handlers::topics::delete_records,
        DescribeConfigs => m::DescribeConfigsRequest => handlers::configs::describe_configs,
        AlterConfigs => m::AlterConfigsRequest => handlers::configs::alter_configs,
        IncrementalAlterConfigs => m::IncrementalAlterConfigsRequest => handlers::configs::incremental_alter_configs,
        DescribeCluster => m::DescribeClusterRequest => handlers::metadata::describe_cluster,
        FindCoordinator => m::FindCoordinatorRequest => handlers::coordinator::handle,
        InitProducerId => m::InitProducerIdRequest => handlers::init_producer_id::handle,
        JoinGroup => m::JoinGroupRequest => handlers::groups::join_group,
        SyncGroup => m::SyncGroupRequest => handlers::groups::sync_group,
        Heartbeat => m::HeartbeatRequest => handlers::groups::heartbeat,
        LeaveGroup => m::LeaveGroupRequest => handlers::groups::leave_group,
        OffsetCommit => m::OffsetCommitRequest => handlers::groups::offset_commit,
        OffsetFetch => m::OffsetFetchRequest => handlers::groups::offset_fetch,
        DescribeGroups => m::DescribeGroupsRequest => handlers::groups::describe_groups,
        ListGroups => m::ListGroupsRequest => handlers::groups::list_groups,
        DeleteGroups => m::DeleteGroupsRequest => handlers::groups::delete_groups,
        OffsetDelete => m::OffsetDeleteRequest => handlers::groups::offset_delete,
        AddPartitionsToTxn => m::AddPartitionsToTxnRequest => handlers::txn::add_partitions,
        AddOffsetsToTxn => m::AddOffsetsToTxnRequest => handlers::txn::add_offsets,
        EndTxn => m::EndTxnRequest => handlers::txn::end_txn,
        TxnOffsetCommit => m::TxnOffsetCommitRequest => handlers::txn::txn_offset_commit,
        DescribeProducers => m::DescribeProducersRequest => handlers::txn_admin::describe_producers,
        DescribeTransactions => m::DescribeTransactionsRequest => handlers::txn_admin::describe_transactions,
        ListTransactions => m::ListTransactionsRequest => handlers::txn_admin::list_transactions,
        WriteTxnMarkers => m::WriteTxnMarkersRequest => handlers::txn_admin::write_txn_markers,
    }
}
