//! Arbitrary bytes as a Produce request's records for one partition, through the checks produce
//! applies (framing, CRC, decompression within the limit, every record), for a plain and a
//! compacted topic. Accepted batches are read back by the stored-batch readers, which must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semel_fuzz::{batch_bound, bounded, MAX_DECOMPRESSED};

fuzz_target!(|data: &[u8]| {
    bounded("batch", batch_bound(data.len(), MAX_DECOMPRESSED), || {
        if semel_broker::fuzzing::produced_records(data, false, false, MAX_DECOMPRESSED).is_ok() {
            let _ = semel_broker::fuzzing::produced_records(data, true, true, MAX_DECOMPRESSED);
        }
    });
});
