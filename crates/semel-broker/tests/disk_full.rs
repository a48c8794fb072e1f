//! A full disk answers KAFKA_STORAGE_ERROR, takes the log directory offline, and damages
//! nothing already acknowledged. The data directory is a small tmpfs (needs root to mount;
//! the test says so and passes vacuously without it).

mod common;

use bytes::Bytes;
use common::config_for;
use common::raw::{keyless_batch, RawClient};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(value: &str) -> Bytes {
    keyless_batch(&[value], 1_900_000_000_000)
}

async fn produce(client: &mut RawClient, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(name("full"))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &std::path::Path, size: &str, remount: bool) -> bool {
    let options = if remount { format!("remount,size={size}") } else { format!("size={size}") };
    std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &options, "tmpfs"]).arg(dir).status().is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_answers_storage_error_and_keeps_acknowledged_data() {
    common::init_logging();
    let tmp = tempfile::tempdir().expect("tmp");
    if !mount_tmpfs(tmp.path(), "1m", false) {
        eprintln!("disk_full: cannot mount a tmpfs (not root?); nothing tested");
        return;
    }
    let _mount = Mount(tmp.path().to_path_buf());
    let data_dir = tmp.path().join("data");
    let broker = semel_broker::Broker::start(config_for(&data_dir)).await.expect("start");
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("full")).with_num_partitions(1).with_replication_factor(1);
    let response: CreateTopicsResponse =
        client.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic])).await;
    assert_eq!(response.topics[0].error_code, 0);

    let payload = "z".repeat(20_000);
    let mut acknowledged = Vec::new();
    let mut storage_error = false;
    for i in 0..200 {
        let value = format!("{i:04}-{payload}");
        match produce(&mut client, batch(&value)).await {
            (0, offset) => acknowledged.push((offset, value)),
            (56, _) => {
                storage_error = true;
                break;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(storage_error, "the 1 MiB disk filled up and produce answered KAFKA_STORAGE_ERROR");
    assert!(!acknowledged.is_empty());
    assert_eq!(produce(&mut client, batch("after")).await.0, 56, "the log directory stays offline");
    broker.shutdown().await;

    // More room, restart: every acknowledged record is there, intact, and writes work again.
    assert!(mount_tmpfs(tmp.path(), "16m", true), "remount larger");
    let broker = semel_broker::Broker::start(config_for(&data_dir)).await.expect("restart");
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let mut values = Vec::new();
    let mut offset = 0i64;
    while values.len() < acknowledged.len() {
        let request =
            FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
                .with_topic(name("full"))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)
                    .with_current_leader_epoch(-1)])]);
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request).await;
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let mut records = partition.records.clone().expect("records");
        assert!(!records.is_empty(), "only {} of {} acknowledged records came back", values.len(), acknowledged.len());
        for set in RecordBatchDecoder::decode_all(&mut records).expect("decode") {
            for r in set.records {
                values.push((r.offset, String::from_utf8(r.value.expect("value").to_vec()).expect("utf8")));
                offset = r.offset + 1;
            }
        }
    }
    assert_eq!(values[..acknowledged.len()], acknowledged[..]);
    assert_eq!(produce(&mut client, batch("after")).await.0, 0);
    broker.shutdown().await;
}
