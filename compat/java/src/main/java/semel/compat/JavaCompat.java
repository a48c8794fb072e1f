package semel.compat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.GroupSubscribedToTopicException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The kafka-clients part of the Java compatibility suite: producer, consumer groups and Admin
 * checks against semel. Prints one {@code PASS name (detail)} or {@code FAIL name: why} line per
 * check on stdout (the client's own log lines go to stderr) and always exits 0 when it ran to the
 * end; run.sh counts the lines.
 *
 * <p>Usage: {@code JavaCompat BOOTSTRAP DATA_DIR}. DATA_DIR is semel's data directory, read to
 * check the producer ids and sequences of the stored batches.
 *
 * <p>Every wait is bounded: admin futures by {@link #WAIT}, poll loops by explicit deadlines.
 */
public final class JavaCompat {
    static final Duration WAIT = Duration.ofSeconds(40);

    static String boot;
    static Path dataDir;
    static Admin admin;

    // ---------------------------------------------------------------------------- harness

    static final class CheckFailed extends Exception {
        private static final long serialVersionUID = 1L;

        CheckFailed(String msg) {
            super(msg);
        }
    }

    interface Check {
        String run() throws Exception;
    }

    static void expect(boolean cond, String msg) throws CheckFailed {
        if (!cond) {
            throw new CheckFailed(msg);
        }
    }

    static void log(String msg) {
        System.err.printf("[%tT] %s%n", System.currentTimeMillis(), msg);
        System.err.flush();
    }

    static int passed;
    static int failed;

    static boolean check(String name, Check body) {
        long t0 = System.nanoTime();
        log("=== " + name);
        String detail;
        try {
            detail = body.run();
        } catch (Throwable e) { // every failure is reported, none aborts the run
            Throwable t = unwrap(e);
            String msg = (t instanceof CheckFailed ? "" : t.getClass().getName() + ": ") + t.getMessage();
            System.out.println("FAIL " + name + ": " + msg.replace('\n', ' '));
            System.out.flush();
            System.err.println("--- " + name);
            t.printStackTrace(System.err);
            failed++;
            return false;
        }
        String took = String.format("%.1fs", (System.nanoTime() - t0) / 1e9);
        System.out.println("PASS " + name + " (" + (detail == null || detail.isEmpty() ? "" : detail + ", ") + took + ")");
        System.out.flush();
        passed++;
        return true;
    }

    static Throwable unwrap(Throwable e) {
        while ((e instanceof ExecutionException || e instanceof java.util.concurrent.CompletionException)
                && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** The value of an admin future, waiting at most {@link #WAIT}; its cause is rethrown. */
    static <T> T get(KafkaFuture<T> f) throws Exception {
        try {
            return f.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof Exception) {
                throw (Exception) c;
            }
            throw e;
        } catch (TimeoutException e) {
            throw new CheckFailed("no answer within " + WAIT.toSeconds() + "s");
        }
    }

    /** Expects the future to fail with {@code want}; returns the exception's message. */
    static String expectError(KafkaFuture<?> f, Class<? extends Throwable> want, String what) throws Exception {
        try {
            Object v = get(f);
            throw new CheckFailed(what + ": expected " + want.getSimpleName() + ", but it succeeded (" + v + ")");
        } catch (CheckFailed e) {
            throw e;
        } catch (Exception e) {
            if (!want.isInstance(e)) {
                throw new CheckFailed(what + ": expected " + want.getSimpleName() + ", got " + e);
            }
            return e.getClass().getSimpleName();
        }
    }

    // ---------------------------------------------------------------------------- clients

    static Properties common(String clientId) {
        Properties p = new Properties();
        p.put("bootstrap.servers", boot);
        p.put("client.id", clientId);
        p.put("request.timeout.ms", "15000");
        return p;
    }

    static KafkaProducer<String, String> producer(String clientId, Map<String, String> extra) {
        Properties p = common(clientId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.putAll(extra);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    static KafkaConsumer<String, String> consumer(String clientId, String group, Map<String, String> extra) {
        Properties p = common(clientId);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "60000");
        p.putAll(extra);
        return new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    /** Waits for every send, at most {@code seconds} in all; the metadata in send order. */
    static List<RecordMetadata> awaitAll(List<Future<RecordMetadata>> futures, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        List<RecordMetadata> out = new ArrayList<>(futures.size());
        int i = 0;
        for (Future<RecordMetadata> f : futures) {
            long left = deadline - System.nanoTime();
            try {
                out.add(f.get(Math.max(left, 1), TimeUnit.NANOSECONDS));
            } catch (TimeoutException e) {
                throw new CheckFailed("record " + i + " of " + futures.size() + " not acknowledged within " + seconds + "s");
            } catch (ExecutionException e) {
                throw new CheckFailed("record " + i + " of " + futures.size() + " failed: " + e.getCause());
            }
            i++;
        }
        return out;
    }

    static void createTopic(String name, int partitions) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all());
    }

    static Set<TopicPartition> partitions(String topic, int n) {
        Set<TopicPartition> s = new TreeSet<>((a, b) -> a.partition() - b.partition());
        for (int p = 0; p < n; p++) {
            s.add(new TopicPartition(topic, p));
        }
        return s;
    }

    static Node node() throws Exception {
        Collection<Node> nodes = get(admin.describeCluster().nodes());
        expect(nodes.size() == 1, "describeCluster lists " + nodes.size() + " nodes: " + nodes);
        return nodes.iterator().next();
    }

    // ---------------------------------------------------------------- 1. produce and consume

    static final String T_MAIN = "jv-main";
    static final String G_MAIN = "jv-main-group";
    static final int MAIN_PARTS = 6;
    static final int MAIN_N = 50_000;
    static final int MAIN_MORE = 100; // per partition, for the resume check

    /** partition -> record index at each offset. */
    static final Map<Integer, List<Integer>> mainLayout = new TreeMap<>();
    /** Records produced after the first consumer's commit: partition -> their values. */
    static final Map<Integer, List<String>> mainMore = new TreeMap<>();
    static KafkaConsumer<String, String> mainConsumer;
    static Map<TopicPartition, Long> mainCommitted;

    static String mainKey(int i) {
        return "key-" + i;
    }

    static String mainValue(int i) {
        // 20 to 116 bytes, a few of them non-ASCII
        StringBuilder b = new StringBuilder("value-").append(i).append('-');
        for (int k = 0; k < i % 97; k++) {
            b.append((char) ('a' + (i + k) % 26));
        }
        if (i % 101 == 0) {
            b.append(" ünïcødé ✓");
        }
        return b.toString();
    }

    static String c1Produce() throws Exception {
        createTopic(T_MAIN, MAIN_PARTS);
        List<RecordMetadata> meta;
        // Default settings but acks=all (already the default): idempotence is on by default.
        Properties p = common("jv-main-producer");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            List<Future<RecordMetadata>> futures = new ArrayList<>(MAIN_N);
            for (int i = 0; i < MAIN_N; i++) {
                futures.add(prod.send(new ProducerRecord<>(T_MAIN, mainKey(i), mainValue(i))));
            }
            meta = awaitAll(futures, 90);
        }
        Map<Integer, TreeMap<Long, Integer>> byPart = new TreeMap<>();
        for (int i = 0; i < MAIN_N; i++) {
            RecordMetadata m = meta.get(i);
            expect(m.hasOffset(), "record " + i + " acknowledged without an offset");
            Integer dup = byPart.computeIfAbsent(m.partition(), k -> new TreeMap<>()).put(m.offset(), i);
            expect(dup == null, "records " + dup + " and " + i + " both acknowledged at " + m.partition() + "/" + m.offset());
        }
        expect(byPart.size() == MAIN_PARTS, "records went to partitions " + byPart.keySet() + ", expected all " + MAIN_PARTS);
        for (Map.Entry<Integer, TreeMap<Long, Integer>> e : byPart.entrySet()) {
            TreeMap<Long, Integer> offs = e.getValue();
            expect(offs.firstKey() == 0 && offs.lastKey() == offs.size() - 1,
                    "partition " + e.getKey() + ": offsets " + offs.firstKey() + ".." + offs.lastKey() + " for " + offs.size() + " records");
            int prev = -1;
            for (int i : offs.values()) {
                expect(i > prev, "partition " + e.getKey() + ": record " + i + " stored after record " + prev + " (send order lost)");
                prev = i;
            }
            mainLayout.put(e.getKey(), new ArrayList<>(offs.values()));
        }
        return MAIN_N + " records acknowledged, offsets 0..n-1 in send order per partition, counts "
                + mainLayout.values().stream().map(l -> String.valueOf(l.size())).collect(Collectors.joining("/"));
    }

    /** Producer id, epoch, base sequence and record count of each batch stored for a partition. */
    static List<long[]> storedBatches(String topic, int partition) throws IOException {
        Path dir = dataDir.resolve(topic + "-" + partition);
        List<Path> logs = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.log")) {
            ds.forEach(logs::add);
        }
        logs.sort(null);
        List<long[]> out = new ArrayList<>();
        for (Path log : logs) {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(log));
            int pos = 0;
            while (pos + 61 <= b.limit()) {
                int length = b.getInt(pos + 8);
                out.add(new long[] {b.getLong(pos + 43), b.getShort(pos + 51), b.getInt(pos + 53), b.getInt(pos + 57)});
                pos += 12 + length;
            }
        }
        return out;
    }

    static String c1Idempotent() throws Exception {
        expect(!mainLayout.isEmpty(), "nothing produced (the produce check failed)");
        Set<String> ids = new TreeSet<>();
        int batches = 0;
        for (int p = 0; p < MAIN_PARTS; p++) {
            long seq = 0;
            for (long[] b : storedBatches(T_MAIN, p)) {
                ids.add(b[0] + "/" + b[1]);
                expect(b[2] == seq, "partition " + p + ": batch with base sequence " + b[2] + ", expected " + seq);
                seq += b[3];
                batches++;
            }
            expect(seq == mainLayout.get(p).size(), "partition " + p + ": " + seq + " records stored, " + mainLayout.get(p).size() + " acknowledged");
        }
        expect(ids.size() == 1 && !ids.iterator().next().startsWith("-"),
                "stored batches carry (producer id/epoch) " + ids + ", expected one producer id >= 0");
        return batches + " batches, producer id/epoch " + ids.iterator().next() + ", gapless sequences from 0";
    }

    /**
     * Polls {@code c} until {@code want} records arrived (at most {@code seconds}); checks that
     * each partition's offsets follow each other from {@code start} and that each record's
     * {@code key=value} is the expected one. Returns partition -> count.
     */
    static Map<Integer, Integer> consumeExactly(KafkaConsumer<String, String> c, int want, Map<Integer, Long> start,
            java.util.function.BiFunction<Integer, Long, String> expected, int seconds) throws Exception {
        Map<Integer, Long> next = new HashMap<>(start);
        Map<Integer, Integer> counts = new TreeMap<>();
        int n = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (n < want && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                long exp = next.getOrDefault(r.partition(), 0L);
                expect(r.offset() == exp, "partition " + r.partition() + ": got offset " + r.offset() + ", expected " + exp
                        + (r.offset() < exp ? " (a record seen twice)" : " (records skipped)"));
                String wantKv = expected.apply(r.partition(), r.offset());
                String got = r.key() + "=" + r.value();
                expect(wantKv != null && wantKv.equals(got), "partition " + r.partition() + " offset " + r.offset() + ": key=value '"
                        + got + "', expected '" + wantKv + "'");
                next.put(r.partition(), exp + 1);
                counts.merge(r.partition(), 1, Integer::sum);
                n++;
            }
        }
        expect(n == want, "read " + n + " of " + want + " records within " + seconds + "s (per partition: " + counts + ")");
        // Nothing more may come.
        long quiet = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1000);
        while (System.nanoTime() < quiet) {
            ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
            if (!rs.isEmpty()) {
                ConsumerRecord<String, String> r = rs.iterator().next();
                throw new CheckFailed("after all " + want + " records, " + rs.count() + " more arrived, first " + r.partition() + "/" + r.offset());
            }
        }
        return counts;
    }

    static String c1Consume() throws Exception {
        expect(!mainLayout.isEmpty(), "nothing produced (the produce check failed)");
        mainConsumer = consumer("jv-main-consumer-1", G_MAIN, Map.of());
        mainConsumer.subscribe(List.of(T_MAIN));
        Map<Integer, Integer> counts = consumeExactly(mainConsumer, MAIN_N, Map.of(), (p, off) -> {
            List<Integer> l = mainLayout.get(p);
            return l != null && off < l.size() ? mainKey(l.get(off.intValue())) + "=" + mainValue(l.get(off.intValue())) : null;
        }, 90);
        Set<TopicPartition> assigned = mainConsumer.assignment();
        expect(assigned.equals(partitions(T_MAIN, MAIN_PARTS)), "assignment " + assigned);
        return MAIN_N + " records, each once, offsets consecutive from 0 per partition, keys and values as sent " + counts;
    }

    static String c1Commit() throws Exception {
        expect(mainConsumer != null, "no consumer (the consume check failed)");
        Set<TopicPartition> tps = partitions(T_MAIN, MAIN_PARTS);
        Map<TopicPartition, Long> positions = new TreeMap<>((a, b) -> a.partition() - b.partition());
        for (TopicPartition tp : tps) {
            positions.put(tp, mainConsumer.position(tp, Duration.ofSeconds(30)));
        }
        mainConsumer.commitSync(Duration.ofSeconds(30));
        Map<TopicPartition, OffsetAndMetadata> committed = mainConsumer.committed(tps, Duration.ofSeconds(30));
        Map<TopicPartition, Long> ends = mainConsumer.endOffsets(tps, Duration.ofSeconds(30));
        mainCommitted = new HashMap<>();
        for (TopicPartition tp : tps) {
            OffsetAndMetadata c = committed.get(tp);
            long want = mainLayout.get(tp.partition()).size();
            expect(c != null, "committed() has nothing for " + tp + ": " + committed);
            expect(c.offset() == positions.get(tp) && c.offset() == want && ends.get(tp) == want,
                    tp + ": committed " + c.offset() + ", position " + positions.get(tp) + ", end offset " + ends.get(tp) + ", records " + want);
            mainCommitted.put(tp, c.offset());
        }
        KafkaConsumer<String, String> c = mainConsumer;
        mainConsumer = null;
        c.close(Duration.ofSeconds(30));
        return "committed = position = end offset for all " + MAIN_PARTS + " partitions "
                + positions.values() + "; consumer closed (left the group)";
    }

    static String c1Resume() throws Exception {
        expect(mainCommitted != null, "nothing committed (the commit check failed)");
        try (KafkaProducer<String, String> prod = producer("jv-main-producer-2", Map.of())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int p = 0; p < MAIN_PARTS; p++) {
                List<String> vs = new ArrayList<>();
                for (int k = 0; k < MAIN_MORE; k++) {
                    String v = "more-" + p + "-" + k;
                    vs.add(v);
                    fs.add(prod.send(new ProducerRecord<>(T_MAIN, p, "more-key", v)));
                }
                mainMore.put(p, vs);
            }
            awaitAll(fs, 60);
        }
        Map<Integer, Long> start = new HashMap<>();
        mainCommitted.forEach((tp, off) -> start.put(tp.partition(), off));
        try (KafkaConsumer<String, String> c = consumer("jv-main-consumer-2", G_MAIN, Map.of())) {
            c.subscribe(List.of(T_MAIN));
            Map<Integer, Integer> counts = consumeExactly(c, MAIN_PARTS * MAIN_MORE, start, (p, off) -> {
                long k = off - mainCommitted.get(new TopicPartition(T_MAIN, p));
                return k >= 0 && k < MAIN_MORE ? "more-key=" + mainMore.get(p).get((int) k) : null;
            }, 60);
            c.commitSync(Duration.ofSeconds(30));
            c.close(Duration.ofSeconds(30));
            return "second consumer started at the committed offsets and read exactly the " + MAIN_PARTS * MAIN_MORE
                    + " newer records " + counts;
        }
    }

    // ------------------------------------------------------------------------ 2. rebalance

    static final String T_REB = "jv-rebalance";
    static final String G_REB = "jv-rebalance-group";
    static final int REB_PARTS = 12;

    /** One group member in its own thread (consumers are not thread-safe). */
    static final class Worker implements Runnable {
        final String name;
        final Set<Integer> owned = java.util.concurrent.ConcurrentHashMap.newKeySet();
        final List<String> events = java.util.Collections.synchronizedList(new ArrayList<>());
        final Map<Integer, Long> first = new java.util.concurrent.ConcurrentHashMap<>();
        final Map<Integer, Long> next = new java.util.concurrent.ConcurrentHashMap<>();
        final Set<Integer> revoked = java.util.concurrent.ConcurrentHashMap.newKeySet();
        volatile boolean stop;
        volatile Throwable error;
        volatile String closeError;
        final Thread thread;
        final java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);

        Worker(String name) {
            this.name = name;
            this.thread = new Thread(this, name);
            this.thread.setDaemon(true);
        }

        void event(String e) {
            events.add(e);
            log(name + ": " + e);
        }

        @Override
        public void run() {
            KafkaConsumer<String, String> c = null;
            try {
                c = consumer(name, G_REB, Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                        CooperativeStickyAssignor.class.getName()));
                c.subscribe(List.of(T_REB), new org.apache.kafka.clients.consumer.ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        parts.forEach(tp -> owned.add(tp.partition()));
                        parts.forEach(tp -> first.remove(tp.partition())); // first offset of this ownership
                        event("assigned " + nums(parts) + " -> owns " + new TreeSet<>(owned));
                    }

                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                        parts.forEach(tp -> owned.remove(tp.partition()));
                        parts.forEach(tp -> revoked.add(tp.partition()));
                        if (!parts.isEmpty()) {
                            event("revoked " + nums(parts));
                        }
                    }

                    @Override
                    public void onPartitionsLost(Collection<TopicPartition> parts) {
                        parts.forEach(tp -> owned.remove(tp.partition()));
                        event("lost " + nums(parts));
                    }
                });
                while (!stop) {
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
                    for (ConsumerRecord<String, String> r : rs) {
                        first.putIfAbsent(r.partition(), r.offset());
                        next.put(r.partition(), r.offset() + 1);
                    }
                    if (!rs.isEmpty()) {
                        try {
                            c.commitSync(Duration.ofSeconds(10));
                        } catch (Exception e) { // a rebalance in progress: commit again after the next poll
                            event("commitSync: " + e);
                        }
                    }
                }
                try {
                    c.commitSync(Duration.ofSeconds(10));
                } catch (Exception e) {
                    event("final commitSync: " + e);
                }
            } catch (Throwable e) {
                error = e;
                event("died: " + e);
            } finally {
                if (c != null) {
                    try {
                        c.close(Duration.ofSeconds(20));
                        event("closed");
                    } catch (Throwable e) {
                        closeError = e.toString();
                        event("close failed: " + e);
                    }
                }
                closed.countDown();
            }
        }

        boolean close() throws InterruptedException {
            stop = true;
            return closed.await(40, TimeUnit.SECONDS);
        }
    }

    static String nums(Collection<TopicPartition> parts) {
        return parts.stream().map(TopicPartition::partition).sorted().map(String::valueOf).collect(Collectors.joining(",", "[", "]"));
    }

    static final List<Worker> workers = new ArrayList<>();

    /** Owned sets of the workers, if they are disjoint and cover 0..n-1; else null. */
    static String coverage(List<Worker> ws, int n) {
        Set<Integer> all = new HashSet<>();
        int total = 0;
        for (Worker w : ws) {
            if (w.owned.isEmpty()) {
                return null;
            }
            all.addAll(w.owned);
            total += w.owned.size();
        }
        if (total != n || all.size() != n) {
            return null;
        }
        return ws.stream().map(w -> w.name + "=" + new TreeSet<>(w.owned)).collect(Collectors.joining(" "));
    }

    static String describeOwned(List<Worker> ws) {
        return ws.stream().map(w -> w.name + "=" + new TreeSet<>(w.owned) + (w.error != null ? "(died: " + w.error + ")" : ""))
                .collect(Collectors.joining(" "));
    }

    /** Every partition consumed up to {@code end} by its current owner among {@code ws}. */
    static boolean consumedTo(List<Worker> ws, long end) {
        for (Worker w : ws) {
            for (int p : w.owned) {
                if (w.next.getOrDefault(p, 0L) < end) {
                    return false;
                }
            }
        }
        return true;
    }

    static void produceEach(String topic, int parts, int perPartition, String tag) throws Exception {
        try (KafkaProducer<String, String> prod = producer("jv-" + tag + "-producer", Map.of())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int p = 0; p < parts; p++) {
                for (int k = 0; k < perPartition; k++) {
                    fs.add(prod.send(new ProducerRecord<>(topic, p, "k" + k, tag + "-" + p + "-" + k)));
                }
            }
            awaitAll(fs, 60);
        }
    }

    static String c2Join() throws Exception {
        createTopic(T_REB, REB_PARTS);
        produceEach(T_REB, REB_PARTS, 100, "reb");
        for (int i = 1; i <= 3; i++) {
            Worker w = new Worker("jv-reb-" + i);
            workers.add(w);
            w.thread.start();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        String cov = null;
        String stableSince = null;
        long stableAt = 0;
        while (System.nanoTime() < deadline) {
            for (Worker w : workers) {
                expect(w.error == null, w.name + " died: " + w.error);
            }
            cov = coverage(workers, REB_PARTS);
            if (cov != null && consumedTo(workers, 100)) {
                if (cov.equals(stableSince)) {
                    if (System.nanoTime() - stableAt > TimeUnit.MILLISECONDS.toNanos(1500)) {
                        break;
                    }
                } else {
                    stableSince = cov;
                    stableAt = System.nanoTime();
                }
            } else {
                stableSince = null;
            }
            Thread.sleep(100);
        }
        expect(cov != null && cov.equals(stableSince), "no disjoint covering assignment (each consumer owning some"
                + " partitions, all 1200 records consumed) within 60s: " + describeOwned(workers));
        return "3 consumers, CooperativeStickyAssignor, 12 partitions: " + cov + "; all 1200 records consumed";
    }

    static String c2Takeover() throws Exception {
        expect(workers.size() == 3 && coverage(workers, REB_PARTS) != null, "no stable 3-member group (the previous check failed)");
        Worker gone = workers.get(2);
        List<Worker> rest = workers.subList(0, 2);
        Map<String, Set<Integer>> before = new HashMap<>();
        for (Worker w : rest) {
            before.put(w.name, new TreeSet<>(w.owned));
            w.revoked.clear();
        }
        Set<Integer> orphans = new TreeSet<>(gone.owned);
        expect(gone.close(), gone.name + " did not close within 40s");
        expect(gone.closeError == null, gone.name + ": close failed: " + gone.closeError);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        String cov = null;
        while (System.nanoTime() < deadline && (cov = coverage(rest, REB_PARTS)) == null) {
            for (Worker w : rest) {
                expect(w.error == null, w.name + " died: " + w.error);
            }
            Thread.sleep(100);
        }
        expect(cov != null, "the two remaining consumers did not take over all 12 partitions within 60s: " + describeOwned(rest)
                + " (" + gone.name + " owned " + orphans + ")");
        for (Worker w : rest) {
            expect(w.owned.containsAll(before.get(w.name)), w.name + " lost partitions it owned: had " + before.get(w.name) + ", now " + new TreeSet<>(w.owned));
            expect(w.revoked.isEmpty(), w.name + ": partitions revoked during a cooperative rebalance: " + w.revoked);
        }
        // New records: the new owners start at the closed member's committed offsets (100).
        produceEach(T_REB, REB_PARTS, 10, "reb2");
        long deadline2 = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline2 && !consumedTo(rest, 110)) {
            Thread.sleep(100);
        }
        expect(consumedTo(rest, 110), "not every partition consumed to offset 110 within 60s: "
                + rest.stream().map(w -> w.name + " next=" + new TreeMap<>(w.next)).collect(Collectors.joining(" ")));
        for (Worker w : rest) {
            for (int p : w.owned) {
                if (orphans.contains(p)) {
                    long f = w.first.getOrDefault(p, -1L);
                    expect(f == 100, w.name + " took over partition " + p + " and started at offset " + f + ", not at the committed 100");
                }
            }
        }
        return gone.name + " (owned " + orphans + ") closed; " + cov + "; no partition revoked from the others;"
                + " the new owners resumed at the committed offset 100";
    }

    // ---------------------------------------------------------------------------- 3. admin

    static final String T_ADMIN = "jv-admin";
    static final String T_ADMIN2 = "jv-admin-2";
    static Uuid adminId;
    static Uuid admin2Id;

    static String c3Create() throws Exception {
        NewTopic t = new NewTopic(T_ADMIN, 3, (short) 1)
                .configs(Map.of("retention.ms", "3600000", "max.message.bytes", "200000"));
        NewTopic t2 = new NewTopic(T_ADMIN2, Optional.empty(), Optional.empty());
        CreateTopicsResult r = admin.createTopics(List.of(t, t2));
        get(r.all());
        adminId = get(r.topicId(T_ADMIN));
        admin2Id = get(r.topicId(T_ADMIN2));
        int parts = get(r.numPartitions(T_ADMIN));
        int rf = get(r.replicationFactor(T_ADMIN));
        Config cfg = get(r.config(T_ADMIN));
        expect(parts == 3 && rf == 1, "numPartitions " + parts + ", replicationFactor " + rf);
        expect(adminId != null && !adminId.equals(Uuid.ZERO_UUID), "topic id " + adminId);
        expect(admin2Id != null && !admin2Id.equals(Uuid.ZERO_UUID) && !admin2Id.equals(adminId), "second topic id " + admin2Id);
        ConfigEntry ret = cfg.get("retention.ms");
        expect(ret != null && "3600000".equals(ret.value()), "createTopics result config retention.ms = " + ret);
        int parts2 = get(r.numPartitions(T_ADMIN2));
        expect(parts2 >= 1, "broker-default partitions " + parts2);
        String exists = expectError(admin.createTopics(List.of(new NewTopic(T_ADMIN, 1, (short) 1))).all(),
                TopicExistsException.class, "createTopics of an existing topic");
        get(admin.createTopics(List.of(new NewTopic("jv-admin-validate", 2, (short) 1)), new CreateTopicsOptions().validateOnly(true)).all());
        Set<String> names = get(admin.listTopics().names());
        expect(names.contains(T_ADMIN) && names.contains(T_ADMIN2), "listTopics: " + names);
        expect(!names.contains("jv-admin-validate"), "validateOnly created the topic: " + names);
        return "ids " + adminId + " / " + admin2Id + ", 3 partitions rf 1, retention.ms=3600000 in the result; "
                + T_ADMIN2 + " with broker defaults: " + parts2 + " partition(s); again -> " + exists + "; validateOnly creates nothing";
    }

    static String c3Describe() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        Node node = node();
        TopicDescription d = get(admin.describeTopics(List.of(T_ADMIN)).topicNameValues().get(T_ADMIN));
        expect(adminId.equals(d.topicId()), "describeTopics topic id " + d.topicId() + ", createTopics said " + adminId);
        expect(d.partitions().size() == 3, "partitions " + d.partitions());
        for (TopicPartitionInfo pi : d.partitions()) {
            expect(pi.leader() != null && pi.leader().id() == node.id(), "partition " + pi.partition() + " leader " + pi.leader() + ", node " + node);
            expect(pi.replicas().size() == 1 && pi.isr().size() == 1, "partition " + pi.partition() + " replicas " + pi.replicas() + " isr " + pi.isr());
        }
        String unknown = expectError(admin.describeTopics(List.of("jv-no-such-topic")).allTopicNames(),
                UnknownTopicOrPartitionException.class, "describeTopics of a missing topic");
        return "topic id matches createTopics', 3 partitions led by node " + node.id() + " (replicas 1, isr 1); missing topic -> " + unknown;
    }

    /** By topic id: Metadata v12 with topic ids (the Java client sends name "" next to the id). */
    static String c3DescribeById() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        TopicDescription byId;
        try {
            byId = get(admin.describeTopics(TopicCollection.ofTopicIds(List.of(adminId))).topicIdValues().get(adminId));
        } catch (IllegalStateException e) {
            // MetadataResponse.errorsByTopicId throws this for a response topic whose id is zero.
            throw new CheckFailed("the client could not read the Metadata response: IllegalStateException '" + e.getMessage()
                    + "' (MetadataResponse.errorsByTopicId: a topic in the answer to a Metadata request by topic id"
                    + " (v12, topic id " + adminId + ", name \"\") carries the zero topic id)");
        }
        expect(T_ADMIN.equals(byId.name()) && adminId.equals(byId.topicId()) && byId.partitions().size() == 3, "describeTopics by id: " + byId);
        return adminId + " -> " + byId.name() + ", " + byId.partitions().size() + " partitions";
    }

    static Config topicConfig(String topic) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return get(admin.describeConfigs(List.of(res)).values().get(res));
    }

    static String entry(Config c, String name) {
        ConfigEntry e = c.get(name);
        return e == null ? name + " absent" : name + "=" + e.value() + " (" + e.source() + ")";
    }

    static String c3DescribeConfigs() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        Config c = topicConfig(T_ADMIN);
        ConfigEntry ret = c.get("retention.ms");
        ConfigEntry mmb = c.get("max.message.bytes");
        expect(ret != null && "3600000".equals(ret.value()) && ret.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG && !ret.isDefault(),
                entry(c, "retention.ms") + ", expected 3600000 (DYNAMIC_TOPIC_CONFIG)");
        expect(mmb != null && "200000".equals(mmb.value()) && mmb.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                entry(c, "max.message.bytes") + ", expected 200000 (DYNAMIC_TOPIC_CONFIG)");
        long defaults = c.entries().stream().filter(e -> e.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG).count();
        expect(defaults > 0, "only the two set configs are described: " + c.entries());
        return c.entries().size() + " entries: " + entry(c, "retention.ms") + ", " + entry(c, "max.message.bytes") + ", "
                + entry(c, "cleanup.policy") + ", " + entry(c, "segment.bytes");
    }

    static String c3AlterConfigs() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, T_ADMIN);
        get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", null), AlterConfigOp.OpType.DELETE)))).all());
        Config c = topicConfig(T_ADMIN);
        ConfigEntry ret = c.get("retention.ms");
        ConfigEntry mmb = c.get("max.message.bytes");
        expect(ret != null && "7200000".equals(ret.value()) && ret.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "after SET: " + entry(c, "retention.ms"));
        expect(mmb == null || mmb.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "after DELETE: " + entry(c, "max.message.bytes"));
        String bad;
        try {
            get(admin.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "not-a-number"), AlterConfigOp.OpType.SET)))).all());
            throw new CheckFailed("SET retention.ms=not-a-number was accepted");
        } catch (org.apache.kafka.common.errors.ApiException e) {
            bad = e.getClass().getSimpleName();
        }
        Config after = topicConfig(T_ADMIN);
        expect("7200000".equals(after.get("retention.ms").value()), "after the refused SET: " + entry(after, "retention.ms"));
        return "SET " + entry(c, "retention.ms") + ", DELETE -> " + entry(c, "max.message.bytes") + "; SET retention.ms=not-a-number -> " + bad;
    }

    static String c3CreatePartitions() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        get(admin.createPartitions(Map.of(T_ADMIN, NewPartitions.increaseTo(5))).all());
        TopicDescription d = get(admin.describeTopics(List.of(T_ADMIN)).topicNameValues().get(T_ADMIN));
        expect(d.partitions().size() == 5, "after increaseTo(5): " + d.partitions().size() + " partitions");
        RecordMetadata m;
        try (KafkaProducer<String, String> prod = producer("jv-admin-producer", Map.of())) {
            m = prod.send(new ProducerRecord<>(T_ADMIN, 4, "k", "to the new partition")).get(60, TimeUnit.SECONDS);
        }
        expect(m.partition() == 4 && m.offset() == 0, "produce to the new partition 4: " + m);
        String fewer = expectError(admin.createPartitions(Map.of(T_ADMIN, NewPartitions.increaseTo(2))).all(),
                InvalidPartitionsException.class, "increaseTo(2) on 5 partitions");
        return "3 -> 5 partitions, produce to partition 4 -> offset 0; increaseTo(2) -> " + fewer;
    }

    static String c3DeleteRecords() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        TopicPartition tp = new TopicPartition(T_ADMIN, 0);
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<String, String> prod = producer("jv-admin-producer", Map.of())) {
            for (int i = 0; i < 100; i++) {
                fs.add(prod.send(new ProducerRecord<>(T_ADMIN, 0, "k" + i, "v" + i)));
            }
            awaitAll(fs, 60);
        }
        long low = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(40))).lowWatermarks().get(tp)).lowWatermark();
        expect(low == 40, "deleteRecords(before 40) low watermark " + low);
        ListOffsetsResultInfo earliest = get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp));
        ListOffsetsResultInfo latest = get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp));
        expect(earliest.offset() == 40 && latest.offset() == 100, "after deleteRecords: earliest " + earliest.offset() + ", latest " + latest.offset());
        try (KafkaConsumer<String, String> c = consumer("jv-admin-reader", null, Map.of())) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long pos = c.position(tp, Duration.ofSeconds(30));
            expect(pos == 40, "seekToBeginning -> position " + pos);
            ConsumerRecord<String, String> firstRec = null;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (firstRec == null && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    firstRec = r;
                    break;
                }
            }
            expect(firstRec != null && firstRec.offset() == 40 && "v40".equals(firstRec.value()),
                    "first record read from the beginning: " + (firstRec == null ? "none within 30s" : firstRec.offset() + " " + firstRec.value()));
        }
        return "low watermark 40; listOffsets earliest 40, latest 100; a consumer from the beginning starts at 40 (v40)";
    }

    static String c3ListOffsets() throws Exception {
        expect(adminId != null, "topic not created (the create check failed)");
        TopicPartition tp = new TopicPartition(T_ADMIN, 1);
        long base = System.currentTimeMillis() - 600_000;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<String, String> prod = producer("jv-admin-producer", Map.of())) {
            for (int i = 0; i < 10; i++) {
                long ts = i == 6 ? base + 60_000 : base + i * 1000L;
                fs.add(prod.send(new ProducerRecord<>(T_ADMIN, 1, ts, "k" + i, "ts" + i)));
            }
            awaitAll(fs, 60);
        }
        Map<String, OffsetSpec> specs = new java.util.LinkedHashMap<>();
        specs.put("earliest", OffsetSpec.earliest());
        specs.put("latest", OffsetSpec.latest());
        specs.put("maxTimestamp", OffsetSpec.maxTimestamp());
        specs.put("forTimestamp(base+3500)", OffsetSpec.forTimestamp(base + 3500));
        specs.put("forTimestamp(base)", OffsetSpec.forTimestamp(base));
        specs.put("forTimestamp(base+7000)", OffsetSpec.forTimestamp(base + 7000));
        specs.put("forTimestamp(after all)", OffsetSpec.forTimestamp(base + 120_000));
        long[][] want = {{0, -2}, {10, -2}, {6, base + 60_000}, {4, base + 4000}, {0, base}, {6, base + 60_000}, {-1, -1}};
        StringBuilder got = new StringBuilder();
        List<String> bad = new ArrayList<>();
        int k = 0;
        for (Map.Entry<String, OffsetSpec> e : specs.entrySet()) {
            ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(tp, e.getValue())).partitionResult(tp));
            long[] w = want[k++];
            got.append(e.getKey()).append(" -> ").append(info.offset());
            if (w[1] != -2) {
                got.append("@").append(info.timestamp() == -1 ? "-1" : "base+" + (info.timestamp() - base));
            }
            got.append("; ");
            if (info.offset() != w[0] || (w[1] != -2 && info.timestamp() != w[1])) {
                bad.add(e.getKey() + " -> offset " + info.offset() + " timestamp " + info.timestamp() + ", expected offset " + w[0]
                        + (w[1] != -2 ? " timestamp " + w[1] : ""));
            }
        }
        expect(bad.isEmpty(), String.join("; ", bad) + " (base " + base + ")");
        return "10 records with timestamps base+0s..9s, offset 6 at base+60s: " + got.toString().trim();
    }

    /** listConsumerGroups() is deprecated for removal in 4.x (listGroups replaces it) but still sent. */
    @SuppressWarnings("removal")
    static String c3ListGroups() throws Exception {
        Map<String, GroupListing> all = get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all()).stream()
                .collect(Collectors.toMap(GroupListing::groupId, g -> g, (a, b) -> a));
        GroupListing main = all.get(G_MAIN);
        GroupListing reb = all.get(G_REB);
        expect(main != null && reb != null, "listGroups(forConsumerGroups()) lists " + all.keySet() + ", expected " + G_MAIN + " and " + G_REB);
        expect(main.groupState().equals(Optional.of(GroupState.EMPTY)) && main.type().equals(Optional.of(GroupType.CLASSIC))
                && "consumer".equals(main.protocol()), G_MAIN + ": " + main);
        expect(reb.groupState().equals(Optional.of(GroupState.STABLE)), G_REB + ": " + reb);
        Set<String> stable = get(admin.listGroups(ListGroupsOptions.forConsumerGroups().inGroupStates(Set.of(GroupState.STABLE))).all())
                .stream().map(GroupListing::groupId).collect(Collectors.toSet());
        expect(stable.contains(G_REB) && !stable.contains(G_MAIN), "listGroups in state STABLE: " + stable);
        Set<String> legacy = get(admin.listConsumerGroups().all()).stream().map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
        expect(legacy.contains(G_MAIN) && legacy.contains(G_REB), "listConsumerGroups: " + legacy);
        return G_MAIN + " " + main.groupState().get() + "/" + main.type().get() + "/" + main.protocol() + ", " + G_REB + " "
                + reb.groupState().get() + "; state filter STABLE -> " + new TreeSet<>(stable) + "; listConsumerGroups agrees";
    }

    static String c3DescribeGroups() throws Exception {
        Node node = node();
        Map<String, ConsumerGroupDescription> ds = get(admin.describeConsumerGroups(List.of(G_REB, G_MAIN)).all());
        ConsumerGroupDescription reb = ds.get(G_REB);
        ConsumerGroupDescription main = ds.get(G_MAIN);
        List<Worker> live = workers.size() == 3 ? workers.subList(0, 2) : List.of();
        expect(reb.groupState() == GroupState.STABLE && reb.members().size() == live.size() && !live.isEmpty(),
                G_REB + ": state " + reb.groupState() + ", " + reb.members().size() + " members, expected STABLE with " + live.size());
        expect("cooperative-sticky".equals(reb.partitionAssignor()) && reb.type() == GroupType.CLASSIC && !reb.isSimpleConsumerGroup(),
                G_REB + ": assignor " + reb.partitionAssignor() + ", type " + reb.type());
        expect(reb.coordinator() != null && reb.coordinator().id() == node.id(), G_REB + ": coordinator " + reb.coordinator());
        for (MemberDescription m : reb.members()) {
            Worker w = live.stream().filter(x -> x.name.equals(m.clientId())).findFirst().orElse(null);
            expect(w != null, "member with client id " + m.clientId() + " is not one of the live consumers");
            Set<Integer> assigned = m.assignment().topicPartitions().stream().map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new));
            expect(assigned.equals(new TreeSet<>(w.owned)), m.clientId() + ": described assignment " + assigned + ", the consumer owns " + new TreeSet<>(w.owned));
        }
        expect(main.groupState() == GroupState.EMPTY && main.members().isEmpty(), G_MAIN + ": state " + main.groupState() + ", members " + main.members());
        return G_REB + " STABLE, cooperative-sticky, 2 members whose assignments match the consumers', coordinator node "
                + node.id() + "; " + G_MAIN + " EMPTY";
    }

    static Map<Integer, OffsetAndMetadata> groupOffsets(String group, String topic) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        Map<Integer, OffsetAndMetadata> out = new TreeMap<>();
        m.forEach((tp, o) -> {
            if (tp.topic().equals(topic) && o != null) {
                out.put(tp.partition(), o);
            }
        });
        return out;
    }

    static String c3ListGroupOffsets() throws Exception {
        expect(!mainLayout.isEmpty() && !mainMore.isEmpty(), "the group checks did not run");
        Map<Integer, OffsetAndMetadata> got = groupOffsets(G_MAIN, T_MAIN);
        Map<Integer, Long> want = new TreeMap<>();
        mainLayout.forEach((p, l) -> want.put(p, (long) l.size() + MAIN_MORE));
        Map<Integer, Long> offs = new TreeMap<>();
        got.forEach((p, o) -> offs.put(p, o.offset()));
        expect(offs.equals(want), "listConsumerGroupOffsets(" + G_MAIN + "): " + offs + ", expected " + want);
        Map<Integer, OffsetAndMetadata> reb = groupOffsets(G_REB, T_REB);
        expect(reb.size() == REB_PARTS && reb.values().stream().allMatch(o -> o.offset() == 110),
                "listConsumerGroupOffsets(" + G_REB + "): " + reb);
        return G_MAIN + " " + offs.values() + " (the end offsets); " + G_REB + " 110 on all 12 partitions";
    }

    static String c3AlterGroupOffsets() throws Exception {
        Map<TopicPartition, OffsetAndMetadata> set = new HashMap<>();
        for (TopicPartition tp : partitions(T_MAIN, MAIN_PARTS)) {
            set.put(tp, new OffsetAndMetadata(10 + tp.partition(), "semel-java"));
        }
        get(admin.alterConsumerGroupOffsets(G_MAIN, set).all());
        Map<Integer, OffsetAndMetadata> got = groupOffsets(G_MAIN, T_MAIN);
        for (int p = 0; p < MAIN_PARTS; p++) {
            OffsetAndMetadata o = got.get(p);
            expect(o != null && o.offset() == 10 + p && "semel-java".equals(o.metadata()), "partition " + p + ": " + o + ", expected offset " + (10 + p) + " metadata semel-java");
        }
        // A consumer of the group (assign(), no join) starts at the altered offsets.
        try (KafkaConsumer<String, String> c = consumer("jv-main-consumer-3", G_MAIN, Map.of())) {
            TopicPartition tp = new TopicPartition(T_MAIN, 3);
            c.assign(List.of(tp));
            long pos = c.position(tp, Duration.ofSeconds(30));
            expect(pos == 13, "consumer position after assign() " + pos + ", expected the altered 13");
        }
        String refused;
        try {
            get(admin.alterConsumerGroupOffsets(G_REB, Map.of(new TopicPartition(T_REB, 0), new OffsetAndMetadata(0))).all());
            throw new CheckFailed("altering the offsets of the live group " + G_REB + " was accepted");
        } catch (org.apache.kafka.common.errors.ApiException e) {
            refused = e.getClass().getSimpleName();
        }
        return G_MAIN + " set to 10+p with metadata; a consumer's position follows; on the live " + G_REB + " -> " + refused;
    }

    static String c3DeleteGroupOffsets() throws Exception {
        TopicPartition tp0 = new TopicPartition(T_MAIN, 0);
        get(admin.deleteConsumerGroupOffsets(G_MAIN, Set.of(tp0)).all());
        Map<Integer, OffsetAndMetadata> got = groupOffsets(G_MAIN, T_MAIN);
        expect(!got.containsKey(0) && got.size() == MAIN_PARTS - 1, "after deleting partition 0: " + got);
        String live = expectError(admin.deleteConsumerGroupOffsets(G_REB, Set.of(new TopicPartition(T_REB, 0))).all(),
                GroupSubscribedToTopicException.class, "deleteConsumerGroupOffsets on the live group's subscribed topic");
        return "partition 0 gone, " + got.size() + " left; on the live " + G_REB + " -> " + live;
    }

    static String c3DeleteGroups() throws Exception {
        String live = expectError(admin.deleteConsumerGroups(List.of(G_REB)).all(), GroupNotEmptyException.class,
                "deleteConsumerGroups of the live group");
        get(admin.deleteConsumerGroups(List.of(G_MAIN)).all());
        Set<String> names = get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all()).stream()
                .map(GroupListing::groupId).collect(Collectors.toSet());
        expect(!names.contains(G_MAIN) && names.contains(G_REB), "after deleting " + G_MAIN + ": listGroups " + names);
        Map<Integer, OffsetAndMetadata> offs = groupOffsets(G_MAIN, T_MAIN);
        expect(offs.isEmpty(), "offsets of the deleted group: " + offs);
        String unknown = expectError(admin.deleteConsumerGroups(List.of("jv-no-such-group")).all(), GroupIdNotFoundException.class,
                "deleteConsumerGroups of an unknown group");
        return "live group -> " + live + "; " + G_MAIN + " deleted (not listed, no offsets); unknown group -> " + unknown;
    }

    static String c3DescribeCluster() throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        Collection<Node> nodes = get(r.nodes());
        String clusterId = get(r.clusterId());
        Node controller = get(r.controller());
        expect(nodes.size() == 1, "nodes " + nodes);
        Node n = nodes.iterator().next();
        String[] hp = boot.split(":");
        expect(n.host().equals(hp[0]) && n.port() == Integer.parseInt(hp[1]), "node " + n + ", bootstrap " + boot);
        expect(clusterId != null && !clusterId.isEmpty(), "cluster id " + clusterId);
        expect(controller != null && controller.id() == n.id(), "controller " + controller + ", node " + n);
        return "1 node " + n.id() + " at " + n.host() + ":" + n.port() + ", cluster id " + clusterId + ", controller " + controller.id();
    }

    static String c3DeleteTopics() throws Exception {
        expect(adminId != null, "topics not created (the create check failed)");
        get(admin.deleteTopics(List.of(T_ADMIN)).all());
        get(admin.deleteTopics(TopicCollection.ofTopicIds(List.of(admin2Id))).all());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        Set<String> names;
        do {
            names = get(admin.listTopics().names());
            if (!names.contains(T_ADMIN) && !names.contains(T_ADMIN2)) {
                break;
            }
            Thread.sleep(200);
        } while (System.nanoTime() < deadline);
        expect(!names.contains(T_ADMIN) && !names.contains(T_ADMIN2), "still listed 60s after deleteTopics: " + names);
        String gone = expectError(admin.describeTopics(List.of(T_ADMIN)).allTopicNames(), UnknownTopicOrPartitionException.class,
                "describeTopics after the delete");
        String again = expectError(admin.deleteTopics(List.of(T_ADMIN)).all(), UnknownTopicOrPartitionException.class,
                "deleteTopics of a deleted topic");
        return T_ADMIN + " by name and " + T_ADMIN2 + " by id: not listed, describe -> " + gone + ", delete again -> " + again;
    }

    // ---------------------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: JavaCompat BOOTSTRAP DATA_DIR");
            System.exit(2);
        }
        boot = args[0];
        dataDir = Path.of(args[1]);
        Properties version = new Properties();
        try (java.io.InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) {
                version.load(in);
            }
        }
        System.out.println("# kafka-clients " + version.getProperty("version", "?") + " (commit " + version.getProperty("commitId", "?")
                + "), Java " + System.getProperty("java.version"));
        Properties ap = common("jv-admin");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        admin = Admin.create(ap);
        try {
            check("producer (defaults + acks=all) sends 50,000 records over 6 partitions, all acknowledged in order", JavaCompat::c1Produce);
            check("the producer was idempotent by default (stored batches: one producer id, gapless sequences)", JavaCompat::c1Idempotent);
            check("KafkaConsumer with a group and subscribe() reads all 50,000 exactly once, in per-partition order", JavaCompat::c1Consume);
            check("commitSync, then committed() shows the positions", JavaCompat::c1Commit);
            check("a second consumer in the same group resumes from the committed offsets", JavaCompat::c1Resume);
            check("3 consumers, CooperativeStickyAssignor, 12 partitions: assignments disjoint and covering", JavaCompat::c2Join);
            check("one consumer closes, the other two take over its partitions (cooperative: nothing revoked)", JavaCompat::c2Takeover);
            check("admin createTopics with configs (topic ids, configs in the result, exists, validateOnly)", JavaCompat::c3Create);
            check("admin describeTopics by name (topic ids)", JavaCompat::c3Describe);
            check("admin describeTopics by topic id", JavaCompat::c3DescribeById);
            check("admin describeConfigs", JavaCompat::c3DescribeConfigs);
            check("admin incrementalAlterConfigs (SET, DELETE, invalid value)", JavaCompat::c3AlterConfigs);
            check("admin createPartitions", JavaCompat::c3CreatePartitions);
            check("admin deleteRecords", JavaCompat::c3DeleteRecords);
            check("admin listOffsets (earliest, latest, maxTimestamp, forTimestamp)", JavaCompat::c3ListOffsets);
            check("admin listGroups / listConsumerGroups (types, states)", JavaCompat::c3ListGroups);
            check("admin describeConsumerGroups", JavaCompat::c3DescribeGroups);
            check("admin listConsumerGroupOffsets", JavaCompat::c3ListGroupOffsets);
            check("admin alterConsumerGroupOffsets", JavaCompat::c3AlterGroupOffsets);
            check("admin deleteConsumerGroupOffsets", JavaCompat::c3DeleteGroupOffsets);
            check("admin deleteConsumerGroups", JavaCompat::c3DeleteGroups);
            check("admin describeCluster", JavaCompat::c3DescribeCluster);
            check("admin deleteTopics (by name and by topic id)", JavaCompat::c3DeleteTopics);
        } finally {
            for (Worker w : workers) {
                if (w.closed.getCount() > 0) {
                    w.close();
                }
            }
            admin.close(Duration.ofSeconds(10));
        }
        log(passed + " checks passed, " + failed + " failed");
        System.out.flush();
        System.exit(0);
    }
}
