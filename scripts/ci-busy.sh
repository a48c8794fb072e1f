#!/usr/bin/env bash
# Runs CI as CI runs it (`CI=true bash .ci/run` in a fresh clone of a commit) while the machine
# is kept busy by other work, and prints how long it took. This is how we check that no test
# depends on timing luck: CI runs on a machine that nothing guarantees is idle.
#
#   scripts/ci-busy.sh [--cold] [--load N] [COMMIT]
#
#   --cold     empty the caches first: the cargo target dir CI uses ($CARGO_TARGET_DIR, default
#              ~/.cache/semel-target) and the suites' caches (~/.cache/semel-compat); a fresh
#              clone has no suite venvs. Downloads (~/.cargo/registry, ~/.m2, npm, pip, Go) stay.
#   --load N   N busy processes beside the run (default: one per core)
#   COMMIT     what to clone (default: HEAD of this repository)
#
# The clone and the log are kept in a temporary directory (printed at the start); the exit
# status is the CI run's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cold=0
load="$(nproc)"
commit=HEAD
while [ "$#" -gt 0 ]; do
  case "$1" in
    --cold) cold=1 ;;
    --load) load="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) commit="$1" ;;
  esac
  shift
done

commit="$(git rev-parse "$commit")"
work="$(mktemp -d "${TMPDIR:-/tmp}/semel-ci-busy.XXXXXX")"
echo "ci-busy: commit $commit, load $load, cold $cold, in $work"
git clone -q --no-local "$PWD" "$work/clone"
git -C "$work/clone" checkout -q "$commit"

if [ "$cold" = 1 ]; then
  rm -rf "${CARGO_TARGET_DIR:-$HOME/.cache/semel-target}" "$HOME/.cache/semel-compat"
fi

pids=()
stop_load() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_load EXIT
for _ in $(seq "$load"); do
  # A shell loop that never sleeps: one busy core each, stopped at exit.
  bash -c 'while :; do :; done' &
  pids+=("$!")
done

start=$(date +%s)
rc=0
(cd "$work/clone" && CI=true bash .ci/run </dev/null) >"$work/ci.log" 2>&1 || rc=$?
end=$(date +%s)
stop_load
trap - EXIT

tail -n 25 "$work/ci.log"
echo "ci-busy: exit $rc after $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s (log: $work/ci.log)"
exit "$rc"
