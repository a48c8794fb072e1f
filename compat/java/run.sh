#!/usr/bin/env bash
# Compatibility suite: the Java client (org.apache.kafka:kafka-clients) and Kafka's own
# command-line tools (org.apache.kafka:kafka-tools, run through their main classes) against
# semel.
#
# Needs Java 17+ and Maven (installed with apt-get when missing); Maven downloads the pinned
# artifacts of compat/java/pom.xml into ~/.m2 and compiles the harness
# (src/main/java/semel/compat/JavaCompat.java) into compat/java/target. Builds semel with
# `cargo build -p semel`, starts it (SEMEL_LOG=info) on a free port with a temporary data dir,
# runs the checks, prints one `PASS name` / `FAIL name: why` line per check and finally
# `N passed, M failed`. Exits non-zero if any check failed.
#
#   1-3  the harness (one JVM): producer with default settings (idempotent) and acks=all,
#        consumer group read / commit / resume, a cooperative-sticky rebalance, Admin API
#   4    kafka-topics, kafka-configs, kafka-producer-perf-test, kafka-get-offsets,
#        kafka-consumer-perf-test, VerifiableProducer, VerifiableConsumer,
#        kafka-consumer-groups (each tool's exit status and output)
# Transactions are not implemented by semel: no transactional producer, no TransactionsCommand
# (docs/compatibility.md lists the checks to add).
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   SEMEL_LOG                  semel's log filter (default info)
set -euo pipefail

SUITE=java

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PASSED=0
FAILED=0
SEMEL_PID=""
SEMEL_RC=""
WORK="$(mktemp -d "${TMPDIR:-/tmp}/semel-compat-$SUITE.XXXXXX")"

say() { echo "[$SUITE] $*" >&2; }

record() { # record PASS|FAIL name-and-detail...
  local status=$1
  shift
  if [ "$status" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
  echo "$status $*"
}

summary() { echo "$PASSED passed, $FAILED failed"; }

stop_semel() {
  [ -n "$SEMEL_PID" ] || return 0
  local pid=$SEMEL_PID
  SEMEL_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "semel (pid $pid) ignored SIGTERM for 15s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  SEMEL_RC=0
  wait "$pid" 2>/dev/null || SEMEL_RC=$?
}

cleanup() {
  stop_semel
  if [ "${COMPAT_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

setup_failed() {
  record FAIL "setup: $*"
  summary
  exit 1
}

# ---------------------------------------------------------------- client install and build
java_major() { # the major version of the java on PATH, 0 if none
  java -XshowSettings:properties -version 2>&1 | sed -nE 's/^ *java\.specification\.version = ([0-9]+).*/\1/p' | head -n 1 | grep . || echo 0
}

install_client() {
  if command -v javac >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ]; then
    return 0
  fi
  say "installing Java 17 and Maven: apt-get install -y openjdk-17-jdk-headless maven"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y openjdk-17-jdk-headless maven >&2 && return 0
  say "apt-get install failed; running apt-get update first"
  apt-get update >&2 && apt-get install -y openjdk-17-jdk-headless maven >&2
}
install_client || setup_failed "cannot install Java 17 and Maven with apt-get"
[ "$(java_major)" -ge 17 ] || setup_failed "java on PATH is older than 17: $(java -version 2>&1 | head -n 1)"

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

# ---------------------------------------------------------------- broker build
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
if [ -n "${SEMEL_BIN:-}" ]; then
  SEMEL="$SEMEL_BIN"
else
  SEMEL="$TARGET_DIR/debug/semel"
  say "cargo build -p semel"
  if ! (cd "$ROOT" && cargo build -p semel) >"$WORK/cargo.log" 2>&1; then
    tail -n 30 "$WORK/cargo.log" >&2
    if [ -x "$SEMEL" ]; then
      say "WARNING: cargo build -p semel failed; testing the existing binary $SEMEL"
    else
      setup_failed "cargo build -p semel failed"
    fi
  fi
fi
[ -x "$SEMEL" ] || setup_failed "no semel binary at $SEMEL"

# ---------------------------------------------------------------- broker start
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
BOOTSTRAP="127.0.0.1:$PORT"
mkdir -p "$WORK/data"
env -u SEMEL_CONFIG -u SEMEL_ADVERTISED SEMEL_LOG="${SEMEL_LOG:-info}" \
  "$SEMEL" serve --listen "$BOOTSTRAP" --data-dir "$WORK/data" >"$WORK/semel.out" 2>"$WORK/semel.log" &
SEMEL_PID=$!
ready=0
for _ in $(seq 1 600); do
  if ! kill -0 "$SEMEL_PID" 2>/dev/null; then
    tail -n 30 "$WORK/semel.log" >&2
    setup_failed "semel exited before accepting connections"
  fi
  if grep -q "semel listening on" "$WORK/semel.out" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || setup_failed "semel did not accept connections on $BOOTSTRAP within 60s"
say "semel (pid $SEMEL_PID) listening on $BOOTSTRAP, data in $WORK/data"

echo "# kafka-clients / kafka-tools $KAFKA_VERSION (Maven Central), $(java -version 2>&1 | head -n 1), $(mvn -v 2>/dev/null | sed -E 's/\x1b\[[0-9;]*m//g' | head -n 1)"

# ---------------------------------------------------------------- 1-3: the harness
# One JVM, bounded as a whole; its PASS/FAIL lines go to checks.out, its log to client.log.
: >"$WORK/checks.out"
set +e
timeout -k 10 240 java -XX:+UseSerialGC -Xmx1g -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -Dorg.slf4j.simpleLogger.showDateTime=true -cp "$CP" semel.compat.JavaCompat "$BOOTSTRAP" "$WORK/data" \
  2>"$WORK/client.log" | tee "$WORK/checks.out"
rc=${PIPESTATUS[0]}
set -e
PASSED=$((PASSED + $(grep -c '^PASS ' "$WORK/checks.out" || true)))
FAILED=$((FAILED + $(grep -c '^FAIL ' "$WORK/checks.out" || true)))
if [ "$rc" != 0 ]; then
  record FAIL "client harness (JavaCompat) exited with status $rc (see the client log below)"
fi
if grep -q '^FAIL ' "$WORK/checks.out" || [ "$rc" != 0 ]; then
  say "--- client log of the failed checks ($WORK/client.log)"
  grep -A 12 -E '^--- ' "$WORK/client.log" | head -n 80 >&2 || true
fi

# ---------------------------------------------------------------- 4: Kafka's command-line tools
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
  timeout -k 5 120 java -XX:+UseSerialGC "${jit[@]}" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
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

# The broker's WARN/ERROR lines logged after line $1 of its log, distinct, at most 3.
semel_errors_since() {
  tail -n +"$(($1 + 1))" "$WORK/semel.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' |
    grep -E '^(ERROR|WARN)' | sort | uniq | head -n 3 | tr '\n' ' ' || true
}

run_check() { # run_check "name" function args... ; the function prints one detail line
  local name=$1
  shift
  local out rc=0 log_lines errors t0
  log_lines="$(wc -l <"$WORK/semel.log")"
  t0=$SECONDS
  out="$("$@" 2>&1)" || rc=$?
  out="$(printf '%s' "$out" | tr '\n\t' '  ' | sed 's/  */ /g; s/ $//' | cut -c1-700)"
  if [ "$rc" = 0 ]; then
    record PASS "$name (${out:+$out, }$((SECONDS - t0))s)"
  else
    errors="$(semel_errors_since "$log_lines")"
    record FAIL "$name: ${out:-exit status $rc}${errors:+ || semel log: $errors}"
  fi
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
  local rc=0
  tool topics-delete "$TOPICS" --delete --topic jt-topics || rc=$?
  [ "$rc" = 0 ] || { why "$rc"; return 1; }
  for _ in 1 2 3 4 5; do
    rc=0
    tool topics-list "$TOPICS" --list || rc=$?
    [ "$rc" = 0 ] || { echo "--list after the delete: $(why "$rc")"; return 1; }
    grep -qx 'jt-topics' "$LAST.out" || { echo "deleted; --list no longer shows jt-topics"; return 0; }
    sleep 1
  done
  echo "jt-topics still listed after --delete: $(tr '\n' ' ' <"$LAST.out")"
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
    --group jt-cperf --timeout 30000 || rc=$?
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
    --max-messages 5000 --reset-policy earliest --session-timeout 10000 || rc=$?
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

if [ "$FAILED" != 0 ]; then
  say "each tool's stdout and stderr are in $WORK/tools/NN-*.out / .err, the harness log in $WORK/client.log (removed at exit unless COMPAT_KEEP=1)"
fi

# ---------------------------------------------------------------- broker health and shutdown
if kill -0 "$SEMEL_PID" 2>/dev/null; then
  stop_semel
  if [ "$SEMEL_RC" = 0 ]; then
    record PASS "semel shut down cleanly on SIGTERM"
  else
    record FAIL "semel shut down cleanly on SIGTERM: exit status $SEMEL_RC"
  fi
else
  record FAIL "semel shut down cleanly on SIGTERM: semel died during the checks"
  stop_semel
fi
if grep -Eq ' (ERROR|WARN) ' <(sed 's/\x1b\[[0-9;]*m//g' "$WORK/semel.log"); then
  say "--- semel warnings and errors ($WORK/semel.log)"
  sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//; s/peer=[0-9.:]+/peer=*/' "$WORK/semel.log" | grep -E '^(ERROR|WARN) ' |
    sort | uniq -c | sort -rn | head -n 20 >&2 || true
fi

summary
[ "$FAILED" = 0 ]
