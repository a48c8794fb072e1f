//! Record batches (magic v2) as Kafka writes them on the wire and on disk.
//!
//! A log segment is a sequence of record batches, byte for byte as the producer sent them
//! except for the fields the broker owns (base offset, partition leader epoch and, for
//! `LogAppendTime` topics, the max timestamp). Layout of the batch header, big-endian:
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset             (not covered by the CRC)
//!      8     4  batch_length            (bytes after this field)
//!     12     4  partition_leader_epoch  (not covered by the CRC)
//!     16     1  magic                   (2)
//!     17     4  crc                     (CRC-32C of bytes 21..end)
//!     21     2  attributes              (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//!     61     -  records (compressed as a whole when the codec is not none)
//! ```
//!
//! The `kafka-protocol` crate drops `last_offset_delta` and `max_timestamp` when it decodes a
//! batch, so the broker reads the header itself.

use bytes::Bytes;

pub(crate) const BASE_OFFSET: usize = 0;
pub(crate) const BATCH_LENGTH: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH: usize = 12;
pub(crate) const MAGIC: usize = 16;
pub(crate) const CRC: usize = 17;
pub(crate) const ATTRIBUTES: usize = 21;
pub(crate) const LAST_OFFSET_DELTA: usize = 23;
pub(crate) const BASE_TIMESTAMP: usize = 27;
pub(crate) const MAX_TIMESTAMP: usize = 35;
pub(crate) const PRODUCER_ID: usize = 43;
pub(crate) const PRODUCER_EPOCH: usize = 51;
pub(crate) const BASE_SEQUENCE: usize = 53;
pub(crate) const RECORDS_COUNT: usize = 57;
/// Size of the batch header; the records start here.
pub(crate) const HEADER_SIZE: usize = 61;
/// The bytes before `batch_length`'s coverage starts: base offset and the length itself.
pub(crate) const LOG_OVERHEAD: usize = 12;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Mapped to Kafka error codes at the protocol edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch truncated: {0}")]
    Truncated(&'static str),
    #[error("record batch magic {0} is not supported (only v2)")]
    UnsupportedMagic(i8),
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("invalid record batch: {0}")]
    Invalid(String),
    /// A record inside a well-framed batch that Kafka's `DefaultRecord.readFrom` refuses
    /// (INVALID_RECORD, as Kafka answers its InvalidRecordException).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Records without a key sent to a compacted topic (INVALID_RECORD, as Kafka answers),
    /// by their index in the batch (the Produce answer's record_errors).
    #[error("Compacted topic cannot accept message without key in topic partition")]
    MissingKey { records: Vec<i32> },
}

/// A read-only view of one batch's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. `buf` must hold at least [`HEADER_SIZE`] bytes;
    /// the magic byte is returned as read, not checked.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_SIZE {
            return Err(BatchError::Truncated("shorter than a batch header"));
        }
        Ok(Self {
            base_offset: be_i64(buf, BASE_OFFSET),
            batch_length: be_i32(buf, BATCH_LENGTH),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH),
            magic: buf[MAGIC] as i8,
            crc: u32::from_be_bytes(buf[CRC..CRC + 4].try_into().expect("4 bytes")),
            attributes: be_i16(buf, ATTRIBUTES),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP),
            producer_id: be_i64(buf, PRODUCER_ID),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH),
            base_sequence: be_i32(buf, BASE_SEQUENCE),
            records_count: be_i32(buf, RECORDS_COUNT),
        })
    }

    /// Total size of the batch including the offset and length fields.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn compression_codec(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    /// Whether the producer fields carry an idempotent producer's identity.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        // Sequences wrap from i32::MAX to 0 (KIP-98).
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Computes the CRC-32C that a batch stores, over everything from the attributes to the end.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

/// Checks one complete batch: framing, magic, CRC. Used on the produce path and by recovery.
pub(crate) fn check_framing_and_crc(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic(header.magic));
    }
    if header.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Invalid(format!("batch length {} is below the header size", header.batch_length)));
    }
    if header.total_size() != batch.len() {
        return Err(BatchError::Truncated("batch length does not match the bytes"));
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    Ok(header)
}

/// Splits a buffer of concatenated batches. A trailing partial batch is an error.
pub(crate) fn split_batches(mut buf: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    let mut batches = Vec::new();
    while !buf.is_empty() {
        if buf.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Truncated("trailing bytes shorter than a batch header"));
        }
        let length = be_i32(buf, BATCH_LENGTH);
        let magic = buf[MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Invalid(format!("batch length {length} is below the header size")));
        }
        let total = LOG_OVERHEAD + length as usize;
        if buf.len() < total {
            return Err(BatchError::Truncated("batch length exceeds the bytes sent"));
        }
        batches.push(&buf[..total]);
        buf = &buf[total..];
    }
    Ok(batches)
}

/// Validates the records inside a batch whose framing and CRC were checked: the record count
/// matches, every record is well formed ([`super::record_check`]), offset deltas run 0, 1, 2,
/// ... and `last_offset_delta` is the last of them. For a
/// compressed batch the records are decompressed for the check (and dropped afterwards: the
/// batch is stored compressed, as received).
/// With `require_keys` (a compacted topic), records without a key are refused too, all of them
/// named in the error.
/// `max_decompressed` bounds the records' decompressed size.
pub(crate) fn validate_records(batch: &[u8], header: &BatchHeader, require_keys: bool, max_decompressed: usize) -> Result<(), BatchError> {
    if header.records_count <= 0 {
        return Err(BatchError::Invalid(format!("record count {} is not positive", header.records_count)));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(BatchError::Invalid(format!(
            "last offset delta {} does not match record count {}",
            header.last_offset_delta, header.records_count
        )));
    }
    let payload = &batch[HEADER_SIZE..];
    let walk = |records: &[u8]| -> Result<(), BatchError> {
        let keyless = super::record_check::check_records(records, header.records_count, header.base_timestamp)?;
        if require_keys && !keyless.is_empty() {
            return Err(BatchError::MissingKey { records: keyless });
        }
        Ok(())
    };
    match header.compression_codec() {
        0 => walk(payload),
        codec => walk(&super::decompress::decompress(codec, payload, max_decompressed)?),
    }
}

/// Decompresses a stored batch's record payload with the codec from its attributes (checked
/// at produce; bounded all the same, see [`super::decompress`]).
pub(crate) fn decompress(codec: i16, payload: &[u8]) -> Result<Bytes, BatchError> {
    super::decompress::decompress(codec, payload, super::decompress::MAX_DECOMPRESSED_BYTES).map(Bytes::from)
}

/// Reads a zig-zag varint of a record as Kafka's `ByteUtils.readVarint` does, and as produce
/// checked it ([`super::record_check`]): at most 5 bytes, the bits past 32 dropped. Readers of
/// stored batches must read a record exactly as produce's check did: a wider reading of the
/// same bytes would find a different length in a batch that was accepted.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i64, BatchError> {
    let mut cursor = super::record_check::Cursor::new(buf.get(*pos..).unwrap_or_default());
    let value = cursor.varint().map_err(|e| BatchError::Invalid(format!("record: {e}")))?;
    *pos += cursor.pos;
    Ok(i64::from(value))
}

/// Reads a zig-zag varlong of a record (its timestamp delta) as Kafka's
/// `ByteUtils.readVarlong` does: at most 10 bytes.
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, BatchError> {
    let mut cursor = super::record_check::Cursor::new(buf.get(*pos..).unwrap_or_default());
    let value = cursor.varlong().map_err(|e| BatchError::Invalid(format!("record: {e}")))?;
    *pos += cursor.pos;
    Ok(value)
}

/// Writes the broker-owned fields of a batch that is about to be appended: its base offset and
/// partition leader epoch, neither covered by the CRC.
pub(crate) fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Stamps a batch with the log append time (topics with `message.timestamp.type=LogAppendTime`),
/// as Kafka's `setMaxTimestamp(LOG_APPEND_TIME, now)`: sets the timestamp-type bit and the max
/// timestamp, then recomputes the CRC.
pub(crate) fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Finds the offset of the first record whose timestamp is at least `target`, decoding the
/// batch's records (timestamps of individual records are not in the header).
pub(crate) fn first_offset_with_timestamp(batch: &[u8], target: i64) -> Result<Option<(i64, i64)>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.is_log_append_time() {
        return Ok((header.max_timestamp >= target).then_some((header.base_offset, header.max_timestamp)));
    }
    let mut found = None;
    for_each_record(batch, &header, |offset, timestamp| {
        if found.is_none() && timestamp >= target {
            found = Some((offset, timestamp));
        }
    })?;
    Ok(found)
}

/// Finds the offset and timestamp of the record with the largest timestamp (the first one on ties).
pub(crate) fn offset_of_max_timestamp(batch: &[u8]) -> Result<(i64, i64), BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.is_log_append_time() {
        return Ok((header.base_offset, header.max_timestamp));
    }
    let mut best = (header.base_offset, i64::MIN);
    for_each_record(batch, &header, |offset, timestamp| {
        if timestamp > best.1 {
            best = (offset, timestamp);
        }
    })?;
    Ok(best)
}

fn for_each_record(batch: &[u8], header: &BatchHeader, mut f: impl FnMut(i64, i64)) -> Result<(), BatchError> {
    let payload = &batch[HEADER_SIZE..];
    let owned;
    let records: &[u8] = match header.compression_codec() {
        0 => payload,
        codec => {
            owned = decompress(codec, payload)?;
            &owned
        }
    };
    let mut pos = 0usize;
    for _ in 0..header.records_count.max(0) {
        let length = read_varint(records, &mut pos)?;
        if length < 0 || pos + length as usize > records.len() {
            return Err(BatchError::Invalid("record runs past the batch".into()));
        }
        let body = &records[pos..pos + length as usize];
        let mut at = 1usize;
        let timestamp_delta = read_varlong(body, &mut at)?;
        let offset_delta = read_varint(body, &mut at)?;
        f(header.base_offset + offset_delta, header.base_timestamp + timestamp_delta);
        pos += length as usize;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    /// Encodes `count` records as one batch with the given codec, as a client would.
    pub(crate) fn encode_batch(count: usize, compression: Compression, base_timestamp: i64) -> Vec<u8> {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: base_timestamp + i as i64,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).expect("encode");
        buf.to_vec()
    }

    /// Found writing fuzz/'s read-back check (every batch produce accepts must be read by the
    /// stored-batch readers as produce read it): a record length written as a 5-byte varint
    /// whose last byte carries bits past 32. Kafka's `readVarint` drops them and so does
    /// produce's check, which accepted the batch; ListOffsets and the cleaner read the length
    /// as 2^31 + 7 and failed on it ("record runs past the batch").
    #[test]
    fn stored_readers_read_a_record_as_produce_checked_it() {
        let mut batch = encode_batch(1, Compression::None, 1_000)[..HEADER_SIZE].to_vec();
        // length 7 (bits past 32 set), attributes, timestamp delta 0, offset delta 0, key "k",
        // null value, no headers.
        batch.extend_from_slice(&[0x8e, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 2, b'k', 1, 0]);
        let length = (batch.len() - LOG_OVERHEAD) as i32;
        batch[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        let header = check_framing_and_crc(&batch).expect("framed");
        validate_records(&batch, &header, true, 1 << 20).expect("accepted, as Kafka accepts it");
        assert_eq!(offset_of_max_timestamp(&batch), Ok((header.base_offset, 1_000)));
        assert_eq!(first_offset_with_timestamp(&batch, 0), Ok(Some((header.base_offset, 1_000))));
        let decoded = crate::storage::records::decode(&batch, &header).expect("the cleaner reads it");
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.key(&decoded.records[0]), Some(&b"k"[..]));
        assert!(decoded.records[0].tombstone);
    }

    #[test]
    fn valid_batches_pass_for_every_codec() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let batch = encode_batch(10, codec, 1_000);
            let header = check_framing_and_crc(&batch).expect("framing");
            assert_eq!(header.records_count, 10);
            assert_eq!(header.last_offset_delta, 9);
            validate_records(&batch, &header, true, super::super::decompress::MAX_DECOMPRESSED_BYTES)
                .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        }
    }

    #[test]
    fn flipped_byte_fails_the_crc() {
        let mut batch = encode_batch(3, Compression::None, 0);
        let last = batch.len() - 1;
        batch[last] ^= 0x40;
        assert!(matches!(check_framing_and_crc(&batch), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn truncated_batch_is_refused() {
        let batch = encode_batch(3, Compression::None, 0);
        assert!(split_batches(&batch[..batch.len() - 1]).is_err());
        assert!(split_batches(&batch[..20]).is_err());
        assert_eq!(split_batches(&batch).expect("whole").len(), 1);
    }

    #[test]
    fn wrong_offset_delta_is_refused() {
        let mut batch = encode_batch(3, Compression::None, 0);
        // Claim 4 records where there are 3; fix the CRC so only the record walk can notice.
        batch[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&4i32.to_be_bytes());
        batch[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&3i32.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        let header = check_framing_and_crc(&batch).expect("framing");
        assert!(validate_records(&batch, &header, false, super::super::decompress::MAX_DECOMPRESSED_BYTES).is_err());
    }

    #[test]
    fn log_append_time_keeps_the_crc_valid() {
        let mut batch = encode_batch(2, Compression::Lz4, 5);
        set_log_append_time(&mut batch, 99_999);
        let header = check_framing_and_crc(&batch).expect("crc still valid");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 99_999);
    }

    #[test]
    fn timestamps_are_found_inside_compressed_batches() {
        let mut batch = encode_batch(5, Compression::Gzip, 100);
        assign_offset(&mut batch, 40, 0);
        assert_eq!(first_offset_with_timestamp(&batch, 102).expect("ok"), Some((42, 102)));
        assert_eq!(first_offset_with_timestamp(&batch, 1000).expect("ok"), None);
        assert_eq!(offset_of_max_timestamp(&batch).expect("ok"), (44, 104));
    }

    #[test]
    fn last_sequence_wraps() {
        let mut batch = encode_batch(3, Compression::None, 0);
        batch[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        assert_eq!(BatchHeader::parse(&batch).expect("parse").last_sequence(), 0);
    }
}

/// A transaction marker, the one record of a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Encodes a COMMIT or ABORT control batch exactly as Kafka's `MemoryRecords.withEndTransactionMarker`
/// writes it: attributes transactional | control, base sequence -1, one record whose key is
/// int16 version 0 + int16 type (0 abort, 1 commit) and whose value is int16 version 0 + int32
/// coordinator epoch. The base offset is assigned at append.
pub fn encode_marker(producer_id: i64, producer_epoch: i16, marker: Marker, timestamp: i64) -> Vec<u8> {
    let mut record = Vec::with_capacity(17);
    record.push(32); // record length 16 (zig-zag varint)
    record.push(0); // attributes
    record.push(0); // timestamp delta
    record.push(0); // offset delta
    record.push(8); // key length 4
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&i16::from(marker.commit).to_be_bytes());
    record.push(12); // value length 6
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut batch = Vec::with_capacity(HEADER_SIZE + record.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + record.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, below
    batch.extend_from_slice(&(ATTR_TRANSACTIONAL | ATTR_CONTROL).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&timestamp.to_be_bytes());
    batch.extend_from_slice(&timestamp.to_be_bytes());
    batch.extend_from_slice(&producer_id.to_be_bytes());
    batch.extend_from_slice(&producer_epoch.to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&1i32.to_be_bytes()); // records
    batch.extend_from_slice(&record);
    let crc = compute_crc(&batch);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// Reads the marker of a control batch; `None` when the batch is not a well-formed marker.
pub fn parse_marker(batch: &[u8]) -> Option<Marker> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() || header.compression_codec() != 0 {
        return None;
    }
    let records = batch.get(HEADER_SIZE..)?;
    let mut pos = 0usize;
    let _length = read_varint(records, &mut pos).ok()?;
    pos += 1; // attributes
    let _timestamp_delta = read_varlong(records, &mut pos).ok()?;
    let _offset_delta = read_varint(records, &mut pos).ok()?;
    let key_length = read_varint(records, &mut pos).ok()?;
    if key_length < 4 {
        return None;
    }
    let key = records.get(pos..pos + key_length as usize)?;
    let kind = i16::from_be_bytes([key[2], key[3]]);
    pos += key_length as usize;
    let value_length = read_varint(records, &mut pos).ok()?;
    let coordinator_epoch = if value_length >= 6 {
        let value = records.get(pos..pos + value_length as usize)?;
        i32::from_be_bytes([value[2], value[3], value[4], value[5]])
    } else {
        -1
    };
    match kind {
        0 => Some(Marker { commit: false, coordinator_epoch }),
        1 => Some(Marker { commit: true, coordinator_epoch }),
        _ => None,
    }
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_decode_like_kafka() {
        let batch = encode_marker(42, 3, Marker { commit: true, coordinator_epoch: 7 }, 1_000);
        let header = check_framing_and_crc(&batch).expect("valid batch");
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence, header.records_count), (42, 3, -1, 1));
        assert_eq!(parse_marker(&batch), Some(Marker { commit: true, coordinator_epoch: 7 }));
        // The kafka-protocol crate (a client's view) reads it as a control record.
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut Bytes::from(batch.clone())).expect("decode");
        let record = &set.records[0];
        assert!(record.control && record.transactional);
        assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
        let abort = encode_marker(1, 0, Marker { commit: false, coordinator_epoch: 0 }, 5);
        assert_eq!(parse_marker(&abort), Some(Marker { commit: false, coordinator_epoch: 0 }));
    }
}
