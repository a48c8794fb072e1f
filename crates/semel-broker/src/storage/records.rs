//! The records inside a stored batch, as the cleaner sees them: each record's offset, key and
//! whether it is a tombstone, and a batch rebuilt from a subset of its records.
//!
//! A rebuilt batch keeps what Kafka's `MemoryRecords.buildRetainedRecordsInto` keeps: the base
//! offset, the last offset delta (so the producer's last sequence stays valid), the producer
//! id, epoch and base sequence, the codec, and each record's own offset and timestamp. It may
//! carry a delete horizon (KIP-534): attribute bit 6 set and the base timestamp holding the
//! time after which the cleaner may drop the batch's tombstones or the marker; the timestamps
//! of the records are kept by re-encoding their deltas against it. The `kafka-protocol` crate's
//! batch encoder cannot keep the last offset delta of a batch whose last records were removed,
//! which is why this module writes the batch framing itself.

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::batch::{
    self, read_varint, read_varlong, BatchError, BatchHeader, ATTRIBUTES, BASE_TIMESTAMP, BATCH_LENGTH, CRC, HEADER_SIZE, LOG_OVERHEAD,
    RECORDS_COUNT,
};

/// Attribute bit of a batch whose base timestamp is its delete horizon (KIP-534).
pub(crate) const ATTR_DELETE_HORIZON: i16 = 0x40;
const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// One record of a batch: where its bytes lie in the (decompressed) record data, and what the
/// cleaner needs of it.
#[derive(Debug, Clone)]
pub(crate) struct RecordView {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    /// The key, `None` for a record without one.
    pub(crate) key: Option<std::ops::Range<usize>>,
    /// A record whose value is null: a delete.
    pub(crate) tombstone: bool,
    /// The record's bytes after its length prefix, attributes and timestamp delta: offset
    /// delta, key, value and headers, copied as they are into a rebuilt batch.
    tail: std::ops::Range<usize>,
    attributes: u8,
}

/// The records of one batch, decompressed.
#[derive(Debug)]
pub(crate) struct BatchRecords {
    pub(crate) data: Bytes,
    pub(crate) records: Vec<RecordView>,
}

impl BatchRecords {
    pub(crate) fn key(&self, record: &RecordView) -> Option<&[u8]> {
        record.key.clone().map(|r| &self.data[r])
    }
}

/// Writes a zig-zag varint (Kafka's `ByteUtils.writeVarlong`).
pub(crate) fn write_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes the records of a whole stored batch (`bytes` starts at its base offset field).
pub(crate) fn decode(bytes: &[u8], header: &BatchHeader) -> Result<BatchRecords, BatchError> {
    let payload = bytes.get(HEADER_SIZE..header.total_size()).ok_or(BatchError::Truncated("records"))?;
    let data = match header.compression_codec() {
        0 => Bytes::copy_from_slice(payload),
        codec => batch::decompress(codec, payload)?,
    };
    let mut records = Vec::with_capacity(header.records_count.max(0) as usize);
    let mut pos = 0usize;
    for index in 0..header.records_count.max(0) {
        let length = read_varint(&data, &mut pos)?;
        if length < 1 || pos + length as usize > data.len() {
            return Err(BatchError::Invalid(format!("record {index} length {length} runs past the batch")));
        }
        let end = pos + length as usize;
        let attributes = data[pos];
        let mut at = pos + 1;
        let timestamp_delta = read_varlong(&data[..end], &mut at)?;
        let tail_start = at;
        let offset_delta = read_varint(&data[..end], &mut at)?;
        let key_length = read_varint(&data[..end], &mut at)?;
        let key = if key_length < 0 {
            None
        } else {
            let range = at..at + key_length as usize;
            if range.end > end {
                return Err(BatchError::Invalid(format!("record {index} key runs past the record")));
            }
            at = range.end;
            Some(range)
        };
        let value_length = read_varint(&data[..end], &mut at)?;
        records.push(RecordView {
            offset: header.base_offset + offset_delta,
            timestamp: header.base_timestamp + timestamp_delta,
            key,
            tombstone: value_length < 0,
            tail: tail_start..end,
            attributes,
        });
        pos = end;
    }
    Ok(BatchRecords { data, records })
}

pub(crate) fn compress(codec: i16, raw: &[u8]) -> Result<Vec<u8>, BatchError> {
    let mut out = BytesMut::new();
    let fill = |b: &mut BytesMut| -> anyhow::Result<()> {
        b.extend_from_slice(raw);
        Ok(())
    };
    let result = match codec {
        1 => Gzip::compress(&mut out, fill),
        2 => Snappy::compress(&mut out, fill),
        3 => Lz4::compress(&mut out, fill),
        4 => Zstd::compress(&mut out, fill),
        other => return Err(BatchError::Invalid(format!("unknown compression codec {other}"))),
    };
    result.map_err(|e| BatchError::Invalid(format!("cannot compress records: {e:#}")))?;
    Ok(out.to_vec())
}

/// Rebuilds `original` (a whole stored batch) with only the records at `keep` (indexes into
/// `records.records`), and with `delete_horizon` when given. Offsets, the last offset delta,
/// producer fields, codec and record timestamps are kept.
pub(crate) fn rebuild(
    original: &[u8],
    header: &BatchHeader,
    records: &BatchRecords,
    keep: &[usize],
    delete_horizon: Option<i64>,
) -> Result<Vec<u8>, BatchError> {
    let base_timestamp = delete_horizon.unwrap_or(header.base_timestamp);
    let mut raw = Vec::new();
    let mut body = Vec::new();
    for &i in keep {
        let record = &records.records[i];
        body.clear();
        body.push(record.attributes);
        write_varint(&mut body, record.timestamp - base_timestamp);
        body.extend_from_slice(&records.data[record.tail.clone()]);
        write_varint(&mut raw, body.len() as i64);
        raw.extend_from_slice(&body);
    }
    // An emptied batch is written as Kafka's `DefaultRecordBatch.writeEmptyHeader` writes it:
    // no records and no compression (clients cannot decompress an empty payload).
    let codec = if keep.is_empty() { 0 } else { header.compression_codec() };
    let payload = match codec {
        0 => raw,
        codec => compress(codec, &raw)?,
    };
    let mut out = Vec::with_capacity(HEADER_SIZE + payload.len());
    out.extend_from_slice(&original[..HEADER_SIZE]);
    out.extend_from_slice(&payload);
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
    let mut attributes = (header.attributes & !ATTR_COMPRESSION_MASK) | codec;
    if delete_horizon.is_some() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    out[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    out[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&(keep.len() as i32).to_be_bytes());
    let crc = batch::compute_crc(&out);
    out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// The delete horizon of a batch, if the cleaner set one.
pub(crate) fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    (header.attributes & ATTR_DELETE_HORIZON != 0).then_some(header.base_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    fn encode(compression: Compression, values: &[Option<&str>]) -> Vec<u8> {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: 100 + i as i64,
                sequence: 10 + i as i32,
                timestamp: 5_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).expect("encode");
        buf.to_vec()
    }

    #[test]
    fn rebuilt_batches_keep_offsets_sequences_and_timestamps() {
        for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let original = encode(compression, &[Some("a"), None, Some("c"), Some("d")]);
            let header = batch::check_framing_and_crc(&original).expect("valid");
            let records = decode(&original, &header).expect("decode");
            assert_eq!(records.records.len(), 4);
            assert!(records.records[1].tombstone && !records.records[0].tombstone);
            assert_eq!(records.key(&records.records[2]), Some(&b"k2"[..]));
            // Keep the middle two, with a delete horizon.
            let rebuilt = rebuild(&original, &header, &records, &[1, 2], Some(9_999_999)).expect("rebuild");
            let new_header = batch::check_framing_and_crc(&rebuilt).expect("valid after rebuild");
            assert_eq!(new_header.last_offset(), header.last_offset(), "{compression:?}");
            assert_eq!(new_header.last_sequence(), header.last_sequence());
            assert_eq!(new_header.records_count, 2);
            assert_eq!(delete_horizon(&new_header), Some(9_999_999));
            let set = RecordBatchDecoder::decode(&mut Bytes::from(rebuilt)).expect("a client decodes it");
            let got: Vec<(i64, i64, Option<Bytes>)> = set.records.iter().map(|r| (r.offset, r.timestamp, r.value.clone())).collect();
            assert_eq!(got, vec![(101, 5_001, None), (102, 5_002, Some(Bytes::from("c")))]);
            // Keep nothing: an empty batch that still spans the original offsets.
            let empty = rebuild(&original, &header, &records, &[], None).expect("rebuild");
            let empty_header = batch::check_framing_and_crc(&empty).expect("valid");
            assert_eq!((empty_header.records_count, empty_header.last_offset()), (0, 103));
            assert_eq!((empty_header.compression_codec(), empty.len()), (0, HEADER_SIZE), "uncompressed, no payload");
        }
    }
}
