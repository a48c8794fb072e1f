package semel.compat;

import static semel.compat.JavaCompat.admin;
import static semel.compat.JavaCompat.awaitAll;
import static semel.compat.JavaCompat.check;
import static semel.compat.JavaCompat.createTopic;
import static semel.compat.JavaCompat.expect;
import static semel.compat.JavaCompat.get;
import static semel.compat.JavaCompat.log;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.AbortTransactionSpec;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FenceProducersResult;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListTransactionsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TransactionalIdNotFoundException;

/**
 * The transaction part of the Java compatibility suite: transactional producers, read_committed
 * consumers, fencing, consume-transform-produce, timeouts and the KIP-664 Admin calls against
 * semel. Same conventions as {@link JavaCompat} (whose helpers it uses): one {@code PASS name
 * (detail)} or {@code FAIL name: why} line per check on stdout, the client log on stderr.
 *
 * <p>Usage:
 * <ul>
 * <li>{@code TxnCompat checks BOOTSTRAP} runs the harness checks;
 * <li>{@code TxnCompat create-topics BOOTSTRAP NAME:PARTITIONS...} creates topics for run.sh's tool checks;
 * <li>{@code TxnCompat hold BOOTSTRAP TOPIC TRANSACTIONAL_ID STOP_FILE} leaves a transaction open on
 *     partitions 0 and 1 of TOPIC (after 2 non-transactional records on partition 0), prints
 *     {@code OPEN producerId epoch}, and aborts it once STOP_FILE exists (at most 600 s);
 * <li>{@code TxnCompat lso BOOTSTRAP TOPIC PARTITIONS} prints {@code partition latest last-stable} lines;
 * <li>{@code TxnCompat count BOOTSTRAP TOPIC PARTITIONS} prints and checks the records a read_committed and a
 *     read_uncommitted consumer see (run.sh's transactional perf-test check);
 * <li>{@code TxnCompat verify-copy BOOTSTRAP DATA_DIR INPUT OUTPUT GROUP} checks the output of
 *     TransactionalMessageCopier runs: one line of detail, exit status 1 on a mismatch.
 * </ul>
 * The helper modes print their detail on stdout and exit non-zero on failure.
 */
public final class TxnCompat {

    // ---------------------------------------------------------------------------- helpers

    static KafkaProducer<String, String> txnProducer(String tid, Map<String, String> extra) {
        Map<String, String> m = new HashMap<>();
        m.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, tid);
        m.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "60000");
        m.putAll(extra);
        return JavaCompat.producer("jv-" + tid, m);
    }

    static KafkaConsumer<String, String> reader(String clientId, boolean committed) {
        return JavaCompat.consumer(clientId, null, Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                committed ? "read_committed" : "read_uncommitted", ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "2000"));
    }

    /** A record as read back: offset and value. */
    record Rec(long offset, String value) {
        @Override
        public String toString() {
            return offset + ":" + value;
        }
    }

    /**
     * Everything a consumer with this isolation level reads from the beginning of the partitions up
     * to their end offsets (the last stable offsets for read_committed), within {@code seconds}.
     */
    static Map<Integer, List<Rec>> readAll(String topic, Collection<Integer> parts, boolean committed, int seconds) throws Exception {
        Map<Integer, List<Rec>> out = new TreeMap<>();
        try (KafkaConsumer<String, String> c = reader("jv-txn-reader", committed)) {
            List<TopicPartition> tps = parts.stream().map(p -> new TopicPartition(topic, p)).collect(Collectors.toList());
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            tps.forEach(tp -> out.put(tp.partition(), new ArrayList<>()));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (c.position(tp, Duration.ofSeconds(30)) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    Map<Integer, Long> pos = new TreeMap<>();
                    for (TopicPartition tp : tps) {
                        pos.put(tp.partition(), c.position(tp));
                    }
                    throw new JavaCompat.CheckFailed("a " + (committed ? "read_committed" : "read_uncommitted") + " consumer of " + topic
                            + " did not reach the end offsets " + end.values() + " within " + seconds + "s (positions " + pos + ")");
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    out.get(r.partition()).add(new Rec(r.offset(), r.value()));
                }
            }
        }
        return out;
    }

    static List<String> values(List<Rec> recs) {
        return recs.stream().map(Rec::value).collect(Collectors.toList());
    }

    /** partition -> {latest, last stable} offsets by Admin.listOffsets. */
    static Map<Integer, long[]> stableOffsets(String topic, Collection<Integer> parts) throws Exception {
        Map<TopicPartition, OffsetSpec> spec = new HashMap<>();
        parts.forEach(p -> spec.put(new TopicPartition(topic, p), OffsetSpec.latest()));
        var latest = get(admin.listOffsets(spec, new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).all());
        var stable = get(admin.listOffsets(spec, new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all());
        Map<Integer, long[]> out = new TreeMap<>();
        for (int p : parts) {
            TopicPartition tp = new TopicPartition(topic, p);
            out.put(p, new long[] {latest.get(tp).offset(), stable.get(tp).offset()});
        }
        return out;
    }

    /**
     * Waits until the last stable offset equals the latest offset on every partition: EndTxn v0-3
     * answers once the decision is durable, the markers (and the LSO) follow, as in Kafka.
     */
    static Map<Integer, long[]> awaitStable(String topic, Collection<Integer> parts, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        Map<Integer, long[]> offs;
        while (true) {
            offs = stableOffsets(topic, parts);
            if (offs.values().stream().allMatch(o -> o[0] == o[1])) {
                return offs;
            }
            if (System.nanoTime() > deadline) {
                throw new JavaCompat.CheckFailed(topic + ": last stable offset below the latest " + seconds + "s after the transactions ended: "
                        + show(offs));
            }
            Thread.sleep(50);
        }
    }

    static String show(Map<Integer, long[]> offs) {
        return offs.entrySet().stream().map(e -> e.getKey() + ": latest " + e.getValue()[0] + " stable " + e.getValue()[1])
                .collect(Collectors.joining(", ", "{", "}"));
    }

    /** The fencing error a transactional call failed with (anywhere in the cause chain), or null. */
    static Throwable fencing(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ProducerFencedException || t instanceof InvalidProducerEpochException) {
                return t;
            }
        }
        return null;
    }

    interface TxnCall {
        void run() throws Exception;
    }

    /** Expects the call to fail with ProducerFencedException or InvalidProducerEpochException; their simple name. */
    static String expectFenced(String what, TxnCall call) throws Exception {
        try {
            call.run();
        } catch (KafkaException e) {
            Throwable f = fencing(e);
            if (f == null) {
                throw new JavaCompat.CheckFailed(what + ": expected ProducerFencedException or InvalidProducerEpochException, got " + e
                        + (e.getCause() != null ? " caused by " + e.getCause() : ""));
            }
            return f.getClass().getSimpleName() + (f == e ? "" : " (in " + e.getClass().getSimpleName() + ")");
        }
        throw new JavaCompat.CheckFailed(what + " succeeded: the producer was not fenced");
    }

    static List<String> sendAll(KafkaProducer<String, String> p, String topic, int partition, String tag, int n) {
        List<String> vs = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            String v = tag + "-" + partition + "-" + k;
            p.send(new ProducerRecord<>(topic, partition, "k" + k, v));
            vs.add(v);
        }
        return vs;
    }

    static TransactionDescription describeTxn(String tid) throws Exception {
        return get(admin.describeTransactions(List.of(tid)).description(tid));
    }

    /**
     * Waits for a transactional id to reach {@code want}: the coordinator writes the Complete* state
     * after the markers, so it may still answer Prepare* once the last stable offsets moved (as Kafka).
     */
    static TransactionDescription awaitTxnState(String tid, TransactionState want, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        TransactionDescription d = describeTxn(tid);
        while (d.state() != want && System.nanoTime() < deadline) {
            Thread.sleep(50);
            d = describeTxn(tid);
        }
        return d;
    }

    static Map<String, TransactionListing> listTxns(ListTransactionsOptions o) throws Exception {
        return get(admin.listTransactions(o).all()).stream().collect(Collectors.toMap(TransactionListing::transactionalId, l -> l, (a, b) -> a));
    }

    static List<ProducerState> producers(TopicPartition tp) throws Exception {
        return get(admin.describeProducers(List.of(tp)).partitionResult(tp)).activeProducers();
    }

    // ---------------------------------------------------------------- 1. commit and abort

    static final String T_TXN = "jv-txn";
    static final int TXN_PARTS = 3;
    static final int TXN_N = 100; // per partition and transaction
    static boolean txnDone;

    static String t1CommitAbort() throws Exception {
        createTopic(T_TXN, TXN_PARTS);
        Map<Integer, List<String>> committed = new TreeMap<>();
        Map<Integer, List<String>> all = new TreeMap<>();
        try (KafkaProducer<String, String> p = txnProducer("jv-txn-1", Map.of())) {
            p.initTransactions();
            for (String tag : List.of("commit-a", "abort-b", "commit-c")) {
                p.beginTransaction();
                for (int part = 0; part < TXN_PARTS; part++) {
                    List<String> vs = sendAll(p, T_TXN, part, tag, TXN_N);
                    all.computeIfAbsent(part, k -> new ArrayList<>()).addAll(vs);
                    if (tag.startsWith("commit")) {
                        committed.computeIfAbsent(part, k -> new ArrayList<>()).addAll(vs);
                    }
                }
                if (tag.startsWith("commit")) {
                    p.commitTransaction();
                } else {
                    p.flush(); // the records are written, then the transaction aborted
                    p.abortTransaction();
                }
            }
        }
        List<Integer> parts = List.of(0, 1, 2);
        awaitStable(T_TXN, parts, 60);
        Map<Integer, List<Rec>> rc = readAll(T_TXN, parts, true, 60);
        Map<Integer, List<Rec>> ru = readAll(T_TXN, parts, false, 60);
        Map<Integer, long[]> offs = stableOffsets(T_TXN, parts);
        for (int part : parts) {
            expect(values(rc.get(part)).equals(committed.get(part)), "read_committed, partition " + part + ": " + rc.get(part).size()
                    + " records " + summarize(rc.get(part)) + ", expected the " + committed.get(part).size() + " committed ones (commit-a, commit-c)");
            expect(values(ru.get(part)).equals(all.get(part)), "read_uncommitted, partition " + part + ": " + ru.get(part).size()
                    + " records " + summarize(ru.get(part)) + ", expected all " + all.get(part).size() + " data records in order");
            // One marker (control record) after each transaction: offsets 0..99, 101..200, 202..301, end 303.
            List<Rec> u = ru.get(part);
            expect(u.get(0).offset() == 0 && u.get(TXN_N).offset() == TXN_N + 1 && u.get(2 * TXN_N).offset() == 2 * TXN_N + 2,
                    "partition " + part + ": transactions start at offsets " + u.get(0).offset() + ", " + u.get(TXN_N).offset() + ", "
                            + u.get(2 * TXN_N).offset() + ", expected 0, 101, 202 (one control record after each)");
            long[] o = offs.get(part);
            expect(o[0] == 3L * TXN_N + 3 && o[1] == o[0], "partition " + part + ": listOffsets latest " + o[0] + ", READ_COMMITTED "
                    + o[1] + ", expected both " + (3 * TXN_N + 3));
        }
        txnDone = true;
        return "3 transactions (commit, abort, commit) of 100 records on each of 3 partitions: read_committed "
                + rc.values().stream().mapToInt(List::size).sum() + " (the committed ones, in order), read_uncommitted "
                + ru.values().stream().mapToInt(List::size).sum() + " (all data records, no control records), one marker offset per "
                + "transaction, listOffsets latest = READ_COMMITTED = 303";
    }

    static String summarize(List<Rec> recs) {
        if (recs.isEmpty()) {
            return "[]";
        }
        return "[" + recs.get(0) + " .. " + recs.get(recs.size() - 1) + "]";
    }

    static String t1OpenLso() throws Exception {
        expect(txnDone, "the commit/abort check failed");
        TopicPartition tp0 = new TopicPartition(T_TXN, 0);
        long start = 3L * TXN_N + 3;
        try (KafkaProducer<String, String> p = txnProducer("jv-txn-1", Map.of());
                KafkaConsumer<String, String> rc = reader("jv-txn-rc", true)) {
            p.initTransactions();
            p.beginTransaction();
            List<String> open = sendAll(p, T_TXN, 0, "open", 10);
            p.flush();
            Map<Integer, long[]> during = stableOffsets(T_TXN, List.of(0));
            expect(during.get(0)[0] == start + 10 && during.get(0)[1] == start,
                    "while a transaction is open: " + show(during) + ", expected latest " + (start + 10) + ", stable " + start);
            rc.assign(List.of(tp0));
            rc.seek(tp0, start);
            long endRc = rc.endOffsets(List.of(tp0), Duration.ofSeconds(30)).get(tp0);
            expect(endRc == start, "read_committed endOffsets " + endRc + ", expected the last stable offset " + start);
            long t = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1500);
            while (System.nanoTime() < t) {
                ConsumerRecords<String, String> rs = rc.poll(Duration.ofMillis(200));
                if (!rs.isEmpty()) {
                    throw new JavaCompat.CheckFailed("a read_committed consumer received " + rs.count()
                            + " records of the open transaction, first offset " + rs.iterator().next().offset());
                }
            }
            Map<Integer, List<Rec>> ru = new TreeMap<>();
            try (KafkaConsumer<String, String> u = reader("jv-txn-ru", false)) {
                u.assign(List.of(tp0));
                u.seek(tp0, start);
                List<Rec> got = new ArrayList<>();
                long d = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (got.size() < 10 && System.nanoTime() < d) {
                    u.poll(Duration.ofMillis(200)).forEach(r -> got.add(new Rec(r.offset(), r.value())));
                }
                ru.put(0, got);
            }
            expect(values(ru.get(0)).equals(open), "read_uncommitted during the transaction: " + ru.get(0) + ", expected the 10 open records");
            p.commitTransaction();
            List<String> got = new ArrayList<>();
            long d = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (got.size() < 10 && System.nanoTime() < d) {
                rc.poll(Duration.ofMillis(200)).forEach(r -> got.add(r.value()));
            }
            expect(got.equals(open), "read_committed after the commit: " + got + ", expected the 10 records");
            Map<Integer, long[]> after = awaitStable(T_TXN, List.of(0), 60);
            expect(after.get(0)[1] == after.get(0)[0] && after.get(0)[0] == start + 11, "after the commit: " + show(after));
        }
        return "open transaction of 10 records: listOffsets latest " + (start + 10) + ", READ_COMMITTED " + start
                + "; read_committed endOffsets = " + start + ", polls nothing for 1.5s; read_uncommitted sees the 10; after the commit"
                + " read_committed gets them, latest = stable = " + (start + 11);
    }

    // ---------------------------------------------------------------- 2. fencing

    static String t2Fencing() throws Exception {
        expect(txnDone, "topic " + T_TXN + " not written (the commit/abort check failed)");
        String tid = "jv-txn-fence";
        TopicPartition tp1 = new TopicPartition(T_TXN, 1);
        String fencedBySecond;
        String fencedByAdmin;
        List<String> kept;
        FenceProducersResult fence;
        KafkaProducer<String, String> p1 = txnProducer(tid, Map.of());
        KafkaProducer<String, String> p2 = null;
        try {
            p1.initTransactions();
            p1.beginTransaction();
            sendAll(p1, T_TXN, 1, "fenced-1", 5);
            p1.flush();
            p2 = txnProducer(tid, Map.of());
            p2.initTransactions(); // bumps the epoch, aborts p1's transaction
            fencedBySecond = expectFenced("the first producer's commitTransaction after a second producer's initTransactions",
                    p1::commitTransaction);
            p2.beginTransaction();
            kept = sendAll(p2, T_TXN, 1, "second", 5);
            p2.commitTransaction();

            p2.beginTransaction();
            sendAll(p2, T_TXN, 1, "fenced-2", 5);
            p2.flush();
            fence = admin.fenceProducers(List.of(tid));
            get(fence.all());
            final KafkaProducer<String, String> p2f = p2;
            fencedByAdmin = expectFenced("commitTransaction after Admin.fenceProducers", p2f::commitTransaction);
        } finally {
            p1.close(Duration.ofSeconds(5));
            if (p2 != null) {
                p2.close(Duration.ofSeconds(5));
            }
        }
        awaitStable(T_TXN, List.of(1), 60);
        Map<Integer, List<Rec>> rc = readAll(T_TXN, List.of(1), true, 60);
        List<String> after = values(rc.get(1)).stream().filter(v -> !v.startsWith("commit-")).collect(Collectors.toList());
        expect(after.equals(kept), "read_committed on " + tp1 + " after the fencing: " + after + ", expected only the second producer's 5 committed records");
        TransactionDescription d = describeTxn(tid);
        // fenceProducers is an InitProducerId: the open transaction is aborted, then the epoch bumped (state Empty, as in Kafka).
        expect(d.state() == TransactionState.EMPTY || d.state() == TransactionState.COMPLETE_ABORT,
                "describeTransactions(" + tid + ") after fenceProducers: " + d);
        long epoch = get(fence.epochId(tid));
        long pid = get(fence.producerId(tid));
        expect(d.producerId() == pid && d.producerEpoch() == epoch, "fenceProducers gave producer id/epoch " + pid + "/" + epoch
                + ", describeTransactions " + d.producerId() + "/" + d.producerEpoch());
        return "second producer's initTransactions -> the first's commitTransaction: " + fencedBySecond + "; Admin.fenceProducers (producer "
                + pid + " epoch " + epoch + ") -> the second's commitTransaction: " + fencedByAdmin + "; read_committed shows only the 5"
                + " records committed in between, state " + d.state() + " afterwards";
    }

    // ---------------------------------------------------------------- 3. consume-transform-produce

    static final String T_CTP_IN = "jv-ctp-in";
    static final String T_CTP_OUT = "jv-ctp-out";
    static final String G_CTP = "jv-ctp-group";
    static final int CTP_PER_PART = 500;

    static Map<Integer, Long> groupOffsets(String group, String topic, boolean stable) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> m = get(admin.listConsumerGroupOffsets(Map.of(group,
                new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec()),
                new org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions().requireStable(stable)).partitionsToOffsetAndMetadata(group));
        Map<Integer, Long> out = new TreeMap<>();
        m.forEach((tp, o) -> {
            if (tp.topic().equals(topic) && o != null) {
                out.put(tp.partition(), o.offset());
            }
        });
        return out;
    }

    static String t3ConsumeTransformProduce() throws Exception {
        createTopic(T_CTP_IN, 2);
        createTopic(T_CTP_OUT, 2);
        Map<Integer, List<String>> input = new TreeMap<>();
        try (KafkaProducer<String, String> prod = JavaCompat.producer("jv-ctp-seed", Map.of())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int part = 0; part < 2; part++) {
                for (int k = 0; k < CTP_PER_PART; k++) {
                    String v = "in-" + part + "-" + k;
                    fs.add(prod.send(new ProducerRecord<>(T_CTP_IN, part, "k" + k, v)));
                    input.computeIfAbsent(part, x -> new ArrayList<>()).add(v);
                }
            }
            awaitAll(fs, 60);
        }
        int aborted = 0;
        int txns = 0;
        String pendingDetail = null;
        try (KafkaConsumer<String, String> c = JavaCompat.consumer("jv-ctp-consumer", G_CTP, Map.of(
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed", ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "100"));
                KafkaProducer<String, String> p = txnProducer("jv-ctp", Map.of())) {
            p.initTransactions();
            c.subscribe(List.of(T_CTP_IN));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            int consumed = 0;
            boolean abortedOne = false;
            while (System.nanoTime() < deadline) {
                ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                if (rs.isEmpty()) {
                    Map<TopicPartition, Long> ends = c.endOffsets(c.assignment(), Duration.ofSeconds(30));
                    boolean atEnd = !c.assignment().isEmpty();
                    for (TopicPartition tp : c.assignment()) {
                        atEnd &= c.position(tp, Duration.ofSeconds(30)) >= ends.get(tp);
                    }
                    if (atEnd && c.assignment().size() == 2 && consumed > 0) {
                        break;
                    }
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                p.beginTransaction();
                for (ConsumerRecord<String, String> r : rs) {
                    p.send(new ProducerRecord<>(T_CTP_OUT, r.partition(), r.key(), "out-" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                Map<Integer, Long> committedBefore = groupOffsets(G_CTP, T_CTP_IN, false);
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                txns++;
                if (!abortedOne) {
                    // The first transaction is aborted: neither its offsets nor its output may appear.
                    p.flush();
                    Map<Integer, Long> pending = groupOffsets(G_CTP, T_CTP_IN, false);
                    expect(pending.equals(committedBefore), "offsets visible before the transaction ended: " + pending + ", before " + committedBefore);
                    p.abortTransaction();
                    aborted = rs.count();
                    abortedOne = true;
                    Map<Integer, Long> after = groupOffsets(G_CTP, T_CTP_IN, false);
                    expect(after.isEmpty(), "committed offsets after the aborted transaction: " + after + ", expected none");
                    // Rewind to the last committed positions (none: the beginning).
                    Map<TopicPartition, OffsetAndMetadata> last = c.committed(c.assignment(), Duration.ofSeconds(30));
                    for (TopicPartition tp : c.assignment()) {
                        OffsetAndMetadata o = last.get(tp);
                        if (o != null) {
                            c.seek(tp, o.offset());
                        } else {
                            c.seekToBeginning(List.of(tp));
                        }
                    }
                    continue;
                }
                if (pendingDetail == null) {
                    // KIP-447: while offsets are pending in a transaction, a read_committed consumer of the group
                    // (require_stable) gets no committed offsets (UNSTABLE_OFFSET_COMMIT, retried until its timeout).
                    p.flush();
                    Map<Integer, Long> pending = groupOffsets(G_CTP, T_CTP_IN, false);
                    expect(pending.equals(committedBefore), "offsets visible before the commit: " + pending + ", before " + committedBefore);
                    try (KafkaConsumer<String, String> probe = JavaCompat.consumer("jv-ctp-probe", G_CTP,
                            Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"))) {
                        long t0 = System.nanoTime();
                        try {
                            Map<TopicPartition, OffsetAndMetadata> seen = probe.committed(offsets.keySet(), Duration.ofMillis(2000));
                            throw new JavaCompat.CheckFailed("a read_committed consumer's committed() returned " + seen
                                    + " while the transaction's offsets were pending (expected it to wait: require_stable)");
                        } catch (org.apache.kafka.common.errors.TimeoutException e) {
                            pendingDetail = String.format("committed() of a read_committed consumer timed out after %.1fs while they were pending",
                                    (System.nanoTime() - t0) / 1e9);
                        }
                    }
                }
                p.commitTransaction();
                // The markers follow the EndTxn answer: until then the admin client skips the partitions
                // (UNSTABLE_OFFSET_COMMIT with require_stable); wait for the committed offsets.
                Map<Integer, Long> want = new TreeMap<>();
                offsets.forEach((tp, o) -> want.put(tp.partition(), o.offset()));
                long d = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                Map<Integer, Long> now = groupOffsets(G_CTP, T_CTP_IN, true);
                while (!now.entrySet().containsAll(want.entrySet()) && System.nanoTime() < d) {
                    Thread.sleep(50);
                    now = groupOffsets(G_CTP, T_CTP_IN, true);
                }
                expect(now.entrySet().containsAll(want.entrySet()), "60s after the commit, group offsets " + now + ", expected " + want);
                consumed += rs.count();
            }
        }
        Map<Integer, Long> committed = groupOffsets(G_CTP, T_CTP_IN, true);
        expect(committed.equals(Map.of(0, (long) CTP_PER_PART, 1, (long) CTP_PER_PART)), "final group offsets " + committed
                + ", expected " + CTP_PER_PART + " on both partitions");
        awaitStable(T_CTP_OUT, List.of(0, 1), 60);
        Map<Integer, List<Rec>> out = readAll(T_CTP_OUT, List.of(0, 1), true, 60);
        Map<Integer, List<Rec>> outAll = readAll(T_CTP_OUT, List.of(0, 1), false, 60);
        for (int part = 0; part < 2; part++) {
            List<String> want = input.get(part).stream().map(v -> "out-" + v).collect(Collectors.toList());
            expect(values(out.get(part)).equals(want), "read_committed output partition " + part + ": " + out.get(part).size() + " records "
                    + summarize(out.get(part)) + ", expected the " + want.size() + " transformed inputs once each, in order");
        }
        int uncommitted = outAll.values().stream().mapToInt(List::size).sum();
        expect(uncommitted == 2 * CTP_PER_PART + aborted, "read_uncommitted output: " + uncommitted + " records, expected "
                + (2 * CTP_PER_PART) + " + the " + aborted + " of the aborted transaction");
        return txns + " transactions with sendOffsetsToTransaction(offsets, groupMetadata()); the first (" + aborted + " records) aborted:"
                + " no offsets, no output; offsets invisible until the commit, " + pendingDetail + "; output = the 1000 inputs"
                + " transformed, once each, in order; group offsets 500/500; read_uncommitted also shows the " + aborted + " aborted";
    }

    // ---------------------------------------------------------------- 4. timeout

    // 20 s, not less: what is checked while the transaction is open (with a new producer) must be done
    // before it times out, also on a busy machine.
    static final int T4_TIMEOUT_MS = 20000;

    static String t4Timeout() throws Exception {
        String topic = "jv-txn-timeout";
        String tid = "jv-txn-timeout";
        createTopic(topic, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        KafkaProducer<String, String> p = txnProducer(tid, Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, String.valueOf(T4_TIMEOUT_MS)));
        String failed;
        double abortedAfter;
        List<String> later;
        long epochBefore;
        try (KafkaConsumer<String, String> rc = reader("jv-txn-timeout-rc", true)) {
            p.initTransactions();
            p.beginTransaction();
            // Before the first record: the coordinator starts the transaction's clock after this, so
            // the transaction is open for at least T4_TIMEOUT_MS from t0 on.
            long t0 = System.nanoTime();
            long surelyOpen = TimeUnit.MILLISECONDS.toNanos(T4_TIMEOUT_MS - 500);
            sendAll(p, topic, 0, "timed-out", 5);
            p.flush();
            epochBefore = describeTxn(tid).producerEpoch();
            try (KafkaProducer<String, String> other = JavaCompat.producer("jv-txn-timeout-plain", Map.of())) {
                later = sendAll(other, topic, 0, "later", 10);
                other.flush();
            }
            rc.assign(List.of(tp));
            rc.seekToBeginning(List.of(tp));
            ConsumerRecords<String, String> early = rc.poll(Duration.ofMillis(300));
            expect(early.isEmpty() || System.nanoTime() - t0 > surelyOpen,
                    "a read_committed consumer got " + early.count() + " records while the transaction was open");
            Map<Integer, long[]> offs = stableOffsets(topic, List.of(0));
            boolean stillOpen = System.nanoTime() - t0 < surelyOpen;
            expect(!stillOpen || offs.get(0)[1] == 0, "while the transaction is open: " + show(offs) + ", expected stable 0");
            // The broker aborts it after transaction.timeout.ms (+ its check interval): the LSO moves.
            List<String> got = new ArrayList<>();
            long deadline = t0 + TimeUnit.MILLISECONDS.toNanos(T4_TIMEOUT_MS) + TimeUnit.SECONDS.toNanos(60);
            while (got.size() < later.size() && System.nanoTime() < deadline) {
                rc.poll(Duration.ofMillis(100)).forEach(r -> got.add(r.value()));
            }
            abortedAfter = (System.nanoTime() - t0) / 1e9;
            expect(got.equals(later), "a read_committed consumer got " + got + " within " + (T4_TIMEOUT_MS / 1000 + 60) + "s, expected the 10 later"
                    + " non-transactional records once the broker aborted the transaction (stable offsets " + show(stableOffsets(topic, List.of(0))) + ")");
            expect(abortedAfter * 1e9 > surelyOpen, String.format("the transaction was aborted %.1fs after it began, before its %d ms timeout",
                    abortedAfter, T4_TIMEOUT_MS));
            failed = expectFenced("commitTransaction after the broker aborted the transaction", p::commitTransaction);
        } finally {
            p.close(Duration.ofSeconds(5));
        }
        TransactionDescription d = awaitTxnState(tid, TransactionState.COMPLETE_ABORT, 60);
        expect(d.state() == TransactionState.COMPLETE_ABORT && d.producerEpoch() > epochBefore,
                "describeTransactions after the timeout: " + d + ", expected CompleteAbort with an epoch above " + epochBefore);
        Map<Integer, long[]> offs = stableOffsets(topic, List.of(0));
        expect(offs.get(0)[0] == offs.get(0)[1], "after the abort: " + show(offs));
        return String.format("transaction.timeout.ms=" + T4_TIMEOUT_MS + ", 5 records, then idle: a read_committed consumer blocked at the LSO got the 10 later"
                + " records %.1fs after begin (not the 5); commitTransaction -> %s; state %s, epoch %d -> %d", abortedAfter, failed,
                d.state(), epochBefore, d.producerEpoch());
    }

    // ---------------------------------------------------------------- 5. admin (KIP-664)

    static String t5Admin() throws Exception {
        String topic = "jv-txn-admin";
        String tid = "jv-txn-admin";
        createTopic(topic, 2);
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);
        try (KafkaProducer<String, String> plain = JavaCompat.producer("jv-txn-admin-plain", Map.of())) {
            sendAll(plain, topic, 0, "before", 3);
            plain.flush();
        }
        int node = JavaCompat.node().id();
        StringBuilder detail = new StringBuilder();
        try (KafkaProducer<String, String> p = txnProducer(tid, Map.of())) {
            p.initTransactions();
            p.beginTransaction();
            long began = System.currentTimeMillis();
            sendAll(p, topic, 0, "hanging", 4);
            sendAll(p, topic, 1, "hanging", 4);
            p.flush();
            long flushed = System.currentTimeMillis();
            Thread.sleep(1200);

            // listTransactions: all, by state, by producer id, by duration (ListTransactions v1).
            Map<String, TransactionListing> all = listTxns(new ListTransactionsOptions());
            TransactionListing mine = all.get(tid);
            expect(mine != null && mine.state() == TransactionState.ONGOING, "listTransactions(): " + mine + " for " + tid + " among " + all.keySet());
            long pid = mine.producerId();
            Map<String, TransactionListing> ongoing = listTxns(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)));
            expect(ongoing.containsKey(tid) && ongoing.values().stream().allMatch(l -> l.state() == TransactionState.ONGOING)
                    && !ongoing.containsKey("jv-txn-1"), "listTransactions(filterStates(ONGOING)): " + ongoing.values());
            Map<String, TransactionListing> byPid = listTxns(new ListTransactionsOptions().filterProducerIds(List.of(pid)));
            expect(byPid.keySet().equals(Set.of(tid)), "listTransactions(filterProducerIds(" + pid + ")): " + byPid.values());
            Map<String, TransactionListing> longer = listTxns(new ListTransactionsOptions().filterOnDuration(1000));
            Map<String, TransactionListing> tooLong = listTxns(new ListTransactionsOptions().filterOnDuration(600_000));
            expect(longer.containsKey(tid) && !tooLong.containsKey(tid), "listTransactions(filterOnDuration(1000)) has " + tid + ": "
                    + longer.containsKey(tid) + ", filterOnDuration(600000): " + tooLong.containsKey(tid) + ", expected true, false");
            Set<String> completed = all.values().stream().filter(l -> l.state() != TransactionState.ONGOING)
                    .map(l -> l.transactionalId() + "=" + l.state()).collect(Collectors.toCollection(TreeSet::new));
            detail.append("listTransactions: ").append(tid).append(" Ongoing (producer ").append(pid).append("), others ").append(completed)
                    .append("; filters by state, producer id and duration agree; ");

            // describeTransactions.
            TransactionDescription d = describeTxn(tid);
            expect(d.state() == TransactionState.ONGOING && d.producerId() == pid && d.transactionTimeoutMs() == 60000
                    && d.coordinatorId() == node && d.topicPartitions().equals(Set.of(tp0, tp1)), "describeTransactions(" + tid + "): " + d);
            // The coordinator's clock started between the beginTransaction() and the end of the flush
            // (1 s either side for the clocks' granularity), however long the sends took.
            expect(d.transactionStartTimeMs().isPresent() && d.transactionStartTimeMs().getAsLong() >= began - 1000
                    && d.transactionStartTimeMs().getAsLong() <= flushed + 1000,
                    "describeTransactions start time " + d.transactionStartTimeMs() + ", the transaction began at " + began
                    + " (its records flushed at " + flushed + ")");
            String unknown;
            try {
                describeTxn("jv-no-such-txn");
                throw new JavaCompat.CheckFailed("describeTransactions of an unknown transactional id succeeded");
            } catch (TransactionalIdNotFoundException e) {
                unknown = e.getClass().getSimpleName();
            }
            detail.append("describeTransactions: Ongoing, epoch ").append(d.producerEpoch()).append(", timeout 60000, ")
                    .append(new TreeSet<>(d.topicPartitions().stream().map(TopicPartition::toString).collect(Collectors.toList())))
                    .append(", coordinator ").append(node).append(", unknown id -> ").append(unknown).append("; ");

            // describeProducers.
            ProducerState s0 = producers(tp0).stream().filter(s -> s.producerId() == pid).findFirst().orElse(null);
            ProducerState s1 = producers(tp1).stream().filter(s -> s.producerId() == pid).findFirst().orElse(null);
            expect(s0 != null && s0.currentTransactionStartOffset().equals(java.util.OptionalLong.of(3)) && s0.producerEpoch() == d.producerEpoch()
                    && s0.lastSequence() == 3, "describeProducers(" + tp0 + "): " + producers(tp0) + ", expected producer " + pid
                    + " epoch " + d.producerEpoch() + " with a transaction from offset 3, last sequence 3");
            expect(s1 != null && s1.currentTransactionStartOffset().equals(java.util.OptionalLong.of(0)),
                    "describeProducers(" + tp1 + "): " + producers(tp1) + ", expected producer " + pid + " with a transaction from offset 0");
            long others = producers(tp0).stream().filter(s -> s.producerId() != pid && s.currentTransactionStartOffset().isEmpty()).count();
            expect(others == 1, "describeProducers(" + tp0 + "): " + producers(tp0) + ", expected also the non-transactional producer");
            detail.append("describeProducers: txn start offsets 3 / 0, last sequence 3, and the idempotent producer without one; ");

            // abortTransaction on partition 0, as for a hanging transaction: the LSO moves there only.
            Map<Integer, long[]> before = stableOffsets(topic, List.of(0, 1));
            expect(before.get(0)[1] == 3 && before.get(1)[1] == 0, "stable offsets before the abort: " + show(before));
            get(admin.abortTransaction(new AbortTransactionSpec(tp0, pid, (short) s0.producerEpoch(), s0.coordinatorEpoch().orElse(0))).all());
            Map<Integer, long[]> after = stableOffsets(topic, List.of(0, 1));
            expect(after.get(0)[1] == after.get(0)[0] && after.get(0)[0] == 8 && after.get(1)[1] == 0,
                    "after abortTransaction on " + tp0 + ": " + show(after) + ", expected partition 0 stable = latest = 8, partition 1 still 0");
            ProducerState s0After = producers(tp0).stream().filter(s -> s.producerId() == pid).findFirst().orElse(null);
            expect(s0After != null && s0After.currentTransactionStartOffset().isEmpty(), "describeProducers after the abort: " + s0After);
            List<String> seen = values(readAll(topic, List.of(0), true, 60).get(0));
            expect(seen.equals(List.of("before-0-0", "before-0-1", "before-0-2")), "read_committed on " + tp0 + " after the abort: " + seen);
            detail.append("abortTransaction(").append(tp0).append(") -> stable offsets ").append(show(before)).append(" -> ").append(show(after))
                    .append(", read_committed sees only the 3 earlier records; ");

            // The producer aborts its transaction (partition 1 is released too).
            p.abortTransaction();
            Map<Integer, long[]> end = awaitStable(topic, List.of(0, 1), 60);
            expect(end.get(1)[1] == end.get(1)[0], "after the producer's abortTransaction: " + show(end));
            TransactionState state = awaitTxnState(tid, TransactionState.COMPLETE_ABORT, 60).state();
            expect(state == TransactionState.COMPLETE_ABORT, "state 60s after the producer's abort: " + state);
            detail.append("then the producer's abortTransaction: ").append(show(end));
        }
        return detail.toString();
    }

    // ---------------------------------------------------------------------------- helper modes

    static Admin newAdmin() {
        Properties ap = JavaCompat.common("jv-txn-admin-client");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(ap);
    }

    static void createTopics(String[] specs) throws Exception {
        List<NewTopic> ts = new ArrayList<>();
        for (String s : specs) {
            String[] nv = s.split(":");
            ts.add(new NewTopic(nv[0], Integer.parseInt(nv[1]), (short) 1));
        }
        get(admin.createTopics(ts).all());
        System.out.println("created " + String.join(" ", specs));
    }

    static void hold(String topic, String tid, Path stop) throws Exception {
        try (KafkaProducer<String, String> plain = JavaCompat.producer("jt-hold-plain", Map.of())) {
            sendAll(plain, topic, 0, "plain", 2);
            plain.flush();
        }
        // The transaction stays open while run.sh's tool checks (a JVM each) run: 10 minutes, for a busy machine.
        try (KafkaProducer<String, String> p = txnProducer(tid, Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "600000"))) {
            p.initTransactions();
            p.beginTransaction();
            sendAll(p, topic, 0, "open", 3);
            sendAll(p, topic, 1, "open", 3);
            p.flush();
            TransactionDescription d = describeTxn(tid);
            System.out.println("OPEN " + d.producerId() + " " + d.producerEpoch());
            System.out.flush();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(600);
            while (!Files.exists(stop) && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            try {
                p.abortTransaction();
                System.out.println("ABORTED");
            } catch (KafkaException e) {
                System.out.println("ABORT FAILED " + e);
            }
        }
    }

    static void lso(String topic, int parts) throws Exception {
        List<Integer> ps = new ArrayList<>();
        for (int p = 0; p < parts; p++) {
            ps.add(p);
        }
        for (Map.Entry<Integer, long[]> e : stableOffsets(topic, ps).entrySet()) {
            System.out.println(e.getKey() + " " + e.getValue()[0] + " " + e.getValue()[1]);
        }
    }

    /** read_committed and read_uncommitted counts of a topic written only by transactions. */
    static boolean count(String topic, int parts, long want) throws Exception {
        List<Integer> ps = new ArrayList<>();
        for (int p = 0; p < parts; p++) {
            ps.add(p);
        }
        awaitStable(topic, ps, 60);
        Map<Integer, List<Rec>> rc = readAll(topic, ps, true, 60);
        Map<Integer, List<Rec>> ru = readAll(topic, ps, false, 60);
        Map<Integer, long[]> offs = stableOffsets(topic, ps);
        long nc = rc.values().stream().mapToLong(List::size).sum();
        long nu = ru.values().stream().mapToLong(List::size).sum();
        long end = offs.values().stream().mapToLong(o -> o[0]).sum();
        boolean stable = offs.values().stream().allMatch(o -> o[0] == o[1]);
        String line = "read_committed " + nc + ", read_uncommitted " + nu + ", end offsets " + end + " (" + (end - nu)
                + " control records), last stable = latest: " + stable;
        System.out.println(line);
        return nc == want && nu == want && end > nu && stable;
    }

    /** Checks the output of the TransactionalMessageCopier runs against their input. */
    static boolean verifyCopy(String in, String out, String group) throws Exception {
        List<Integer> ps = List.of(0, 1);
        List<String> bad = new ArrayList<>();
        // The input was written by an idempotent producer: its stored batches carry a producer id.
        Set<Long> pids = new TreeSet<>();
        for (int p : ps) {
            long seq = 0;
            for (long[] b : JavaCompat.storedBatches(in, p)) {
                pids.add(b[0]);
                if (b[0] >= 0 && b[2] != seq) {
                    bad.add("input partition " + p + ": base sequence " + b[2] + ", expected " + seq);
                    break;
                }
                seq += b[3];
            }
        }
        if (pids.size() != 1 || pids.iterator().next() < 0) {
            bad.add("input batches carry producer ids " + pids + ", expected one (idempotent producer)");
        }
        awaitStable(out, ps, 60);
        Map<Integer, List<Rec>> input = readAll(in, ps, false, 60);
        Map<Integer, List<Rec>> output = readAll(out, ps, true, 60);
        Map<Integer, List<Rec>> outputAll = readAll(out, ps, false, 60);
        Map<Integer, long[]> offs = stableOffsets(out, ps);
        Set<String> inSet = new HashSet<>();
        input.values().forEach(l -> l.forEach(r -> inSet.add(r.value())));
        long nIn = input.values().stream().mapToLong(List::size).sum();
        Map<String, Integer> seen = new HashMap<>();
        output.values().forEach(l -> l.forEach(r -> seen.merge(r.value(), 1, Integer::sum)));
        List<String> dups = seen.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).sorted().limit(5).collect(Collectors.toList());
        long nDup = seen.values().stream().filter(c -> c > 1).count();
        if (nDup > 0) {
            bad.add(nDup + " values read more than once by read_committed, e.g. " + dups);
        }
        Set<String> missing = new TreeSet<>(inSet);
        missing.removeAll(seen.keySet());
        Set<String> extra = new TreeSet<>(seen.keySet());
        extra.removeAll(inSet);
        if (!missing.isEmpty() || !extra.isEmpty()) {
            bad.add("output set != input set: " + missing.size() + " missing (e.g. " + missing.stream().limit(5).collect(Collectors.toList())
                    + "), " + extra.size() + " unexpected (e.g. " + extra.stream().limit(5).collect(Collectors.toList()) + ")");
        }
        boolean integers = inSet.stream().allMatch(v -> v.matches("[0-9]+"));
        if (nIn != 20000 || inSet.size() != 20000 || !integers) {
            bad.add("input: " + nIn + " records, " + inSet.size() + " distinct, all integers: " + integers + " (expected 20000 distinct integers)");
        }
        for (int p : ps) {
            if (!values(output.get(p)).equals(values(input.get(p)))) {
                List<String> a = values(input.get(p));
                List<String> b = values(output.get(p));
                int i = 0;
                while (i < a.size() && i < b.size() && a.get(i).equals(b.get(i))) {
                    i++;
                }
                bad.add("output partition " + p + " differs from input partition " + p + " at index " + i + " (input " + a.size()
                        + " records, output " + b.size() + ")");
            }
            if (offs.get(p)[0] != offs.get(p)[1]) {
                bad.add("output partition " + p + ": latest " + offs.get(p)[0] + " != last stable " + offs.get(p)[1] + " after every copier exited");
            }
        }
        Map<Integer, Long> committed = groupOffsets(group, in, true);
        Map<Integer, Long> ends = new TreeMap<>();
        input.forEach((p, l) -> ends.put(p, l.isEmpty() ? 0 : l.get(l.size() - 1).offset() + 1));
        if (!committed.equals(ends)) {
            bad.add("group " + group + " offsets " + committed + ", expected the input end offsets " + ends);
        }
        long nOut = output.values().stream().mapToLong(List::size).sum();
        long nOutAll = outputAll.values().stream().mapToLong(List::size).sum();
        long end = offs.values().stream().mapToLong(o -> o[0]).sum();
        String counts = "input " + nIn + " (" + input.get(0).size() + "/" + input.get(1).size() + ", one idempotent producer id, gapless"
                + " sequences); output read_committed " + nOut + " distinct = input set, each partition equal to its input partition in"
                + " order; read_uncommitted " + nOutAll + " (" + (nOutAll - nOut) + " from aborted transactions), " + (end - nOutAll)
                + " control records; group offsets = input end offsets " + ends.values();
        if (bad.isEmpty()) {
            System.out.println(counts);
            return true;
        }
        System.out.println(String.join("; ", bad) + " || " + counts);
        return false;
    }

    // ---------------------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: TxnCompat checks|create-topics|hold|lso|count|verify-copy BOOTSTRAP ...");
            System.exit(2);
        }
        String mode = args[0];
        JavaCompat.boot = args[1];
        JavaCompat.admin = newAdmin();
        int rc = 0;
        try {
            switch (mode) {
                case "checks" -> {
                    check("transactional producer: commit, abort, commit over 3 partitions; read_committed sees exactly the committed"
                            + " records, read_uncommitted all data records", TxnCompat::t1CommitAbort);
                    check("an open transaction holds the last stable offset: read_committed stops there, read_uncommitted reads on",
                            TxnCompat::t1OpenLso);
                    check("fencing: a second producer with the same transactional.id, then Admin.fenceProducers", TxnCompat::t2Fencing);
                    check("consume-transform-produce: sendOffsetsToTransaction(offsets, groupMetadata()) commits offsets and output atomically",
                            TxnCompat::t3ConsumeTransformProduce);
                    check("transaction.timeout.ms=" + T4_TIMEOUT_MS + ": the broker aborts the idle transaction, read_committed moves on, commitTransaction fails",
                            TxnCompat::t4Timeout);
                    check("admin listTransactions / describeTransactions / describeProducers on an open transaction, abortTransaction releases"
                            + " the LSO", TxnCompat::t5Admin);
                    log(JavaCompat.passed + " checks passed, " + JavaCompat.failed + " failed");
                }
                case "create-topics" -> createTopics(java.util.Arrays.copyOfRange(args, 2, args.length));
                case "hold" -> hold(args[2], args[3], Path.of(args[4]));
                case "lso" -> lso(args[2], Integer.parseInt(args[3]));
                case "count" -> rc = count(args[2], Integer.parseInt(args[3]), Long.parseLong(args[4])) ? 0 : 1;
                case "verify-copy" -> {
                    JavaCompat.dataDir = Path.of(args[2]);
                    rc = verifyCopy(args[3], args[4], args[5]) ? 0 : 1;
                }
                default -> {
                    System.err.println("unknown mode " + mode);
                    rc = 2;
                }
            }
        } catch (Throwable e) {
            Throwable t = JavaCompat.unwrap(e);
            System.out.println(t.getClass().getSimpleName() + ": " + t.getMessage());
            e.printStackTrace(System.err);
            rc = 1;
        } finally {
            admin.close(Duration.ofSeconds(10));
        }
        System.out.flush();
        System.exit(rc);
    }
}
