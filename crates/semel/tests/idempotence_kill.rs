//! The same idempotent Produce batch (producer id, epoch, base sequence) sent before and after
//! a kill -9 of the broker: the retry gets the original base offset and the log holds one copy.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{free_port, kill_9, start_semel};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

fn call<Q: Encodable + HeaderVersion, R: Decodable>(stream: &mut TcpStream, key: ApiKey, version: i16, request: &Q) -> R {
    let header = RequestHeader::default().with_request_api_key(key as i16).with_request_api_version(version).with_correlation_id(1);
    let mut body = BytesMut::new();
    header.encode(&mut body, Q::header_version(version)).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream.write_all(&frame).expect("write");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("size");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).expect("response");
    let mut response = Bytes::from(response);
    let _correlation = response.get_i32();
    if key.response_header_version(version) >= 1 {
        let _tagged = response.get_u8();
    }
    R::decode(&mut response, version).expect("decode")
}

fn batch(pid: i64, sequence: i32, count: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp: 1_900_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("v{}", sequence + i as i32))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None }).expect("encode");
    buf.freeze()
}

fn produce(stream: &mut TcpStream, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("kill")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, 9, &request);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn high_watermark(stream: &mut TcpStream) -> i64 {
    let request =
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("kill")))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)])]);
    let response: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, 5, &request);
    response.topics[0].partitions[0].offset
}

#[test]
fn a_batch_retried_after_kill_9_is_not_written_twice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let mut semel = start_semel(port, tmp.path());
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let create = CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("kill")))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    let created: CreateTopicsResponse = call(&mut stream, ApiKey::CreateTopics, 7, &create);
    assert_eq!(created.topics[0].error_code, 0);
    let init: InitProducerIdResponse = call(
        &mut stream,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    );
    let pid = init.producer_id.0;
    assert_eq!(produce(&mut stream, batch(pid, 0, 4)), (0, 0));
    assert_eq!(produce(&mut stream, batch(pid, 4, 3)), (0, 4));

    kill_9(&mut semel);
    let _semel = start_semel(port, tmp.path());
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("reconnect");
    assert_eq!(produce(&mut stream, batch(pid, 4, 3)), (0, 4), "the retry gets the original offset");
    assert_eq!(produce(&mut stream, batch(pid, 0, 4)), (0, 0), "so does an older batch of the window");
    assert_eq!(high_watermark(&mut stream), 7, "the log holds one copy");
    assert_eq!(produce(&mut stream, batch(pid, 9, 1)).0, 45, "a gap is still OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert_eq!(produce(&mut stream, batch(pid, 7, 1)), (0, 7), "and the next batch is appended");
}
