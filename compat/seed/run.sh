#!/usr/bin/env bash
# Compatibility suite: the example programs of the seed document
# shared/seed/exactly-once-processing-end-to-end.md ("Exactly-Once Processing End-to-End"),
# a transactional producer and a consumer with manual commits, each in Java, Scala, Kotlin and
# Clojure, compiled and run as written (the changes, all small, are listed in README.md)
# against semel with kafka-clients.
#
# Needs Java 17+ and Maven (installed with apt-get when missing); Maven downloads the pinned
# artifacts of compat/seed/pom.xml (kafka-clients, the Scala and Kotlin compilers through
# their Maven plugins, the Clojure jar) into ~/.m2 and compiles the modules java/, scala/,
# kotlin/ and check/ (the suite's own checker, semel.seed.SeedCheck) into the run's temporary
# directory; the Clojure programs run from source with
# `java -cp clojure/src/main/clojure:<classpath> clojure.main -m NAMESPACE`. The seed's own
# programs are listed, with every change made to them, in compat/seed/README.md.
# Builds semel with `cargo build -p semel`, starts it (SEMEL_LOG=info) on a free port with a
# temporary data dir, creates the topic the programs use (my-topic, 1 partition), then for
# each language in turn:
#   - starts its ExactlyOnceConsumer (group transactional-consumer-group, bounded to 1 record
#     or 300 s: it must outlast its own start, the wait below and the producer's run, JVMs all,
#     on a busy machine too) in the background and waits until it owns my-topic-0 with a
#     committed offset
#     (the seed's consumer keeps auto.offset.reset=latest: the first one has to be positioned
#     before the record is produced; the later ones start at the group's committed offset),
#   - runs its ExactlyOnceProducer (transactional id transactional-producer-1, one record
#     key/value to my-topic in one transaction),
#   - checks: the producer exits 0 with no error logged; read_committed and read_uncommitted
#     consumers both see exactly one more committed record key=value, and the last stable
#     offset is the high watermark; DescribeTransactions / ListTransactions show the
#     transactional id CompleteCommit with no partitions and, from the second program on, the
#     same producer id with a higher epoch (each initTransactions fences the one before); the
#     consumer prints exactly "Consumed record with key key and value value"; after it closed
#     the group is Empty and its committed offset is past the record.
# One `PASS name` / `FAIL name: why` line per check, then `N passed, M failed`; exits non-zero
# if any check failed.
#
# Environment:
#   SEMEL_BIN=/path/to/semel   use this binary instead of building one
#   COMPAT_KEEP=1              keep the temporary data dir and logs (path printed at exit)
#   SEMEL_LOG                  semel's log filter (default info)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$HERE/../lib.sh"
compat_init seed
SEMEL_LOG_DEFAULT=info
CONSUMER_PID=""

stop_consumer() {
  [ -n "$CONSUMER_PID" ] || return 0
  kill -TERM "$CONSUMER_PID" 2>/dev/null || true
  wait "$CONSUMER_PID" 2>/dev/null || true
  CONSUMER_PID=""
}

on_cleanup stop_consumer

# ---------------------------------------------------------------- client install and build
install_java17

pom_property() { sed -nE "s|.*<$1>([^<]+)</$1>.*|\1|p" "$HERE/pom.xml" | head -n 1; }

# Builds into $WORK/build (one directory per module, named after its artifactId), so that
# runs at once do not share classes: writes each module's runtime classpath to
# $WORK/build/MODULE/classpath.txt, then compiles it (--fail-at-end: one language that does
# not compile does not stop the others).
BUILD="$WORK/build"
say "mvn dependency:build-classpath compile (compat/seed/pom.xml, into $BUILD)"
mvn_rc=0
timeout -k 10 900 mvn -B -f "$HERE/pom.xml" --fail-at-end -Dseed.build.root="$BUILD" dependency:build-classpath compile \
  >"$WORK/mvn.log" 2>&1 || mvn_rc=$?
if [ "$mvn_rc" != 0 ]; then
  say "mvn exited with status $mvn_rc; its errors:"
  sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/mvn.log" | grep -E '^\[ERROR\]' | awk '!seen[$0]++' | head -n 40 >&2 || true
fi
[ -s "$BUILD/seed-check/classpath.txt" ] && [ -f "$BUILD/seed-check/classes/semel/seed/SeedCheck.class" ] ||
  setup_failed "mvn could not build the checker (compat/seed/check); see the Maven errors above"

# The classpath of a module (kafka-clients, slf4j-simple, the language's runtime), empty if
# Maven did not get that far.
module_cp() { [ -s "$BUILD/seed-$1/classpath.txt" ] && cat "$BUILD/seed-$1/classpath.txt" || true; }
CHECK_CP="$BUILD/seed-check/classes:$(module_cp check)"

# ---------------------------------------------------------------- broker build and start
build_semel
start_semel

echo "# kafka-clients $(pom_property kafka.version), Scala $(pom_property scala.version) (scala-maven-plugin $(pom_property scala-maven-plugin.version)), Kotlin $(pom_property kotlin.version), Clojure $(pom_property clojure.version) (Maven Central); $(java -version 2>&1 | head -n 1), $(mvn -v 2>/dev/null | sed -E 's/\x1b\[[0-9;]*m//g' | head -n 1)"

# ---------------------------------------------------------------- helpers
# The JVM options of every program (not part of the programs): quick start-up, the client's
# WARN and ERROR lines on stderr.
JVM=(java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)

check() { timeout -k 5 180 "${JVM[@]}" -cp "$CHECK_CP" semel.seed.SeedCheck "$1" "$BOOTSTRAP" "${@:2}" 2>>"$WORK/check.err"; }

# The client's own complaints: stderr lines with ERROR or an exception, at most 4.
client_errors() { grep -E 'ERROR|Exception|^\s*at ' "$1" | grep -v '^\s*at ' | head -n 4 || true; }

# program LANG producer|consumer: the command that runs that seed program
program() {
  local lang=$1 role=$2 cp
  cp="$(module_cp "$lang")"
  case "$lang:$role" in
    java:producer | scala:producer) echo "${JVM[*]} -cp $BUILD/seed-$lang/classes:$cp ExactlyOnceProducer" ;;
    java:consumer | scala:consumer) echo "${JVM[*]} -cp $BUILD/seed-$lang/classes:$cp ExactlyOnceConsumer" ;;
    kotlin:producer) echo "${JVM[*]} -cp $BUILD/seed-kotlin/classes:$cp ExactlyOnceProducerKt" ;;
    kotlin:consumer) echo "${JVM[*]} -cp $BUILD/seed-kotlin/classes:$cp ExactlyOnceConsumerKt" ;;
    clojure:producer) echo "${JVM[*]} -cp $HERE/clojure/src/main/clojure:$cp clojure.main -m exactly-once-producer" ;;
    clojure:consumer) echo "${JVM[*]} -cp $HERE/clojure/src/main/clojure:$cp clojure.main -m exactly-once-consumer" ;;
  esac
}

# ---------------------------------------------------------------- compilation
t_compiled() {
  local lang=$1 f
  local -a want
  case "$lang" in
    java | scala) want=(ExactlyOnceProducer.class ExactlyOnceConsumer.class) ;;
    kotlin) want=(ExactlyOnceProducerKt.class ExactlyOnceConsumerKt.class) ;;
  esac
  [ -s "$BUILD/seed-$lang/classpath.txt" ] || { echo "Maven did not resolve the module's dependencies"; return 1; }
  if [ "$lang" = clojure ]; then
    # Clojure compiles a namespace when it loads it: load both, run nothing.
    local out rc=0
    out="$(timeout -k 5 60 "${JVM[@]}" -cp "$HERE/clojure/src/main/clojure:$(module_cp clojure)" clojure.main \
      -e "(require 'exactly-once-producer 'exactly-once-consumer) (println \"loaded\")" 2>&1)" || rc=$?
    [ "$rc" = 0 ] && [ "$(tail -n 1 <<<"$out")" = loaded ] || { echo "loading the namespaces failed (status $rc): $out"; return 1; }
    echo "both namespaces load (compile) with clojure.main"
    return 0
  fi
  for f in "${want[@]}"; do
    [ -f "$BUILD/seed-$lang/classes/$f" ] || {
      echo "no $f; Maven errors: $(sed -E 's/\x1b\[[0-9;]*m//g' "$WORK/mvn.log" | grep -E "^\[ERROR\] .*/$lang/" | awk '!seen[$0]++' | head -n 4)"
      return 1
    }
  done
  echo "${want[*]}"
}

LANGS=(java scala kotlin clojure)
declare -A COMPILED=()
for lang in "${LANGS[@]}"; do
  run_check "$lang: the seed's two programs compile" t_compiled "$lang"
  if [ "$LAST_STATUS" = PASS ]; then COMPILED[$lang]=1; fi
done

# ---------------------------------------------------------------- the programs, language by language
TOPIC=my-topic
GROUP=transactional-consumer-group
TXN_ID=transactional-producer-1
check create-topic "$TOPIC" 1 >"$WORK/create-topic.out" ||
  setup_failed "creating $TOPIC: $(one_line "$(cat "$WORK/create-topic.out")")"

PREV_PID=-1
PREV_EPOCH=-1
COMMITTED=0 # records the producers committed so far

t_consumer_joined() { check await-member "$GROUP" "$TOPIC" 120000; }

t_producer_ran() {
  local lang=$1 rc=0 errs
  # shellcheck disable=SC2046
  BOOTSTRAP_SERVERS="$BOOTSTRAP" timeout -k 5 90 $(program "$lang" producer) \
    >"$WORK/$lang-producer.out" 2>"$WORK/$lang-producer.err" || rc=$?
  errs="$(client_errors "$WORK/$lang-producer.err")"
  if [ "$rc" != 0 ] || [ -n "$errs" ]; then
    echo "exit status $rc$([ "$rc" = 124 ] && echo ' (killed by timeout)'); stderr: $(grep -v '^\s*at ' "$WORK/$lang-producer.err" | tail -n 6)"
    return 1
  fi
  echo "exit status 0, nothing printed$([ -s "$WORK/$lang-producer.err" ] && echo "; client warnings: $(head -n 3 "$WORK/$lang-producer.err")")"
}

t_topic() { check topic "$TOPIC" "$COMMITTED"; }

t_txn() {
  local out rc=0
  out="$(check txn "$TXN_ID" "$PREV_PID" "$PREV_EPOCH")" || rc=$?
  echo "$out"
  local pid epoch
  pid="$(sed -nE 's/^pid=([0-9-]+) epoch=([0-9-]+) .*/\1/p' <<<"$out")"
  epoch="$(sed -nE 's/^pid=([0-9-]+) epoch=([0-9-]+) .*/\2/p' <<<"$out")"
  [ -n "$pid" ] && echo "$pid $epoch" >"$WORK/txn.last"
  return "$rc"
}

t_consumer_printed() { # t_consumer_printed LANG EXIT_STATUS
  local lang=$1 rc=$2 errs expected="Consumed record with key key and value value"
  errs="$(client_errors "$WORK/$lang-consumer.err")"
  if [ "$rc" != 0 ] || [ -n "$errs" ]; then
    echo "exit status $rc$([ "$rc" = 124 ] && echo ' (killed by timeout)'); stdout: $(head -n 3 "$WORK/$lang-consumer.out"); stderr: $(grep -v '^\s*at ' "$WORK/$lang-consumer.err" | tail -n 6)"
    return 1
  fi
  if [ "$(cat "$WORK/$lang-consumer.out")" != "$expected" ]; then
    echo "expected exactly the line '$expected', printed: '$(head -n 5 "$WORK/$lang-consumer.out")' ($(wc -l <"$WORK/$lang-consumer.out") lines)"
    return 1
  fi
  echo "printed '$expected', exit status 0$([ -s "$WORK/$lang-consumer.err" ] && echo "; client warnings: $(head -n 3 "$WORK/$lang-consumer.err")")"
}

t_group() { check group "$GROUP" "$TOPIC"; }

t_not_built() { echo "not run: the $1 programs did not compile"; return 1; }

N_JOIN="ExactlyOnceConsumer joins $GROUP and owns $TOPIC-0"
N_PRODUCER="ExactlyOnceProducer runs (initTransactions, one transaction, close)"
N_TOPIC="its transaction is committed: one more record key=value for read_committed and read_uncommitted, LSO = HW"
N_TXN="DescribeTransactions/ListTransactions: $TXN_ID CompleteCommit, no partitions, same producer id with a higher epoch than the previous program's"
N_CONSUMER="ExactlyOnceConsumer prints the record and exits"
N_GROUP="after ExactlyOnceConsumer closed: group Empty, committed offset past the record"

for lang in "${LANGS[@]}"; do
  if [ "${COMPILED[$lang]:-0}" != 1 ]; then
    for name in "$N_JOIN" "$N_PRODUCER" "$N_TOPIC" "$N_TXN" "$N_CONSUMER" "$N_GROUP"; do
      run_check "$lang: $name" t_not_built "$lang"
    done
    continue
  fi
  say "$lang: ExactlyOnceConsumer in the background, then ExactlyOnceProducer"
  # shellcheck disable=SC2046
  BOOTSTRAP_SERVERS="$BOOTSTRAP" SEED_MAX_RECORDS=1 SEED_MAX_SECONDS=300 timeout -k 5 330 $(program "$lang" consumer) \
    >"$WORK/$lang-consumer.out" 2>"$WORK/$lang-consumer.err" &
  CONSUMER_PID=$!
  run_check "$lang: $N_JOIN" t_consumer_joined
  COMMITTED=$((COMMITTED + 1))
  run_check "$lang: $N_PRODUCER" t_producer_ran "$lang"
  run_check "$lang: $N_TOPIC" t_topic
  rm -f "$WORK/txn.last"
  run_check "$lang: $N_TXN" t_txn
  if [ -s "$WORK/txn.last" ]; then read -r PREV_PID PREV_EPOCH <"$WORK/txn.last"; fi
  consumer_rc=0
  wait "$CONSUMER_PID" || consumer_rc=$?
  CONSUMER_PID=""
  run_check "$lang: $N_CONSUMER" t_consumer_printed "$lang" "$consumer_rc"
  run_check "$lang: $N_GROUP" t_group
done

if [ "$FAILED" != 0 ]; then
  say "the programs' stdout and stderr are in $WORK/LANG-{producer,consumer}.{out,err}, the checker's stderr in $WORK/check.err, semel's log in $WORK/semel.log (removed at exit unless COMPAT_KEEP=1)"
fi

# ---------------------------------------------------------------- broker health and shutdown
check_clean_shutdown
report_semel_warnings
finish
