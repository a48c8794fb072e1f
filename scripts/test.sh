#!/usr/bin/env bash
# The project's test command (README.md): unit and integration tests of every crate, lints,
# then the client compatibility suites in their bounded form.
#
#   scripts/test.sh            everything below
#   scripts/test.sh --rust     only the Rust tests and lints
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
echo "== compatibility suites"
cargo build -p semel --locked
bash compat/run-all.sh
echo "== the request layouts are what Kafka's specs say"
python3 scripts/gen-wire-schema.py --check
