//! Property tests of the cleaner: random sequences of keyed writes, deletes, idempotent
//! batches, transactions that commit, abort or stay open, segment rolls and cleaner passes (with
//! a key map small enough to need several passes), checked against a model kept beside the log:
//! - a read_committed scan (filtering aborted transactions as a consumer does) yields exactly
//!   the latest committed value of every key;
//! - offsets strictly increase;
//! - no record of an aborted transaction is left in the cleaned range;
//! - every transactional record left has its producer's COMMIT marker after it, or belongs to
//!   the open transaction.
//!
//! The same holds after a crash injected at each step of a segment swap, then a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::batch::{self, BatchHeader, Marker, HEADER_SIZE};
use super::cleaner::{self, CleanStats, CleanerLimits, CompactSettings};
use super::io::LogDirHealth;
use super::log::{Log, LogSettings, ReadOutcome};
use super::partition::{AppendSettings, FlushPolicy, Partition};
use super::records;

const COMPACT: CompactSettings = CompactSettings {
    delete_retention_ms: 1_000,
    min_cleanable_dirty_ratio: 0.0,
    min_compaction_lag_ms: 0,
    max_compaction_lag_ms: i64::MAX,
};
const INDEX_INTERVAL: u64 = 512;

fn settings(segment_bytes: u64) -> AppendSettings {
    AppendSettings {
        log: LogSettings {
            segment_bytes,
            segment_ms: i64::MAX,
            retention_ms: -1,
            retention_bytes: -1,
            index_interval_bytes: INDEX_INTERVAL,
        },
        max_message_bytes: 1 << 20,
        log_append_time: false,
        compaction: Some(COMPACT),
    }
}

fn open(dir: &Path, segment_bytes: u64) -> Partition {
    let (log, _) = Log::open(dir, 0, 0, &settings(segment_bytes).log).expect("open log");
    // Relaxed flushing: the high watermark follows the log end, no fsync needed to read.
    Partition::new(
        "t".into(),
        0,
        log,
        Arc::new(LogDirHealth::default()),
        FlushPolicy { interval_messages: u64::MAX },
        Arc::new(tokio::sync::watch::channel(0u64).0),
    )
}

/// What the model knows of one written record.
#[derive(Debug, Clone)]
struct Written {
    offset: i64,
    key: String,
    value: Option<String>,
    /// The transaction it belongs to: (producer id, transaction number).
    txn: Option<(i64, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Open,
    Committed,
    Aborted,
}

struct Model {
    written: Vec<Written>,
    fates: HashMap<(i64, u32), Fate>,
    /// Per producer: epoch, next sequence, the open transaction's number.
    producers: HashMap<i64, (i16, i32, Option<u32>)>,
    txn_counter: u32,
    now: i64,
    value_counter: u64,
}

impl Model {
    fn new() -> Self {
        Self { written: Vec::new(), fates: HashMap::new(), producers: HashMap::new(), txn_counter: 0, now: 1_000_000, value_counter: 0 }
    }

    /// The latest committed value of every key among offsets below `lso`.
    fn expected(&self, lso: i64) -> BTreeMap<String, String> {
        let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
        for w in self.written.iter().filter(|w| w.offset < lso) {
            let visible = w.txn.is_none_or(|t| self.fates[&t] == Fate::Committed);
            if visible {
                latest.insert(w.key.clone(), w.value.clone());
            }
        }
        latest.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
    }

    fn fate_of_offset(&self) -> HashMap<i64, Option<Fate>> {
        self.written.iter().map(|w| (w.offset, w.txn.map(|t| self.fates[&t]))).collect()
    }
}

fn encode(
    rng: &mut StdRng,
    records: &[(String, Option<String>)],
    producer: Option<(i64, i16, i32)>,
    transactional: bool,
    now: i64,
) -> Vec<u8> {
    let (producer_id, epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if base_sequence < 0 { -1 } else { base_sequence + i as i32 },
            timestamp: now + i as i64,
            key: Some(Bytes::from(k.clone())),
            value: v.clone().map(Bytes::from),
            headers: Default::default(),
        })
        .collect();
    let compression = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][rng.gen_range(0..5)];
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).expect("encode");
    buf.to_vec()
}

/// Appends one batch of 1-4 keyed records (some deletes); returns nothing, records the model.
fn write_batch(p: &Partition, s: &AppendSettings, model: &mut Model, rng: &mut StdRng, keys: u32, producer: Option<i64>, txn: bool) {
    let n = rng.gen_range(1..=4);
    let records: Vec<(String, Option<String>)> = (0..n)
        .map(|_| {
            model.value_counter += 1;
            let key = format!("key-{}", rng.gen_range(0..keys));
            let value = if rng.gen_bool(0.15) { None } else { Some(format!("value-{}", model.value_counter)) };
            (key, value)
        })
        .collect();
    let mut txn_id = None;
    let producer_fields = producer.map(|pid| {
        let entry = model.producers.entry(pid).or_insert((0, 0, None));
        if txn && entry.2.is_none() {
            model.txn_counter += 1;
            entry.2 = Some(model.txn_counter);
            model.fates.insert((pid, model.txn_counter), Fate::Open);
        }
        txn_id = if txn { entry.2.map(|t| (pid, t)) } else { None };
        let fields = (pid, entry.0, entry.1);
        entry.1 += n;
        fields
    });
    let bytes = encode(rng, &records, producer_fields, txn, model.now);
    let info = p.append(&bytes, s, model.now, true).expect("append");
    assert!(!info.duplicate);
    for (i, (key, value)) in records.into_iter().enumerate() {
        model.written.push(Written { offset: info.base_offset + i as i64, key, value, txn: txn_id });
    }
}

fn end_txn(p: &Partition, s: &AppendSettings, model: &mut Model, pid: i64, commit: bool) {
    let entry = model.producers.get_mut(&pid).expect("producer");
    let txn = entry.2.take().expect("open transaction");
    model.fates.insert((pid, txn), if commit { Fate::Committed } else { Fate::Aborted });
    p.write_marker(pid, entry.0, Marker { commit, coordinator_epoch: 0 }, s).expect("marker");
}

fn clean(p: &Partition, s: &AppendSettings, map_bytes: usize, now: i64) -> Option<CleanStats> {
    let limits = CleanerLimits { dedupe_buffer_bytes: map_bytes, io_max_bytes_per_second: 0 };
    cleaner::clean(p, &COMPACT, s.log.segment_bytes, INDEX_INTERVAL, &limits, &AtomicBool::new(false), now).expect("clean")
}

/// Every batch from the log start to the high watermark, raw.
fn scan(p: &Partition) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    loop {
        let (outcome, _) = p.read(offset, 1 << 20, true, false).expect("read");
        let ReadOutcome::Data(slice) = outcome else { break };
        let bytes = slice.read().expect("read slice");
        let mut at = 0;
        while at + HEADER_SIZE <= bytes.len() {
            let header = batch::check_framing_and_crc(&bytes[at..at + BatchHeader::parse(&bytes[at..]).expect("h").total_size()])
                .expect("valid batch");
            offset = header.next_offset();
            out.push(bytes[at..at + header.total_size()].to_vec());
            at += header.total_size();
        }
    }
    out
}

/// A read_committed consumer: batches below the LSO, dropping aborted transactions with the
/// aborted list of the fetch answers, as Kafka's `CompletedFetch` does.
fn read_committed(p: &Partition) -> BTreeMap<String, String> {
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut offset = p.log_start_offset();
    let mut last_offset = -1;
    loop {
        let (outcome, mut aborted) = p.read(offset, 1 << 20, true, true).expect("read");
        let ReadOutcome::Data(slice) = outcome else { break };
        aborted.sort_by_key(|a| a.first_offset);
        let mut aborted: std::collections::VecDeque<_> = aborted.into();
        let mut aborted_producers = HashSet::new();
        let bytes = slice.read().expect("read slice");
        let mut at = 0;
        while at + HEADER_SIZE <= bytes.len() {
            let header = BatchHeader::parse(&bytes[at..]).expect("header");
            let whole = &bytes[at..at + header.total_size()];
            at += header.total_size();
            offset = header.next_offset();
            while aborted.front().is_some_and(|a| a.first_offset <= header.last_offset()) {
                aborted_producers.insert(aborted.pop_front().expect("front").producer_id);
            }
            if header.is_control() {
                if batch::parse_marker(whole).is_some_and(|m| !m.commit) {
                    aborted_producers.remove(&header.producer_id);
                }
                continue;
            }
            if header.is_transactional() && aborted_producers.contains(&header.producer_id) {
                continue;
            }
            // Decoded as a client does, with the kafka-protocol crate.
            let parsed = kafka_protocol::records::RecordBatchDecoder::decode(&mut Bytes::from(whole.to_vec())).expect("client decode");
            for r in &parsed.records {
                assert!(r.offset > last_offset, "offsets go backwards: {} after {last_offset}", r.offset);
                last_offset = r.offset;
                let key = String::from_utf8(r.key.clone().expect("keyed").to_vec()).expect("utf8");
                let value = r.value.as_ref().map(|v| String::from_utf8(v.to_vec()).expect("utf8"));
                state.insert(key, value);
            }
        }
    }
    state.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}

/// The invariants, checked against the model. `cleaned_to`: below it, the cleaner ran.
fn check(p: &Partition, model: &Model, cleaned_to: i64, context: &str) {
    let lso = p.last_stable_offset();
    let got = read_committed(p);
    let expected = model.expected(lso);
    if got != expected {
        for key in got.keys().chain(expected.keys()).filter(|k| got.get(*k) != expected.get(*k)) {
            let history: Vec<_> = model
                .written
                .iter()
                .filter(|w| &w.key == key)
                .map(|w| (w.offset, w.value.clone(), w.txn.map(|t| model.fates[&t])))
                .collect();
            eprintln!("{context}: {key}: got {:?}, expected {:?}, lso {lso}, history {history:?}", got.get(key), expected.get(key));
        }
        eprintln!(
            "{context}: batches {:?}",
            scan(p)
                .iter()
                .map(|b| {
                    let h = BatchHeader::parse(b).unwrap();
                    (h.base_offset, h.last_offset(), h.producer_id, h.is_transactional(), h.is_control(), h.records_count)
                })
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(got, expected, "{context}: read_committed state differs from the model");
    let fates = model.fate_of_offset();
    let mut last = -1;
    // Producers with a COMMIT marker at or after each position: walk backwards.
    let batches = scan(p);
    let mut committed_later: HashSet<i64> = HashSet::new();
    let mut aborted_later: HashSet<i64> = HashSet::new();
    for raw in batches.iter().rev() {
        let header = BatchHeader::parse(raw).expect("header");
        if header.is_control() {
            match batch::parse_marker(raw) {
                Some(m) if m.commit => committed_later.insert(header.producer_id),
                Some(_) => aborted_later.insert(header.producer_id),
                None => false,
            };
            continue;
        }
        let decoded = records::decode(raw, &header).expect("decode");
        for r in &decoded.records {
            let fate = fates.get(&r.offset).copied().flatten();
            if r.offset < cleaned_to {
                assert_ne!(fate, Some(Fate::Aborted), "{context}: aborted record at {} survived cleaning", r.offset);
            }
            match fate {
                Some(Fate::Committed) => {
                    assert!(committed_later.contains(&header.producer_id), "{context}: record {} has no COMMIT marker after it", r.offset)
                }
                Some(Fate::Aborted) => {
                    assert!(aborted_later.contains(&header.producer_id), "{context}: record {} has no ABORT marker after it", r.offset)
                }
                _ => {}
            }
        }
    }
    for raw in &batches {
        let header = BatchHeader::parse(raw).expect("header");
        for r in records::decode(raw, &header).expect("decode").records {
            assert!(r.offset > last, "{context}: offsets not strictly increasing");
            last = r.offset;
        }
    }
}

/// Runs a random workload; returns the model. Cleans along the way when `clean_map` is set.
fn workload(p: &Partition, s: &AppendSettings, rng: &mut StdRng, ops: usize, clean_map: Option<usize>, cleaned_to: &mut i64) -> Model {
    let mut model = Model::new();
    let keys = rng.gen_range(4..40);
    for _ in 0..ops {
        model.now += 100;
        match rng.gen_range(0..100) {
            0..=29 => write_batch(p, s, &mut model, rng, keys, None, false),
            30..=39 => write_batch(p, s, &mut model, rng, keys, Some(100), false),
            40..=64 => {
                let pid = rng.gen_range(1..=3);
                write_batch(p, s, &mut model, rng, keys, Some(pid), true);
            }
            65..=76 => {
                let open: Vec<i64> = model.producers.iter().filter(|(_, e)| e.2.is_some()).map(|(pid, _)| *pid).collect();
                if let Some(&pid) = open.get(rng.gen_range(0..open.len().max(1))) {
                    let commit = rng.gen_bool(0.65);
                    end_txn(p, s, &mut model, pid, commit);
                }
            }
            77..=88 => p.lock_log().roll().expect("roll"),
            _ => {
                if let Some(map) = clean_map {
                    if let Some(stats) = clean(p, s, map, model.now) {
                        *cleaned_to = (*cleaned_to).max(stats.cleaned_to);
                    }
                    check(p, &model, *cleaned_to, &format!("mid-workload at {}", model.now));
                }
            }
        }
    }
    model
}

#[test]
fn cleaning_keeps_the_latest_committed_value_of_every_key() {
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let segment_bytes = rng.gen_range(1_000..20_000);
        let s = settings(segment_bytes);
        // 0 gives the smallest map (14 keys): several passes for most workloads.
        let map = if rng.gen_bool(0.5) { 0 } else { 1 << 20 };
        let p = open(dir.path(), segment_bytes);
        let mut cleaned_to = 0;
        let mut model = workload(&p, &s, &mut rng, 400, Some(map), &mut cleaned_to);
        // End every transaction but (for half the seeds) one, roll, and clean until done, with
        // time moving past the delete horizons.
        let open_pids: Vec<i64> = model.producers.iter().filter(|(_, e)| e.2.is_some()).map(|(pid, _)| *pid).collect();
        let keep_open = seed % 2 == 0;
        for (i, pid) in open_pids.into_iter().enumerate() {
            if !(keep_open && i == 0) {
                end_txn(&p, &s, &mut model, pid, rng.gen_bool(0.5));
            }
        }
        p.lock_log().roll().expect("roll");
        for _ in 0..30 {
            model.now += 5_000;
            match clean(&p, &s, map, model.now) {
                Some(stats) => cleaned_to = cleaned_to.max(stats.cleaned_to),
                None => break,
            }
        }
        let context = format!("seed {seed}");
        check(&p, &model, cleaned_to, &context);
        // A restart sees the same.
        drop(p);
        let p = open(dir.path(), segment_bytes);
        check(&p, &model, cleaned_to, &format!("{context}, after reopening"));
    }
}

#[test]
fn a_crash_at_any_step_of_a_swap_loses_nothing() {
    for step in ["cleaned-written", "swap-renamed", "old-segment-deleted"] {
        for seed in 0..8u64 {
            let mut rng = StdRng::seed_from_u64(1_000 + seed);
            let dir = tempfile::tempdir().expect("tempdir");
            let segment_bytes = 50_000;
            let s = settings(segment_bytes);
            let p = open(dir.path(), segment_bytes);
            let mut cleaned_to = 0;
            let mut model = workload(&p, &s, &mut rng, 300, None, &mut cleaned_to);
            let open_pids: Vec<i64> = model.producers.iter().filter(|(_, e)| e.2.is_some()).map(|(pid, _)| *pid).collect();
            for pid in open_pids {
                end_txn(&p, &s, &mut model, pid, true);
            }
            p.lock_log().roll().expect("roll");
            cleaner::CRASH_AT.with(|c| c.set(Some(step)));
            let limits = CleanerLimits { dedupe_buffer_bytes: 1 << 20, io_max_bytes_per_second: 0 };
            let crashed = cleaner::clean(&p, &COMPACT, segment_bytes, INDEX_INTERVAL, &limits, &AtomicBool::new(false), model.now);
            cleaner::CRASH_AT.with(|c| c.set(None));
            let context = format!("crash at {step}, seed {seed}");
            assert!(crashed.is_err(), "{context}: the crash point was not reached");
            drop(p);
            let p = open(dir.path(), segment_bytes);
            let leftovers: Vec<String> = std::fs::read_dir(dir.path())
                .expect("list")
                .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
                .collect();
            assert!(leftovers.is_empty(), "{context}: recovery left {leftovers:?}");
            check(&p, &model, 0, &format!("{context}, after restart"));
            let stats = clean(&p, &s, 1 << 20, model.now).expect("due after the crash");
            check(&p, &model, stats.cleaned_to, &format!("{context}, cleaned after restart"));
            drop(p);
            let p = open(dir.path(), segment_bytes);
            check(&p, &model, stats.cleaned_to, &format!("{context}, reopened after cleaning"));
        }
    }
}

fn markers_and_tombstones(p: &Partition) -> (usize, usize, usize) {
    let (mut commits, mut aborts, mut tombstones) = (0, 0, 0);
    for raw in scan(p) {
        let header = BatchHeader::parse(&raw).expect("header");
        if header.is_control() {
            match batch::parse_marker(&raw) {
                Some(m) if m.commit => commits += 1,
                Some(_) => aborts += 1,
                None => {}
            }
        } else {
            tombstones += records::decode(&raw, &header).expect("decode").records.iter().filter(|r| r.tombstone).count();
        }
    }
    (commits, aborts, tombstones)
}

#[test]
fn tombstones_and_markers_go_after_the_delete_horizon_and_not_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(1 << 20);
    let p = open(dir.path(), 1 << 20);
    let mut rng = StdRng::seed_from_u64(7);
    let now = 1_000_000;
    let put = |rng: &mut StdRng, key: &str, value: Option<&str>, producer: Option<(i64, i16, i32)>, txn: bool| {
        let bytes = encode(rng, &[(key.to_string(), value.map(str::to_string))], producer, txn, now);
        p.append(&bytes, &s, now, true).expect("append");
    };
    put(&mut rng, "a", Some("1"), None, false);
    put(&mut rng, "a", None, None, false); // delete a
    put(&mut rng, "b", Some("committed"), Some((1, 0, 0)), true);
    p.write_marker(1, 0, Marker { commit: true, coordinator_epoch: 0 }, &s).expect("commit");
    put(&mut rng, "c", Some("aborted"), Some((2, 0, 0)), true);
    p.write_marker(2, 0, Marker { commit: false, coordinator_epoch: 0 }, &s).expect("abort");
    // Producer 2 writes on, so its aborted batch is not its last one (the last batch of a
    // producer stays, emptied, and keeps its marker with it).
    put(&mut rng, "e", Some("after"), Some((2, 0, 1)), false);
    put(&mut rng, "d", Some("plain"), None, false);
    p.lock_log().roll().expect("roll");
    assert_eq!(markers_and_tombstones(&p), (1, 1, 1));

    // First pass: the old value of a and the aborted data go; the tombstone and both markers
    // stay, stamped with their delete horizon (now + 1 s).
    clean(&p, &s, 1 << 20, now).expect("due");
    assert_eq!(markers_and_tombstones(&p), (1, 1, 1), "nothing is past its horizon yet");
    let state = read_committed(&p);
    assert_eq!(state.get("a"), None);
    assert_eq!(state.get("c"), None);
    assert_eq!(state.get("b").map(String::as_str), Some("committed"));

    // New dirty data, a pass before the horizon: still kept.
    put(&mut rng, "d", Some("plain-2"), None, false);
    p.lock_log().roll().expect("roll");
    clean(&p, &s, 1 << 20, now + 500).expect("due");
    assert_eq!(markers_and_tombstones(&p), (1, 1, 1), "still within delete.retention.ms");

    // After the horizon: the tombstone and the ABORT marker (its data is gone) go; the COMMIT
    // marker stays while the transaction's record of b is the latest value of b.
    put(&mut rng, "d", Some("plain-3"), None, false);
    p.lock_log().roll().expect("roll");
    clean(&p, &s, 1 << 20, now + 1_500).expect("due");
    assert_eq!(markers_and_tombstones(&p), (1, 0, 0));
    assert!(p.lock_log().producers.aborted_overlapping(0, i64::MAX).is_empty(), "the aborted index forgets the removed marker");

    // Once b is overwritten (by producer 1 itself, so that its transactional batch is not its
    // last one), the COMMIT marker goes too: one pass drops the data, one stamps the marker,
    // one after its horizon drops it.
    for (i, at) in [2_000, 2_100, 4_000].into_iter().enumerate() {
        put(&mut rng, "b", Some(&format!("plain-{i}")), Some((1, 0, 1 + i as i32)), false);
        p.lock_log().roll().expect("roll");
        clean(&p, &s, 1 << 20, now + at).expect("due");
    }
    assert_eq!(markers_and_tombstones(&p), (0, 0, 0));
    assert_eq!(read_committed(&p).get("b").map(String::as_str), Some("plain-2"));
}

#[test]
fn the_last_batch_of_a_producer_stays_for_its_sequence_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(1 << 20);
    let p = open(dir.path(), 1 << 20);
    let mut rng = StdRng::seed_from_u64(8);
    let now = 1_000_000;
    // Idempotent producer 9 writes k twice; a plain write then supersedes both.
    for (seq, value) in [(0, "1"), (1, "2")] {
        let bytes = encode(&mut rng, &[("k".into(), Some(value.into()))], Some((9, 0, seq)), false, now);
        p.append(&bytes, &s, now, true).expect("append");
    }
    let bytes = encode(&mut rng, &[("k".into(), Some("3".into()))], None, false, now);
    p.append(&bytes, &s, now, true).expect("append");
    p.lock_log().roll().expect("roll");
    clean(&p, &s, 1 << 20, now).expect("due");
    let batches: Vec<BatchHeader> = scan(&p).iter().map(|b| BatchHeader::parse(b).expect("header")).collect();
    let of_9: Vec<&BatchHeader> = batches.iter().filter(|h| h.producer_id == 9).collect();
    assert_eq!(of_9.len(), 1, "only the producer's last batch stays");
    assert_eq!((of_9[0].records_count, of_9[0].base_sequence, of_9[0].last_sequence()), (0, 1, 1), "emptied, sequence kept");
    drop(p);
    // After a restart the producer's next sequence is still 2: a retry of sequence 1 is a
    // duplicate, sequence 2 is accepted.
    let p = open(dir.path(), 1 << 20);
    let retry = encode(&mut rng, &[("k".into(), Some("2".into()))], Some((9, 0, 1)), false, now);
    assert!(p.append(&retry, &s, now, true).expect("append").duplicate);
    let next = encode(&mut rng, &[("k".into(), Some("4".into()))], Some((9, 0, 2)), false, now);
    assert!(!p.append(&next, &s, now, true).expect("append").duplicate);
}

#[test]
fn compacted_topics_refuse_records_without_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(1 << 20);
    let p = open(dir.path(), 1 << 20);
    let records = vec![Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1,
        key: None,
        value: Some(Bytes::from("v")),
        headers: Default::default(),
    }];
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::Lz4 }).expect("encode");
    let error = p.append(&buf, &s, 1, false).expect_err("refused");
    assert!(
        matches!(&error, super::partition::AppendError::Batch(batch::BatchError::MissingKey { records }) if records == &[0]),
        "{error}"
    );
    assert_eq!(p.log_end_offset(), 0, "nothing written");
}

#[test]
fn compaction_lags_and_the_dirty_ratio_decide_when_a_log_is_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(1 << 20);
    let p = open(dir.path(), 1 << 20);
    let mut rng = StdRng::seed_from_u64(9);
    let put = |rng: &mut StdRng, key: &str, ts: i64| {
        let bytes = encode(rng, &[(key.to_string(), Some("v".repeat(100)))], None, false, ts);
        p.append(&bytes, &s, ts, true).expect("append");
    };
    // Two sealed segments: one written at t=1,000,000, one at t=2,000,000.
    for i in 0..20 {
        put(&mut rng, &format!("k{}", i % 5), 1_000_000);
    }
    p.lock_log().roll().expect("roll");
    for i in 0..20 {
        put(&mut rng, &format!("k{}", i % 5), 2_000_000);
    }
    p.lock_log().roll().expect("roll");
    let view = p.lock_log().cleaner_view();
    let second_base = view.segments[1].base_offset;
    let now = 2_000_500;

    // min.compaction.lag.ms: the second segment is too young to clean; the range ends before it.
    let lagged = CompactSettings { min_compaction_lag_ms: 10_000, ..COMPACT };
    let a = cleaner::assess(&view, &lagged, now).expect("assess");
    assert_eq!((a.first_dirty, a.upper), (0, second_base));
    // Without the lag, everything sealed is dirty (ratio 1).
    let a = cleaner::assess(&view, &COMPACT, now).expect("assess");
    assert_eq!(a.upper, view.active_base);
    assert!((a.dirty_ratio - 1.0).abs() < 1e-9);

    // After a pass the log is clean; new dirty data below the ratio does not trigger a pass...
    clean(&p, &s, 1 << 20, now).expect("due");
    for i in 0..2 {
        put(&mut rng, &format!("k{i}"), 2_000_600);
    }
    p.lock_log().roll().expect("roll");
    let view = p.lock_log().cleaner_view();
    let strict = CompactSettings { min_cleanable_dirty_ratio: 0.9, ..COMPACT };
    let a = cleaner::assess(&view, &strict, 2_000_700).expect("assess");
    assert!(a.dirty_ratio < 0.9 && !a.is_due(&strict), "ratio {}", a.dirty_ratio);
    // ... unless max.compaction.lag.ms has passed for the oldest dirty record.
    let overdue = CompactSettings { max_compaction_lag_ms: 1_000, ..strict };
    let a = cleaner::assess(&view, &overdue, 2_002_000).expect("assess");
    assert!(a.overdue && a.is_due(&overdue));
    let a = cleaner::assess(&view, &overdue, 2_001_000).expect("assess");
    assert!(!a.overdue && !a.is_due(&overdue), "not yet past the lag");
}

#[test]
fn a_deleted_log_gets_no_swap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = settings(1 << 20);
    let p = open(dir.path(), 1 << 20);
    let mut rng = StdRng::seed_from_u64(10);
    for i in 0..50 {
        let bytes = encode(&mut rng, &[(format!("k{}", i % 3), Some("v".into()))], None, false, 1_000_000);
        p.append(&bytes, &s, 1_000_000, true).expect("append");
    }
    p.lock_log().roll().expect("roll");
    let before: Vec<_> = std::fs::read_dir(dir.path()).expect("list").filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    // DeleteTopics marks the log under its lock; a pass that was under way must not swap.
    p.lock_log().mark_deleted();
    let stats = clean(&p, &s, 1 << 20, 1_000_000).expect("the pass runs");
    assert_eq!(stats.segments_after, 0, "nothing swapped");
    let after: Vec<_> = std::fs::read_dir(dir.path()).expect("list").filter_map(|e| e.ok().map(|e| e.file_name())).collect();
    assert_eq!(after.len(), before.len(), "no file is added, not even the cleaner checkpoint: {after:?}");
    assert!(after.iter().all(|n| !n.to_string_lossy().ends_with(".cleaned") && !n.to_string_lossy().ends_with(".swap")));
}
