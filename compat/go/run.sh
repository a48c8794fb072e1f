#!/usr/bin/env bash
# Compatibility suite: the Go client franz-go (github.com/twmb/franz-go: kgo, kadm) against semel.
#
# Needs Go (>= the go line of franz-go's go.mod; older toolchains fetch a newer one through the
# module proxy). The modules come from the Go module proxy into $HOME/.cache/semel-compat/go/mod
# (GOMODCACHE) and are compiled with GOCACHE=$HOME/.cache/semel-compat/go/build; the copy of
# franz-go's source whose tests run, and the compiled binaries, go to compat/go/.work
# (git-ignored). Builds semel with `cargo build -p semel` (or uses SEMEL_BIN), starts it
# (SEMEL_LOG=info) on a free port with a temporary data dir, and prints one `PASS name` /
# `FAIL name: why` line per check and finally `N passed, M failed`. Exits non-zero if any
# check failed.
#
#   1  our own harness, compat/go/checks (its own go.mod pinning franz-go and kadm, go.sum
#      committed): produce/consume with each codec (exact content), list offsets, the
#      idempotent producer (and DescribeProducers), consumer groups with the eager (range) and
#      cooperative-sticky balancers (who gives up what when a second member joins, each record
#      once, commits), kadm admin calls (topics, configs, groups, offsets), transactions
#      (commit/abort/open, LSO, read_committed vs read_uncommitted, ListTransactions,
#      DescribeTransactions, DescribeProducers) and consume-transform-produce with
#      GroupTransactSession (two members, an abort; exactly one copy in the output).
#   2  franz-go's own integration tests of pkg/kgo (from the module's *_test.go), with
#      KGO_SEEDS pointing at semel: the tests listed in compat/go/kgo-tests.txt (which also
#      lists the excluded ones and why), one line per test and per subtest.
#
# Default form (CI; about 1.5 minutes once the modules are cached and compiled, about 2 more the
# first time, on a 2-core machine):
# KGO_TEST_RECORDS=10000 records through franz-go's chains of consumer groups (TestGroupETL,
# TestTxnEtl), the harness at scale 1.
# Full form (COMPAT_FULL=1): KGO_TEST_RECORDS=500000 (franz-go's own default), the harness at 5x
# its record counts, and TestGroupETL once more with KGO_TEST_CHAOS=1 (the client cuts its
# connections every 0.5-1.5s) and 100000 records (lines `kgo-chaos ...`); about 2 minutes.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   COMPAT_FULL=1              the full form (above)
#   SEMEL_LOG                  semel's log filter (default info)
#   KGO_TEST_RECORDS           override the record count of franz-go's chains
#   KGO_LOG_LEVEL              franz-go's test client log level (info; debug or none)
set -euo pipefail

FRANZ_GO_VERSION=v1.22.3 # github.com/twmb/franz-go (kgo); also pinned in checks/go.mod
KADM_VERSION=v1.20.0     # github.com/twmb/franz-go/pkg/kadm (checks/go.mod)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init go
SEMEL_LOG_DEFAULT=info

if [ "${COMPAT_FULL:-0}" = 1 ]; then
  FORM=full
  RECORDS=${KGO_TEST_RECORDS:-500000}
  CHAOS_RECORDS=${KGO_TEST_RECORDS:-100000}
  SCALE=5
  KGO_TIMEOUT=3600
  HARNESS_TIMEOUT=1500
else
  FORM=default
  RECORDS=${KGO_TEST_RECORDS:-10000}
  SCALE=1
  KGO_TIMEOUT=600
  HARNESS_TIMEOUT=600
fi

# ---------------------------------------------------------------- client install and build
command -v go >/dev/null 2>&1 || setup_failed "no go on PATH (Go is needed to build franz-go)"
CACHE="$HOME/.cache/semel-compat/go"
export GOMODCACHE="$CACHE/mod" GOCACHE="$CACHE/build" GOFLAGS=-modcacherw GOTOOLCHAIN=auto
unset GOPATH GO111MODULE GOWORK
export GOWORK=off
mkdir -p "$HERE/.work" "$GOMODCACHE" "$GOCACHE"

# franz-go's module (its test files included) from the proxy, copied once to a writable dir.
SRC="$HERE/.work/franz-go-$FRANZ_GO_VERSION"
if [ ! -f "$SRC/.complete" ]; then
  say "go mod download github.com/twmb/franz-go@$FRANZ_GO_VERSION"
  mod_dir="$(cd "$HERE/checks" && go mod download -json "github.com/twmb/franz-go@$FRANZ_GO_VERSION" 2>"$WORK/download.log" |
    sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')" || true
  if [ -z "$mod_dir" ] || [ ! -d "$mod_dir/pkg/kgo" ]; then
    cat "$WORK/download.log" >&2
    setup_failed "cannot download github.com/twmb/franz-go@$FRANZ_GO_VERSION"
  fi
  rm -rf "$SRC"
  cp -r "$mod_dir" "$SRC"
  chmod -R u+w "$SRC"
  touch "$SRC/.complete"
fi

say "go build compat/go/checks; go test -c github.com/twmb/franz-go/pkg/kgo"
(cd "$HERE/checks" && go build -mod=readonly -o "$HERE/.work/checks" .) >"$WORK/build.log" 2>&1 ||
  { tail -n 30 "$WORK/build.log" >&2; setup_failed "cannot build compat/go/checks"; }
(cd "$SRC" && go test -c -o "$HERE/.work/kgo.test" ./pkg/kgo/) >"$WORK/build.log" 2>&1 ||
  { tail -n 30 "$WORK/build.log" >&2; setup_failed "cannot compile franz-go's pkg/kgo tests"; }

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

echo "# github.com/twmb/franz-go $FRANZ_GO_VERSION, github.com/twmb/franz-go/pkg/kadm $KADM_VERSION (Go module proxy), $(go version | sed 's/^go version //'); form $FORM (KGO_TEST_RECORDS=$RECORDS, harness scale $SCALE)"

# ---------------------------------------------------------------- 1: our harness
run_harness() {
  local rc
  set +e
  timeout -k 10 "$HARNESS_TIMEOUT" "$HERE/.work/checks" "$BOOTSTRAP" "$SCALE" 2>"$WORK/checks.log" | tee "$WORK/checks.out"
  rc=${PIPESTATUS[0]}
  set -e
  tally "$WORK/checks.out"
  if [ "$rc" != 0 ]; then
    record FAIL "harness compat/go/checks exited with status $rc (see the client log below)"
  fi
  if grep -q '^FAIL ' "$WORK/checks.out" || [ "$rc" != 0 ]; then
    say "--- client log of the failed checks ($WORK/checks.log)"
    grep -A 3 -E '^--- FAIL' "$WORK/checks.log" | cut -c1-2000 | head -n 60 >&2 || true
    tail -n 20 "$WORK/checks.log" >&2 || true
  fi
}
run_harness

# ---------------------------------------------------------------- 2: franz-go's own tests
mapfile -t TESTS < <(sed -nE 's/^(Test[A-Za-z0-9_]+)\s*(#.*)?$/\1/p' "$HERE/kgo-tests.txt")
sed -nE 's/^expect-skip\s+(\S+).*$/\1/p' "$HERE/kgo-tests.txt" >"$WORK/expect-skip.txt"
[ "${#TESTS[@]}" -gt 0 ] || setup_failed "kgo-tests.txt lists no test"

# run_kgo LABEL RECORDS TEST... [-- ENV=VALUE...]: runs the tests (and their subtests) with
# KGO_SEEDS at semel, their records bounded by RECORDS, and prints one line per test and subtest
# (`PASS LABEL name (Ns)` / `FAIL LABEL name: why`), in the order they finished. A listed test
# that did not run or that skipped is a failure (but for the expect-skip subtests of
# kgo-tests.txt: a `#` line), and so is a non-zero exit of the test binary.
run_kgo() {
  local label=$1 records=$2 rc
  shift 2
  local -a tests=() envs=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do tests+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  envs=("$@")
  local run
  run="^($(IFS='|'; echo "${tests[*]}"))\$"
  say "franz-go pkg/kgo ($label): ${#tests[@]} tests against $BOOTSTRAP (KGO_TEST_RECORDS=$records${envs[*]:+ ${envs[*]}})"
  set +e
  (
    cd "$SRC/pkg/kgo" &&
      env KGO_SEEDS="$BOOTSTRAP" KGO_TEST_RF=1 KGO_TEST_RECORDS="$records" KGO_TEST_UNSAFE=1 "${envs[@]}" \
        timeout -k 10 $((KGO_TIMEOUT + 60)) "$HERE/.work/kgo.test" -test.v=test2json -test.run "$run" \
        -test.timeout "${KGO_TIMEOUT}s" -test.count 1 2>"$WORK/$label.log" |
      go tool test2json -t -p kgo >"$WORK/$label.json"
  )
  rc=$?
  set -e
  python3 - "$WORK/$label.json" "$rc" "$WORK/expect-skip.txt" "$label" "${tests[@]}" >"$WORK/$label.out" <<'PY'
import json, re, sys

path, rc, label, listed = sys.argv[1], int(sys.argv[2]), sys.argv[4], sys.argv[5:]
expect_skip = set(open(sys.argv[3]).read().split())
out, done, order = {}, {}, []
text = open(path[:-len(".json")] + ".txt", "w")  # the tests' output (and franz-go's logs) as text
for line in open(path, errors="replace"):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    t, a = ev.get("Test"), ev.get("Action")
    if a == "output":
        text.write(ev.get("Output", ""))
    if not t:
        continue
    if a == "output":
        out.setdefault(t, []).append(ev.get("Output", ""))
    elif a in ("pass", "fail", "skip"):
        done[t] = (a, ev.get("Elapsed", 0))
        order.append(t)

def why(t):
    # the test's own t.Error / t.Fatal / t.Skip lines, else its last output lines
    lines = [l.strip() for l in out.get(t, [])]
    msgs = [l for l in lines if re.match(r"\S+_test\.go:\d+: ", l) and "deleting topic" not in l
            and "deleting group" not in l and "completed in" not in l]
    msgs = msgs or [l for l in lines if l and not l.startswith(("=== ", "--- "))][-3:]
    return (" | ".join(dict.fromkeys(msgs)) or "no output")[:600]

for t in order:
    a, el = done[t]
    if a == "pass":
        print(f"PASS {label} {t} ({el:.1f}s)")
    elif a == "skip" and t in expect_skip:
        print(f"# {label} {t} skipped itself, as expected ({why(t)})")
    elif a == "skip":
        print(f"FAIL {label} {t}: skipped ({why(t)})")
    else:
        print(f"FAIL {label} {t}: {why(t)} ({el:.1f}s)")
for t in listed:
    if t not in done:
        print(f"FAIL {label} {t}: " + (f"no result: the test binary exited with status {rc} while it ran" if t in out
                                       else "did not run (not in this franz-go version?)"))
if rc != 0 and all(done.get(t, ("fail",))[0] == "pass" for t in listed):
    print(f"FAIL {label} test binary exited with status {rc} with every listed test passed")
PY
  cat "$WORK/$label.out"
  tally "$WORK/$label.out"
  if grep -q '^FAIL ' "$WORK/$label.out"; then
    say "--- franz-go tests' output ($label): last lines ($WORK/$label.txt; stderr in $WORK/$label.log)"
    tail -n 30 "$WORK/$label.txt" | cut -c1-400 >&2 || true
    tail -n 10 "$WORK/$label.log" | cut -c1-400 >&2 || true
  fi
}

run_kgo kgo "$RECORDS" "${TESTS[@]}"
if [ "$FORM" = full ]; then
  # The chain of consumer groups again, with connections that the client's dialer cuts every
  # 0.5-1.5s (franz-go's KGO_TEST_CHAOS): retries, idempotent sequence rewinds, rejoins.
  run_kgo kgo-chaos "$CHAOS_RECORDS" TestGroupETL -- KGO_TEST_CHAOS=1
fi

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
