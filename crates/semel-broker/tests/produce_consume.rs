//! Real clients (librdkafka through the `rdkafka` crate) against an in-process broker.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::Producer;
use rdkafka::ClientConfig;

async fn round_trip(codec: &str) {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let topic = format!("codec-{codec}");
    let partitions = 4;
    create_topic(&bootstrap, &topic, partitions, &[]).await;
    let producer = producer(&bootstrap, &[("compression.type", codec), ("batch.num.messages", "1000")]);
    let count = 100_000;
    let sent = produce_sequence(&producer, &topic, partitions, count, 20).await;
    producer.flush(Duration::from_secs(30)).expect("flush");
    let got = consume_all(&bootstrap, &topic, partitions, count, &[]);
    for (partition, values) in &sent {
        let received = got.get(partition).cloned().unwrap_or_default();
        assert_eq!(received.len(), values.len(), "codec {codec}: partition {partition} count");
        for (i, ((offset, key, value), expected)) in received.iter().zip(values).enumerate() {
            assert_eq!(*offset, i as i64, "codec {codec}: partition {partition} offsets are dense from 0");
            assert_eq!(value, expected, "codec {codec}: partition {partition} message {i}");
            assert_eq!(key, expected, "codec {codec}: partition {partition} key {i}");
        }
    }
    // Batches are stored as the client compressed them.
    let expected_codec = ["none", "gzip", "snappy", "lz4", "zstd"].iter().position(|c| *c == codec).expect("codec") as i16;
    let (mut with_codec, mut total) = (0usize, 0usize);
    for partition in 0..partitions {
        for entry in std::fs::read_dir(broker.dir.join(format!("{topic}-{partition}"))).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("segment");
            let mut at = 0;
            while at + 61 <= bytes.len() {
                let length = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
                let attributes = i16::from_be_bytes(bytes[at + 21..at + 23].try_into().expect("2"));
                let records = i32::from_be_bytes(bytes[at + 57..at + 61].try_into().expect("4")) as usize;
                total += records;
                if attributes & 0x7 == expected_codec {
                    with_codec += records;
                }
                at += 12 + length;
            }
        }
    }
    assert_eq!(total, count);
    assert!(with_codec * 10 >= total * 9, "codec {codec}: only {with_codec} of {total} records are stored with it");
    broker.broker.expect("running").shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_uncompressed() {
    round_trip("none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_gzip() {
    round_trip("gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_snappy() {
    round_trip("snappy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_lz4() {
    round_trip("lz4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_zstd() {
    round_trip("zstd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_data_survive_a_clean_restart() {
    let mut broker = TestBroker::start().await;
    let topic = "durable";
    create_topic(&broker.bootstrap(), topic, 3, &[("internal.segment.bytes", "20000")]).await;
    let producer = producer(&broker.bootstrap(), &[]);
    let sent = produce_sequence(&producer, topic, 3, 3000, 50).await;
    drop(producer);
    broker.restart().await;
    let got = consume_all(&broker.bootstrap(), topic, 3, 3000, &[]);
    for (partition, values) in &sent {
        let received: Vec<&String> = got[partition].iter().map(|(_, _, v)| v).collect();
        assert_eq!(received, values.iter().collect::<Vec<_>>(), "partition {partition}");
    }
    // New writes continue after the old ones.
    let second = common::producer(&broker.bootstrap(), &[]);
    produce_sequence(&second, topic, 3, 30, 5).await;
    let got = consume_all(&broker.bootstrap(), topic, 3, 3030, &[]);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 3030);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_topic_gets_the_default_partition_count() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let producer = producer(&bootstrap, &[]);
    let record = rdkafka::producer::FutureRecord::to("auto-created").key("k").payload("v");
    let delivery = producer.send(record, Duration::from_secs(10)).await.expect("delivered");
    assert_eq!((delivery.partition, delivery.offset), (0, 0));
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("consumer");
    let md = consumer.fetch_metadata(Some("auto-created"), Duration::from_secs(60)).expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 1);
    assert_eq!(md.brokers().len(), 1);
}
