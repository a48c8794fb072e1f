//! Arbitrary bytes as one request frame (after its 4-byte size), through what the broker does
//! before a handler runs (`semel_broker::fuzzing::request`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    semel_fuzz::bounded("request", semel_fuzz::request_bound(data.len()), || {
        let _ = semel_broker::fuzzing::request(data);
    });
});
