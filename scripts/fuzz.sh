#!/usr/bin/env bash
# Bounded fuzzing of the protocol edge (issue #13): runs each cargo-fuzz target of fuzz/ for
# FUZZ_SECONDS (default 60) and prints, per target, the executions and whether it crashed.
# Exits non-zero if any target found a crash (the input is in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh                  every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh request batch_framed
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz if it
# is missing. Seeds are generated at run time (fuzz/src/bin/gen_seeds.rs) into fuzz/corpus/,
# which, like fuzz/artifacts/, is not kept in git; the corpus grows across runs.
#
# Memory: libFuzzer fails an input that allocates more than 64 MB at once or makes the process
# exceed 1 GB; each target also fails an input whose peak of live bytes is more than a bound
# proportional to its size (fuzz/src/lib.rs).
# A crash is reproduced with `cargo +nightly fuzz run -a <target> fuzz/artifacts/<target>/<file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
ALL_TARGETS=(request request_api batch batch_framed records decompress)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# -a: debug assertions (integer overflow panics) as in the tests.
FUZZ=(cargo +nightly fuzz)
BUILD_FLAGS=(-a)
"${FUZZ[@]}" build "${BUILD_FLAGS[@]}"
BIN_DIR="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
"$BIN_DIR/gen_seeds" fuzz/corpus

LOG_DIR="fuzz/target/fuzz-logs"
mkdir -p "$LOG_DIR"
failed=0
summary=()
for target in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    log="$LOG_DIR/$target.log"
    echo "== $target: ${SECONDS_PER_TARGET} s"
    set +e
    "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=1024 -malloc_limit_mb=64 -max_len=8192 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        verdict="no crash"
    else
        verdict="CRASH (exit $rc), see $log and fuzz/artifacts/$target/"
        failed=1
        grep -E "panicked|ERROR: |SUMMARY|Test unit written" "$log" | head -5 || true
    fi
    summary+=("$(printf '%-13s %12s execs  corpus %6s  %s' "$target" "${execs:-?}" "$corpus" "$verdict")")
done
echo
echo "fuzz summary (${SECONDS_PER_TARGET} s per target; logs in $LOG_DIR):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
