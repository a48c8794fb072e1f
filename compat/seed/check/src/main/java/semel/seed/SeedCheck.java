package semel.seed;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * The seed suite's checker (compat/seed/run.sh): reads what the seed programs leave in the
 * broker. One subcommand per run; it prints one detail line on stdout and exits 0 when the
 * property holds, 1 when it does not.
 *
 * <pre>
 *   create-topic BOOTSTRAP TOPIC PARTITIONS
 *   await-member BOOTSTRAP GROUP TOPIC TIMEOUT_MS   a member owns TOPIC-0 and the group has an offset for it
 *   topic BOOTSTRAP TOPIC N                         exactly N committed records ("key", "value") on TOPIC-0,
 *                                                   nothing aborted or pending
 *   txn BOOTSTRAP TRANSACTIONAL_ID PREV_PID PREV_EPOCH
 *                                                   CompleteCommit, no partitions, the epoch above PREV_EPOCH
 *                                                   (of the same producer id) unless PREV_EPOCH is -1;
 *                                                   prints "pid=P epoch=E ..."
 *   group BOOTSTRAP GROUP TOPIC                     the group is empty and its offset on TOPIC-0 is past the
 *                                                   last record
 * </pre>
 */
public final class SeedCheck {
    private static final Duration READ_TIMEOUT = Duration.ofSeconds(60);

    private SeedCheck() {}

    public static void main(String[] args) throws Exception {
        String bootstrap = args[1];
        String result;
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            switch (args[0]) {
                case "create-topic":
                    admin.createTopics(List.of(new NewTopic(args[2], Integer.parseInt(args[3]), (short) 1))).all().get();
                    result = "created " + args[2] + " with " + args[3] + " partition(s)";
                    break;
                case "await-member":
                    result = awaitMember(admin, args[2], new TopicPartition(args[3], 0), Long.parseLong(args[4]));
                    break;
                case "topic":
                    result = topic(admin, bootstrap, new TopicPartition(args[2], 0), Integer.parseInt(args[3]));
                    break;
                case "txn":
                    result = txn(admin, args[2], Long.parseLong(args[3]), Integer.parseInt(args[4]));
                    break;
                case "group":
                    result = group(admin, bootstrap, args[2], new TopicPartition(args[3], 0));
                    break;
                default:
                    throw new IllegalArgumentException("unknown subcommand " + args[0]);
            }
        } catch (CheckFailed e) {
            System.out.println(e.getMessage());
            System.exit(1);
            return;
        } catch (ExecutionException e) {
            System.out.println(args[0] + ": " + e.getCause());
            System.exit(1);
            return;
        }
        System.out.println(result);
    }

    private static final class CheckFailed extends Exception {
        private static final long serialVersionUID = 1L;

        CheckFailed(String message) {
            super(message);
        }
    }

    private static Properties adminProps(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20000);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        return p;
    }

    private static String awaitMember(Admin admin, String group, TopicPartition tp, long timeoutMs) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        String last = "nothing yet";
        while (true) {
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get();
            Map<TopicPartition, OffsetAndMetadata> offsets =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            MemberDescription owner = d.members().stream()
                .filter(m -> m.assignment().topicPartitions().contains(tp)).findFirst().orElse(null);
            OffsetAndMetadata committed = offsets.get(tp);
            last = "state " + d.groupState() + ", " + d.members().size() + " member(s), owner of " + tp + ": "
                + (owner == null ? "none" : owner.clientId()) + ", committed offset: "
                + (committed == null ? "none" : committed.offset());
            if (owner != null && committed != null) {
                return last;
            }
            if (System.currentTimeMillis() > deadline) {
                throw new CheckFailed("no member owns " + tp + " with a committed offset within " + timeoutMs + " ms; last seen: " + last);
            }
            Thread.sleep(100);
        }
    }

    private static long latest(Admin admin, TopicPartition tp, IsolationLevel isolation) throws Exception {
        return admin.listOffsets(Map.of(tp, OffsetSpec.latest()), new ListOffsetsOptions(isolation))
            .partitionResult(tp).get().offset();
    }

    /** Every record of tp from the beginning up to the end offset of this isolation level. */
    private static List<ConsumerRecord<String, String>> readAll(String bootstrap, TopicPartition tp, IsolationLevel isolation)
            throws CheckFailed {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation.toString());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long end = c.endOffsets(List.of(tp)).get(tp);
            long deadline = System.currentTimeMillis() + READ_TIMEOUT.toMillis();
            while (c.position(tp) < end) {
                if (System.currentTimeMillis() > deadline) {
                    throw new CheckFailed(isolation + " consumer: position " + c.position(tp) + " did not reach the end offset "
                        + end + " within " + READ_TIMEOUT.toSeconds() + " s (" + out.size() + " records read)");
                }
                c.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            // Nothing past the end offset either.
            c.poll(Duration.ofMillis(300)).forEach(out::add);
        }
        return out;
    }

    private static String describe(List<ConsumerRecord<String, String>> records) {
        return records.stream().map(r -> r.offset() + ":" + r.key() + "=" + r.value()).collect(Collectors.joining(", ", "[", "]"));
    }

    private static String topic(Admin admin, String bootstrap, TopicPartition tp, int n) throws Exception {
        List<ConsumerRecord<String, String>> committed = readAll(bootstrap, tp, IsolationLevel.READ_COMMITTED);
        List<ConsumerRecord<String, String>> all = readAll(bootstrap, tp, IsolationLevel.READ_UNCOMMITTED);
        long lso = latest(admin, tp, IsolationLevel.READ_COMMITTED);
        long hw = latest(admin, tp, IsolationLevel.READ_UNCOMMITTED);
        List<String> bad = new ArrayList<>();
        if (committed.size() != n) {
            bad.add("read_committed: " + committed.size() + " records, expected " + n);
        }
        if (!committed.stream().allMatch(r -> "key".equals(r.key()) && "value".equals(r.value()))) {
            bad.add("read_committed: records other than key=value");
        }
        if (!describe(all).equals(describe(committed))) {
            bad.add("read_uncommitted sees other records than read_committed");
        }
        if (lso != hw) {
            bad.add("last stable offset " + lso + " != high watermark " + hw + " (a transaction still open)");
        }
        String facts = "read_committed " + describe(committed) + ", read_uncommitted " + describe(all)
            + ", last stable offset " + lso + ", high watermark " + hw;
        if (!bad.isEmpty()) {
            throw new CheckFailed(String.join("; ", bad) + " || " + facts);
        }
        return n + " committed record(s) key=value; " + facts;
    }

    private static String txn(Admin admin, String id, long prevPid, int prevEpoch) throws Exception {
        TransactionDescription d = admin.describeTransactions(List.of(id)).description(id).get();
        Collection<TransactionListing> listed = admin.listTransactions().all().get();
        TransactionListing listing = listed.stream().filter(l -> l.transactionalId().equals(id)).findFirst().orElse(null);
        String facts = "pid=" + d.producerId() + " epoch=" + d.producerEpoch() + " state " + d.state() + ", partitions "
            + d.topicPartitions() + ", timeout " + d.transactionTimeoutMs() + " ms; listTransactions: "
            + (listing == null ? "absent" : listing.state().toString());
        List<String> bad = new ArrayList<>();
        if (d.state() != TransactionState.COMPLETE_COMMIT) {
            bad.add("state " + d.state() + ", expected CompleteCommit");
        }
        if (!d.topicPartitions().isEmpty()) {
            bad.add("partitions still in the transaction: " + d.topicPartitions());
        }
        if (listing == null || listing.state() != TransactionState.COMPLETE_COMMIT || listing.producerId() != d.producerId()) {
            bad.add("listTransactions does not list it as CompleteCommit with producer id " + d.producerId());
        }
        if (prevEpoch >= 0) {
            if (d.producerId() != prevPid) {
                bad.add("producer id " + d.producerId() + ", the previous program had " + prevPid);
            } else if (d.producerEpoch() <= prevEpoch) {
                bad.add("epoch " + d.producerEpoch() + " not above the previous program's " + prevEpoch);
            }
        }
        if (!bad.isEmpty()) {
            throw new CheckFailed(String.join("; ", bad) + " || " + facts);
        }
        return facts;
    }

    private static String group(Admin admin, String bootstrap, String group, TopicPartition tp) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get();
        OffsetAndMetadata committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().get(tp);
        List<ConsumerRecord<String, String>> records = readAll(bootstrap, tp, IsolationLevel.READ_UNCOMMITTED);
        long lastRecord = records.isEmpty() ? -1 : records.get(records.size() - 1).offset();
        long hw = latest(admin, tp, IsolationLevel.READ_UNCOMMITTED);
        String facts = "state " + d.groupState() + ", " + d.members().size() + " member(s), committed offset "
            + (committed == null ? "none" : committed.offset()) + ", last record at " + lastRecord + ", high watermark " + hw;
        List<String> bad = new ArrayList<>();
        if (d.groupState() != GroupState.EMPTY || !d.members().isEmpty()) {
            bad.add("group not Empty after the consumer closed");
        }
        if (committed == null || committed.offset() <= lastRecord || committed.offset() > hw) {
            bad.add("committed offset not in (last record, high watermark]");
        }
        if (!bad.isEmpty()) {
            throw new CheckFailed(String.join("; ", bad) + " || " + facts);
        }
        return facts;
    }
}
