//! Decompression of a batch's records with a bound on the output: it stops as soon as the
//! output passes `limit`, and no buffer is sized from what the compressed data claims.
//!
//! A 128-byte snappy block can claim 4 GiB, and 131 KB of zstd can expand to 4 GiB of zeros;
//! the codecs' one-shot helpers would allocate or produce all of it before anyone looked.
//! Here gzip and lz4 (Kafka's LZ4 frame) are read as streams in chunks and cut off at the limit;
//! zstd is decoded in one shot into a buffer that doubles up to the limit (its streaming decoder
//! would first allocate the window the frame header claims); snappy (raw blocks, and the xerial
//! framing the Java client writes) states each block's length up front, which is accepted only
//! when it is within the limit and within what the block's bytes can expand to (at most 64 output
//! bytes per 3-byte copy element, so under 22 times its size).
//!
//! Who decompresses where: produce runs it off the async workers, at most
//! `decompression_threads` at a time (`server::handlers::produce`), with
//! `max_decompressed_batch_bytes` as the limit; stored batches (already checked at produce)
//! are read with [`MAX_DECOMPRESSED_BYTES`].

use std::io::Read;

use super::batch::BatchError;

/// The largest decompressed batch any path accepts; `max_decompressed_batch_bytes` may not be
/// set above it.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

/// The xerial framing of the Java client's snappy (`SnappyOutputStream`): magic, version,
/// compatible version; then blocks of a big-endian u32 length and a raw snappy block.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_SIZE: usize = 16;
/// Output bytes a raw snappy block can produce per input byte, rounded up.
const SNAPPY_MAX_EXPANSION: usize = 22;

fn too_large(limit: usize) -> BatchError {
    BatchError::Invalid(format!("decompressed records exceed {limit} bytes (max_decompressed_batch_bytes)"))
}

fn corrupt(codec: &str, e: impl std::fmt::Display) -> BatchError {
    BatchError::Invalid(format!("cannot decompress {codec} records: {e}"))
}

/// Decompresses a batch's record payload with `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd), to
/// at most `limit` bytes.
pub(crate) fn decompress(codec: i16, payload: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    match codec {
        1 => read_bounded(flate2::read::MultiGzDecoder::new(payload), limit, "gzip"),
        2 if payload.starts_with(XERIAL_MAGIC) => xerial_snappy(payload, limit),
        2 => {
            let mut out = Vec::new();
            raw_snappy(payload, limit, &mut out)?;
            Ok(out)
        }
        3 => read_bounded(lz4::Decoder::new(payload).map_err(|e| corrupt("lz4", e))?, limit, "lz4"),
        4 => zstd_bounded(&mut zstd::zstd_safe::DCtx::create(), payload, limit),
        other => Err(BatchError::Invalid(format!("unknown compression codec {other}"))),
    }
}

/// Reads a decoder to its end, in chunks, failing once more than `limit` bytes came out.
fn read_bounded(mut reader: impl Read, limit: usize, codec: &str) -> Result<Vec<u8>, BatchError> {
    const CHUNK: usize = 64 * 1024;
    let mut out = Vec::new();
    loop {
        let start = out.len();
        out.resize(start + CHUNK, 0);
        let n = match reader.read(&mut out[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(corrupt(codec, e)),
        };
        out.truncate(start + n);
        if n == 0 {
            return Ok(out);
        }
        if out.len() > limit {
            return Err(too_large(limit));
        }
    }
}

/// zstd in one shot into a buffer that doubles up to the limit. Decoding into the output, the
/// decoder keeps no window of its own: what it allocates is the output, never what a frame
/// header claims (the streaming decoder allocates the window a frame declares, up to 128 MiB,
/// before it writes a byte: a 30-byte frame made it allocate 80 MB, found by fuzz/).
fn zstd_bounded(dctx: &mut zstd::zstd_safe::DCtx<'_>, payload: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    use zstd::zstd_safe::{self, zstd_sys::ZSTD_ErrorCode};
    let too_small = 0usize.wrapping_sub(ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize);
    let full = limit.saturating_add(1);
    let mut capacity = full.min(payload.len().saturating_mul(8).max(64 * 1024));
    loop {
        let mut out = Vec::with_capacity(capacity);
        match dctx.decompress(&mut out, payload) {
            Ok(_) if out.len() > limit => return Err(too_large(limit)),
            Ok(_) => return Ok(out),
            Err(code) if code == too_small && capacity < full => capacity = capacity.saturating_mul(2).min(full),
            Err(code) if code == too_small => return Err(too_large(limit)),
            Err(code) => return Err(corrupt("zstd", zstd_safe::get_error_name(code))),
        }
    }
}

/// Appends one raw snappy block's output to `out`, keeping `out` within `limit`.
fn raw_snappy(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let claimed = snap::raw::decompress_len(block).map_err(|e| corrupt("snappy", e))?;
    if claimed > block.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
        return Err(corrupt("snappy", format!("a block of {} bytes claims {claimed} bytes of output", block.len())));
    }
    if out.len() + claimed > limit {
        return Err(too_large(limit));
    }
    let start = out.len();
    out.resize(start + claimed, 0);
    let n = snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(|e| corrupt("snappy", e))?;
    out.truncate(start + n);
    Ok(())
}

fn xerial_snappy(payload: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let mut rest = payload.get(XERIAL_HEADER_SIZE..).ok_or_else(|| corrupt("snappy", "a truncated xerial header"))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some((length, after)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt("snappy", "a truncated xerial block length"));
        };
        let length = u32::from_be_bytes(*length) as usize;
        let block =
            after.get(..length).ok_or_else(|| corrupt("snappy", format!("a xerial block of {length} bytes runs past the batch")))?;
        raw_snappy(block, limit, &mut out)?;
        rest = &after[length..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

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

    #[test]
    fn every_codec_round_trips_and_stops_at_the_limit() {
        let raw: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for codec in 1..=4 {
            let compressed = compress(codec, &raw);
            assert_eq!(decompress(codec, &compressed, raw.len()).expect("within the limit"), raw, "codec {codec}");
            let e = decompress(codec, &compressed, raw.len() - 1).expect_err("over the limit");
            assert!(e.to_string().contains("exceed"), "codec {codec}: {e}");
        }
        // Raw snappy (librdkafka's), not only the xerial framing.
        let raw_block = snap::raw::Encoder::new().compress_vec(&raw).expect("snappy");
        assert_eq!(decompress(2, &raw_block, raw.len()).expect("raw snappy"), raw);
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        // 64 MiB of zeros: tiny compressed, refused at a 1 MiB limit without producing it all.
        let zeros = vec![0u8; 64 << 20];
        for codec in [1, 3, 4] {
            let bomb = compress(codec, &zeros);
            assert!(bomb.len() < 1 << 20, "codec {codec}: {} bytes", bomb.len());
            assert!(decompress(codec, &bomb, 1 << 20).is_err(), "codec {codec}");
        }
        // A raw snappy block claiming 4 GiB in a few bytes: the varint length, a literal.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'x'];
        let e = decompress(2, &claim, MAX_DECOMPRESSED_BYTES).expect_err("refused");
        assert!(e.to_string().contains("claims"), "{e}");
        // The same inside the xerial framing.
        let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        framed.extend_from_slice(&(claim.len() as u32).to_be_bytes());
        framed.extend_from_slice(&claim);
        assert!(decompress(2, &framed, MAX_DECOMPRESSED_BYTES).is_err());
        // Xerial blocks that add up past the limit.
        let block = snap::raw::Encoder::new().compress_vec(&vec![0u8; 60_000]).expect("snappy");
        let mut many = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        for _ in 0..40 {
            many.extend_from_slice(&(block.len() as u32).to_be_bytes());
            many.extend_from_slice(&block);
        }
        assert!(decompress(2, &many, 1 << 20).is_err());
        assert_eq!(decompress(2, &many, 40 * 60_000).expect("within").len(), 40 * 60_000);
    }

    /// Found by fuzz/ (`decompress` and `batch_framed`: libFuzzer's malloc limit): a 30-byte
    /// zstd frame whose header declares an 80 MB window. The streaming decoder allocated the
    /// window before writing a byte, whatever the limit; decoded in one shot into the output,
    /// nothing is allocated for it.
    #[test]
    fn a_zstd_window_claim_allocates_nothing() {
        let frame = b"\x28\xb5\x2f\xfd\x00\x82\x53\x4e\x41\x50\x50\x59\x00\x00\x1b\x00\x00\x07\x28\xb5\x2f\xfd\x00\x00\x1b\x00\x00\x2a\x00";
        let mut streaming = zstd::zstd_safe::DCtx::create();
        let mut out = Vec::with_capacity(1024);
        let _ =
            streaming.decompress_stream(&mut zstd::zstd_safe::OutBuffer::around(&mut out), &mut zstd::zstd_safe::InBuffer::around(frame));
        assert!(streaming.sizeof() > 64 << 20, "the streaming decoder holds {} bytes", streaming.sizeof());
        let mut one_shot = zstd::zstd_safe::DCtx::create();
        let before = one_shot.sizeof();
        assert!(zstd_bounded(&mut one_shot, frame, 128 << 10).is_err());
        assert_eq!(one_shot.sizeof(), before, "the one-shot decoder allocated for the claimed window");
        assert!(decompress(4, frame, MAX_DECOMPRESSED_BYTES).is_err());
    }

    #[test]
    fn garbage_is_an_error_or_nothing_never_a_panic() {
        let xerial_garbage = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\xff\xff\xff\xff";
        for codec in 1..=4 {
            for garbage in [&b""[..], b"\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff", xerial_garbage] {
                if let Ok(out) = decompress(codec, garbage, 1 << 20) {
                    assert!(out.len() <= 1 << 20, "codec {codec}");
                }
            }
        }
    }
}
