#!/usr/bin/env bash
# Soak of the protocol edge (issue #13): for ABUSE_SECONDS (default 180) the release binary is
# attacked on loopback by every hostile client of scripts/abuse/abuse.py at once, while a normal
# client (confluent-kafka, idempotent, acks=all) produces numbered records and a consumer reads
# them:
#   fuzz        mutated requests (bit flips, counts/lengths set to i32::MAX / i16::MAX / the
#               largest varint, truncation, random API keys and versions) of every API
#               ApiVersions advertises, built from the layouts of server/wire/schema.rs;
#               6 connections, reconnecting whenever the broker closes one
#   bombs       magic-2 batches with a correct CRC that are small compressed and huge
#               decompressed: gzip, snappy (raw and xerial), lz4 frame, zstd, all hand-built
#               (long matches, RLE blocks), plus sizes declared in stream headers; the same
#               under the limit must be accepted (which proves the streams are valid)
#   poison      uncompressed batches with a correct CRC whose records lie (a key of 2^40 bytes,
#               10-byte varints, header count i32::MAX, record count i32::MAX, ...), half of
#               them into the normal topic
#   slowloris   48 connections that start a frame (50 MiB or 1 KiB announced, or the size
#               prefix itself) and send one byte every 3 s
#   nonreader   16 connections with SO_RCVBUF 4 KiB sending Fetch after Fetch of the normal
#               topic (max_bytes i32::MAX), never reading
#   fdpressure  connections (from 127.0.0.2, .3, ...) until the broker refuses them, kept;
#               a third released every round
# The broker's VmRSS, VmHWM and open fds are sampled every second.
#
# Then the abuse stops, and the checks (the exit status is non-zero if one fails):
#   - the broker stayed up;
#   - its VmRSS (every sample) and VmHWM stayed under RSS_BOUND = max_buffered_bytes +
#     decompression_threads x max_decompressed_batch_bytes + 256 MiB of base (the broker's own
#     heap, indexes, thread stacks, allocator slack) = 256 + 2 x 32 + 256 = 576 MiB;
#   - every record the normal producer had acknowledged is read back from the start of the
#     topic exactly once, at its acknowledged offset, in order per partition;
#   - ApiVersions is answered and a new produce/consume works;
#   - the broker exits 0 on SIGTERM.
# No check depends on timing: only counts and the bound. The counts of every kind (requests,
# connections, how each was answered or closed), the RSS and the normal client's rate
# (informational) are printed, and the summary `N passed, M failed`.
#
# The broker runs with the settings below (printed at the start), under
# `prlimit --nofile=1024:1024`; max_connections is set above the fd limit on purpose, so that
# fd exhaustion at accept (the spare-descriptor refusal) is reached, and max_connections_per_ip
# below it, so that the fd-pressure client (which moves to the next 127.0.0.x address when
# refused) meets both; the normal and other hostile clients connect from 127.0.0.1. Topic
# auto-creation is off (the fuzzer would otherwise create a topic per random name).
#
#   scripts/abuse.sh                        build the release binary, 180 s of abuse
#   ABUSE_SECONDS=60 SEMEL_BIN=target/release/semel scripts/abuse.sh
#
# Environment: ABUSE_SECONDS, SEMEL_BIN (skip the build), CARGO_TARGET_DIR, COMPAT_KEEP=1 (keep
# the temporary directory: data, logs, the JSON counts of each role). Installs confluent-kafka
# into ~/.cache/semel-compat/abuse-venv. Takes ABUSE_SECONDS plus about a minute (plus the build).
set -euo pipefail

ABUSE_SECONDS="${ABUSE_SECONDS:-180}"
REQUIREMENTS=("confluent-kafka==2.16.1")
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../compat/lib.sh
. "$HERE/../compat/lib.sh"
compat_init abuse
HELPER="$HERE/abuse/abuse.py"

MIB=$((1024 * 1024))
MAX_BUFFERED_MIB=256
DECOMPRESSION_THREADS=2
MAX_DECOMPRESSED_MIB=32
BASE_MIB=256
RSS_BOUND_MIB=$((MAX_BUFFERED_MIB + DECOMPRESSION_THREADS * MAX_DECOMPRESSED_MIB + BASE_MIB))
NOFILE=1024

# ---------------------------------------------------------------- client install
VENV="${ABUSE_VENV:-$HOME/.cache/semel-compat/abuse-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" || setup_failed "cannot create $VENV"
fi
if ! "$VENV/bin/python" -c '
import sys, importlib.metadata as m
sys.exit(any(m.version(r.split("==")[0]) != r.split("==")[1] for r in sys.argv[1:]))' "${REQUIREMENTS[@]}" 2>/dev/null; then
  say "installing ${REQUIREMENTS[*]}"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" >&2 ||
    setup_failed "cannot install ${REQUIREMENTS[*]} into $VENV"
fi
PY=("$VENV/bin/python" -u "$HELPER")

# ---------------------------------------------------------------- broker build and start
if [ -n "${SEMEL_BIN:-}" ]; then
  SEMEL="$SEMEL_BIN"
else
  target_dir="${CARGO_TARGET_DIR:-target}"
  case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
  SEMEL="$target_dir/release/semel"
  say "cargo build --release -p semel"
  (cd "$ROOT" && cargo build --release -p semel) >"$WORK/cargo.log" 2>&1 || {
    tail -n 30 "$WORK/cargo.log" >&2
    setup_failed "cargo build --release -p semel failed"
  }
fi
[ -x "$SEMEL" ] || setup_failed "no semel binary at $SEMEL"

pick_port
CONFIG="$WORK/semel.toml"
cat >"$CONFIG" <<EOF
listen = "$BOOTSTRAP"
data_dir = "$WORK/data"
max_buffered_bytes = $((MAX_BUFFERED_MIB * MIB))
max_request_bytes = $((100 * MIB))
max_decompressed_batch_bytes = $((MAX_DECOMPRESSED_MIB * MIB))
decompression_threads = $DECOMPRESSION_THREADS
fetch_max_bytes = $((55 * MIB))
request_receive_timeout_ms = 10000
connections_max_idle_ms = 30000
max_connections = 2048
max_connections_per_ip = 400
auto_create_topics_enable = false
EOF
say "broker settings ($CONFIG), under prlimit --nofile=$NOFILE:$NOFILE:"
sed 's/^/    /' "$CONFIG" >&2
say "RSS bound: max_buffered_bytes $MAX_BUFFERED_MIB MiB + $DECOMPRESSION_THREADS decompression threads x $MAX_DECOMPRESSED_MIB MiB + $BASE_MIB MiB base = $RSS_BOUND_MIB MiB"

env -u SEMEL_LISTEN -u SEMEL_ADVERTISED -u SEMEL_DATA_DIR -u SEMEL_CONFIG SEMEL_LOG="${SEMEL_LOG:-info}" prlimit --nofile="$NOFILE:$NOFILE" "$SEMEL" serve --config "$CONFIG" \
  >"$WORK/semel.out" 2>"$WORK/semel.log" &
SEMEL_PID=$!
up=0
for _ in $(seq 1 600); do
  kill -0 "$SEMEL_PID" 2>/dev/null || break
  if grep -q "semel listening on" "$WORK/semel.out" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    up=1
    break
  fi
  sleep 0.1
done
if [ "$up" != 1 ]; then
  tail -n 30 "$WORK/semel.log" >&2
  setup_failed "semel did not start"
fi
say "semel (pid $SEMEL_PID) listening on $BOOTSTRAP, data in $WORK/data"

# ---------------------------------------------------------------- the abuse
PIDS=()
stop_roles() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
on_cleanup stop_roles

"${PY[@]}" setup "$BOOTSTRAP" 2>>"$WORK/roles.log" || setup_failed "creating the topics failed (see $WORK/roles.log)"
"${PY[@]}" rss "$SEMEL_PID" "$WORK/rss.stop" "$WORK/rss.json" 2>>"$WORK/roles.log" &
RSS_PID=$!
PIDS+=("$RSS_PID")

say "abuse for ${ABUSE_SECONDS}s: fuzz, bombs, poison, slowloris, non-reading clients, fd pressure; the normal client"
ROLE_PIDS=()
start_role() { # start_role NAME ARGS...: abuse.py NAME $BOOTSTRAP $ABUSE_SECONDS $WORK/NAME.json ARGS...
  local name=$1
  shift
  "${PY[@]}" "$name" "$BOOTSTRAP" "$ABUSE_SECONDS" "$WORK/$name.json" "$@" 2>>"$WORK/roles.log" &
  PIDS+=("$!")
  ROLE_PIDS+=("$!")
}
start_role normal "$WORK/acked.txt"
start_role fuzz "$ROOT/crates/semel-broker/src/server/wire/schema.rs"
start_role bombs "$((MAX_DECOMPRESSED_MIB * MIB))"
start_role poison
start_role slowloris
start_role nonreader
start_role fdpressure

# Each role stops by itself at its deadline (the normal client then flushes, up to 150 s);
# the wait is bounded anyway.
deadline=$((SECONDS + ABUSE_SECONDS + 240))
for pid in "${ROLE_PIDS[@]}"; do
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "a role (pid $pid) did not stop in time: SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || say "a role (pid $pid) exited with status $?"
done
say "abuse over"

semel_up=0
kill -0 "$SEMEL_PID" 2>/dev/null && semel_up=1

# ---------------------------------------------------------------- the checks
if [ "$semel_up" = 1 ]; then
  timeout -k 10 700 "${PY[@]}" verify "$BOOTSTRAP" "$WORK/acked.txt" "$WORK/verify.json" 2>>"$WORK/roles.log" ||
    say "verify exited with status $?"
  timeout -k 10 200 "${PY[@]}" final "$BOOTSTRAP" "$WORK/final.json" 2>>"$WORK/roles.log" ||
    say "final exited with status $?"
fi
touch "$WORK/rss.stop"
wait "$RSS_PID" 2>/dev/null || true

# Clean shutdown: SIGTERM, then up to 120 s (a bound for hangs only).
SEMEL_RC=""
if kill -0 "$SEMEL_PID" 2>/dev/null; then
  kill -TERM "$SEMEL_PID"
  for _ in $(seq 1 1200); do kill -0 "$SEMEL_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SEMEL_PID" 2>/dev/null; then
    say "semel ignored SIGTERM for 120s: SIGKILL"
    kill -KILL "$SEMEL_PID" 2>/dev/null || true
  fi
fi
SEMEL_RC=0
wait "$SEMEL_PID" 2>/dev/null || SEMEL_RC=$?
SEMEL_PID=""

sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/semel.log" | grep -E ' (ERROR|WARN) ' | sed -E 's/^[^ ]+ +//; s/peer=[0-9.:]+/peer=*/; s/(size|received)=[0-9]+/\1=N/g; s/reason=malformed [A-Za-z]+ v[0-9]+ /reason=malformed API vN /; s/(Produce v|API key )-?[0-9]+/\1N/' |
  sort | uniq -c | sort -rn | head -n 25 | sed 's/^/[abuse] semel log: /' >&2 || true
if grep -q '^\[' "$WORK/roles.log" 2>/dev/null; then
  say "--- role logs"
  grep -v '^$' "$WORK/roles.log" | tail -n 40 >&2 || true
fi
rc=0
"$VENV/bin/python" "$HELPER" report "$WORK" "$RSS_BOUND_MIB" "$SEMEL_RC" "$semel_up" || rc=$?
exit "$rc"
