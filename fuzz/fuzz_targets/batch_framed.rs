//! Like `batch`, with the framing fixed up so that the fuzzer reaches the records: the first
//! byte holds flags (bit 0 compacted topic, bit 1 LogAppendTime, bits 2-3 the number of batches
//! minus one), the rest is split into that many batches, each given magic 2, its length and its
//! CRC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semel_fuzz::{batch_bound, bounded, MAX_DECOMPRESSED};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let n = 1 + usize::from(flags >> 2 & 3);
    let size = rest.len().div_ceil(n).max(1);
    let mut records = Vec::with_capacity(rest.len());
    for chunk in rest.chunks(size) {
        let at = records.len();
        records.extend_from_slice(chunk);
        semel_broker::fuzzing::frame_batch(&mut records[at..]);
    }
    bounded("batch_framed", batch_bound(records.len(), MAX_DECOMPRESSED), || {
        let _ = semel_broker::fuzzing::produced_records(&records, flags & 1 != 0, flags & 2 != 0, MAX_DECOMPRESSED);
    });
});
