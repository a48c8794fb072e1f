# shellcheck shell=bash
# Shared shell code of the compatibility suites (compat/*/run.sh). Not a suite itself, and not
# meant to be run: each run.sh sources it near its top, after `set -euo pipefail`:
#
#   HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
#   # shellcheck source-path=SCRIPTDIR source=../lib.sh
#   . "$HERE/../lib.sh"
#   compat_init SUITE
#
# A suite then installs its client, calls build_semel and start_semel, runs its checks
# (recording each with record, run_check or tally), and ends with
#
#   check_clean_shutdown
#   report_semel_warnings
#   finish
#
# which prints `N passed, M failed` and gives the script its exit status (non-zero if any
# check failed).
#
# The environment options every suite takes:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one (build_semel)
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   CARGO_TARGET_DIR           where cargo builds semel (default target/ at the repository root)
#
# Globals set here: SUITE, ROOT (the repository root), WORK (the run's temporary directory),
# PASSED / FAILED (the counts), LAST_STATUS (PASS or FAIL, of the last record), SEMEL (the
# binary), PORT / BOOTSTRAP (where semel listens), SEMEL_PID / SEMEL_RC (its process and, once
# stopped, its exit status), VENV (install_venv). A suite may set SEMEL_LOG_DEFAULT after
# compat_init: semel then runs with SEMEL_LOG=${SEMEL_LOG:-$SEMEL_LOG_DEFAULT} (see launch_semel).

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLEANUP_HOOKS=()

# compat_init SUITE: the suite's name (the prefix of its stderr lines), its counts, the run's
# temporary directory $WORK, and the traps: at exit, cleanup; on INT / TERM, exit 130 / 143
# (through cleanup).
compat_init() {
  SUITE=$1
  ROOT="$(cd "$COMPAT_DIR/.." && pwd)"
  PASSED=0
  FAILED=0
  LAST_STATUS=""
  SEMEL_PID=""
  SEMEL_RC=""
  SEMEL_LOG_DEFAULT=""
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/semel-compat-$SUITE.XXXXXX")"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------- output and counting

# say TEXT...: a progress or diagnostic line on stderr, prefixed with [SUITE].
say() { echo "[$SUITE] $*" >&2; }

record() { # record PASS|FAIL name-and-detail...: prints `PASS ...` / `FAIL ...` and counts it
  local status=$1
  shift
  # shellcheck disable=SC2034 # read by the suites (seed)
  LAST_STATUS=$status
  if [ "$status" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
  echo "$status $*"
}

# tally FILE: adds the `PASS ` and `FAIL ` lines a client harness wrote to FILE (and already
# printed) to the counts.
tally() {
  PASSED=$((PASSED + $(grep -c '^PASS ' "$1" || true)))
  FAILED=$((FAILED + $(grep -c '^FAIL ' "$1" || true)))
}

# summary: the final `N passed, M failed` line.
summary() { echo "$PASSED passed, $FAILED failed"; }

# setup_failed WHY...: records `FAIL setup: WHY`, prints the summary and exits 1.
setup_failed() {
  record FAIL "setup: $*"
  summary
  exit 1
}

# finish: the summary line, and a non-zero status if any check failed. The last command of a
# suite, so that its status is the script's.
finish() {
  summary
  [ "$FAILED" = 0 ]
}

# one_line TEXT: newlines and tabs to spaces, runs of spaces squeezed, no space at either end,
# at most 700 characters.
one_line() { printf '%s' "$1" | tr '\n\t' '  ' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-700; }

# semel_errors_since LINE [LEVELS [MAX]]: semel's log lines of the levels LEVELS (an
# alternation, default ERROR|WARN) logged after line LINE of $WORK/semel.log, without their
# timestamps, distinct, at most MAX (default 3), on one line.
semel_errors_since() {
  tail -n +"$(($1 + 1))" "$WORK/semel.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' |
    grep -E "^(${2:-ERROR|WARN})" | sort | uniq | head -n "${3:-3}" | tr '\n' ' ' || true
}

# run_check NAME FUNCTION ARGS...: runs FUNCTION ARGS (which prints one detail line, on success
# or on failure) and records `PASS NAME (DETAIL, Ns)`, or `FAIL NAME: DETAIL` followed by the
# broker's new warnings and errors.
run_check() {
  local name=$1
  shift
  local out rc=0 log_lines errors t0
  log_lines="$(wc -l <"$WORK/semel.log")"
  t0=$SECONDS
  out="$("$@" 2>&1)" || rc=$?
  out="$(one_line "$out")"
  if [ "$rc" = 0 ]; then
    record PASS "$name (${out:+$out, }$((SECONDS - t0))s)"
  else
    errors="$(semel_errors_since "$log_lines")"
    record FAIL "$name: ${out:-exit status $rc}${errors:+ || semel log: $errors}"
  fi
}

# ---------------------------------------------------------------- cleanup

# on_cleanup FUNCTION: run FUNCTION at exit, before semel is stopped (for the suite's own
# background processes).
on_cleanup() { CLEANUP_HOOKS+=("$1"); }

# cleanup (the EXIT trap): the hooks, stop_semel, then removes $WORK unless COMPAT_KEEP=1.
cleanup() {
  local hook
  for hook in "${CLEANUP_HOOKS[@]}"; do "$hook"; done
  stop_semel
  if [ "${COMPAT_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}

# ---------------------------------------------------------------- client install

# install_venv REQUIREMENT...: a virtualenv in $HERE/.venv (path in $VENV) holding the pinned
# REQUIREMENTS (name==version); pip runs only when one is missing or at another version.
# Setup fails if that does not work.
install_venv() {
  VENV="$HERE/.venv"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV"
    python3 -m venv "$VENV" || setup_failed "cannot install $* into $VENV"
  fi
  if "$VENV/bin/python" -c '
import sys, importlib.metadata as m
sys.exit(any(m.version(r.split("==")[0]) != r.split("==")[1] for r in sys.argv[1:]))' "$@" 2>/dev/null; then
    return 0
  fi
  say "installing $*"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2 ||
    setup_failed "cannot install $* into $VENV"
}

# apt_install WHAT PACKAGE...: apt-get install -y PACKAGES (WHAT names them in the progress
# line), with an apt-get update and a second try if the first fails. Returns apt-get's status.
apt_install() {
  local what=$1
  shift
  say "installing $what: apt-get install -y $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "$@" >&2 && return 0
  say "apt-get install failed; running apt-get update first"
  apt-get update >&2 && apt-get install -y "$@" >&2
}

java_major() { # the major version of the java on PATH, 0 if none
  java -XshowSettings:properties -version 2>&1 | sed -nE 's/^ *java\.specification\.version = ([0-9]+).*/\1/p' | head -n 1 | grep . || echo 0
}

# install_java17: Java 17+ (javac) and Maven, from apt-get when missing. Setup fails without.
install_java17() {
  if ! { command -v javac >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 && [ "$(java_major)" -ge 17 ]; }; then
    apt_install "Java 17 and Maven" openjdk-17-jdk-headless maven ||
      setup_failed "cannot install Java 17 and Maven with apt-get"
  fi
  [ "$(java_major)" -ge 17 ] || setup_failed "java on PATH is older than 17: $(java -version 2>&1 | head -n 1)"
}

# ---------------------------------------------------------------- the broker

# build_semel: $SEMEL is $SEMEL_BIN if set, else the debug binary `cargo build -p semel` builds
# (the existing one, with a warning, if the build fails). Setup fails if there is none.
build_semel() {
  local target_dir="${CARGO_TARGET_DIR:-target}"
  case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
  if [ -n "${SEMEL_BIN:-}" ]; then
    SEMEL="$SEMEL_BIN"
  else
    SEMEL="$target_dir/debug/semel"
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
}

# pick_port: a free port on 127.0.0.1 in $PORT, $BOOTSTRAP=127.0.0.1:$PORT, and the data dir
# $WORK/data.
pick_port() {
  PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
  BOOTSTRAP="127.0.0.1:$PORT"
  mkdir -p "$WORK/data"
}

# launch_semel OUT LOG: starts `semel serve` on $BOOTSTRAP with $WORK/data in the background
# (stdout to OUT, stderr, its log, to LOG; SEMEL_CONFIG and SEMEL_ADVERTISED unset; with
# SEMEL_LOG=${SEMEL_LOG:-$SEMEL_LOG_DEFAULT} if the suite set SEMEL_LOG_DEFAULT), $SEMEL_PID its
# pid, then waits for it: returns 0 once it logged `semel listening on` and accepts
# connections, 1 if it exited before (its log's tail on stderr), 2 if it did not within 60s.
launch_semel() {
  local out=$1 log=$2
  local -a env_args=(-u SEMEL_CONFIG -u SEMEL_ADVERTISED)
  if [ -n "${SEMEL_LOG_DEFAULT:-}" ]; then env_args+=(SEMEL_LOG="${SEMEL_LOG:-$SEMEL_LOG_DEFAULT}"); fi
  env "${env_args[@]}" "$SEMEL" serve --listen "$BOOTSTRAP" --data-dir "$WORK/data" >"$out" 2>"$log" &
  SEMEL_PID=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$SEMEL_PID" 2>/dev/null; then
      tail -n 30 "$log" >&2
      return 1
    fi
    if grep -q "semel listening on" "$out" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  return 2
}

# start_semel: pick_port, then launch_semel logging to $WORK/semel.out and $WORK/semel.log.
# Setup fails if semel does not accept connections.
start_semel() {
  local rc=0
  pick_port
  launch_semel "$WORK/semel.out" "$WORK/semel.log" || rc=$?
  case "$rc" in
    1) setup_failed "semel exited before accepting connections" ;;
    2) setup_failed "semel did not accept connections on $BOOTSTRAP within 60s" ;;
  esac
  say "semel (pid $SEMEL_PID) listening on $BOOTSTRAP, data in $WORK/data"
}

# stop_semel: SIGTERM to semel, SIGKILL if it is still running 15s later; its exit status in
# $SEMEL_RC. Nothing if it is not running.
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

# record_shutdown NAME WHY_IF_NOT_RUNNING: stops semel and records the check NAME: PASS if it
# exited 0 on SIGTERM, else FAIL with its exit status, or with WHY_IF_NOT_RUNNING when semel
# was no longer running.
record_shutdown() {
  local name=$1 dead=$2
  if [ -n "$SEMEL_PID" ] && kill -0 "$SEMEL_PID" 2>/dev/null; then
    stop_semel
    if [ "$SEMEL_RC" = 0 ]; then
      record PASS "$name"
    else
      record FAIL "$name: exit status $SEMEL_RC"
    fi
  else
    record FAIL "$name: $dead"
    stop_semel
  fi
}

# check_clean_shutdown: the final check of a suite, `semel shut down cleanly on SIGTERM`.
check_clean_shutdown() { record_shutdown "semel shut down cleanly on SIGTERM" "semel died during the checks"; }

# report_semel_warnings [LABEL LOG...]: if semel logged any WARN or ERROR line (in the LOGs,
# default $WORK/semel.log; LABEL names them), the 20 most frequent, counted, on stderr.
report_semel_warnings() {
  if [ "$#" = 0 ]; then set -- "$WORK/semel.log" "$WORK/semel.log"; fi
  local label=$1
  shift
  if grep -Eq ' (ERROR|WARN) ' <(sed 's/\x1b\[[0-9;]*m//g' "$@"); then
    say "--- semel warnings and errors ($label)"
    sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//; s/peer=[0-9.:]+/peer=*/' "$@" | grep -E '^(ERROR|WARN) ' |
      sort | uniq -c | sort -rn | head -n 20 >&2 || true
  fi
}

# run_python_checks SECONDS: runs the Python harness read from stdin with $VENV's python
# (arguments $BOOTSTRAP $WORK/data; bounded to SECONDS), its PASS/FAIL lines to stdout and
# $WORK/checks.out (counted), its stderr to $WORK/client.log, whose tail is shown if a check
# failed or the harness exited non-zero (which is recorded as a failure too).
run_python_checks() {
  local rc
  set +e
  timeout -k 10 "$1" "$VENV/bin/python" -u - "$BOOTSTRAP" "$WORK/data" 2>"$WORK/client.log" | tee "$WORK/checks.out"
  rc=${PIPESTATUS[0]}
  set -e
  tally "$WORK/checks.out"
  if [ "$rc" != 0 ]; then
    record FAIL "client harness exited with status $rc (see the client log below)"
  fi
  if [ "$FAILED" != 0 ] || [ "$rc" != 0 ]; then
    say "--- last lines of the client log ($WORK/client.log)"
    tail -n 40 "$WORK/client.log" >&2 || true
  fi
}
