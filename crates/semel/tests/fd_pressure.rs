//! File descriptors under pressure (issue #13): `semel serve` under `prlimit --nofile=256:256`
//! with a topic of ~800 segments and 400 connections held open. Sealed segments keep no file
//! open (at most `max_open_segment_files` of them are), connections beyond the fd limit are
//! refused, requests on an admitted connection get answers (data or a retriable error, never a
//! lost connection), and once the pressure ends produce and a fetch of every segment work: no
//! partition went offline.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::free_port;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

const MAX_OPEN_SEGMENT_FILES: usize = 32;
const BATCHES: usize = 800;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn call<Q: Encodable + HeaderVersion, R: Decodable>(stream: &mut TcpStream, key: ApiKey, version: i16, request: &Q) -> R {
    try_call(stream, key, version, request).expect("an answer, not a lost connection")
}

fn try_call<Q: Encodable + HeaderVersion, R: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Q,
) -> std::io::Result<R> {
    let header = RequestHeader::default().with_request_api_key(key as i16).with_request_api_version(version).with_correlation_id(1);
    let mut body = BytesMut::new();
    header.encode(&mut body, Q::header_version(version)).expect("header");
    request.encode(&mut body, version).expect("body");
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream.write_all(&frame)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response)?;
    let mut response = Bytes::from(response);
    let _correlation = response.get_i32();
    if key.response_header_version(version) >= 1 {
        let _tagged = response.get_u8();
    }
    Ok(R::decode(&mut response, version).expect("decode"))
}

fn batch(i: usize) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_900_000_000_000,
        key: None,
        value: Some(Bytes::from(format!("{i:0>600}"))),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &[record], &RecordEncodeOptions { version: 2, compression: Compression::None }).expect("encode");
    buf.freeze()
}

fn produce(stream: &mut TcpStream, i: usize) -> i16 {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(60_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("many")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(i)))])]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}

/// Fetches from `offset`; the error code and the offset after the batches returned.
fn fetch(stream: &mut TcpStream, offset: i64) -> (i16, i64) {
    let request = FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        fetch_request::FetchTopic::default().with_topic(TopicName(StrBytes::from_static_str("many"))).with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
        ]),
    ]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 12, &request);
    let p = &response.responses[0].partitions[0];
    let mut records = p.records.clone().unwrap_or_default();
    let mut next = offset;
    while records.len() >= 61 {
        let base = i64::from_be_bytes(records[..8].try_into().expect("8"));
        let length = i32::from_be_bytes(records[8..12].try_into().expect("4")) as usize;
        let last_delta = i32::from_be_bytes(records[23..27].try_into().expect("4"));
        next = base + i64::from(last_delta) + 1;
        records.advance((12 + length).min(records.len()));
    }
    (p.error_code, next)
}

fn open_fds(pid: u32, suffix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok).filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().ends_with(suffix))).count()
        })
        .unwrap_or(0)
}

#[test]
fn fds_never_take_the_log_directory_offline() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("prlimit (util-linux) is not installed: skipped");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("semel.toml");
    std::fs::write(&config, format!("[log]\nmax_open_segment_files = {MAX_OPEN_SEGMENT_FILES}\n")).expect("config");
    let port = free_port();
    let child = Command::new("prlimit")
        .arg("--nofile=256:256")
        .arg(env!("CARGO_BIN_EXE_semel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("SEMEL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null()) // one warning per refused connection
        .spawn()
        .expect("spawn semel under prlimit");
    let semel = Killed(child);
    let pid = semel.0.id(); // prlimit execs semel: same process
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "semel did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    };
    stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");

    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("many")))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("internal.segment.bytes"))
            .with_value(Some(StrBytes::from_static_str("1000")))]);
    let created: CreateTopicsResponse =
        call(&mut stream, ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(60_000));
    assert_eq!(created.topics[0].error_code, 0);
    // One batch of ~700 bytes per segment: ~800 segments, more than the fd limit.
    for i in 0..BATCHES {
        assert_eq!(produce(&mut stream, i), 0, "produce {i}");
    }
    let segments = std::fs::read_dir(tmp.path().join("data/many-0"))
        .expect("partition folder")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log")))
        .count();
    assert!(segments > 300, "{segments} segments");
    // A fetch of every segment opens each sealed file; at most the budget stay open.
    let mut offset = 0;
    while offset < BATCHES as i64 {
        let (code, next) = fetch(&mut stream, offset);
        assert_eq!(code, 0, "fetch at {offset}");
        assert!(next > offset);
        offset = next;
    }
    let open_logs = open_fds(pid, ".log");
    println!("{segments} segments, {open_logs} .log files open");
    assert!(open_logs <= MAX_OPEN_SEGMENT_FILES + 4, "{open_logs} segment files open (budget {MAX_OPEN_SEGMENT_FILES})");

    // Pressure: 400 connections, more than the 256 descriptors.
    let mut held: Vec<TcpStream> = (0..400).filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    let wait = Instant::now() + Duration::from_secs(120);
    let refused = loop {
        let refused = held
            .iter_mut()
            .filter(|s| {
                // Closed by the broker: end of stream or a reset (an open one would block).
                s.set_nonblocking(true).expect("nonblocking");
                match s.peek(&mut [0u8; 1]) {
                    Ok(n) => n == 0,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                }
            })
            .count();
        if refused > 0 || Instant::now() > wait {
            break refused;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("{refused} of {} connections refused", held.len());
    assert!(refused > 0, "connections beyond the fd limit are refused");
    // The admitted connection gets answers: data, or a retriable error while no fd is free.
    let (code, _) = fetch(&mut stream, 0);
    assert!(code == 0 || code == 56, "fetch under pressure: {code}");
    let code = produce(&mut stream, BATCHES);
    assert!(code == 0 || code == 56, "produce under pressure: {code}");

    // Pressure ends: everything works, nothing went offline.
    held.clear();
    let wait = Instant::now() + Duration::from_secs(120);
    while produce(&mut stream, BATCHES + 1) != 0 {
        assert!(Instant::now() < wait, "produce works again once descriptors are free");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut offset = 0;
    let mut fetched = 0;
    while fetched < BATCHES {
        let (code, next) = fetch(&mut stream, offset);
        assert_eq!(code, 0, "fetch at {offset} after the pressure");
        assert!(next > offset);
        fetched += (next - offset) as usize;
        offset = next;
    }
    // New connections are admitted again once the refused and closed ones are gone (the
    // listener may still be draining its backlog: a connection closed at once is retried).
    let wait = Instant::now() + Duration::from_secs(120);
    loop {
        let mut fresh = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        fresh.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
        let request = MetadataRequest::default().with_topics(Some(vec![]));
        if try_call::<_, MetadataResponse>(&mut fresh, ApiKey::Metadata, 9, &request).is_ok() {
            assert_eq!(produce(&mut fresh, BATCHES + 2), 0);
            break;
        }
        assert!(Instant::now() < wait, "a new connection is admitted once the pressure ended");
        std::thread::sleep(Duration::from_millis(200));
    }
}
