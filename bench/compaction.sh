#!/usr/bin/env bash
# Log compaction benchmark: what the cleaner does to a large compacted topic, and what it does
# to start-up time when the offsets log has a long history. Writes docs/compaction-benchmark.md.
#
#   bench/compaction.sh            # 1 GiB topic, 10,000 keys, 1,000,000 offset commits
#   bench/compaction.sh --quick    # 128 MiB, 10,000 keys, 100,000 commits (a smoke run)
#
# 1. A topic with cleanup.policy=compact and segment.bytes 16 MiB (1 partition) gets 1 GiB of
#    1 KiB records cycling through 10,000 keys (`semel bench produce --keys`), with the cleaner
#    off. The broker is restarted with the cleaner on; the script waits until the cleaner is
#    done and reports the log size before and after, the cleaning time (the cleaner's own
#    `cleaned log` lines) and the broker's peak resident memory (VmHWM) against the same broker
#    started with the cleaner off.
# 2. `semel bench commits` commits offsets 1,000,000 times (100 partitions, one group) with the
#    cleaner off and groups.offsets_segment_bytes 16 MiB; start-up time (process start to the
#    first accepted TCP connection, which comes after the offsets log is replayed) is measured,
#    then the cleaner compacts the offsets log and start-up time is measured again.
#
# Environment: SEMEL_BIN (default: a release build of this checkout), BENCH_TMP (where data
# directories go; default $TMPDIR or /tmp, which should be on the disk being measured).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ "$QUICK" = 1 ]; then
  RECORDS=131072
  COMMITS=100000
else
  RECORDS=1048576
  COMMITS=1000000
fi
KEYS=10000
RECORD_SIZE=1024
SEGMENT_BYTES=16777216

if [ -z "${SEMEL_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p semel >/dev/null)
  SEMEL_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/semel"
  case "$SEMEL_BIN" in /*) ;; *) SEMEL_BIN="$ROOT/$SEMEL_BIN" ;; esac
fi
WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/semel-bench-compaction.XXXXXX")
PID=""
START_MS=""
cleanup() {
  if [ -n "$PID" ]; then kill -9 "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
BOOT="127.0.0.1:$PORT"

say() { echo "[compaction-bench] $*" >&2; }

write_config() { # write_config FILE CLEANER_ENABLED
  cat >"$1" <<EOF
[cleaner]
enable = $2
backoff_ms = 1000

[groups]
offsets_segment_bytes = $SEGMENT_BYTES
EOF
}
write_config "$WORK/cleaner-off.toml" false
write_config "$WORK/cleaner-on.toml" true

# start DATA CONFIG LOG: starts semel; leaves its pid in $PID and the milliseconds from process
# start to the first accepted TCP connection in $START_MS.
start() {
  local out
  out=$(python3 - "$SEMEL_BIN" "$PORT" "$1" "$2" "$3" <<'PY'
import socket, subprocess, sys, time
semel, port, data, config, log = sys.argv[1:]
t0 = time.monotonic()
p = subprocess.Popen([semel, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--config", config],
                     stdout=open(log, "ab"), stderr=subprocess.STDOUT, env={"SEMEL_LOG": "info", "PATH": "/usr/bin:/bin"},
                     start_new_session=True)
while True:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
        break
    except OSError:
        if p.poll() is not None:
            sys.exit(f"semel exited with {p.returncode}; see {log}")
        time.sleep(0.001)
print(p.pid, round((time.monotonic() - t0) * 1000, 1))
PY
)
  PID=${out%% *}
  START_MS=${out##* }
}

stop() {
  kill -TERM "$PID"
  while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
  PID=""
}

log_bytes() { find "$1" -maxdepth 1 -name '*.log' -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# wait_cleaned LOG NAME: waits until the cleaner has logged a pass of NAME and then none for 5 s.
wait_cleaned() {
  local log=$1 name=$2 seen=0 quiet=0 count
  for _ in $(seq 1 3600); do
    count=$(grep -c "cleaned log.*log=\"\\?$name" "$log" || true)
    if [ "$count" -gt 0 ] && [ "$count" = "$seen" ]; then
      quiet=$((quiet + 1))
      [ "$quiet" -ge 50 ] && return 0
    else
      quiet=0
    fi
    seen=$count
    sleep 0.1
  done
  say "the cleaner did not finish $name"
  return 1
}

# cleaned_ms LOG NAME: the sum of the elapsed_ms of the cleaner's passes over NAME.
cleaned_ms() { grep "cleaned log.*log=\"\\?$2" "$1" | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2 | awk '{s+=$1} END {print s+0}'; }

# ---------------------------------------------------------------- 1. a compacted topic
DATA="$WORK/topic"
say "producing $RECORDS records of $RECORD_SIZE bytes over $KEYS keys (cleaner off)"
start "$DATA" "$WORK/cleaner-off.toml" "$WORK/topic.log"
"$SEMEL_BIN" bench produce --bootstrap "$BOOT" --topic table --records "$RECORDS" --record-size "$RECORD_SIZE" --keys "$KEYS" \
  --partitions 1 --topic-config cleanup.policy=compact --topic-config segment.bytes=$SEGMENT_BYTES --json >"$WORK/produce.json"
stop
BEFORE=$(log_bytes "$DATA/table-0")
say "log: $BEFORE bytes; restarting with the cleaner off for the memory baseline"
start "$DATA" "$WORK/cleaner-off.toml" "$WORK/baseline.log"
sleep 5
BASE_HWM=$(hwm_kib "$PID")
stop
say "restarting with the cleaner on"
start "$DATA" "$WORK/cleaner-on.toml" "$WORK/topic.log"
wait_cleaned "$WORK/topic.log" table-0
CLEAN_HWM=$(hwm_kib "$PID")
CLEAN_MS=$(cleaned_ms "$WORK/topic.log" table-0)
PASSES=$(grep -c 'cleaned log.*table-0' "$WORK/topic.log" || true)
stop
AFTER=$(log_bytes "$DATA/table-0")
SEGMENTS_AFTER=$(find "$DATA/table-0" -maxdepth 1 -name '*.log' | wc -l)
rm -rf "$DATA"

# ---------------------------------------------------------------- 2. offsets history
DATA="$WORK/offsets"
say "committing offsets $COMMITS times (cleaner off)"
start "$DATA" "$WORK/cleaner-off.toml" "$WORK/offsets.log"
"$SEMEL_BIN" bench produce --bootstrap "$BOOT" --topic in --records 100 --partitions 100 --json >/dev/null
"$SEMEL_BIN" bench commits --bootstrap "$BOOT" --topic in --commits "$COMMITS" --partitions 100 --json >"$WORK/commits.json"
stop
OFFSETS_DIR="$DATA/internal/__consumer_offsets-0"
HISTORY_BYTES=$(log_bytes "$OFFSETS_DIR")
STARTS_BEFORE=()
for _ in 1 2 3; do
  start "$DATA" "$WORK/cleaner-off.toml" "$WORK/offsets.log"
  STARTS_BEFORE+=("$START_MS")
  stop
done
say "compacting the offsets log"
start "$DATA" "$WORK/cleaner-on.toml" "$WORK/offsets.log"
wait_cleaned "$WORK/offsets.log" __consumer_offsets-0
stop
COMPACTED_BYTES=$(log_bytes "$OFFSETS_DIR")
STARTS_AFTER=()
for _ in 1 2 3; do
  start "$DATA" "$WORK/cleaner-off.toml" "$WORK/offsets.log"
  STARTS_AFTER+=("$START_MS")
  stop
done

# ---------------------------------------------------------------- report
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
python3 - "$ROOT/docs/compaction-benchmark.md" <<PY
import json, platform, subprocess, sys, datetime
produce = json.load(open("$WORK/produce.json"))
commits = json.load(open("$WORK/commits.json"))
def mib(b): return f"{int(b) / 2**20:.1f}"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "-C", "$ROOT", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
live = $KEYS * ($RECORD_SIZE + 16)
lines = [
    "# Log compaction benchmark",
    "",
    f"Written by \`bench/compaction.sh{' --quick' if $QUICK else ''}\` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, semel commit {commit}, "
    f"on {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores ({cpu}), data on the same disk as the build. "
    "Single runs: absolute figures on this shared machine are noisy.",
    "",
    "## A compacted topic",
    "",
    f"One partition, \`cleanup.policy=compact\`, \`segment.bytes\` {$SEGMENT_BYTES}; {$RECORDS:,} records of {$RECORD_SIZE} B values "
    f"and 16 B keys cycling through {$KEYS:,} keys, produced with the cleaner off "
    f"({produce.get('mib_per_sec', 0):.0f} MiB/s), then the broker restarted with the cleaner on (default settings: "
    "one thread, 128 MiB key map, no I/O limit).",
    "",
    "| | |",
    "|---|---:|",
    f"| log before cleaning | {mib($BEFORE)} MiB |",
    f"| log after cleaning | {mib($AFTER)} MiB in $SEGMENTS_AFTER segment(s) |",
    f"| live data ({$KEYS:,} keys x {$RECORD_SIZE + 16} B of key and value) | {mib(live)} MiB |",
    f"| after / live | {$AFTER / live:.2f} |",
    f"| cleaning time (the cleaner's passes: $PASSES) | {$CLEAN_MS / 1000:.2f} s |",
    f"| cleaning rate | {$BEFORE / 2**20 / max($CLEAN_MS / 1000, 0.001):.0f} MiB/s |",
    f"| broker peak resident memory (VmHWM), cleaner on, after cleaning | {$CLEAN_HWM / 1024:.1f} MiB |",
    f"| the same broker with the cleaner off (5 s after start) | {$BASE_HWM / 1024:.1f} MiB |",
    "",
    "What stays after cleaning besides the live records: the active segment, which is never cleaned (up to "
    "\`segment.bytes\` of the newest records), and per batch headers (61 B for every batch that keeps a record).",
    "",
    "## Start-up with a long offsets history",
    "",
    f"{$COMMITS:,} offset commits by one group over 100 partitions (\`semel bench commits\`, {commits['commits_per_sec']:.0f} commits/s), "
    f"\`groups.offsets_segment_bytes\` {$SEGMENT_BYTES}. Start-up is the time from process start to the first accepted TCP "
    "connection; the offsets log is replayed before the listener opens. Median of 3 starts each.",
    "",
    "| | offsets log | start-up |",
    "|---|---:|---:|",
    f"| before compaction | {mib($HISTORY_BYTES)} MiB | $(median "${STARTS_BEFORE[@]}") ms |",
    f"| after compaction | {mib($COMPACTED_BYTES)} MiB | $(median "${STARTS_AFTER[@]}") ms |",
    "",
    "Start-up times: before ${STARTS_BEFORE[*]} ms; after ${STARTS_AFTER[*]} ms.",
    "",
]
open(sys.argv[1], "w").write("\n".join(lines))
print("\n".join(lines))
PY
