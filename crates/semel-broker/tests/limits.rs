//! What one connection, and all of them together, can make the broker hold: Fetch responses
//! capped by `fetch_max_bytes` with repeated partitions read once, the memory pool
//! (`max_buffered_bytes`) under clients that do not read or that stall mid-frame,
//! `request_receive_timeout_ms`, `connections_max_idle_ms` and `max_connections_per_ip`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::raw::RawClient;
use common::{
    config_for, consume_all, create_topic, process_status_bytes, produce_sequence, producer, reset_peak_rss, wait_until, TestBroker,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use semel_broker::BrokerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const MIB: usize = 1024 * 1024;

/// The tests of this file measure the memory of their process, so they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(configure: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
    common::init_logging();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = config_for(tmp.path());
    configure(&mut config);
    TestBroker::start_with(config, tmp).await
}

fn broker_of(b: &TestBroker) -> &semel_broker::Broker {
    b.broker.as_ref().expect("running")
}

/// `(topic, partition, fetch_offset)` in the order listed, each its own topic entry.
fn fetch_request(wanted: &[(&str, i32, i64)], max_bytes: i32, max_wait_ms: i32) -> FetchRequest {
    let topics = wanted
        .iter()
        .map(|(topic, partition, offset)| {
            FetchTopic::default().with_topic(TopicName(StrBytes::from_string(topic.to_string()))).with_partitions(vec![
                FetchPartition::default().with_partition(*partition).with_fetch_offset(*offset).with_partition_max_bytes(i32::MAX),
            ])
        })
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(topics)
}

async fn api_versions_answered(addr: &str) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else { return false };
    let mut client = RawClient::from_stream(stream);
    client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    client.read_frame().await.is_some()
}

/// Fills `topic` (1 partition) with about `total` bytes in batches of at most 128 KiB.
async fn fill(bootstrap: &str, topic: &str, total: usize) -> usize {
    create_topic(bootstrap, topic, 1, &[]).await;
    let producer = producer(bootstrap, &[("batch.size", "131072"), ("compression.type", "none")]);
    let count = total / (16 * 1024);
    produce_sequence(&producer, topic, 1, count, 16 * 1024).await;
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_reads_each_partition_once_and_at_most_fetch_max_bytes() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = start(|c| c.fetch_max_bytes = MIB).await;
    let addr = broker.bootstrap();
    fill(&addr, "capped", 4 * MIB).await;
    create_topic(&addr, "other", 2, &[]).await;

    // One partition listed 50 times, asking for everything: read once, at most 1 MiB.
    let mut client = RawClient::connect(&addr).await;
    let fifty: Vec<(&str, i32, i64)> = (0..50).map(|_| ("capped", 0, 0)).collect();
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch_request(&fifty, i32::MAX, 0)).await;
    assert_eq!(response.responses.len(), 1, "the partition is answered once");
    let partitions = &response.responses[0].partitions;
    assert_eq!(partitions.len(), 1);
    let bytes = partitions[0].records.as_ref().map_or(0, |r| r.len());
    assert!(bytes > 0 && bytes <= MIB, "{bytes} record bytes: at most fetch_max_bytes (1 MiB) of the 4 MiB");

    // Kafka's order: each partition where first listed, with its last values; consecutive
    // partitions of one topic share an entry.
    let listed = [("other", 0, 0), ("capped", 0, 0), ("other", 1, 0), ("other", 0, 1_000_000)];
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch_request(&listed, i32::MAX, 0)).await;
    let shape: Vec<(String, Vec<(i32, i16)>)> = response
        .responses
        .iter()
        .map(|t| (t.topic.to_string(), t.partitions.iter().map(|p| (p.partition_index, p.error_code)).collect()))
        .collect();
    // other-0 was last asked from offset 1,000,000: OFFSET_OUT_OF_RANGE (1).
    let expected = vec![("other".to_string(), vec![(0, 1)]), ("capped".to_string(), vec![(0, 0)]), ("other".to_string(), vec![(1, 0)])];
    assert_eq!(shape, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_read_hold_at_most_the_memory_pool() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let pool = 8 * MIB;
    let broker = start(|c| {
        c.max_request_bytes = MIB;
        c.fetch_max_bytes = MIB;
        c.max_buffered_bytes = pool;
    })
    .await;
    let addr = broker.bootstrap();
    let count = fill(&addr, "unread", 4 * MIB).await;

    // A client that sends Fetch after Fetch and reads nothing (a tiny receive buffer, so the
    // kernel holds little for it).
    async fn non_reader(addr: &str, fetches: usize) -> RawClient {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("rcvbuf");
        let stream = socket.connect(addr.parse().expect("addr")).await.expect("connect");
        let mut client = RawClient::from_stream(stream);
        for _ in 0..fetches {
            client.send(ApiKey::Fetch, 12, &fetch_request(&[("unread", 0, 0)], i32::MAX, 0)).await;
        }
        client
    }

    // One such client holds its own response; a normal consumer reads everything meanwhile.
    let one = non_reader(&addr, 10).await;
    let bootstrap = addr.clone();
    let read = tokio::task::spawn_blocking(move || consume_all(&bootstrap, "unread", 1, count, &[])).await.expect("consumer");
    assert_eq!(read.values().map(Vec::len).sum::<usize>(), count, "the normal consumer read every record");
    drop(one);

    // Thirty of them: together they could ask for 300 MiB; the broker holds at most the pool.
    reset_peak_rss();
    let before = process_status_bytes("VmRSS:");
    let mut clients = Vec::new();
    for _ in 0..30 {
        clients.push(non_reader(&addr, 10).await);
    }
    let b = broker_of(&broker);
    wait_until("the non-reading clients to fill the memory pool", Duration::from_secs(120), || b.buffered_bytes() + MIB > pool).await;
    for _ in 0..20 {
        assert!(b.buffered_bytes() <= pool, "{} bytes held, over the pool of {pool}", b.buffered_bytes());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown = process_status_bytes("VmHWM:").saturating_sub(before);
    eprintln!("30 non-reading clients: peak RSS +{} KiB, pool {} KiB", grown / 1024, pool / 1024);
    assert!(grown < 96 * MIB as u64, "peak RSS grew by {grown} bytes with 30 non-reading clients");

    // They go; the pool empties and a normal consumer is served again.
    drop(clients);
    wait_until("the pool to empty once the clients are gone", Duration::from_secs(120), || b.buffered_bytes() == 0).await;
    let bootstrap = addr.clone();
    let read = tokio::task::spawn_blocking(move || consume_all(&bootstrap, "unread", 1, count, &[])).await.expect("consumer");
    assert_eq!(read.values().map(Vec::len).sum::<usize>(), count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_stall_hold_at_most_the_pool_and_are_closed_at_the_deadline() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let pool = 8 * MIB;
    let broker = start(|c| {
        c.max_request_bytes = 4 * MIB;
        c.fetch_max_bytes = MIB;
        c.max_buffered_bytes = pool;
        c.request_receive_timeout_ms = 2_000;
    })
    .await;
    let addr = broker.bootstrap();
    let b = broker_of(&broker);

    // Twenty clients announce 4 MiB and send 3 MiB of it, then stall (they keep the socket).
    let sent = Arc::new(vec![0u8; 3 * MIB]);
    reset_peak_rss();
    let before = process_status_bytes("VmRSS:");
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        let sent = Arc::clone(&sent);
        stalled.push(tokio::spawn(async move {
            stream.write_all(&(4 * MIB as i32).to_be_bytes()).await.expect("size");
            // The broker reads only the frames it has memory for; the rest wait in the kernel.
            let _ = stream.write_all(&sent).await;
            let mut client = RawClient::from_stream(stream);
            client.is_closed_by_broker_within(Duration::from_secs(300)).await
        }));
    }
    wait_until("the stalled frames to fill the pool", Duration::from_secs(120), || b.buffered_bytes() + MIB >= pool).await;
    let mut closed = 0;
    for task in stalled {
        // Each is closed 2 s after its first byte, whether it got memory or waited for it.
        assert!(task.await.expect("task"), "a stalled frame's connection was not closed");
        assert!(b.buffered_bytes() <= pool);
        closed += 1;
    }
    assert_eq!(closed, 20);
    let grown = process_status_bytes("VmHWM:").saturating_sub(before);
    eprintln!("20 stalled 4 MiB frames (3 MiB sent each): peak RSS +{} KiB, pool {} KiB", grown / 1024, pool / 1024);
    assert!(grown < 48 * MIB as u64, "peak RSS grew by {grown} bytes; 20 x 3 MiB were sent");
    wait_until("the pool to empty", Duration::from_secs(60), || b.buffered_bytes() == 0).await;
    assert!(api_versions_answered(&addr).await, "a new client is served");

    // A size prefix that stops after two bytes is a started frame too.
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream.write_all(&[0, 0]).await.expect("two bytes");
    let mut client = RawClient::from_stream(stream);
    assert!(client.is_closed_by_broker().await, "a half size prefix is closed at the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_not_while_a_request_is_outstanding() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = start(|c| c.connections_max_idle_ms = 1_000).await;
    let addr = broker.bootstrap();
    create_topic(&addr, "quiet", 1, &[]).await;

    let mut idle = RawClient::connect(&addr).await;
    let answer: ApiVersionsResponse = idle.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(answer.error_code, 0);
    assert!(idle.is_closed_by_broker().await, "an idle connection is closed after connections_max_idle_ms");

    // A long poll of 4 s on an empty partition outlasts the idle time: it is answered, then
    // the connection is idle and closed.
    let mut polling = RawClient::connect(&addr).await;
    let response: FetchResponse = polling.call(ApiKey::Fetch, 12, &fetch_request(&[("quiet", 0, 0)], i32::MAX, 4_000)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert!(polling.is_closed_by_broker().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_per_ip_are_refused() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let broker = start(|c| c.max_connections_per_ip = 3).await;
    let addr = broker.bootstrap();
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut client = RawClient::connect(&addr).await;
        let answer: ApiVersionsResponse = client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
        assert_eq!(answer.error_code, 0);
        open.push(client);
    }
    let mut fourth = RawClient::connect(&addr).await;
    assert!(fourth.is_closed_by_broker().await, "a fourth connection from 127.0.0.1 is refused");
    drop(open.pop());
    // The closed connection's slot comes back once the broker has seen it close.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !api_versions_answered(&addr).await {
        assert!(std::time::Instant::now() < deadline, "no slot came back after a connection closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_claims_much_and_sends_little_holds_what_it_sent() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let pool = 8 * MIB;
    let broker = start(|c| {
        c.max_request_bytes = 4 * MIB;
        c.fetch_max_bytes = MIB;
        c.max_buffered_bytes = pool;
    })
    .await;
    let addr = broker.bootstrap();
    let b = broker_of(&broker);
    // Five clients claim 4 MiB each (20 MiB, more than the pool) and send 100 KiB.
    let sent = 100 * 1024;
    let mut stalled = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(&(4 * MIB as i32).to_be_bytes()).await.expect("size");
        stream.write_all(&vec![0u8; sent]).await.expect("part of the body");
        stalled.push(stream);
    }
    wait_until("the broker to receive what was sent", Duration::from_secs(120), || b.buffered_bytes() >= 5 * sent).await;
    // Each holds what arrived and at most one read ahead (1 MiB), not the 4 MiB it claimed.
    let held = b.buffered_bytes();
    assert!(held <= 5 * (sent + MIB), "{held} bytes held for 5 x {sent} bytes received");
    assert!(api_versions_answered(&addr).await, "other clients are served meanwhile");
    drop(stalled);
    wait_until("the pool to empty", Duration::from_secs(60), || b.buffered_bytes() == 0).await;
}
