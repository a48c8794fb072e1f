// Command checks is the Go (franz-go kgo + kadm) harness of compat/go/run.sh: it runs its checks
// against the broker at the address given as its first argument and prints one
// `PASS name (detail, Ns)` / `FAIL name: why` line per check on stdout (client logs go to stderr).
//
//	checks BOOTSTRAP [SCALE]
//
// SCALE (default 1) multiplies the record counts (COMPAT_FULL=1 runs it with a larger one).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	boot  string
	scale = 1
	adm   *kadm.Client
	run   = strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36) // names unique to this run
)

// ---------------------------------------------------------------- plumbing

func check(name string, fn func() (string, error)) {
	t0 := time.Now()
	var detail string
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		detail, err = fn()
	}()
	secs := int(time.Since(t0).Seconds())
	if err != nil {
		fmt.Fprintf(os.Stderr, "--- FAIL %s: %v\n", name, err)
		fmt.Printf("FAIL %s: %s\n", name, oneLine(err.Error()))
		return
	}
	if detail != "" {
		detail += ", "
	}
	fmt.Printf("PASS %s (%s%ds)\n", name, detail, secs)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func logger(tag string) kgo.Opt {
	return kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string {
		return time.Now().UTC().Format("15:04:05.000 ") + tag + " "
	}))
}

func client(tag string, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(boot), logger(tag)}, opts...)...)
	if err != nil {
		panic(err)
	}
	return cl
}

func topicName(what string) string { return "go-" + what + "-" + run }

func createTopic(name string, partitions int32, configs map[string]*string) error {
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	_, err := adm.CreateTopic(ctx, partitions, 1, configs, name)
	return err
}

// consumeAll reads partitions of topic from the start with a direct (group-less) consumer until
// it has want records per partition, then a further `linger` with nothing new.
func consumeAll(topic string, want map[int32]int, level kgo.IsolationLevel, linger time.Duration) (map[int32][]*kgo.Record, error) {
	parts := map[int32]kgo.Offset{}
	for p := range want {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl := client("consume", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	got := map[int32][]*kgo.Record{}
	deadline := time.Now().Add(60 * time.Second)
	var doneAt time.Time
	for {
		complete := true
		for p, n := range want {
			if len(got[p]) < n {
				complete = false
			}
		}
		if complete && doneAt.IsZero() {
			doneAt = time.Now()
		}
		if !doneAt.IsZero() && time.Since(doneAt) >= linger {
			return got, nil
		}
		if time.Now().After(deadline) {
			counts := map[int32]int{}
			for p := range want {
				counts[p] = len(got[p])
			}
			return got, fmt.Errorf("consuming %s timed out after 60s: records per partition %v, expected %v", topic, counts, want)
		}
		ctx, cancel := ctxT(time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return got, fmt.Errorf("fetch error %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Partition] = append(got[r.Partition], r) })
	}
}

func offsetsOf(rs []*kgo.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Offset
	}
	return out
}

func seq(from, to int64) []int64 { // [from, to)
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func ranges(offs []int64) string { // 0-9,22-26
	if len(offs) == 0 {
		return "none"
	}
	var b strings.Builder
	start := offs[0]
	for i := 1; i <= len(offs); i++ {
		if i == len(offs) || offs[i] != offs[i-1]+1 {
			if b.Len() > 0 {
				b.WriteString(",")
			}
			if start == offs[i-1] {
				fmt.Fprintf(&b, "%d", start)
			} else {
				fmt.Fprintf(&b, "%d-%d", start, offs[i-1])
			}
			if i < len(offs) {
				start = offs[i]
			}
		}
	}
	return b.String()
}

// ---------------------------------------------------------------- admin

var (
	tAdmin = topicName("admin")
	tIdem  = topicName("idem")
	tTxn   = topicName("txn")
	codecs = []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	}
)

func cCreateTopics() (string, error) {
	ret := "86400000"
	if err := createTopic(tAdmin, 3, map[string]*string{"retention.ms": &ret}); err != nil {
		return "", err
	}
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	// A second create of the same name must fail with TOPIC_ALREADY_EXISTS.
	resp, err := adm.CreateTopics(ctx, 3, 1, nil, tAdmin)
	if err != nil {
		return "", err
	}
	if e := resp[tAdmin].Err; e == nil || !strings.Contains(e.Error(), "TOPIC_ALREADY_EXISTS") {
		return "", fmt.Errorf("creating %s again: error %v, expected TOPIC_ALREADY_EXISTS", tAdmin, e)
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		return "", err
	}
	td, ok := listed[tAdmin]
	if !ok {
		return "", fmt.Errorf("ListTopics does not list %s (lists %v)", tAdmin, listed.Names())
	}
	if len(td.Partitions) != 3 {
		return "", fmt.Errorf("ListTopics: %s has %d partitions, expected 3", tAdmin, len(td.Partitions))
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader != td.Partitions[0].Leader || len(p.Replicas) != 1 {
			return "", fmt.Errorf("ListTopics: partition %d: leader %d, replicas %v, err %v", p.Partition, p.Leader, p.Replicas, p.Err)
		}
	}
	return "3 partitions, leader " + strconv.Itoa(int(td.Partitions[0].Leader)) + ", second create TOPIC_ALREADY_EXISTS", nil
}

func topicConfig(topic, key string) (string, kadm.Config, error) {
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return "", kadm.Config{}, err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return "", kadm.Config{}, err
	}
	if rc.Err != nil {
		return "", kadm.Config{}, rc.Err
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c.MaybeValue(), c, nil
		}
	}
	return "", kadm.Config{}, fmt.Errorf("DescribeConfigs of %s has no %s among its %d configs", topic, key, len(rc.Configs))
}

func cDescribeConfigs() (string, error) {
	v, c, err := topicConfig(tAdmin, "retention.ms")
	if err != nil {
		return "", err
	}
	if v != "86400000" {
		return "", fmt.Errorf("retention.ms = %q, expected 86400000 (set at creation)", v)
	}
	if c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
		return "", fmt.Errorf("retention.ms source %s, expected DYNAMIC_TOPIC_CONFIG", c.Source)
	}
	return "retention.ms=86400000 DYNAMIC_TOPIC_CONFIG", nil
}

func cAlterConfigs() (string, error) {
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	v := "3600000"
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &v}}, tAdmin)
	if err != nil {
		return "", err
	}
	for _, r := range resp {
		if r.Err != nil {
			return "", fmt.Errorf("IncrementalAlterConfigs %s: %v %s", r.Name, r.Err, r.ErrMessage)
		}
	}
	got, _, err := topicConfig(tAdmin, "retention.ms")
	if err != nil {
		return "", err
	}
	if got != v {
		return "", fmt.Errorf("after IncrementalAlterConfigs retention.ms=%s, DescribeConfigs shows %q", v, got)
	}
	return "IncrementalAlterConfigs retention.ms 86400000 -> 3600000", nil
}

// ---------------------------------------------------------------- produce / consume

func produceRecords(codec string, n int) []*kgo.Record {
	ts := time.UnixMilli(1_700_000_000_000)
	rs := make([]*kgo.Record, n)
	for i := range n {
		r := &kgo.Record{
			Topic:     topicName("codec-" + codec),
			Partition: int32(i % 3),
			Key:       []byte("key-" + strconv.Itoa(i)),
			Value:     bytes.Repeat([]byte(fmt.Sprintf("value %d %s|", i, codec)), 1+i%20),
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}, {Key: "dup", Value: []byte("a")}, {Key: "dup", Value: nil}},
		}
		switch i % 97 {
		case 1:
			r.Key = nil
		case 2:
			r.Value = nil
		case 3:
			r.Value = []byte{}
		case 4:
			r.Value = bytes.Repeat([]byte{0, 0xff, 7}, 100_000) // 300 KB
		}
		rs[i] = r
	}
	return rs
}

func produceCount() int { return 3000 * scale }

func cProduce(codec kgo.CompressionCodec, name string) (string, error) {
	if err := createTopic(topicName("codec-"+name), 3, nil); err != nil {
		return "", err
	}
	cl := client("produce-"+name, kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	defer cl.Close()
	rs := produceRecords(name, produceCount())
	ctx, cancel := ctxT(120 * time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", err
	}
	next := map[int32]int64{}
	for _, r := range rs {
		if r.Offset != next[r.Partition] {
			return "", fmt.Errorf("record %s: partition %d offset %d, expected %d (contiguous from 0)", r.Key, r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
	}
	return fmt.Sprintf("%d records, offsets contiguous from 0 in 3 partitions", len(rs)), nil
}

func cConsume(name string) (string, error) {
	want := produceRecords(name, produceCount())
	perPart := map[int32][]*kgo.Record{}
	for _, r := range want {
		perPart[r.Partition] = append(perPart[r.Partition], r)
	}
	counts := map[int32]int{}
	for p, rs := range perPart {
		counts[p] = len(rs)
	}
	got, err := consumeAll(topicName("codec-"+name), counts, kgo.ReadUncommitted(), 500*time.Millisecond)
	if err != nil {
		return "", err
	}
	for p, rs := range perPart {
		if len(got[p]) != len(rs) {
			return "", fmt.Errorf("partition %d: %d records, expected %d", p, len(got[p]), len(rs))
		}
		for i, w := range rs {
			g := got[p][i]
			if g.Offset != int64(i) || !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) ||
				!bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) ||
				!g.Timestamp.Equal(w.Timestamp) || len(g.Headers) != len(w.Headers) {
				return "", fmt.Errorf("partition %d record %d: got offset %d key %q value %d bytes (nil %v) ts %v %d headers; expected key %q value %d bytes (nil %v) ts %v",
					p, i, g.Offset, g.Key, len(g.Value), g.Value == nil, g.Timestamp.UnixMilli(), len(g.Headers), w.Key, len(w.Value), w.Value == nil, w.Timestamp.UnixMilli())
			}
			for h := range w.Headers {
				if g.Headers[h].Key != w.Headers[h].Key || !bytes.Equal(g.Headers[h].Value, w.Headers[h].Value) || (g.Headers[h].Value == nil) != (w.Headers[h].Value == nil) {
					return "", fmt.Errorf("partition %d record %d header %d: got %q=%q, expected %q=%q", p, i, h, g.Headers[h].Key, g.Headers[h].Value, w.Headers[h].Key, w.Headers[h].Value)
				}
			}
		}
	}
	return fmt.Sprintf("%d records: keys, values (nil, empty, 300 KB), headers (duplicate, null), timestamps, order", len(want)), nil
}

func cListOffsets() (string, error) {
	ctx, cancel := ctxT(30 * time.Second)
	defer cancel()
	topic := topicName("codec-none")
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return "", err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return "", err
	}
	n := produceCount()
	for p := int32(0); p < 3; p++ {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		want := int64(n/3 + map[bool]int{true: 1}[int(p) < n%3])
		if s.Err != nil || e.Err != nil || s.Offset != 0 || e.Offset != want {
			return "", fmt.Errorf("partition %d: start %d (%v), end %d (%v); expected 0 and %d", p, s.Offset, s.Err, e.Offset, e.Err, want)
		}
	}
	// ListOffsets by timestamp: record i has timestamp base+i ms, partition i%3.
	ts := int64(1_700_000_000_000) + 1500
	byTime, err := adm.ListOffsetsAfterMilli(ctx, ts, topic)
	if err != nil {
		return "", err
	}
	for p := int32(0); p < 3; p++ {
		o, _ := byTime.Lookup(topic, p)
		// the first record of partition p at or after timestamp base+1500 is i=1500+((p-1500%3)+3)%3
		first := 1500 + ((int(p)-1500%3)%3+3)%3
		if o.Err != nil || o.Offset != int64(first/3) {
			return "", fmt.Errorf("ListOffsets timestamp %d partition %d: offset %d (%v), expected %d", ts, p, o.Offset, o.Err, first/3)
		}
	}
	return "earliest 0, latest = record count, by timestamp exact", nil
}

// ---------------------------------------------------------------- idempotence

func cIdempotent() (string, error) {
	if err := createTopic(tIdem, 3, nil); err != nil {
		return "", err
	}
	cl := client("idem", kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.MaxBufferedRecords(5000), kgo.ProducerLinger(5*time.Millisecond))
	defer cl.Close()
	n := 20000 * scale
	var mu sync.Mutex
	var errs []error
	last := map[int32]int64{}
	for i := range n {
		key := []byte(strconv.Itoa(i))
		cl.Produce(context.Background(), &kgo.Record{Topic: tIdem, Key: key, Value: []byte("idem " + strconv.Itoa(i))}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if prev, ok := last[r.Partition]; (ok && r.Offset != prev+1) || (!ok && r.Offset != 0) {
				errs = append(errs, fmt.Errorf("record %s: partition %d offset %d after %d", key, r.Partition, r.Offset, prev))
			}
			last[r.Partition] = r.Offset
		})
	}
	ctx, cancel := ctxT(120 * time.Second)
	defer cancel()
	if err := cl.Flush(ctx); err != nil {
		return "", err
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%d produce errors, first: %w", len(errs), errs[0])
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil || pid < 0 {
		return "", fmt.Errorf("ProducerID: %d, %v (expected an id >= 0: the default producer is idempotent)", pid, err)
	}
	counts := map[int32]int{0: int(last[0] + 1), 1: int(last[1] + 1), 2: int(last[2] + 1)}
	got, err := consumeAll(tIdem, counts, kgo.ReadUncommitted(), 500*time.Millisecond)
	if err != nil {
		return "", err
	}
	seen := map[string]bool{}
	total := 0
	for p, rs := range got {
		prevKey := -1
		for i, r := range rs {
			k, _ := strconv.Atoi(string(r.Key))
			if r.Offset != int64(i) || seen[string(r.Key)] || k <= prevKey || r.ProducerID != pid || r.ProducerEpoch != epoch {
				return "", fmt.Errorf("partition %d record %d: offset %d key %s (previous key %d, seen before %v), producer %d/%d (expected %d/%d)",
					p, i, r.Offset, r.Key, prevKey, seen[string(r.Key)], r.ProducerID, r.ProducerEpoch, pid, epoch)
			}
			seen[string(r.Key)] = true
			prevKey = k
			total++
		}
	}
	if total != n {
		return "", fmt.Errorf("consumed %d distinct records, produced %d", total, n)
	}
	// DescribeProducers lists the idempotent producer on each partition, with the last sequence.
	ts := kadm.TopicsSet{}
	ts.Add(tIdem, 0, 1, 2)
	dp, err := adm.DescribeProducers(ctx, ts)
	if err != nil {
		return "", fmt.Errorf("DescribeProducers: %w", err)
	}
	for p := int32(0); p < 3; p++ {
		part := dp[tIdem].Partitions[p]
		if part.Err != nil {
			return "", fmt.Errorf("DescribeProducers %s[%d]: %v %s", tIdem, p, part.Err, part.ErrMessage)
		}
		d, ok := part.ActiveProducers[pid]
		if !ok || d.ProducerEpoch != epoch || d.LastSequence != int32(counts[p]-1) || d.CurrentTxnStartOffset != -1 {
			return "", fmt.Errorf("DescribeProducers %s[%d]: producer %d: %+v (found %v), expected epoch %d, last sequence %d, txn start -1",
				tIdem, p, pid, d, ok, epoch, counts[p]-1)
		}
	}
	return fmt.Sprintf("%d records, producer id %d epoch %d, offsets contiguous, no duplicates, per-partition order; DescribeProducers last sequence per partition", n, pid, epoch), nil
}

func cNotIdempotent() (string, error) {
	topic := topicName("noidem")
	if err := createTopic(topic, 1, nil); err != nil {
		return "", err
	}
	cl := client("noidem", kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()))
	defer cl.Close()
	var rs []*kgo.Record
	for i := range 1000 {
		rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := ctxT(60 * time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", err
	}
	got, err := consumeAll(topic, map[int32]int{0: 1000}, kgo.ReadUncommitted(), 300*time.Millisecond)
	if err != nil {
		return "", err
	}
	for i, r := range got[0] {
		if string(r.Value) != strconv.Itoa(i) || r.ProducerID != -1 {
			return "", fmt.Errorf("record %d: value %q producer id %d, expected %d and -1", i, r.Value, r.ProducerID, i)
		}
	}
	if len(got[0]) != 1000 {
		return "", fmt.Errorf("read %d records, expected 1000", len(got[0]))
	}
	return "1000 records, producer id -1 on the wire", nil
}

// ---------------------------------------------------------------- consumer groups

type member struct {
	name string
	cl   *kgo.Client
	mu   sync.Mutex
	log  []string         // "assigned [0 1]" / "revoked [2]"
	own  map[int32]bool   // current assignment
	recs map[int32][]int64 // offsets consumed per partition
}

func (m *member) event(what string, parts map[string][]int32, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := slices.Clone(parts[topic])
	slices.Sort(ps)
	m.log = append(m.log, fmt.Sprintf("%s %v", what, ps))
	for _, p := range ps {
		m.own[p] = what == "assigned"
	}
}

func (m *member) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p, ok := range m.own {
		if ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func newMember(name, group, topic string, balancer kgo.GroupBalancer) *member {
	m := &member{name: name, own: map[int32]bool{}, recs: map[int32][]int64{}}
	m.cl = client(name, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { m.event("assigned", a, topic) }),
		// A blocking commit of everything polled before giving partitions up (the default
		// callback, replaced here, would leave out the latest poll).
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			m.event("revoked", r, topic)
			if len(r[topic]) > 0 {
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					m.mu.Lock()
					m.log = append(m.log, "commit on revoke failed: "+err.Error())
					m.mu.Unlock()
				}
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { m.event("lost", l, topic) }),
	)
	return m
}

func (m *member) poll(max int) (int, error) {
	ctx, cancel := ctxT(time.Second)
	defer cancel()
	fs := m.cl.PollRecords(ctx, max)
	for _, fe := range fs.Errors() {
		if !errors.Is(fe.Err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("%s: fetch error %s[%d]: %w", m.name, fe.Topic, fe.Partition, fe.Err)
		}
	}
	n := 0
	m.mu.Lock()
	fs.EachRecord(func(r *kgo.Record) { m.recs[r.Partition] = append(m.recs[r.Partition], r.Offset); n++ })
	m.mu.Unlock()
	return n, nil
}

func waitFor(what string, d time.Duration, cond func() bool, poll ...*member) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", d, what)
		}
		for _, m := range poll {
			if _, err := m.poll(50); err != nil { // keep the members polling (and reading) meanwhile
				return err
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func cGroup(balancerName string, balancer func() kgo.GroupBalancer) (string, error) {
	topic := topicName("group-" + balancerName)
	group := topicName("grp-" + balancerName)
	const parts = 4
	if err := createTopic(topic, parts, nil); err != nil {
		return "", err
	}
	n := 4000 * scale
	pcl := client("group-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer pcl.Close()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := ctxT(120 * time.Second)
	defer cancel()
	if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", err
	}
	total := func(ms ...*member) int {
		t := 0
		for _, m := range ms {
			m.mu.Lock()
			for _, o := range m.recs {
				t += len(o)
			}
			m.mu.Unlock()
		}
		return t
	}
	a := newMember("A-"+balancerName, group, topic, balancer())
	defer a.cl.Close()
	// A alone: all 4 partitions; it reads a quarter of the records (100 at a time), then stops
	// polling while B joins.
	for total(a) < n/4 {
		if _, err := a.poll(100); err != nil {
			return "", err
		}
		if len(a.log) == 0 && total(a) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("A read %d records before timing out", total(a))
		}
	}
	if got := a.owned(); len(got) != parts {
		return "", fmt.Errorf("A alone owns partitions %v (events %v), expected all %d", got, a.log, parts)
	}
	b := newMember("B-"+balancerName, group, topic, balancer())
	defer b.cl.Close()
	if err := waitFor("B to be assigned partitions and the group to settle", 60*time.Second, func() bool {
		return len(a.owned()) == parts/2 && len(b.owned()) == parts/2
	}, a, b); err != nil {
		return "", fmt.Errorf("%w: A events %v owns %v, B events %v owns %v", err, a.log, a.owned(), b.log, b.owned())
	}
	// Eager: A's first revocation is everything it owned; cooperative: only what moved to B.
	a.mu.Lock()
	aLog := slices.Clone(a.log)
	a.mu.Unlock()
	firstRevoke := ""
	for _, e := range aLog {
		if strings.HasPrefix(e, "revoked") && e != "revoked []" { // kgo also calls it with nothing to revoke
			firstRevoke = e
			break
		}
	}
	wantRevoke := "revoked [0 1 2 3]"
	if balancerName == "cooperative-sticky" {
		bo := b.owned()
		wantRevoke = fmt.Sprintf("revoked %v", bo)
	}
	if firstRevoke != wantRevoke {
		return "", fmt.Errorf("A's first revocation %q, expected %q (A events %v, B events %v)", firstRevoke, wantRevoke, aLog, b.log)
	}
	// Both read the rest.
	var wg sync.WaitGroup
	var perr error
	var emu sync.Mutex
	for _, m := range []*member{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for total(a, b) < n && ctx.Err() == nil {
				if _, err := m.poll(200); err != nil {
					emu.Lock()
					perr = err
					emu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if perr != nil {
		return "", perr
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("read %d of %d records before timing out", total(a, b), n)
	}
	for _, m := range []*member{a, b} {
		for _, e := range m.log {
			if strings.HasPrefix(e, "commit on revoke failed") {
				return "", fmt.Errorf("%s: %s (events %v)", m.name, e, m.log)
			}
		}
	}
	// Every offset exactly once, per partition in order within each member.
	seen := map[int32]map[int64]int{}
	for _, m := range []*member{a, b} {
		for p, offs := range m.recs {
			if seen[p] == nil {
				seen[p] = map[int64]int{}
			}
			for i, o := range offs {
				if i > 0 && o <= offs[i-1] {
					return "", fmt.Errorf("%s read partition %d out of order: %d after %d", m.name, p, o, offs[i-1])
				}
				seen[p][o]++
			}
		}
	}
	for p := int32(0); p < parts; p++ {
		for o := int64(0); o < int64(n/parts); o++ {
			if seen[p][o] != 1 {
				return "", fmt.Errorf("partition %d offset %d read %d times (expected once; A events %v, B events %v)", p, o, seen[p][o], a.log, b.log)
			}
		}
	}
	for _, m := range []*member{a, b} {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			return "", fmt.Errorf("%s: commit: %w", m.name, err)
		}
	}
	// kadm: the group as the broker describes it.
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return "", err
	}
	d := dg[group]
	if d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != balancerName || len(d.Members) != 2 {
		return "", fmt.Errorf("DescribeGroups: err %v state %q protocol type %q protocol %q %d members; expected Stable consumer %s 2",
			d.Err, d.State, d.ProtocolType, d.Protocol, len(d.Members), balancerName)
	}
	assigned := d.AssignedPartitions()
	if got := assigned.Sorted(); len(got) != 1 || len(got[0].Partitions) != parts {
		return "", fmt.Errorf("DescribeGroups: assigned partitions %v, expected all %d of %s", got, parts, topic)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		return "", err
	}
	if l, ok := lg[group]; !ok || l.ProtocolType != "consumer" || l.State != "Stable" {
		return "", fmt.Errorf("ListGroups: %s listed %v as %+v", group, ok, l)
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return "", err
	}
	for p := int32(0); p < parts; p++ {
		o, ok := fo.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != int64(n/parts) {
			return "", fmt.Errorf("OffsetFetch %s[%d]: %+v (found %v), expected %d", topic, p, o, ok, n/parts)
		}
	}
	lag, err := adm.Lag(ctx, group)
	if err != nil {
		return "", err
	}
	if l := lag[group]; l.Error() != nil || l.Lag.Total() != 0 {
		return "", fmt.Errorf("Lag: total %d, err %v; expected 0", l.Lag.Total(), l.Error())
	}
	return fmt.Sprintf("%d records each read once; A's first revocation %q; DescribeGroups Stable %s 2 members; ListGroups; OffsetFetch = end offsets; Lag 0",
		n, firstRevoke, d.Protocol), nil
}

func cGroupAdmin() (string, error) {
	ctx, cancel := ctxT(60 * time.Second)
	defer cancel()
	group := topicName("grp-admin")
	topic := topicName("codec-none")
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1, Metadata: "m0"})
	os.Add(kadm.Offset{Topic: topic, Partition: 2, At: 11, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, group, os)
	if err != nil {
		return "", err
	}
	if err := cr.Error(); err != nil {
		return "", fmt.Errorf("OffsetCommit: %w", err)
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return "", err
	}
	o0, ok0 := fo.Lookup(topic, 0)
	o2, ok2 := fo.Lookup(topic, 2)
	if !ok0 || !ok2 || o0.At != 7 || o0.Metadata != "m0" || o2.At != 11 {
		return "", fmt.Errorf("OffsetFetch: p0 %+v (%v), p2 %+v (%v); expected 7 with metadata m0 and 11", o0, ok0, o2, ok2)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		return "", err
	}
	if l, ok := lg[group]; !ok || l.State != "Empty" {
		return "", fmt.Errorf("ListGroups: %s listed %v, state %q; expected Empty", group, ok, l.State)
	}
	dr, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		return "", err
	}
	if err := dr.Error(); err != nil {
		return "", fmt.Errorf("DeleteGroups: %w", err)
	}
	lg, err = adm.ListGroups(ctx)
	if err != nil {
		return "", err
	}
	if _, ok := lg[group]; ok {
		return "", fmt.Errorf("ListGroups still lists %s after DeleteGroups", group)
	}
	return "OffsetCommit (with metadata), OffsetFetch, ListGroups Empty, DeleteGroups", nil
}

// cMoreAdmin: BrokerMetadata, CreatePartitions, DeleteRecords and OffsetDelete on the topic of
// the codec=zstd checks (3000 records in 3 partitions).
func cMoreAdmin() (string, error) {
	ctx, cancel := ctxT(60 * time.Second)
	defer cancel()
	topic := topicName("codec-zstd")
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return "", err
	}
	if len(md.Brokers) != 1 || md.Controller != md.Brokers[0].NodeID {
		return "", fmt.Errorf("BrokerMetadata: brokers %v, controller %d; expected one broker, the controller", md.Brokers, md.Controller)
	}
	cp, err := adm.CreatePartitions(ctx, 1, topic)
	if err != nil {
		return "", err
	}
	if e := cp[topic].Err; e != nil {
		return "", fmt.Errorf("CreatePartitions +1: %v %s", e, cp[topic].ErrMessage)
	}
	listed, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return "", err
	}
	if n := len(listed[topic].Partitions); n != 4 {
		return "", fmt.Errorf("after CreatePartitions +1: %d partitions, expected 4", n)
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 250})
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		return "", err
	}
	if r := dr[topic][1]; r.Err != nil || r.LowWatermark != 250 {
		return "", fmt.Errorf("DeleteRecords partition 1 before 250: low watermark %d, err %v", r.LowWatermark, r.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return "", err
	}
	if o, _ := starts.Lookup(topic, 1); o.Offset != 250 {
		return "", fmt.Errorf("after DeleteRecords: start offset of partition 1 is %d, expected 250", o.Offset)
	}
	n := produceCount()
	left := n/3 + map[bool]int{true: 1}[1 < n%3] - 250 // partition 1's records from offset 250 on
	got, err := consumeAll(topic, map[int32]int{1: left}, kgo.ReadUncommitted(), 300*time.Millisecond)
	if err != nil {
		return "", err
	}
	if rs := got[1]; len(rs) != left || rs[0].Offset != 250 {
		return "", fmt.Errorf("after DeleteRecords: read %d records of partition 1 from the start, first offset %d; expected %d from 250", len(rs), rs[0].Offset, left)
	}
	group := topicName("grp-offsetdelete")
	cos := kadm.Offsets{}
	cos.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1})
	cos.Add(kadm.Offset{Topic: topic, Partition: 2, At: 6, LeaderEpoch: -1})
	if cr, err := adm.CommitOffsets(ctx, group, cos); err != nil || cr.Error() != nil {
		return "", fmt.Errorf("OffsetCommit: %v %v", err, cr.Error())
	}
	ts := kadm.TopicsSet{}
	ts.Add(topic, 0)
	del, err := adm.DeleteOffsets(ctx, group, ts)
	if err != nil {
		return "", err
	}
	if err := del.Error(); err != nil {
		return "", fmt.Errorf("OffsetDelete: %w", err)
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return "", err
	}
	o0, ok0 := fo.Lookup(topic, 0)
	o2, ok2 := fo.Lookup(topic, 2)
	if (ok0 && o0.At >= 0) || !ok2 || o2.At != 6 {
		return "", fmt.Errorf("after OffsetDelete of partition 0: partition 0 %+v (present %v), partition 2 %+v (present %v); expected 0 gone, 2 at 6", o0, ok0, o2, ok2)
	}
	return "1 broker (controller); CreatePartitions 3 -> 4; DeleteRecords low watermark 250, reads from 250; OffsetDelete removes one partition's offset", nil
}

func cDeleteTopics() (string, error) {
	ctx, cancel := ctxT(120 * time.Second)
	defer cancel()
	topic := topicName("codec-gzip")
	resp, err := adm.DeleteTopics(ctx, topic)
	if err != nil {
		return "", err
	}
	if err := resp.Error(); err != nil {
		return "", fmt.Errorf("DeleteTopics: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			return "", err
		}
		if !listed.Has(topic) {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s still listed 60s after DeleteTopics", topic)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err = adm.DeleteTopics(ctx, topic)
	if err != nil {
		return "", err
	}
	if e := resp[topic].Err; e == nil || !strings.Contains(e.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		return "", fmt.Errorf("deleting %s again: %v, expected UNKNOWN_TOPIC_OR_PARTITION", topic, e)
	}
	return "gone from ListTopics; second delete UNKNOWN_TOPIC_OR_PARTITION", nil
}

// ---------------------------------------------------------------- transactions

var txnState struct {
	done    bool
	txid    string
	pid     int64
	epoch   int16
	records map[string][][]byte // commit1 / abort / open values per partition (as one list, partition-major)
}

// cTxnOpen: commit 10 / abort 10 per partition, then leave a third transaction (5 per partition)
// open and look at it: end offsets by isolation level, both isolation levels' reads, and the
// KIP-664 admin calls (ListTransactions, DescribeTransactions, DescribeProducers). Then commit it.
func cTxnReadCommitted() (string, error) {
	if err := createTopic(tTxn, 2, nil); err != nil {
		return "", err
	}
	txid := topicName("txn-producer")
	cl := client("txn", kgo.TransactionalID(txid), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(60*time.Second))
	defer cl.Close()
	ctx, cancel := ctxT(120 * time.Second)
	defer cancel()
	produce := func(tag string, n int) error {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
		var rs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			for i := range n {
				rs = append(rs, &kgo.Record{Topic: tTxn, Partition: p, Value: []byte(fmt.Sprintf("%s %d", tag, i))})
			}
		}
		return cl.ProduceSync(ctx, rs...).FirstErr()
	}
	if err := produce("commit", 10); err != nil {
		return "", err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	if err := produce("abort", 10); err != nil {
		return "", err
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return "", fmt.Errorf("abort: %w", err)
	}
	if err := produce("open", 5); err != nil {
		return "", err
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return "", err
	}
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	// Offsets: 0-9 committed, 10 marker, 11-20 aborted, 21 marker, 22-26 open.
	hwm, err := adm.ListEndOffsets(ctx, tTxn)
	if err != nil {
		return "", err
	}
	lso, err := adm.ListCommittedOffsets(ctx, tTxn)
	if err != nil {
		return "", err
	}
	for p := int32(0); p < 2; p++ {
		h, _ := hwm.Lookup(tTxn, p)
		l, _ := lso.Lookup(tTxn, p)
		if h.Offset != 27 || l.Offset != 22 {
			bad("open: partition %d end offset read_uncommitted %d (want 27), read_committed %d (want 22)", p, h.Offset, l.Offset)
		}
	}
	rc, err := consumeAll(tTxn, map[int32]int{0: 10, 1: 10}, kgo.ReadCommitted(), 2*time.Second)
	if err != nil {
		return "", err
	}
	ru, err := consumeAll(tTxn, map[int32]int{0: 25, 1: 25}, kgo.ReadUncommitted(), time.Second)
	if err != nil {
		return "", err
	}
	for p := int32(0); p < 2; p++ {
		if got := ranges(offsetsOf(rc[p])); got != "0-9" {
			bad("open: read_committed partition %d read offsets %s, want 0-9", p, got)
		}
		if got := ranges(offsetsOf(ru[p])); got != "0-9,11-20,22-26" {
			bad("open: read_uncommitted partition %d read offsets %s, want 0-9,11-20,22-26", p, got)
		}
	}
	lt, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		bad("ListTransactions: %v", err)
	} else if l, ok := lt[txid]; !ok || l.State != "Ongoing" || l.ProducerID != pid {
		bad("ListTransactions: %s listed %v as %+v, want Ongoing producer %d", txid, ok, l, pid)
	}
	lt, err = adm.ListTransactions(ctx, []int64{pid}, []string{"Ongoing"})
	if err != nil || len(lt) != 1 {
		bad("ListTransactions(producer %d, Ongoing): %v, %v; want exactly %s", pid, lt.TransactionalIDs(), err, txid)
	}
	dt, err := adm.DescribeTransactions(ctx, txid)
	if err != nil {
		bad("DescribeTransactions: %v", err)
	} else {
		d := dt[txid]
		if d.Err != nil || d.State != "Ongoing" || d.ProducerID != pid || d.ProducerEpoch != epoch || d.TimeoutMillis != 60000 ||
			d.StartTimestamp <= 0 || !slices.Equal(d.Topics.Sorted()[0].Partitions, []int32{0, 1}) {
			bad("DescribeTransactions: %+v, want Ongoing producer %d/%d timeout 60000, a start time, %s [0 1]", d, pid, epoch, tTxn)
		}
	}
	ts := kadm.TopicsSet{}
	ts.Add(tTxn, 0, 1)
	dp, err := adm.DescribeProducers(ctx, ts)
	if err != nil {
		bad("DescribeProducers: %v", err)
	} else {
		for p := int32(0); p < 2; p++ {
			d, ok := dp[tTxn].Partitions[p].ActiveProducers[pid]
			if !ok || d.CurrentTxnStartOffset != 22 || d.ProducerEpoch != epoch {
				bad("DescribeProducers %s[%d] open: %+v (found %v), want producer %d epoch %d, current txn start offset 22", tTxn, p, d, ok, pid, epoch)
			}
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return "", fmt.Errorf("commit of the open transaction: %w", err)
	}
	rc, err = consumeAll(tTxn, map[int32]int{0: 15, 1: 15}, kgo.ReadCommitted(), time.Second)
	if err != nil {
		return "", err
	}
	for p := int32(0); p < 2; p++ {
		vals := []string{}
		for _, r := range rc[p] {
			vals = append(vals, string(r.Value))
		}
		if got := ranges(offsetsOf(rc[p])); got != "0-9,22-26" || vals[0] != "commit 0" || vals[10] != "open 0" {
			bad("after commit: read_committed partition %d read offsets %s (%v), want 0-9,22-26 (commit 0-9, open 0-4)", p, got, vals)
		}
	}
	hwm, _ = adm.ListEndOffsets(ctx, tTxn)
	lso, _ = adm.ListCommittedOffsets(ctx, tTxn)
	for p := int32(0); p < 2; p++ {
		h, _ := hwm.Lookup(tTxn, p)
		l, _ := lso.Lookup(tTxn, p)
		if h.Offset != 28 || l.Offset != 28 {
			bad("after commit: partition %d end offsets %d / %d, want 28 with both isolation levels", p, h.Offset, l.Offset)
		}
	}
	dt, err = adm.DescribeTransactions(ctx, txid)
	if err != nil || dt[txid].State != "CompleteCommit" {
		bad("DescribeTransactions after commit: %+v %v, want CompleteCommit", dt[txid], err)
	}
	dp, err = adm.DescribeProducers(ctx, ts)
	if err == nil {
		if d, ok := dp[tTxn].Partitions[0].ActiveProducers[pid]; !ok || d.CurrentTxnStartOffset != -1 {
			bad("DescribeProducers after commit: %+v (found %v), want current txn start offset -1", d, ok)
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	return "while open: LSO 22 / HWM 27, read_committed 0-9, read_uncommitted 25; ListTransactions, DescribeTransactions Ongoing, DescribeProducers txn start 22; after commit: read_committed 0-9,22-26, end 28, CompleteCommit", nil
}

// cTxnFencing: a second producer with the same transactional id fences the first, whose open
// transaction is aborted; the first cannot commit, the second's transaction commits.
func cTxnFencing() (string, error) {
	topic := topicName("fence")
	if err := createTopic(topic, 1, nil); err != nil {
		return "", err
	}
	txid := topicName("fenced-producer")
	ctx, cancel := ctxT(90 * time.Second)
	defer cancel()
	first := client("fence-1", kgo.TransactionalID(txid), kgo.TransactionTimeout(60*time.Second))
	defer first.Close()
	if err := first.BeginTransaction(); err != nil {
		return "", err
	}
	if err := first.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("first")}).FirstErr(); err != nil {
		return "", err
	}
	pid1, epoch1, _ := first.ProducerID(ctx)
	second := client("fence-2", kgo.TransactionalID(txid), kgo.TransactionTimeout(60*time.Second))
	defer second.Close()
	pid2, epoch2, err := second.ProducerID(ctx)
	if err != nil {
		return "", fmt.Errorf("second producer: InitProducerId: %w", err)
	}
	if pid2 != pid1 || epoch2 <= epoch1 {
		return "", fmt.Errorf("second producer got %d/%d, expected producer id %d with an epoch above %d", pid2, epoch2, pid1, epoch1)
	}
	err = first.EndTransaction(ctx, kgo.TryCommit)
	if err == nil {
		err = first.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("first again")}).FirstErr()
	}
	if err == nil || !(errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch)) {
		return "", fmt.Errorf("fenced producer's commit: %v, expected PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	fenceErr := err
	if err := second.BeginTransaction(); err != nil {
		return "", err
	}
	if err := second.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("second")}).FirstErr(); err != nil {
		return "", err
	}
	if err := second.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return "", fmt.Errorf("second producer's commit: %w", err)
	}
	got, err := consumeAll(topic, map[int32]int{0: 1}, kgo.ReadCommitted(), time.Second)
	if err != nil {
		return "", err
	}
	var vals []string
	for _, r := range got[0] {
		vals = append(vals, string(r.Value))
	}
	if len(vals) != 1 || vals[0] != "second" {
		return "", fmt.Errorf("read_committed read %q, expected only the second producer's record", vals)
	}
	return fmt.Sprintf("epoch %d -> %d; the fenced producer's commit: %v; read_committed reads only the second's record", epoch1, epoch2, oneLine(fenceErr.Error())), nil
}

// cGroupTransact: consume-transform-produce with two GroupTransactSessions (the second joins
// midway, the first aborts its first transaction): the output read with read_committed holds
// exactly one copy of every input record.
func cGroupTransact() (string, error) {
	in, out, group := topicName("gts-in"), topicName("gts-out"), topicName("grp-gts")
	const parts = 4
	for _, t := range []string{in, out} {
		if err := createTopic(t, parts, nil); err != nil {
			return "", err
		}
	}
	n := 3000 * scale
	pcl := client("gts-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer pcl.Close()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: in, Partition: int32(i % parts), Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := ctxT(180 * time.Second)
	defer cancel()
	if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", err
	}
	var mu sync.Mutex
	committed := map[string]int{} // input "p/offset" -> times in a committed transaction
	var aborted, commits, failedEnds int
	var firstErr error
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(committed) >= n || firstErr != nil
	}
	session := func(name string, abortFirst bool, stop <-chan struct{}) {
		s, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(boot), logger(name),
			kgo.TransactionalID(topicName("gts-"+name)), kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(500*time.Millisecond), kgo.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
			return
		}
		defer s.Close()
		for !done() && ctx.Err() == nil {
			select {
			case <-stop:
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := s.PollRecords(pctx, 150)
			pcancel()
			for _, fe := range fs.Errors() {
				if !errors.Is(fe.Err, context.DeadlineExceeded) {
					mu.Lock()
					firstErr = fmt.Errorf("%s: fetch %s[%d]: %w", name, fe.Topic, fe.Partition, fe.Err)
					mu.Unlock()
					return
				}
			}
			if fs.NumRecords() == 0 {
				continue
			}
			if err := s.Begin(); err != nil {
				mu.Lock()
				firstErr = fmt.Errorf("%s: begin: %w", name, err)
				mu.Unlock()
				return
			}
			var keys []string
			var outs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				k := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
				keys = append(keys, k)
				outs = append(outs, &kgo.Record{Topic: out, Partition: r.Partition, Key: []byte(k), Value: append([]byte("copy of "), r.Value...)})
			})
			perr := s.ProduceSync(ctx, outs...).FirstErr()
			how := kgo.TryCommit
			if perr != nil || abortFirst {
				how = kgo.TryAbort
			}
			ok, err := s.End(ctx, how)
			mu.Lock()
			switch {
			case err != nil:
				failedEnds++
				fmt.Fprintf(os.Stderr, "%s: End: %v (produce error %v)\n", name, err, perr)
			case ok:
				commits++
				for _, k := range keys {
					committed[k]++
				}
			default:
				aborted++
			}
			mu.Unlock()
			abortFirst = false
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); session("s1", true, stop) }()
	// The second session joins once the first has committed something.
	for {
		mu.Lock()
		c := commits
		mu.Unlock()
		if c > 0 || done() || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Add(1)
	go func() { defer wg.Done(); session("s2", false, stop) }()
	for !done() && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if firstErr != nil {
		return "", firstErr
	}
	if len(committed) < n {
		return "", fmt.Errorf("only %d of %d input records were in committed transactions after 180s (%d commits, %d aborts, %d failed ends)", len(committed), n, commits, aborted, failedEnds)
	}
	for k, c := range committed {
		if c != 1 {
			return "", fmt.Errorf("input record %s was in %d committed transactions (the group offsets let it be read again after a commit)", k, c)
		}
	}
	if aborted == 0 {
		return "", fmt.Errorf("the first transaction was not aborted (%d commits)", commits)
	}
	want := map[int32]int{}
	for p := int32(0); p < parts; p++ {
		want[p] = n / parts
	}
	got, err := consumeAll(out, want, kgo.ReadCommitted(), 2*time.Second)
	if err != nil {
		return "", err
	}
	copies := map[string]int{}
	total := 0
	for p, rs := range got {
		for _, r := range rs {
			copies[string(r.Key)]++
			total++
			if !strings.HasPrefix(string(r.Key), strconv.Itoa(int(p))+"/") {
				return "", fmt.Errorf("output partition %d holds the copy of %s", p, r.Key)
			}
		}
	}
	if total != n || len(copies) != n {
		return "", fmt.Errorf("read_committed output: %d records, %d distinct inputs; expected exactly one copy of each of %d", total, len(copies), n)
	}
	all, err := consumeAll(out, want, kgo.ReadUncommitted(), 2*time.Second)
	if err != nil {
		return "", err
	}
	uncommitted := 0
	for _, rs := range all {
		uncommitted += len(rs)
	}
	if uncommitted <= n {
		return "", fmt.Errorf("read_uncommitted output: %d records, expected more than %d (the aborted copies)", uncommitted, n)
	}
	ends, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return "", err
	}
	for p := int32(0); p < parts; p++ {
		if o, _ := ends.Lookup(in, p); o.At != int64(n/parts) {
			return "", fmt.Errorf("group %s committed offset of %s[%d]: %d, expected %d", group, in, p, o.At, n/parts)
		}
	}
	return fmt.Sprintf("%d input records: %d commits, %d aborts, %d failed ends; read_committed output exactly one copy of each, read_uncommitted %d (aborted copies); group offsets at the end",
		n, commits, aborted, failedEnds, uncommitted), nil
}

// ---------------------------------------------------------------- main

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: checks BOOTSTRAP [SCALE]")
		os.Exit(2)
	}
	boot = os.Args[1]
	if len(os.Args) > 2 {
		scale, _ = strconv.Atoi(os.Args[2])
		scale = max(scale, 1)
	}
	cl := client("admin")
	defer cl.Close()
	adm = kadm.NewClient(cl)
	if bi, ok := debug.ReadBuildInfo(); ok {
		var deps []string
		for _, d := range bi.Deps {
			if strings.HasPrefix(d.Path, "github.com/twmb/franz-go") {
				deps = append(deps, d.Path+" "+d.Version)
			}
		}
		sort.Strings(deps)
		fmt.Printf("# %s; %s\n", strings.Join(deps, ", "), bi.GoVersion)
	}
	check("admin: CreateTopics 3 partitions + retention.ms, ListTopics", cCreateTopics)
	check("admin: DescribeTopicConfigs shows retention.ms", cDescribeConfigs)
	check("admin: AlterTopicConfigs (IncrementalAlterConfigs) retention.ms", cAlterConfigs)
	for _, c := range codecs {
		check("produce ProduceSync acks=all compression="+c.name+": offsets contiguous", func() (string, error) { return cProduce(c.codec, c.name) })
	}
	for _, c := range codecs {
		check("consume ConsumePartitions compression="+c.name+": exact content and order", func() (string, error) { return cConsume(c.name) })
	}
	check("admin: ListStartOffsets / ListEndOffsets / ListOffsetsAfterMilli", cListOffsets)
	check("idempotence: default producer, 20k records lz4, no duplicates, order; DescribeProducers", cIdempotent)
	check("idempotence: DisableIdempotentWrite produces without a producer id", cNotIdempotent)
	check("groups: range (eager) balancer, second member joins: all partitions revoked, each record once, commits", func() (string, error) {
		return cGroup("range", func() kgo.GroupBalancer { return kgo.RangeBalancer() })
	})
	check("groups: cooperative-sticky balancer, second member joins: only moved partitions revoked, each record once, commits", func() (string, error) {
		return cGroup("cooperative-sticky", func() kgo.GroupBalancer { return kgo.CooperativeStickyBalancer() })
	})
	check("admin: CommitOffsets / FetchOffsets / ListGroups / DeleteGroups", cGroupAdmin)
	check("admin: BrokerMetadata, CreatePartitions, DeleteRecords, DeleteOffsets (OffsetDelete)", cMoreAdmin)
	check("admin: DeleteTopics then gone from ListTopics", cDeleteTopics)
	check("transactions: commit / abort / open; LSO, read_committed vs read_uncommitted; ListTransactions, DescribeTransactions, DescribeProducers", cTxnReadCommitted)
	check("transactions: a second producer with the same transactional id fences the first", cTxnFencing)
	check("transactions: GroupTransactSession consume-transform-produce, 2 members, one abort: exactly one copy", cGroupTransact)
}
