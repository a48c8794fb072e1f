//! The records of a produced batch, checked one by one as Kafka's `DefaultRecord.readFrom` and
//! `LogValidator` check them, before anything is stored: a batch whose CRC is right can still
//! carry a record that no consumer can read (a key "2^40 bytes long", a 10-byte varint, a
//! negative header count), and a consumer would then stop at its offset for good.
//!
//! A record, after the batch header (varint = zig-zag, at most 5 bytes; varlong: at most 10):
//!
//! ```text
//! length          varint    bytes of the record after this field
//! attributes      int8
//! timestampDelta  varlong
//! offsetDelta     varint    0, 1, 2, ... within the batch
//! keyLength       varint    -1 for no key
//! key             bytes
//! valueLength     varint    -1 for a null value (a tombstone)
//! value           bytes
//! headerCount     varint
//! headers         headerKeyLength varint (not negative), key, headerValueLength varint (-1 null), value
//! ```
//!
//! Every length must lie within the record, and the fields must fill the record exactly.

use super::batch::BatchError;

fn invalid(index: i32, what: impl std::fmt::Display) -> BatchError {
    BatchError::InvalidRecord(format!("record {index}: {what}"))
}

/// A cursor over one record's bytes (or the whole record sequence).
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Kafka's `ByteUtils.readVarint`: at most 5 bytes; the bits past 32 are dropped as Java's
    /// int arithmetic drops them.
    pub(crate) fn varint(&mut self) -> Result<i32, &'static str> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.byte().ok_or("a varint runs past the record")?;
            value |= u32::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(((value >> 1) as i32) ^ -((value & 1) as i32));
            }
        }
        Err("a varint longer than 5 bytes")
    }

    /// Kafka's `ByteUtils.readVarlong`: at most 10 bytes.
    pub(crate) fn varlong(&mut self) -> Result<i64, &'static str> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte().ok_or("a varlong runs past the record")?;
            value |= u64::from(b & 0x7f).wrapping_shl(7 * i);
            if b & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err("a varlong longer than 10 bytes")
    }

    /// Skips `n` bytes, if there are that many.
    fn skip(&mut self, n: usize) -> Option<()> {
        (n <= self.left()).then(|| self.pos += n)
    }
}

/// Walks the uncompressed records of a batch that claims `expected` records with
/// `base_timestamp`: every record well formed and within its length, offset deltas 0, 1, 2,
/// ..., timestamps that do not overflow, no bytes after the last record. Returns the indexes
/// of the records without a key.
pub(crate) fn check_records(records: &[u8], expected: i32, base_timestamp: i64) -> Result<Vec<i32>, BatchError> {
    let mut all = Cursor::new(records);
    let mut keyless = Vec::new();
    for index in 0..expected {
        let length = all.varint().map_err(|e| invalid(index, e))?;
        if length < 0 || length as usize > all.left() {
            return Err(invalid(index, format!("a length of {length} bytes, {} left in the batch", all.left())));
        }
        let start = all.pos;
        all.skip(length as usize).expect("checked above");
        let mut record = Cursor::new(&records[start..all.pos]);
        if check_record(&mut record, index, base_timestamp)? {
            keyless.push(index);
        }
        if record.left() != 0 {
            return Err(invalid(index, format!("{} bytes left after its fields, in a length of {length}", record.left())));
        }
    }
    if all.left() != 0 {
        return Err(BatchError::InvalidRecord(format!("{} bytes after the last of {expected} records", all.left())));
    }
    Ok(keyless)
}

/// One record's fields (after its length). Returns whether the record has no key.
fn check_record(r: &mut Cursor<'_>, index: i32, base_timestamp: i64) -> Result<bool, BatchError> {
    r.byte().ok_or_else(|| invalid(index, "empty"))?; // attributes: unused in v2
    let timestamp_delta = r.varlong().map_err(|e| invalid(index, e))?;
    if base_timestamp.checked_add(timestamp_delta).is_none() {
        return Err(invalid(index, format!("timestamp delta {timestamp_delta} overflows the base timestamp {base_timestamp}")));
    }
    let offset_delta = r.varint().map_err(|e| invalid(index, e))?;
    if offset_delta != index {
        return Err(invalid(index, format!("offset delta {offset_delta}, expected {index}")));
    }
    let key = bytes_field(r, index, "key")?;
    bytes_field(r, index, "value")?;
    let headers = r.varint().map_err(|e| invalid(index, e))?;
    // A header takes at least two bytes (its two lengths).
    if headers < 0 || headers as usize > r.left() / 2 {
        return Err(invalid(index, format!("a header count of {headers}, {} bytes left in the record", r.left())));
    }
    for _ in 0..headers {
        if bytes_field(r, index, "header key")?.is_none() {
            return Err(invalid(index, "a header with a null key"));
        }
        bytes_field(r, index, "header value")?;
    }
    Ok(key.is_none())
}

/// A varint length and that many bytes; -1 is null (`None`).
fn bytes_field(r: &mut Cursor<'_>, index: i32, what: &str) -> Result<Option<usize>, BatchError> {
    let length = r.varint().map_err(|e| invalid(index, format!("{what}: {e}")))?;
    if length == -1 {
        return Ok(None);
    }
    if length < 0 || r.skip(length as usize).is_none() {
        return Err(invalid(index, format!("a {what} length of {length}, {} bytes left in the record", r.left())));
    }
    Ok(Some(length as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::records::write_varint as varint;

    /// A record from its fields' encodings (after the length), with its length in front.
    fn framed(fields: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, fields.len() as i64);
        out.extend_from_slice(fields);
        out
    }

    /// attributes, timestamp delta, offset delta, key, value, headers.
    fn record(offset_delta: i64, key: Option<&[u8]>, headers: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
        let mut f = vec![0u8];
        varint(&mut f, 3);
        varint(&mut f, offset_delta);
        match key {
            Some(k) => {
                varint(&mut f, k.len() as i64);
                f.extend_from_slice(k);
            }
            None => varint(&mut f, -1),
        }
        varint(&mut f, 1);
        f.push(b'v');
        varint(&mut f, headers.len() as i64);
        for (k, v) in headers {
            varint(&mut f, k.len() as i64);
            f.extend_from_slice(k);
            match v {
                Some(v) => {
                    varint(&mut f, v.len() as i64);
                    f.extend_from_slice(v);
                }
                None => varint(&mut f, -1),
            }
        }
        f
    }

    #[test]
    fn well_formed_records_pass_and_keyless_ones_are_named() {
        let mut records = framed(&record(0, Some(b"k"), &[(b"h", Some(b"x")), (b"n", None)]));
        records.extend(framed(&record(1, None, &[])));
        assert_eq!(check_records(&records, 2, 1_000).expect("valid"), vec![1]);
    }

    /// The seven kinds of poison from the report, each in a record whose framing is otherwise
    /// right.
    #[test]
    fn poison_records_are_refused() {
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        // A key 2^40 bytes long (a varint cannot hold it: 6 bytes).
        let mut f = vec![0u8, 6, 0];
        f.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
        cases.push(("key of 2^40", framed(&f)));
        // A key longer than the record.
        let mut f = vec![0u8, 6, 0];
        varint(&mut f, 1_000_000);
        f.extend_from_slice(b"short");
        cases.push(("key past the record", framed(&f)));
        // A 10-byte varint as the offset delta.
        let mut f = vec![0u8, 6];
        f.extend_from_slice(&[0xff; 9]);
        f.push(0x01);
        cases.push(("10-byte varint", framed(&f)));
        // A negative header count.
        let mut f = record(0, Some(b"k"), &[]);
        f.pop();
        varint(&mut f, -5);
        cases.push(("negative header count", framed(&f)));
        // A header count far past the bytes.
        let mut f = record(0, Some(b"k"), &[]);
        f.pop();
        varint(&mut f, 1 << 30);
        cases.push(("header count past the record", framed(&f)));
        // A wrong offset delta.
        cases.push(("offset delta", framed(&record(7, Some(b"k"), &[]))));
        // A timestamp delta that overflows the base timestamp.
        let mut f = vec![0u8];
        varint(&mut f, i64::MAX);
        f.extend_from_slice(&record(0, Some(b"k"), &[])[2..]);
        cases.push(("timestamp overflow", framed(&f)));
        // A record length past the batch, and a negative one.
        let mut long = Vec::new();
        varint(&mut long, 1 << 20);
        long.extend_from_slice(&record(0, Some(b"k"), &[]));
        cases.push(("record length past the batch", long));
        cases.push(("negative record length", vec![0x01]));
        // Bytes left inside a record, and after the last record.
        let mut f = record(0, Some(b"k"), &[]);
        f.push(0);
        cases.push(("bytes left in the record", framed(&f)));
        let mut after = framed(&record(0, Some(b"k"), &[]));
        after.push(0);
        cases.push(("bytes after the last record", after));
        // A header with a null key.
        let mut f = record(0, Some(b"k"), &[]);
        f.pop();
        varint(&mut f, 1);
        varint(&mut f, -1);
        varint(&mut f, -1);
        cases.push(("header with a null key", framed(&f)));
        for (what, records) in cases {
            let result = check_records(&records, 1, 1_000);
            assert!(matches!(result, Err(BatchError::InvalidRecord(_))), "{what}: {result:?}");
        }
    }

    #[test]
    fn varints_follow_kafka() {
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(c.varint(), Ok(i32::MIN));
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(c.varint().is_err());
        let mut c = Cursor::new(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(c.varlong(), Ok(i64::MAX));
        let mut c = Cursor::new(&[0xff; 11]);
        assert!(c.varlong().is_err());
    }
}
