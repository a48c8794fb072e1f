#!/usr/bin/env python3
"""The parts of scripts/abuse.sh (issue #13's soak): hostile clients on raw sockets (stdlib
only), the normal client (confluent-kafka), the RSS sampler, the read-back and the report.

Each role runs as its own process, started by abuse.sh, and writes its counts as JSON to
--out when it ends (at its deadline, or on SIGTERM):

    abuse.py setup      BOOT                      create the topics (confluent-kafka admin)
    abuse.py fuzz       BOOT SECONDS OUT SCHEMA   mutated requests of every advertised API
    abuse.py bombs      BOOT SECONDS OUT LIMIT    decompression bombs, every codec
    abuse.py poison     BOOT SECONDS OUT          records with a correct CRC and a lying inside
    abuse.py slowloris  BOOT SECONDS OUT          frames started and trickled, a byte at a time
    abuse.py nonreader  BOOT SECONDS OUT          Fetch after Fetch, never reading, tiny SO_RCVBUF
    abuse.py fdpressure BOOT SECONDS OUT          connections until refused, some released, again
    abuse.py normal     BOOT SECONDS OUT ACKED    idempotent acks=all producer + a consumer
    abuse.py rss        PID STOPFILE OUT          VmRSS / VmHWM / fds of PID every second
    abuse.py verify     BOOT ACKED OUT            read the normal topic back, check every ack
    abuse.py final      BOOT OUT                  ApiVersions + a new produce/consume
    abuse.py report     DIR RSS_BOUND SEMEL_RC    the summary lines; exit 1 on a failed check

Only the roles normal, setup, verify and final import confluent_kafka.
"""
import json
import os
import random
import re
import resource
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter

NORMAL_TOPIC = "abuse-normal"
NORMAL_PARTITIONS = 3
BOMB_TOPIC = "abuse-bombs"
POISON_TOPIC = "abuse-poison"
FUZZ_TOPICS = [f"abuse-fuzz-{i}" for i in range(4)]
AFTER_TOPIC = "abuse-after"
NORMAL_VALUE_PAD = 400  # bytes of padding per normal record: the topic grows to tens of MB

I16_MAX = 0x7FFF
I32_MAX = 0x7FFFFFFF

ERRORS = {
    -1: "UNKNOWN_SERVER_ERROR", 0: "NONE", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE",
    3: "UNKNOWN_TOPIC_OR_PARTITION", 4: "INVALID_FETCH_SIZE", 7: "REQUEST_TIMED_OUT",
    10: "MESSAGE_TOO_LARGE", 18: "RECORD_LIST_TOO_LARGE", 35: "UNSUPPORTED_VERSION",
    42: "INVALID_REQUEST", 43: "UNSUPPORTED_FOR_MESSAGE_FORMAT", 45: "OUT_OF_ORDER_SEQUENCE_NUMBER",
    47: "INVALID_PRODUCER_EPOCH", 56: "KAFKA_STORAGE_ERROR", 76: "UNSUPPORTED_COMPRESSION_TYPE",
    87: "INVALID_RECORD", 48: "INVALID_TXN_STATE", 53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    59: "UNKNOWN_PRODUCER_ID", 67: "DUPLICATE_SEQUENCE_NUMBER",
}


def err_name(code):
    return ERRORS.get(code, f"error_{code}")


# ---------------------------------------------------------------- run control and counts

STOP = threading.Event()
STATS = Counter()
EXTRA = {}
LOCK = threading.Lock()


def count(key, n=1):
    with LOCK:
        STATS[key] += n


def install_stop(seconds, out):
    deadline = time.monotonic() + seconds

    def on_term(*_):
        STOP.set()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    def timer():
        while not STOP.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        STOP.set()
    threading.Thread(target=timer, daemon=True).start()
    return deadline


def dump(out):
    with LOCK:
        data = {"counts": dict(STATS), **EXTRA}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, out)


def log(*args):
    print(f"[{sys.argv[1]}]", *args, file=sys.stderr, flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- wire primitives

def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def u32(v): return struct.pack(">I", v)
def i64(v): return struct.pack(">q", v)


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):  # zigzag, as Kafka's records (works for varlong too)
    return uvarint((v << 1) ^ (v >> 63) if v < 0 else v << 1)


def kstr(s):
    b = s.encode()
    return i16(len(b)) + b


def nullable_str_none():
    return i16(-1)


def header(api_key, version, corr, flexible, client_id="abuse"):
    h = i16(api_key) + i16(version) + i32(corr) + kstr(client_id)
    return h + (b"\x00" if flexible else b"")


def frame(payload):
    return i32(len(payload)) + payload


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    """A response frame's body, or None if the broker closed. socket.timeout propagates."""
    size = recv_exact(sock, 4)
    if size is None:
        return None
    n = struct.unpack(">i", size)[0]
    if n < 0 or n > 1 << 30:
        raise ValueError(f"response size {n}")
    return recv_exact(sock, n)


class Reader:
    def __init__(self, data, pos=0):
        self.d = data
        self.p = pos

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("short response")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]

    def str(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode(errors="replace")


def connect(boot, timeout=10.0, rcvbuf=None, source=None):
    host, port = boot.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.settimeout(timeout)
    try:
        s.connect((host, int(port)))
    except OSError:
        s.close()
        raise
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def api_versions(sock, corr=1):
    """ApiVersions v0: {api_key: (min, max)}; raises if not answered."""
    sock.sendall(frame(header(18, 0, corr, False)))
    body = recv_frame(sock)
    if body is None:
        raise ConnectionError("closed instead of answering ApiVersions")
    r = Reader(body)
    if r.i32() != corr:
        raise ValueError("ApiVersions: wrong correlation id")
    code = r.i16()
    if code != 0:
        raise ValueError(f"ApiVersions error {code}")
    apis = {}
    for _ in range(r.i32()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return apis


# ---------------------------------------------------------------- record batches

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def record(offset_delta=0, key=None, value=b"", headers=(), ts_delta=0, attributes=0):
    body = i8(attributes) + varint(ts_delta) + varint(offset_delta)
    body += varint(-1) if key is None else varint(len(key)) + key
    body += varint(-1) if value is None else varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        body += varint(len(hk)) + hk + (varint(-1) if hv is None else varint(len(hv)) + hv)
    return varint(len(body)) + body


def batch(records_bytes, count, attributes=0, last_offset_delta=None, magic=2, producer_id=-1, epoch=-1,
          base_seq=-1, batch_length_delta=0, base_offset=0):
    """A magic-2 record batch with a correct CRC-32C over whatever records_bytes holds."""
    if last_offset_delta is None:
        last_offset_delta = max(count - 1, 0)
    ts = int(time.time() * 1000)
    after_crc = (i16(attributes) + i32(last_offset_delta) + i64(ts) + i64(ts) + i64(producer_id) + i16(epoch)
                 + i32(base_seq) + i32(count) + records_bytes)
    after_length = i32(0) + i8(magic) + u32(crc32c(after_crc)) + after_crc
    return i64(base_offset) + i32(len(after_length) + batch_length_delta) + after_length


def produce_request(corr, topic, partition, records, acks=-1, version=8, timeout_ms=30000):
    body = (nullable_str_none() + i16(acks) + i32(timeout_ms) + i32(1) + kstr(topic) + i32(1) + i32(partition)
            + i32(len(records)) + records)
    return frame(header(0, version, corr, False) + body)


def parse_produce_v8(body, corr):
    """(error name, error message) of the single partition of a Produce v8 response."""
    r = Reader(body)
    if r.i32() != corr:
        raise ValueError("wrong correlation id")
    for _ in range(r.i32()):
        r.str()
        for _ in range(r.i32()):
            r.i32()
            code = r.i16()
            r.i64(), r.i64(), r.i64()
            msgs = []
            for _ in range(r.i32()):
                r.i32()
                m = r.str()
                if m:
                    msgs.append(m)
            m = r.str()
            if m:
                msgs.append(m)
            return err_name(code), "; ".join(msgs)
    raise ValueError("no partition in the Produce response")


# ---------------------------------------------------------------- hand-built compressed streams

def gzip_stream(head, zeros, tail=b""):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(head)]
    chunk = bytes(1 << 20)
    left = zeros
    while left:
        n = min(left, len(chunk))
        out.append(c.compress(chunk[:n]))
        left -= n
    out.append(c.compress(tail))
    out.append(c.flush())
    return b"".join(out)


def gzip_bytes(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


ZSTD_MAGIC = struct.pack("<I", 0xFD2FB528)


def zstd_block(kind, size, content, last):
    hdr = (1 if last else 0) | (kind << 1) | (size << 3)
    return struct.pack("<I", hdr)[:3] + content


def zstd_stream(head, zeros, window_byte=0x68):
    """A zstd frame: head in a raw block, then `zeros` zero bytes as RLE blocks of 128 KiB (4
    bytes each). window_byte 0x68 is an 8 MiB window."""
    out = [ZSTD_MAGIC, b"\x00", bytes([window_byte])]
    blocks = []
    if head:
        blocks.append((0, len(head), head))
    left = zeros
    while left:
        n = min(left, 128 * 1024)
        blocks.append((1, n, b"\x00"))
        left -= n
    for i, (kind, size, content) in enumerate(blocks):
        out.append(zstd_block(kind, size, content, i == len(blocks) - 1))
    return b"".join(out)


def zstd_bytes(data, fcs=None):
    """data in raw blocks; with fcs, a single-segment frame declaring that content size."""
    if fcs is None:
        out = [ZSTD_MAGIC, b"\x00", b"\x68"]
    else:
        out = [ZSTD_MAGIC, b"\xE0", struct.pack("<Q", fcs)]
    chunks = [data[i:i + 100_000] for i in range(0, len(data), 100_000)] or [b""]
    for i, c in enumerate(chunks):
        out.append(zstd_block(0, len(c), c, i == len(chunks) - 1))
    return b"".join(out)


P1, P2, P3, P4, P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
M32 = 0xFFFFFFFF


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & M32


def xxh32_short(data, seed=0):
    assert len(data) < 16
    h = (seed + P5 + len(data)) & M32
    i = 0
    while i + 4 <= len(data):
        h = (h + struct.unpack("<I", data[i:i + 4])[0] * P3) & M32
        h = (_rotl(h, 17) * P4) & M32
        i += 4
    while i < len(data):
        h = (h + data[i] * P5) & M32
        h = (_rotl(h, 11) * P1) & M32
        i += 1
    h ^= h >> 15
    h = (h * P2) & M32
    h ^= h >> 13
    h = (h * P3) & M32
    h ^= h >> 16
    return h


LZ4_BLOCK = 4 * 1024 * 1024


def _lz4_len_ext(n):
    return b"\xff" * (n // 255) + bytes([n % 255])


def lz4_block_zeros(literals, total):
    """An lz4 block that decompresses to `literals` (ending in a zero byte) followed by zeros up to
    `total` bytes: one long match at offset 1, then the 5 trailing literals the format wants."""
    match = total - len(literals) - 5
    assert match >= 8 and literals and literals[-1] == 0
    lit = len(literals)
    token = (min(lit, 15) << 4) | min(match - 4, 15)
    out = bytes([token])
    if lit >= 15:
        out += _lz4_len_ext(lit - 15)
    out += literals + struct.pack("<H", 1)
    if match - 4 >= 15:
        out += _lz4_len_ext(match - 4 - 15)
    out += bytes([5 << 4]) + bytes(5)
    return out


def lz4_literals_block(data):
    lit = len(data)
    out = bytes([min(lit, 15) << 4])
    if lit >= 15:
        out += _lz4_len_ext(lit - 15)
    return out + data


def lz4_frame(blocks, content_size=None):
    flg = 0x60 | (0x08 if content_size is not None else 0)
    desc = bytes([flg, 0x70]) + (struct.pack("<Q", content_size) if content_size is not None else b"")
    out = [struct.pack("<I", 0x184D2204), desc, bytes([(xxh32_short(desc) >> 8) & 0xFF])]
    for b in blocks:
        out.append(struct.pack("<I", len(b)) + b)
    out.append(struct.pack("<I", 0))
    return b"".join(out)


def lz4_stream(head, zeros):
    total = len(head) + zeros
    blocks = []
    first = min(total, LZ4_BLOCK)
    blocks.append(lz4_block_zeros(head + b"\x00", first))
    left = total - first
    while left:
        n = min(left, LZ4_BLOCK)
        if n < 16:  # too short for a match: literals
            blocks.append(lz4_literals_block(bytes(n)))
        else:
            blocks.append(lz4_block_zeros(b"\x00", n))
        left -= n
    return lz4_frame(blocks)


def lz4_bytes(data, content_size=None):
    return lz4_frame([lz4_literals_block(data)], content_size)


def snappy_literal(data):
    n = len(data) - 1
    if n < 60:
        tag = bytes([n << 2])
    elif n < 256:
        tag = bytes([60 << 2, n])
    else:
        tag = bytes([61 << 2]) + struct.pack("<H", n)
    return tag + data


def snappy_raw_zeros(literals, total, declared=None):
    """Raw snappy: `literals` (ending in a zero byte), then zeros up to `total` bytes as copies
    of 64 bytes at offset 1 (3 bytes each)."""
    assert literals and literals[-1] == 0 and len(literals) <= 65536
    copies = total - len(literals)
    out = [uvarint(total if declared is None else declared), snappy_literal(literals)]
    full, rest = divmod(copies, 64)
    out.append(bytes([(63 << 2) | 2, 1, 0]) * full)
    if rest:
        out.append(bytes([((rest - 1) << 2) | 2, 1, 0]))
    return b"".join(out)


def snappy_raw_bytes(data, declared=None):
    out = [uvarint(len(data) if declared is None else declared)]
    for i in range(0, len(data), 60000):
        out.append(snappy_literal(data[i:i + 60000]))
    return b"".join(out)


XERIAL = b"\x82SNAPPY\x00" + i32(1) + i32(1)


def xerial(blocks):
    return XERIAL + b"".join(i32(len(b)) + b for b in blocks)


def snappy_xerial_zeros(head, zeros, block=1 << 22):
    total = len(head) + zeros
    blocks = [snappy_raw_zeros(head + b"\x00", min(total, block))]
    left = total - min(total, block)
    while left:
        n = min(left, block)
        blocks.append(snappy_raw_zeros(b"\x00", n) if n > 1 else snappy_raw_bytes(b"\x00"))
        left -= n
    return xerial(blocks)


CODEC_ID = {"gzip": 1, "snappy-raw": 2, "snappy-xerial": 2, "lz4": 3, "zstd": 4}


def compress_small(codec, data):
    return {
        "gzip": gzip_bytes, "zstd": zstd_bytes, "lz4": lz4_bytes, "snappy-raw": snappy_raw_bytes,
        "snappy-xerial": lambda d: xerial([snappy_raw_bytes(d)]),
    }[codec](data)


def big_record_head(value_len):
    """The bytes of a record (key null, no headers) before its value; the value and the final
    headers-count byte are zeros, so value_len + 1 zeros complete it."""
    body_len = 1 + 1 + 1 + 1 + len(varint(value_len)) + value_len + 1
    return varint(body_len) + b"\x00" + varint(0) + varint(0) + varint(-1) + varint(value_len)


def compressed_zeros(codec, head, zeros):
    return {
        "gzip": gzip_stream, "zstd": zstd_stream, "lz4": lz4_stream,
        "snappy-raw": lambda h, z: snappy_raw_zeros(h + b"\x00", len(h) + z),
        "snappy-xerial": snappy_xerial_zeros,
    }[codec](head, zeros)


# ---------------------------------------------------------------- role: bombs

def build_bombs(limit):
    """[(name, batch bytes, expected)]: expected is 'accept' for a batch under the limit (proves the
    hand-built stream is valid), 'refuse' otherwise."""
    over = limit + 8 * 1024 * 1024
    under = limit // 4
    bombs = []
    for codec in CODEC_ID:
        attr = CODEC_ID[codec]
        # one valid record whose value decompresses past the limit
        head = big_record_head(over)
        bombs.append((f"{codec}/record-over-limit", batch(compressed_zeros(codec, head, over + 1), 1, attr), "refuse"))
        # the same under the limit: must be accepted
        head = big_record_head(under)
        bombs.append((f"{codec}/record-under-limit", batch(compressed_zeros(codec, head, under + 1), 1, attr), "accept"))
        # zeros only, claiming a million records
        bombs.append((f"{codec}/zeros-over-limit", batch(compressed_zeros(codec, b"", over), 1_000_000, attr), "refuse"))
        # compressed poison: a key of 2^40 bytes inside
        poison = varint(20) + b"\x00" + varint(0) + varint(0) + varint(1 << 40) + b"k" * 14
        bombs.append((f"{codec}/poison-key-2^40", batch(compress_small(codec, poison), 1, attr), "refuse"))
    # far past the limit where it is cheap to build
    huge = 1 << 30
    bombs.append(("gzip/record-1GiB", batch(gzip_stream(big_record_head(huge), huge + 1), 1, 1), "refuse"))
    bombs.append(("zstd/record-1GiB", batch(zstd_stream(big_record_head(huge), huge + 1), 1, 4), "refuse"))
    quarter = 1 << 28
    bombs.append(("lz4/record-256MiB", batch(lz4_stream(big_record_head(quarter), quarter + 1), 1, 3), "refuse"))
    # sizes declared in headers, with little behind them
    small = record(0, None, b"x" * 100)
    bombs.append(("snappy-raw/declares-4GiB", batch(snappy_raw_bytes(small, declared=M32), 1, 2), "refuse"))
    bombs.append(("snappy-xerial/block-declares-4GiB",
                  batch(xerial([snappy_raw_bytes(small, declared=M32)]), 1, 2), "refuse"))
    bombs.append(("lz4/content-size-2^62", batch(lz4_bytes(small, content_size=1 << 62), 1, 3), "refuse"))
    bombs.append(("zstd/content-size-2^62", batch(zstd_bytes(small, fcs=1 << 62), 1, 4), "refuse"))
    bombs.append(("zstd/window-2GiB", batch(ZSTD_MAGIC + b"\x00\xA8" + zstd_block(0, len(small), small, True), 1, 4),
                  "refuse"))
    # many small, valid records past the limit
    n = (over // 100) + 1
    zeros96 = bytes(96)
    recs = b"".join(record(i, None, zeros96) for i in range(n))
    bombs.append(("gzip/many-records-over-limit", batch(gzip_bytes(recs), n, 1), "refuse"))
    return bombs


FIRST_CLOSED = "closed on a connection's first request (refused at accept, most likely)"


def role_bombs(boot, seconds, out, limit):
    install_stop(seconds, out)
    t0 = time.monotonic()
    bombs = build_bombs(int(limit))
    EXTRA["bomb_sizes"] = {name: len(b) for name, b, _ in bombs}
    log(f"{len(bombs)} bombs built in {time.monotonic() - t0:.1f}s "
        f"(compressed {min(len(b) for _, b, _ in bombs)}..{max(len(b) for _, b, _ in bombs)} bytes)")
    EXTRA["unexpected"] = []

    def worker(seed):
        rnd = random.Random(seed)
        sock = None
        corr = 0
        while not STOP.is_set():
            try:
                if sock is None:
                    sock = connect(boot, timeout=60)
                    count("connections")
                    on_conn = 0
                name, b, expected = rnd.choice(bombs)
                on_conn += 1
                corr += 1
                sock.sendall(produce_request(corr, BOMB_TOPIC, rnd.randrange(2), b, acks=rnd.choice([-1, 1])))
                count("sent")
                count(f"sent {name}")
                resp = recv_frame(sock)
                if resp is None:
                    if on_conn == 1:
                        count(FIRST_CLOSED)
                    else:
                        count(f"answer {name}: connection closed")
                        count("closed")
                    sock.close()
                    sock = None
                    time.sleep(0.2)
                    continue
                code, msg = parse_produce_v8(resp, corr)
                count(f"answer {name}: {code}")
                count("answered " + ("NONE" if code == "NONE" else "error"))
                ok = (code == "NONE") == (expected == "accept")
                if not ok:
                    count("unexpected")
                    with LOCK:
                        if len(EXTRA["unexpected"]) < 20:
                            EXTRA["unexpected"].append(f"{name}: {code} {msg}")
                key = f"message {name}"
                with LOCK:
                    if msg and key not in EXTRA:
                        EXTRA[key] = msg[:200]
            except socket.timeout:
                count("no answer in 60s")
                sock.close()
                sock = None
            except OSError as e:
                count(f"socket error {type(e).__name__}")
                if sock:
                    sock.close()
                sock = None
                time.sleep(0.2)
            time.sleep(0.02)
        if sock:
            sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dump(out)


# ---------------------------------------------------------------- role: poison

def poison_batches():
    """[(name, batch)]: uncompressed batches with a correct CRC whose records lie."""
    ok_rec = record(0, b"k", b"v")
    ten_byte = b"\xff" * 9 + b"\x01"          # a 10-byte varint (too long for an int32 varint)
    overlong_zero = b"\x80" * 9 + b"\x00"      # zero, in 10 bytes
    attrs_ts_off = b"\x00" + varint(0) + varint(0)

    def raw(body):  # a record with the given body after its length
        return varint(len(body)) + body
    p = []
    p.append(("key-length-2^40", raw(attrs_ts_off + varint(1 << 40) + b"k" * 8), 1))
    p.append(("value-length-2^40", raw(attrs_ts_off + varint(-1) + varint(1 << 40) + b"v" * 8), 1))
    p.append(("record-length-10-byte-varint", ten_byte + attrs_ts_off + varint(-1) + varint(-1) + varint(0), 1))
    p.append(("key-length-overlong-varint", raw(attrs_ts_off + overlong_zero + varint(-1) + varint(0)), 1))
    p.append(("offset-delta-10-byte-varint", raw(b"\x00" + varint(0) + ten_byte + varint(-1) + varint(-1) + varint(0)), 1))
    p.append(("timestamp-delta-max-varlong", raw(b"\x00" + varint((1 << 63) - 1) + varint(0) + varint(-1) + varint(-1)
                                                 + varint(0)), 1))
    p.append(("header-count-i32-max", raw(attrs_ts_off + varint(-1) + varint(-1) + varint(I32_MAX)), 1))
    p.append(("header-count-negative", raw(attrs_ts_off + varint(-1) + varint(-1) + varint(-5)), 1))
    p.append(("header-key-length-2^40", raw(attrs_ts_off + varint(-1) + varint(-1) + varint(1) + varint(1 << 40) + b"h"), 1))
    p.append(("header-key-null", raw(attrs_ts_off + varint(-1) + varint(-1) + varint(1) + varint(-1) + varint(1) + b"v"), 1))
    p.append(("header-value-length-2^30", raw(attrs_ts_off + varint(-1) + varint(-1) + varint(1) + varint(1) + b"h"
                                              + varint(1 << 30)), 1))
    p.append(("key-length-minus-2", raw(attrs_ts_off + varint(-2) + varint(-1) + varint(0)), 1))
    p.append(("record-length-past-batch", varint(1 << 20) + ok_rec[1:], 1))
    p.append(("record-length-negative", varint(-7) + ok_rec[1:], 1))
    p.append(("record-length-short", varint(3) + ok_rec[1:], 1))
    p.append(("truncated-in-varint", raw(attrs_ts_off + varint(-1))[:-1] + b"\xff", 1))
    p.append(("trailing-garbage", ok_rec + b"\xde\xad\xbe\xef" * 4, 1))
    p.append(("offset-deltas-out-of-order", record(0, b"k", b"v") + record(5, b"k", b"v"), 2))
    out = []
    for name, recs, n in p:
        out.append((name, batch(recs, n)))
    out.append(("records-count-i32-max", batch(ok_rec, I32_MAX)))
    out.append(("records-count-zero-with-a-record", batch(ok_rec, 0)))
    out.append(("records-count-negative", batch(ok_rec, -1)))
    out.append(("last-offset-delta-mismatch", batch(ok_rec, 1, last_offset_delta=1000)))
    out.append(("batch-length-too-long", batch(ok_rec, 1, batch_length_delta=1 << 20)))
    out.append(("batch-length-too-short", batch(ok_rec, 1, batch_length_delta=-8)))
    out.append(("batch-length-i32-max", batch(ok_rec, 1, batch_length_delta=I32_MAX - 100)))
    out.append(("magic-3", batch(ok_rec, 1, magic=3)))
    out.append(("magic-1", batch(ok_rec, 1, magic=1)))
    out.append(("compression-codec-5", batch(ok_rec, 1, attributes=5)))
    out.append(("compression-codec-7", batch(ok_rec, 1, attributes=7)))
    out.append(("transactional-without-producer-id", batch(ok_rec, 1, attributes=0x10)))
    out.append(("control-batch-from-client", batch(ok_rec, 1, attributes=0x20)))
    out.append(("empty-batch", batch(b"", 0, last_offset_delta=0)))
    return out


# Batches Kafka accepts too (so may semel): the record attributes byte is unused and ignored,
# a first batch of an unknown producer id may have any sequence (KIP-360), and a 5-byte varint's
# bits past 32 are dropped by Kafka's ByteUtils.readVarint (2^32 reads as 0). Sent, counted, not
# flagged. The producer id is one no broker hands out (ids count up from 0), not the normal one's.
def odd_but_valid_batches():
    attrs_ts_off = b"\x00" + varint(0) + varint(0)
    body = attrs_ts_off + varint(-1) + varint(-1) + varint(1) + varint(1) + b"h" + varint(1 << 31)
    return [
        ("record-attributes-nonzero", batch(record(0, b"k", b"v", attributes=0x7F), 1)),
        ("unknown-producer-id-sequence-i32-max", batch(record(0, b"k", b"v"), 1, producer_id=1 << 62, epoch=0,
                                                       base_seq=I32_MAX)),
        ("header-value-length-varint-2^32", batch(varint(len(body)) + body, 1)),
    ]


def role_poison(boot, seconds, out):
    install_stop(seconds, out)
    poisons = [(n, b, "refuse") for n, b in poison_batches()] + [(n, b, "either") for n, b in odd_but_valid_batches()]
    EXTRA["accepted"] = []

    def worker(seed):
        rnd = random.Random(seed)
        sock = None
        corr = 0
        while not STOP.is_set():
            try:
                if sock is None:
                    sock = connect(boot, timeout=30)
                    count("connections")
                name, b, expected = rnd.choice(poisons)
                if rnd.random() < 0.5:
                    topic, part = NORMAL_TOPIC, rnd.randrange(NORMAL_PARTITIONS)
                else:
                    topic, part = POISON_TOPIC, 0
                corr += 1
                sock.sendall(produce_request(corr, topic, part, b))
                count("sent")
                resp = recv_frame(sock)
                if resp is None:
                    count(f"answer {name}: connection closed")
                    count("closed")
                    sock.close()
                    sock = None
                    continue
                code, msg = parse_produce_v8(resp, corr)
                count(f"answer {name}: {code}")
                count(f"answered {'NONE' if code == 'NONE' else 'error'} ({'poison' if expected == 'refuse' else 'odd'})")
                if code == "NONE" and expected == "refuse":
                    count("poison accepted")
                    with LOCK:
                        if len(EXTRA["accepted"]) < 20:
                            EXTRA["accepted"].append(f"{name} into {topic}")
            except socket.timeout:
                count("no answer in 30s")
                sock.close()
                sock = None
            except OSError as e:
                count(f"socket error {type(e).__name__}")
                if sock:
                    sock.close()
                sock = None
                time.sleep(0.2)
            time.sleep(0.01)
        if sock:
            sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dump(out)


# ---------------------------------------------------------------- role: fuzz

def load_schema(path):
    """The request layouts of crates/semel-broker/src/server/wire/schema.rs, as Python values:
    {api_key: {"name", "valid": (lo, hi), "flexible": (lo, hi), "fields": [...]}}; a field is
    {"name", "ty", "versions", "tag"}, a type a string or ("Array", type) / ("Struct", fields)."""
    text = open(path).read()
    keys = dict((name, int(k)) for k, name in re.findall(r"(\d+) => Some\(&(\w+)\)", text))
    messages = {}
    for name, block in re.findall(r"static (\w+): Message = (Message \{.*?\n\});", text, re.S):
        e = block
        e = re.sub(r"Versions\((-?\d+), (-?\d+)\)", r"(\1, \2)", e)
        e = re.sub(r"Some\(\((\d+), (\(-?\d+, -?\d+\))\)\)", r"(\1, \2)", e)
        e = e.replace("Type::Array(&", '("Array", ').replace("Type::Struct(&[", '("Struct", [')
        e = re.sub(r"Type::(\w+)", r'"\1"', e)
        e = re.sub(r"\b(Message|Field) \{", "dict(", e).replace("}", ")")
        e = re.sub(r"\b(name|ty|versions|tag|valid|flexible|fields): ", r"\1=", e)
        e = e.replace("&[", "[")
        msg = eval(e, {"__builtins__": {}}, {"dict": dict, "None": None})  # noqa: S307 - our own generated file
        if name in keys:
            messages[keys[name]] = msg
    return messages


def inr(rng, v):
    return rng[0] <= v <= rng[1]


class Enc:
    """Encodes a plausible value of a request layout, recording where its counts and lengths are."""

    def __init__(self, rnd, version, flexible):
        self.rnd = rnd
        self.v = version
        self.flex = flexible
        self.buf = bytearray()
        self.points = []  # (offset, kind, width)

    def length(self, n, kind):
        off = len(self.buf)
        if self.flex:
            b = uvarint(n + 1)
            self.points.append((off, "uvarint", len(b)))
        elif kind == "str":
            b = i16(n)
            self.points.append((off, "i16", 2))
        else:
            b = i32(n)
            self.points.append((off, "i32", 4))
        self.buf += b

    def string(self, fname):
        r = self.rnd
        f = fname.lower()
        if "topic" in f or f == "name" or f.endswith("name") and "group" not in f:
            # a few names only: CreateTopics / DeleteTopics churn at most these (and never the
            # normal, bomb or poison topics)
            s = r.choice(FUZZ_TOPICS + ["", "x" * 300, "abuse-nope"])
        elif "group" in f:
            s = r.choice(["abuse-fuzz-group-0", "abuse-fuzz-group-1", ""])
        elif "transactional" in f:
            s = r.choice(["abuse-fuzz-txn-0", "abuse-fuzz-txn-1", ""])
        elif "protocoltype" in f:
            s = "consumer"
        else:
            s = r.choice(["", "a", "range", "retention.ms", "1", "x" * r.randrange(1, 64)])
        b = s.encode()
        self.length(len(b), "str")
        self.buf += b

    def int_value(self, fname, lo, hi):
        r = self.rnd
        f = fname.lower()
        if "partitions" in f or "replication" in f or "count" in f:
            v = r.choice([-1, 1])
        elif "partition" in f:
            v = r.choice([0, 0, 1, -1])
        elif "timeout" in f or "wait" in f or "interval" in f:
            v = r.choice([0, 10, 100, 1000])
        elif f == "acks":
            v = r.choice([1, -1])
        else:
            v = r.choice([0, 1, -1, 2, r.randrange(lo, hi + 1), lo, hi])
        return max(lo, min(hi, v))

    def value(self, fname, ty, depth=0):
        r = self.rnd
        if isinstance(ty, tuple):
            if ty[0] == "Array":
                n = 0 if depth > 3 else r.choice([0, 1, 1, 2, 3])
                self.length(n, "arr")
                for _ in range(n):
                    self.value(fname, ty[1], depth + 1)
            else:
                self.fields(ty[1], depth + 1)
            return
        if ty == "Bool":
            self.buf += bytes([r.choice([0, 1])])
        elif ty == "Int8":
            self.buf += i8(self.int_value(fname, -128, 127))
        elif ty == "Int16":
            self.buf += i16(self.int_value(fname, -32768, 32767))
        elif ty == "Uint16":
            self.buf += struct.pack(">H", self.int_value(fname, 0, 65535))
        elif ty == "Int32":
            self.buf += i32(self.int_value(fname, -(1 << 31), I32_MAX))
        elif ty == "Uint32":
            self.buf += u32(self.int_value(fname, 0, M32))
        elif ty == "Int64":
            self.buf += i64(r.choice([0, -1, 1, -2, r.randrange(-(1 << 63), 1 << 63)]))
        elif ty == "Float64":
            self.buf += struct.pack(">d", r.random())
        elif ty == "Uuid":
            self.buf += r.choice([bytes(16), bytes(r.randrange(256) for _ in range(16))])
        elif ty == "String":
            self.string(fname)
        elif ty in ("Bytes", "Records"):
            if ty == "Records":
                data = batch(record(0, b"k", b"fuzz"), 1)
            else:
                data = bytes(r.randrange(256) for _ in range(r.randrange(0, 40)))
            self.length(len(data), "bytes")
            self.buf += data
        else:
            raise ValueError(ty)

    def fields(self, fields, depth=0):
        tagged = []
        for f in fields:
            if not inr(f["versions"], self.v):
                continue
            tag = f["tag"]
            if tag is not None and inr(tag[1], self.v):
                if self.flex and self.rnd.random() < 0.3:
                    tagged.append((tag[0], f))
                continue
            self.value(f["name"], f["ty"], depth)
        if self.flex:
            off = len(self.buf)
            b = uvarint(len(tagged))
            self.points.append((off, "uvarint", len(b)))
            self.buf += b
            for t, f in sorted(tagged, key=lambda x: x[0]):
                inner = Enc(self.rnd, self.v, True)
                inner.value(f["name"], f["ty"], depth + 1)
                self.buf += uvarint(t)
                off = len(self.buf)
                b = uvarint(len(inner.buf))
                self.points.append((off, "uvarint", len(b)))
                self.buf += b
                base = len(self.buf)
                self.points += [(base + o, k, w) for o, k, w in inner.points]
                self.buf += inner.buf


# APIs whose successful, mutated form could create unbounded partitions (no partition-count cap
# in the broker: see the report); only their count/length/truncation mutations are sent.
CREATING_APIS = {19, 37}


def valid_request(rnd, schema, key, version):
    msg = schema.get(key)
    flexible = msg is not None and inr(msg["flexible"], version)
    hdr = Enc(rnd, version, False)
    hdr.buf += i16(key) + i16(version) + i32(0)
    hdr.points.append((len(hdr.buf), "i16", 2))
    hdr.buf += kstr("abuse-fuzz")
    if flexible:
        hdr.points.append((len(hdr.buf), "uvarint", 1))
        hdr.buf += b"\x00"
    body = Enc(rnd, version, flexible)
    if msg is None:
        body.buf += bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
    else:
        body.fields(msg["fields"])
        if key == 19:  # CreateTopics: validate_only where the version has it
            if version >= 1 and not flexible:
                body.buf[-1:] = b"\x01"
    base = len(hdr.buf)
    return bytearray(hdr.buf + body.buf), hdr.points + [(base + o, k, w) for o, k, w in body.points]


BIG_VARINTS = [b"\xff\xff\xff\xff\x0f", b"\xff" * 9 + b"\x01", b"\xfe\xff\xff\xff\x07"]


def mutate(rnd, buf, points, apis, schema, key):
    """Returns (bytes, mutation names)."""
    names = []
    safe = key in CREATING_APIS
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        ops = ["count", "count", "truncate"] + ([] if safe else ["flip", "flip", "span", "append", "header"])
        op = rnd.choice(ops)
        if op == "count" and points:
            off, kind, width = rnd.choice(points)
            if off + width > len(buf):
                continue
            if kind == "i32":
                buf[off:off + 4] = i32(rnd.choice([I32_MAX, I32_MAX - 1, -2, 1 << 24]))
            elif kind == "i16":
                buf[off:off + 2] = i16(rnd.choice([I16_MAX, -2, 0x4000]))
            else:
                buf[off:off + width] = rnd.choice(BIG_VARINTS)
                points = []  # offsets after this one moved
            names.append(f"{kind}-count")
        elif op == "truncate" and len(buf) > 8:
            del buf[rnd.randrange(8, len(buf)):]
            names.append("truncate")
        elif op == "flip" and len(buf) > 8:
            for _ in range(rnd.randrange(1, 9)):
                pos = rnd.randrange(8, len(buf))  # keep the api key/version/correlation id
                buf[pos] ^= 1 << rnd.randrange(8)
            names.append("bitflip")
        elif op == "span" and len(buf) > 8:
            a = rnd.randrange(8, len(buf))
            b = min(len(buf), a + rnd.randrange(1, 16))
            buf[a:b] = bytes([rnd.choice([0, 0xFF, 0x7F, 0x80])]) * (b - a)
            names.append("span")
        elif op == "append":
            buf += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64)))
            names.append("append")
        elif op == "header":
            k = rnd.choice(list(apis) + [rnd.randrange(-5, 100)])
            if k in CREATING_APIS:
                continue
            lo, hi = apis.get(k, (0, 5))
            v = rnd.choice([lo, hi, rnd.randrange(lo, hi + 1), hi + 1, lo - 1, rnd.randrange(-3, 40)])
            buf[0:4] = i16(k) + i16(v)
            names.append("header")
    return bytes(buf), names or ["none"]


def role_fuzz(boot, seconds, out, schema_path):
    install_stop(seconds, out)
    schema = load_schema(schema_path)
    apis = None
    while apis is None:
        try:
            sock = connect(boot)
            apis = api_versions(sock)
            sock.close()
        except (OSError, ValueError) as e:
            log(f"ApiVersions failed ({e}); again")
            time.sleep(1)
    EXTRA["advertised_apis"] = len(apis)
    EXTRA["apis_with_layout"] = sum(1 for k in apis if k in schema)
    log(f"{len(apis)} APIs advertised, {EXTRA['apis_with_layout']} with a layout in schema.rs")
    keys = sorted(apis)

    def worker(seed):
        rnd = random.Random(seed)
        sock = None
        corr = 0
        while not STOP.is_set():
            try:
                if sock is None:
                    sock = connect(boot, timeout=5)
                    count("connections")
                    on_conn = 0
                key = rnd.choice(keys)
                lo, hi = apis[key]
                version = rnd.randrange(lo, hi + 1)
                buf, points = valid_request(rnd, schema, key, version)
                if rnd.random() < 0.08:
                    data, muts = bytes(buf), ["none"]
                else:
                    data, muts = mutate(rnd, buf, points, apis, schema, key)
                corr = (corr + 1) & I32_MAX
                data = data[:4] + i32(corr) + data[8:]
                sock.sendall(frame(data))
                count("requests")
                on_conn += 1
                for m in muts:
                    count(f"mutation {m}")
                count(f"api {key}")
                resp = recv_frame(sock)
                if resp is None:
                    count("closed by broker")
                    if on_conn == 1:
                        count("closed by broker on a connection's first request")
                        time.sleep(0.05)
                    sock.close()
                    sock = None
                    continue
                if len(resp) >= 4 and struct.unpack(">i", resp[:4])[0] == corr:
                    count("answered")
                else:
                    count("answered, other correlation id")
            except socket.timeout:
                count("no answer in 5s (acks=0 or long poll; reconnect)")
                sock.close()
                sock = None
            except (OSError, ValueError) as e:
                count(f"socket error {type(e).__name__}")
                if sock:
                    sock.close()
                sock = None
                time.sleep(0.1)
        if sock:
            sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dump(out)


# ---------------------------------------------------------------- role: slowloris

def role_slowloris(boot, seconds, out, n_conns=48, gap=3.0):
    """n_conns connections, each starting a frame and trickling one byte every `gap` seconds:
    most announce 50 MiB, some trickle the size prefix itself, some announce 1 KiB."""
    raise_nofile()
    install_stop(seconds, out)
    EXTRA["held_s_max"] = 0.0

    def worker(i):
        kind = ["50MiB-frame", "50MiB-frame", "size-prefix", "1KiB-frame"][i % 4]
        rnd = random.Random(i)
        time.sleep(rnd.random() * gap)
        while not STOP.is_set():
            try:
                sock = connect(boot, timeout=5)
            except OSError:
                count("connect failed")
                time.sleep(1)
                continue
            count(f"connections {kind}")
            opened = time.monotonic()
            if kind == "50MiB-frame":
                pending = i32(50 * 1024 * 1024) + header(3, 1, 1, False)
            elif kind == "1KiB-frame":
                pending = i32(1024) + header(3, 1, 1, False)
            else:
                pending = i32(1024)
            closed = False
            try:
                if kind != "size-prefix":
                    sock.sendall(pending[:4])
                    pending = pending[4:]
                while not STOP.is_set():
                    if pending:
                        b, pending = pending[:1], pending[1:]
                    else:
                        b = b"\x00"
                    sock.sendall(b)
                    count("bytes trickled")
                    sock.settimeout(gap)
                    try:
                        if sock.recv(1) == b"":
                            closed = True
                            break
                    except socket.timeout:
                        pass
            except OSError:
                closed = True
            held = time.monotonic() - opened
            if closed and held < 1:
                count("refused at once (fd pressure)")
                time.sleep(1)
            elif closed:
                count(f"closed by broker {kind}")
            else:
                count(f"still open at the end {kind}")
                with LOCK:
                    EXTRA["held_s_max"] = max(EXTRA["held_s_max"], round(held, 1))
            sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dump(out)


# ---------------------------------------------------------------- role: nonreader

def fetch_request(corr, topic, partitions, max_bytes=I32_MAX, max_wait=500):
    body = (i32(-1) + i32(max_wait) + i32(1) + i32(max_bytes) + i8(0) + i32(0) + i32(-1) + i32(1) + kstr(topic)
            + i32(len(partitions)))
    for p in partitions:
        body += i32(p) + i32(-1) + i64(0) + i64(-1) + i32(max_bytes)
    body += i32(0) + kstr("")
    return frame(header(1, 11, corr, False) + body)


def role_nonreader(boot, seconds, out, n_conns=16):
    raise_nofile()
    install_stop(seconds, out)

    def worker(i):
        while not STOP.is_set():
            try:
                sock = connect(boot, timeout=5, rcvbuf=4096)
            except OSError:
                count("connect failed")
                time.sleep(1)
                continue
            count("connections")
            sock.setblocking(False)
            corr = 0
            closed = False
            while not STOP.is_set():
                corr += 1
                data = fetch_request(corr, NORMAL_TOPIC, list(range(NORMAL_PARTITIONS)))
                try:
                    sent = 0
                    while sent < len(data) and not STOP.is_set():
                        try:
                            sent += sock.send(data[sent:])
                        except BlockingIOError:
                            time.sleep(0.5)
                    count("fetches sent")
                except OSError:
                    closed = True
                    break
                time.sleep(0.05)
            if closed:
                count("closed by broker")
            sock.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dump(out)


# ---------------------------------------------------------------- role: fdpressure

def role_fdpressure(boot, seconds, out, cap=4000):
    """Opens connections (from 127.0.0.2, .3, ... : a new source address once one is refused by
    max_connections_per_ip) until the broker refuses K in a row, keeps them, releases a third,
    repeats. A connection counts as kept once it answered ApiVersions, refused if the broker
    closed it instead."""
    raise_nofile()
    install_stop(seconds, out)
    kept = []
    EXTRA["kept_max"] = 0
    rnd = random.Random(7)
    rounds = 0
    while not STOP.is_set():
        rounds += 1
        refused_in_row = 0
        source = 2
        while not STOP.is_set() and refused_in_row < 8 and len(kept) < cap:
            try:
                s = connect(boot, timeout=3, source=f"127.0.0.{source}")
            except OSError:
                count("connect failed")
                refused_in_row += 1
                time.sleep(0.05)
                continue
            try:
                api_versions(s)
                kept.append(s)
                count("accepted")
                refused_in_row = 0
            except socket.timeout:
                kept.append(s)  # may be accepted later; it holds a slot either way
                count("no answer in 3s (kept)")
                refused_in_row += 1
            except (OSError, ValueError):
                s.close()
                count("refused")
                refused_in_row += 1
                if refused_in_row == 2 and source < 40:
                    source += 1  # perhaps max_connections_per_ip: try the next address
                    refused_in_row = 0
        EXTRA["kept_max"] = max(EXTRA["kept_max"], len(kept))
        count("rounds")
        deadline = time.monotonic() + 5
        while not STOP.is_set() and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = []
        for s in kept:  # the broker closes idle ones (connections_max_idle_ms)
            try:
                s.setblocking(False)
                if s.recv(1) == b"":
                    count("kept ones closed by the broker")
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                count("kept ones closed by the broker")
                s.close()
                continue
            alive.append(s)
        kept = alive
        rnd.shuffle(kept)
        release = len(kept) // 3 + 1
        for s in kept[:release]:
            s.close()
        count("released", min(release, len(kept)))
        kept = kept[release:]
        time.sleep(1)
    for s in kept:
        s.close()
    EXTRA["rounds"] = rounds
    dump(out)


# ---------------------------------------------------------------- role: rss

def proc_status(pid):
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                vals[k] = int(v.split()[0])
    return vals


def role_rss(pid, stopfile, out):
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    peak = {"VmRSS": 0, "RssAnon": 0, "fds": 0, "Threads": 0}
    samples = 0
    last = {}
    series = []
    t0 = time.monotonic()
    while not STOP.is_set() and not os.path.exists(stopfile):
        try:
            st = proc_status(pid)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            EXTRA["vanished"] = True
            break
        samples += 1
        last = st
        for k in ("VmRSS", "RssAnon", "Threads"):
            peak[k] = max(peak[k], st.get(k, 0))
        peak["fds"] = max(peak["fds"], fds)
        if samples % 10 == 1:
            series.append((round(time.monotonic() - t0), st.get("VmRSS", 0) // 1024, fds))
        EXTRA.update({"samples": samples, "peak_kib": peak, "VmHWM_kib": st.get("VmHWM", 0), "series": series})
        dump(out)
        time.sleep(1)
    EXTRA.update({"samples": samples, "peak_kib": peak, "VmHWM_kib": last.get("VmHWM", 0), "series": series})
    dump(out)


# ---------------------------------------------------------------- roles with confluent-kafka

def ck_common(boot):
    return {"bootstrap.servers": boot, "socket.connection.setup.timeout.ms": 30000, "log_level": 3}


def role_setup(boot):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(ck_common(boot))
    topics = [NewTopic(NORMAL_TOPIC, NORMAL_PARTITIONS, 1), NewTopic(BOMB_TOPIC, 2, 1, config={"max.message.bytes": str(8 << 20)}), NewTopic(POISON_TOPIC, 1, 1),
              NewTopic(AFTER_TOPIC, 1, 1)] + [NewTopic(t, 1, 1) for t in FUZZ_TOPICS]
    for topic, fut in admin.create_topics(topics, operation_timeout=30).items():
        fut.result(timeout=60)
        log(f"created {topic}")


def role_normal(boot, seconds, out, acked_path, rate=800):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
    install_stop(seconds, out)
    acked = open(acked_path, "w", buffering=1)
    errors = Counter()
    fatal = []

    def on_error(err):
        errors[f"error_cb {err.name()}"] += 1
        if err.fatal():
            fatal.append(str(err))

    def new_producer():
        return Producer({**ck_common(boot), "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": 120000, "error_cb": on_error})

    def delivered(err, msg):
        if err is None:
            count("acknowledged")
            acked.write(f"{msg.key().decode()} {msg.partition()} {msg.offset()}\n")
        else:
            count(f"not acknowledged: {err.name()}")

    # the consumer, reading while the producer writes
    consumed = Counter()
    order_errors = Counter()

    def consume():
        c = Consumer({**ck_common(boot), "group.id": "abuse-normal-reader", "enable.auto.commit": False})
        c.assign([TopicPartition(NORMAL_TOPIC, p, OFFSET_BEGINNING) for p in range(NORMAL_PARTITIONS)])
        last = {}
        while not STOP.is_set():
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    consumed[f"consumer error {msg.error().name()}"] += 1
                continue
            key = msg.key() or b""
            if not key.startswith(b"n"):
                consumed["foreign records"] += 1
                continue
            seq = int(key[1:])
            p = msg.partition()
            if p in last and seq <= last[p]:
                order_errors[p] += 1
            last[p] = seq
            consumed["records"] += 1
        c.close()

    ct = threading.Thread(target=consume)
    ct.start()
    producer = new_producer()
    seq = 0
    t0 = time.monotonic()
    pad = b"p" * NORMAL_VALUE_PAD
    while not STOP.is_set():
        if fatal:
            count("producer fatal errors")
            log(f"producer fatal error: {fatal[-1]}; a new producer takes over")
            EXTRA.setdefault("fatal", []).append(fatal[-1])
            fatal.clear()
            producer.flush(30)
            producer = new_producer()
        target = int((time.monotonic() - t0) * rate)
        while seq < target and not STOP.is_set():
            try:
                producer.produce(NORMAL_TOPIC, key=f"n{seq}".encode(), value=f"{seq}:".encode() + pad, on_delivery=delivered)
                seq += 1
                count("produced")
            except BufferError:
                count("producer queue full")
                producer.poll(0.1)
                break
        producer.poll(0.05)
    abuse_s = time.monotonic() - t0
    with LOCK:
        acked_during = STATS["acknowledged"]
    log(f"abuse over after {abuse_s:.0f}s: {seq} produced, {acked_during} acknowledged; flushing")
    left = producer.flush(150)
    ct.join()
    with LOCK:
        STATS["not acknowledged: still pending at the end"] += left
    acked.close()
    EXTRA.update({"abuse_seconds": round(abuse_s, 1), "acked_during_abuse": acked_during,
                  "consumed_during_abuse": consumed["records"], "consumer": dict(consumed),
                  "consumer_order_errors": dict(order_errors), "client_errors": dict(errors)})
    dump(out)


def role_verify(boot, acked_path, out):
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    acked = {}
    for line in open(acked_path):
        k, p, o = line.split()
        acked[int(k[1:])] = (int(p), int(o))
    c = Consumer({**ck_common(boot), "group.id": "abuse-verify", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    high = {}
    for p in range(NORMAL_PARTITIONS):
        lo, hi = c.get_watermark_offsets(TopicPartition(NORMAL_TOPIC, p), timeout=60)
        high[p] = hi
    c.assign([TopicPartition(NORMAL_TOPIC, p, 0) for p in range(NORMAL_PARTITIONS) if high[p] > 0])
    done = {p for p in range(NORMAL_PARTITIONS) if high[p] == 0}
    seen = Counter()
    found_at = {}
    foreign = 0
    out_of_order = 0
    last = {}
    deadline = time.monotonic() + 600
    errors = Counter()
    while len(done) < NORMAL_PARTITIONS and time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                if msg.offset() >= high[msg.partition()]:
                    done.add(msg.partition())
            else:
                errors[msg.error().name()] += 1
            continue
        p, off = msg.partition(), msg.offset()
        key = msg.key() or b""
        if key.startswith(b"n") and key[1:].isdigit():
            seq = int(key[1:])
            seen[seq] += 1
            found_at.setdefault(seq, (p, off))
            if p in last and seq <= last[p]:
                out_of_order += 1
            last[p] = seq
        else:
            foreign += 1
        if off + 1 >= high[p]:
            done.add(p)
    c.close()
    missing = [s for s in acked if seen[s] == 0]
    dup_acked = [s for s in acked if seen[s] > 1]
    dup_any = [s for s, n in seen.items() if n > 1]
    wrong_offset = [s for s in acked if seen[s] and found_at[s] != acked[s]]
    unacked_present = sum(1 for s in seen if s not in acked)
    EXTRA.update({
        "acked": len(acked), "read_back": sum(1 for s in acked if seen[s] == 1), "missing": len(missing),
        "missing_first": sorted(missing)[:10], "duplicated_acked": len(dup_acked), "duplicated_any": len(dup_any),
        "wrong_offset": len(wrong_offset), "wrong_offset_first": sorted(wrong_offset)[:5], "out_of_order": out_of_order,
        "unacked_present": unacked_present, "foreign": foreign, "high_watermarks": high,
        "complete": len(done) == NORMAL_PARTITIONS, "errors": dict(errors)})
    dump(out)


def role_final(boot, out):
    from confluent_kafka import Consumer, Producer, TopicPartition
    s = connect(boot)
    apis = api_versions(s)
    s.close()
    EXTRA["api_versions_answered"] = len(apis)
    p = Producer({**ck_common(boot), "enable.idempotence": True, "acks": "all"})
    delivered = []
    for i in range(10):
        p.produce(AFTER_TOPIC, key=b"after", value=f"after-{i}".encode(),
                  on_delivery=lambda err, msg: delivered.append(err is None))
    p.flush(60)
    EXTRA["after_produced"] = sum(delivered)
    c = Consumer({**ck_common(boot), "group.id": "abuse-after", "enable.auto.commit": False})
    c.assign([TopicPartition(AFTER_TOPIC, 0, 0)])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 10 and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    EXTRA["after_consumed"] = len(got)
    EXTRA["after_ok"] = got == [f"after-{i}" for i in range(10)]
    dump(out)


# ---------------------------------------------------------------- role: report

def role_report(d, rss_bound_mib, semel_rc, semel_up):
    def load(name):
        try:
            with open(os.path.join(d, name + ".json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
    failed = []
    lines = []

    def check(ok, text):
        lines.append(("PASS " if ok else "FAIL ") + text)
        if not ok:
            failed.append(text)

    def counts(x):
        return (x or {}).get("counts", {})
    fz = counts(load("fuzz"))
    lines.append(f"fuzz: {fz.get('requests', 0)} mutated requests on {fz.get('connections', 0)} connections: "
                 f"{fz.get('answered', 0)} answered, {fz.get('closed by broker', 0)} closed by the broker, "
                 f"{sum(v for k, v in fz.items() if k.startswith('no answer'))} unanswered in 5s, "
                 f"{sum(v for k, v in fz.items() if k.startswith('socket error'))} socket errors; mutations: "
                 + ", ".join(f"{k[9:]} {v}" for k, v in sorted(fz.items()) if k.startswith("mutation ")))
    bm = load("bombs") or {}
    bc = counts(bm)
    lines.append(f"bombs: {bc.get('sent', 0)} sent on {bc.get('connections', 0)} connections: "
                 f"{bc.get('answered error', 0)} refused with an error, {bc.get('answered NONE', 0)} accepted, "
                 f"{bc.get('closed', 0)} closed after answering others; answers not as expected: {bc.get('unexpected', 0)}; "
                 f"closed on a connection's first request (refused at accept under fd pressure, most likely): "
                 f"{bc.get(FIRST_CLOSED, 0)}")
    for k, v in sorted(bc.items()):
        if k.startswith("answer "):
            lines.append(f"  bomb {k[7:]}: {v}")
    for u in bm.get("unexpected", []):
        lines.append(f"  UNEXPECTED bomb answer: {u}")
    pz = load("poison") or {}
    pc = counts(pz)
    lines.append(f"poison: {pc.get('sent', 0)} batches sent: {pc.get('answered error (poison)', 0)} poison refused with "
                 f"an error, {pc.get('poison accepted', 0)} poison accepted, {pc.get('closed', 0)} closed; of the odd "
                 f"batches Kafka accepts: {pc.get('answered NONE (odd)', 0)} accepted, "
                 f"{pc.get('answered error (odd)', 0)} refused")
    answers = Counter()
    for k, v in pc.items():
        if k.startswith("answer "):
            answers[k.rsplit(": ", 1)[1]] += v
    lines.append("  poison answers: " + ", ".join(f"{k} {v}" for k, v in answers.most_common()))
    for a in pz.get("accepted", []):
        lines.append(f"  ACCEPTED poison: {a}")
    sl = load("slowloris") or {}
    sc = counts(sl)
    lines.append("slowloris: " + ", ".join(f"{k} {v}" for k, v in sorted(sc.items()))
                 + f"; longest held before the broker closed: {sl.get('held_s_max', 0)}s")
    nc = counts(load("nonreader"))
    lines.append("non-reading clients: " + ", ".join(f"{k} {v}" for k, v in sorted(nc.items())))
    fp = load("fdpressure") or {}
    fc = counts(fp)
    lines.append("fd pressure: " + ", ".join(f"{k} {v}" for k, v in sorted(fc.items()))
                 + f"; most held at once {fp.get('kept_max', 0)}")
    rss = load("rss") or {}
    peak = rss.get("peak_kib", {})
    max_rss = peak.get("VmRSS", 0) / 1024
    hwm = rss.get("VmHWM_kib", 0) / 1024
    lines.append(f"broker: max VmRSS {max_rss:.0f} MiB (RssAnon {peak.get('RssAnon', 0) / 1024:.0f} MiB), VmHWM "
                 f"{hwm:.0f} MiB, bound {rss_bound_mib} MiB; most fds {peak.get('fds', 0)}, threads "
                 f"{peak.get('Threads', 0)}; {rss.get('samples', 0)} samples")
    lines.append("  RSS over time (s, MiB, fds): " + " ".join(f"{t}:{m}/{f}" for t, m, f in rss.get("series", [])))
    nm = load("normal") or {}
    ncn = counts(nm)
    secs = nm.get("abuse_seconds") or 1
    lines.append(f"normal client: {ncn.get('produced', 0)} produced, {ncn.get('acknowledged', 0)} acknowledged "
                 f"({nm.get('acked_during_abuse', 0)} during the abuse: {nm.get('acked_during_abuse', 0) / secs:.0f}/s "
                 f"over {secs:.0f}s, informational), consumed during the abuse {nm.get('consumed_during_abuse', 0)}; "
                 + ", ".join(f"{k} {v}" for k, v in sorted(ncn.items()) if k.startswith("not acknowledged") or "fatal" in k
                             or "queue" in k))
    if nm.get("client_errors"):
        lines.append("  normal client errors: " + ", ".join(f"{k} {v}" for k, v in sorted(nm["client_errors"].items())))
    for f in nm.get("fatal", []):
        lines.append(f"  producer FATAL: {f}")
    vf = load("verify") or {}
    lines.append(f"read back: {vf.get('read_back', 0)} of {vf.get('acked', 0)} acknowledged records, exactly once at "
                 f"their acknowledged offsets; missing {vf.get('missing', '?')}, duplicated {vf.get('duplicated_acked', '?')}"
                 f" (any record: {vf.get('duplicated_any', '?')}), at another offset {vf.get('wrong_offset', '?')}, out of "
                 f"order {vf.get('out_of_order', '?')}; unacknowledged but present {vf.get('unacked_present', '?')}, "
                 f"foreign records {vf.get('foreign', '?')}; high watermarks {vf.get('high_watermarks')}")
    fn = load("final") or {}
    try:
        settings = [ln.strip() for ln in open(os.path.join(d, "semel.toml")) if not ln.startswith(("listen", "data_dir"))]
        lines.insert(0, "settings: " + ", ".join(settings))
    except OSError:
        pass
    try:
        log_text = re.sub(r"\x1b\[[0-9;]*m", "", open(os.path.join(d, "semel.log"), errors="replace").read())
        patterns = [("refused: out of fds", "out of file descriptors"),
                    ("refused: max_connections_per_ip", "max_connections_per_ip reached"),
                    ("refused: max_connections", "max_connections reached"),
                    ("closed: frame not in time", "did not arrive in time"),
                    ("closed: idle", "closing idle connection"),
                    ("closed: responses not read", "has not read its responses"),
                    ("closed: malformed or unsupported request", "closing connection peer="),
                    ("ERROR lines", " ERROR ")]
        lines.append("broker log: " + ", ".join(f"{name} {log_text.count(p)}" for name, p in patterns))
    except OSError:
        pass

    check(not rss.get("vanished") and semel_up == "1", "the broker stayed up through the abuse")
    check(max_rss > 0 and max_rss <= rss_bound_mib and hwm <= rss_bound_mib,
          f"RSS stayed under the bound (max VmRSS {max_rss:.0f} MiB, VmHWM {hwm:.0f} MiB <= {rss_bound_mib} MiB)")
    check(bool(vf) and vf.get("complete") and vf.get("acked", 0) > 0 and vf.get("missing") == 0
          and vf.get("duplicated_acked") == 0 and vf.get("wrong_offset") == 0 and vf.get("out_of_order") == 0,
          f"every acknowledged record read back exactly once, in order ({vf.get('read_back', 0)}/{vf.get('acked', 0)})")
    check(bool(fn.get("api_versions_answered")) and fn.get("after_ok", False),
          f"after the abuse: ApiVersions answered, a new produce/consume works "
          f"({fn.get('after_produced', 0)} produced, {fn.get('after_consumed', 0)} consumed)")
    check(semel_rc == "0", f"clean shutdown on SIGTERM (exit status {semel_rc})")
    for line in lines:
        print(line)
    print(f"{sum(1 for x in lines if x.startswith('PASS '))} passed, {len(failed)} failed")
    return 1 if failed else 0


def main():
    role, args = sys.argv[1], sys.argv[2:]
    if role == "setup":
        role_setup(args[0])
    elif role == "fuzz":
        role_fuzz(args[0], float(args[1]), args[2], args[3])
    elif role == "bombs":
        role_bombs(args[0], float(args[1]), args[2], args[3])
    elif role == "poison":
        role_poison(args[0], float(args[1]), args[2])
    elif role == "slowloris":
        role_slowloris(args[0], float(args[1]), args[2])
    elif role == "nonreader":
        role_nonreader(args[0], float(args[1]), args[2])
    elif role == "fdpressure":
        role_fdpressure(args[0], float(args[1]), args[2])
    elif role == "normal":
        role_normal(args[0], float(args[1]), args[2], args[3])
    elif role == "rss":
        role_rss(int(args[0]), args[1], args[2])
    elif role == "verify":
        role_verify(args[0], args[1], args[2])
    elif role == "final":
        role_final(args[0], args[1])
    elif role == "report":
        sys.exit(role_report(args[0], int(args[1]), args[2], args[3]))
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main()
