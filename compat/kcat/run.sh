#!/usr/bin/env bash
# Compatibility suite: kcat (the Debian package) against semel.
#
# Installs kcat with apt-get when it is missing (Debian pins the version), builds
# semel with `cargo build -p semel`, starts it on a free port with a temporary data dir,
# runs the checks, prints one `PASS name` / `FAIL name: why` line per check and finally
# `N passed, M failed`. Exits non-zero if any check failed.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init kcat

# ---------------------------------------------------------------- client install
command -v kcat >/dev/null 2>&1 || apt_install kcat kcat || setup_failed "cannot install kcat with apt-get"

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

# ---------------------------------------------------------------- checks
KC=(timeout -k 5 60 kcat -b "$BOOTSTRAP")

# run_check "name" function args...: the function prints one detail line. kcat's own version
# of lib.sh's run_check: `PASS name (detail)` without the time, at most 600 characters of
# detail, and only the broker's new ERROR lines (at most 2) after a failure.
run_check() {
  local name=$1
  shift
  local out rc=0 log_lines errors
  log_lines="$(wc -l <"$WORK/semel.log")"
  out="$("$@" 2>&1)" || rc=$?
  out="$(printf '%s' "$out" | tr '\n' ' ' | sed 's/  */ /g; s/ $//' | cut -c1-600)"
  if [ "$rc" = 0 ]; then
    record PASS "$name${out:+ ($out)}"
  else
    errors="$(semel_errors_since "$log_lines" ERROR 2)"
    record FAIL "$name: ${out:-exit status $rc}${errors:+ || semel log: $errors}"
  fi
}

# kcat's own error lines from a stderr file, distinct (librdkafka's %N|... log lines dropped).
kcat_errors() { grep -E '^% (ERROR|Delivery failed)' "$1" | sort | uniq | head -n 3 || true; }

# Deterministic input: `key:value` lines with empty keys, empty values, values holding the
# delimiter, unicode, tabs and a few long values.
make_input() { # make_input codec count file
  python3 - "$1" "$2" >"$3" <<'PY'
import random, sys
codec, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(f"semel-kcat-{codec}")
for i in range(n):
    key = "" if i % 89 == 0 else f"key-{codec}-{i}"
    if i % 50 == 0:
        value = ""
    elif i % 70 == 0:
        value = f"has:colons:{i}:in:it"
    elif i % 100 == 1:
        value = f"long {i} " + "".join(rnd.choice("abcdefghij") for _ in range(5000))
    elif i % 30 == 0:
        value = f"ünïcødé ✓ {i}\ttab"
    else:
        value = f"value {i} of {codec} " * rnd.randint(1, 20)
    print(f"{key}:{value}")
PY
}

c_list() {
  local out
  out="$("${KC[@]}" -L 2>&1)" || { echo "kcat -L failed: $out"; return 1; }
  grep -Eq '^ *1 brokers:' <<<"$out" || { echo "no '1 brokers:' line in: $out"; return 1; }
  grep -Eq "broker [0-9]+ at 127\.0\.0\.1:$PORT" <<<"$out" || { echo "broker 127.0.0.1:$PORT not listed in: $out"; return 1; }
  grep -E "broker [0-9]+ at" <<<"$out" | sed 's/^ *//'
}

c_produce() { # c_produce codec
  local codec=$1 topic="kc-$1" err
  make_input "$codec" 1000 "$WORK/in-$codec.txt"
  if ! "${KC[@]}" -P -t "$topic" -p 0 -K: -z "$codec" -X acks=all -X enable.idempotence=false \
    <"$WORK/in-$codec.txt" 2>"$WORK/produce-$codec.err"; then
    echo "kcat -P exited non-zero: $(tail -n 5 "$WORK/produce-$codec.err")"
    return 1
  fi
  if grep -q 'ERROR\|Delivery failed' "$WORK/produce-$codec.err"; then
    echo "kcat -P reported: $(grep 'ERROR\|Delivery failed' "$WORK/produce-$codec.err" | head -n 3)"
    return 1
  fi
  echo "1000 lines to $topic [0]"
}

c_consume() { # c_consume codec [start]: start is `beginning` (ListOffsets, then Fetch) or 0
  local codec=$1 topic="kc-$1" start=${2:-beginning} rc=0
  [ -s "$WORK/in-$codec.txt" ] || { echo "no input (produce check failed)"; return 1; }
  "${KC[@]}" -C -t "$topic" -e -o "$start" -f '%k:%s\n' >"$WORK/out-$codec.txt" 2>"$WORK/consume-$codec.err" || rc=$?
  if cmp -s "$WORK/in-$codec.txt" "$WORK/out-$codec.txt"; then
    echo "1000 lines identical"
    return 0
  fi
  echo "kcat -C exit status $rc; read $(wc -l <"$WORK/out-$codec.txt") of 1000 lines;"
  if [ -s "$WORK/out-$codec.txt" ]; then
    echo "first difference: $(diff "$WORK/in-$codec.txt" "$WORK/out-$codec.txt" | head -n 3 | cut -c1-120)"
  fi
  echo "kcat said: $(kcat_errors "$WORK/consume-$codec.err")"
  return 1
}

c_codec_on_disk() { # c_codec_on_disk codec
  local codec=$1
  [ -s "$WORK/in-$codec.txt" ] || { echo "no input (produce check failed)"; return 1; }
  python3 - "$WORK/data/kc-$codec-0" "$codec" <<'PY'
import os, sys
d, codec = sys.argv[1], sys.argv[2]
ids = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
names = {v: k for k, v in ids.items()}
seen, recs = {}, {}  # codec id -> batches, records
for name in sorted(os.listdir(d)):
    if name.endswith(".log"):
        data = open(os.path.join(d, name), "rb").read()
        pos = 0
        while pos + 61 <= len(data):
            length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
            attrs = int.from_bytes(data[pos + 21:pos + 23], "big", signed=True)
            count = int.from_bytes(data[pos + 57:pos + 61], "big", signed=True)
            seen[attrs & 7] = seen.get(attrs & 7, 0) + 1
            recs[attrs & 7] = recs.get(attrs & 7, 0) + count
            pos += 12 + length
want = ids[codec]
total = sum(recs.values())
found = ", ".join(f"{n} batches ({recs[c]} records) {names.get(c, c)}" for c, n in sorted(seen.items()))
# Clients send a batch uncompressed when compression would not shrink it: tolerate a few records.
ok = total > 0 and not any(c not in (want, 0) for c in seen) and recs.get(want, 0) >= 0.9 * total
if not ok:
    hint = ""
    if codec == "lz4" and not seen.get(want):
        hint = (" -- librdkafka only uses lz4 when the broker advertises FindCoordinator (its proxy"
                " for the LZ4 feature) and silently sends uncompressed otherwise")
    print(f"stored: {found or 'nothing'}; expected {codec} (at most 10% of the records uncompressed){hint}")
    sys.exit(1)
print(found)
PY
}

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

c_query() {
  local topic=kc-query t_mid out off
  make_input query 200 "$WORK/in-query.txt"
  head -n 100 "$WORK/in-query.txt" | "${KC[@]}" -P -t "$topic" -p 0 -K: 2>"$WORK/query-p1.err" ||
    { echo "first produce failed: $(tail -n 3 "$WORK/query-p1.err")"; return 1; }
  sleep 1.2
  t_mid="$(now_ms)"
  sleep 0.2
  tail -n 100 "$WORK/in-query.txt" | "${KC[@]}" -P -t "$topic" -p 0 -K: 2>"$WORK/query-p2.err" ||
    { echo "second produce failed: $(tail -n 3 "$WORK/query-p2.err")"; return 1; }
  # timestamp between the two batches -> first offset of the second; -2 earliest; -1 latest
  local spec want fails="" got=""
  for spec in "$t_mid:100" "-2:0" "-1:200" "$(( t_mid - 3600000 )):0"; do
    want="${spec##*:}"
    out="$("${KC[@]}" -Q -t "$topic:0:${spec%:*}" 2>"$WORK/query.err")" || true
    off="$(sed -nE 's/.*\[0\] offset (-?[0-9]+).*/\1/p' <<<"$out" | head -n 1)"
    got="$got ts ${spec%:*} -> ${off:-?};"
    [ "$off" = "$want" ] || fails="$fails kcat -Q -t $topic:0:${spec%:*} expected offset $want, got: ${out:-nothing} $(kcat_errors "$WORK/query.err");"
  done
  if [ -n "$fails" ]; then echo "$fails"; return 1; fi
  echo "$got"
}

c_headers() {
  local out
  printf 'hk:hv\n' | "${KC[@]}" -P -t kc-headers -p 0 -K: -H a=1 -H b=two -H a=dup 2>"$WORK/headers.err" ||
    { echo "produce failed: $(tail -n 3 "$WORK/headers.err")"; return 1; }
  out="$("${KC[@]}" -C -t kc-headers -p 0 -o 0 -e -f '%k|%s|%h\n' 2>"$WORK/headers-c.err")" ||
    { echo "consume failed: $(grep -v 'Reached end' "$WORK/headers-c.err" | head -n 3)"; return 1; }
  [ "$out" = "hk|hv|a=1,b=two,a=dup" ] || { echo "read back '$out', expected 'hk|hv|a=1,b=two,a=dup'"; return 1; }
  echo "$out"
}

c_bad_partition() {
  local rc=0 err
  printf 'x:y\n' | "${KC[@]}" -P -t kc-gzip -p 7 -K: 2>"$WORK/badpart.err" || rc=$?
  err="$(grep -v '^%[0-9]|' "$WORK/badpart.err" | head -n 2)"
  [ "$rc" != 0 ] || { echo "kcat -P -p 7 to a 1-partition topic exited 0: $err"; return 1; }
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "kcat -P -p 7 hung (killed by timeout)"
    return 1
  fi
  "${KC[@]}" -L -t kc-gzip >/dev/null 2>&1 || { echo "broker unusable afterwards"; return 1; }
  echo "exit $rc: $err"
}

c_idempotent() {
  local topic=kc-idempotent rc=0
  make_input idempotent 1000 "$WORK/in-idempotent.txt"
  if ! "${KC[@]}" -P -t "$topic" -p 0 -K: -X enable.idempotence=true \
    <"$WORK/in-idempotent.txt" 2>"$WORK/produce-idempotent.err"; then
    echo "kcat -P exited non-zero: $(tail -n 5 "$WORK/produce-idempotent.err")"
    return 1
  fi
  if grep -q 'ERROR\|Delivery failed' "$WORK/produce-idempotent.err"; then
    echo "kcat -P reported: $(grep 'ERROR\|Delivery failed' "$WORK/produce-idempotent.err" | head -n 3)"
    return 1
  fi
  "${KC[@]}" -C -t "$topic" -e -o beginning -f '%k:%s\n' >"$WORK/out-idempotent.txt" 2>"$WORK/consume-idempotent.err" || rc=$?
  if ! cmp -s "$WORK/in-idempotent.txt" "$WORK/out-idempotent.txt"; then
    echo "kcat -C exit status $rc; read $(wc -l <"$WORK/out-idempotent.txt") of 1000 lines;"
    echo "first difference: $(diff "$WORK/in-idempotent.txt" "$WORK/out-idempotent.txt" | head -n 3 | cut -c1-120)"
    echo "kcat said: $(kcat_errors "$WORK/consume-idempotent.err")"
    return 1
  fi
  # Idempotence really was used: the stored batches carry a producer id (byte 43 of the batch
  # header, i64) and the base sequences (byte 53, i32) follow each other from 0.
  python3 - "$WORK/data/$topic-0" <<'PY'
import os, sys
d = sys.argv[1]
batches = []
for name in sorted(os.listdir(d)):
    if name.endswith(".log"):
        data = open(os.path.join(d, name), "rb").read()
        pos = 0
        while pos + 61 <= len(data):
            length = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
            batches.append((int.from_bytes(data[pos + 43:pos + 51], "big", signed=True),
                            int.from_bytes(data[pos + 51:pos + 53], "big", signed=True),
                            int.from_bytes(data[pos + 53:pos + 57], "big", signed=True),
                            int.from_bytes(data[pos + 57:pos + 61], "big", signed=True)))
            pos += 12 + length
ids = sorted({(pid, epoch) for pid, epoch, _, _ in batches})
seq, bad = 0, []
for _, _, base_seq, count in batches:
    if base_seq != seq:
        bad.append((base_seq, seq))
    seq += count
if len(ids) != 1 or ids[0][0] < 0 or bad or seq != 1000:
    print(f"1000 lines identical, but stored (producer_id, epoch) = {ids[:5]}, "
          f"(base_sequence, expected) mismatches = {bad[:5]}, {seq} records")
    sys.exit(1)
print(f"1000 lines identical; {len(batches)} batches with producer id {ids[0][0]} epoch {ids[0][1]}, gapless sequences")
PY
}

echo "# kcat $(kcat -V 2>&1 | sed -nE 's/^Version ([^ ]+).*librdkafka ([^ ]+).*/\1, librdkafka \2/p') (Debian kcat $(dpkg-query -W -f='${Version}' kcat 2>/dev/null || echo '?'))"
run_check "kcat -L lists the broker" c_list
for codec in none gzip snappy lz4 zstd; do
  run_check "kcat -P -K: -z $codec 1000 lines" c_produce "$codec"
done
for codec in none gzip snappy lz4 zstd; do
  run_check "kcat -C -e -o beginning -f '%k:%s\\n' compression=$codec matches the input exactly" c_consume "$codec"
done
# The same with an explicit start offset: no ListOffsets request, Fetch alone.
for codec in none gzip snappy lz4 zstd; do
  run_check "kcat -C -e -o 0 -f '%k:%s\\n' compression=$codec matches the input exactly" c_consume "$codec" 0
done
for codec in gzip snappy lz4 zstd; do
  run_check "batches stored with compression=$codec (codec really used on the wire)" c_codec_on_disk "$codec"
done
run_check "kcat -Q offsets by timestamp (and -2/-1)" c_query
run_check "headers -H round-trip (-o 0 -f %h)" c_headers
run_check "kcat -P to a non-existent partition fails cleanly" c_bad_partition
run_check "kcat -P -X enable.idempotence=true 1000 lines read back exactly (producer id on the batches)" c_idempotent

if [ "$FAILED" != 0 ]; then
  say "kcat's stderr of each step is in $WORK/*.err (removed at exit unless COMPAT_KEEP=1)"
fi

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
