//! Each codec's bounded decompression with a small limit: byte 0 chooses the codec (1 gzip,
//! 2 snappy (raw or xerial, by its magic), 3 lz4, 4 zstd), byte 1 the limit (1 KiB to 128 KiB),
//! the rest is the compressed payload. The output never exceeds the limit, and what the codec
//! allocates stays near it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let codec = i16::from(head[0] % 4) + 1;
    let limit = 1usize << (10 + head[1] % 8);
    let out = semel_fuzz::bounded("decompress", semel_fuzz::batch_bound(payload.len(), limit), || {
        semel_broker::fuzzing::decompress(codec, payload, limit)
    });
    if let Ok(out) = out {
        assert!(out.len() <= limit, "codec {codec}: {} bytes out, limit {limit}", out.len());
    }
});
