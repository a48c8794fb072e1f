#!/usr/bin/env python3
"""Turns the output of one libtest binary (`cargo test --test BINARY -- ...`) into one
`PASS BINARY::name` / `FAIL BINARY::name: why` line per test that was meant to run.

usage: parse_libtest.py BINARY OUTPUT EXPECTED EXIT_STATUS

OUTPUT is the binary's captured stdout and stderr; EXPECTED lists the names of the tests that
were meant to run, one a line (the binary's `--list`, less the excluded ones); EXIT_STATUS is
the status of the run (124 when `timeout` stopped it). A test meant to run with no result line
fails (the binary crashed, hung or was stopped). A result for a test that was not meant to run
fails too (the exclusion did not work). Reasons are taken from the test's `---- name stdout
----` section: the panic location and message, or the `Error: ...` line a test returning
Result printed."""
import re
import sys

binary, output_path, expected_path, status = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(output_path, errors="replace") as f:
    lines = f.read().splitlines()
with open(expected_path) as f:
    expected = [l.strip() for l in f if l.strip()]

RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b")
results = {}
for line in lines:
    m = RESULT.match(line)
    if m:
        results[m.group(1)] = m.group(2)

# The failure sections: `---- name stdout ----` up to the next `---- ` header or the final
# `failures:` list.
sections = {}
current = None
for line in lines:
    m = re.match(r"^---- (\S+) stdout ----$", line)
    if m:
        current = m.group(1)
        sections[current] = []
        continue
    if current is not None and (line == "failures:" or line.startswith("test result:")):
        current = None
        continue
    if current is not None:
        sections[current].append(line)


def reason(name):
    body = sections.get(name, [])
    for i, line in enumerate(body):
        m = re.match(r"^thread '[^']*' \(?\d*\)? ?panicked at (.*):$", line) or \
            re.match(r"^thread '[^']*' panicked at (.*):$", line)
        if m:
            msg = []
            for more in body[i + 1:]:
                if more.startswith("note: run with") or more.startswith("stack backtrace:"):
                    break
                msg.append(more.strip())
            return f"panicked at {m.group(1)}: {' '.join(x for x in msg if x)}"
    errors = [l for l in body if l.startswith("Error: ")]
    if errors:
        return errors[-1]
    return "no panic message in the output"


def one_line(text):
    return re.sub(r"\s+", " ", text).strip()[:700]


why_missing = ("the test binary was stopped by the suite's timeout" if status == 124
               else f"the test binary exited with status {status}")
for name in expected:
    res = results.get(name)
    if res == "ok":
        print(f"PASS {binary}::{name}")
    elif res == "FAILED":
        print(f"FAIL {binary}::{name}: {one_line(reason(name))}")
    elif res == "ignored":
        print(f"FAIL {binary}::{name}: reported as ignored (#[ignore] in the test source)")
    else:
        print(f"FAIL {binary}::{name}: no result ({why_missing} before the test finished)")
for name in sorted(set(results) - set(expected)):
    print(f"FAIL {binary}::{name}: ran although excluded ({results[name]})")
