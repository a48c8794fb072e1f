#!/usr/bin/env bash
# Compatibility suite: confluent-kafka-python (librdkafka) against semel.
#
# Installs the client into compat/confluent-kafka-python/.venv (pinned version), builds
# semel with `cargo build -p semel`, starts it on a free port with a temporary data dir,
# runs the checks, prints one `PASS name` / `FAIL name: why` line per check and finally
# `N passed, M failed`. Exits non-zero if any check failed.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
set -euo pipefail

# Pinned client version (it bundles librdkafka).
REQUIREMENTS=("confluent-kafka==2.16.1")

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init confluent-kafka-python

# ---------------------------------------------------------------- client install
install_venv "${REQUIREMENTS[@]}"

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

# ---------------------------------------------------------------- checks
run_python_checks 1500 <<'PY'
import importlib.metadata
import os
import random
import sys
import time
import traceback

import confluent_kafka
from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, Consumer, IsolationLevel, KafkaError, KafkaException,
                             Producer, TopicPartition, TIMESTAMP_CREATE_TIME)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, NewTopic, OffsetSpec, ResourceType)

BOOT = sys.argv[1]
DATA_DIR = sys.argv[2]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N_MESSAGES = 10_000
PARTITIONS = 3
T_ADMIN = "ck-admin"
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
    # One long-lived client: a dropped AdminClient cancels its pending futures.
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = AdminClient({"bootstrap.servers": BOOT})
    return _ADMIN


def producer(**extra):
    conf = {"bootstrap.servers": BOOT, "acks": "all", "enable.idempotence": False,
            "linger.ms": 5, "message.timeout.ms": 60000}
    conf.update(extra)
    return Producer(conf)


def consumer(**extra):
    # confluent-kafka refuses to build a consumer without group.id; the group is never
    # joined (assign() only) and nothing is committed.
    conf = {"bootstrap.servers": BOOT, "group.id": "semel-compat-unused",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": True}
    conf.update(extra)
    return Consumer(conf)


def wait_all(futures, timeout=30):
    return {k: f.result(timeout) for k, f in futures.items()}


def create_topic(name, partitions, config=None):
    wait_all(admin().create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                             config=config or {})], request_timeout=30))


def topic_partitions(name):
    md = admin().list_topics(timeout=30)
    t = md.topics.get(name)
    return None if t is None else len(t.partitions)


def norm_headers(h):
    return list(h) if h else []


def make_messages(codec, n=N_MESSAGES, partitions=PARTITIONS):
    """Deterministic messages with edge cases: null keys/values, empty values, binary and
    large values, duplicate / empty / null header values. Timestamps are BASE_TS + i."""
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
        if i % 4 == 0:
            headers = []
        elif i % 4 == 1:
            headers = [("h", f"{i}".encode())]
        elif i % 4 == 2:
            headers = [("dup", b"a"), ("dup", b"b"), ("empty", b""), ("bin", rnd.randbytes(8))]
        else:
            headers = [("null", None), ("utf8-ключ", "значение".encode())]
        msgs.append({"partition": i % partitions, "key": key, "value": value,
                     "headers": headers, "ts": BASE_TS + i})
    return msgs


def produce_all(p, topic, msgs):
    """Produce, flush and return the (partition, offset) of every message (or raise)."""
    reports = [None] * len(msgs)

    def cb_for(i):
        def cb(err, m):
            reports[i] = err if err is not None else (m.partition(), m.offset())
        return cb

    for i, m in enumerate(msgs):
        while True:
            try:
                p.produce(topic, value=m["value"], key=m["key"], partition=m["partition"],
                          headers=m["headers"] or None, timestamp=m["ts"], on_delivery=cb_for(i))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(90)
    expect(left == 0, f"{left} messages still undelivered after flush(90)")
    errors = [(i, r) for i, r in enumerate(reports) if not isinstance(r, tuple)]
    expect(not errors, f"{len(errors)} delivery errors, first: message {errors[0][0] if errors else ''}: "
                       f"{errors[0][1] if errors else ''}")
    return reports


def consume_partitions(topic, expected_counts, start=OFFSET_BEGINNING, timeout=90, **conf):
    """assign() every partition in expected_counts at `start`, read until each partition hit
    EOF with at least its expected count. Returns {partition: [Message]}. `conf`: more
    consumer settings (isolation.level)."""
    c = consumer(**conf)
    try:
        c.assign([TopicPartition(topic, p, start) for p in expected_counts])
        got = {p: [] for p in expected_counts}
        eof = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = c.consume(num_messages=1000, timeout=1.0)
            for m in batch:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    raise KafkaException(m.error())
                got[m.partition()].append(m)
            if all(p in eof and len(got[p]) >= n for p, n in expected_counts.items()):
                break
        short = {p: (len(got[p]), n) for p, n in expected_counts.items() if len(got[p]) < n}
        expect(not short, f"timed out after {timeout}s; partition: (got, expected) = {short}")
        return got
    finally:
        c.close()


def compare(topic, msgs, got, first_offsets=None):
    """Exact comparison of consumed messages with the produced ones, partition by partition."""
    first_offsets = first_offsets or {}
    by_part = {}
    for m in msgs:
        by_part.setdefault(m["partition"], []).append(m)
    for p, want in by_part.items():
        skip = first_offsets.get(p, 0)
        want = want[skip:]
        have = got.get(p, [])
        expect(len(have) == len(want), f"partition {p}: consumed {len(have)} messages, expected {len(want)}")
        for j, (w, h) in enumerate(zip(want, have)):
            where = f"partition {p} offset {h.offset()}"
            expect(h.topic() == topic, f"{where}: topic {h.topic()!r}")
            expect(h.offset() == skip + j, f"{where}: expected offset {skip + j}")
            expect(h.key() == w["key"], f"{where}: key {h.key()!r:.80} != {w['key']!r:.80}")
            expect(h.value() == w["value"], f"{where}: value differs (len {len(h.value() or b'')} vs "
                                            f"{len(w['value'] or b'')}; got {h.value()!r:.60}, want {w['value']!r:.60})")
            expect(norm_headers(h.headers()) == w["headers"],
                   f"{where}: headers {norm_headers(h.headers())!r:.200} != {w['headers']!r:.200}")
            expect(h.timestamp() == (TIMESTAMP_CREATE_TIME, w["ts"]),
                   f"{where}: timestamp {h.timestamp()} != (CreateTime, {w['ts']})")
    return sum(len(v) for v in got.values())


def per_partition_counts(msgs):
    counts = {}
    for m in msgs:
        counts[m["partition"]] = counts.get(m["partition"], 0) + 1
    return counts


# ------------------------------------------------------------------------------- admin

def c_create_topic():
    create_topic(T_ADMIN, 3, {"retention.ms": RETENTION})
    n = topic_partitions(T_ADMIN)
    expect(n == 3, f"list_topics shows {n} partitions for {T_ADMIN}, expected 3")
    return "3 partitions"


def describe(topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin().describe_configs([res], request_timeout=30)[res].result(30)


def c_describe_configs():
    cfg = describe(T_ADMIN)
    e = cfg.get("retention.ms")
    expect(e is not None, f"retention.ms missing from describe_configs ({len(cfg)} entries: {sorted(cfg)[:10]})")
    expect(e.value == RETENTION, f"retention.ms = {e.value!r}, expected {RETENTION!r}")
    expect(e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value or e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG,
           f"retention.ms source = {e.source}, expected DYNAMIC_TOPIC_CONFIG")
    expect(not e.is_default, "retention.ms reported as default")
    cp = cfg.get("cleanup.policy")
    expect(cp is not None and cp.value == "delete", f"cleanup.policy = {cp.value if cp else None!r}")
    return f"retention.ms={e.value}, {len(cfg)} entries"


def c_incremental_alter_configs():
    res = ConfigResource(ResourceType.TOPIC, T_ADMIN, incremental_configs=[
        ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET)])
    wait_all(admin().incremental_alter_configs([res]))
    v = describe(T_ADMIN)["retention.ms"].value
    expect(v == "86400000", f"after incremental SET retention.ms = {v!r}")
    res = ConfigResource(ResourceType.TOPIC, T_ADMIN, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    wait_all(admin().incremental_alter_configs([res]))
    e = describe(T_ADMIN)["retention.ms"]
    expect(e.is_default, f"after incremental DELETE retention.ms = {e.value!r} (source {e.source}), expected the default")
    return f"SET then DELETE (default {e.value})"


# ------------------------------------------------------------------------ produce/consume

PRODUCED = {}


def c_produce(codec):
    topic = f"ck-{codec}"
    create_topic(topic, PARTITIONS)
    msgs = make_messages(codec)
    p = producer(**{"compression.type": codec})
    reports = produce_all(p, topic, msgs)
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
    got = consume_partitions(f"ck-{codec}", per_partition_counts(msgs))
    n = compare(f"ck-{codec}", msgs, got)
    return f"{n} msgs identical, per-partition order kept"


CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def c_codec_on_disk(codec):
    """The codec really was used on the wire: semel stores record batches as the producer sent
    them, so the codec bits (attributes & 7) of the stored batches show what was sent. Clients
    send a batch uncompressed when compression would not shrink it, so a few records in
    uncompressed batches are fine; another codec, or mostly uncompressed records, are not."""
    expect(codec in PRODUCED, "nothing was produced (produce check failed)")
    seen = {}  # codec id -> batches
    recs = {}  # codec id -> records
    size = 0
    for p in range(PARTITIONS):
        d = os.path.join(DATA_DIR, f"ck-{codec}-{p}")
        for name in sorted(os.listdir(d)):
            if not name.endswith(".log"):
                continue
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            size += len(data)
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
    hint = ""
    if codec == "lz4" and not seen.get(CODEC_IDS["lz4"]):
        hint = (" -- librdkafka only uses lz4 when the broker advertises FindCoordinator (its proxy "
                "for the LZ4 feature, rdkafka_feature.c) and silently sends uncompressed otherwise")
    want = CODEC_IDS[codec]
    other = {c: n for c, n in seen.items() if c not in (want, 0)}
    total = sum(recs.values())
    expect(total > 0, "no batches on disk")
    expect(not other and recs.get(want, 0) >= 0.9 * total,
           f"stored: {found}; expected {codec} (at most 10% of the records uncompressed){hint}")
    return found


# ----------------------------------------------------------------------------- offsets

def c_watermarks():
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "ck-none was not produced")
    counts = per_partition_counts(msgs)
    c = consumer()
    try:
        for p, n in counts.items():
            wm = c.get_watermark_offsets(TopicPartition("ck-none", p), timeout=30)
            expect(wm == (0, n), f"partition {p}: get_watermark_offsets = {wm}, expected (0, {n})")
    finally:
        c.close()
    return f"(low, high) per partition = {[(0, counts[p]) for p in sorted(counts)]}"


def c_list_offsets():
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "ck-none was not produced")
    counts = per_partition_counts(msgs)
    a = admin()
    for spec_name, spec, want in (("earliest", OffsetSpec.earliest(), lambda p: 0),
                                  ("latest", OffsetSpec.latest(), lambda p: counts[p]),
                                  ("max_timestamp", OffsetSpec.max_timestamp(), lambda p: counts[p] - 1)):
        req = {TopicPartition("ck-none", p): spec for p in counts}
        res = wait_all(a.list_offsets(req, request_timeout=30))
        for tp, info in res.items():
            expect(info.offset == want(tp.partition),
                   f"list_offsets {spec_name} partition {tp.partition}: offset {info.offset}, expected {want(tp.partition)}")
            if spec_name == "max_timestamp":
                last = [m for m in msgs if m["partition"] == tp.partition][-1]
                expect(info.timestamp == last["ts"], f"max_timestamp partition {tp.partition}: timestamp "
                                                     f"{info.timestamp}, expected {last['ts']}")
    return "earliest, latest, max_timestamp"


def c_offsets_for_times():
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "ck-none was not produced")
    by_part = {}
    for m in msgs:
        by_part.setdefault(m["partition"], []).append(m)
    c = consumer()
    a = admin()
    try:
        cases = []
        for p, ms in by_part.items():
            k = 1234 + p
            cases.append((p, ms[k]["ts"], k))            # exact timestamp of a message
            cases.append((p, ms[k]["ts"] + 1, k + 1))    # between two messages -> the next one
            cases.append((p, BASE_TS - 10_000, 0))       # before everything -> first offset
            cases.append((p, NOW_MS + 86_400_000, -1))   # after everything -> -1 (end)
        # A partition may appear once per request, so one lookup per call, then one call
        # covering every partition at once.
        for p, ts, want in cases:
            tp = c.offsets_for_times([TopicPartition("ck-none", p, ts)], timeout=30)[0]
            expect(tp.error is None, f"partition {p} ts {ts}: error {tp.error}")
            expect(tp.offset == want, f"consumer.offsets_for_times partition {p} ts {ts}: offset {tp.offset}, expected {want}")
        some = [case for case in cases if case[2] not in (0, -1)][::2]
        res = c.offsets_for_times([TopicPartition("ck-none", p, ts) for p, ts, _ in some], timeout=30)
        got = sorted((tp.partition, tp.offset) for tp in res)
        want = sorted((p, w) for p, _, w in some)
        expect(got == want, f"consumer.offsets_for_times over all partitions: {got}, expected {want}")
        for p, ts, want in cases:
            info = a.list_offsets({TopicPartition("ck-none", p): OffsetSpec.for_timestamp(ts)},
                                  request_timeout=30)[TopicPartition("ck-none", p)].result(30)
            expect(info.offset == want, f"admin list_offsets for_timestamp partition {p} ts {ts}: "
                                        f"offset {info.offset}, expected {want}")
    finally:
        c.close()
    return f"{len(cases)} lookups via consumer and admin"


def c_delete_records():
    expect(hasattr(AdminClient, "delete_records"), f"confluent-kafka {importlib.metadata.version('confluent-kafka')} has no delete_records")
    msgs = PRODUCED.get("none")
    expect(msgs is not None, "ck-none was not produced")
    counts = per_partition_counts(msgs)
    tp = TopicPartition("ck-none", 0, 1000)
    res = admin().delete_records([tp], request_timeout=30)
    dr = list(res.values())[0].result(30)
    expect(dr.low_watermark == 1000, f"delete_records returned low_watermark {dr.low_watermark}, expected 1000")
    c = consumer()
    try:
        wm = c.get_watermark_offsets(TopicPartition("ck-none", 0), timeout=30)
        expect(wm == (1000, counts[0]), f"get_watermark_offsets after delete_records = {wm}, expected (1000, {counts[0]})")
    finally:
        c.close()
    info = admin().list_offsets({TopicPartition("ck-none", 0): OffsetSpec.earliest()})[TopicPartition("ck-none", 0)].result(30)
    expect(info.offset == 1000, f"list_offsets earliest after delete_records = {info.offset}, expected 1000")
    got = consume_partitions("ck-none", {0: counts[0] - 1000})
    expect(got[0][0].offset() == 1000, f"consuming from OFFSET_BEGINNING started at {got[0][0].offset()}, expected 1000")
    compare("ck-none", [m for m in msgs if m["partition"] == 0], got, first_offsets={0: 1000})
    return f"low watermark 0 -> 1000, consume from beginning starts at 1000"


def c_create_partitions():
    wait_all(admin().create_partitions([NewPartitions(T_ADMIN, 5)], request_timeout=30))
    deadline = time.monotonic() + 60
    n = None
    while time.monotonic() < deadline:
        n = topic_partitions(T_ADMIN)
        if n == 5:
            break
        time.sleep(0.2)
    expect(n == 5, f"list_topics shows {n} partitions after create_partitions(5)")
    p = producer()
    msgs = [{"partition": 4, "key": b"new-partition", "value": b"hello p4", "headers": [], "ts": NOW_MS}]
    produce_all(p, T_ADMIN, msgs)
    got = consume_partitions(T_ADMIN, {4: 1})
    compare(T_ADMIN, msgs, got)
    return "3 -> 5 partitions, produced/consumed partition 4"


def c_delete_topics():
    name = "ck-doomed"
    create_topic(name, 2)
    p = producer()
    produce_all(p, name, [{"partition": i % 2, "key": None, "value": b"x%d" % i, "headers": [], "ts": NOW_MS}
                          for i in range(10)])
    del p
    wait_all(admin().delete_topics([name], operation_timeout=30, request_timeout=30))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if name not in admin().list_topics(timeout=30).topics:
            break
        time.sleep(0.2)
    expect(name not in admin().list_topics(timeout=30).topics, f"{name} still in list_topics 60s after delete_topics")
    # The name is reusable and the old data is gone.
    create_topic(name, 1)
    info = admin().list_offsets({TopicPartition(name, 0): OffsetSpec.latest()})[TopicPartition(name, 0)].result(30)
    expect(info.offset == 0, f"re-created {name} has end offset {info.offset}, expected 0")
    wait_all(admin().delete_topics([name], request_timeout=30))
    return "gone from list_topics; re-created empty"


def c_produce_bad_partition():
    # message.timeout.ms bounds the message to partition 99 if librdkafka waited for it to
    # appear; the same producer then delivers a message, which a busy machine may make slow.
    p = producer(**{"message.timeout.ms": 30000})
    outcome = {}

    def cb(err, m):
        outcome["err"] = err
        outcome["partition"] = m.partition()

    how = None
    try:
        p.produce(T_ADMIN, value=b"nowhere", partition=99, on_delivery=cb)
        left = p.flush(60)
        expect(left == 0, "the message to partition 99 was neither delivered nor failed within 60s")
        err = outcome.get("err")
        expect(err is not None, f"producing to partition 99 of a 5-partition topic succeeded: {outcome}")
        how = f"delivery report: {err.name()}"
    except KafkaException as e:
        how = f"produce() raised {e.args[0].name()}"
    # The producer (and the broker) still work afterwards.
    produce_all(p, T_ADMIN, [{"partition": 0, "key": b"after", "value": b"ok", "headers": [], "ts": NOW_MS}])
    return f"{how}; next produce fine"


def c_broker_metadata():
    md = admin().list_topics(timeout=30)
    brokers = list(md.brokers.values())
    expect(len(brokers) == 1, f"{len(brokers)} brokers in metadata")
    b = brokers[0]
    expect(f"{b.host}:{b.port}" == BOOT, f"broker advertised as {b.host}:{b.port}, expected {BOOT}")
    expect(md.controller_id == b.id, f"controller id {md.controller_id} != broker id {b.id}")
    dc = admin().describe_cluster(request_timeout=30).result(30)
    expect(len(dc.nodes) == 1 and dc.nodes[0].port == b.port, f"describe_cluster nodes {dc.nodes}")
    return f"broker {b.id} at {b.host}:{b.port}, cluster id {dc.cluster_id}"


# -------------------------------------------------------------------------- idempotence

T_IDEM = "ck-idempotent"
IDEM_CODEC = "zstd"
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


def c_idem_produce():
    create_topic(T_IDEM, PARTITIONS)
    msgs = make_messages("idempotent", n=N_IDEM)
    errors = []  # client-level errors (a fatal idempotence error such as OUT_OF_ORDER_SEQUENCE_NUMBER)
    p = producer(**{"enable.idempotence": True, "acks": "all", "compression.type": IDEM_CODEC,
                    "error_cb": errors.append})
    reports = produce_all(p, T_IDEM, msgs)
    p.poll(0)
    fatal = [e for e in errors if e.fatal()]
    expect(not fatal, f"fatal producer error: {fatal[0].name()}: {fatal[0].str()}" if fatal else "")
    next_offset = {}
    for i, (part, off) in enumerate(reports):
        want = next_offset.get(msgs[i]["partition"], 0)
        expect(part == msgs[i]["partition"], f"message {i} went to partition {part}, not {msgs[i]['partition']}")
        expect(off == want, f"message {i} got offset {off} in partition {part}, expected {want} (order, no duplicate)")
        next_offset[part] = off + 1
    PRODUCED["idempotent"] = msgs
    other = f", {len(errors)} non-fatal client errors (first {errors[0].name()})" if errors else ""
    return f"{len(msgs)} msgs to {PARTITIONS} partitions, offsets {next_offset}{other}"


def c_idem_consume():
    expect("idempotent" in PRODUCED, "nothing was produced (produce check failed)")
    msgs = PRODUCED["idempotent"]
    counts = per_partition_counts(msgs)
    got = consume_partitions(T_IDEM, counts)
    n = compare(T_IDEM, msgs, got)
    keys = [(m.partition(), m.key()) for ms in got.values() for m in ms if m.key() is not None]
    expect(len(keys) == len(set(keys)), f"{len(keys) - len(set(keys))} duplicated records (same key twice)")
    c = consumer()
    try:
        for p, n_p in counts.items():
            wm = c.get_watermark_offsets(TopicPartition(T_IDEM, p), timeout=30)
            expect(wm == (0, n_p), f"partition {p}: watermarks {wm}, expected (0, {n_p}): records stored twice?")
    finally:
        c.close()
    return f"{n} msgs identical, per-partition order kept, no duplicates"


def c_idem_on_disk():
    expect("idempotent" in PRODUCED, "nothing was produced (produce check failed)")
    counts = per_partition_counts(PRODUCED["idempotent"])
    pid, epoch, n_batches, codecs = check_idempotent_batches(T_IDEM, PARTITIONS, counts)
    names = {v: k for k, v in CODEC_IDS.items()}
    expect(CODEC_IDS[IDEM_CODEC] in codecs, f"no {IDEM_CODEC} batch stored (codecs {[names.get(c, c) for c in codecs]})")
    return (f"{n_batches} batches, producer id {pid} epoch {epoch}, sequences 0.. gapless per partition, "
            f"codecs {[names.get(c, c) for c in codecs]}")


# ------------------------------------------------------------------------- transactions

T_TXN = "ck-txn"
READ_COMMITTED = {"isolation.level": "read_committed"}
READ_UNCOMMITTED = {"isolation.level": "read_uncommitted"}
TXN = {}  # what the commit/abort check saw, for the checks after it


def txn_producer(txn_id, **extra):
    """A transactional producer (librdkafka turns idempotence on by itself)."""
    conf = {"bootstrap.servers": BOOT, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    return Producer(conf)


def txn_messages(tag, per_partition, partitions=PARTITIONS):
    return [{"partition": p, "key": f"{tag}-{p}-{i}".encode(), "value": f"{tag} value {p}/{i}".encode(),
             "headers": [("txn", tag.encode())], "ts": NOW_MS + i}
            for i in range(per_partition) for p in range(partitions)]


def offsets_by_partition(msgs, reports):
    out = {}
    for m, (part, off) in zip(msgs, reports):
        expect(part == m["partition"], f"{m['key']!r} went to partition {part}, not {m['partition']}")
        out.setdefault(part, []).append(off)
    return out


def latest_offsets(topic, partitions, isolation):
    """AdminClient.list_offsets(latest) with an isolation level: {partition: offset}."""
    req = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
    res = wait_all(admin().list_offsets(req, isolation_level=isolation, request_timeout=30))
    return {tp.partition: info.offset for tp, info in res.items()}


def watermarks(topic, partitions, **conf):
    """consumer.get_watermark_offsets (ListOffsets with the consumer's isolation.level)."""
    c = consumer(**conf)
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in range(partitions)}
    finally:
        c.close()


def values(got):
    return {p: [(m.offset(), m.value()) for m in ms] for p, ms in got.items()}


def c_txn_commit_abort():
    """One transactional producer, 3 partitions: commits 10 records per partition, aborts 10
    per partition, commits 5 per partition. Each transaction ends with a control record
    (marker) in every partition it wrote to, which takes an offset: the data offsets are
    0-9, 11-20 and 22-26, the markers 10, 21 and 27. While the aborted transaction is still
    open (its records flushed), the last stable offset is 11 and the high watermark 21: a
    read_committed consumer stops at 11, list_offsets says so."""
    create_topic(T_TXN, PARTITIONS)
    errors = []
    p = txn_producer("ck-txn-commit-abort", error_cb=errors.append)
    p.init_transactions(30)
    batches = [("commit1", 10, True), ("abort", 10, False), ("commit2", 5, True)]
    offsets = {}
    for tag, n, commit in batches:
        msgs = txn_messages(tag, n)
        p.begin_transaction()
        reports = produce_all(p, T_TXN, msgs)  # flushed: the records are in the log
        offsets[tag] = offsets_by_partition(msgs, reports)
        TXN[tag] = msgs
        if tag == "abort":
            # The transaction is open: look at the offsets and at a read_committed consumer
            # (bounded well inside the producer's 60 s transaction timeout).
            TXN["open"] = {
                "wm_committed": watermarks(T_TXN, PARTITIONS, **READ_COMMITTED),
                "wm_uncommitted": watermarks(T_TXN, PARTITIONS, **READ_UNCOMMITTED),
                "lo_committed": latest_offsets(T_TXN, PARTITIONS, IsolationLevel.READ_COMMITTED),
                "lo_uncommitted": latest_offsets(T_TXN, PARTITIONS, IsolationLevel.READ_UNCOMMITTED),
                "consumed": values(consume_partitions(T_TXN, {q: 10 for q in range(PARTITIONS)},
                                                      timeout=45, **READ_COMMITTED)),
            }
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    fatal = [e for e in errors if e.fatal()]
    expect(not fatal, f"fatal producer error: {fatal[0].name()}: {fatal[0].str()}" if fatal else "")
    want = {"commit1": list(range(0, 10)), "abort": list(range(11, 21)), "commit2": list(range(22, 27))}
    for tag, offs in offsets.items():
        for q in range(PARTITIONS):
            expect(offs.get(q) == want[tag], f"{tag} transaction, partition {q}: delivery offsets {offs.get(q)}, "
                                             f"expected {want[tag]} (one offset per marker)")
    return f"3 transactions, delivery offsets per partition 0-9, 11-20, 22-26"


def c_txn_open_lso():
    expect("open" in TXN, "the commit/abort check did not get to the open transaction")
    o = TXN["open"]
    for q in range(PARTITIONS):
        expect(o["wm_committed"][q] == (0, 11), f"partition {q}: get_watermark_offsets with isolation.level="
               f"read_committed = {o['wm_committed'][q]}, expected (0, 11) (the last stable offset)")
        expect(o["wm_uncommitted"][q] == (0, 21), f"partition {q}: get_watermark_offsets with isolation.level="
               f"read_uncommitted = {o['wm_uncommitted'][q]}, expected (0, 21) (the high watermark)")
        expect(o["lo_committed"][q] == 11, f"partition {q}: list_offsets latest READ_COMMITTED = "
                                           f"{o['lo_committed'][q]}, expected 11")
        expect(o["lo_uncommitted"][q] == 21, f"partition {q}: list_offsets latest READ_UNCOMMITTED = "
                                             f"{o['lo_uncommitted'][q]}, expected 21")
        want = [(i, m["value"]) for i, m in enumerate(m for m in TXN["commit1"] if m["partition"] == q)]
        expect(o["consumed"][q] == want, f"partition {q}: a read_committed consumer read "
               f"{[off for off, _ in o['consumed'][q]]} before the end of the partition, expected offsets 0-9")
    return "LSO 11 / high watermark 21 per partition; read_committed reads offsets 0-9 then EOF"


def c_txn_read_committed():
    expect("commit2" in TXN, "the commit/abort check did not complete")
    got = consume_partitions(T_TXN, {q: 15 for q in range(PARTITIONS)}, **READ_COMMITTED)
    for q in range(PARTITIONS):
        want = [(off, m["value"]) for off, m in zip(list(range(0, 10)) + list(range(22, 27)),
                                                      [m for m in TXN["commit1"] + TXN["commit2"] if m["partition"] == q])]
        expect(values(got)[q] == want, f"partition {q}: read_committed read {len(got[q])} records at offsets "
                                       f"{[m.offset() for m in got[q]]}, expected the 15 committed ones at 0-9, 22-26")
        for m in got[q]:
            expect(m.headers() == [("txn", b"commit1" if m.offset() < 10 else b"commit2")],
                   f"partition {q} offset {m.offset()}: headers {m.headers()}")
    return f"{sum(len(v) for v in got.values())} records, 15 per partition in order, none of the aborted"


def c_txn_read_uncommitted():
    expect("commit2" in TXN, "the commit/abort check did not complete")
    got = consume_partitions(T_TXN, {q: 25 for q in range(PARTITIONS)}, **READ_UNCOMMITTED)
    for q in range(PARTITIONS):
        want = [(off, m["value"]) for off, m in zip(list(range(0, 10)) + list(range(11, 21)) + list(range(22, 27)),
                                                      [m for m in TXN["commit1"] + TXN["abort"] + TXN["commit2"]
                                                       if m["partition"] == q])]
        expect(values(got)[q] == want, f"partition {q}: read_uncommitted read {len(got[q])} records at offsets "
                                       f"{[m.offset() for m in got[q]]}, expected 25 at 0-9, 11-20, 22-26")
    return f"{sum(len(v) for v in got.values())} data records (aborted ones included), no control record"


def c_txn_offsets():
    """Once every transaction is complete the last stable offset is the high watermark, and
    both count the markers: 25 data records + 3 markers = 28 per partition."""
    expect("commit2" in TXN, "the commit/abort check did not complete")
    wc = watermarks(T_TXN, PARTITIONS, **READ_COMMITTED)
    wu = watermarks(T_TXN, PARTITIONS, **READ_UNCOMMITTED)
    lc = latest_offsets(T_TXN, PARTITIONS, IsolationLevel.READ_COMMITTED)
    lu = latest_offsets(T_TXN, PARTITIONS, IsolationLevel.READ_UNCOMMITTED)
    req = {TopicPartition(T_TXN, q): OffsetSpec.earliest() for q in range(PARTITIONS)}
    le = {tp.partition: i.offset for tp, i in wait_all(admin().list_offsets(
        req, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=30)).items()}
    for q in range(PARTITIONS):
        expect(wc[q] == (0, 28) and wu[q] == (0, 28), f"partition {q}: get_watermark_offsets read_committed "
               f"{wc[q]}, read_uncommitted {wu[q]}, expected (0, 28) for both")
        expect(lc[q] == 28 and lu[q] == 28, f"partition {q}: list_offsets latest READ_COMMITTED {lc[q]}, "
                                            f"READ_UNCOMMITTED {lu[q]}, expected 28 for both")
        expect(le[q] == 0, f"partition {q}: list_offsets earliest READ_COMMITTED {le[q]}, expected 0")
    return "watermarks (0, 28) and latest 28 with both isolation levels, earliest 0"


FENCE = {}  # what the fencing scenario saw


def c_txn_fencing():
    """A second producer with the same transactional.id fences the first: its
    init_transactions() aborts the first one's open transaction and bumps the epoch. The
    first producer then produces one more record and commits: the commit fails, and if
    librdkafka only asks for an abort, abort_transaction() fails with a fatal error. The
    new producer's transaction commits, and a read_committed consumer sees only its record."""
    topic = "ck-txn-fence"
    create_topic(topic, 1)
    errors1 = []
    p1 = txn_producer("ck-txn-fenced", error_cb=errors1.append)
    p1.init_transactions(30)
    p1.begin_transaction()
    produce_all(p1, topic, [{"partition": 0, "key": b"p1", "value": b"p1 before", "headers": [], "ts": NOW_MS}])
    p2 = txn_producer("ck-txn-fenced")
    t0 = time.monotonic()
    p2.init_transactions(30)
    took_init = time.monotonic() - t0
    # p1 goes on with its transaction: one more record, then a commit (then, as long as no
    # error was fatal, what an application does next: abort, begin).
    delivery = {}
    steps = []  # (operation, KafkaError or None)

    def on_delivery(err, m):
        delivery["err"] = err

    for op in ("produce", "commit_transaction", "abort_transaction", "begin_transaction"):
        try:
            if op == "produce":
                p1.produce(topic, key=b"p1", value=b"p1 after", partition=0, on_delivery=on_delivery)
                p1.flush(30)
            elif op == "begin_transaction":
                p1.begin_transaction()
            else:
                getattr(p1, op)(30)
            steps.append((op, None))
        except KafkaException as e:
            steps.append((op, e.args[0]))
        if op != "produce" and steps[-1][1] is not None and steps[-1][1].fatal():
            break
    FENCE["delivery"] = delivery.get("err")
    FENCE["steps"] = steps

    def name(err):
        return err.name() + (" (fatal)" if err.fatal() else " (abortable)" if err.txn_requires_abort() else "")

    d = delivery.get("err")
    desc = "; ".join(f"{op}: {name(err) if err else 'ok'}" for op, err in steps).replace(
        "produce: ok", f"produce: delivery report {d.name() if d else 'ok'}", 1)
    FENCE["desc"] = desc
    commit_err = dict(steps).get("commit_transaction")
    expect(commit_err is not None, f"the fenced producer's commit_transaction succeeded ({desc})")
    expect(any(err is not None and err.fatal() for _, err in steps),
           f"the fenced producer never got a fatal error ({desc})")
    # The new producer works, and only its records are committed.
    p2.begin_transaction()
    produce_all(p2, topic, [{"partition": 0, "key": b"p2", "value": b"p2", "headers": [], "ts": NOW_MS}])
    p2.commit_transaction(30)
    got = consume_partitions(topic, {0: 1}, **READ_COMMITTED)
    expect([m.value() for m in got[0]] == [b"p2"],
           f"read_committed after fencing: {[m.value() for m in got[0]]}, expected [b'p2'] (p1's record aborted)")
    return (f"p2 init_transactions took {took_init:.1f}s; p1: {desc}; read_committed sees only p2's record")


def c_txn_fencing_produce_error():
    """What Kafka answers a fenced producer's Produce: INVALID_PRODUCER_EPOCH (the log's
    producer state, or KIP-890 verification mapping PRODUCER_FENCED to it), which
    librdkafka turns into the fatal _FENCED error at once (rd_kafka_handle_Produce_error)."""
    expect("steps" in FENCE, "the fencing check did not get that far")
    fenced = {KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError._FENCED}
    d = FENCE["delivery"]
    first = next((err for _, err in FENCE["steps"] if err is not None), None)
    expect(first is not None and first.fatal() and first.code() in fenced,
           f"first error of the fenced producer: {first.name() if first else None} "
           f"(fatal={first.fatal() if first else None}), expected a fatal _FENCED; the record's delivery report: "
           f"{d.name() + ': ' + d.str() if d else 'ok'} (Kafka answers INVALID_PRODUCER_EPOCH); {FENCE['desc']}")
    return FENCE["desc"]


def c_txn_consume_transform_produce():
    """Exactly-once copy: a group consumer (read_committed, no auto commit) and a
    transactional producer; each transaction produces the transformed records and commits
    the consumer's positions with send_offsets_to_transaction (TxnOffsetCommit with the
    consumer's group metadata, KIP-447). The third transaction is aborted (after its records
    were flushed and its offsets sent), and the consumer rewinds to the committed offsets."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    t_in, t_out, group = "ck-ctp-in", "ck-ctp-out", "ck-ctp"
    n_in = 200
    create_topic(t_in, PARTITIONS)
    create_topic(t_out, PARTITIONS)
    inputs = [{"partition": i % PARTITIONS, "key": f"k{i}".encode(), "value": f"v{i}".encode(),
               "headers": [], "ts": NOW_MS} for i in range(n_in)]
    produce_all(producer(), t_in, inputs)
    end = {q: len([m for m in inputs if m["partition"] == q]) for q in range(PARTITIONS)}
    c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "isolation.level": "read_committed",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    p = txn_producer("ck-ctp-txn")
    p.init_transactions(30)
    committed_txns = aborted_txns = aborted_records = 0
    abort_check = None
    last_committed = {}
    try:
        c.subscribe([t_in])
        deadline = time.monotonic() + 120
        n_txn = 0
        while True:
            expect(time.monotonic() < deadline, f"not done after 120s: {committed_txns} transactions committed, "
                                                f"positions {[(tp.partition, tp.offset) for tp in c.position(c.assignment())]}")
            msgs = c.consume(num_messages=30, timeout=1.0)
            for m in msgs:
                if m.error():
                    raise KafkaException(m.error())
            if not msgs:
                pos = {tp.partition: tp.offset for tp in c.position(c.assignment())}
                if len(pos) == PARTITIONS and all(pos[q] >= end[q] for q in end):
                    break
                continue
            n_txn += 1
            p.begin_transaction()
            for m in msgs:
                while True:
                    try:
                        p.produce(t_out, key=m.key(), value=b"T(" + m.value() + b")", partition=m.partition())
                        break
                    except BufferError:
                        p.poll(0.05)
            positions = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
            p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 30)
            if n_txn == 3:
                expect(p.flush(30) == 0, "records of the transaction to abort not delivered")
                p.abort_transaction(30)
                aborted_txns += 1
                aborted_records += len(msgs)
                # OffsetFetch (require_stable: the consumer is read_committed): the offsets
                # of the last committed transaction, not those of the aborted one.
                committed = c.committed(c.assignment(), timeout=30)
                after = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
                abort_check = after
                expect(after == last_committed, f"committed offsets after the abort: {after}, expected those of the "
                                                f"last committed transaction {last_committed}")
                for tp in committed:
                    c.seek(TopicPartition(t_in, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            else:
                p.commit_transaction(30)
                committed_txns += 1
                last_committed.update({tp.partition: tp.offset for tp in positions})
    finally:
        c.close()
    expect(aborted_txns == 1, f"{aborted_txns} transactions aborted (the input was consumed in fewer than 3?)")
    out_counts = {q: end[q] for q in range(PARTITIONS)}
    got = consume_partitions(t_out, out_counts, **READ_COMMITTED)
    for q in range(PARTITIONS):
        want = [b"T(" + m["value"] + b")" for m in inputs if m["partition"] == q]
        have = [m.value() for m in got[q]]
        dup = len(have) - len(set(have))
        expect(have == want, f"output partition {q} (read_committed): {len(have)} records, {dup} duplicates, "
                             f"expected the {len(want)} transformed input records in order")
    raw = consume_partitions(t_out, out_counts, **READ_UNCOMMITTED)
    n_raw = sum(len(v) for v in raw.values())
    res = admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)
    offs = {tp.partition: tp.offset for tp in res[group].result(30).topic_partitions if tp.topic == t_in}
    expect(offs == end, f"group {group} committed offsets {offs}, expected the input's end offsets {end}")
    return (f"{committed_txns} transactions committed, 1 aborted ({aborted_records} records, committed offsets "
            f"unchanged {abort_check}); output read_committed: {n_in} records, no duplicate; read_uncommitted: "
            f"{n_raw}; group offsets = end offsets {end}")


def c_txn_timeout():
    """A transaction left open past transaction.timeout.ms (20 s) is aborted by the broker:
    the last stable offset moves past it within a minute after that (read_committed latest
    offset = high watermark, which then includes the abort marker), a read_committed consumer
    reads the record produced after it, and the producer's commit_transaction fails. (20 s,
    not less: what is checked while the transaction is open, with new clients, must be done
    before it times out, also on a busy machine.)"""
    topic = "ck-txn-timeout"
    create_topic(topic, 1)
    errors = []
    p = txn_producer("ck-txn-timeout", **{"transaction.timeout.ms": 20000, "error_cb": errors.append})
    p.init_transactions(30)
    p.begin_transaction()
    t0 = time.monotonic()  # before the first record: the transaction's clock starts after this
    produce_all(p, topic, [{"partition": 0, "key": b"open", "value": b"open %d" % i, "headers": [], "ts": NOW_MS}
                           for i in range(5)])
    produce_all(producer(), topic, [{"partition": 0, "key": b"plain", "value": b"after the open transaction",
                                     "headers": [], "ts": NOW_MS}])
    lc = latest_offsets(topic, 1, IsolationLevel.READ_COMMITTED)[0]
    lu = latest_offsets(topic, 1, IsolationLevel.READ_UNCOMMITTED)[0]
    stuck = (lc, lu)
    expect(lc == 0 and lu == 6, f"with the transaction open: list_offsets latest READ_COMMITTED {lc}, "
                                f"READ_UNCOMMITTED {lu}, expected 0 and 6 (aborted already? "
                                f"{time.monotonic() - t0:.1f}s after the transaction began)")
    while True:
        took = time.monotonic() - t0
        lc = latest_offsets(topic, 1, IsolationLevel.READ_COMMITTED)[0]
        lu = latest_offsets(topic, 1, IsolationLevel.READ_UNCOMMITTED)[0]
        if lc == lu and lu > 6:
            break
        expect(took < 80, f"80 s after the transaction began (timeout 20 s) the last stable offset is still {lc} "
                          f"(high watermark {lu}): the open transaction was not aborted")
        time.sleep(0.2)
    wc = watermarks(topic, 1, **READ_COMMITTED)[0]
    expect(wc == (0, 7), f"get_watermark_offsets read_committed {wc}, expected (0, 7)")
    got = consume_partitions(topic, {0: 1}, **READ_COMMITTED)
    expect([(m.offset(), m.value()) for m in got[0]] == [(5, b"after the open transaction")],
           f"read_committed read {[(m.offset(), m.value()) for m in got[0]]}, expected only offset 5")
    err = None
    try:
        p.commit_transaction(30)
    except KafkaException as e:
        err = e.args[0]
    expect(err is not None, "commit_transaction of the timed-out (aborted) transaction succeeded")
    return (f"LSO {stuck[0]} (high watermark {stuck[1]}) while open, = high watermark {lu} after {took:.1f}s; "
            f"read_committed reads past it; commit_transaction: {err.name()} fatal={err.fatal()} "
            f"txn_requires_abort={err.txn_requires_abort()} ({err.str()[:100]})")


print(f"# confluent-kafka {importlib.metadata.version('confluent-kafka')}, librdkafka {confluent_kafka.libversion()[0]}", flush=True)
check("metadata: one broker at the bootstrap address, describe_cluster", c_broker_metadata)
check("admin.create_topics 3 partitions + retention.ms", c_create_topic)
check("admin.describe_configs shows retention.ms", c_describe_configs)
check("admin.incremental_alter_configs SET/DELETE retention.ms", c_incremental_alter_configs)
for codec in CODECS:
    check(f"produce 10k keys/values/headers acks=all compression={codec}", c_produce, codec)
for codec in CODECS:
    check(f"consume assign() from OFFSET_BEGINNING compression={codec}: exact content and order", c_consume, codec)
for codec in CODECS:
    check(f"batches stored with compression={codec} (codec really used on the wire)", c_codec_on_disk, codec)
check("consumer.get_watermark_offsets", c_watermarks)
check("admin.list_offsets earliest/latest/max_timestamp", c_list_offsets)
check("offsets_for_times (consumer and admin for_timestamp)", c_offsets_for_times)
check("admin.delete_records moves the low watermark", c_delete_records)
check("admin.create_partitions 3 -> 5", c_create_partitions)
check("admin.delete_topics then gone from list_topics", c_delete_topics)
check("produce to a non-existent partition fails cleanly", c_produce_bad_partition)
check(f"idempotence: produce 20k enable.idempotence=True acks=all compression={IDEM_CODEC}", c_idem_produce)
check("idempotence: consume assign(): exact content, per-partition order, no duplicates", c_idem_consume)
check("idempotence: stored batches carry one producer id >= 0, base sequences gapless per partition", c_idem_on_disk)
check("transactions: commit 10 / abort 10 / commit 5 per partition across 3 partitions, delivery offsets skip the markers", c_txn_commit_abort)
check("transactions: while a transaction is open, read_committed stops at the LSO (watermarks, list_offsets by isolation level)", c_txn_open_lso)
check("transactions: read_committed consumer reads exactly the 45 committed records, 15 per partition in order", c_txn_read_committed)
check("transactions: read_uncommitted consumer reads all 75 data records, no control record", c_txn_read_uncommitted)
check("transactions: after commit/abort, LSO = high watermark incl. markers (watermarks, list_offsets by isolation level)", c_txn_offsets)
check("transactions: a second producer with the same transactional.id fences the first (fatal error on its next operation)", c_txn_fencing)
check("transactions: the fenced producer's next Produce is refused as by Kafka (INVALID_PRODUCER_EPOCH: librdkafka's fatal _FENCED at once)", c_txn_fencing_produce_error)
check("transactions: consume-transform-produce with send_offsets_to_transaction, one abort + rewind: 200 records exactly once", c_txn_consume_transform_produce)
check("transactions: an open transaction times out (transaction.timeout.ms=20000): aborted, LSO advances, commit fails", c_txn_timeout)
PY

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
