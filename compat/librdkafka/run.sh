#!/usr/bin/env bash
# Compatibility suite: librdkafka's own test suite (tests/test-runner) against semel.
#
# The librdkafka source is the one vendored in the rdkafka-sys crate that semel's workspace
# depends on (rdkafka-sys 4.10.0+2.12.1, librdkafka 2.12.1), found with `cargo metadata` in the
# cargo registry, or else downloaded from crates.io. It is copied to
# $HOME/.cache/semel-compat/librdkafka/<crate version>/, its tests get one patch (replication
# factor 3 -> 1 where 0098, 0103, 0107 and 0111 create topics: see patch_tests), and it is
# configured (no GSSAPI, no libcurl; the Debian -dev packages it needs are installed with apt-get
# when missing) and built there once: the library, librdkafka++ and tests/test-runner (a first
# build takes ~5 minutes on 2 cores; later runs reuse it).
#
# Some tests run Kafka's tools from $KAFKA_PATH: 0098 runs librdkafka's
# tests/java/TransactionProducerCli.java (a transactional Java producer) with
# bin/kafka-run-class.sh, and test.c's test_kafka_topics() runs bin/kafka-topics.sh. Maven copies
# the pinned kafka-clients and kafka-tools (java/pom.xml) into compat/librdkafka/java/target/kafka/libs,
# and run.sh writes the two scripts (java with those jars; kafka-topics.sh runs TopicCommand).
#
# semel runs on a free port with a temporary data dir and num_partitions = 4 (auto-created topics
# get 4 partitions, as in librdkafka's own test cluster, trivup). Each line of allowlist.txt (a
# test number) runs as one `test-runner -L` process: every test of that number except the local
# ones (mock cluster, no broker), not in quick mode (-Q skips most sub-tests), with
# TEST_KAFKA_VERSION=4.0.0 (the version-gated tests run, those of features Kafka 4.0 removed do
# not) and a test.conf holding bootstrap.servers. Lines tagged noautocreate run in librdkafka's
# noautocreate scenario against a second semel with auto_create_topics_enable = false. Each line
# gives `PASS 0090 (0090_idempotence, 5s)` when every non-local test of the number passed (at
# least one), or `FAIL 0090: <failure> (<time>)` with the test-runner output before the failure
# on stderr. The excluded test numbers are
# listed in allowlist.txt with the reason.
#
#   default (CI)    the lines tagged ci: the idempotence and transaction tests (0090 0094 0098
#                   0103) and a representative set of produce, consume, consumer-group and
#                   admin tests; ~5 minutes on a machine with the build cached
#   COMPAT_FULL=1   every line of allowlist.txt; ~20 minutes (0113 alone takes ~10)
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dirs and logs (path printed at exit)
#   COMPAT_FULL=1              run the whole allowlist
#   LRK_TESTS="0090 0107:noautocreate"   run only these test numbers (whether listed or not)
#   LRK_PARALLEL=N             test-runner processes at once (default 2)
#   LRK_TEST_TIMEOUT=S         bound of one test number's run (default 1200s)
#   SEMEL_LOG                  semel's log filter (default info)
set -euo pipefail

CRATE=rdkafka-sys
CRATE_VERSION="4.10.0+2.12.1"
LIBRDKAFKA_VERSION="${CRATE_VERSION#*+}"
BROKER_VERSION=4.0.0
CONFIGURE_ARGS=(--disable-gssapi --disable-curl --disable-lz4-ext)
# What the cached build was made with: a build whose stamp differs is redone.
BUILD_KEY="configure ${CONFIGURE_ARGS[*]}; patch_tests v2 (replication factor 1 in 0098 0103 0107 0111)"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init librdkafka
SEMEL_LOG_DEFAULT=info

CACHE="$HOME/.cache/semel-compat/librdkafka"
BUILD="$CACHE/$CRATE_VERSION"
TESTS_DIR="$BUILD/tests"
KAFKA_PATH_DIR="$HERE/java/target/kafka"
PARALLEL="${LRK_PARALLEL:-2}"
TEST_TIMEOUT="${LRK_TEST_TIMEOUT:-1200}"

# ---------------------------------------------------------------- librdkafka source and build

# The crate's directory: from `cargo metadata` (the registry copy of the version the workspace
# locks), else the crate downloaded from crates.io into $CACHE.
crate_dir() {
  local dir=""
  if command -v cargo >/dev/null 2>&1; then
    dir="$(cargo metadata --format-version 1 --manifest-path "$ROOT/Cargo.toml" 2>/dev/null |
      python3 -c 'import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == sys.argv[1] and p["version"] == sys.argv[2]:
        print(os.path.dirname(p["manifest_path"]))' "$CRATE" "$CRATE_VERSION" 2>/dev/null || true)"
  fi
  if [ -n "$dir" ] && [ -f "$dir/librdkafka/configure" ]; then
    echo "$dir"
    return 0
  fi
  dir="$CACHE/crate/$CRATE-$CRATE_VERSION"
  if [ ! -f "$dir/librdkafka/configure" ]; then
    say "downloading $CRATE $CRATE_VERSION from crates.io"
    mkdir -p "$CACHE/crate"
    # crates.io's download API (/api/v1/crates/NAME/VERSION/download) redirects to this file.
    curl -fsSL --retry 3 -o "$CACHE/crate/$CRATE-$CRATE_VERSION.crate" \
      "https://static.crates.io/crates/$CRATE/$CRATE-${CRATE_VERSION/+/%2B}.crate" >&2 || return 1
    tar -xzf "$CACHE/crate/$CRATE-$CRATE_VERSION.crate" -C "$CACHE/crate" >&2 || return 1
  fi
  echo "$dir"
}

# Debian's -dev packages the configured build needs (zstd, OpenSSL, zlib; RapidJSON for the
# tests' statistics checks and 0098), installed when a header is missing.
install_build_deps() {
  local -a missing=()
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  command -v g++ >/dev/null 2>&1 || missing+=(g++)
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  [ -f /usr/include/zstd.h ] || missing+=(libzstd-dev)
  [ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  [ -f /usr/include/rapidjson/schema.h ] || missing+=(rapidjson-dev)
  if [ "${#missing[@]}" != 0 ]; then
    apt_install "librdkafka's build dependencies" "${missing[@]}" ||
      setup_failed "cannot install ${missing[*]} with apt-get"
  fi
}

# The one change made to librdkafka's tests: 0098 (consumer side of transactions), 0103
# (transactions), 0107 (topic re-creation) and 0111 (delayed topic creation) create their topics
# with replication factor 3, which a single broker refuses (INVALID_REPLICATION_FACTOR, as Kafka
# does); they get replication factor 1 instead. The number of edits is checked, so that another
# librdkafka version does not silently lose them. (Bump BUILD_KEY when this changes.)
patch_tests() {
  local f want got
  for f in 0098-consumer-txn.cpp:16 0103-transactions.c:7 0107-topic_recreate.c:2 0111-delay_create_topics.cpp:1; do
    want=${f#*:}
    f=$BUILD/tests/${f%:*}
    got="$(grep -cE 'create_topic_wait_exists\([^;]*, 3, 5000\)|create_topic\([^;]*, [0-9]+, 3\);' "$f" || true)"
    [ "$got" = "$want" ] || setup_failed "tests/${f##*/}: $got topic creations with replication factor 3 to patch, expected $want"
    sed -i -E 's/(create_topic_wait_exists\([^;]*), 3, 5000\)/\1, 1, 5000)/; s/(create_topic\([^;]*, [0-9]+), 3\);/\1, 1);/' "$f"
  done
}

build_librdkafka() {
  local src
  if [ -x "$TESTS_DIR/test-runner" ] && [ "$(cat "$BUILD/.semel-built" 2>/dev/null)" = "$BUILD_KEY" ]; then
    return 0
  fi
  install_build_deps
  src="$(crate_dir)" || setup_failed "cannot find or download $CRATE $CRATE_VERSION"
  say "building librdkafka $LIBRDKAFKA_VERSION and its test-runner in $BUILD (from $src/librdkafka)"
  rm -rf "$BUILD"
  mkdir -p "$CACHE"
  cp -r "$src/librdkafka" "$BUILD"
  chmod -R u+w "$BUILD"
  patch_tests
  if ! (cd "$BUILD" && ./configure "${CONFIGURE_ARGS[@]}" && make -j"$(nproc)" libs &&
    make -C tests -j"$(nproc)" build) >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    setup_failed "building librdkafka / tests/test-runner failed (configure ${CONFIGURE_ARGS[*]})"
  fi
  grep -q 'WITH_RAPIDJSON 1' "$BUILD/config.h" || say "WARNING: built without RapidJSON (0098 will skip)"
  echo "$BUILD_KEY" >"$BUILD/.semel-built"
}

# The stand-in Kafka installation ($KAFKA_PATH) some tests need: libs/kafka-clients-*.jar (the
# javac classpath of tests/java/Makefile, for 0098), bin/kafka-run-class.sh (run by
# tests/java/run-class.sh with CLASSPATH set to tests/java, for 0098) and bin/kafka-topics.sh
# (kafka-tools' TopicCommand, run by test.c's test_kafka_topics with --bootstrap-server $BROKERS).
install_kafka_path() {
  install_java17
  if ! ls "$KAFKA_PATH_DIR"/libs/kafka-clients-*.jar "$KAFKA_PATH_DIR"/libs/kafka-tools-[0-9]*.jar >/dev/null 2>&1; then
    say "mvn dependency:copy-dependencies (compat/librdkafka/java/pom.xml)"
    rm -rf "$KAFKA_PATH_DIR/libs"
    if ! timeout -k 10 600 mvn -B -q -f "$HERE/java/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$KAFKA_PATH_DIR/libs" >"$WORK/mvn.log" 2>&1; then
      tail -n 40 "$WORK/mvn.log" >&2
      setup_failed "mvn could not fetch kafka-clients and kafka-tools (compat/librdkafka/java/pom.xml)"
    fi
  fi
  mkdir -p "$KAFKA_PATH_DIR/bin"
  cat >"$KAFKA_PATH_DIR/bin/kafka-run-class.sh" <<'SH'
#!/bin/sh
# Stand-in for Kafka's bin/kafka-run-class.sh (written by compat/librdkafka/run.sh).
exec java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$CLASSPATH:$KAFKA_PATH/libs/*" "$@"
SH
  cat >"$KAFKA_PATH_DIR/bin/kafka-topics.sh" <<'SH'
#!/bin/sh
# Stand-in for Kafka's bin/kafka-topics.sh (written by compat/librdkafka/run.sh).
exec java -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$KAFKA_PATH/libs/*" org.apache.kafka.tools.TopicCommand "$@"
SH
  chmod +x "$KAFKA_PATH_DIR/bin/kafka-run-class.sh" "$KAFKA_PATH_DIR/bin/kafka-topics.sh"
}

# ---------------------------------------------------------------- the broker, with a config file

# start_semel_config LINE...: start_semel (lib.sh), but with a config file ($WORK/semel.toml)
# made of the LINES, which lib.sh's launch_semel does not pass.
start_semel_config() {
  pick_port
  printf '%s\n' "$@" >"$WORK/semel.toml"
  env -u SEMEL_ADVERTISED SEMEL_LOG="${SEMEL_LOG:-$SEMEL_LOG_DEFAULT}" \
    "$SEMEL" serve --listen "$BOOTSTRAP" --data-dir "$WORK/data" --config "$WORK/semel.toml" \
    >"$WORK/semel.out" 2>"$WORK/semel.log" &
  SEMEL_PID=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$SEMEL_PID" 2>/dev/null; then
      tail -n 30 "$WORK/semel.log" >&2
      setup_failed "semel exited before accepting connections"
    fi
    if grep -q "semel listening on" "$WORK/semel.out" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      say "semel (pid $SEMEL_PID) listening on $BOOTSTRAP, data in $WORK/data"
      return 0
    fi
    sleep 0.1
  done
  setup_failed "semel did not accept connections on $BOOTSTRAP within 60s"
}

# ---------------------------------------------------------------- the tests

# The tests to run, one a line: NUM (default scenario) or NUM:noautocreate. LRK_TESTS, else
# allowlist.txt's lines (all with COMPAT_FULL=1, else those tagged ci).
selected_tests() {
  if [ -n "${LRK_TESTS:-}" ]; then
    # shellcheck disable=SC2086 # a list of test numbers, split on spaces
    printf '%s\n' $LRK_TESTS
    return 0
  fi
  sed -E 's/#.*//' "$HERE/allowlist.txt" | awk -v full="${COMPAT_FULL:-0}" '
    NF {
      ci = 0; scenario = ""
      for (i = 2; i <= NF; i++) { if ($i == "ci") ci = 1; else if ($i == "noautocreate") scenario = ":noautocreate" }
      if (full == 1 || ci) print $1 scenario
    }'
}

# run_one TEST: test-runner for TEST (NUM or NUM:SCENARIO); its output in $WORK/tests/NUM[-SCENARIO].log,
# its exit status and duration in $WORK/tests/NUM[-SCENARIO].rc.
run_one() {
  local num=${1%%:*} scenario=default file=${1/:/-} t0 rc=0
  case "$1" in *:*) scenario=${1#*:} ;; esac
  t0=$SECONDS
  (cd "$TESTS_DIR" && env LD_LIBRARY_PATH="$BUILD/src:$BUILD/src-cpp" RDKAFKA_TEST_CONF="$WORK/test.conf" \
    TEST_KAFKA_VERSION="$BROKER_VERSION" KAFKA_PATH="$KAFKA_PATH_DIR" BROKERS="$BOOTSTRAP" TESTS="$num" \
    TEST_SCENARIO="$scenario" timeout -k 10 "$TEST_TIMEOUT" ./test-runner -L) >"$WORK/tests/$file.log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - t0))" >"$WORK/tests/$file.rc"
}

# record_one TEST: PASS if test-runner exited 0 and its summary shows every test of TEST's number
# that is not local (mock cluster, no broker) passed, at least one; else FAIL with the failed
# tests' messages. Test runs skipped for another reason than being local are named in the line.
record_one() {
  local num=${1%%:*} file=${1/:/-} label=${1/:/ scenario=} rc secs summary passed failed skipped why first
  read -r rc secs <"$WORK/tests/$file.rc"
  summary="$(sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/tests/$file.log" | grep -E "^\| ${num}_" | sort -u || true)"
  passed="$(echo "$summary" | awk -F'|' '$3 ~ /PASSED/ { gsub(/ /, "", $2); print $2 }' | paste -sd, -)"
  failed="$(echo "$summary" | awk -F'|' '$3 ~ /FAILED/ { gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $5); print $2 ": " $5 }' | paste -sd';' -)"
  skipped="$(echo "$summary" | awk -F'|' '$3 ~ /SKIPPED/ && $5 !~ /negative test flags/ && $5 ~ /[a-z]/ { gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $5); print $2 " skipped: " $5 }' | paste -sd';' -)"
  if [ "$rc" = 0 ] && [ -n "$passed" ] && [ -z "$failed" ]; then
    record PASS "$label ($passed, ${secs}s${skipped:+; $skipped})"
    return 0
  fi
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    why="timed out after ${TEST_TIMEOUT}s"
  elif [ -n "$failed" ]; then
    why="$failed"
  elif [ "$rc" != 0 ]; then
    why="test-runner exit status $rc"
  else
    why="no test ran${skipped:+ ($skipped)}"
  fi
  # The first failure message of the log (test-runner's `### Test ... failed at ... ###` block).
  first="$(sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/tests/$file.log" | grep -A1 -m1 '^### Test' | tr '\n' ' ' || true)"
  record FAIL "$label: $(one_line "$why${first:+ | $first}") (${secs}s)"
  # The lines before the first failure on stderr (the whole log stays with COMPAT_KEEP=1).
  say "--- $label: test-runner output before the first failure ($WORK/tests/$file.log)"
  sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/tests/$file.log" | grep -B 15 -A 3 -m 1 '^### Test' >&2 ||
    tail -n 20 "$WORK/tests/$file.log" >&2 || true
}

# run_tests TEST...: the tests, $PARALLEL at a time; their lines are printed in the given order,
# each as soon as it and the ones before it have ended.
run_tests() {
  local -a tests=("$@")
  local t pid next=0 running
  TEST_PIDS=()
  for t in "${tests[@]}" ""; do
    while :; do
      while [ "$next" -lt "${#tests[@]}" ] && [ -f "$WORK/tests/${tests[$next]/:/-}.rc" ]; do
        record_one "${tests[$next]}"
        next=$((next + 1))
      done
      running=0
      for pid in "${TEST_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then running=$((running + 1)); fi
      done
      if [ -n "$t" ] && [ "$running" -lt "$PARALLEL" ]; then break; fi
      if [ -z "$t" ] && [ "$next" -ge "${#tests[@]}" ]; then break; fi
      sleep 1
    done
    if [ -n "$t" ]; then
      run_one "$t" 2>/dev/null & # (no "Aborted" job notice when a test-runner aborts)
      TEST_PIDS+=($!)
    fi
  done
  for pid in "${TEST_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  TEST_PIDS=()
}

# The test-runner processes still running (the suite was interrupted): SIGTERM to every
# descendant of the run_one subshells (the timeout wrappers and the test-runners).
TEST_PIDS=()
descendants() {
  local child
  for child in $(pgrep -P "$1" || true); do
    echo "$child"
    descendants "$child"
  done
}
stop_tests() {
  local pid child
  for pid in "${TEST_PIDS[@]}"; do
    for child in $(descendants "$pid"); do kill -TERM "$child" 2>/dev/null || true; done
  done
}

# ---------------------------------------------------------------- main

build_librdkafka
mapfile -t TESTS_TO_RUN < <(selected_tests)
[ "${#TESTS_TO_RUN[@]}" != 0 ] || setup_failed "no test selected"
DEFAULT_TESTS=()
NOAUTOCREATE_TESTS=()
for t in "${TESTS_TO_RUN[@]}"; do
  case "$t" in
    *:noautocreate) NOAUTOCREATE_TESTS+=("$t") ;;
    *:*) setup_failed "unknown scenario in $t (only noautocreate)" ;;
    *) DEFAULT_TESTS+=("$t") ;;
  esac
done
install_kafka_path
build_semel
mkdir -p "$WORK/tests"
rm -f "$TESTS_DIR"/stats_*.json
on_cleanup stop_tests

FORM="default form"
if [ -n "${LRK_TESTS:-}" ]; then FORM=LRK_TESTS; elif [ "${COMPAT_FULL:-0}" = 1 ]; then FORM="full form"; fi
say "librdkafka $LIBRDKAFKA_VERSION (crate $CRATE $CRATE_VERSION), TEST_KAFKA_VERSION=$BROKER_VERSION," \
  "kafka-clients and kafka-tools $(sed -nE 's|.*<kafka.version>([^<]+)</kafka.version>.*|\1|p' "$HERE/java/pom.xml")," \
  "$(java -version 2>&1 | head -n 1); ${#TESTS_TO_RUN[@]} tests, $PARALLEL at a time" \
  "($FORM)"
echo "# librdkafka $LIBRDKAFKA_VERSION (crate $CRATE $CRATE_VERSION); test-runner -L, TEST_KAFKA_VERSION=$BROKER_VERSION"

if [ "${#DEFAULT_TESTS[@]}" != 0 ]; then
  start_semel_config "num_partitions = 4"
  printf 'bootstrap.servers=%s\n' "$BOOTSTRAP" >"$WORK/test.conf"
  run_tests "${DEFAULT_TESTS[@]}"
fi
if [ "${#NOAUTOCREATE_TESTS[@]}" != 0 ]; then
  # The noautocreate scenario: a second semel, with auto_create_topics_enable = false.
  if [ -n "$SEMEL_PID" ]; then
    record_shutdown "semel shut down cleanly on SIGTERM (default scenario)" "semel died during the checks"
    mv "$WORK/semel.log" "$WORK/semel-default.log"
    mv "$WORK/data" "$WORK/data-default"
  fi
  start_semel_config "num_partitions = 4" "auto_create_topics_enable = false"
  printf 'bootstrap.servers=%s\n' "$BOOTSTRAP" >"$WORK/test.conf"
  run_tests "${NOAUTOCREATE_TESTS[@]}"
fi

check_clean_shutdown
if [ -f "$WORK/semel-default.log" ]; then
  report_semel_warnings "both scenarios" "$WORK/semel-default.log" "$WORK/semel.log"
else
  report_semel_warnings
fi
finish
