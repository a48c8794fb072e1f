#!/usr/bin/env bash
# Compatibility suite: kafka-python against semel.
#
# Installs the client into compat/kafka-python/.venv (pinned versions), builds
# semel with `cargo build -p semel`, starts it on a free port with a temporary data dir,
# runs the checks, prints one `PASS name` / `FAIL name: why` line per check and finally
# `N passed, M failed`. Exits non-zero if any check failed.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   COMPAT_FULL=1              the full form: the consume-transform-produce check copies 2,000
#                              records instead of 200 (the default form, for CI); the other
#                              checks are the same in both forms
set -euo pipefail

# Pinned client version, plus the codec libraries kafka-python needs for snappy (python-snappy,
# which uses cramjam), lz4 and zstd.
REQUIREMENTS=("kafka-python==3.0.12" "python-snappy==0.7.3" "cramjam==2.14.0" "lz4==4.4.5" "zstandard==0.25.0")

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init kafka-python

# ---------------------------------------------------------------- client install
install_venv "${REQUIREMENTS[@]}"

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

# ---------------------------------------------------------------- checks
COMPAT_FULL="${COMPAT_FULL:-0}" run_python_checks 1500 <<'PY'
import importlib.metadata
import os
import random
import sys
import time
import traceback

import kafka
import kafka.codec
import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

BOOT = sys.argv[1]
DATA_DIR = sys.argv[2]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
N_MESSAGES = 5_000
PARTITIONS = 3
T_ADMIN = "kp-admin"
RETENTION = "172800000"
NOW_MS = int(time.time() * 1000)
BASE_TS = NOW_MS - 3_600_000  # an hour ago: well inside the default retention


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def check(name, fn, *args):
    t0 = time.monotonic()
    try:
        detail = fn(*args)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the run
        msg = f"{type(e).__name__}: {e}".replace("\n", " | ")
        print(f"FAIL {name}: {msg}", flush=True)
        print(f"--- {name}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return False
    took = f"{time.monotonic() - t0:.1f}s"
    print(f"PASS {name} ({detail + ', ' if detail else ''}{took})", flush=True)
    return True


_ADMIN = None


def admin():
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = KafkaAdminClient(bootstrap_servers=BOOT, request_timeout_ms=30000)
    return _ADMIN


def producer(**extra):
    # enable_idempotence is left at kafka-python's default (on since 3.0, KIP-679); the
    # idempotence checks below also produce with it explicitly on and explicitly off.
    conf = dict(bootstrap_servers=BOOT, acks="all", linger_ms=5,
                retries=5, request_timeout_ms=30000, max_block_ms=30000)
    conf.update(extra)
    return KafkaProducer(**conf)


def consumer(**extra):
    conf = dict(bootstrap_servers=BOOT, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", request_timeout_ms=30000)
    conf.update(extra)
    return KafkaConsumer(**conf)


def make_messages(codec, n=N_MESSAGES, partitions=PARTITIONS):
    """Deterministic messages with edge cases: null keys/values, empty values, binary and
    large values, duplicate / empty header values. Timestamps are BASE_TS + i."""
    rnd = random.Random(f"semel-{codec}")
    msgs = []
    for i in range(n):
        key = None if i % 97 == 0 else f"key-{codec}-{i}".encode()
        if i % 101 == 0:
            value = None
        elif i % 103 == 0:
            value = b""
        elif i % 5 == 0:
            value = rnd.randbytes(rnd.randint(1, 2000))
        elif i % 2500 == 7:
            value = (f"large {codec} {i} " * 20000).encode()  # ~300 KB, compressible
        else:
            value = (f"value {i} of {codec} " * rnd.randint(1, 30)).encode()
        if key is None and value is None:
            key = b"k"  # kafka-python refuses a record with neither key nor value
        if i % 4 == 0:
            headers = []
        elif i % 4 == 1:
            headers = [("h", f"{i}".encode())]
        elif i % 4 == 2:
            headers = [("dup", b"a"), ("dup", b"b"), ("empty", b""), ("bin", rnd.randbytes(8))]
        else:
            # kafka-python refuses None header values, so no null header here.
            headers = [("utf8-ключ", "значение".encode()), ("zero", b"\x00")]
        msgs.append({"partition": i % partitions, "key": key, "value": value,
                     "headers": headers, "ts": BASE_TS + i})
    return msgs


def produce_all(p, topic, msgs):
    futures = [p.send(topic, value=m["value"], key=m["key"], headers=m["headers"] or None,
                      partition=m["partition"], timestamp_ms=m["ts"]) for m in msgs]
    p.flush(timeout=90)
    out = []
    for i, f in enumerate(futures):
        try:
            md = f.get(timeout=30)
        except Exception as e:  # noqa: BLE001
            raise CheckFailed(f"message {i} not delivered: {type(e).__name__}: {e}") from e
        out.append((md.partition, md.offset))
    return out


def per_partition(msgs):
    by_part = {}
    for m in msgs:
        by_part.setdefault(m["partition"], []).append(m)
    return by_part


def consume_all(topic, counts, timeout=90, seek_beginning=True, **conf):
    """assign() + seek_to_beginning(), poll until every partition has its count. `conf`: more
    consumer settings (isolation_level)."""
    c = consumer(**conf)
    try:
        tps = [TopicPartition(topic, p) for p in counts]
        c.assign(tps)
        if seek_beginning:
            c.seek_to_beginning(*tps)
        got = {p: [] for p in counts}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(len(got[p]) < n for p, n in counts.items()):
            for tp, records in c.poll(timeout_ms=1000, max_records=2000).items():
                got[tp.partition].extend(records)
        short = {p: (len(got[p]), n) for p, n in counts.items() if len(got[p]) < n}
        expect(not short, f"timed out after {timeout}s; partition: (got, expected) = {short}")
        # Nothing beyond the expected records.
        extra = c.poll(timeout_ms=500)
        expect(not any(extra.values()), f"unexpected extra records: {sum(len(v) for v in extra.values())}")
        return got
    finally:
        c.close()


def compare(topic, msgs, got, first_offsets=None):
    first_offsets = first_offsets or {}
    for p, want in per_partition(msgs).items():
        skip = first_offsets.get(p, 0)
        want = want[skip:]
        have = got.get(p, [])
        expect(len(have) == len(want), f"partition {p}: consumed {len(have)} records, expected {len(want)}")
        for j, (w, h) in enumerate(zip(want, have)):
            where = f"partition {p} offset {h.offset}"
            expect(h.topic == topic, f"{where}: topic {h.topic!r}")
            expect(h.offset == skip + j, f"{where}: expected offset {skip + j}")
            expect(h.key == w["key"], f"{where}: key {h.key!r:.80} != {w['key']!r:.80}")
            expect(h.value == w["value"], f"{where}: value differs (len {len(h.value or b'')} vs "
                                          f"{len(w['value'] or b'')}; got {h.value!r:.60}, want {w['value']!r:.60})")
            expect(list(h.headers or []) == w["headers"],
                   f"{where}: headers {list(h.headers or [])!r:.200} != {w['headers']!r:.200}")
            expect((h.timestamp_type, h.timestamp) == (0, w["ts"]),
                   f"{where}: timestamp ({h.timestamp_type}, {h.timestamp}) != (CreateTime=0, {w['ts']})")
    return sum(len(v) for v in got.values())


# ------------------------------------------------------------------------------- admin

def topic_partition_count(name):
    for t in admin().describe_topics([name]):
        if t.get("name") == name and t.get("error_code", 0) == 0:
            return len(t.get("partitions") or [])
    return None


def c_create_topics():
    res = admin().create_topics({T_ADMIN: {"num_partitions": 3, "replication_factor": 1,
                                           "configs": {"retention.ms": RETENTION}}})
    errs = [(t.get("name"), t.get("error_code")) for t in res.get("topics", []) if t.get("error_code")]
    expect(not errs, f"create_topics errors: {errs}")
    expect(T_ADMIN in admin().list_topics(), f"{T_ADMIN} not in list_topics()")
    n = topic_partition_count(T_ADMIN)
    expect(n == 3, f"describe_topics shows {n} partitions, expected 3")
    return "3 partitions"


def describe(topic, config_filter="all"):
    res = admin().describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter=config_filter)
    return res["topic"][topic]


def c_describe_configs():
    cfg = describe(T_ADMIN, "modified")
    e = cfg.get("retention.ms")
    expect(e is not None, f"retention.ms missing from describe_configs(modified): {sorted(cfg)}")
    expect(e.get("value") == RETENTION, f"retention.ms = {e.get('value')!r}, expected {RETENTION!r}")
    full = describe(T_ADMIN, "all")
    cp = full.get("cleanup.policy")
    expect(cp is not None and cp.get("value") == "delete", f"cleanup.policy = {cp!r:.200}")
    return f"retention.ms={e.get('value')}, {len(full)} entries in all"


def c_alter_configs():
    admin().alter_configs([ConfigResource(ConfigResourceType.TOPIC, T_ADMIN, {"retention.ms": "86400000"})])
    v = describe(T_ADMIN).get("retention.ms", {}).get("value")
    expect(v == "86400000", f"after alter_configs retention.ms = {v!r}")
    return "retention.ms=86400000"


def c_create_partitions():
    admin().create_partitions({T_ADMIN: 4})
    n = topic_partition_count(T_ADMIN)
    expect(n == 4, f"describe_topics shows {n} partitions after create_partitions(4)")
    p = producer()
    try:
        msgs = [{"partition": 3, "key": b"new-partition", "value": b"hello p3", "headers": [], "ts": NOW_MS}]
        produce_all(p, T_ADMIN, msgs)
    finally:
        p.close()
    got = consume_all(T_ADMIN, {3: 1})
    compare(T_ADMIN, msgs, got)
    return "3 -> 4 partitions, produced/consumed partition 3"


def c_delete_topics():
    name = "kp-doomed"
    admin().create_topics({name: {"num_partitions": 2, "replication_factor": 1}})
    res = admin().delete_topics([name])
    errs = [(t.get("name"), t.get("error_code")) for t in res.get("topics", []) if t.get("error_code")]
    expect(not errs, f"delete_topics errors: {errs}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and name in admin().list_topics():
        time.sleep(0.2)
    expect(name not in admin().list_topics(), f"{name} still in list_topics() 60s after delete_topics")
    return "gone from list_topics()"


# ------------------------------------------------------------------------ produce/consume

PRODUCED = {}


def c_produce(codec):
    topic = f"kp-{codec}"
    admin().create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    msgs = make_messages(codec)
    p = producer(compression_type=None if codec == "none" else codec)
    try:
        reports = produce_all(p, topic, msgs)
    finally:
        p.close()
    next_offset = {}
    for i, (part, off) in enumerate(reports):
        want = next_offset.get(msgs[i]["partition"], 0)
        expect(part == msgs[i]["partition"], f"message {i} went to partition {part}, not {msgs[i]['partition']}")
        expect(off == want, f"message {i} got offset {off} in partition {part}, expected {want} (order)")
        next_offset[part] = off + 1
    PRODUCED[codec] = msgs
    return f"{len(msgs)} msgs to {PARTITIONS} partitions, offsets {next_offset}"


def c_consume(codec):
    expect(codec in PRODUCED, "nothing was produced (produce check failed)")
    msgs = PRODUCED[codec]
    got = consume_all(f"kp-{codec}", {p: len(v) for p, v in per_partition(msgs).items()})
    n = compare(f"kp-{codec}", msgs, got)
    return f"{n} records identical, per-partition order kept"


def c_codec_on_disk(codec):
    """The codec really was used on the wire: semel stores record batches as the producer sent
    them, so the codec bits (attributes & 7) of the stored batches show what was sent. Clients
    send a batch uncompressed when compression would not shrink it, so a few records in
    uncompressed batches are fine; another codec, or mostly uncompressed records, are not."""
    expect(codec in PRODUCED, "nothing was produced (produce check failed)")
    seen = {}  # codec id -> batches
    recs = {}  # codec id -> records
    for p in range(PARTITIONS):
        d = os.path.join(DATA_DIR, f"kp-{codec}-{p}")
        for name in sorted(os.listdir(d)):
            if not name.endswith(".log"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            pos = 0
            while pos + 61 <= len(data):
                length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
                attrs = int.from_bytes(data[pos + 21:pos + 23], "big", signed=True)
                count = int.from_bytes(data[pos + 57:pos + 61], "big", signed=True)
                seen[attrs & 7] = seen.get(attrs & 7, 0) + 1
                recs[attrs & 7] = recs.get(attrs & 7, 0) + count
                pos += 12 + length
    names = {v: k for k, v in CODEC_IDS.items()}
    found = ", ".join(f"{n} batches ({recs[c]} records) {names.get(c, c)}" for c, n in sorted(seen.items()))
    want = CODEC_IDS[codec]
    other = {c: n for c, n in seen.items() if c not in (want, 0)}
    total = sum(recs.values())
    expect(total > 0, "no batches on disk")
    expect(not other and recs.get(want, 0) >= 0.9 * total,
           f"stored: {found}; expected {codec} (at most 10% of the records uncompressed)")
    return found


# ----------------------------------------------------------------------------- offsets

def c_beginning_end_offsets():
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "kp-none was not produced")
    counts = {p: len(v) for p, v in per_partition(msgs).items()}
    c = consumer()
    try:
        tps = [TopicPartition("kp-none", p) for p in counts]
        b = c.beginning_offsets(tps)
        e = c.end_offsets(tps)
    finally:
        c.close()
    for tp in tps:
        expect(b.get(tp) == 0, f"beginning_offsets[{tp.partition}] = {b.get(tp)}, expected 0")
        expect(e.get(tp) == counts[tp.partition], f"end_offsets[{tp.partition}] = {e.get(tp)}, expected {counts[tp.partition]}")
    return f"beginning {sorted((tp.partition, o) for tp, o in b.items())}, end {sorted((tp.partition, o) for tp, o in e.items())}"


def c_offsets_for_times():
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "kp-none was not produced")
    by_part = per_partition(msgs)
    cases = []
    for p, ms in by_part.items():
        k = 1234 + p
        cases.append((p, ms[k]["ts"], k, ms[k]["ts"]))              # exact timestamp of a record
        cases.append((p, ms[k]["ts"] + 1, k + 1, ms[k + 1]["ts"]))  # between two -> the next one
        cases.append((p, BASE_TS - 10_000, 0, ms[0]["ts"]))         # before everything -> first
        cases.append((p, NOW_MS + 86_400_000, None, None))         # after everything -> None
    c = consumer()
    try:
        for p, ts, want, want_ts in cases:
            tp = TopicPartition("kp-none", p)
            r = c.offsets_for_times({tp: ts}).get(tp)
            if want is None:
                expect(r is None, f"partition {p} ts {ts} (after the last record): {r}, expected None")
            else:
                expect(r is not None and (r.offset, r.timestamp) == (want, want_ts),
                       f"partition {p} ts {ts}: {r}, expected offset {want} timestamp {want_ts}")
        # One lookup per partition in a single request (the last mid-log case of each).
        some = {TopicPartition("kp-none", p): ts for p, ts, want, _ in cases if want not in (None, 0)}
        r = c.offsets_for_times(some)
        expect(set(r) == set(some) and all(v is not None for v in r.values()),
               f"offsets_for_times over all partitions: {r}")
    finally:
        c.close()
    return f"{len(cases)} lookups + one over all partitions"


def c_delete_records():
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "kp-none was not produced")
    counts = {p: len(v) for p, v in per_partition(msgs).items()}
    tp = TopicPartition("kp-none", 0)
    res = admin().delete_records({tp: 500})
    c = consumer()
    try:
        b = c.beginning_offsets([tp])[tp]
        expect(b == 500, f"beginning_offsets after delete_records(500) = {b} (admin said {res})")
    finally:
        c.close()
    got = consume_all("kp-none", {0: counts[0] - 500})
    expect(got[0][0].offset == 500, f"seek_to_beginning then poll started at {got[0][0].offset}, expected 500")
    compare("kp-none", [m for m in msgs if m["partition"] == 0], got, first_offsets={0: 500})
    return "low watermark 0 -> 500, reading from the beginning starts at 500"


def c_produce_bad_partition():
    p = producer(max_block_ms=10000)
    try:
        how = None
        try:
            f = p.send(T_ADMIN, value=b"nowhere", partition=99)
            f.get(timeout=30)
            raise CheckFailed("producing to partition 99 of a 4-partition topic succeeded")
        except CheckFailed:
            raise
        except Exception as e:  # noqa: BLE001 - any clean client error is fine
            how = f"{type(e).__name__}: {str(e)[:80]}"
        produce_all(p, T_ADMIN, [{"partition": 0, "key": b"after", "value": b"ok", "headers": [], "ts": NOW_MS}])
    finally:
        p.close()
    return f"{how}; next produce fine"


def c_auto_create():
    name = "kp-auto-created"
    p = producer()
    try:
        produce_all(p, name, [{"partition": None, "key": b"k", "value": b"v", "headers": [], "ts": NOW_MS}])
    finally:
        p.close()
    expect(name in admin().list_topics(), f"{name} not in list_topics() after producing to it")
    got = consume_all(name, {0: 1})
    expect(got[0][0].value == b"v", f"read back {got[0][0].value!r}")
    return "producer metadata auto-created the topic"


# -------------------------------------------------------------------------- idempotence

T_IDEM = "kp-idempotent"
IDEM_CODEC = "lz4"
N_IDEM = 20_000


def stored_batches(topic, partitions):
    """The record batch headers stored on disk, per partition, in offset order: base offset,
    record count, codec, producer id (byte 43, i64), producer epoch (51, i16) and base
    sequence (53, i32)."""
    out = {}
    for p in range(partitions):
        d = os.path.join(DATA_DIR, f"{topic}-{p}")
        batches = []
        for name in sorted(os.listdir(d)):
            if not name.endswith(".log"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            pos = 0
            while pos + 61 <= len(data):
                length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
                batches.append({
                    "base_offset": int.from_bytes(data[pos:pos + 8], "big", signed=True),
                    "codec": int.from_bytes(data[pos + 21:pos + 23], "big", signed=True) & 7,
                    "producer_id": int.from_bytes(data[pos + 43:pos + 51], "big", signed=True),
                    "producer_epoch": int.from_bytes(data[pos + 51:pos + 53], "big", signed=True),
                    "base_sequence": int.from_bytes(data[pos + 53:pos + 57], "big", signed=True),
                    "count": int.from_bytes(data[pos + 57:pos + 61], "big", signed=True),
                })
                pos += 12 + length
        out[p] = sorted(batches, key=lambda b: b["base_offset"])
    return out


def check_idempotent_batches(topic, partitions, counts):
    """Every stored batch carries the same producer id >= 0 and epoch (one producer session,
    no reset), and per partition the base sequences start at 0 and follow each other without
    gap or overlap (base_sequence = previous base_sequence + previous record count), covering
    exactly the produced records."""
    stored = stored_batches(topic, partitions)
    ids = sorted({(b["producer_id"], b["producer_epoch"]) for bs in stored.values() for b in bs})
    expect(ids, "no batches on disk")
    expect(all(pid >= 0 and epoch >= 0 for pid, epoch in ids),
           f"stored batches without a producer id / epoch: (producer_id, epoch) seen = {ids[:10]}")
    expect(len(ids) == 1, f"{len(ids)} different (producer_id, epoch) pairs in {topic}: {ids[:10]} "
                          f"(expected a single idempotent producer session)")
    n_batches = 0
    for p, bs in stored.items():
        seq = 0
        for b in bs:
            expect(b["base_sequence"] == seq,
                   f"partition {p} batch at offset {b['base_offset']} ({b['count']} records): base_sequence "
                   f"{b['base_sequence']}, expected {seq} (gap, overlap or restart)")
            seq += b["count"]
        expect(seq == counts.get(p, 0), f"partition {p}: sequences cover {seq} records, expected {counts.get(p, 0)}")
        n_batches += len(bs)
    codecs = sorted({b["codec"] for bs in stored.values() for b in bs})
    pid, epoch = ids[0]
    return pid, epoch, n_batches, codecs


def check_offsets(msgs, reports):
    next_offset = {}
    for i, (part, off) in enumerate(reports):
        want = next_offset.get(msgs[i]["partition"], 0)
        expect(part == msgs[i]["partition"], f"message {i} went to partition {part}, not {msgs[i]['partition']}")
        expect(off == want, f"message {i} got offset {off} in partition {part}, expected {want} (order, no duplicate)")
        next_offset[part] = off + 1
    return next_offset


def check_no_duplicates(got):
    # Every generated key is unique (`key-<topic>-<i>`), except the few null / b"k" ones.
    keys = [(r.partition, r.key) for rs in got.values() for r in rs if r.key and r.key.startswith(b"key-")]
    expect(len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicated records (same key twice)")


def c_idem_produce():
    admin().create_topics({T_IDEM: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    msgs = make_messages("idempotent", n=N_IDEM)
    p = producer(enable_idempotence=True, acks="all", compression_type=IDEM_CODEC)
    try:
        reports = produce_all(p, T_IDEM, msgs)
    finally:
        p.close()
    next_offset = check_offsets(msgs, reports)
    PRODUCED["idempotent"] = msgs
    return f"{len(msgs)} msgs to {PARTITIONS} partitions, offsets {next_offset}"


def c_idem_consume():
    expect("idempotent" in PRODUCED, "nothing was produced (produce check failed)")
    msgs = PRODUCED["idempotent"]
    counts = {p: len(v) for p, v in per_partition(msgs).items()}
    got = consume_all(T_IDEM, counts)
    n = compare(T_IDEM, msgs, got)
    check_no_duplicates(got)
    c = consumer()
    try:
        tps = [TopicPartition(T_IDEM, p) for p in counts]
        end = c.end_offsets(tps)
    finally:
        c.close()
    for tp in tps:
        expect(end.get(tp) == counts[tp.partition],
               f"end_offsets[{tp.partition}] = {end.get(tp)}, expected {counts[tp.partition]}: records stored twice?")
    return f"{n} records identical, per-partition order kept, no duplicates"


def c_idem_on_disk():
    expect("idempotent" in PRODUCED, "nothing was produced (produce check failed)")
    counts = {p: len(v) for p, v in per_partition(PRODUCED["idempotent"]).items()}
    pid, epoch, n_batches, codecs = check_idempotent_batches(T_IDEM, PARTITIONS, counts)
    names = {v: k for k, v in CODEC_IDS.items()}
    expect(CODEC_IDS[IDEM_CODEC] in codecs, f"no {IDEM_CODEC} batch stored (codecs {[names.get(c, c) for c in codecs]})")
    return (f"{n_batches} batches, producer id {pid} epoch {epoch}, sequences 0.. gapless per partition, "
            f"codecs {[names.get(c, c) for c in codecs]}")


def produce_read_back(topic, p, n):
    """Produces n messages to `topic` (3 partitions) with producer p (then closed), reads them
    back and compares them exactly. Returns the per-partition counts."""
    admin().create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    msgs = make_messages(topic, n=n)
    try:
        reports = produce_all(p, topic, msgs)
    finally:
        p.close()
    check_offsets(msgs, reports)
    counts = {q: len(v) for q, v in per_partition(msgs).items()}
    got = consume_all(topic, counts)
    compare(topic, msgs, got)
    check_no_duplicates(got)
    return counts


def c_idem_default():
    """kafka-python 3.x enables idempotence (and acks=all) by default (KIP-679): a producer
    built with nothing but bootstrap_servers is idempotent."""
    p = KafkaProducer(bootstrap_servers=BOOT)
    on = p.config["enable_idempotence"]
    counts = produce_read_back("kp-idempotent-default", p, 2_000)
    expect(on, f"kafka-python {importlib.metadata.version('kafka-python')} does not enable idempotence by default")
    pid, epoch, n_batches, _ = check_idempotent_batches("kp-idempotent-default", PARTITIONS, counts)
    return (f"enable_idempotence={on} acks={p.config['acks']} by default; 2000 msgs read back exactly; "
            f"{n_batches} batches with producer id {pid} epoch {epoch}, gapless sequences")


def c_idem_off():
    """enable_idempotence=False still works, and really is off: no producer id on the batches."""
    p = producer(enable_idempotence=False)
    counts = produce_read_back("kp-idempotence-off", p, 2_000)
    stored = stored_batches("kp-idempotence-off", PARTITIONS)
    ids = sorted({(b["producer_id"], b["producer_epoch"], b["base_sequence"]) for bs in stored.values() for b in bs})
    expect(ids == [(-1, -1, -1)], f"(producer_id, epoch, base_sequence) on disk: {ids[:10]}, expected only (-1, -1, -1)")
    return f"2000 msgs read back exactly; {sum(len(bs) for bs in stored.values())} batches, all with producer id -1"


# ------------------------------------------------------------------------- transactions

T_TXN = "kp-txn"
TXN = {}  # what the commit/abort check saw, for the checks after it


def txn_messages(tag, per_partition, partitions=PARTITIONS):
    return [{"partition": p, "key": f"{tag}-{p}-{i}".encode(), "value": f"{tag} value {p}/{i}".encode(),
             "headers": [("txn", tag.encode())], "ts": NOW_MS + i}
            for i in range(per_partition) for p in range(partitions)]


def end_offsets(topic, partitions, isolation_level):
    """consumer.end_offsets: ListOffsets latest with the consumer's isolation level."""
    c = consumer(isolation_level=isolation_level)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: o for tp, o in c.end_offsets(tps).items()}
    finally:
        c.close()


def offsets_values(got):
    return {p: [(r.offset, r.value) for r in rs] for p, rs in got.items()}


def c_txn_commit_abort():
    """KafkaProducer(transactional_id=...): commits 10 records per partition, aborts 10 per
    partition, commits 5 per partition. Every transaction ends with a marker (control record)
    in each of its partitions, which takes an offset: data at 0-9, 11-20, 22-26. While the
    aborted transaction is open (its records flushed) the last stable offset is 11 and the
    high watermark 21."""
    admin().create_topics({T_TXN: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    p = producer(transactional_id="kp-txn-commit-abort")
    try:
        p.init_transactions()
        offsets = {}
        for tag, n, commit in [("commit1", 10, True), ("abort", 10, False), ("commit2", 5, True)]:
            msgs = txn_messages(tag, n)
            p.begin_transaction()
            reports = produce_all(p, T_TXN, msgs)  # flushed: the records are in the log
            offs = {}
            for m, (part, off) in zip(msgs, reports):
                expect(part == m["partition"], f"{m['key']!r} went to partition {part}, not {m['partition']}")
                offs.setdefault(part, []).append(off)
            offsets[tag] = offs
            TXN[tag] = msgs
            if tag == "abort":
                TXN["open"] = {
                    "end_committed": end_offsets(T_TXN, PARTITIONS, "read_committed"),
                    "end_uncommitted": end_offsets(T_TXN, PARTITIONS, "read_uncommitted"),
                    # bounded well inside the producer's 60 s transaction timeout
                    "consumed": offsets_values(consume_all(T_TXN, {q: 10 for q in range(PARTITIONS)}, timeout=45,
                                                           isolation_level="read_committed")),
                }
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
    finally:
        p.close()
    want = {"commit1": list(range(0, 10)), "abort": list(range(11, 21)), "commit2": list(range(22, 27))}
    for tag, offs in offsets.items():
        for q in range(PARTITIONS):
            expect(offs.get(q) == want[tag], f"{tag} transaction, partition {q}: offsets {offs.get(q)}, "
                                             f"expected {want[tag]} (one offset per marker)")
    o = TXN["open"]
    for q in range(PARTITIONS):
        expect(o["end_committed"][q] == 11 and o["end_uncommitted"][q] == 21,
               f"partition {q} with the transaction open: end_offsets read_committed {o['end_committed'][q]}, "
               f"read_uncommitted {o['end_uncommitted'][q]}, expected 11 (LSO) and 21 (high watermark)")
        expect([off for off, _ in o["consumed"][q]] == list(range(10)),
               f"partition {q} with the transaction open: read_committed read offsets "
               f"{[off for off, _ in o['consumed'][q]]}, expected 0-9 and nothing more")
    return ("3 transactions, offsets per partition 0-9, 11-20, 22-26; while open: end_offsets 11 (read_committed) / "
            "21 (read_uncommitted), read_committed reads 0-9 only")


def c_txn_read_committed():
    expect("commit2" in TXN, "the commit/abort check did not complete")
    committed = consume_all(T_TXN, {q: 15 for q in range(PARTITIONS)}, isolation_level="read_committed")
    everything = consume_all(T_TXN, {q: 25 for q in range(PARTITIONS)}, isolation_level="read_uncommitted")
    for q in range(PARTITIONS):
        mine = lambda tags: [m["value"] for t in tags for m in TXN[t] if m["partition"] == q]  # noqa: E731
        want = list(zip(list(range(0, 10)) + list(range(22, 27)), mine(["commit1", "commit2"])))
        expect(offsets_values(committed)[q] == want,
               f"partition {q}: read_committed read offsets {[r.offset for r in committed[q]]}, "
               f"expected the 15 committed records at 0-9, 22-26")
        want = list(zip(list(range(0, 10)) + list(range(11, 21)) + list(range(22, 27)),
                        mine(["commit1", "abort", "commit2"])))
        expect(offsets_values(everything)[q] == want,
               f"partition {q}: read_uncommitted read offsets {[r.offset for r in everything[q]]}, "
               f"expected 25 records at 0-9, 11-20, 22-26")
    ec = end_offsets(T_TXN, PARTITIONS, "read_committed")
    eu = end_offsets(T_TXN, PARTITIONS, "read_uncommitted")
    expect(ec == eu == {q: 28 for q in range(PARTITIONS)},
           f"end_offsets read_committed {ec}, read_uncommitted {eu}, expected 28 everywhere (25 records + 3 markers)")
    return ("read_committed: 45 records, 15 per partition in order; read_uncommitted: 75; "
            "end_offsets 28 with both isolation levels")


def fenced(e):
    """ProducerFencedError, raised as such or (once the producer is in its fatal error state)
    wrapped: KafkaError("Cannot execute transactional method because we are in an error state:
    [Error 90] ProducerFencedError")."""
    return isinstance(e, Errors.ProducerFencedError) or (
        type(e) is Errors.KafkaError and "error state" in str(e) and "ProducerFencedError" in str(e))


def c_txn_fencing():
    """p1 (transactional_id X) begins a transaction and delivers a record; p2 calls
    init_transactions() with the same transactional_id (InitProducerId: p1's open transaction
    is aborted, the epoch bumped). p1's next send and its commit_transaction fail; kafka-python
    3.x takes the INVALID_PRODUCER_EPOCH of the send as abortable (KIP-360 epoch bump,
    transaction_manager.py), so p1 then aborts: its InitProducerId with the old epoch is
    answered PRODUCER_FENCED (Kafka: TransactionCoordinator.handleInitProducerId), a fatal
    ProducerFencedError. p2 commits; read_committed sees only p2's record."""
    topic = "kp-txn-fence"
    admin().create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    p1 = producer(transactional_id="kp-txn-fenced")
    p2 = None
    steps = []
    try:
        p1.init_transactions()
        p1.begin_transaction()
        produce_all(p1, topic, [{"partition": 0, "key": b"p1", "value": b"p1 before", "headers": [], "ts": NOW_MS}])
        p2 = producer(transactional_id="kp-txn-fenced")
        t0 = time.monotonic()
        p2.init_transactions()
        took = time.monotonic() - t0
        # What an application does: send, commit; on an (abortable) error abort, then begin
        # again; a fatal ProducerFencedError ends it. While its epoch bump (InitProducerId) is
        # in flight kafka-python refuses every transactional call with a KafkaError "Invalid
        # transition attempted from state BUMPING_PRODUCER_EPOCH ..." instead of waiting (a
        # client race): such a call is retried for up to 60 s (a busy machine may take long).
        for op in ("send", "commit_transaction", "abort_transaction", "begin_transaction"):
            deadline = time.monotonic() + 60
            while True:
                try:
                    if op == "send":
                        p1.send(topic, key=b"p1", value=b"p1 after", partition=0).get(timeout=30)
                    else:
                        getattr(p1, op)()
                    steps.append((op, None))
                except Exception as e:  # noqa: BLE001
                    if "from state BUMPING_PRODUCER_EPOCH" in str(e) and time.monotonic() < deadline:
                        time.sleep(0.1)
                        continue
                    steps.append((op, e))
                break
            if fenced(steps[-1][1]):
                break
        desc = "; ".join(f"{op}: {type(e).__name__ + (' (' + str(e)[:140] + ')' if type(e) is Errors.KafkaError else '') if e else 'ok'}"
                         for op, e in steps)
        expect(steps[0][1] is not None, f"the fenced producer's send succeeded ({desc})")
        expect(steps[1][1] is not None, f"the fenced producer's commit_transaction succeeded ({desc})")
        expect(any(fenced(e) for _, e in steps),
               f"the fenced producer never got ProducerFencedError ({desc})")
        p2.begin_transaction()
        produce_all(p2, topic, [{"partition": 0, "key": b"p2", "value": b"p2", "headers": [], "ts": NOW_MS}])
        p2.commit_transaction()
    finally:
        try:
            p1.close(timeout=5)
        except Exception:  # noqa: BLE001 - a fenced producer may not close cleanly
            pass
        if p2 is not None:
            p2.close()
    got = consume_all(topic, {0: 1}, isolation_level="read_committed")
    expect([r.value for r in got[0]] == [b"p2"], f"read_committed after fencing: {[r.value for r in got[0]]}, expected [b'p2']")
    return f"p2 init_transactions took {took:.1f}s; p1: {desc}; read_committed sees only p2's record"


N_CTP = 2_000 if os.environ.get("COMPAT_FULL") == "1" else 200


def c_txn_consume_transform_produce():
    """Exactly-once copy: a group consumer (read_committed, no auto commit) and a
    transactional producer; each transaction produces the transformed records and commits
    the consumer's positions with send_offsets_to_transaction(offsets,
    consumer.group_metadata()) (AddOffsetsToTxn + TxnOffsetCommit with the generation and
    member id, KIP-447). The third transaction is aborted after its records were delivered and
    its offsets sent: the committed offsets stay those of the second, and the consumer seeks
    back to them. The output, read_committed, holds each transformed input exactly once."""
    from kafka.structs import OffsetAndMetadata
    t_in, t_out, group = "kp-ctp-in", "kp-ctp-out", "kp-ctp"
    admin().create_topics({t_in: {"num_partitions": PARTITIONS, "replication_factor": 1},
                           t_out: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    inputs = [{"partition": i % PARTITIONS, "key": f"k{i}".encode(), "value": f"v{i}".encode(),
               "headers": [], "ts": NOW_MS} for i in range(N_CTP)]
    p0 = producer()
    try:
        produce_all(p0, t_in, inputs)
    finally:
        p0.close()
    end = {q: len(v) for q, v in per_partition(inputs).items()}
    c = KafkaConsumer(t_in, bootstrap_servers=BOOT, group_id=group, isolation_level="read_committed",
                      enable_auto_commit=False, auto_offset_reset="earliest", request_timeout_ms=30000)
    p = producer(transactional_id="kp-ctp-txn")
    n_txn = committed_txns = aborted_records = 0
    last_committed, after_abort = {}, None
    try:
        p.init_transactions()
        deadline = time.monotonic() + 120
        while True:
            expect(time.monotonic() < deadline, f"not done after 120s: {committed_txns} transactions committed")
            recs = [r for rs in c.poll(timeout_ms=1000, max_records=N_CTP // 10).values() for r in rs]
            if not recs:
                pos = {tp.partition: c.position(tp) for tp in c.assignment()}
                if len(pos) == PARTITIONS and all(pos[q] >= end[q] for q in end):
                    break
                continue
            n_txn += 1
            p.begin_transaction()
            futs = [p.send(t_out, key=r.key, value=b"T(" + r.value + b")", partition=r.partition) for r in recs]
            positions = {tp: c.position(tp) for tp in c.assignment()}
            p.send_offsets_to_transaction({tp: OffsetAndMetadata(o, "", -1) for tp, o in positions.items()},
                                          c.group_metadata())
            if n_txn == 3:
                p.flush(timeout=30)
                for f in futs:
                    f.get(timeout=30)
                p.abort_transaction()
                aborted_records += len(recs)
                # The last commit's offsets reach the group a moment after commit_transaction
                # returned (Kafka answers EndTxn before it writes the markers): wait up to 60 s
                # (its own deadline: the loop's stays 120 s).
                wait_until = time.monotonic() + 60
                while True:
                    committed = {tp: c.committed(tp) for tp in c.assignment()}
                    after_abort = {tp.partition: o for tp, o in committed.items() if o is not None}
                    if after_abort == last_committed or time.monotonic() > wait_until:
                        break
                    time.sleep(0.1)
                expect(after_abort == last_committed, f"committed offsets after the abort: {after_abort}, "
                                                      f"expected those of the last commit {last_committed}")
                for tp, o in committed.items():
                    if o is None:
                        c.seek_to_beginning(tp)
                    else:
                        c.seek(tp, o)
            else:
                p.commit_transaction()
                committed_txns += 1
                last_committed.update({tp.partition: o for tp, o in positions.items()})
    finally:
        c.close()
        p.close()
    expect(aborted_records > 0, "no transaction was aborted (the input was consumed in fewer than 3?)")
    got = consume_all(t_out, end, isolation_level="read_committed")
    for q in range(PARTITIONS):
        want = [b"T(" + m["value"] + b")" for m in inputs if m["partition"] == q]
        have = [r.value for r in got[q]]
        expect(have == want, f"output partition {q} (read_committed): {len(have)} records, "
                             f"{len(have) - len(set(have))} duplicates, expected the {len(want)} transformed inputs in order")
    deadline = time.monotonic() + 60  # the last commit's markers may still be on their way
    while True:
        offs = admin().list_group_offsets(group)[group]
        have = {tp.partition: o.offset for tp, o in offs.items() if tp.topic == t_in}
        if have == end or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    expect(have == end, f"group {group} committed offsets {have}, expected the input's end offsets {end}")
    return (f"{committed_txns} transactions committed, 1 aborted ({aborted_records} records, committed offsets "
            f"unchanged); output read_committed: {N_CTP} records exactly once; group offsets = end offsets {end}")


print(f"# kafka-python {importlib.metadata.version('kafka-python')}; codecs: gzip, snappy={kafka.codec.has_snappy()}, "
      f"lz4={kafka.codec.has_lz4()}, zstd={kafka.codec.has_zstd()}", flush=True)
check("admin.create_topics 3 partitions + retention.ms", c_create_topics)
check("admin.describe_configs shows retention.ms", c_describe_configs)
check("admin.alter_configs retention.ms", c_alter_configs)
for codec in CODECS:
    check(f"produce 5k keys/values/headers acks=all compression={codec}", c_produce, codec)
for codec in CODECS:
    check(f"consume group_id=None assign()+seek_to_beginning compression={codec}: exact content and order", c_consume, codec)
for codec in CODECS:
    check(f"batches stored with compression={codec} (codec really used on the wire)", c_codec_on_disk, codec)
check("consumer.beginning_offsets / end_offsets", c_beginning_end_offsets)
check("consumer.offsets_for_times", c_offsets_for_times)
check("admin.delete_records moves beginning_offsets", c_delete_records)
check("admin.create_partitions 3 -> 4", c_create_partitions)
check("admin.delete_topics then gone from list_topics", c_delete_topics)
check("produce to a non-existent partition fails cleanly", c_produce_bad_partition)
check("producing to an unknown topic auto-creates it", c_auto_create)
check(f"idempotence: produce 20k enable_idempotence=True acks=all compression={IDEM_CODEC}", c_idem_produce)
check("idempotence: consume assign(): exact content, per-partition order, no duplicates", c_idem_consume)
check("idempotence: stored batches carry one producer id >= 0, base sequences gapless per partition", c_idem_on_disk)
check("idempotence: default KafkaProducer(bootstrap_servers) is idempotent and works", c_idem_default)
check("idempotence: enable_idempotence=False works and stores no producer id", c_idem_off)
check("transactions: KafkaProducer(transactional_id) commit 10 / abort 10 / commit 5 per partition, 3 partitions; LSO while open", c_txn_commit_abort)
check("transactions: read_committed reads the 45 committed records, read_uncommitted all 75; end_offsets by isolation level", c_txn_read_committed)
check("transactions: a second producer with the same transactional_id fences the first (ProducerFencedError)", c_txn_fencing)
check(f"transactions: consume-transform-produce with send_offsets_to_transaction(group_metadata), one abort + rewind: {N_CTP} records exactly once", c_txn_consume_transform_produce)
PY

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
