#!/usr/bin/env bash
# Apache Kafka from its Maven Central jars, for tests and benchmarks that run the same thing
# against semel and against Kafka. One place for it: the Rust test harness, bench/run.sh and
# bench/processor.sh all go through this script.
#
#   scripts/kafka.sh install              fetches the jars (once; cached), prints the libs dir
#   scripts/kafka.sh prepare DIR PORT     a single-node KRaft broker+controller listening on
#                                         127.0.0.1:PORT: DIR/server.properties, storage formatted
#   scripts/kafka.sh run DIR              execs that broker in the foreground (the caller owns the
#                                         process: it can kill -9 it and run it again on DIR)
#   scripts/kafka.sh tool CLASS ARG...    runs a Kafka tool class (TopicCommand, ...) in the
#                                         foreground, logging to stderr at warn
#
# Sourced (`source scripts/kafka.sh`), it defines the same as functions: kafka_install,
# kafka_prepare, kafka_run, kafka_class, and kafka_free_port.
#
# Environment: KAFKA_VERSION (default 4.4.0), SEMEL_KAFKA_CACHE (default ~/.cache/semel-kafka),
# KAFKA_HEAP_OPTS (default -Xmx512M -Xms512M), KAFKA_LOG_LEVEL (broker log level, default warn),
# KAFKA_EXTRA_PROPERTIES (lines appended to server.properties by prepare).
# Needs java (>= 17), mvn (for the first install) and python3.

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
SEMEL_KAFKA_CACHE=${SEMEL_KAFKA_CACHE:-$HOME/.cache/semel-kafka}
KAFKA_DIR=$SEMEL_KAFKA_CACHE/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_DIR/libs
# What kafka-server-start.sh / kafka-run-class.sh use.
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-"-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true"}

kafka_log() { printf '[kafka.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# kafka_install: kafka_2.13 (the broker) and kafka-tools (ProducerPerformance, TopicCommand)
# with their runtime dependencies, copied into $KAFKA_LIBS; a log4j2 configuration beside them.
kafka_install() {
  if [[ -f $KAFKA_DIR/.complete ]]; then
    return 0
  fi
  local tool
  for tool in java mvn python3; do
    command -v "$tool" >/dev/null || { kafka_log "$tool is not installed: Apache Kafka's jars need it"; return 1; }
  done
  kafka_log "Apache Kafka $KAFKA_VERSION: fetching the jars from Maven Central into $KAFKA_LIBS"
  rm -rf "$KAFKA_DIR"
  mkdir -p "$KAFKA_DIR"
  cat >"$KAFKA_DIR/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>semel.harness</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- The distribution's logging binding (slf4j 1.7 to log4j2), so the broker log is written. -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
  if ! (cd "$KAFKA_DIR" && mvn -B -q -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$KAFKA_LIBS") >"$KAFKA_DIR/mvn.log" 2>&1; then
    tail -n 30 "$KAFKA_DIR/mvn.log" >&2
    kafka_log "cannot fetch Apache Kafka $KAFKA_VERSION from Maven Central (log: $KAFKA_DIR/mvn.log)"
    return 1
  fi
  if [[ ! -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    kafka_log "kafka_2.13-$KAFKA_VERSION.jar is missing after mvn"
    return 1
  fi
  # The storage formatting tool moved from core (Scala) to the tools module over the 4.x releases.
  python3 - "$KAFKA_LIBS" >"$KAFKA_DIR/storage-tool" <<'EOF' || return 1
import glob, sys, zipfile
for cls in ("kafka/tools/StorageTool.class", "org/apache/kafka/tools/StorageTool.class"):
    for jar in glob.glob(sys.argv[1] + "/*.jar"):
        if cls in zipfile.ZipFile(jar).namelist():
            print(cls[:-len(".class")].replace("/", ".")); sys.exit(0)
sys.exit("no StorageTool class in the Kafka jars")
EOF
  # The log file and the level come from system properties, so one file serves every process.
  cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:semel.kafka.log.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:semel.kafka.log.level:-warn}
rootLogger.appenderRef.file.ref = file
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
EOF
  touch "$KAFKA_DIR/.complete"
}

# kafka_class CLASS ARG...: a Kafka class on the jars; its log goes to $KAFKA_TOOL_LOG (default
# /dev/stderr) at $KAFKA_LOG_LEVEL.
kafka_class() {
  java -Xmx512M -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
    -Dsemel.kafka.log.file="${KAFKA_TOOL_LOG:-/dev/stderr}" -Dsemel.kafka.log.level="${KAFKA_LOG_LEVEL:-warn}" "$@"
}

# kafka_free_port: a free loopback port.
kafka_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# kafka_prepare DIR PORT: a single-node KRaft config in DIR/server.properties, storage formatted.
# Replication factors of 1 (one broker); groups form at once, as in Kafka's own tests.
kafka_prepare() {
  local dir=${1:?kafka_prepare DIR PORT} port=${2:?kafka_prepare DIR PORT} cport
  kafka_install || return 1
  cport=$(kafka_free_port)
  [[ $cport != "$port" ]] || cport=$(kafka_free_port)
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  [[ -z ${KAFKA_EXTRA_PROPERTIES:-} ]] || printf '%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$dir/server.properties"
  local cluster_id
  cluster_id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
  if ! KAFKA_TOOL_LOG=$dir/format.log kafka_class "$(cat "$KAFKA_DIR/storage-tool")" format -t "$cluster_id" \
    -c "$dir/server.properties" >>"$dir/format.log" 2>&1; then
    tail -n 20 "$dir/format.log" >&2
    kafka_log "kafka-storage format failed in $dir"
    return 1
  fi
}

# kafka_run DIR: execs the broker prepared in DIR, in the foreground; its log is DIR/server.log.
kafka_run() {
  local dir=${1:?kafka_run DIR}
  [[ -f $dir/server.properties ]] || { kafka_log "$dir has no server.properties: run prepare first"; return 1; }
  # shellcheck disable=SC2086 # the option strings are lists of JVM flags
  exec java ${KAFKA_HEAP_OPTS:--Xmx512M -Xms512M} $KAFKA_JVM_OPTS -cp "$KAFKA_LIBS/*" \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dsemel.kafka.log.file="$dir/server.log" \
    -Dsemel.kafka.log.level="${KAFKA_LOG_LEVEL:-warn}" kafka.Kafka "$dir/server.properties"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    install) kafka_install && echo "$KAFKA_LIBS" ;;
    prepare) shift; kafka_prepare "$@" ;;
    run) shift; kafka_run "$@" ;;
    tool) shift; kafka_install && kafka_class "$@" ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
  esac
fi
