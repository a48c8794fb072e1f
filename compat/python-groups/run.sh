#!/usr/bin/env bash
# Compatibility suite: consumer groups with both Python clients (kafka-python and
# confluent-kafka-python / librdkafka) against semel.
#
# Installs both clients into compat/python-groups/.venv (pinned versions, the same as the
# kafka-python and confluent-kafka-python suites), builds semel with `cargo build -p semel`,
# starts it on a free port with a temporary data dir, runs the checks, prints one
# `PASS name` / `FAIL name: why` line per check and finally `N passed, M failed`. Exits
# non-zero if any check failed.
#
# The checks run in three phases of one Python harness; between them this script restarts
# semel on the same port and data dir, first after a SIGTERM, then after a `kill -9`:
#   main        kafka-python group (3 consumers, leave, commit, resume), confluent-kafka
#               cooperative-sticky group (incremental rebalances), session timeout of a
#               SIGSTOPped member (a separate process, session.timeout.ms=15000), AdminClient
#               group operations, then commits offsets and saves them
#   after-term  the committed offsets survived the SIGTERM restart; commits new ones
#   after-kill  the committed offsets survived the kill -9 restart
# semel runs with its default group settings (group.initial.rebalance.delay 3000 ms,
# group.min.session.timeout.ms 6000). The consumers in threads have a session timeout of 30 s,
# so that a rebalance after a LeaveGroup (which takes a few seconds, more on a busy machine) is
# told from one after a session expiry by a bound of 20 s.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
set -euo pipefail

# Pinned client versions (confluent-kafka bundles librdkafka).
REQUIREMENTS=("confluent-kafka==2.16.1" "kafka-python==3.0.12")

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init python-groups
SEMEL_RUN=0

kill9_semel() {
  [ -n "$SEMEL_PID" ] || return 0
  local pid=$SEMEL_PID
  SEMEL_PID=""
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- client install
install_venv "${REQUIREMENTS[@]}"

# ---------------------------------------------------------------- broker build
build_semel

# ---------------------------------------------------------------- broker start
pick_port

# start_semel_run: starts semel on $BOOTSTRAP with $WORK/data (each run logs to its own
# semel.<run>.out / semel.<run>.log) and waits until it accepts connections. Returns 1 (with
# a message on stderr) if it does not.
start_semel_run() {
  SEMEL_RUN=$((SEMEL_RUN + 1))
  local rc=0
  launch_semel "$WORK/semel.$SEMEL_RUN.out" "$WORK/semel.$SEMEL_RUN.log" || rc=$?
  case "$rc" in
    0)
      say "semel run $SEMEL_RUN (pid $SEMEL_PID) listening on $BOOTSTRAP, data in $WORK/data"
      return 0
      ;;
    1)
      say "semel (run $SEMEL_RUN) exited before accepting connections"
      SEMEL_PID=""
      ;;
    *) say "semel (run $SEMEL_RUN) did not accept connections on $BOOTSTRAP within 60s" ;;
  esac
  return 1
}
start_semel_run || setup_failed "semel did not start"

# ---------------------------------------------------------------- the client harness
cat >"$WORK/groups.py" <<'PY'
import importlib
import importlib.metadata
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import Future

PHASE = sys.argv[1]
BOOT = sys.argv[2]
WORK = sys.argv[3] if len(sys.argv) > 3 else None
STATE = os.path.join(WORK, "state.json") if WORK else None
N = 12  # partitions of the group topics
T_KP = "pg-kp"  # kafka-python group scenario, also the durable-offsets topic
T_CK = "pg-ck"  # confluent-kafka scenarios
G_KP = "pg-kp-group"
G_CK = "pg-ck-group"
G_SESSION = "pg-session"
G_ADMIN = "pg-admin"
G_DURABLE = "pg-durable"
G_KILL = "pg-durable-kill"
HB_MS = 1000


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------- child process
# Check 3 runs a confluent-kafka consumer (session.timeout.ms=15000) in its own process so
# that it can be SIGSTOPped; it reports its rebalance callbacks as JSON lines on stdout and
# leaves the group cleanly on SIGTERM. 15 s rather than the broker's minimum of 6 s: the check
# that its partitions did not move before its session timed out (10 s after the SIGSTOP)
# then holds even if its last heartbeat came a few seconds before the SIGSTOP (a busy machine).
if PHASE == "child":
    from confluent_kafka import Consumer

    group, topic = sys.argv[3], sys.argv[4]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def emit(kind, parts=()):
        print(json.dumps({"kind": kind, "partitions": sorted(p.partition for p in parts), "t": time.time()}),
              flush=True)

    def on_assign(c, parts):
        c.assign(parts)
        emit("assign", parts)

    def on_revoke(c, parts):
        c.unassign()
        emit("revoke", parts)

    def on_lost(c, parts):
        c.unassign()
        emit("lost", parts)

    c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "client.id": "pg-child",
                  "session.timeout.ms": 15000, "heartbeat.interval.ms": HB_MS,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit("started")
    deadline = time.monotonic() + 900  # never outlive the suite (run_phase's bound)
    while not stop and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error():
            print(json.dumps({"kind": "error", "error": str(m.error()), "t": time.time()}), flush=True)
    c.close()
    emit("closed")
    sys.exit(0)

# ------------------------------------------------------------------------------ harness
import kafka
from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTP


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def check(name, fn, *args):
    t0 = time.monotonic()
    log(f"=== {name}")
    try:
        detail = fn(*args)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the run
        msg = f"{type(e).__name__}: {str(e) or 'no message (a bounded wait ran out)'}".replace("\n", " | ")
        print(f"FAIL {name}: {msg}", flush=True)
        print(f"--- {name}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return False
    took = f"{time.monotonic() - t0:.1f}s"
    print(f"PASS {name} ({detail + ', ' if detail else ''}{took})", flush=True)
    return True


def load_state():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_state(**kv):
    s = load_state()
    s.update(kv)
    with open(STATE, "w") as f:
        json.dump(s, f)


_ADMIN = None


def admin():
    # One long-lived client: a dropped AdminClient cancels its pending futures.
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = AdminClient({"bootstrap.servers": BOOT})
    return _ADMIN


def create_topic(name, partitions):
    for f in admin().create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                   request_timeout=30).values():
        f.result(30)


def produce(topic, counts, start=None):
    """Produces counts[p] messages to partition p, value b"<p>:<offset>" (offsets from
    start[p], default 0), and checks every delivery report."""
    start = start or {}
    p = Producer({"bootstrap.servers": BOOT, "acks": "all", "linger.ms": 5, "message.timeout.ms": 30000})
    reports = []
    for part, n in counts.items():
        for i in range(n):
            off = start.get(part, 0) + i
            p.produce(topic, value=f"{part}:{off}".encode(), key=f"k{off}".encode(), partition=part,
                      on_delivery=lambda err, m, want=(part, off): reports.append((err, m.partition(), m.offset(), want)))
    left = p.flush(60)
    expect(left == 0, f"{left} messages undelivered after flush(60)")
    bad = [r for r in reports if r[0] is not None or (r[1], r[2]) != r[3]]
    expect(not bad, f"{len(bad)} bad delivery reports, first: {bad[0] if bad else ''}")


def group_offsets(group):
    """{"topic/partition": [offset, metadata]} of every committed offset of `group`, via
    AdminClient.list_consumer_group_offsets (OffsetFetch for all partitions)."""
    res = admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)
    out = {}
    for tp in res[group].result(30).topic_partitions:
        expect(tp.error is None, f"list_consumer_group_offsets({group}) {tp.topic}/{tp.partition}: {tp.error}")
        out[f"{tp.topic}/{tp.partition}"] = [tp.offset, tp.metadata or ""]
    return out


def list_groups():
    res = admin().list_consumer_groups(request_timeout=30).result(30)
    expect(not res.errors, f"list_consumer_groups errors: {res.errors}")
    return {g.group_id: g for g in res.valid}


def describe_group(group):
    return admin().describe_consumer_groups([group], request_timeout=30)[group].result(30)


def fmt_sets(sets):
    return "; ".join(f"{name}={sorted(s)}" for name, s in sets.items())


# ------------------------------------------------------------------ consumers in threads
class Worker(threading.Thread):
    """One consumer, created, polled and closed in its own thread (neither client is
    thread-safe); commands run in that thread between polls. Tracks the partitions it owns
    (`owned`), its rebalance events and the first / last offset it consumed per partition."""

    def __init__(self, name):
        super().__init__(name=name, daemon=True)
        self.lock = threading.Lock()
        self.owned = set()
        self.events = []  # (monotonic time, kind, frozenset of partitions)
        self.first = {}  # partition -> (offset, value) of the first message consumed
        self.position = {}  # partition -> last consumed offset + 1
        self.commands = queue.Queue()
        self.error = None
        self.closed = threading.Event()
        self.started = threading.Event()

    def run(self):
        try:
            self.c = self.make()
            self.started.set()
            while True:
                try:
                    fn, fut, last = self.commands.get_nowait()
                except queue.Empty:
                    self.poll_once()
                    continue
                try:
                    fut.set_result(fn(self.c))
                except Exception as e:  # noqa: BLE001
                    fut.set_exception(e)
                if last:
                    break
        except Exception as e:  # noqa: BLE001
            self.error = e
            log(f"{self.name}: {type(e).__name__}: {e}")
        finally:
            self.started.set()
            self.closed.set()

    def call(self, fn, timeout=30, last=False):
        expect(self.is_alive(), f"{self.name} is not running ({self.error!r})")
        fut = Future()
        self.commands.put((fn, fut, last))
        return fut.result(timeout)

    def close(self, timeout=30):
        """Closes the consumer (leaving the group) and ends the thread."""
        if not self.is_alive():
            return
        self.call(lambda c: c.close(), timeout, last=True)
        self.join(timeout)

    def note(self, kind, parts):
        with self.lock:
            if kind == "assign":
                self.owned |= parts
            elif kind in ("revoke", "lost"):
                self.owned -= parts
            self.events.append((time.monotonic(), kind, frozenset(parts)))
        log(f"{self.name}: {kind} {sorted(parts)}")

    def got(self, p, offset, value):
        with self.lock:
            self.first.setdefault(p, (offset, value))
            self.position[p] = offset + 1

    def owned_now(self):
        with self.lock:
            return set(self.owned)

    def events_since(self, t):
        with self.lock:
            return [(k, set(ps)) for (tt, k, ps) in self.events if tt >= t]


class KPWorker(Worker):
    """kafka-python KafkaConsumer subscribed to `topic` in `group` (eager protocol,
    kafka-python's default assignors range and roundrobin)."""

    def __init__(self, name, group, topic):
        super().__init__(name)
        self.group, self.topic = group, topic

    def make(self):
        c = KafkaConsumer(bootstrap_servers=BOOT, group_id=self.group, client_id=self.name,
                          enable_auto_commit=False, auto_offset_reset="earliest",
                          session_timeout_ms=30000, heartbeat_interval_ms=HB_MS,
                          max_poll_interval_ms=30000, request_timeout_ms=30000)
        c.subscribe([self.topic])
        return c

    def poll_once(self):
        for tp, records in self.c.poll(timeout_ms=200).items():
            for r in records:
                self.got(tp.partition, r.offset, r.value)
        now = {tp.partition for tp in self.c.assignment() if tp.topic == self.topic}
        with self.lock:
            if now != self.owned:
                self.events.append((time.monotonic(), "assignment", frozenset(now)))
                self.owned = now
                log(f"{self.name}: assignment {sorted(now)}")


class CKWorker(Worker):
    """confluent-kafka Consumer subscribed to `topic` in `group` with rebalance callbacks
    that record every assign / revoke / lost. cooperative=True: cooperative-sticky with
    incremental_assign / incremental_unassign, else librdkafka's default eager assignors
    (range, roundrobin) with assign / unassign."""

    def __init__(self, name, group, topic, cooperative=False, **conf):
        super().__init__(name)
        self.group, self.topic, self.cooperative, self.conf = group, topic, cooperative, conf

    def make(self):
        conf = {"bootstrap.servers": BOOT, "group.id": self.group, "client.id": self.name,
                "session.timeout.ms": 30000, "heartbeat.interval.ms": HB_MS,
                "enable.auto.commit": False, "auto.offset.reset": "earliest"}
        if self.cooperative:
            conf["partition.assignment.strategy"] = "cooperative-sticky"
        conf.update(self.conf)
        c = Consumer(conf)

        def on_assign(c, parts):
            if self.cooperative:
                c.incremental_assign(parts)
            else:
                c.assign(parts)
            self.note("assign", {p.partition for p in parts})

        def on_revoke(c, parts):
            if self.cooperative:
                c.incremental_unassign(parts)
            else:
                c.unassign()
            self.note("revoke", {p.partition for p in parts})

        def on_lost(c, parts):
            if self.cooperative:
                c.incremental_unassign(parts)
            else:
                c.unassign()
            self.note("lost", {p.partition for p in parts})

        c.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
        return c

    def poll_once(self):
        m = self.c.poll(0.2)
        if m is None:
            return
        if m.error():
            log(f"{self.name}: consumer error {m.error()}")
            return
        self.got(m.partition(), m.offset(), m.value())


class ChildView:
    """The confluent-kafka consumer of check 3 running in a separate process: its owned
    partitions, as reported on its stdout."""

    def __init__(self, group, topic):
        self.name = "child"
        self.lock = threading.Lock()
        self.owned = set()
        self.events = []
        self.stderr = open(os.path.join(WORK, "child.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-u", __file__, "child", BOOT, group, topic],
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            parts = set(ev.get("partitions", []))
            with self.lock:
                if ev["kind"] == "assign":
                    self.owned |= parts
                elif ev["kind"] in ("revoke", "lost"):
                    self.owned -= parts
                self.events.append((time.monotonic(), ev["kind"], frozenset(parts)))
            log(f"child: {ev['kind']} {sorted(parts)} {ev.get('error', '')}")

    def owned_now(self):
        with self.lock:
            return set(self.owned)

    def events_since(self, t):
        with self.lock:
            return [(k, set(ps)) for (tt, k, ps) in self.events if tt >= t]

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.terminate()
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.stderr.close()


def start_workers(ws, timeout=30):
    for w in ws:
        w.start()
    for w in ws:
        expect(w.started.wait(timeout), f"{w.name} did not start within {timeout}s")
        expect(w.error is None, f"{w.name} failed to start: {w.error!r}")


def balanced(ws, n=N):
    """Every consumer owns at least one partition, no partition is owned twice and together
    they own all n partitions."""
    sets = [w.owned_now() for w in ws]
    union = set().union(*sets)
    return all(sets) and sum(map(len, sets)) == len(union) and union == set(range(n))


def wait_for(pred, timeout, what, state, stable_for=1.5):
    """Waits until pred() has held for stable_for seconds in a row; raises CheckFailed with
    state() after `timeout` seconds. Returns the seconds until pred() first held in the
    final stretch."""
    t0 = time.monotonic()
    since = None
    while time.monotonic() - t0 < timeout:
        if pred():
            if since is None:
                since = time.monotonic()
            if time.monotonic() - since >= stable_for:
                return since - t0
        else:
            since = None
        time.sleep(0.1)
    raise CheckFailed(f"{what} not reached within {timeout}s: {state()}")


def wait_balanced(ws, timeout, what=None):
    took = wait_for(lambda: balanced(ws), timeout,
                    what or f"{len(ws)} consumers with disjoint non-empty assignments covering {N} partitions",
                    lambda: fmt_sets({w.name: w.owned_now() for w in ws}))
    return took, {w.name: w.owned_now() for w in ws}


def close_all(ws):
    for w in ws:
        try:
            w.close()
        except Exception as e:  # noqa: BLE001
            log(f"closing {w.name}: {type(e).__name__}: {e}")


# ------------------------------------------------------- 1. kafka-python consumer group
END = {p: 10 + p for p in range(N)}  # messages per partition of pg-kp before the commit
MORE = 5  # produced after the commit
KP = {}


def c_kp_three():
    create_topic(T_KP, N)
    produce(T_KP, END)
    ws = [KPWorker(f"kp-{i}", G_KP, T_KP) for i in range(1, 4)]
    KP["ws"] = ws
    start_workers(ws)
    took, sets = wait_balanced(ws, 40)
    return f"sizes {[len(s) for s in sets.values()]} after {took:.1f}s ({fmt_sets(sets)})"


def c_kp_leave():
    ws = KP.get("ws")
    expect(ws and all(w.is_alive() for w in ws), "the three consumers are not running")
    t0 = time.monotonic()
    ws[2].close()
    closed = time.monotonic() - t0
    rest = ws[:2]
    took, sets = wait_balanced(rest, 60)
    took += closed
    # Without a LeaveGroup the others would only notice after session.timeout.ms (30 s).
    expect(took < 20, f"the two remaining consumers took {took:.1f}s to cover all partitions (leave ignored?)")
    return f"close() {closed:.1f}s, remaining sizes {[len(s) for s in sets.values()]} {took:.1f}s after close ({fmt_sets(sets)})"


def c_kp_commit():
    ws = KP.get("ws", [])[:2]
    expect(ws and all(w.is_alive() for w in ws), "the two consumers are not running")

    def positions():
        return {p: pos for w in ws for p, pos in w.call(
            lambda c: {tp.partition: c.position(tp) for tp in c.assignment()}).items()}

    wait_for(lambda: positions() == END, 60, "both consumers positioned at the end of every partition",
             lambda: f"positions {positions()}, end {END}", stable_for=0)
    for w in ws:
        w.call(lambda c: c.commit(), 30)
    tps = [KTP(T_KP, p) for p in range(N)]
    committed = ws[0].call(lambda c: {tp.partition: c.committed(tp) for tp in tps})
    ends = ws[1].call(lambda c: {tp.partition: off for tp, off in c.end_offsets(tps).items()})
    expect(ends == END, f"end_offsets {ends} != produced counts {END}")
    expect(committed == ends, f"committed() {committed} != end_offsets {ends}")
    close_all(ws)
    # Read back by the other client too.
    via_admin = {k: v[0] for k, v in group_offsets(G_KP).items()}
    want = {f"{T_KP}/{p}": END[p] for p in range(N)}
    expect(via_admin == want, f"confluent-kafka list_consumer_group_offsets({G_KP}) {via_admin} != {want}")
    return f"committed() == end_offsets == {[END[p] for p in range(N)]}; same via confluent AdminClient"


def c_kp_resume():
    produce(T_KP, {p: MORE for p in range(N)}, start=END)
    w = KPWorker("kp-restarted", G_KP, T_KP)
    try:
        start_workers([w])
        want = {p: END[p] + MORE for p in range(N)}
        wait_for(lambda: w.owned_now() == set(range(N)) and dict(w.position) == want, 60,
                 "the restarted consumer owns every partition and consumed to the end",
                 lambda: f"owns {sorted(w.owned_now())}, positions {dict(w.position)}, want {want}", stable_for=0)
        first = dict(w.first)
        bad = {p: f[0] for p, f in first.items() if f != (END[p], f"{p}:{END[p]}".encode())}
        expect(not bad, f"first offset per partition {bad}, expected the committed offsets {END}")
    finally:
        close_all([w])
    return f"first message of every partition at its committed offset {[END[p] for p in range(N)]}"


# ------------------------------------------- 2. confluent-kafka cooperative-sticky group
CK = {}


def c_ck_join():
    create_topic(T_CK, N)
    produce(T_CK, {p: 20 for p in range(N)})
    a = CKWorker("ck-a", G_CK, T_CK, cooperative=True)
    start_workers([a])
    took0, s0 = wait_balanced([a], 60, "the first consumer owns all partitions")
    t_join = time.monotonic()
    b, c = CKWorker("ck-b", G_CK, T_CK, cooperative=True), CKWorker("ck-c", G_CK, T_CK, cooperative=True)
    CK.update(ws=[a, b, c])
    start_workers([b, c])
    took, s1 = wait_balanced([a, b, c], 40)
    ev = {w.name: w.events_since(t_join) for w in (a, b, c)}
    revoked = {w: set().union(*[ps for k, ps in e if k in ("revoke", "lost")]) for w, e in ev.items()}
    lost = {w: [ps for k, ps in e if k == "lost"] for w, e in ev.items()}
    expect(not any(lost.values()), f"partitions lost: {lost}")
    moved = s0["ck-a"] - s1["ck-a"]
    kept = s0["ck-a"] & s1["ck-a"]
    expect(kept, f"ck-a kept none of its partitions ({fmt_sets(s1)})")
    # A partition that ends up with a consumer must never have been revoked from it.
    wrongly = {w: sorted(revoked[w] & s1[w]) for w in s1 if revoked[w] & s1[w]}
    expect(not wrongly, f"partitions revoked from a consumer that owns them in the end: {wrongly} (events {ev})")
    expect(revoked["ck-a"] == moved,
           f"ck-a revoked {sorted(revoked['ck-a'])}, expected the partitions that moved {sorted(moved)} "
           f"(events {ev['ck-a']})")
    incremental = all(ps != s0["ck-a"] for k, ps in ev["ck-a"] if k == "revoke")
    expect(incremental, f"ck-a had all its partitions revoked at once (eager?): {ev['ck-a']}")
    others = {w: sorted(revoked[w]) for w in ("ck-b", "ck-c") if revoked[w]}
    CK["t_join"] = t_join
    return (f"alone {took0:.1f}s; sizes {[len(s) for s in s1.values()]} {took:.1f}s after 2 more joined; "
            f"ck-a kept {sorted(kept)} (never revoked), revoked only {sorted(moved)}"
            + (f"; moved between the joiners {others}" if others else ""))


def c_ck_leave():
    ws = CK.get("ws")
    expect(ws and all(w.is_alive() for w in ws), "the three consumers are not running")
    a, b, c = ws
    s1 = {w.name: w.owned_now() for w in (a, b)}
    t0 = time.monotonic()
    c.close()
    closed = time.monotonic() - t0
    took, s2 = wait_balanced([a, b], 60)
    took += closed
    ev = {w.name: w.events_since(t0) for w in (a, b)}
    revoked = {w: [(k, sorted(ps)) for k, ps in e if k in ("revoke", "lost")] for w, e in ev.items()}
    expect(not any(revoked.values()), f"partitions revoked from the remaining consumers: {revoked}")
    expect(all(s1[n] <= s2[n] for n in s1), f"a remaining consumer lost partitions: before {fmt_sets(s1)}, after {fmt_sets(s2)}")
    # Without a LeaveGroup they would only notice after session.timeout.ms (30 s).
    expect(took < 20, f"the remaining consumers took {took:.1f}s to take over (leave ignored?)")
    gained = {n: sorted(s2[n] - s1[n]) for n in s2}
    close_all([a, b])
    return f"close() {closed:.1f}s, remaining took over in {took:.1f}s with no revocation, gained {gained}"


# ----------------------------------------------------------------- 3. session timeout
def c_session_stop():
    child = ChildView(G_SESSION, T_CK)
    main = CKWorker("ck-main", G_SESSION, T_CK)
    SESSION.update(child=child, main=main)
    t0 = time.monotonic()
    wait_for(lambda: child.owned_now() == set(range(N)), 60, "the child consumer owns every partition",
             lambda: f"child owns {sorted(child.owned_now())}, exit status {child.proc.poll()}", stable_for=0)
    start_workers([main])
    took, sets = wait_balanced([child, main], 40)
    os.kill(child.proc.pid, signal.SIGSTOP)
    t_stop = time.monotonic()
    SESSION["t_stop"] = t_stop
    log("child SIGSTOPped")
    try:
        wait_for(lambda: main.owned_now() == set(range(N)), 90,
                 "the remaining consumer owns every partition after the other was SIGSTOPped",
                 lambda: f"main owns {sorted(main.owned_now())}", stable_for=0)
    except CheckFailed:
        raise
    after = time.monotonic() - t_stop
    expect(after >= 10, f"the stopped member's partitions moved after {after:.1f}s, before its session timeout (15 s)")
    expect(after <= 60, f"the remaining consumer got every partition only {after:.1f}s after SIGSTOP")
    return (f"stable ({fmt_sets(sets)}) {took:.1f}s; remaining consumer had all {N} partitions "
            f"{after:.1f}s after SIGSTOP (session.timeout.ms=15000)")


SESSION = {}


def c_session_cont():
    child, main = SESSION.get("child"), SESSION.get("main")
    expect(child is not None and main is not None, "no session-timeout scenario running")
    try:
        expect("t_stop" in SESSION, "the child was never stopped")
        t_cont = time.monotonic()
        os.kill(child.proc.pid, signal.SIGCONT)
        log("child SIGCONTed")
        # The expelled consumer notices it lost its partitions (heartbeat UNKNOWN_MEMBER_ID, or
        # librdkafka's own session timer) and rejoins; then it is terminated and leaves.
        wait_for(lambda: any(k in ("lost", "revoke") for k, _ in child.events_since(t_cont)), 60,
                 "the resumed consumer reports its partitions lost or revoked",
                 lambda: f"child events since SIGCONT: {child.events_since(t_cont)}", stable_for=0)
        noticed = [(k, sorted(ps)) for k, ps in child.events_since(t_cont)]
        time.sleep(1)
        t_term = time.monotonic()
        child.proc.terminate()
        try:
            rc = child.proc.wait(60)
        except subprocess.TimeoutExpired:
            raise CheckFailed("the resumed consumer did not exit within 60s of SIGTERM")
        expect(rc == 0, f"the child exited with status {rc} (see child.log)")
        wait_for(lambda: main.owned_now() == set(range(N)), 60,
                 "the remaining consumer owns every partition after the other left",
                 lambda: f"main owns {sorted(main.owned_now())}")
        return f"child events after SIGCONT {noticed[:3]}; after it terminated the remaining consumer owns all {N} " \
               f"({time.monotonic() - t_term:.1f}s)"
    finally:
        child.stop()
        close_all([main])


# --------------------------------------------------------------------- 5. AdminClient
ADMIN = {}


def c_admin_list_describe():
    ws = [CKWorker(f"ck-admin-{i}", G_ADMIN, T_CK) for i in (1, 2)]
    ADMIN["ws"] = ws
    start_workers(ws)
    _, sets = wait_balanced(ws, 40)
    for w in ws:
        offs = [TopicPartition(T_CK, p, p + 1, f"meta-{p}") for p in sorted(w.owned_now())]
        w.call(lambda c: c.commit(offsets=offs, asynchronous=False))
    groups = list_groups()
    states = {g: (groups[g].state.name if g in groups else None) for g in (G_ADMIN, G_KP, G_CK, G_SESSION)}
    want = {G_ADMIN: "STABLE", G_KP: "EMPTY", G_CK: "EMPTY", G_SESSION: "EMPTY"}
    expect(states == want, f"list_consumer_groups states {states}, expected {want}")
    expect(not groups[G_ADMIN].is_simple_consumer_group, "pg-admin listed as a simple consumer group")
    stable = admin().list_consumer_groups(states={ConsumerGroupState.STABLE}, request_timeout=30).result(30)
    stable_ids = sorted(g.group_id for g in stable.valid if g.group_id.startswith("pg-"))
    expect(stable_ids == [G_ADMIN], f"list_consumer_groups(states={{STABLE}}) lists {stable_ids}")
    d = describe_group(G_ADMIN)
    expect(d.state == ConsumerGroupState.STABLE, f"describe state {d.state}")
    expect(d.partition_assignor == "range", f"partition_assignor {d.partition_assignor!r}, expected 'range'")
    expect(len(d.members) == 2, f"{len(d.members)} members described")
    ids = {w.call(lambda c: c.memberid()): w for w in ws}
    described = {}
    for m in d.members:
        w = ids.get(m.member_id)
        expect(w is not None, f"described member {m.member_id} is none of the consumers ({sorted(ids)})")
        expect(m.client_id == w.name, f"member {m.member_id}: client_id {m.client_id!r}, expected {w.name!r}")
        parts = {tp.partition for tp in m.assignment.topic_partitions if tp.topic == T_CK}
        expect(len(parts) == len(m.assignment.topic_partitions), f"assignment with other topics: {m.assignment.topic_partitions}")
        expect(parts == w.owned_now(), f"{w.name}: described assignment {sorted(parts)} != owned {sorted(w.owned_now())}")
        described[w.name] = sorted(parts)
    return f"states {states}; STABLE filter -> {stable_ids}; described members {described}"


def c_admin_offsets():
    got = group_offsets(G_ADMIN)
    want = {f"{T_CK}/{p}": [p + 1, f"meta-{p}"] for p in range(N)}
    expect(got == want, f"list_consumer_group_offsets({G_ADMIN}) {got} != {want}")
    # Only some partitions asked for, one never committed (pg-ck-group committed nothing).
    res = admin().list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(G_CK, [TopicPartition(T_CK, 0), TopicPartition(T_CK, 5)])], request_timeout=30)
    tps = res[G_CK].result(30).topic_partitions
    none = [(tp.partition, tp.offset) for tp in tps]
    expect(none == [(0, -1001), (5, -1001)], f"uncommitted offsets of {G_CK}: {none}, expected OFFSET_INVALID (-1001)")
    return f"{len(got)} committed offsets with metadata; uncommitted -> -1001"


def c_admin_delete():
    ws = ADMIN.get("ws", [])
    try:
        expect(ws and all(w.is_alive() for w in ws), "the pg-admin consumers are not running")
        f = admin().delete_consumer_groups([G_ADMIN], request_timeout=30)[G_ADMIN]
        try:
            f.result(30)
            raise CheckFailed(f"delete_consumer_groups({G_ADMIN}) with 2 members succeeded")
        except KafkaException as e:
            err = e.args[0]
            expect(err.code() == KafkaError.NON_EMPTY_GROUP,
                   f"delete_consumer_groups on a non-empty group failed with {err.name()} ({err.code()}): {err.str()}, "
                   f"expected NON_EMPTY_GROUP")
            refused = f"{err.name()}: {err.str()}"
    finally:
        close_all(ws)
    wait_for(lambda: describe_group(G_ADMIN).state == ConsumerGroupState.EMPTY, 60, f"{G_ADMIN} Empty",
             lambda: f"state {describe_group(G_ADMIN).state}", stable_for=0)
    admin().delete_consumer_groups([G_ADMIN], request_timeout=30)[G_ADMIN].result(30)
    groups = list_groups()
    expect(G_ADMIN not in groups, f"{G_ADMIN} still listed after delete_consumer_groups")
    left = group_offsets(G_ADMIN)
    expect(all(v[0] < 0 for v in left.values()), f"offsets of the deleted group still there: {left}")
    try:
        after = describe_group(G_ADMIN).state.name
    except KafkaException as e:
        after = e.args[0].name()
    expect(after in ("DEAD", "GROUP_ID_NOT_FOUND"), f"describe_consumer_groups after the delete: {after}")
    return f"non-empty: {refused}; once empty: deleted, not listed, describe -> {after}, offsets gone"


# --------------------------------------------------------- 4. durable committed offsets
def commit_simple(group, offsets):
    """Commits {partition: (offset, metadata)} of pg-kp for `group` with a consumer that does
    not join the group (generation -1, as a "simple" consumer group)."""
    c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(T_KP, p, o, m) for p, (o, m) in offsets.items()], asynchronous=False)
    finally:
        c.close()


def snapshot_groups():
    return {g: group_offsets(g) for g in (G_KP, G_DURABLE, G_KILL)}


def c_durable_commit(tag, group, base):
    offsets = {p: (base(p), f"{tag}-{p}") for p in range(N)}
    commit_simple(group, offsets)
    snap = snapshot_groups()
    want = {f"{T_KP}/{p}": [o, m] for p, (o, m) in offsets.items()}
    expect(snap[group] == want, f"read back {snap[group]}, expected {want}")
    save_state(**{f"snapshot_{tag}": snap, f"resume_{tag}": {p: o for p, (o, _) in offsets.items()}})
    return f"{group}: {[o for o, _ in offsets.values()]}; snapshot of {sum(len(v) for v in snap.values())} offsets"


def c_durable_same(tag):
    snap = load_state().get(f"snapshot_{tag}")
    expect(snap, "no snapshot saved before the restart (commit check failed)")
    now = snapshot_groups()
    for g in snap:
        expect(now[g] == snap[g], f"{g}: committed offsets after restart {now[g]} != before {snap[g]}")
    # And through kafka-python's OffsetFetch.
    c = KafkaConsumer(bootstrap_servers=BOOT, group_id=G_DURABLE, enable_auto_commit=False)
    try:
        kp = {p: c.committed(KTP(T_KP, p)) for p in range(N)}
    finally:
        c.close()
    want = {p: snap[G_DURABLE][f"{T_KP}/{p}"][0] for p in range(N)}
    expect(kp == want, f"kafka-python committed() {kp} != {want}")
    groups = list_groups()
    states = {g: (groups[g].state.name if g in groups else None) for g in snap if snap[g]}
    expect(all(s == "EMPTY" for s in states.values()), f"list_consumer_groups after restart: {states}")
    return f"{sum(len(v) for v in snap.values())} offsets of {len(snap)} groups identical; listed {states}"


def c_durable_resume(tag):
    want = {int(p): o for p, o in (load_state().get(f"resume_{tag}") or {}).items()}
    expect(want, "no committed offsets saved before the restart")
    w = KPWorker(f"kp-durable-{tag}", G_DURABLE, T_KP)
    try:
        start_workers([w])
        wait_for(lambda: set(w.first) == set(range(N)), 60, "a message from every partition",
                 lambda: f"first offsets {dict(w.first)}", stable_for=0)
        first = {p: f[0] for p, f in w.first.items()}
        expect(first == want, f"first offsets {first}, expected the committed offsets {want}")
        bad = {p: f[1] for p, f in w.first.items() if f[1] != f"{p}:{want[p]}".encode()}
        expect(not bad, f"first message values {bad}")
    finally:
        close_all([w])
    return f"first offsets {[want[p] for p in range(N)]} = committed"


def header():
    print(f"# confluent-kafka {importlib.metadata.version('confluent-kafka')} "
          f"(librdkafka {importlib.import_module('confluent_kafka').libversion()[0]}), "
          f"kafka-python {importlib.metadata.version('kafka-python')}", flush=True)


if PHASE == "main":
    header()
    check("kafka-python: 3 consumers in one group get disjoint assignments covering 12 partitions", c_kp_three)
    check("kafka-python: one consumer closes (LeaveGroup), the other two cover all 12 partitions", c_kp_leave)
    check("kafka-python: commit() then committed() == end_offsets", c_kp_commit)
    check("kafka-python: a restarted consumer resumes exactly at the committed offsets", c_kp_resume)
    check("confluent-kafka cooperative-sticky: 1 then 3 consumers, disjoint + cover, kept partitions never revoked",
          c_ck_join)
    check("confluent-kafka cooperative-sticky: one leaves, the others take over without any revocation", c_ck_leave)
    check("session timeout: SIGSTOPped member (session.timeout.ms=15000, other process) expires, "
          "the other consumer gets all partitions", c_session_stop)
    check("session timeout: after SIGCONT the expelled consumer notices, then terminates and leaves", c_session_cont)
    check("admin: list_consumer_groups states, STABLE filter, describe_consumer_groups members and assignments",
          c_admin_list_describe)
    check("admin: list_consumer_group_offsets (all partitions, with metadata; uncommitted ones)", c_admin_offsets)
    check("admin: delete_consumer_groups fails with NON_EMPTY_GROUP, succeeds once empty", c_admin_delete)
    check("durable offsets: commit before the SIGTERM restart", c_durable_commit, "term", G_DURABLE, lambda p: p)
elif PHASE == "after-term":
    check("durable offsets: committed offsets identical after SIGTERM and restart", c_durable_same, "term")
    check("durable offsets: a consumer joining after the SIGTERM restart resumes at the committed offsets",
          c_durable_resume, "term")
    check("durable offsets: commit new offsets right before kill -9", c_durable_commit, "kill", G_DURABLE,
          lambda p: 2 * p + 1)
    check("durable offsets: commit to a new group right before kill -9", c_durable_commit, "kill2", G_KILL,
          lambda p: 3 + p)
elif PHASE == "after-kill":
    check("durable offsets: committed offsets identical after kill -9 and restart", c_durable_same, "kill2")
    check("durable offsets: a consumer joining after the kill -9 restart resumes at the committed offsets",
          c_durable_resume, "kill")
else:
    sys.exit(f"unknown phase {PHASE}")
PY

# run_phase PHASE: runs one phase of the harness (bounded), appending its PASS/FAIL lines
# to checks.out. Returns the harness exit status.
run_phase() {
  local phase=$1 rc
  set +e
  timeout -k 10 900 "$VENV/bin/python" -u "$WORK/groups.py" "$phase" "$BOOTSTRAP" "$WORK" \
    2>>"$WORK/client.log" | tee -a "$WORK/checks.out"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" != 0 ]; then
    record FAIL "client harness ($phase phase) exited with status $rc (see the client log below)"
  fi
  return 0
}

# ---------------------------------------------------------------- checks
: >"$WORK/checks.out"
run_phase main

# SIGTERM, restart on the same data dir and port.
record_shutdown "semel shut down cleanly on SIGTERM (before the restart)" "semel died during the checks"
if start_semel_run; then
  run_phase after-term
  # kill -9, restart on the same data dir and port.
  kill9_semel
  say "semel killed with SIGKILL"
  if start_semel_run; then
    run_phase after-kill
  else
    record FAIL "semel restarts after kill -9"
  fi
else
  record FAIL "semel restarts after SIGTERM"
fi

tally "$WORK/checks.out"
if [ "$FAILED" != 0 ]; then
  say "--- last lines of the client log ($WORK/client.log)"
  tail -n 60 "$WORK/client.log" >&2 || true
fi

# ---------------------------------------------------------------- broker health and shutdown
record_shutdown "semel shut down cleanly on SIGTERM" "semel is not running"
report_semel_warnings "$WORK/semel.*.log" "$WORK"/semel.*.log
finish
