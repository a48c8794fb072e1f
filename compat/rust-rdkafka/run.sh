#!/usr/bin/env bash
# Compatibility suite: the integration tests that the rdkafka crate (rust-rdkafka, the Rust
# binding of librdkafka) ships in its published crate, run unchanged (but for two lines, below)
# against semel.
#
# The crate, rdkafka 0.39.0 (the version the workspace's Cargo.lock pins), comes from the local
# cargo registry (~/.cargo/registry/src/*/rdkafka-0.39.0) when it is there, else from crates.io
# (the .crate file, checked against its sha256). It is copied to
# $HOME/.cache/semel-compat/rust-rdkafka/work/rdkafka-0.39.0 and built there with
# `cargo test --locked` (the crate's own Cargo.lock: rdkafka-sys 4.10.0+2.12.1, which compiles
# librdkafka 2.12.1 from source on the first run) into
# CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<repo>/target}/compat-rust-rdkafka, so a kept
# $CARGO_TARGET_DIR (CI keeps $HOME/.cache/semel-target) makes later runs skip the build.
#
# semel runs on a free port with a temporary data dir and a config file that gives it the
# settings of the upstream test setup (the crate's docker-compose.yaml): node id 0 and 3
# partitions for auto-created topics (KAFKA_CFG_NODE_ID=0, KAFKA_CFG_NUM_PARTITIONS=3), and
# Kafka's default retention check interval, 5 minutes (semel's default is 30 s:
# test_produce_consume_with_timestamp writes records stamped 1970 and then looks them up by
# timestamp; a retention pass in between deletes them, which Kafka's interval makes unlikely,
# as it would on Kafka with a 30 s interval). The tests find it through KAFKA_HOST (their
# utils.rs); KAFKA_VERSION stays unset (the tests then expect the behaviour of the newest
# Kafka). Two lines of the copied tests are patched because
# they hard-code localhost:9092 instead of reading KAFKA_HOST: the producer of
# test_high_producers.rs (bootstrap "localhost") and the broker port test_metadata asserts.
#
# Each test binary (test_admin, test_high_consumers, ...) runs on its own, bounded, its tests
# two at a time (libtest's default on 2 cores, as upstream runs them); the output is turned
# into one `PASS binary::test` / `FAIL binary::test: why` line per test (parse_libtest.py).
# Then, as upstream's test_suite.sh does, the examples runtime_smol and runtime_async_std run
# (produce one message, consume it with a group, on those runtimes): one check each. Then the
# clean-shutdown check, and finally `N passed, M failed`. Exits non-zero if any check failed.
#
# Excluded tests are listed in excluded.txt with the reason (passed to libtest as --skip):
# known broker bugs (`# BROKER BUG:`) and a test that cannot pass against semel. Lines marked
# `[full]` are excluded from the default form only. Only the crate's integration tests
# (tests/*.rs) run; its unit tests and doctests (src/) use librdkafka's mock cluster or no
# broker at all.
#
#   default form   the tests that talk to the broker, each once (every test binary compiles
#                  utils.rs's own test in; only the `utils` binary runs it): about 2 minutes
#                  once built (the first build, librdkafka included, takes 5-10 minutes)
#   COMPAT_FULL=1  every test of tests/*.rs not excluded: also the client-only tests (config
#                  parsing, formatting, local queues, unreachable bootstrap servers) and the 7
#                  other copies of utils.rs's test; a few seconds more
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   COMPAT_FULL=1              the full form (above)
#   CARGO_TARGET_DIR           the rdkafka tests build in $CARGO_TARGET_DIR/compat-rust-rdkafka
#   RUST_RDKAFKA_TESTS="a b"   run only these test binaries (debugging)
set -euo pipefail

RDKAFKA_VERSION=0.39.0
# sha256 of rdkafka-0.39.0.crate (the workspace's Cargo.lock has the same checksum).
RDKAFKA_SHA256=d7956f9ac12b5712e50372d9749a3102f4810a8d42481c5eae3748d36d585bcf
# The crate's integration-test binaries, in the order they run.
TEST_BINARIES=(test_topic_partition_list test_metadata test_admin test_low_producers test_high_producers
  test_low_consumers test_high_consumers test_transactions utils)
BINARY_TIMEOUT=240 # seconds, each test binary (the slowest takes about 20 s)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init rust-rdkafka
SEMEL_LOG_DEFAULT=info

CACHE="$HOME/.cache/semel-compat/rust-rdkafka"
SRC_COPY="$CACHE/work/rdkafka-$RDKAFKA_VERSION"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
TARGET="$TARGET/compat-rust-rdkafka"
FULL="${COMPAT_FULL:-0}"

# ---------------------------------------------------------------- the crate's source
# crate_source: the path of a pristine rdkafka-$RDKAFKA_VERSION source tree: the cargo
# registry's, else one extracted from the .crate downloaded from crates.io (sha256 checked).
crate_source() {
  local dir
  for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-$RDKAFKA_VERSION"; do
    if [ -f "$dir/Cargo.lock" ] && [ -f "$dir/tests/utils.rs" ]; then
      echo "$dir"
      return 0
    fi
  done
  dir="$CACHE/download/rdkafka-$RDKAFKA_VERSION"
  if [ ! -f "$dir/tests/utils.rs" ]; then
    mkdir -p "$CACHE/download"
    say "downloading rdkafka $RDKAFKA_VERSION from crates.io"
    # The API's download URL redirects to static.crates.io, where cargo itself downloads from
    # (some networks reach only that host).
    curl -fsSL --retry 2 -o "$CACHE/download/rdkafka.crate" \
      "https://static.crates.io/crates/rdkafka/rdkafka-$RDKAFKA_VERSION.crate" >&2 ||
      curl -fsSL --retry 2 -o "$CACHE/download/rdkafka.crate" \
        "https://crates.io/api/v1/crates/rdkafka/$RDKAFKA_VERSION/download" >&2 || return 1
    echo "$RDKAFKA_SHA256  $CACHE/download/rdkafka.crate" | sha256sum -c --quiet - >&2 || return 1
    rm -rf "$dir"
    tar -xzf "$CACHE/download/rdkafka.crate" -C "$CACHE/download" || return 1
    rm -f "$CACHE/download/rdkafka.crate"
  fi
  echo "$dir"
}

# patch FILE FROM TO: replaces the line FROM of the copy's FILE by TO; fails unless FROM is
# there exactly once.
patch_line() {
  local file="$SRC_COPY/$1" from=$2 to=$3
  [ "$(grep -cxF -- "$from" "$file")" = 1 ] || { say "patch: '$from' is not in $1 exactly once"; return 1; }
  FROM="$from" TO="$to" python3 -c '
import os, sys
p = sys.argv[1]
s = open(p).read().split("\n")
s = [os.environ["TO"] if l == os.environ["FROM"] else l for l in s]
open(p, "w").write("\n".join(s))' "$file"
}

# The copy is made once per version of this script's patches (the stamp), so that cargo's
# fingerprints (file times) stay valid and a second run rebuilds nothing.
PATCH_STAMP="rdkafka-$RDKAFKA_VERSION patches v1"
prepare_copy() {
  local src
  if [ -f "$SRC_COPY/.semel-compat-stamp" ] && [ "$(cat "$SRC_COPY/.semel-compat-stamp")" = "$PATCH_STAMP" ]; then
    return 0
  fi
  src="$(crate_source)" || return 1
  say "copying $src to $SRC_COPY"
  rm -rf "$SRC_COPY"
  mkdir -p "$(dirname "$SRC_COPY")"
  cp -R "$src" "$SRC_COPY"
  chmod -R u+w "$SRC_COPY"
  # The future producer of test_high_producers.rs connects to "localhost" (port 9092); the
  # others read KAFKA_HOST through get_bootstrap_server().
  patch_line tests/test_high_producers.rs '        .set("bootstrap.servers", "localhost")' \
    '        .set("bootstrap.servers", get_bootstrap_server())' || return 1
  # test_metadata asserts the broker's port is 9092: assert KAFKA_HOST's port instead.
  patch_line tests/test_metadata.rs '    assert_eq!(broker_metadata[0].port(), 9092);' \
    '    assert_eq!(broker_metadata[0].port() as u16, get_bootstrap_server().rsplit_once(":").unwrap().1.parse::<u16>().unwrap());' || return 1
  echo "$PATCH_STAMP" >"$SRC_COPY/.semel-compat-stamp"
}
prepare_copy || setup_failed "cannot get the source of rdkafka $RDKAFKA_VERSION (registry or crates.io)"

# ---------------------------------------------------------------- build the tests
# rcargo COMMAND...: COMMAND (cargo, possibly under timeout) in the crate's copy, building into
# $TARGET without debug info (0.9 GB instead of 2.3 GB, and faster; panic messages keep their
# file:line). Only here: semel's own build (build_semel) keeps its settings.
rcargo() {
  (cd "$SRC_COPY" && CARGO_TARGET_DIR="$TARGET" CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0 "$@")
}
command -v cargo >/dev/null 2>&1 || setup_failed "cargo is not on PATH"
say "cargo test --locked --no-run in $SRC_COPY (CARGO_TARGET_DIR=$TARGET; the first build compiles librdkafka)"
t0=$SECONDS
if ! rcargo timeout -k 10 3600 cargo test --locked --no-run >"$WORK/cargo-build.log" 2>&1; then
  tail -n 40 "$WORK/cargo-build.log" >&2
  setup_failed "cargo test --no-run of rdkafka $RDKAFKA_VERSION failed (see above)"
fi
say "tests built in $((SECONDS - t0))s"
RDKAFKA_SYS_VERSION="$(grep -A1 '^name = "rdkafka-sys"$' "$SRC_COPY/Cargo.lock" | sed -nE 's/^version = "(.*)"$/\1/p')"

# ---------------------------------------------------------------- the exclusions
# excluded.txt: `binary::test  # reason` (or `[full] binary::test  # reason`); blank lines and
# lines starting with # are comments.
declare -A EXCLUDED=()
while IFS= read -r line; do
  line="${line%%#*}"
  read -r -a words <<<"$line" || true
  [ "${#words[@]}" -gt 0 ] || continue
  if [ "${words[0]}" = "[full]" ]; then
    [ "$FULL" = 1 ] && continue
    words=("${words[@]:1}")
  fi
  EXCLUDED["${words[0]}"]=1
done <"$HERE/excluded.txt"

# ---------------------------------------------------------------- the broker
build_semel
# semel with the upstream test setup's broker settings (see the header): a wrapper that adds
# --config to the command start_semel runs.
cat >"$WORK/semel.toml" <<'EOF'
node_id = 0
num_partitions = 3
retention_check_interval_ms = 300000
EOF
REAL_SEMEL="$SEMEL"
cat >"$WORK/semel-with-config" <<EOF
#!/bin/sh
exec "$REAL_SEMEL" "\$@" --config "$WORK/semel.toml"
EOF
chmod +x "$WORK/semel-with-config"
SEMEL="$WORK/semel-with-config"
start_semel

echo "# rdkafka $RDKAFKA_VERSION, rdkafka-sys $RDKAFKA_SYS_VERSION (librdkafka ${RDKAFKA_SYS_VERSION#*+}, built from source), $(rustc --version); $([ "$FULL" = 1 ] && echo full || echo default) form"

# ---------------------------------------------------------------- the tests
if [ -n "${RUST_RDKAFKA_TESTS:-}" ]; then read -r -a TEST_BINARIES <<<"$RUST_RDKAFKA_TESTS"; fi
: >"$WORK/checks.out"
for bin in "${TEST_BINARIES[@]}"; do
  list="$WORK/$bin.list"
  if ! rcargo cargo test --locked --test "$bin" -- --list >"$WORK/$bin.all" 2>"$WORK/$bin.list-err"; then
    record FAIL "$bin: cannot list its tests: $(one_line "$(tail -n 5 "$WORK/$bin.list-err")")"
    continue
  fi
  skip_args=()
  : >"$list"
  while IFS= read -r name; do
    if [ -n "${EXCLUDED[$bin::$name]:-}" ]; then
      EXCLUDED["$bin::$name"]=seen
      skip_args+=(--skip "$name")
      say "excluded: $bin::$name ($(grep -F -- "$bin::$name " "$HERE/excluded.txt" | sed -E 's/^[^#]*# *//' | head -n 1))"
    else
      echo "$name" >>"$list"
    fi
  done < <(sed -nE 's/^(.*): test$/\1/p' "$WORK/$bin.all")
  [ -s "$list" ] || continue
  say "running $bin ($(wc -l <"$list") tests)"
  t0=$SECONDS
  rc=0
  KAFKA_HOST="$BOOTSTRAP" RUST_LOG=off rcargo timeout -k 10 "$BINARY_TIMEOUT" \
    cargo test --locked --test "$bin" -- --exact "${skip_args[@]}" >"$WORK/$bin.out" 2>&1 || rc=$?
  say "$bin finished in $((SECONDS - t0))s (exit status $rc)"
  python3 "$HERE/parse_libtest.py" "$bin" "$WORK/$bin.out" "$list" "$rc" | tee -a "$WORK/checks.out"
done
tally "$WORK/checks.out"
# upstream's test_suite.sh then runs two examples: each produces one message, then consumes it
# with a group (subscribe) on a runtime other than tokio, and exits non-zero on any error.
# `cargo test --no-run` built them (with the default features: test_suite.sh builds them with
# `--no-default-features --features cmake-build`, which only changes how librdkafka is built).
# run_example NAME TOPIC: runs examples/NAME.rs against semel; prints its last output line.
run_example() {
  local out rc=0
  out="$(RUST_LOG=off rcargo timeout -k 10 120 \
    cargo run --locked -q --example "$1" -- --brokers "$BOOTSTRAP" --topic "$2" 2>&1)" || rc=$?
  if [ "$rc" = 0 ] && grep -qx "Received message: hello from $2" <<<"$out"; then
    echo "Received message: hello from $2"
  else
    echo "exit status $rc$([ "$rc" = 124 ] && echo ' (killed by timeout)'): $(tail -n 5 <<<"$out")"
    return 1
  fi
}
if [ -z "${RUST_RDKAFKA_TESTS:-}" ]; then
  run_check "example runtime_smol: produce, then consume with a group, on the smol runtime" run_example runtime_smol smol
  run_check "example runtime_async_std: produce, then consume with a group, on async-std" run_example runtime_async_std async-std
fi

# An exclusion that names no test of a binary that ran is a stale or mistyped line.
for key in "${!EXCLUDED[@]}"; do
  if [ "${EXCLUDED[$key]}" != seen ] && [[ " ${TEST_BINARIES[*]} " == *" ${key%%::*} "* ]]; then
    record FAIL "excluded.txt: $key is not a test of ${key%%::*}"
  fi
done

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
