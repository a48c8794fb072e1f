#!/usr/bin/env bash
# Runs every compatibility suite (compat/*/run.sh, or only the suites named as arguments),
# prints a table of suite / passed / failed and a final `N passed, M failed` line that sums
# them. Exits non-zero if any suite failed.
#
#   compat/run-all.sh [--full] [SUITE...]
#
# By default every suite runs in its bounded form (what CI runs); --full sets COMPAT_FULL=1,
# which makes each suite run its full form (more records, every allowlisted test).
set -euo pipefail

if [ "${1:-}" = "--full" ]; then
  export COMPAT_FULL=1
  shift
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOGS="$(mktemp -d "${TMPDIR:-/tmp}/semel-compat-all.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT

suites=()
if [ "$#" -gt 0 ]; then
  suites=("$@")
else
  for script in "$HERE"/*/run.sh; do
    suites+=("$(basename "$(dirname "$script")")")
  done
fi

total_passed=0
total_failed=0
any_failed=0
rows=()
for suite in "${suites[@]}"; do
  script="$HERE/$suite/run.sh"
  log="$LOGS/$suite.log"
  echo "=== $suite"
  rc=0
  if [ ! -f "$script" ]; then
    echo "no such suite: $script" | tee "$log"
    rc=127
  else
    set +e
    # Every line of the suite prefixed with its name (its stderr lines already carry it).
    bash "$script" 2>&1 | tee "$log" | sed -u "s/^\[$suite\] //; s/^/[$suite] /"
    rc=${PIPESTATUS[0]}
    set -e
  fi
  line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)"
  if [ -n "$line" ]; then
    passed="${line%% passed*}"
    failed="${line#*passed, }"
    failed="${failed%% failed*}"
  else
    passed=0
    failed=1 # the suite died before its summary
  fi
  if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
    failed=1 # non-zero exit with no failed check counted: count the suite itself
  fi
  status=PASS
  if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then
    status=FAIL
    any_failed=1
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  rows+=("$(printf '%-24s %7s %7s  %s' "$suite" "$passed" "$failed" "$status")")
done

echo
printf '%-24s %7s %7s  %s\n' suite passed failed status
for row in "${rows[@]}"; do
  echo "$row"
done
echo
echo "$total_passed passed, $total_failed failed"
[ "$any_failed" = 0 ]
