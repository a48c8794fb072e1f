//! Writes the seed corpora of the fuzz targets into `DIR/<target>/` (scripts/fuzz.sh runs it
//! before fuzzing; the seeds are generated, not kept in git): the default request of every
//! supported API and version, valid record batches for every codec, and compressed payloads.
//!
//! Usage: gen_seeds DIR

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
use kafka_protocol::messages::{produce_request, ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use semel_broker::fuzzing;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

fn batch(compression: Compression, n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: (i % 3 != 2).then(|| Bytes::from(format!("key-{i}"))),
            value: (i % 4 != 3).then(|| Bytes::from(format!("value {i}").repeat(i + 1))),
            headers: if i % 2 == 0 {
                [(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"v")))].into_iter().collect()
            } else {
                Default::default()
            },
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).expect("encode a batch");
    buf.to_vec()
}

/// A zig-zag varint written in exactly `width` bytes (continuation bits on all but the last).
fn padded(out: &mut Vec<u8>, value: i64, width: usize) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    for _ in 1..width {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8 & 0x7f);
}

fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    let fill = |b: &mut BytesMut| -> anyhow::Result<()> {
        b.extend_from_slice(raw);
        Ok(())
    };
    match codec {
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        _ => Zstd::compress(&mut out, fill),
    }
    .expect("compress");
    out.to_vec()
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: gen_seeds DIR");
    let dir = Path::new(&dir);
    let all = fuzzing::supported_versions();
    for (api_key, version, body) in fuzzing::seed_requests() {
        let name = format!("{api_key:?}-v{version}");
        write(dir, "request", &name, &fuzzing::frame(api_key, version, &body));
        let index = all.iter().position(|&p| p == (api_key, version)).expect("a supported pair") as u16;
        write(dir, "request_api", &name, &[&index.to_be_bytes()[..], &body].concat());
    }
    // Produce requests that carry a batch, at every version semel decodes.
    let records = batch(Compression::None, 3);
    for &(api_key, version) in all.iter().filter(|(k, _)| *k == ApiKey::Produce) {
        let partition = produce_request::PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records.clone())));
        let topic = produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_data(vec![partition]);
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![topic]);
        let mut body = BytesMut::new();
        request.encode(&mut body, version).expect("encode a produce request");
        write(dir, "request", &format!("Produce-v{version}-records"), &fuzzing::frame(api_key, version, &body));
        let index = all.iter().position(|&p| p == (api_key, version)).expect("a supported pair") as u16;
        write(dir, "request_api", &format!("Produce-v{version}-records"), &[&index.to_be_bytes()[..], &body].concat());
    }
    let codecs = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
    for (codec, compression) in codecs.into_iter().enumerate() {
        for n in [1, 5] {
            let b = batch(compression, n);
            let name = format!("codec{codec}-{n}");
            write(dir, "batch", &name, &b);
            write(dir, "batch_framed", &name, &[&[0u8][..], &b].concat());
            write(dir, "batch_framed", &format!("{name}-compacted"), &[&[1u8][..], &b].concat());
            // Two batches in one request.
            write(dir, "batch", &format!("{name}-twice"), &[&b[..], &b].concat());
        }
    }
    // The records target: the uncompressed records of a valid batch, under each codec.
    for n in [1usize, 5] {
        let b = batch(Compression::None, n);
        let header = fuzzing::batch_header(&b).expect("a header");
        let raw = &b[61..];
        for codec in 0..5u8 {
            let mut input = vec![codec, 0, n as u8];
            input.extend_from_slice(&header.base_timestamp.to_be_bytes());
            input.extend_from_slice(raw);
            write(dir, "records", &format!("codec{codec}-{n}"), &input);
        }
    }
    // Records whose varints are all written in their longest form (5 bytes; 10 for the
    // timestamp delta), which Kafka reads as it reads the shortest: the fuzzer then only has to
    // change bits, not lengths, to reach how each reader treats the bits a long varint carries.
    let mut raw = Vec::new();
    for i in 0..3i64 {
        let mut fields = vec![0u8];
        padded(&mut fields, i, 10);
        padded(&mut fields, i, 5);
        padded(&mut fields, 1, 5);
        fields.push(b'k');
        padded(&mut fields, 2, 5);
        fields.extend_from_slice(b"vv");
        padded(&mut fields, 0, 5);
        padded(&mut raw, fields.len() as i64, 5);
        raw.extend_from_slice(&fields);
    }
    for codec in 0..5u8 {
        let mut input = vec![codec, 0, 3];
        input.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        input.extend_from_slice(&raw);
        write(dir, "records", &format!("codec{codec}-padded"), &input);
    }
    // Compressed payloads for each codec, raw snappy and xerial snappy both.
    let raw = batch(Compression::None, 5);
    for codec in 1..=4i16 {
        let input = [&[(codec - 1) as u8, 7][..], &compress(codec, &raw)].concat();
        write(dir, "decompress", &format!("codec{codec}"), &input);
    }
    let raw_snappy = snap::raw::Encoder::new().compress_vec(&raw).expect("snappy");
    write(dir, "decompress", "snappy-raw", &[&[1u8, 7][..], &raw_snappy].concat());
}
