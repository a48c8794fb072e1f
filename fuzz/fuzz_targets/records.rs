//! The records of a batch, uncompressed or compressed with each codec: byte 0 chooses the codec
//! (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), byte 1 holds flags (bit 0 compacted topic, bit 1
//! LogAppendTime, bit 2 transactional, bit 3 control), byte 2 the record count, bytes 3-10 the
//! base timestamp; the rest are the records. The target builds a valid batch around them
//! (compressed, framed, CRC), so every input reaches the record check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semel_fuzz::{batch_bound, bounded, MAX_DECOMPRESSED};

const HEADER_SIZE: usize = 61;

fuzz_target!(|data: &[u8]| {
    let Some((head, raw)) = data.split_first_chunk::<11>() else {
        return;
    };
    let codec = i16::from(head[0] % 5);
    let flags = head[1];
    let count = i32::from(head[2]);
    let mut header = [0u8; HEADER_SIZE];
    let attributes: i16 = if flags & 4 != 0 { 0x10 } else { 0 } | if flags & 8 != 0 { 0x20 } else { 0 };
    header[21..23].copy_from_slice(&attributes.to_be_bytes());
    header[27..35].copy_from_slice(&head[3..11]); // base timestamp
    header[35..43].copy_from_slice(&head[3..11]); // max timestamp
    header[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // no producer id
    header[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    header[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    let batch = semel_broker::fuzzing::build_batch(&header, codec, count, raw);
    bounded("records", batch_bound(batch.len(), MAX_DECOMPRESSED), || {
        let _ = semel_broker::fuzzing::produced_records(&batch, flags & 1 != 0, flags & 2 != 0, MAX_DECOMPRESSED);
    });
});
