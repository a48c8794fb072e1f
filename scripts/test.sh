#!/usr/bin/env bash
# The project's test command (README.md): unit and integration tests of every crate, lints,
# the toolkit's acceptance tests again against Apache Kafka, then the client compatibility
# suites in their bounded form.
#
#   scripts/test.sh            everything below
#   scripts/test.sh --rust     only the Rust tests (against semel) and lints
#   SEMEL_COMPAT_FULL=1 ...    compatibility suites in their full form (when a suite has one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rust_only=0
[ "${1:-}" = "--rust" ] && rust_only=1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked

if [ "$rust_only" = 1 ]; then
  exit 0
fi
echo "== the toolkit's acceptance tests against Apache Kafka (scripts/kafka.sh: single-node KRaft)"
# The same tests as above with the other broker; the crash test's bounded form with 4 kills.
SEMEL_TEST_BROKER=kafka cargo test --locked -p semel-eos --test processor --test session
SEMEL_TEST_BROKER=kafka SEMEL_PROCESSOR_CRASH_KILLS="${SEMEL_PROCESSOR_CRASH_KILLS:-4}" \
  cargo test --locked -p semel --test processor_crash --test processor_zombie
echo "== compatibility suites"
cargo build -p semel --locked
bash compat/run-all.sh
echo "== the request layouts are what Kafka's specs say"
python3 scripts/gen-wire-schema.py --check
