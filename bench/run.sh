#!/usr/bin/env bash
# semel and Apache Kafka side by side: one single-node broker each, fresh data directories on the
# same disk, the same workloads against both, alternating, and a table of medians written to
# docs/performance.md. See bench/README.md.
#
#   bench/run.sh            # 3 rounds (about 12 minutes on 2 cores)
#   bench/run.sh --quick    # 1 round, small counts (about 2 minutes): checks the harness
#
# Needs: cargo, a JDK >= 17 (java), Maven (mvn: scripts/kafka.sh fetches Kafka's jars from Maven Central
# into ~/.cache/semel-kafka), python3.
# shellcheck disable=SC2016 # '$WORK' and the like are written literally into the report
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [--quick] [--rounds N] [--restart-gib N] [--kafka-version V] [--out FILE] [--keep]

  --quick            1 round with small counts (a check of the harness, not a measurement)
  --rounds N         rounds of (semel, Kafka) sessions; the table shows medians [default: 3]
  --restart-gib N    after the rounds, write N GiB to each broker, kill -9 it and time the
                     restart [default: 10, --quick 1; 0 skips it]
  --kafka-version V  Apache Kafka release from Maven Central [default: $KAFKA_VERSION or 4.4.0]
  --out FILE         where to write the report [default: docs/performance.md]
  --keep             keep the work directory (broker logs, raw results) instead of deleting it

environment: RECORDS (per produce/consume run; default 1000000, --quick 200000), PERF_RECORDS
(per kafka-producer-perf-test run; default RECORDS/4), E2E_RATE (records/s; default 1000),
E2E_SECS (default 15, --quick 5), TXN_RATE (records/s while measuring commit latency; default
5000), TXN_SECS (default 8, --quick 3), BENCH_TMP (parent
of the work directory, default $TMPDIR or /tmp), KAFKA_HEAP_OPTS (default -Xmx1G -Xms1G, as
kafka-server-start.sh)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
ROUNDS=
KEEP=0
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
OUT=$ROOT/docs/performance.md
INVOCATION="bench/run.sh $*"
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
    --kafka-version) KAFKA_VERSION=${2:?--kafka-version needs a version}; shift ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --keep) KEEP=1 ;;
    --restart-gib) RESTART_GIB=${2:?--restart-gib needs a number}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ $OUT = /* ]] || OUT=$PWD/$OUT
if ((QUICK)); then
  ROUNDS=${ROUNDS:-1} RECORDS=${RECORDS:-200000} E2E_SECS=${E2E_SECS:-5} TXN_SECS=${TXN_SECS:-3} RESTART_GIB=${RESTART_GIB:-1}
else
  ROUNDS=${ROUNDS:-3} RECORDS=${RECORDS:-1000000} E2E_SECS=${E2E_SECS:-15} TXN_SECS=${TXN_SECS:-8} RESTART_GIB=${RESTART_GIB:-10}
fi
[[ $RESTART_GIB =~ ^[0-9]+$ ]] || { echo "bench/run.sh: --restart-gib must be a whole number" >&2; exit 2; }
E2E_RATE=${E2E_RATE:-1000}
TXN_RATE=${TXN_RATE:-5000}
PERF_RECORDS=${PERF_RECORDS:-$((RECORDS / 4))}
WARMUP_RECORDS=$((RECORDS / 5))
PARTITIONS=6
RECORD_SIZE=1024
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
# Kafka's jars, configuration and formatting come from scripts/kafka.sh, shared with the tests;
# it also sets KAFKA_JVM_OPTS (what kafka-server-start.sh uses) and defines kafka_free_port.
# shellcheck source=../scripts/kafka.sh
source "$ROOT/scripts/kafka.sh"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench/run.sh: --rounds must be a positive number" >&2; exit 2; }

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

for tool in cargo java mvn python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (see bench/README.md)"
done

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/semel-bench.XXXXXX")
RESULTS=$WORK/results.tsv
COMMANDS=$WORK/commands.txt
: >"$RESULTS"
: >"$COMMANDS"
BROKER_PID=
BROKER_NAME=

# ---------------------------------------------------------------------------------------------
# Clean-up: stop whatever broker runs, delete the work directory; on success, failure and Ctrl-C.

stop_broker() {
  local pid=$BROKER_PID name=$BROKER_NAME
  [[ -n $pid ]] || return 0
  BROKER_PID=
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 600; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name (pid $pid) still runs 60 s after SIGTERM: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
}

# A process that exists and is not a zombie.
alive() {
  [[ -r /proc/$1/status ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_broker
  if ((KEEP)); then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Helpers.

# json FILE KEY.PATH: one field of the last JSON line of FILE, or nothing.
json() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.lstrip().startswith("{")]
if lines:
    v = json.loads(lines[-1])
    for k in sys.argv[2].split("."):
        v = v.get(k) if isinstance(v, dict) else None
    if v is not None:
        print(v)
EOF
}

# record BROKER ROUND METRIC VALUE (an empty value records a failure).
record() {
  local value=${4:-FAIL}
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$value" >>"$RESULTS"
  log "  $1 round $2: $3 = ${value/#FAIL/FAILED}"
}

# note COMMAND...: remember the command line (first round only) for the report.
note() {
  ((ROUND == 1)) || return 0
  local line
  line=$(printf '%q ' "$@")
  line=${line//"$(printf %q "$KAFKA_LIBS/*")"/'"$KAFKA_LIBS/*"'}
  line=${line//"$WORK"/'$WORK'}
  line=${line//"$ROOT"\//}
  [[ -n ${PORT:-} ]] && line=${line//":$PORT"/':$PORT'}
  [[ -n ${PORT:-} ]] && line=${line//"--listen 127.0.0.1:$PORT"/'--listen 127.0.0.1:$PORT'}
  grep -qxF -- "${line% }" "$COMMANDS" || printf '%s\n' "${line% }" >>"$COMMANDS"
}

# run LOGFILE COMMAND...: run a load driver, its stdout (one JSON line) in LOGFILE.
run() {
  local out=$1
  shift
  note "$@"
  if ! "$@" >"$out" 2>>"$WORK/drivers.log"; then
    log "  command failed: $* (see the last lines below)"
    tail -n 5 "$WORK/drivers.log" >&2 || true
    return 1
  fi
}

SEMEL=$ROOT/target/release/semel

# kafka_java CLASS ARG...: a Kafka tool; LOG4J_CONF and LOG4J_FILE choose its logging.
kafka_java() {
  java -Xmx512M -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="${LOG4J_CONF:-$WORK/log4j2.properties}" \
    -Dbench.log4j.file="${LOG4J_FILE:-$WORK/tools.log}" "$@"
}

# ---------------------------------------------------------------------------------------------
# Kafka from Maven Central (kafka_2.13, kafka-tools and their runtime dependencies): fetched,
# cached, configured and formatted by scripts/kafka.sh, which the tests share.

install_kafka() {
  kafka_install || die "cannot install Apache Kafka $KAFKA_VERSION (scripts/kafka.sh)"
  log "Kafka $KAFKA_VERSION: jars in $KAFKA_LIBS"
}

# ---------------------------------------------------------------------------------------------
# Start-up probe: starts the broker in its own session, and measures the time from just before
# the process is created to the first accepted TCP connection and to the first answered
# ApiVersions request (a broker may listen before it serves). Prints "PID TCP_SECS READY_SECS".

cat >"$WORK/probe.py" <<'EOF'
import socket, struct, subprocess, sys, time
port, logfile, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
body = struct.pack(">hhih", 18, 0, 1, 5) + b"probe"  # ApiVersions v0, correlation id 1
request = struct.pack(">i", len(body)) + body
out = open(logfile, "ab")
t0 = time.monotonic()
proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
tcp = None
while time.monotonic() - t0 < 180 and proc.poll() is None:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        time.sleep(0.001)
        continue
    if tcp is None:
        tcp = time.monotonic() - t0
    try:
        s.settimeout(10)
        s.sendall(request)
        if len(s.recv(8)) >= 4:
            print(proc.pid, f"{tcp:.4f}", f"{time.monotonic() - t0:.4f}")
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.001)
print(proc.pid, "FAIL", "FAIL")
EOF

# start_broker NAME PORT LOGFILE COMMAND...
start_broker() {
  local name=$1 port=$2 logfile=$3
  shift 3
  note "$@"
  local pid tcp ready
  read -r pid tcp ready < <(python3 "$WORK/probe.py" "$port" "$logfile" "$@")
  BROKER_PID=$pid BROKER_NAME=$name
  if [[ $ready = FAIL ]]; then
    tail -n 30 "$logfile" "${logfile%.log}.server.log" >&2 2>/dev/null || true
    die "$name did not answer on 127.0.0.1:$port (log above)"
  fi
  record "$name" "$ROUND" "${STARTUP_METRIC:-startup}_tcp_ms" "$(python3 -c "print(round($tcp * 1000, 1))")"
  record "$name" "$ROUND" "${STARTUP_METRIC:-startup}_ready_ms" "$(python3 -c "print(round($ready * 1000, 1))")"
  READY_SECS=$ready
}

rss_mib() {
  awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# ---------------------------------------------------------------------------------------------
# Workloads. Every produce: 1 KiB values, 6 partitions, acks=all, idempotent.

PRODUCE_FLAGS=(--partitions "$PARTITIONS" --record-size "$RECORD_SIZE" --acks all --idempotence true --json)

# produce NAME PORT TOPIC METRIC [RECORDS]: records a failure if METRIC is set, else fails.
produce() {
  local f=$WORK/out.json
  if run "$f" "$SEMEL" bench produce --bootstrap "127.0.0.1:$2" --topic "$3" --records "${5:-$RECORDS}" "${PRODUCE_FLAGS[@]}" &&
    [[ $(json "$f" failed) = 0 ]]; then
    [[ -z $4 ]] || record "$1" "$ROUND" "$4" "$(json "$f" mib_per_sec)"
  elif [[ -z $4 ]]; then
    return 1
  else
    record "$1" "$ROUND" "$4" ""
  fi
}

# create_topic PORT TOPIC [CONFIG...]: through Kafka's own admin tool (TopicCommand).
create_topic() {
  local port=$1 topic=$2
  shift 2
  local args=(org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --create --topic "$topic"
    --partitions "$PARTITIONS" --replication-factor 1)
  local c
  for c in "$@"; do args+=(--config "$c"); done
  note java -cp "$KAFKA_LIBS/*" "${args[@]}"
  kafka_java "${args[@]}" >>"$WORK/drivers.log" 2>&1
}

# perf_test NAME PORT TOPIC METRIC [OPTION...]: Kafka's kafka-producer-perf-test (Java client,
# its defaults apart from acks=all and idempotence) on a topic created beforehand with 6
# partitions. --producer-props (deprecated for --command-property in 4.4) works on every 4.x.
perf_test() {
  local f=$WORK/perf.txt name=$1 port=$2 topic=$3 metric=$4
  shift 4
  local args=(org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "${PERF_N:-$PERF_RECORDS}"
    --record-size "$RECORD_SIZE" --throughput "${PERF_RATE:--1}" "$@"
    --producer-props acks=all enable.idempotence=true "bootstrap.servers=127.0.0.1:$port")
  note java -cp "$KAFKA_LIBS/*" "${args[@]}"
  if kafka_java "${args[@]}" >"$f" 2>>"$WORK/drivers.log"; then
    # "N records sent, R records/sec (M MB/sec), ..." (MB = 2^20 bytes): the last line is the total.
    [[ -z $metric ]] ||
      record "$name" "$ROUND" "$metric" "$(sed -n 's/^[0-9]* records sent, [0-9.]* records\/sec (\([0-9.]*\) MB\/sec).*/\1/p' "$f" | tail -n 1)"
  else
    tail -n 5 "$f" >&2 || true
    [[ -z $metric ]] || record "$name" "$ROUND" "$metric" ""
    return 1
  fi
}

# commit_latency LOG: "P50 P99" in ms of commitTransaction() from a producer's debug log (see
# log4j2-txn.properties), or "FAIL FAIL".
commit_latency() {
  python3 - "$1" <<'EOF'
import re, sys
start, took = None, []
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    m = re.match(r"(\d+) .*Transition from state (\w+) to (\w+)", line)
    if not m:
        continue
    t, src, dst = int(m.group(1)), m.group(2), m.group(3)
    if dst == "COMMITTING_TRANSACTION":
        start = t
    elif src == "COMMITTING_TRANSACTION" and start is not None:
        took.append(t - start)
        start = None
if not took:
    print("FAIL FAIL")
else:
    took.sort()
    pick = lambda q: took[min(len(took) - 1, int(q * len(took)))]
    print(pick(0.5), pick(0.99))
EOF
}

# e2e NAME PORT TOPIC PREFIX: end-to-end latency percentiles as PREFIX_p50_ms and so on (an
# empty PORT records failures).
e2e() {
  local f=$WORK/out.json
  if [[ -n $2 ]] && run "$f" "$SEMEL" bench e2e --bootstrap "127.0.0.1:$2" --topic "$3" --rate "$E2E_RATE" \
    --duration-secs "$E2E_SECS" "${PRODUCE_FLAGS[@]}" && [[ $(json "$f" failed) = 0 ]]; then
    record "$1" "$ROUND" "$4_p50_ms" "$(json "$f" e2e_latency_ms.p50)"
    record "$1" "$ROUND" "$4_p99_ms" "$(json "$f" e2e_latency_ms.p99)"
    record "$1" "$ROUND" "$4_p999_ms" "$(json "$f" e2e_latency_ms.p99_9)"
  else
    record "$1" "$ROUND" "$4_p50_ms" ""
    record "$1" "$ROUND" "$4_p99_ms" ""
    record "$1" "$ROUND" "$4_p999_ms" ""
  fi
}

# workloads NAME PORT [kafka]: everything measured against a running broker.
workloads() {
  local name=$1 port=$2 kafka=${3:-}
  local f=$WORK/out.json
  PORT=$port

  log "$name round $ROUND: warm-up, $WARMUP_RECORDS records"
  produce "$name" "$port" bench-warmup "" "$WARMUP_RECORDS" || log "  the warm-up failed; going on"

  log "$name round $ROUND: produce $RECORDS x 1 KiB, ${PARTITIONS} partitions, acks=all, idempotent"
  produce "$name" "$port" bench-produce produce_mib_s

  sleep 3
  record "$name" "$ROUND" rss_after_produce_mib "$(rss_mib "$BROKER_PID" VmRSS)"

  if [[ -n $kafka ]]; then
    log "$name round $ROUND: the same to a topic with flush.messages=1 (fsync on every append)"
    if create_topic "$port" bench-produce-flush flush.messages=1; then
      produce "$name" "$port" bench-produce-flush produce_flush_mib_s
    else
      record "$name" "$ROUND" produce_flush_mib_s ""
    fi
  fi

  log "$name round $ROUND: consume the $RECORDS records"
  if run "$f" "$SEMEL" bench consume --bootstrap "127.0.0.1:$port" --topic bench-produce --records "$RECORDS" --json; then
    record "$name" "$ROUND" consume_mib_s "$(json "$f" mib_per_sec)"
  else
    record "$name" "$ROUND" consume_mib_s ""
  fi

  log "$name round $ROUND: end-to-end latency at $E2E_RATE records/s for $E2E_SECS s"
  e2e "$name" "$port" bench-e2e e2e
  if [[ -n $kafka ]]; then
    log "$name round $ROUND: the same on a topic with flush.messages=1"
    if create_topic "$port" bench-e2e-flush flush.messages=1; then
      e2e "$name" "$port" bench-e2e-flush e2e_flush
    else
      e2e "$name" "" "" e2e_flush
    fi
  fi

  log "$name round $ROUND: kafka-producer-perf-test (Java client)"
  if create_topic "$port" bench-perf; then
    perf_test "$name" "$port" bench-perf perf_mib_s || true
  else
    record "$name" "$ROUND" perf_mib_s ""
  fi
  if [[ -n $kafka ]]; then
    if create_topic "$port" bench-perf-flush flush.messages=1; then
      perf_test "$name" "$port" bench-perf-flush perf_flush_mib_s || true
    else
      record "$name" "$ROUND" perf_flush_mib_s ""
    fi
  fi

  local ms
  for ms in 100 10; do
    log "$name round $ROUND: semel bench, $RECORDS records in transactions of $ms ms"
    if run "$f" "$SEMEL" bench produce --bootstrap "127.0.0.1:$port" --topic "bench-sb-txn-$ms" --records "$RECORDS" \
      --transaction-ms "$ms" "${PRODUCE_FLAGS[@]}" && [[ $(json "$f" failed) = 0 ]]; then
      record "$name" "$ROUND" "txn${ms}_bench_mib_s" "$(json "$f" mib_per_sec)"
    else
      record "$name" "$ROUND" "txn${ms}_bench_mib_s" ""
    fi
    log "$name round $ROUND: semel bench, commit latency, transactions of $ms ms at $TXN_RATE records/s for $TXN_SECS s"
    if run "$f" "$SEMEL" bench produce --bootstrap "127.0.0.1:$port" --topic "bench-sb-txn-latency-$ms" --records $((TXN_RATE * TXN_SECS)) \
      --throughput "$TXN_RATE" --transaction-ms "$ms" "${PRODUCE_FLAGS[@]}" && [[ $(json "$f" failed) = 0 ]]; then
      record "$name" "$ROUND" "txn${ms}_bench_commit_p50_ms" "$(json "$f" commit_latency_ms.p50)"
      record "$name" "$ROUND" "txn${ms}_bench_commit_p99_ms" "$(json "$f" commit_latency_ms.p99)"
    else
      record "$name" "$ROUND" "txn${ms}_bench_commit_p50_ms" ""
      record "$name" "$ROUND" "txn${ms}_bench_commit_p99_ms" ""
    fi
  done
  # What a commit costs the client's pipeline without any transaction: the same producer waits
  # for every acknowledgement every 100 ms, as commit_transaction() does before EndTxn.
  log "$name round $ROUND: semel bench, $RECORDS records, idempotent, draining every 100 ms"
  if run "$f" "$SEMEL" bench produce --bootstrap "127.0.0.1:$port" --topic bench-sb-drain --records "$RECORDS" \
    --drain-every-ms 100 "${PRODUCE_FLAGS[@]}" && [[ $(json "$f" failed) = 0 ]]; then
    record "$name" "$ROUND" drain100_bench_mib_s "$(json "$f" mib_per_sec)"
  else
    record "$name" "$ROUND" drain100_bench_mib_s ""
  fi
  for ms in 100 10; do
    log "$name round $ROUND: kafka-producer-perf-test, transactions of $ms ms"
    if create_topic "$port" "bench-txn-$ms"; then
      perf_test "$name" "$port" "bench-txn-$ms" "txn${ms}_mib_s" --transactional-id "bench-txn-$ms" --transaction-duration-ms "$ms" || true
    else
      record "$name" "$ROUND" "txn${ms}_mib_s" ""
    fi
  done
  for ms in 100 10; do
    # Unthrottled, commitTransaction() mostly waits for the producer's buffer to drain: commit
    # latency is measured at a moderate rate instead. The producer's TransactionManager logs its
    # state changes; a commit takes from -> COMMITTING_TRANSACTION to COMMITTING_TRANSACTION ->.
    log "$name round $ROUND: commit latency, transactions of $ms ms at $TXN_RATE records/s for $TXN_SECS s"
    local txn_log=$WORK/txn-$name-$ROUND-$ms.log p50=FAIL p99=FAIL
    if create_topic "$port" "bench-txn-latency-$ms" &&
      LOG4J_CONF=$WORK/log4j2-txn.properties LOG4J_FILE=$txn_log PERF_N=$((TXN_RATE * TXN_SECS)) PERF_RATE=$TXN_RATE \
        perf_test "$name" "$port" "bench-txn-latency-$ms" "" --transactional-id "bench-txn-latency-$ms" --transaction-duration-ms "$ms"; then
      read -r p50 p99 < <(commit_latency "$txn_log")
    fi
    record "$name" "$ROUND" "txn${ms}_commit_p50_ms" "$p50"
    record "$name" "$ROUND" "txn${ms}_commit_p99_ms" "$p99"
  done
  log "$name round $ROUND: consume the 100 ms transactions' $PERF_RECORDS records, read_committed"
  if run "$f" "$SEMEL" bench consume --bootstrap "127.0.0.1:$port" --topic bench-txn-100 --records "$PERF_RECORDS" \
    --isolation read_committed --json; then
    record "$name" "$ROUND" consume_committed_mib_s "$(json "$f" mib_per_sec)"
  else
    record "$name" "$ROUND" consume_committed_mib_s ""
  fi

  record "$name" "$ROUND" rss_peak_mib "$(rss_mib "$BROKER_PID" VmHWM)"
  PORT=
}

session_semel() {
  local dir=$WORK/semel-$ROUND port
  port=$(kafka_free_port)
  mkdir -p "$dir"
  PORT=$port
  start_broker semel "$port" "$WORK/semel-$ROUND.log" "$SEMEL" serve --listen "127.0.0.1:$port" --data-dir "$dir/data"
  workloads semel "$port"
  stop_broker
  rm -rf "$dir"
}

# prepare_kafka DIR PORT: a KRaft single-node config in DIR/server.properties, storage formatted
# (scripts/kafka.sh prepare).
prepare_kafka() {
  note scripts/kafka.sh prepare "$1" "$2"
  kafka_prepare "$1" "$2" >>"$WORK/kafka-$ROUND.log" 2>&1 ||
    { tail -n 20 "$WORK/kafka-$ROUND.log" >&2; die "scripts/kafka.sh prepare failed"; }
}

# launch_kafka DIR PORT: starts Kafka on a prepared DIR (start_broker measures the start-up).
launch_kafka() {
  # shellcheck disable=SC2086 # the option strings are lists of JVM flags
  start_broker kafka "$2" "$WORK/kafka-$ROUND.log" java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS -cp "$KAFKA_LIBS/*" \
    -Dlog4j2.configurationFile="$WORK/log4j2.properties" -Dbench.log4j.file="$WORK/kafka-$ROUND.server.log" kafka.Kafka "$1/server.properties"
}

session_kafka() {
  local dir=$WORK/kafka-$ROUND port
  port=$(kafka_free_port)
  prepare_kafka "$dir" "$port"
  PORT=$port
  launch_kafka "$dir" "$port"
  workloads kafka "$port" kafka
  stop_broker
  rm -rf "$dir"
}

# restart_session NAME: writes RESTART_GIB GiB (1 KiB records, 6 partitions, acks=all,
# idempotent) to a fresh broker, kills it with SIGKILL right after the last acknowledgement, and
# starts it again on the same data: the start-up probe times the restart (restart_tcp_ms,
# restart_ready_ms), then one acknowledged write to the same topic (restart_write_ms: process
# start to that acknowledgement).
restart_session() {
  local name=$1 dir=$WORK/restart-$1 port f=$WORK/restart.json
  port=$(kafka_free_port)
  PORT=$port
  STARTUP_METRIC=restart_fresh # the first start, on an empty directory: not reported
  if [[ $name = semel ]]; then
    mkdir -p "$dir"
    start_broker semel "$port" "$WORK/restart-semel.log" "$SEMEL" serve --listen "127.0.0.1:$port" --data-dir "$dir/data"
  else
    prepare_kafka "$dir" "$port"
    launch_kafka "$dir" "$port"
  fi
  local records=$((RESTART_GIB * 1024 * 1024))
  log "$name: writing $RESTART_GIB GiB ($records records) before kill -9"
  run "$f" "$SEMEL" bench produce --bootstrap "127.0.0.1:$port" --topic restart --records "$records" "${PRODUCE_FLAGS[@]}" ||
    die "$name: the $RESTART_GIB GiB produce failed"
  record "$name" "$ROUND" restart_log_gib "$(du -s --block-size=1 "$dir" | awk '{printf "%.2f", $1 / 2^30}')"
  note kill -KILL "$BROKER_PID"
  kill -KILL -- "-$BROKER_PID" 2>/dev/null || kill -KILL "$BROKER_PID"
  while alive "$BROKER_PID"; do sleep 0.05; done
  BROKER_PID=
  STARTUP_METRIC=restart
  if [[ $name = semel ]]; then
    start_broker semel "$port" "$WORK/restart-semel.log" "$SEMEL" serve --listen "127.0.0.1:$port" --data-dir "$dir/data"
  else
    launch_kafka "$dir" "$port"
  fi
  STARTUP_METRIC=
  local t0=$EPOCHREALTIME
  run "$f" "$SEMEL" bench produce --bootstrap "127.0.0.1:$port" --topic restart --records 1 "${PRODUCE_FLAGS[@]}" ||
    die "$name: no write was acknowledged after the restart"
  record "$name" "$ROUND" restart_write_ms "$(python3 -c "print(round(($READY_SECS + $EPOCHREALTIME - $t0) * 1000, 1))")"
  stop_broker
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------------------------
# Main.

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
START_SECS=$SECONDS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

install_kafka
cat >"$WORK/log4j2.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:bench.log4j.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
EOF
cat >"$WORK/log4j2-txn.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:bench.log4j.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{UNIX_MILLIS} %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.txn.name = org.apache.kafka.clients.producer.internals.TransactionManager
logger.txn.level = debug
EOF

log "building semel (cargo build --release -p semel)"
if ! (cd "$ROOT" && cargo build --release -p semel) >"$WORK/build.log" 2>&1; then
  tail -n 30 "$WORK/build.log" >&2
  die "cargo build failed"
fi

for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  log "round $ROUND of $ROUNDS: semel"
  session_semel
  log "round $ROUND of $ROUNDS: Kafka $KAFKA_VERSION"
  session_kafka
done
if ((RESTART_GIB > 0)); then
  ROUND=0 # not a round: the restart figures are single runs
  log "restart after kill -9 with $RESTART_GIB GiB: semel"
  restart_session semel
  log "restart after kill -9 with $RESTART_GIB GiB: Kafka $KAFKA_VERSION"
  restart_session kafka
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - START_SECS))

# ---------------------------------------------------------------------------------------------
# Report.

export RESTART_GIB WORK RESULTS COMMANDS OUT QUICK ROUNDS RECORDS PERF_RECORDS WARMUP_RECORDS TXN_RATE TXN_SECS E2E_RATE E2E_SECS KAFKA_VERSION START_DATE ELAPSED
export LOAD_BEFORE LOAD_AFTER INVOCATION KAFKA_HEAP_OPTS KAFKA_JVM_OPTS
SEMEL_VERSION=$("$SEMEL" --version 2>/dev/null | awk '{print $2}')
SEMEL_COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
(cd "$ROOT" && git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null) || SEMEL_COMMIT+=" with local changes"
LIBRDKAFKA=$(awk '/^name = "rdkafka-sys"/ { getline; gsub(/"/, "", $3); print $3 }' "$ROOT/Cargo.lock")
JAVA_VERSION=$(java -version 2>&1 | head -n 1)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
NPROC=$(nproc)
MEM_TOTAL=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
KERNEL=$(uname -sr)
DISK=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')
export SEMEL_VERSION SEMEL_COMMIT LIBRDKAFKA JAVA_VERSION CPU_MODEL NPROC MEM_TOTAL KERNEL DISK

python3 - <<'PYEOF'
import os, statistics

env = os.environ
rows = {}
for line in open(env["RESULTS"]):
    broker, rnd, metric, value = line.rstrip("\n").split("\t")
    rows.setdefault((broker, metric), []).append(None if value == "FAIL" or value == "" else float(value))

def med(broker, metric):
    values = rows.get((broker, metric), [])
    ok = [v for v in values if v is not None]
    return (statistics.median(ok) if ok else None), len(ok), len(values)

def fmt(v):
    if v is None:
        return "failed"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 1 else f"{v:.3f}"

def cell(broker, metric):
    v, ok, n = med(broker, metric)
    s = fmt(v)
    if n and ok < n:
        s += f" ({n - ok} of {n} failed)"
    return s

# (label, semel metric, kafka metric, target as (op, x) on semel/Kafka; "a/b" is a ratio within one broker)
table = [
    ("produce MiB/s, `semel bench` (Kafka at its default: no fsync)", "produce_mib_s", "produce_mib_s", None),
    ("produce MiB/s, `semel bench`, **equal durability** (Kafka flush.messages=1)", "produce_mib_s", "produce_flush_mib_s", (">=", 1.5)),
    ("produce MiB/s, kafka-producer-perf-test (Kafka at its default)", "perf_mib_s", "perf_mib_s", None),
    ("produce MiB/s, kafka-producer-perf-test, **equal durability**", "perf_mib_s", "perf_flush_mib_s", (">=", 1.5)),
    ("transactional produce MiB/s, 100 ms transactions, `semel bench` (Kafka at its default)", "txn100_bench_mib_s", "txn100_bench_mib_s", None),
    ("transactional produce MiB/s, 10 ms transactions, `semel bench` (Kafka at its default)", "txn10_bench_mib_s", "txn10_bench_mib_s", None),
    ("transactional (100 ms) / idempotent throughput of the same broker, `semel bench`", "txn100_bench_mib_s/produce_mib_s", "txn100_bench_mib_s/produce_mib_s", ("own>=", 0.9)),
    ("for comparison: idempotent, waiting for all acknowledgements every 100 ms (no transactions) / idempotent, `semel bench`", "drain100_bench_mib_s/produce_mib_s", "drain100_bench_mib_s/produce_mib_s", None),
    ("commit latency p50, ms, 100 ms transactions, `semel bench` (commit_transaction at a moderate rate)", "txn100_bench_commit_p50_ms", "txn100_bench_commit_p50_ms", None),
    ("commit latency p99, ms, 100 ms transactions, `semel bench`", "txn100_bench_commit_p99_ms", "txn100_bench_commit_p99_ms", None),
    ("commit latency p50, ms, 10 ms transactions, `semel bench`", "txn10_bench_commit_p50_ms", "txn10_bench_commit_p50_ms", None),
    ("commit latency p99, ms, 10 ms transactions, `semel bench`", "txn10_bench_commit_p99_ms", "txn10_bench_commit_p99_ms", None),
    ("transactional produce MiB/s, 100 ms transactions, kafka-producer-perf-test (Kafka at its default)", "txn100_mib_s", "txn100_mib_s", None),
    ("transactional produce MiB/s, 10 ms transactions, kafka-producer-perf-test (Kafka at its default)", "txn10_mib_s", "txn10_mib_s", None),
    ("transactional (100 ms) / idempotent throughput of the same broker, kafka-producer-perf-test", "txn100_mib_s/perf_mib_s", "txn100_mib_s/perf_mib_s", ("own>=", 0.9)),
    ("commit latency p50, ms, 100 ms transactions (commitTransaction at a moderate rate)", "txn100_commit_p50_ms", "txn100_commit_p50_ms", None),
    ("commit latency p99, ms, 100 ms transactions", "txn100_commit_p99_ms", "txn100_commit_p99_ms", None),
    ("commit latency p50, ms, 10 ms transactions", "txn10_commit_p50_ms", "txn10_commit_p50_ms", None),
    ("commit latency p99, ms, 10 ms transactions", "txn10_commit_p99_ms", "txn10_commit_p99_ms", None),
    ("consume MiB/s, read_uncommitted (the `semel bench` produce)", "consume_mib_s", "consume_mib_s", None),
    ("consume MiB/s, read_committed (the 100 ms transactions)", "consume_committed_mib_s", "consume_committed_mib_s", None),
    ("end-to-end latency p50, ms (Kafka at its default)", "e2e_p50_ms", "e2e_p50_ms", None),
    ("end-to-end latency p99, ms (Kafka at its default)", "e2e_p99_ms", "e2e_p99_ms", ("<=", 0.5)),
    ("end-to-end latency p99.9, ms (Kafka at its default)", "e2e_p999_ms", "e2e_p999_ms", None),
    ("end-to-end latency p50, ms, equal durability", "e2e_p50_ms", "e2e_flush_p50_ms", None),
    ("end-to-end latency p99, ms, equal durability", "e2e_p99_ms", "e2e_flush_p99_ms", None),
    ("end-to-end latency p99.9, ms, equal durability", "e2e_p999_ms", "e2e_flush_p999_ms", None),
    ("resident memory after the produce (VmRSS), MiB", "rss_after_produce_mib", "rss_after_produce_mib", ("<=", 0.2)),
    ("peak resident memory over the session (VmHWM), MiB", "rss_peak_mib", "rss_peak_mib", None),
    ("start-up: process start to first accepted TCP connection, ms", "startup_tcp_ms", "startup_tcp_ms", ("<=", 0.05)),
    ("start-up: process start to first ApiVersions answer, ms", "startup_ready_ms", "startup_ready_ms", ("<=", 0.05)),
    ("restart: log on disk at the kill, GiB", "restart_log_gib", "restart_log_gib", None),
    (f"restart after kill -9 with {env['RESTART_GIB']} GiB of log: process start to first ApiVersions answer, ms", "restart_ready_ms", "restart_ready_ms", None),
    (f"restart after kill -9 with {env['RESTART_GIB']} GiB of log: process start to first acknowledged write, ms", "restart_write_ms", "restart_write_ms", None),
]

quick = env["QUICK"] == "1"
out = []
w = out.append
w("# Performance: semel and Apache Kafka side by side")
w("")
w("Written by `bench/run.sh` (see `bench/README.md`); rerun it after performance-relevant changes.")
w("")
if quick:
    w("> **Quick run** (`--quick`: one round, small counts). It checks the harness; its figures are not a measurement.")
    w("")
w(f"Run of {env['START_DATE']}: `{env['INVOCATION'].strip()}`, {env['ROUNDS']} round(s), {int(env['ELAPSED']) // 60} min {int(env['ELAPSED']) % 60} s. "
  "Each round starts semel, then Kafka, each on a fresh data directory, runs every workload against it and stops it; "
  "the figures are medians over the rounds, and the ratio is semel/Kafka of the medians.")
w("")
w("| workload | semel | Kafka | semel/Kafka | target | met |")
w("|---|---:|---:|---:|---|---|")
missed = []
def quotient(broker, metric):
    """A metric, or for "a/b" the median of a over the median of b."""
    if "/" not in metric:
        return med(broker, metric)[0]
    num, den = (med(broker, m)[0] for m in metric.split("/"))
    return num / den if num is not None and den else None

for label, sm, km, target in table:
    s, k = quotient("semel", sm), quotient("kafka", km)
    if "/" in sm:
        # A ratio within each broker: the target is on semel's own figure.
        cells = (f"{s:.2f}" if s is not None else "failed", f"{k:.2f}" if k is not None else "failed")
        ratio, rs = s, "-"
    else:
        cells = (cell("semel", sm), cell("kafka", km))
        ratio = s / k if s is not None and k not in (None, 0) else None
        rs = "-" if ratio is None else f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"
    if target:
        op, x = target
        ts = f"semel's own >= {x}" if op == "own>=" else f"{op} {x}x"
        if ratio is None:
            met = "?"
        else:
            ok = ratio <= x if op == "<=" else ratio >= x
            met = "yes" if ok else "**no**"
            if not ok:
                missed.append(f"{label}: {ratio:.2g} (target {ts})")
    else:
        ts, met = "", ""
    w(f"| {label} | {cells[0]} | {cells[1]} | {rs} | {ts} | {met} |")
w("")
w("Higher is better for MiB/s, lower for latency, memory and start-up. "
  "MiB/s counts record values (1 KiB each), 2^20 bytes a MiB, as Kafka's perf tools do.")
w("")
if missed:
    w("Targets missed in this run: " + "; ".join(missed) + ".")
else:
    w("Every target with a figure was met in this run.")
w("")
w("Transactions: Kafka 4.4's Java producer uses transaction.version 2 against Kafka (KIP-890 part 2: partitions join a "
  "transaction without an AddPartitionsToTxn round trip) and version 1 against semel, which does not advertise it yet; "
  "the commit latency of short transactions shows it.")
w("")
w("## Not measured yet")
w("")
w("- Transactional produce at equal durability (Kafka's transactional runs use its default, no fsync).")
w("")
w("## Setup")
w("")
w(f"- Machine: {env['NPROC']} cores, {env['MEM_TOTAL']} memory, {env['CPU_MODEL']}, {env['KERNEL']}; data directories on {env['DISK']}. "
  f"Load average before / after: {env['LOAD_BEFORE']} / {env['LOAD_AFTER']}. "
  "Brokers and load drivers share the cores, and the machine may be shared with other work: compare the ratios, not the absolute figures.")
w(f"- semel {env['SEMEL_VERSION']} (commit {env['SEMEL_COMMIT']}), release build, default configuration: "
  "acks=all is answered after an fsync covering the batch (group commit).")
w(f"- Apache Kafka {env['KAFKA_VERSION']} (kafka_2.13 from Maven Central), single node in KRaft mode (broker and controller), "
  f"{env['JAVA_VERSION']}, `{env['KAFKA_HEAP_OPTS']} {env['KAFKA_JVM_OPTS']}` (what kafka-server-start.sh uses), "
  "offsets and transaction state logs with replication factor 1, default configuration otherwise: "
  "the log is not fsynced per write unless the topic sets flush.messages=1.")
w(f"- Load drivers: `semel bench` (librdkafka {env['LIBRDKAFKA']}, its defaults: linger.ms 5, batch.size 1000000) "
  "and Kafka's own ProducerPerformance (kafka-producer-perf-test, Java client of the same Kafka release, its defaults: linger.ms 5, batch.size 16384).")
w(f"- Workloads: produce {int(env['RECORDS']):,} records of 1 KiB to a new topic of 6 partitions, acks=all, idempotent "
  "(on Kafka also to a topic created with flush.messages=1); "
  f"consume them back; a warm-up produce of {int(env['WARMUP_RECORDS']):,} records to another topic comes first; "
  f"kafka-producer-perf-test sends {int(env['PERF_RECORDS']):,} records to a topic of 6 partitions created beforehand, "
  "idempotent, then transactional (`--transaction-duration-ms` 100 and 10, each to a new topic), and `semel bench consume` "
  "reads the 100 ms topic back with read_committed; "
  f"commit latency is the time commitTransaction() takes in kafka-producer-perf-test sending {env['TXN_RATE']} records/s for {env['TXN_SECS']} s "
  "in transactions of 100 ms and of 10 ms (from the Java producer's TransactionManager debug log; it includes waiting for the "
  "transaction's last records to be acknowledged), p50 and p99 over the transactions of one run; "
  f"end-to-end latency (send to receipt by a consumer in the same process) of 1 KiB records at {env['E2E_RATE']} records/s "
  f"for {env['E2E_SECS']} s to another 6-partition topic, acks=all, idempotent (on Kafka also with flush.messages=1); "
  "VmRSS of the broker process 3 s after the measured produce (before anything else runs), VmHWM at the end of the session; "
  "start-up from creating the process on a fresh (for Kafka: already formatted) data directory until a TCP connection is accepted and until an ApiVersions request is answered; "
  + (f"restart (one run per broker, after the rounds): {env['RESTART_GIB']} GiB of 1 KiB records written to a new 6-partition topic (acks=all, idempotent), "
     "the broker killed with SIGKILL right after the last acknowledgement and started again on the same data, timed to the first ApiVersions answer "
     "and to the first acknowledged write (acks=all) to that topic." if env['RESTART_GIB'] != "0" else "restart after kill -9 not run (--restart-gib 0)."))
w("")
w("## Per round")
w("")
metrics = []
for _, sm, km, _ in table:
    for m in [*sm.split("/"), *km.split("/")]:
        if m not in metrics:
            metrics.append(m)
n = int(env["ROUNDS"])
w("| metric | broker | " + " | ".join(f"round {i + 1}" for i in range(n)) + " |")
w("|---|---|" + "---:|" * n)
for m in metrics:
    for b in ("semel", "kafka"):
        vals = rows.get((b, m))
        if vals is None:
            continue
        w(f"| {m} | {b} | " + " | ".join(fmt(v) for v in vals) + " |")
w("")
w("## Commands")
w("")
w("As run in the first round (`$PORT` is a free port, `$WORK` a fresh directory, `$KAFKA_LIBS` ~/.cache/semel-kafka/kafka-VERSION/libs).")
w("")
w("```sh")
w("cargo build --release -p semel")
for line in open(env["COMMANDS"]):
    w(line.rstrip("\n"))
w("```")
w("")
text = "\n".join(out)
os.makedirs(os.path.dirname(env["OUT"]), exist_ok=True)
with open(env["OUT"], "w") as f:
    f.write(text)
print(text)
PYEOF
log "report written to ${OUT#"$ROOT"/} ($((ELAPSED / 60)) min $((ELAPSED % 60)) s)"
