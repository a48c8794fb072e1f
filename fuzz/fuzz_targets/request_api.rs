//! A request body for a supported API and version: the first two bytes choose the pair (from
//! every version semel supports), a valid header is written for it, and the rest of the input
//! is the body. Gets the fuzzer past the header to each API's body at once.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use semel_broker::fuzzing;

fuzz_target!(|data: &[u8]| {
    static ALL: OnceLock<Vec<(kafka_protocol::messages::ApiKey, i16)>> = OnceLock::new();
    let all = ALL.get_or_init(fuzzing::supported_versions);
    let Some((choice, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let (api_key, version) = all[usize::from(u16::from_be_bytes(*choice)) % all.len()];
    let frame = fuzzing::frame(api_key, version, body);
    semel_fuzz::bounded("request_api", semel_fuzz::request_bound(frame.len()), || {
        let _ = fuzzing::request(&frame);
    });
});
