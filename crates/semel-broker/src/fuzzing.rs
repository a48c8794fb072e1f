//! Entry points for `fuzz/` (the cargo-fuzz targets), not an API: thin calls into the code that
//! reads bytes from clients, so that the fuzz crate can reach crate-internal functions. Each
//! returns whether the input was accepted; none may panic, abort or allocate far beyond its
//! input, and the checks that follow an accepted input panic when the broker's readers disagree.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as m, ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

use crate::server::versions::{self, PRODUCE_MIN_DECODABLE};
use crate::storage::batch::{self, BatchHeader, HEADER_SIZE};
use crate::storage::partition::CheckedBatches;
use crate::storage::records;

/// One request frame (after its 4-byte size) through what the broker does before a handler
/// runs: the size bound of `server::connection` (at least 8 bytes), then `server::dispatch`'s
/// own steps: the header, API and version ([`versions::read_header`]), the wire shape check and
/// the `kafka-protocol` decode ([`versions::decode_body`]) with the request type dispatch routes.
pub fn request(frame: &[u8]) -> Result<(ApiKey, i16), String> {
    if frame.len() < 8 {
        return Err(format!("request size {} is below 8", frame.len()));
    }
    let mut body = Bytes::copy_from_slice(frame);
    let (api_key, version, _header) = versions::read_header(&mut body).map_err(|reply| format!("{reply:?}"))?;
    decode(api_key, &mut body, version)?;
    Ok((api_key, version))
}

/// Every API dispatch routes, with the request type it decodes (dispatch's route list).
macro_rules! requests {
    ($callback:ident) => {
        $callback! {
            ApiVersions => m::ApiVersionsRequest,
            Metadata => m::MetadataRequest,
            Produce => m::ProduceRequest,
            Fetch => m::FetchRequest,
            ListOffsets => m::ListOffsetsRequest,
            OffsetForLeaderEpoch => m::OffsetForLeaderEpochRequest,
            CreateTopics => m::CreateTopicsRequest,
            DeleteTopics => m::DeleteTopicsRequest,
            CreatePartitions => m::CreatePartitionsRequest,
            DeleteRecords => m::DeleteRecordsRequest,
            DescribeConfigs => m::DescribeConfigsRequest,
            AlterConfigs => m::AlterConfigsRequest,
            IncrementalAlterConfigs => m::IncrementalAlterConfigsRequest,
            DescribeCluster => m::DescribeClusterRequest,
            FindCoordinator => m::FindCoordinatorRequest,
            InitProducerId => m::InitProducerIdRequest,
            JoinGroup => m::JoinGroupRequest,
            SyncGroup => m::SyncGroupRequest,
            Heartbeat => m::HeartbeatRequest,
            LeaveGroup => m::LeaveGroupRequest,
            OffsetCommit => m::OffsetCommitRequest,
            OffsetFetch => m::OffsetFetchRequest,
            DescribeGroups => m::DescribeGroupsRequest,
            ListGroups => m::ListGroupsRequest,
            DeleteGroups => m::DeleteGroupsRequest,
            OffsetDelete => m::OffsetDeleteRequest,
            AddPartitionsToTxn => m::AddPartitionsToTxnRequest,
            AddOffsetsToTxn => m::AddOffsetsToTxnRequest,
            EndTxn => m::EndTxnRequest,
            TxnOffsetCommit => m::TxnOffsetCommitRequest,
            DescribeProducers => m::DescribeProducersRequest,
            DescribeTransactions => m::DescribeTransactionsRequest,
            ListTransactions => m::ListTransactionsRequest,
            WriteTxnMarkers => m::WriteTxnMarkersRequest,
        }
    };
}

/// Checks and decodes a request body as dispatch does, with the type dispatch decodes it with.
fn decode(api_key: ApiKey, body: &mut Bytes, version: i16) -> Result<(), String> {
    macro_rules! arms {
        ($($api:ident => $request:ty),* $(,)?) => {
            match api_key {
                $(ApiKey::$api => versions::decode_body::<$request>(api_key, version, body).map(drop).map_err(|reply| format!("{reply:?}")),)*
                other => Err(format!("{other:?} has no handler")),
            }
        };
    }
    requests!(arms)
}

/// Every API and version semel supports (Produce from the first it decodes).
pub fn supported_versions() -> Vec<(ApiKey, i16)> {
    let mut all = Vec::new();
    for s in versions::SUPPORTED {
        let min = if s.key == ApiKey::Produce { PRODUCE_MIN_DECODABLE } else { s.min };
        all.extend((min..=s.max).map(|v| (s.key, v)));
    }
    all
}

/// A request frame (without its size): a header for `api_key` at `version`, then `body`.
pub fn frame(api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, api_key.request_header_version(version)).expect("encode a header");
    buf.extend_from_slice(body);
    buf.to_vec()
}

/// Seed bodies: the default request of every supported API and version, encoded.
pub fn seed_requests() -> Vec<(ApiKey, i16, Vec<u8>)> {
    fn encode<R: Encodable + Default>(version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        R::default().encode(&mut buf, version).expect("encode a default request");
        buf.to_vec()
    }
    macro_rules! arms {
        ($($api:ident => $request:ty),* $(,)?) => {
            supported_versions()
                .into_iter()
                .map(|(api_key, version)| {
                    let body = match api_key {
                        $(ApiKey::$api => encode::<$request>(version),)*
                        other => panic!("{other:?} is supported but has no request type here"),
                    };
                    (api_key, version, body)
                })
                .collect()
        };
    }
    requests!(arms)
}

/// A Produce request's `records` for one partition through the checks produce applies before
/// appending ([`CheckedBatches::check`]: framing, CRC, max.message.bytes, bounded decompression,
/// every record). When they pass, each batch is stamped as an append stamps it and read back by
/// what reads stored batches (recovery's check, ListOffsets' timestamp lookups, the cleaner's
/// decode and rebuild), which must accept it and agree with the check on every record.
pub fn produced_records(records: &[u8], compacted: bool, log_append_time: bool, max_decompressed: usize) -> Result<(), String> {
    let mut overrides = BTreeMap::new();
    if compacted {
        overrides.insert("cleanup.policy".to_string(), "compact".to_string());
    }
    if log_append_time {
        overrides.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
    }
    let settings = crate::metadata::config::resolve(&overrides, &crate::config::LogDefaults::default());
    CheckedBatches::check(records, &settings, max_decompressed).map_err(|e| e.to_string())?;
    let mut base_offset = 1_000;
    for slice in batch::split_batches(records).expect("split after the check") {
        let mut stored = slice.to_vec();
        batch::assign_offset(&mut stored, base_offset, 0);
        if log_append_time {
            batch::set_log_append_time(&mut stored, 1_700_000_000_000);
        }
        base_offset = read_back(&stored, base_offset);
    }
    Ok(())
}

/// Reads a stored batch (starting at `base_offset`) as the broker's readers do; returns the
/// next offset.
fn read_back(stored: &[u8], base_offset: i64) -> i64 {
    let header = batch::check_framing_and_crc(stored).expect("a stored batch passes recovery's check");
    let count = i64::from(header.records_count);
    let last = base_offset + count - 1;
    assert_eq!(header.last_offset(), last);
    let in_batch = |offset: i64| (base_offset..=last).contains(&offset);
    let (max_at, _) = batch::offset_of_max_timestamp(stored).expect("ListOffsets reads an accepted batch");
    assert!(in_batch(max_at), "offset of the max timestamp {max_at} outside {base_offset}..={last}");
    let first = batch::first_offset_with_timestamp(stored, i64::MIN).expect("ListOffsets reads an accepted batch");
    assert!(first.is_some_and(|(offset, _)| in_batch(offset)), "first offset {first:?} outside {base_offset}..={last}");
    let decoded = records::decode(stored, &header).expect("the cleaner decodes an accepted batch");
    assert_eq!(decoded.records.len() as i64, count);
    for (i, record) in decoded.records.iter().enumerate() {
        assert_eq!(record.offset, base_offset + i as i64, "record {i}: the cleaner's offset");
    }
    // The cleaner keeping every record writes a batch that passes produce's own checks and
    // decodes to the same records.
    let all: Vec<usize> = (0..decoded.records.len()).collect();
    let rebuilt = records::rebuild(stored, &header, &decoded, &all, None).expect("rebuild");
    let rebuilt_header = batch::check_framing_and_crc(&rebuilt).expect("a rebuilt batch passes recovery's check");
    batch::validate_records(&rebuilt, &rebuilt_header, false, crate::storage::decompress::MAX_DECOMPRESSED_BYTES)
        .expect("a rebuilt batch passes produce's record check");
    let again = records::decode(&rebuilt, &rebuilt_header).expect("decode the rebuilt batch");
    for (a, b) in decoded.records.iter().zip(&again.records) {
        assert_eq!((a.offset, a.timestamp, a.tombstone), (b.offset, b.timestamp, b.tombstone));
        assert_eq!(decoded.key(a), again.key(b));
    }
    last + 1
}

/// Makes `batch` a well-framed batch for the fuzzer to get past the framing: magic 2, the batch
/// length of the bytes given, the CRC of its bytes. Shorter than a header: left as it is.
pub fn frame_batch(batch: &mut [u8]) {
    if batch.len() < HEADER_SIZE {
        return;
    }
    let length = (batch.len() - batch::LOG_OVERHEAD) as i32;
    batch[batch::BATCH_LENGTH..batch::BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    batch[batch::MAGIC] = 2;
    let crc = batch::compute_crc(batch);
    batch[batch::CRC..batch::CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A framed batch of `count` records whose (uncompressed) bytes are `raw`, compressed with
/// `codec` (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) as the broker's cleaner compresses; the
/// header fields other than the framing, attributes' codec and count come from `header`.
pub fn build_batch(header: &[u8; HEADER_SIZE], codec: i16, count: i32, raw: &[u8]) -> Vec<u8> {
    let payload = match codec {
        0 => raw.to_vec(),
        codec => records::compress(codec, raw).expect("compress"),
    };
    let mut out = header.to_vec();
    let attributes = (i16::from_be_bytes([out[batch::ATTRIBUTES], out[batch::ATTRIBUTES + 1]]) & !0x07) | codec;
    out[batch::ATTRIBUTES..batch::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    out[batch::LAST_OFFSET_DELTA..batch::LAST_OFFSET_DELTA + 4].copy_from_slice(&(count - 1).to_be_bytes());
    out[batch::RECORDS_COUNT..batch::RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&payload);
    frame_batch(&mut out);
    out
}

/// The header of `batch`, if it has one.
pub fn batch_header(batch: &[u8]) -> Option<BatchHeader> {
    BatchHeader::parse(batch).ok()
}

/// One codec's bounded decompression (`storage::decompress`), as produce runs it.
pub fn decompress(codec: i16, payload: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    crate::storage::decompress::decompress(codec, payload, limit).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_request_passes_the_dispatch_path() {
        let seeds = seed_requests();
        assert!(seeds.len() > 100, "{} seeds", seeds.len());
        for (api_key, version, body) in seeds {
            assert_eq!(request(&frame(api_key, version, &body)), Ok((api_key, version)));
        }
    }
}
