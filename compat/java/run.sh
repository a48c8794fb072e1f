#!/usr/bin/env bash
# Compatibility suite: the Java client (org.apache.kafka:kafka-clients) and Kafka's own
# command-line tools (org.apache.kafka:kafka-tools, run through their main classes) against
# semel.
#
# Needs Java 17+ and Maven (installed with apt-get when missing); Maven downloads the pinned
# artifacts of compat/java/pom.xml into ~/.m2 and compiles the harnesses
# (src/main/java/semel/compat/JavaCompat.java and TxnCompat.java) into compat/java/target.
# Builds semel with `cargo build -p semel`, starts it (SEMEL_LOG=info) on a free port with a
# temporary data dir, runs the checks, prints one `PASS name` / `FAIL name: why` line per
# check and finally `N passed, M failed`. Exits non-zero if any check failed.
#
#   1-3  the harness (one JVM): producer with default settings (idempotent) and acks=all,
#        consumer group read / commit / resume, a cooperative-sticky rebalance, Admin API
#   4    the transaction harness (src/main/java/semel/compat/TxnCompat.java, a second JVM):
#        transactional producer commit / abort, last stable offset, read_committed and
#        read_uncommitted consumers, fencing (second producer, Admin.fenceProducers),
#        consume-transform-produce with sendOffsetsToTransaction, transaction timeout,
#        listTransactions / describeTransactions / describeProducers / abortTransaction
#   5    kafka-topics, kafka-configs, kafka-producer-perf-test, kafka-get-offsets,
#        kafka-consumer-perf-test, VerifiableProducer, VerifiableConsumer,
#        kafka-consumer-groups (each tool's exit status and output)
#   6    transactions with Kafka's tools: kafka-producer-perf-test --transactional-id
#        --transaction-duration-ms, kafka-transactions (TransactionsCommand: list, describe,
#        describe-producers, find-hanging, abort) around a transaction a helper holds open, and
#        TransactionalMessageCopier: 20,000 integers (VerifiableProducer, idempotent) copied by
#        one copier per input partition, each killed -9 twice and restarted, then checked with a
#        read_committed consumer; again with --use-group-metadata --enable-random-aborts.
#        (TxnCompat helper modes create topics, hold the transaction, read offsets and verify.)
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   SEMEL_LOG                  semel's log filter (default info)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init java
SEMEL_LOG_DEFAULT=info

# The background processes of the transaction tool checks (the helper holding a transaction open,
# under timeout; the TransactionalMessageCopier JVMs), if the suite stops while they run: their
# pids are listed in $WORK/bg.pids; only the ones still running one of those main classes are
# signalled (TERM, which timeout passes on, then KILL).
bg_alive() { # the listed pids still running one of the helpers' main classes
  local pid
  [ -f "$WORK/bg.pids" ] || return 0
  while read -r pid; do
    if [ -n "$pid" ] && grep -qE 'TransactionalMessageCopier|TxnCompat' "/proc/$pid/cmdline" 2>/dev/null; then
      echo "$pid"
    fi
  done <"$WORK/bg.pids"
}
stop_background() {
  local pids pid
  pids="$(bg_alive)"
  [ -n "$pids" ] || return 0
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $(bg_alive); do kill -KILL "$pid" 2>/dev/null || true; done
}

on_cleanup stop_background

# ---------------------------------------------------------------- client install and build
install_java17

# Compiles the harness and writes the runtime classpath (kafka-clients, kafka-tools and their
# dependencies, all pinned in pom.xml). The first run downloads them into ~/.m2.
say "mvn compile dependency:build-classpath (compat/java/pom.xml)"
if ! timeout -k 10 900 mvn -B -q -f "$HERE/pom.xml" compile dependency:build-classpath \
  -Dmdep.outputFile="$HERE/target/classpath.txt" >"$WORK/mvn.log" 2>&1; then
  tail -n 40 "$WORK/mvn.log" >&2
  setup_failed "mvn could not build compat/java (see the Maven output above)"
fi
CP="$HERE/target/classes:$(cat "$HERE/target/classpath.txt")"
KAFKA_VERSION="$(sed -nE 's|.*<kafka.version>([^<]+)</kafka.version>.*|\1|p' "$HERE/pom.xml")"

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

echo "# kafka-clients / kafka-tools $KAFKA_VERSION (Maven Central), $(java -version 2>&1 | head -n 1), $(mvn -v 2>/dev/null | sed -E 's/\x1b\[[0-9;]*m//g' | head -n 1)"

# ---------------------------------------------------------------- 1-4: the harnesses
# harness NAME SECONDS MAIN_CLASS ARGS...: one JVM, bounded as a whole; its PASS/FAIL lines go to
# NAME.out (and stdout), its log to NAME.log.
harness() {
  local name=$1 secs=$2 main=$3 rc
  shift 3
  : >"$WORK/$name.out"
  set +e
  timeout -k 10 "$secs" java -XX:+UseSerialGC -Xmx1g -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -Dorg.slf4j.simpleLogger.showDateTime=true -cp "$CP" "$main" "$@" \
    2>"$WORK/$name.log" | tee "$WORK/$name.out"
  rc=${PIPESTATUS[0]}
  set -e
  tally "$WORK/$name.out"
  if [ "$rc" != 0 ]; then
    record FAIL "client harness (${main##*.}) exited with status $rc (see the client log below)"
  fi
  if grep -q '^FAIL ' "$WORK/$name.out" || [ "$rc" != 0 ]; then
    say "--- client log of the failed checks ($WORK/$name.log)"
    grep -A 12 -E '^--- ' "$WORK/$name.log" | head -n 80 >&2 || true
  fi
}

harness client 600 semel.compat.JavaCompat "$BOOTSTRAP" "$WORK/data"
# 4: transactions (TxnCompat): commit/abort, LSO, fencing, consume-transform-produce, timeout, KIP-664 admin.
harness txn-client 600 semel.compat.TxnCompat checks "$BOOTSTRAP"

# ---------------------------------------------------------------- 5: Kafka's command-line tools
# tool NAME MAIN_CLASS ARGS...: runs one tool (bounded), its stdout in $WORK/NAME.out, its stderr
# in $WORK/NAME.err; returns its exit status. The short admin tools run with the C1 compiler
# only (they start faster); the perf and verifiable tools with the default JIT.
# The checks run in subshells: the files are numbered by counting the ones already there.
mkdir -p "$WORK/tools"
tool() {
  local name=$1 main=$2 rc=0 n
  shift 2
  local jit=(-XX:TieredStopAtLevel=1)
  case "$main" in *Performance | *Verifiable*) jit=() ;; esac
  n="$(find "$WORK/tools" -name '*.err' | wc -l)"
  LAST="$WORK/tools/$(printf '%02d' "$((n + 1))")-$name"
  timeout -k 5 300 java -XX:+UseSerialGC "${jit[@]}" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$CP" "$main" --bootstrap-server "$BOOTSTRAP" "$@" >"$LAST.out" 2>"$LAST.err" || rc=$?
  return "$rc"
}

# why: the tail of the last tool's stderr and stdout, on one line
why() {
  local rc=$1
  echo "exit status $rc$([ "$rc" = 124 ] && echo ' (killed by timeout)');" \
    "stderr: $(grep -v '^\s*at ' "$LAST.err" | tail -n 4 | tr '\n' ' ' | cut -c1-300);" \
    "stdout: $(tail -n 4 "$LAST.out" | tr '\n' ' ' | cut -c1-300)"
}

TOPICS=org.apache.kafka.tools.TopicCommand
CONFIGS=org.apache.kafka.tools.ConfigCommand
GROUPS_CMD=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand

t_topics_create() {
  local rc=0
  tool topics-create "$TOPICS" --create --topic jt-topics --partitions 3 --replication-factor 1 \
    --config retention.ms=86400000 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  grep -qx 'Created topic jt-topics.' "$LAST.out" || { echo "no 'Created topic jt-topics.' line; $(why 0)"; return 1; }
  cat "$LAST.out"
}

t_topics_list() {
  local rc=0
  tool topics-list "$TOPICS" --list || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  { grep -qx 'jt-topics' "$LAST.out" && grep -qx 'jv-main' "$LAST.out"; } ||
    { echo "jt-topics or jv-main not listed: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  echo "$(wc -l <"$LAST.out") topics listed, jt-topics among them"
}

# describe_topic TOPIC PARTITIONS: checks kafka-topics --describe output
describe_topic() {
  local topic=$1 want=$2 rc=0 head
  tool topics-describe "$TOPICS" --describe --topic "$topic" || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  head="$(grep -E "^Topic: $topic\s" "$LAST.out" | head -n 1)"
  { grep -Eq 'TopicId: [A-Za-z0-9_-]{22}' <<<"$head" && ! grep -q 'TopicId: AAAAAAAAAAAAAAAAAAAAAA' <<<"$head"; } ||
    { echo "no topic id in: $head"; return 1; }
  { grep -Eq "PartitionCount: $want\s" <<<"$head" && grep -Eq 'ReplicationFactor: 1\s' <<<"$head" &&
    grep -Eq 'Configs: .*retention\.ms=86400000' <<<"$head"; } ||
    { echo "expected PartitionCount: $want, ReplicationFactor: 1, retention.ms=86400000 in: $head"; return 1; }
  local rows
  rows="$(grep -cE "^\s+Topic: $topic\s+Partition: [0-9]+\s+Leader: [0-9]+\s+Replicas: [0-9]+\s+Isr: [0-9]+" "$LAST.out" || true)"
  [ "$rows" = "$want" ] || { echo "$rows partition rows with a leader and an ISR, expected $want: $(tr '\n\t' '  ' <"$LAST.out")"; return 1; }
  echo "$head" | sed -E 's/\s+/ /g'
}

t_topics_describe() { describe_topic jt-topics 3; }

t_topics_alter() {
  local rc=0
  tool topics-alter "$TOPICS" --alter --topic jt-topics --partitions 5 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  describe_topic jt-topics 5
}

t_topics_delete() {
  local rc=0 deadline=$((SECONDS + 60))
  tool topics-delete "$TOPICS" --delete --topic jt-topics || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  while [ "$SECONDS" -lt "$deadline" ]; do
    rc=0
    tool topics-list "$TOPICS" --list || rc=$?
    [ "$rc" = 0 ] || { echo "--list after the delete: $(why "$rc")"; return 1; }
    grep -qx 'jt-topics' "$LAST.out" || { echo "deleted; --list no longer shows jt-topics"; return 0; }
    sleep 1
  done
  echo "jt-topics still listed 60s after --delete: $(tr '\n' ' ' <"$LAST.out")"
  return 1
}

# expect_configs WANT: kafka-configs --describe of topic jt-configs shows exactly the dynamic
# configs WANT ("k=v k=v", sorted), each with its DYNAMIC_TOPIC_CONFIG synonym
expect_configs() {
  local rc=0 got
  tool configs-describe "$CONFIGS" --describe --entity-type topics --entity-name jt-configs || rc=$?
  [ "$rc" = 0 ] || { echo "--describe: $(why "$rc")"; return 1; }
  grep -qx 'Dynamic configs for topic jt-configs are:' "$LAST.out" ||
    { echo "no 'Dynamic configs for topic jt-configs are:' line; $(why 0)"; return 1; }
  got="$(sed -nE 's/^ +([^ =]+=[^ ]*) sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:\1\}$/\1/p' "$LAST.out" | sort | tr '\n' ' ' | sed 's/ $//')"
  [ "$got" = "$1" ] || { echo "kafka-configs --describe shows dynamic configs '$got', expected '$1': $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  echo "--describe then shows: $got"
}

t_configs_describe() {
  local rc=0
  tool configs-topic "$TOPICS" --create --topic jt-configs --partitions 1 --replication-factor 1 \
    --config retention.ms=86400000 || rc=$?
  [ "$rc" = 0 ] || { echo "kafka-topics --create jt-configs: $(why "$rc")"; return 1; }
  expect_configs "retention.ms=86400000"
}

t_configs_alter() {
  local rc=0
  tool configs-alter "$CONFIGS" --alter --entity-type topics --entity-name jt-configs \
    --add-config retention.ms=1000000,max.message.bytes=123456 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  grep -qx 'Completed updating config for topic jt-configs.' "$LAST.out" ||
    { echo "no 'Completed updating config for topic jt-configs.' line; $(why 0)"; return 1; }
  expect_configs "max.message.bytes=123456 retention.ms=1000000"
}

t_configs_delete() {
  local rc=0
  tool configs-delete "$CONFIGS" --alter --entity-type topics --entity-name jt-configs \
    --delete-config max.message.bytes || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  grep -qx 'Completed updating config for topic jt-configs.' "$LAST.out" ||
    { echo "no 'Completed updating config for topic jt-configs.' line; $(why 0)"; return 1; }
  expect_configs "retention.ms=1000000"
}

t_producer_perf() {
  local rc=0 last
  tool topics-perf "$TOPICS" --create --topic jt-perf --partitions 3 --replication-factor 1 || rc=$?
  [ "$rc" = 0 ] || { echo "kafka-topics --create jt-perf: $(why "$rc")"; return 1; }
  tool producer-perf org.apache.kafka.tools.ProducerPerformance --topic jt-perf --num-records 100000 \
    --record-size 100 --throughput -1 --command-property acks=all || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  last="$(grep -E '^[0-9]+ records sent,' "$LAST.out" | tail -n 1)"
  grep -q '^100000 records sent,' <<<"$last" || { echo "final line '$last', expected '100000 records sent, ...'; $(why 0)"; return 1; }
  if grep -qE ' ERROR |Exception' "$LAST.err"; then echo "errors on stderr: $(why 0)"; return 1; fi
  cut -d, -f1-3 <<<"$last"
}

t_get_offsets() {
  local rc=0 sum
  tool get-offsets-latest org.apache.kafka.tools.GetOffsetShell --topic jt-perf --time -1 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  sum="$(awk -F: '/^jt-perf:[0-9]+:[0-9]+$/ { s += $3; n++ } END { print n + 0, s + 0 }' "$LAST.out")"
  [ "$sum" = "3 100000" ] || { echo "latest offsets $(tr '\n' ' ' <"$LAST.out"): expected 3 partitions summing to 100000"; return 1; }
  local latest
  latest="$(tr '\n' ' ' <"$LAST.out")"
  tool get-offsets-earliest org.apache.kafka.tools.GetOffsetShell --topic jt-perf --time -2 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  [ "$(tr '\n' ' ' <"$LAST.out")" = "jt-perf:0:0 jt-perf:1:0 jt-perf:2:0 " ] ||
    { echo "earliest offsets $(tr '\n' ' ' <"$LAST.out"), expected 0 on each partition"; return 1; }
  echo "latest: ${latest% }, sum 100000; earliest 0"
}

t_consumer_perf() {
  local rc=0 row n
  tool consumer-perf org.apache.kafka.tools.ConsumerPerformance --topic jt-perf --num-records 100000 \
    --group jt-cperf --timeout 120000 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  grep -q '^start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg' "$LAST.out" ||
    { echo "no header line; $(why 0)"; return 1; }
  row="$(grep -E '^[0-9]{4}-' "$LAST.out" | tail -n 1)"
  n="$(awk -F', ' '{ print $5 }' <<<"$row")"
  [ "$n" = 100000 ] || { echo "data.consumed.in.nMsg '$n', expected 100000: $row; $(why 0)"; return 1; }
  echo "100000 records consumed with group jt-cperf ($(awk -F', ' '{ print $3 " MB, " $6 " msg/s, rebalance " $7 " ms" }' <<<"$row"))"
}

t_verifiable_producer() {
  local rc=0
  tool topics-verify "$TOPICS" --create --topic jt-verify --partitions 3 --replication-factor 1 || rc=$?
  [ "$rc" = 0 ] || { echo "kafka-topics --create jt-verify: $(why "$rc")"; return 1; }
  tool verifiable-producer org.apache.kafka.tools.VerifiableProducer --topic jt-verify --max-messages 5000 \
    --acks -1 --repeating-keys 1000 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  cp "$LAST.out" "$WORK/verifiable-producer.json"
  python3 - "$LAST.out" <<'PY'
import json, sys
events, bad = [], []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        events.append(json.loads(line))
names = [e["name"] for e in events]
ok = [e for e in events if e["name"] == "producer_send_success"]
errors = [e for e in events if e["name"] == "producer_send_error"]
data = [e for e in events if e["name"] == "tool_data"]
if names[:1] != ["startup_complete"] or "shutdown_complete" not in names:
    bad.append(f"events start {names[:1]}, shutdown_complete {'shutdown_complete' in names}")
if errors:
    bad.append(f"{len(errors)} producer_send_error, first {errors[0]}")
values = sorted(int(e["value"]) for e in ok)
if values != list(range(5000)):
    bad.append(f"{len(ok)} producer_send_success with {len(set(values))} distinct values, expected 0..4999")
if not data or data[-1]["sent"] != 5000 or data[-1]["acked"] != 5000:
    bad.append(f"tool_data {data[-1] if data else None}, expected sent=acked=5000")
per = {}
for e in ok:
    per.setdefault(e["partition"], []).append(e["offset"])
for p, offs in sorted(per.items()):
    if sorted(offs) != list(range(len(offs))):
        bad.append(f"partition {p}: acked offsets not 0..{len(offs) - 1}")
if len(per) != 3:
    bad.append(f"records acked on partitions {sorted(per)}, expected 0, 1, 2")
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(f"5000 acked (sent=acked=5000 in tool_data), per partition {dict(sorted((p, len(o)) for p, o in per.items()))}, offsets 0..n-1")
PY
}

t_verifiable_consumer() {
  local rc=0
  [ -s "$WORK/verifiable-producer.json" ] || { echo "nothing produced (the VerifiableProducer check failed)"; return 1; }
  tool verifiable-consumer org.apache.kafka.tools.VerifiableConsumer --topic jt-verify --group-id jt-verify-group \
    --max-messages 5000 --reset-policy earliest --session-timeout 30000 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  python3 - "$WORK/verifiable-producer.json" "$LAST.out" <<'PY'
import json, sys
def events(path):
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]
acked = {}
for e in events(sys.argv[1]):
    if e["name"] == "producer_send_success":
        acked[e["partition"]] = acked.get(e["partition"], 0) + 1
evs = events(sys.argv[2])
names = [e["name"] for e in evs]
bad = []
if names[:1] != ["startup_complete"] or "shutdown_complete" not in names:
    bad.append(f"events start {names[:1]}, shutdown_complete {'shutdown_complete' in names}")
assigned = set()
for e in evs:
    if e["name"] == "partitions_assigned":
        assigned |= {p["partition"] for p in e["partitions"]}
if assigned != set(acked):
    bad.append(f"assigned partitions {sorted(assigned)}, produced to {sorted(acked)}")
seen = {}  # partition -> list of (min, max)
total = 0
for e in evs:
    if e["name"] == "records_consumed":
        total += e["count"]
        for p in e["partitions"]:
            seen.setdefault(p["partition"], []).append((p["minOffset"], p["maxOffset"], p["count"]))
if total != 5000:
    bad.append(f"records_consumed counts sum to {total}, expected 5000")
for p, n in sorted(acked.items()):
    ranges = sorted(seen.get(p, []))
    nxt = 0
    for lo, hi, c in ranges:
        if lo != nxt or hi - lo + 1 != c:
            bad.append(f"partition {p}: consumed range {lo}..{hi} ({c} records) after offset {nxt - 1}")
            break
        nxt = hi + 1
    if nxt != n:
        bad.append(f"partition {p}: consumed up to offset {nxt}, produced {n}")
commits = [e for e in evs if e["name"] == "offsets_committed"]
failed = [e for e in commits if not e.get("success")]
if failed:
    bad.append(f"{len(failed)} failed offsets_committed, first {failed[0]}")
last = {}
for e in commits:
    for o in e.get("offsets", []):
        last[o["partition"]] = o["offset"]
if last != acked:
    bad.append(f"last committed offsets {dict(sorted(last.items()))}, expected {dict(sorted(acked.items()))}")
if bad:
    print("; ".join(bad))
    sys.exit(1)
print(f"5000 consumed once each, in order, per partition {dict(sorted(acked.items()))}; {len(commits)} commits, all successful, last = end offsets")
PY
}

t_groups_list() {
  local rc=0
  tool groups-list "$GROUPS_CMD" --list || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  { grep -qx 'jt-verify-group' "$LAST.out" && grep -qx 'jt-cperf' "$LAST.out"; } ||
    { echo "jt-verify-group or jt-cperf not listed: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  echo "listed: $(sort "$LAST.out" | tr '\n' ' ' | sed 's/ $//')"
}

# group_rows: "partition current log-end lag" of jt-verify-group on jt-verify, one per line, sorted
group_rows() {
  awk '$1 == "jt-verify-group" && $2 == "jt-verify" { print $3, $4, $5, $6 }' "$LAST.out" | sort -n
}

t_groups_describe() {
  local rc=0 rows
  tool groups-describe "$GROUPS_CMD" --describe --group jt-verify-group || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  rows="$(group_rows)"
  [ "$(wc -l <<<"$rows")" = 3 ] || { echo "expected 3 partition rows: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  awk '$2 != $3 || $4 != 0 { exit 1 } { s += $2 } END { if (s != 5000) exit 1 }' <<<"$rows" ||
    { echo "expected CURRENT-OFFSET = LOG-END-OFFSET (sum 5000) and LAG 0: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  tool groups-state "$GROUPS_CMD" --describe --group jt-verify-group --state || rc=$?
  [ "$rc" = 0 ] || { echo "--describe --state: $(why "$rc")"; return 1; }
  grep -Eq "^jt-verify-group +127\.0\.0\.1:$PORT +\([0-9]+\) +.* Empty +0 *$" "$LAST.out" ||
    { echo "--describe --state: expected coordinator 127.0.0.1:$PORT, state Empty, 0 members: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  echo "partition/current/log-end/lag: $(tr '\n' ';' <<<"$rows") state Empty, coordinator 127.0.0.1:$PORT"
}

t_groups_reset() {
  local rc=0 rows
  tool groups-reset "$GROUPS_CMD" --reset-offsets --group jt-verify-group --topic jt-verify --to-earliest --execute || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  rows="$(awk '$1 == "jt-verify-group" && $2 == "jt-verify" { print $3, $4 }' "$LAST.out" | sort -n | tr '\n' ';')"
  [ "$rows" = "0 0;1 0;2 0;" ] || { echo "expected NEW-OFFSET 0 for partitions 0-2: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  tool groups-describe "$GROUPS_CMD" --describe --group jt-verify-group || rc=$?
  [ "$rc" = 0 ] || { echo "--describe after the reset: $(why "$rc")"; return 1; }
  rows="$(group_rows)"
  { awk '$2 != 0 || $4 != $3 { exit 1 }' <<<"$rows" && [ "$(wc -l <<<"$rows")" = 3 ]; } ||
    { echo "after the reset, expected CURRENT-OFFSET 0 and LAG = LOG-END-OFFSET: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  echo "NEW-OFFSET 0 on 3 partitions; --describe then shows current 0, lag = log end"
}

t_groups_delete() {
  local rc=0
  tool groups-delete "$GROUPS_CMD" --delete --group jt-verify-group || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  grep -q "Deletion of requested consumer groups ('jt-verify-group') was successful." "$LAST.out" ||
    { echo "no success line; $(why 0)"; return 1; }
  tool groups-list "$GROUPS_CMD" --list || rc=$?
  [ "$rc" = 0 ] || { echo "--list after the delete: $(why "$rc")"; return 1; }
  grep -qx 'jt-verify-group' "$LAST.out" && { echo "still listed after --delete: $(tr '\n' ' ' <"$LAST.out")"; return 1; }
  echo "deleted; --list no longer shows it"
}

run_check "kafka-topics --create --partitions 3 --config retention.ms=86400000" t_topics_create
run_check "kafka-topics --list" t_topics_list
run_check "kafka-topics --describe (topic id, partitions, leader, ISR, configs)" t_topics_describe
run_check "kafka-topics --alter --partitions 5" t_topics_alter
run_check "kafka-topics --delete" t_topics_delete
run_check "kafka-configs --describe (topic)" t_configs_describe
run_check "kafka-configs --alter --add-config (topic)" t_configs_alter
run_check "kafka-configs --alter --delete-config (topic)" t_configs_delete
run_check "kafka-producer-perf-test 100000 records of 100 bytes, acks=all" t_producer_perf
run_check "kafka-get-offsets (GetOffsetShell) --time -1 / -2" t_get_offsets
run_check "kafka-consumer-perf-test 100000 records with a group" t_consumer_perf
run_check "VerifiableProducer 5000 messages, acks=-1: all acked" t_verifiable_producer
run_check "VerifiableConsumer with a group: all 5000 consumed and committed" t_verifiable_consumer
run_check "kafka-consumer-groups --list" t_groups_list
run_check "kafka-consumer-groups --describe (offsets, lag, --state)" t_groups_describe
run_check "kafka-consumer-groups --reset-offsets --to-earliest --execute" t_groups_reset
run_check "kafka-consumer-groups --delete" t_groups_delete

# ---------------------------------------------------------------- 6: Kafka's tools and transactions
TXN_CMD=org.apache.kafka.tools.TransactionsCommand
COPIER=org.apache.kafka.tools.TransactionalMessageCopier

# helper NAME MODE ARGS...: one of the TxnCompat helper modes (see its javadoc), like tool: its
# stdout in $LAST.out (one line of detail), its stderr in $LAST.err, its exit status returned.
helper() {
  local name=$1 mode=$2 rc=0 n
  shift 2
  n="$(find "$WORK/tools" -name '*.err' | wc -l)"
  LAST="$WORK/tools/$(printf '%02d' "$((n + 1))")-$name"
  timeout -k 5 300 java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$CP" semel.compat.TxnCompat "$mode" "$BOOTSTRAP" "$@" >"$LAST.out" 2>"$LAST.err" || rc=$?
  return "$rc"
}

# The row of a kafka-transactions table whose column $1 is $2 (fields split on whitespace).
txn_row() { awk -v c="$1" -v v="$2" '$c == v' "$LAST.out" | head -n 1; }
table() { tr '\t' ' ' <"$LAST.out" | sed -E 's/ +/ /g' | tr '\n' ';' | cut -c1-400; }

t_txn_perf() {
  local rc=0 last counted row
  helper txn-topics create-topics jt-perf-txn:3 || { echo "creating jt-perf-txn: $(why 1)"; return 1; }
  tool producer-perf-txn org.apache.kafka.tools.ProducerPerformance --topic jt-perf-txn --num-records 50000 \
    --record-size 100 --throughput 25000 --transactional-id jt-perf-txn --transaction-duration-ms 100 \
    --command-property acks=all || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  last="$(grep -E '^[0-9]+ records sent,' "$LAST.out" | tail -n 1)"
  grep -q '^50000 records sent,' <<<"$last" || { echo "final line '$last', expected '50000 records sent, ...'; $(why 0)"; return 1; }
  if grep -qE ' ERROR |Exception' "$LAST.err"; then echo "errors on stderr: $(why 0)"; return 1; fi
  helper perf-txn-count count jt-perf-txn 3 50000 || { echo "$(cut -d, -f1 <<<"$last"), but: $(tail -n 1 "$LAST.out")"; return 1; }
  counted="$(tail -n 1 "$LAST.out")"
  tool txn-describe-perf "$TXN_CMD" describe --transactional-id jt-perf-txn || rc=$?
  [ "$rc" = 0 ] || { echo "kafka-transactions describe: $(why "$rc")"; return 1; }
  row="$(txn_row 2 jt-perf-txn)"
  [ "$(awk '{ print $5 }' <<<"$row")" = CompleteCommit ] || { echo "kafka-transactions describe: $(table), expected CompleteCommit"; return 1; }
  echo "$(cut -d, -f1-2 <<<"$last"); $counted; kafka-transactions describe: CompleteCommit"
}

# The helper holding transaction jt-txn-open open on jt-txn-0 (after 2 plain records) and jt-txn-1,
# for the kafka-transactions checks; started and stopped outside run_check (its pid stays here).
# Its transaction timeout (600 s) and bound (660 s) leave the checks in between, a JVM each, time
# enough on a busy machine.
HOLD_PID=""
HOLD=""
start_hold() {
  local rc=0
  helper txn-topics create-topics jt-txn:2 || rc=$?
  [ "$rc" = 0 ] || { HOLD="creating jt-txn: $(why "$rc")"; return 0; }
  rm -f "$WORK/hold.stop"
  timeout -k 5 660 java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$CP" \
    semel.compat.TxnCompat hold "$BOOTSTRAP" jt-txn jt-txn-open "$WORK/hold.stop" >"$WORK/hold.out" 2>"$WORK/hold.err" &
  HOLD_PID=$!
  echo "$HOLD_PID" >>"$WORK/bg.pids"
  for _ in $(seq 1 1200); do # 120 s
    grep -q '^OPEN ' "$WORK/hold.out" && return 0
    kill -0 "$HOLD_PID" 2>/dev/null || break
    sleep 0.1
  done
  HOLD="the helper did not open its transaction: $(tr '\n' ' ' <"$WORK/hold.out" | cut -c1-200) $(grep -v '^\s*at ' "$WORK/hold.err" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"
}
hold_pid() { awk '$1 == "OPEN" { print $2 }' "$WORK/hold.out"; }

t_txn_list() {
  local rc=0 pid row
  [ -z "$HOLD" ] || { echo "$HOLD"; return 1; }
  pid="$(hold_pid)"
  tool txn-list "$TXN_CMD" list || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  head -n 1 "$LAST.out" | grep -Eq '^TransactionalId\s+Coordinator\s+ProducerId\s+TransactionState\s*$' ||
    { echo "header: $(head -n 1 "$LAST.out")"; return 1; }
  row="$(txn_row 1 jt-txn-open)"
  [ "$(awk '{ print $3, $4 }' <<<"$row")" = "$pid Ongoing" ] || { echo "expected jt-txn-open $pid Ongoing: $(table)"; return 1; }
  [ "$(awk '{ print $4 }' <<<"$(txn_row 1 jt-perf-txn)")" = CompleteCommit ] || { echo "expected jt-perf-txn CompleteCommit: $(table)"; return 1; }
  awk '{ print $2 }' <<<"$row" >"$WORK/txn-node"
  echo "$(($(wc -l <"$LAST.out") - 1)) transactional ids: jt-txn-open Ongoing (producer $pid), jt-perf-txn CompleteCommit, $(awk 'NR > 1 && $1 ~ /^jv-/ { printf "%s %s, ", $1, $4 }' "$LAST.out" | sed 's/, $//')"
}

t_txn_describe() {
  local rc=0 pid row
  [ -z "$HOLD" ] || { echo "$HOLD"; return 1; }
  pid="$(hold_pid)"
  tool txn-describe "$TXN_CMD" describe --transactional-id jt-txn-open || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  row="$(txn_row 2 jt-txn-open)"
  awk -v pid="$pid" '$3 == pid && $5 == "Ongoing" && $6 == 600000 && $7 ~ /^[0-9]+$/ && $8 ~ /^[0-9]+$/ &&
    ($9 == "jt-txn-0,jt-txn-1" || $9 == "jt-txn-1,jt-txn-0") { ok = 1 } END { exit !ok }' <<<"$row" ||
    { echo "expected producer $pid, Ongoing, timeout 600000, a start time, partitions jt-txn-0,jt-txn-1: $(table)"; return 1; }
  rc=0
  tool txn-describe-unknown "$TXN_CMD" describe --transactional-id jt-no-such-txn || rc=$?
  [ "$rc" = 1 ] && grep -q 'could not be found' "$LAST.err" ||
    { echo "describe of an unknown id: expected exit status 1 and a not-found error; $(why "$rc")"; return 1; }
  echo "$(awk '{ print "coordinator " $1 ", producer " $3 " epoch " $4 ", " $5 ", timeout " $6 " ms, running " $8 " ms, " $9 }' <<<"$row"); unknown id -> exit 1: $(head -c 120 "$LAST.err")"
}

t_txn_describe_producers() {
  local rc=0 pid
  [ -z "$HOLD" ] || { echo "$HOLD"; return 1; }
  pid="$(hold_pid)"
  tool txn-describe-producers "$TXN_CMD" describe-producers --topic jt-txn --partition 0 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  head -n 1 "$LAST.out" | grep -Eq '^ProducerId\s+ProducerEpoch\s+LatestCoordinatorEpoch\s+LastSequence\s+LastTimestamp\s+CurrentTransactionStartOffset\s*$' ||
    { echo "header: $(head -n 1 "$LAST.out")"; return 1; }
  awk -v pid="$pid" 'NR > 1 && $1 == pid && $4 == 2 && $6 == 2 { t = 1 } NR > 1 && $1 != pid && $4 == 1 && $6 == "None" { p = 1 }
    END { exit !(t && p) }' "$LAST.out" ||
    { echo "expected producer $pid with last sequence 2 and a transaction from offset 2, and the plain producer (None): $(table)"; return 1; }
  echo "jt-txn-0: $(awk -v pid="$pid" 'NR > 1 { printf "producer %s%s last sequence %s, CurrentTransactionStartOffset %s; ", $1, ($1 == pid ? " (jt-txn-open)" : " (plain)"), $4, $6 }' "$LAST.out" | sed 's/; $//')"
}

t_txn_find_hanging() {
  local rc=0 node
  [ -z "$HOLD" ] || { echo "$HOLD"; return 1; }
  tool txn-find-hanging "$TXN_CMD" find-hanging --topic jt-txn --max-transaction-timeout 0 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  { head -n 1 "$LAST.out" | grep -Eq '^Topic\s+Partition\s+ProducerId\s+ProducerEpoch\s+CoordinatorEpoch\s+StartOffset\s+LastTimestamp\s+Duration\(min\)\s*$' &&
    [ "$(wc -l <"$LAST.out")" = 1 ]; } ||
    { echo "--topic jt-txn --max-transaction-timeout 0: expected the header only (the open transaction is known to its coordinator): $(table)"; return 1; }
  node="$(cat "$WORK/txn-node" 2>/dev/null || echo 1)"
  tool txn-find-hanging-broker "$TXN_CMD" find-hanging --broker-id "$node" || rc=$?
  [ "$rc" = 0 ] || { echo "--broker-id $node: $(why "$rc")"; return 1; }
  [ "$(wc -l <"$LAST.out")" = 1 ] || { echo "--broker-id $node: expected the header only: $(table)"; return 1; }
  echo "--topic jt-txn --max-transaction-timeout 0 and --broker-id $node: no hanging transaction (jt-txn-open's partitions are in its coordinator's description)"
}

t_txn_abort() {
  local rc=0 pid start lso
  [ -z "$HOLD" ] || { echo "$HOLD"; return 1; }
  pid="$(hold_pid)"
  tool txn-abort "$TXN_CMD" abort --topic jt-txn --partition 0 --start-offset 2 || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  helper txn-lso lso jt-txn 2 || { echo "lso helper: $(why 1)"; return 1; }
  lso="$(tr '\n' ';' <"$LAST.out")"
  [ "$lso" = "0 6 6;1 3 0;" ] ||
    { echo "after abort: partition latest/last stable offsets '$lso', expected '0 6 6;1 3 0;' (jt-txn-0 released, jt-txn-1 still held)"; return 1; }
  tool txn-describe-producers-after "$TXN_CMD" describe-producers --topic jt-txn --partition 0 || rc=$?
  [ "$rc" = 0 ] || { echo "describe-producers after the abort: $(why "$rc")"; return 1; }
  start="$(awk -v pid="$pid" 'NR > 1 && $1 == pid { print $6 }' "$LAST.out")"
  [ "$start" = None ] || { echo "describe-producers after the abort: CurrentTransactionStartOffset '$start' for $pid, expected None: $(table)"; return 1; }
  rc=0
  tool txn-abort-again "$TXN_CMD" abort --topic jt-txn --partition 0 --start-offset 2 || rc=$?
  [ "$rc" = 1 ] && grep -q 'Could not find any open transactions starting at offset 2' "$LAST.err" ||
    { echo "abort again: expected exit status 1 and 'Could not find any open transactions...'; $(why "$rc")"; return 1; }
  echo "jt-txn-0 latest/stable 6/6, jt-txn-1 3/0 (still open); describe-producers then shows None; abort again -> exit 1, 'Could not find any open transactions starting at offset 2'"
}

t_txn_hold_end() {
  local lso
  [ -z "$HOLD" ] || { echo "$HOLD"; return 1; }
  touch "$WORK/hold.stop"
  for _ in $(seq 1 600); do # 60 s
    grep -q '^ABORT' "$WORK/hold.out" && break
    sleep 0.1
  done
  grep -q '^ABORTED' "$WORK/hold.out" || { echo "the producer's abortTransaction: $(tail -n 2 "$WORK/hold.out" | tr '\n' ' ') $(grep -v '^\s*at ' "$WORK/hold.err" | tail -n 3 | tr '\n' ' ' | cut -c1-300)"; return 1; }
  for _ in $(seq 1 50); do
    helper txn-lso-end lso jt-txn 2 || { echo "lso helper: $(why 1)"; return 1; }
    lso="$(tr '\n' ';' <"$LAST.out")"
    [ "$lso" = "0 7 7;1 4 4;" ] && break
    sleep 0.2
  done
  [ "$lso" = "0 7 7;1 4 4;" ] || { echo "latest/last stable offsets '$lso', expected '0 7 7;1 4 4;'"; return 1; }
  echo "abortTransaction after the tool's abort: markers on both partitions, latest = last stable (7, 4)"
}

# ---- TransactionalMessageCopier: 20,000 integers copied from 2 partitions, copiers killed -9 and restarted
# copier_start FILE PARTITION OUTPUT TRANSACTIONAL_ID GROUP EXTRA...: one copier in the background; a
# wrapper subshell writes the JVM's pid to FILE.pid and its exit status to FILE.rc.
copier_start() {
  local f=$1 part=$2 out=$3 tid=$4 group=$5
  shift 5
  rm -f "$f.rc" "$f.pid"
  (
    java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$CP" "$COPIER" \
      --broker-list "$BOOTSTRAP" --input-topic jt-copy-in --input-partition "$part" --output-topic "$out" \
      --transactional-id "$tid" --consumer-group "$group" --transaction-size 100 --transaction-timeout 20000 "$@" \
      >"$f.out" 2>"$f.err" &
    echo $! >"$f.pid.tmp"
    mv "$f.pid.tmp" "$f.pid"
    echo $! >>"$WORK/bg.pids"
    crc=0
    wait $! || crc=$?
    echo "$crc" >"$f.rc"
  ) </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 1500); do # 30 s
    [ -s "$f.pid" ] && return 0
    sleep 0.02
  done
}
copier_progress() { grep -o '"totalProcessed":[0-9]*' "$1.out" 2>/dev/null | tail -n 1 | cut -d: -f2; }
copier_kill() { # copier_kill FILE: kill -9, then wait for the wrapper's exit status
  kill -KILL "$(cat "$1.pid")" 2>/dev/null || true
  for _ in $(seq 1 600); do # 30 s
    [ -s "$1.rc" ] && return 0
    sleep 0.05
  done
}

t_copy_seed() {
  local rc=0
  helper copy-topics create-topics jt-copy-in:2 jt-copy-out:2 jt-copy-out-2:2 || { echo "creating the topics: $(why 1)"; return 1; }
  printf 'enable.idempotence=true\nacks=all\nretries=2147483647\nmax.in.flight.requests.per.connection=5\n' >"$WORK/idempotent.properties"
  tool copy-seed org.apache.kafka.tools.VerifiableProducer --topic jt-copy-in --max-messages 20000 --acks -1 \
    --repeating-keys 1000 --command-config "$WORK/idempotent.properties" || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  python3 - "$LAST.out" <<'PY' || return 1
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
ok = [e for e in evs if e["name"] == "producer_send_success"]
err = [e for e in evs if e["name"] == "producer_send_error"]
per = {}
for e in ok:
    per[e["partition"]] = per.get(e["partition"], 0) + 1
values = sorted(int(e["value"]) for e in ok)
if err or values != list(range(20000)) or sorted(per) != [0, 1]:
    print(f"{len(ok)} acked ({len(set(values))} distinct values), {len(err)} errors (first {err[:1]}), per partition {per}")
    sys.exit(1)
print(f"VerifiableProducer (enable.idempotence=true, acks=all): integers 0..19999 acked, per partition {dict(sorted(per.items()))}")
PY
  echo seeded >"$WORK/copy-seeded"
}

# copy_run VARIANT OUTPUT GROUP EXTRA...: one copier per input partition (transactional ids
# jt-copier-VARIANT-P, --transaction-size 100); each is killed -9 twice once it has copied 2,500
# records in its current run, and restarted; the third run copies to the end. Then a
# read_committed consumer checks the output (TxnCompat verify-copy).
#
# --transaction-timeout 20000: a restarted copier looks up its position (OffsetFetch with
# require_stable) *before* its initTransactions fences the killed copier, so a transaction the
# kill left open with offsets in it answers UNSTABLE_OFFSET_COMMIT, as Kafka does, until the
# broker aborts it by its timeout. With the copier's default of 60 s that race was lost against
# the consumer's own 60 s lookup timeout (2 of 3 CI runs); 20 s leaves 40 s to spare, and a
# running copier's 100-record transaction lasts milliseconds, not 20 s, even on a busy machine.
copy_run() {
  local variant=$1 out=$2 group=$3
  shift 3
  local kills=2 target=2500 deadline=$((SECONDS + 600)) p f n crc all
  local -a run=(1 1) killed=(0 0) finished=(0 0) at=("" "")
  [ -s "$WORK/copy-seeded" ] || { echo "no input (the seed check failed)"; return 1; }
  mkdir -p "$WORK/copy"
  for p in 0 1; do
    copier_start "$WORK/copy/$variant-p$p-run1" "$p" "$out" "jt-copier-$variant-$p" "$group" "$@"
  done
  while :; do
    all=1
    for p in 0 1; do
      [ "${finished[$p]}" = 1 ] && continue
      all=0
      f="$WORK/copy/$variant-p$p-run${run[$p]}"
      if [ -s "$f.rc" ]; then
        crc="$(cat "$f.rc")"
        if [ "${killed[$p]}" -lt "$kills" ] || [ "$crc" != 0 ]; then
          for n in 0 1; do [ -s "$WORK/copy/$variant-p$n-run${run[$n]}.rc" ] || copier_kill "$WORK/copy/$variant-p$n-run${run[$n]}"; done
          echo "copier for partition $p, run ${run[$p]} (after ${killed[$p]} kills): exit status $crc before its planned end;" \
            "stderr: $(grep -v '^\s*at ' "$f.err" | grep -E 'Exception|ERROR' | tail -n 3 | tr '\n' ' ' | cut -c1-400);" \
            "last output: $(tail -n 1 "$f.out" | cut -c1-200)"
          return 1
        fi
        grep '"ShutdownComplete"' "$f.out" | grep -q '"remaining":0[,}]' ||
          { echo "copier for partition $p, final run: no ShutdownComplete line with remaining 0: $(tail -n 1 "$f.out")"; return 1; }
        finished[$p]=1
      elif [ "${killed[$p]}" -lt "$kills" ]; then
        n="$(copier_progress "$f")"
        if [ "${n:-0}" -ge "$target" ]; then
          sleep "0.0$((RANDOM % 10))" # 0-90 ms: land anywhere in the copier's transaction cycle
          copier_kill "$f"
          killed[$p]=$((killed[$p] + 1))
          at[$p]="${at[$p]}${at[$p]:+, }$(copier_progress "$f")"
          run[$p]=$((run[$p] + 1))
          copier_start "$WORK/copy/$variant-p$p-run${run[$p]}" "$p" "$out" "jt-copier-$variant-$p" "$group" "$@"
        fi
      fi
    done
    [ "$all" = 1 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for n in 0 1; do [ -s "$WORK/copy/$variant-p$n-run${run[$n]}.rc" ] || copier_kill "$WORK/copy/$variant-p$n-run${run[$n]}"; done
      echo "the copiers did not finish within 600s: partition 0 in run ${run[0]} at $(copier_progress "$WORK/copy/$variant-p0-run${run[0]}")," \
        "partition 1 in run ${run[1]} at $(copier_progress "$WORK/copy/$variant-p1-run${run[1]}") records"
      return 1
    fi
    sleep 0.05
  done
  local finals=""
  for p in 0 1; do
    finals="$finals${finals:+, }partition $p killed -9 after ${at[$p]} records, run ${run[$p]} copied the rest ($(copier_progress "$WORK/copy/$variant-p$p-run${run[$p]}"))"
  done
  helper "copy-verify-$variant" verify-copy "$WORK/data" jt-copy-in "$out" "$group" || { echo "$finals; $(tail -n 1 "$LAST.out")"; return 1; }
  echo "$finals; $(tail -n 1 "$LAST.out")"
}

t_copy() { copy_run plain jt-copy-out jt-copier-group; }
t_copy_group_metadata() { copy_run meta jt-copy-out-2 jt-copier-group-2 --use-group-metadata --enable-random-aborts; }

run_check "kafka-producer-perf-test --transactional-id --transaction-duration-ms 100: 50000 records, read_committed sees all" t_txn_perf
start_hold
run_check "kafka-transactions list (an open transaction among the others)" t_txn_list
run_check "kafka-transactions describe --transactional-id (open transaction; unknown id)" t_txn_describe
run_check "kafka-transactions describe-producers --topic --partition" t_txn_describe_producers
run_check "kafka-transactions find-hanging (--topic, --broker-id): no false positive" t_txn_find_hanging
run_check "kafka-transactions abort --start-offset releases the partition's last stable offset" t_txn_abort
run_check "the open transaction's producer then aborts it: both partitions stable" t_txn_hold_end
run_check "TransactionalMessageCopier input: VerifiableProducer (idempotent) writes 20,000 integers to 2 partitions" t_copy_seed
run_check "TransactionalMessageCopier x2 (one per input partition), each killed -9 twice and restarted: read_committed output = input, no duplicates" t_copy
run_check "TransactionalMessageCopier --use-group-metadata --enable-random-aborts, killed -9 twice each: output = input, no duplicates" t_copy_group_metadata

if [ "$FAILED" != 0 ]; then
  say "each tool's stdout and stderr are in $WORK/tools/NN-*.out / .err, the copiers' in $WORK/copy/, the harness logs in $WORK/client.log and $WORK/txn-client.log (removed at exit unless COMPAT_KEEP=1)"
fi

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
