#!/usr/bin/env bash
# Compatibility suite: the Node.js clients kafkajs (pure JavaScript, its own protocol and
# transaction implementation) and @confluentinc/kafka-javascript (librdkafka, driven through its
# KafkaJS-compatible API) against semel.
#
# Installs the pinned packages of compat/node/package-lock.json into compat/node/node_modules
# (`npm ci`; git-ignored). @confluentinc/kafka-javascript is native: its install script would
# download a prebuilt binary from GitHub, which CI cannot reach, so the suite builds it from the
# sources in the npm tarball instead (node-gyp with the Node headers of the installed node, and
# the bundled librdkafka under deps/, linked against Debian's OpenSSL, zlib and zstd; about 4
# minutes on 2 cores; the build tools and -dev packages are installed with apt-get when missing).
# The built addon and its librdkafka are cached in ~/.cache/semel-compat/node/ (by package
# version, Node ABI and architecture), so a clean clone restores them instead of rebuilding.
# kafkajs ships gzip only: snappy comes from kafkajs-snappy, LZ4 and ZSTD from the pure-JS / wasm
# libraries lz4js and @bokuweb/zstd-wasm (registered as kafkajs codecs in harness.js).
#
# Builds semel with `cargo build -p semel`, starts it on a free port with a temporary data dir,
# runs harness.js once per client (both at the same time, against the same broker; topic and
# group names are prefixed kjs- / ckjs-), prints one `PASS name` / `FAIL name: why` line per
# check and finally `N passed, M failed`. Exits non-zero if any check failed.
#
# Checks per client (harness.js): admin createTopics / listTopics / describeConfigs and
# alterConfigs (kafkajs; confluent's KafkaJS admin has neither) / fetchTopicOffsets(ByTimestamp) /
# fetchTopicMetadata (kafkajs: describeCluster) / createPartitions / deleteTopics /
# deleteTopicRecords / setOffsets and resetOffsets (kafkajs); produce + consume with every codec
# (none, gzip, snappy, lz4, zstd: exact content incl. headers with a repeated key, order, offsets,
# and the codec of the batches stored on disk); acks=1 and acks=0; topic auto-creation; fetch
# limits smaller than one record (KIP-74); a consumer group of 3 members (assignment,
# describeGroups while Stable, rebalance when one leaves, committed offsets, a new member
# resumes); a member killed with SIGKILL (a child process) expires after its session timeout;
# confluent: cooperative-sticky incremental rebalances and static membership (KIP-345);
# listGroups / describeGroups / fetchOffsets / deleteGroups; the idempotent producer (one
# producer id, gapless sequences on disk); transactions: commit / abort, the LSO while a
# transaction is open, read_committed vs read_uncommitted, two transactional producers
# interleaved on one partition, fencing of a zombie producer by a second one with the same
# transactional id, the transaction timeout, consume-transform-produce with sendOffsets (aborted
# then committed runs; exactly one copy of each output).
#
# Excluded checks (EXCLUDED in harness.js, printed as `# excluded: ...` lines, counted neither as
# passed nor as failed): known broker bugs, each marked `# BROKER BUG:` there.
#
# Default form: 2,000 messages per codec, 3,000 idempotent, 600 in the group, 120
# consume-transform-produce transactions. COMPAT_FULL=1: 20,000 / 20,000 / 3,000 / 600.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   COMPAT_FULL=1              the full form (more messages, see above)
#   COMPAT_RUN_EXCLUDED=1      also run the checks excluded as known broker bugs
#   COMPAT_ONLY=REGEX          run only the checks whose name matches (debugging; checks that
#                              need an earlier one then fail)
#   SEMEL_LOG                  semel's log filter (default info)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init node
SEMEL_LOG_DEFAULT=info

CKJS=@confluentinc/kafka-javascript
CKJS_DIR="$HERE/node_modules/$CKJS"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/semel-compat/node"

# ---------------------------------------------------------------- client install

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
  apt_install "Node.js and npm" nodejs npm || setup_failed "cannot install Node.js and npm with apt-get"

# The headers node-gyp compiles against: the installed node's own (/usr/include/node for
# Debian's or NodeSource's node), since nodejs.org (where node-gyp downloads them) is unreachable.
NODEDIR="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ ! -f "$NODEDIR/include/node/node.h" ]; then
  apt_install "the Node.js headers" libnode-dev || true
fi
ABI="$(node -p 'process.versions.modules')"
CKJS_VERSION="$(node -p "require('$HERE/package-lock.json').packages['node_modules/$CKJS'].version")"
CKJS_CACHE="$CACHE/ckjs-$CKJS_VERSION-node$ABI-$(uname -m).tar.gz"
STAMP="$HERE/node_modules/.semel-installed"
WANT_STAMP="$(cat "$HERE/package-lock.json" <(node --version) | sha256sum | cut -d' ' -f1)"

ckjs_loads() { (cd "$HERE" && node -e "require('$CKJS')") >/dev/null 2>&1; }

# The build tools and libraries the source build of librdkafka needs.
ensure_build_deps() {
  local missing=() pkg
  for pkg in g++ make python3 pkg-config libssl-dev zlib1g-dev libzstd-dev; do
    case "$pkg" in
      g++ | make | python3 | pkg-config) command -v "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
      *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  if [ "${#missing[@]}" != 0 ]; then apt_install "build tools for $CKJS" "${missing[@]}" || return 1; fi
}

CKJS_NOTE=""
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT_STAMP" ] || ! ckjs_loads; then
  rm -f "$STAMP"
  if [ -f "$CKJS_CACHE" ]; then
    say "npm ci --ignore-scripts; $CKJS from the cached build $CKJS_CACHE"
    (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
      { tail -n 30 "$WORK/npm.log" >&2; setup_failed "npm ci failed in $HERE"; }
    tar -xzf "$CKJS_CACHE" -C "$CKJS_DIR" || say "cannot unpack $CKJS_CACHE"
  fi
  if ! ckjs_loads; then
    say "npm ci, building $CKJS $CKJS_VERSION and its librdkafka from source (a few minutes)"
    ensure_build_deps || say "WARNING: could not install the build tools; trying anyway"
    # (No JOBS=N: with a parallel top-level make, the addon's objects race the configure step of
    # librdkafka, "No rule to make target '../deps/librdkafka/config.h'"; librdkafka's own make
    # runs with -j anyway.)
    # build_from_source: no download attempt of the prebuilt binary (GitHub is unreachable);
    # CKJS_LINKING=dynamic: librdkafka's configure without --install-deps (which downloads
    # OpenSSL, zlib, zstd... sources), linked against the system's libraries instead.
    if (cd "$HERE" && CKJS_LINKING=dynamic npm_config_build_from_source=true npm_config_nodedir="$NODEDIR" \
      timeout -k 10 1800 npm ci --no-audit --no-fund --foreground-scripts) >"$WORK/npm.log" 2>&1 && ckjs_loads; then
      mkdir -p "$CACHE"
      (cd "$CKJS_DIR" && tar -czf "$CKJS_CACHE.tmp" build/Release/confluent-kafka-javascript.node build/deps/librdkafka.so.1 build/deps/librdkafka++.so.1 build/deps/librdkafka.so build/deps/librdkafka++.so) &&
        mv "$CKJS_CACHE.tmp" "$CKJS_CACHE" && say "cached the build in $CKJS_CACHE"
    else
      grep -nE 'No rule|\*\*\*|error:|ERR!' "$WORK/npm.log" | head -n 20 >&2 || true
      tail -n 20 "$WORK/npm.log" >&2
      CKJS_NOTE="the source build of $CKJS failed (npm ci log tail above)"
      (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
        { tail -n 30 "$WORK/npm.log" >&2; setup_failed "npm ci failed in $HERE"; }
    fi
  fi
  if [ -z "$CKJS_NOTE" ]; then echo "$WANT_STAMP" >"$STAMP"; fi
fi
say "node $(node --version), npm $(npm --version)"

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

# ---------------------------------------------------------------- checks
# run_harness CLIENT: harness.js for CLIENT, bounded, its PASS/FAIL lines to $WORK/CLIENT.out,
# its stderr to $WORK/CLIENT.log.
run_harness() {
  local rc=0
  (cd "$HERE" && KAFKAJS_NO_PARTITIONER_WARNING=1 timeout -k 10 900 node harness.js "$1" "$BOOTSTRAP" "$WORK/data") >"$WORK/$1.out" 2>"$WORK/$1.log" || rc=$?
  echo "$rc" >"$WORK/$1.rc"
}
CLIENTS=(kafkajs)
if [ -n "$CKJS_NOTE" ]; then
  record FAIL "confluent-kafka-javascript: install: $CKJS_NOTE"
else
  CLIENTS+=(confluent)
fi
pids=()
for c in "${CLIENTS[@]}"; do
  run_harness "$c" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
for c in "${CLIENTS[@]}"; do
  cat "$WORK/$c.out"
  tally "$WORK/$c.out"
  rc="$(cat "$WORK/$c.rc")"
  if [ "$rc" != 0 ]; then record FAIL "$c: harness exited with status $rc (see its log below)"; fi
  if [ "$rc" != 0 ] || grep -q '^FAIL ' "$WORK/$c.out"; then
    say "--- last lines of the $c log ($WORK/$c.log)"
    tail -n 40 "$WORK/$c.log" >&2 || true
  fi
done

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
