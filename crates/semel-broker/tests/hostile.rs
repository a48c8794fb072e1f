//! Hostile requests at the protocol edge: whatever a client claims in a count or a length, the
//! broker answers or closes that connection, stays up, and allocates by what it received.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::raw::{keyless_batch, RawClient};
use common::{process_status_bytes, reset_peak_rss, TestBroker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// A request frame body: header (v1 or v2 as the API wants) and `body`.
fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
    let key = ApiKey::try_from(api_key).expect("known key");
    let header = RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("hostile")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, key.request_header_version(version)).expect("header");
    buf.put_slice(body);
    buf.freeze()
}

/// Sends `frame`, then an ApiVersions probe on the same connection; true if the probe was
/// answered (the connection survived), false if the broker closed it.
async fn send_and_probe(client: &mut RawClient, frame: &[u8]) -> bool {
    client.send_frame(frame).await;
    client.send_frame(&request(ApiKey::ApiVersions as i16, 0, PROBE, &[])).await;
    // Responses come in order; the hostile request may have none (acks=0).
    while let Some(mut response) = client.read_frame().await {
        if response.len() >= 4 && response.get_i32() == PROBE {
            return true;
        }
    }
    false
}

const PROBE: i32 = 424_242;

/// The tests of this file measure the memory of their process, so they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximal_counts_and_lengths_in_every_request_leave_the_broker_up_and_its_memory_flat() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = TestBroker::start().await;
    let addr = broker.bootstrap();
    let mut client = RawClient::connect(&addr).await;
    let advertised: ApiVersionsResponse = client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(advertised.error_code, 0);

    // Each field of a body of zeros is 0, empty or null; the pattern overwrites whatever field
    // starts at `at` with the largest count or length of each encoding: i32::MAX (arrays,
    // bytes), i16::MAX (strings), the largest unsigned varint (flexible versions).
    let patterns: [&[u8]; 3] = [&[0x7f, 0xff, 0xff, 0xff], &[0x7f, 0xff], &[0xff, 0xff, 0xff, 0xff, 0x0f]];
    // Reset the peak RSS, so that VmHWM afterwards is the peak of this run.
    reset_peak_rss();
    let before = process_status_bytes("VmRSS:");
    let (mut answered, mut closed) = (0, 0);
    for api in &advertised.api_keys {
        let versions = api.min_version.max(if api.api_key == ApiKey::Produce as i16 { 3 } else { 0 })..=api.max_version;
        for version in versions {
            for at in 0..=24 {
                for pattern in patterns {
                    let mut body = vec![0u8; at];
                    body.extend_from_slice(pattern);
                    body.extend_from_slice(&[0u8; 16]);
                    if send_and_probe(&mut client, &request(api.api_key, version, 1, &body)).await {
                        answered += 1;
                    } else {
                        closed += 1;
                        client = RawClient::connect(&addr).await;
                    }
                }
            }
        }
    }
    let peak = process_status_bytes("VmHWM:");
    eprintln!("{answered} answered, {closed} closed; RSS {} MiB before, peak {} MiB", before >> 20, peak >> 20);
    assert!(closed > 1_000, "only {closed} hostile requests were refused");
    // Generous: the in-process broker, the test's buffers and allocator slack.
    assert!(peak < before + (256 << 20), "RSS peaked at {} MiB, {} MiB before", peak >> 20, before >> 20);
    // Still up: a fresh connection is answered.
    let mut fresh = RawClient::connect(&addr).await;
    let again: ApiVersionsResponse = fresh.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(again.error_code, 0);
}

/// The reproduction of the report: 18 bytes, Metadata v1 claiming 2^31-1 topics.
#[tokio::test]
async fn the_18_byte_metadata_request_closes_only_its_connection() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = TestBroker::start().await;
    let addr = broker.bootstrap();
    let mut client = RawClient::connect(&addr).await;
    let mut frame = BytesMut::new();
    frame.put_i16(3); // Metadata
    frame.put_i16(1);
    frame.put_i32(1);
    frame.put_i16(-1); // no client id
    frame.put_i32(0x7fff_ffff);
    assert_eq!(frame.len() + 4, 18);
    client.send_frame(&frame).await;
    assert!(client.is_closed_by_broker().await, "the connection stays open");
    let mut other = RawClient::connect(&addr).await;
    let answer: ApiVersionsResponse = other.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(answer.error_code, 0);
}

/// A record whose value length runs past the record, in a batch whose CRC is right: refused
/// with INVALID_RECORD (as Kafka's `DefaultRecord.readFrom`), and nothing is stored.
#[tokio::test]
async fn a_poison_record_with_a_correct_crc_is_refused_and_nothing_is_stored() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};

    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = TestBroker::start().await;
    common::create_topic(&broker.bootstrap(), "poison", 1, &[]).await;
    let good = keyless_batch(&["one"], 1_000).to_vec();
    // The record after the 61-byte header: length, attributes, timestamp delta, offset delta,
    // key length (-1), value length (3, zig-zag 6): claim 63 instead, and fix the CRC.
    let mut poison = good.clone();
    assert_eq!(poison[66], 0x06, "the value length's byte");
    poison[66] = 0x7e;
    let crc = crc32c::crc32c(&poison[21..]);
    poison[17..21].copy_from_slice(&crc.to_be_bytes());

    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let produce = |records: Vec<u8>| {
        ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("poison")))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records)))])])
    };
    let refused: ProduceResponse = client.call(ApiKey::Produce, 9, &produce(poison)).await;
    let partition = &refused.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 87, "INVALID_RECORD: {:?}", partition.error_message);
    let accepted: ProduceResponse = client.call(ApiKey::Produce, 9, &produce(good)).await;
    let partition = &accepted.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (0, 0), "the refused batch took no offset");
}

/// A batch whose records are `payload` compressed with `codec` (attributes bits 0-2), with a
/// right CRC, claiming one record.
fn compressed_batch(codec: i16, payload: &[u8]) -> Vec<u8> {
    let plain = keyless_batch(&["x"], 1_000);
    let mut batch = plain[..61].to_vec();
    batch.extend_from_slice(payload);
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let attributes = (i16::from_be_bytes([batch[21], batch[22]]) & !0x07) | codec;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

async fn produce_raw(client: &mut RawClient, topic: &str, records: Vec<u8>) -> i16 {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records)))])]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
    response.responses[0].partition_responses[0].error_code
}

/// Decompression bombs (1 GiB of zeros in gzip and zstd, 200 MiB in lz4; a snappy block
/// claiming 4 GiB)
/// are refused once the output passes `max_decompressed_batch_bytes` (64 MiB by default): the
/// broker's memory grows by about that much, not by the claim, and a normal produce after them
/// is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_stop_at_the_limit() {
    use std::io::Write;
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = TestBroker::start().await;
    common::create_topic(&broker.bootstrap(), "bombs", 1, &[]).await;
    let zeros = vec![0u8; 1 << 20];
    let mut bombs: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut zstd = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    let mut lz4 = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
    for i in 0..1024 {
        gzip.write_all(&zeros).expect("gzip");
        zstd.write_all(&zeros).expect("zstd");
        // lz4 compresses zeros 250 to 1 at best: 200 MiB stays under max.message.bytes.
        if i < 200 {
            lz4.write_all(&zeros).expect("lz4");
        }
    }
    bombs.push(("gzip", compressed_batch(1, &gzip.finish().expect("gzip"))));
    bombs.push(("lz4", compressed_batch(3, &lz4.finish().0)));
    bombs.push(("zstd", compressed_batch(4, &zstd.finish().expect("zstd"))));
    bombs.push(("snappy", compressed_batch(2, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'x'])));
    drop(zeros);

    let mut client = RawClient::connect(&broker.bootstrap()).await;
    reset_peak_rss();
    let before = process_status_bytes("VmRSS:");
    for (codec, bomb) in bombs {
        assert!(bomb.len() < 8 << 20, "{codec}: a {} byte bomb", bomb.len());
        assert_eq!(produce_raw(&mut client, "bombs", bomb).await, 2, "{codec}: CORRUPT_MESSAGE");
    }
    let peak = process_status_bytes("VmHWM:");
    eprintln!("RSS {} MiB before, peak {} MiB", before >> 20, peak >> 20);
    assert!(peak < before + (200 << 20), "RSS peaked at {} MiB, {} MiB before", peak >> 20, before >> 20);
    // A normal compressed batch still goes in.
    let mut fine = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut record = vec![0x0e, 0x00, 0x00, 0x00, 0x01, 0x02, b'x', 0x00];
    record[0] = ((record.len() - 1) * 2) as u8;
    fine.write_all(&record).expect("gzip");
    assert_eq!(produce_raw(&mut client, "bombs", compressed_batch(1, &fine.finish().expect("gzip"))).await, 0);
}

/// The coordinators' internal logs are not client topics: creating one is refused
/// (INVALID_REQUEST), producing to one too (INVALID_TOPIC_EXCEPTION, as Kafka's
/// ReplicaManager answers), and Metadata does not auto-create one.
#[tokio::test]
async fn internal_topic_names_are_refused() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName};
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    for name in ["__consumer_offsets", "__transaction_state"] {
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(1)
            .with_replication_factor(1);
        let created: CreateTopicsResponse =
            client.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(30_000)).await;
        assert_eq!(created.topics[0].error_code, 42, "{name}: INVALID_REQUEST");
        let metadata: MetadataResponse = client
            .call(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default()
                    .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(name))))]))
                    .with_allow_auto_topic_creation(true),
            )
            .await;
        assert_eq!(metadata.topics[0].error_code, 3, "{name}: not auto-created");
        assert_eq!(produce_raw(&mut client, name, compressed_batch(0, &[0x0e, 0x00, 0x00, 0x00, 0x01, 0x02, b'x', 0x00])).await, 17);
    }
}
