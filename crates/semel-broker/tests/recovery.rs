//! Start-up recovery: torn and corrupt segment tails are truncated to the last good batch,
//! and the broker serves everything before it and accepts new writes after it.

mod common;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use common::*;

/// Produces `batches` batches of `per_batch` messages to partition 0 (one flush each, so each
/// send is its own batch) and stops the broker cleanly.
async fn fill(broker: &mut TestBroker, topic: &str, batches: usize, per_batch: usize) -> Vec<String> {
    create_topic(&broker.bootstrap(), topic, 1, &[]).await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    let mut values = Vec::new();
    for b in 0..batches {
        // Sent together, awaited together: librdkafka batches them (how many per batch is
        // its choice; the tests read the batch layout from the file).
        let mut futures = Vec::new();
        for i in 0..per_batch {
            let value = format!("batch{b}-msg{i}");
            values.push(value.clone());
            let record = rdkafka::producer::FutureRecord::<str, str>::to(topic).partition(0).payload(&value);
            futures.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
        }
        for f in futures {
            f.await.expect("future").expect("delivered");
        }
    }
    broker.stop().await;
    values
}

fn last_segment(dir: &std::path::Path, topic: &str) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join(format!("{topic}-0")))
        .expect("partition dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

/// Byte positions where each batch starts in a segment file, and the number of records
/// before each batch.
fn batch_starts(path: &std::path::Path) -> (Vec<u64>, Vec<usize>) {
    let bytes = std::fs::read(path).expect("read segment");
    let (mut starts, mut records_before) = (Vec::new(), Vec::new());
    let (mut at, mut records) = (0usize, 0usize);
    while at + 61 <= bytes.len() {
        starts.push(at as u64);
        records_before.push(records);
        let length = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().expect("4")) as usize;
        records += i32::from_be_bytes(bytes[at + 57..at + 61].try_into().expect("4")) as usize;
        at += 12 + length;
    }
    (starts, records_before)
}

async fn check_serves_prefix_and_accepts_writes(broker: &mut TestBroker, topic: &str, expected: &[String]) {
    broker.start_again().await;
    let got = consume_all(&broker.bootstrap(), topic, 1, expected.len(), &[]);
    let values: Vec<String> = got.get(&0).map(|v| v.iter().map(|(_, _, v)| v.clone()).collect()).unwrap_or_default();
    assert_eq!(values, expected, "everything before the damaged batch, nothing after");
    let producer = producer(&broker.bootstrap(), &[]);
    let delivery = producer
        .send(rdkafka::producer::FutureRecord::<str, str>::to(topic).partition(0).payload("after"), std::time::Duration::from_secs(10))
        .await
        .expect("new write accepted");
    assert_eq!(delivery.offset, expected.len() as i64, "the new write goes right after the kept data");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated() {
    let mut broker = TestBroker::start().await;
    let values = fill(&mut broker, "torn", 5, 10).await;
    let segment = last_segment(&broker.dir, "torn");
    let (starts, before) = batch_starts(&segment);
    assert!(starts.len() >= 2, "several batches");
    // Cut the last batch in its middle, as a crash during the write would.
    let len = std::fs::metadata(&segment).expect("meta").len();
    let last = starts.len() - 1;
    let cut = starts[last] + (len - starts[last]) / 2;
    std::fs::OpenOptions::new().write(true).open(&segment).expect("open").set_len(cut).expect("truncate");
    check_serves_prefix_and_accepts_writes(&mut broker, "torn", &values[..before[last]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_the_last_batch_is_truncated() {
    let mut broker = TestBroker::start().await;
    let values = fill(&mut broker, "flipped", 5, 10).await;
    let segment = last_segment(&broker.dir, "flipped");
    let (starts, before) = batch_starts(&segment);
    let last = starts.len() - 1;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&segment).expect("open");
    // Flip one byte in the records of the last batch (covered by its CRC).
    let at = starts[last] + 62;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).expect("read");
    byte[0] ^= 0x5a;
    file.write_all_at(&byte, at).expect("write");
    check_serves_prefix_and_accepts_writes(&mut broker, "flipped", &values[..before[last]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_in_the_middle_drops_everything_after_it() {
    let mut broker = TestBroker::start().await;
    let values = fill(&mut broker, "middle", 5, 10).await;
    let segment = last_segment(&broker.dir, "middle");
    let (starts, before) = batch_starts(&segment);
    assert!(starts.len() >= 3, "several batches");
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&segment).expect("open");
    file.write_all_at(&[0xff, 0xff, 0xff, 0xff], starts[1] + 17).expect("clobber the CRC of batch 1");
    check_serves_prefix_and_accepts_writes(&mut broker, "middle", &values[..before[1]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_garbage_indexes_are_rebuilt() {
    let mut broker = TestBroker::start().await;
    create_topic(&broker.bootstrap(), "idx", 1, &[("internal.segment.bytes", "3000"), ("index.interval.bytes", "200")]).await;
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    let mut sent = std::collections::BTreeMap::new();
    let mut values = Vec::new();
    for i in 0..400 {
        // One message per batch, so the segments roll many times.
        let value = format!("message-{i:04}-{}", "y".repeat(40));
        producer
            .send(rdkafka::producer::FutureRecord::<str, str>::to("idx").partition(0).payload(&value), std::time::Duration::from_secs(10))
            .await
            .expect("delivered");
        values.push(value);
    }
    sent.insert(0, values);
    drop(producer);
    broker.stop().await;
    let dir = broker.dir.join("idx-0");
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("e").path())
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect();
    indexes.sort();
    assert!(indexes.len() > 3, "several segments");
    std::fs::remove_file(&indexes[0]).expect("remove an index");
    std::fs::write(&indexes[1], b"garbage").expect("garbage index");
    broker.start_again().await;
    let got = consume_all(&broker.bootstrap(), "idx", 1, 400, &[]);
    let values: Vec<&String> = got[&0].iter().map(|(_, _, v)| v).collect();
    assert_eq!(values, sent[&0].iter().collect::<Vec<_>>());
    // Fetching from the middle of the log works through the rebuilt indexes.
    let consumer: rdkafka::consumer::BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).set("group.id", "x").create().expect("consumer");
    use rdkafka::consumer::Consumer;
    use rdkafka::message::Message;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("idx", 0, rdkafka::Offset::Offset(257)).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let message = loop {
        if let Some(m) = consumer.poll(std::time::Duration::from_secs(5)) {
            break m.expect("message").detach();
        }
    };
    assert_eq!(message.offset(), 257);
    assert_eq!(message.payload(), Some(sent[&0][257].as_bytes()));
    broker.stop().await;
}
