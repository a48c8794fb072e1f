'use strict';
// The checks of compat/node/run.sh, for one client: `node harness.js CLIENT BOOTSTRAP DATA_DIR`
// with CLIENT `kafkajs` (kafkajs, pure JavaScript) or `confluent` (@confluentinc/kafka-javascript,
// librdkafka, through its KafkaJS-compatible API). Prints one `PASS name (detail, Ns)` /
// `FAIL name: why` line per check on stdout, progress and client logs on stderr.
// COMPAT_FULL=1: more messages per check. Topics and groups are prefixed with the client's name,
// so both clients can run at the same time against one broker.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const CLIENT = process.argv[2];
const BOOT = process.argv[3];
const DATA_DIR = process.argv[4];
const FULL = process.env.COMPAT_FULL === '1';
const N_CODEC = FULL ? 20000 : 2000; // messages per codec
const N_IDEM = FULL ? 20000 : 3000;
const N_GROUP = FULL ? 3000 : 600;
const N_CTP = FULL ? 600 : 120; // consume-transform-produce input messages
const PARTITIONS = 3;
const P = CLIENT === 'kafkajs' ? 'kjs' : 'ckjs'; // topic / group prefix
const NOW = Date.now();
const CODEC_IDS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

const log = (...a) => process.stderr.write(`[${CLIENT} ${new Date().toISOString().slice(11, 23)}] ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
class CheckFailed extends Error {}
function expect(cond, msg) { if (!cond) throw new CheckFailed(msg); }
const uid = () => crypto.randomBytes(4).toString('hex');

// ------------------------------------------------------------------ the client adapter
// Both clients are driven through the same KafkaJS-style calls; A hides the differences.
let A;
async function setupKafkajs() {
  const { Kafka, CompressionTypes, CompressionCodecs, logLevel, ConfigResourceTypes } = require('kafkajs');
  const SnappyCodec = require('kafkajs-snappy');
  const lz4 = require('lz4js');
  const zstd = require('@bokuweb/zstd-wasm');
  await zstd.init();
  // kafkajs ships gzip only; snappy, LZ4 and ZSTD are codecs one registers. LZ4 (frame format)
  // and ZSTD come from pure-JS / wasm libraries here (no native build).
  CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    async compress(encoder) { return Buffer.from(lz4.compress(encoder.buffer)); },
    async decompress(buffer) { return Buffer.from(lz4.decompress(buffer)); },
  });
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    async compress(encoder) { return Buffer.from(zstd.compress(encoder.buffer, 3)); },
    async decompress(buffer) { return Buffer.from(zstd.decompress(buffer)); },
  });
  const kafka = new Kafka({
    clientId: 'semel-compat-kafkajs', brokers: [BOOT], logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log: l }) => log(`kafkajs ${level} ${namespace}: ${l.message} ${l.error || ''}`),
    retry: { retries: 8, initialRetryTime: 100 },
  });
  const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD };
  A = {
    version: `kafkajs ${require('kafkajs/package.json').version} (snappy: kafkajs-snappy ${require('kafkajs-snappy/package.json').version}, lz4: lz4js ${require('lz4js/package.json').version}, zstd: @bokuweb/zstd-wasm ${JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules/@bokuweb/zstd-wasm/package.json'))).version})`,
    codecs: Object.keys(codecs),
    producer({ idempotent = false, transactionalId, codec = 'none', transactionTimeout, acks = -1, autoCreate = false } = {}) {
      const p = kafka.producer({ idempotent, transactionalId, transactionTimeout, maxInFlightRequests: idempotent || transactionalId ? 1 : undefined, allowAutoTopicCreation: autoCreate });
      p._codec = codecs[codec];
      p._acks = acks;
      if (transactionalId) { // the transaction's sends use the producer's codec too
        const begin = p.transaction.bind(p);
        p.transaction = async () => { const t = await begin(); t._codec = p._codec; return t; };
      }
      return p;
    },
    send(p, topic, messages) { return p.send({ topic, messages, acks: p._acks === undefined ? -1 : p._acks, compression: p._codec }); },
    consumer({ groupId, readUncommitted = false, fromBeginning = true, autoCommit = true, sessionTimeout = 10000, maxBytes }) {
      const c = kafka.consumer({ groupId, readUncommitted, sessionTimeout, heartbeatInterval: 500, rebalanceTimeout: 10000, maxWaitTimeInMs: 200, allowAutoTopicCreation: false,
        ...(maxBytes ? { maxBytes, maxBytesPerPartition: maxBytes } : {}) });
      c._opts = { fromBeginning, autoCommit };
      c._assignment = null;
      c.on(c.events.GROUP_JOIN, (e) => { c._assignment = e.payload.memberAssignment; });
      return c;
    },
    async subscribeRun(c, topic, handlers) {
      await c.subscribe({ topics: [topic], fromBeginning: c._opts.fromBeginning });
      await c.run({ autoCommit: c._opts.autoCommit, autoCommitInterval: 500, ...handlers });
    },
    assignment(c) { // [partition...] of the single subscribed topic, null before the first join
      if (!c._assignment) return null;
      return Object.values(c._assignment).flat().sort((a, b) => a - b);
    },
    admin() { return kafka.admin(); },
    async describeConfig(admin, topic, name) {
      const r = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }], includeSynonyms: false });
      const e = r.resources[0].configEntries.find((x) => x.configName === name);
      return e ? e.configValue : undefined;
    },
    groupState: (s) => String(s),
    async createPartitions(admin, topic, count) { await admin.createPartitions({ topicPartitions: [{ topic, count }] }); },
    async sendOffsets(txn, consumer, groupId, topics) { await txn.sendOffsets({ consumerGroupId: groupId, topics }); },
  };
}

async function setupConfluent() {
  const ck = require('@confluentinc/kafka-javascript');
  const { Kafka, CompressionTypes, logLevel } = ck.KafkaJS;
  const kafka = new Kafka({ kafkaJS: { clientId: 'semel-compat-ckjs', brokers: [BOOT], logLevel: logLevel.WARN,
    logger: { info() {}, debug() {}, warn: (m, x) => log(`WARN ${m} ${x ? JSON.stringify(x) : ''}`), error: (m, x) => log(`ERROR ${m} ${x ? JSON.stringify(x) : ''}`), namespace() { return this; }, setLogLevel() {} } } });
  const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.SNAPPY, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD };
  A = {
    version: `@confluentinc/kafka-javascript ${require('@confluentinc/kafka-javascript/package.json').version} (librdkafka ${ck.librdkafkaVersion}, built from the bundled source; features ${ck.features.join(',')})`,
    codecs: Object.keys(codecs),
    producer({ idempotent = false, transactionalId, codec = 'none', transactionTimeout, acks = -1, autoCreate = false } = {}) {
      // librdkafka: a transactional producer must say enable.idempotence=true
      const kjs = { acks, compression: codecs[codec], idempotent: idempotent || !!transactionalId, allowAutoTopicCreation: autoCreate };
      if (transactionalId) kjs.transactionalId = transactionalId;
      if (transactionTimeout) kjs.transactionTimeout = transactionTimeout;
      return kafka.producer({ kafkaJS: kjs, 'linger.ms': 5 });
    },
    send(p, topic, messages) { return p.send({ topic, messages }); },
    consumer({ groupId, readUncommitted = false, fromBeginning = true, autoCommit = true, assignor, sessionTimeout = 10000, maxBytes, extra = {} }) {
      return kafka.consumer({ ...extra, kafkaJS: { groupId, readUncommitted, fromBeginning, autoCommit, autoCommitInterval: 500, ...(assignor ? { partitionAssigners: [assignor] } : {}),
        ...(maxBytes ? { maxBytes, maxBytesPerPartition: maxBytes } : {}), sessionTimeout, heartbeatInterval: 500, maxWaitTimeInMs: 200, allowAutoTopicCreation: false } });
    },
    async subscribeRun(c, topic, handlers) {
      await c.subscribe({ topics: [topic] });
      await c.run(handlers);
    },
    assignment(c) {
      let a;
      try { a = c.assignment(); } catch (e) { return null; }
      if (!a || a.length === 0) return null;
      return a.flatMap((x) => (Array.isArray(x.partitions) ? x.partitions : [x.partition])).sort((x, y) => x - y);
    },
    admin() { return kafka.admin(); },
    // its producer sends an empty Buffer value as a null value (checked with kafkajs reading the
    // same records: null on the wire), so an empty value comes back as null
    emptyValueIsNull: true,
    groupState: (s) => Object.keys(ck.KafkaJS.ConsumerGroupStates).find((k) => ck.KafkaJS.ConsumerGroupStates[k] === s) || String(s),
    describeConfig: null, // the KafkaJS-compatible admin of 1.x has no describeConfigs
    async createPartitions(_admin, topic, count) { // only the node-rdkafka style AdminClient has it
      const c = ck.AdminClient.create({ 'bootstrap.servers': BOOT, 'client.id': 'semel-compat-ckjs-admin' });
      try {
        await new Promise((res, rej) => c.createPartitions(topic, count, 10000, (err) => (err ? rej(err) : res())));
      } finally { c.disconnect(); }
    },
    async sendOffsets(txn, consumer, groupId, topics) { await txn.sendOffsets({ consumer, topics }); },
    cooperativeSticky: ck.KafkaJS.PartitionAssigners.cooperativeSticky,
    staticMembership: true,
    isolation: ck.KafkaJS.IsolationLevel,
  };
}

// ------------------------------------------------------------------ helpers

// makeMessages(tag, n, partitions): keys, values, headers, explicit partitions and timestamps,
// with edge cases: null key, null value (tombstone), empty value, a 100 KB value, binary bytes,
// an empty header value.
function makeMessages(tag, n, partitions = PARTITIONS) {
  const out = [];
  for (let i = 0; i < n; i++) {
    let key = Buffer.from(`key-${tag}-${i}`);
    let value = Buffer.from(`value ${tag} ${i} `.repeat(1 + (i % 7)));
    if (i % 97 === 5) key = null;
    if (i % 89 === 7) value = null;
    if (i % 83 === 9) value = Buffer.alloc(0);
    if (i === 11) value = crypto.randomBytes(100 * 1024);
    if (i % 71 === 13) value = Buffer.from([0, 255, 1, 254, 0, 10, 13]);
    const headers = { h1: `hv-${i}`, empty: '' };
    if (i % 10 === 0) headers.dup = ['first', 'second']; // one key twice
    out.push({ partition: i % partitions, key, value, headers, timestamp: String(NOW - 600000 + i) });
  }
  return out;
}

function perPartition(msgs) {
  const out = {};
  for (const m of msgs) (out[m.partition] ||= []).push(m);
  return out;
}

const bufEq = (a, b) => (a === null || a === undefined ? b === null || b === undefined : b !== null && b !== undefined && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0);
const hdrVal = (x) => {
  if (typeof x === 'string' || Buffer.isBuffer(x) || x instanceof Uint8Array) return Buffer.from(x).toString('hex');
  return `<${x === null ? 'null' : typeof x} ${x && x.constructor && x.constructor.name} ${JSON.stringify(x)}>`;
};
const hdrs = (h) => JSON.stringify(Object.entries(h || {}).map(([k, v]) => [k, [].concat(v).map(hdrVal)]).sort());

// compare(msgs, got): got[partition] = [{offset, key, value, headers, timestamp}] must be exactly
// msgs, in order, at offsets 0.. (no marker in between).
function compare(msgs, got, what = '') {
  const want = perPartition(msgs);
  let n = 0;
  for (const [p, ms] of Object.entries(want)) {
    const g = got[p] || [];
    expect(g.length === ms.length, `${what}partition ${p}: read ${g.length} records, expected ${ms.length}`);
    for (let i = 0; i < ms.length; i++) {
      const a = ms[i]; const b = g[i];
      const where = `${what}partition ${p} record ${i} (offset ${b.offset})`;
      expect(b.offset === i, `${where}: offset ${b.offset}, expected ${i}`);
      expect(bufEq(a.key, b.key), `${where}: key differs`);
      const wantValue = A.emptyValueIsNull && a.value && a.value.length === 0 ? null : a.value;
      expect(bufEq(wantValue, b.value), `${where}: value differs (${b.value ? b.value.length : b.value} bytes, expected ${a.value ? a.value.length : a.value})`);
      expect(hdrs(a.headers) === hdrs(b.headers), `${where}: headers ${hdrs(b.headers)}, expected ${hdrs(a.headers)}`);
      expect(String(a.timestamp) === String(b.timestamp), `${where}: timestamp ${b.timestamp}, expected ${a.timestamp}`);
      n++;
    }
  }
  for (const p of Object.keys(got)) expect(p in want || got[p].length === 0, `${what}records read from partition ${p}, none produced there`);
  return n;
}

// withAdmin(fn): a connected admin client for fn.
async function withAdmin(fn) {
  const admin = A.admin();
  await admin.connect();
  try { return await fn(admin); } finally { await admin.disconnect(); }
}

async function createTopic(topic, numPartitions = PARTITIONS, configEntries = []) {
  await withAdmin(async (admin) => {
    await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }] });
  });
  await waitFor(async () => withAdmin(async (a) => (await a.listTopics()).includes(topic)), 60000, `topic ${topic} in listTopics`);
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new CheckFailed(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
    await sleep(100);
  }
}

// produce(producer, topic, msgs): one send per 500 messages; returns the per-partition first base offsets.
async function produce(p, topic, msgs) {
  const base = {};
  for (let i = 0; i < msgs.length; i += 500) {
    // copies: the confluent client rewrites the messages it is given (headers, values) in place
    const md = await A.send(p, topic, msgs.slice(i, i + 500).map((m) => ({ ...m, headers: m.headers && Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])) })));
    for (const r of md) {
      expect(!r.errorCode, `send: partition ${r.partition} error code ${r.errorCode}`);
      if (!(r.partition in base)) base[r.partition] = Number(r.baseOffset);
    }
  }
  return base;
}

// readAll(topic, total, opts): a consumer of a fresh group reads `topic` from the beginning
// until it has `total` records, then for settleMs more (to catch extra records); returns the
// records per partition, in the order read.
async function readAll(topic, total, { readUncommitted = false, timeoutMs = 60000, settleMs = 1000 } = {}) {
  const c = A.consumer({ groupId: `${P}-read-${uid()}`, readUncommitted, autoCommit: false });
  const got = {};
  let n = 0;
  await c.connect();
  try {
    await A.subscribeRun(c, topic, {
      eachMessage: async ({ partition, message: m }) => {
        (got[partition] ||= []).push({ offset: Number(m.offset), key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp });
        n++;
      },
    });
    const end = Date.now() + timeoutMs;
    while (n < total && Date.now() < end) await sleep(50);
    await sleep(settleMs);
  } finally {
    await c.disconnect();
  }
  for (const p of Object.keys(got)) got[p].sort((a, b) => a.offset - b.offset);
  return got;
}
const countAll = (got) => Object.values(got).reduce((s, r) => s + r.length, 0);

// storedBatches(topic, partitions): the record batch headers in semel's segment files
// (DATA_DIR/<topic>-<p>/*.log, Kafka's on-disk batch format): base offset, codec, producer id
// (byte 43), epoch (51), base sequence (53), record count (57), attributes.
function storedBatches(topic, partitions) {
  const out = {};
  for (let p = 0; p < partitions; p++) {
    const d = path.join(DATA_DIR, `${topic}-${p}`);
    const batches = [];
    for (const name of fs.readdirSync(d).sort()) {
      if (!name.endsWith('.log')) continue;
      const data = fs.readFileSync(path.join(d, name));
      let pos = 0;
      while (pos + 61 <= data.length) {
        const len = data.readInt32BE(pos + 8);
        const attrs = data.readInt16BE(pos + 21);
        batches.push({ baseOffset: Number(data.readBigInt64BE(pos)), codec: attrs & 7, control: (attrs & 0x20) !== 0, transactional: (attrs & 0x10) !== 0,
          producerId: Number(data.readBigInt64BE(pos + 43)), epoch: data.readInt16BE(pos + 51), baseSequence: data.readInt32BE(pos + 53), count: data.readInt32BE(pos + 57) });
        pos += 12 + len;
      }
    }
    out[p] = batches.sort((a, b) => a.baseOffset - b.baseOffset);
  }
  return out;
}

// ------------------------------------------------------------------ checks: admin, produce, consume

const T_ADMIN = `${P}-admin`;
const RETENTION = '172800000';

async function cCreateTopics() {
  await createTopic(T_ADMIN, PARTITIONS, [{ name: 'retention.ms', value: RETENTION }]);
  const parts = await withAdmin(async (a) => (await a.fetchTopicOffsets(T_ADMIN)).map((x) => x.partition).sort());
  expect(JSON.stringify(parts) === '[0,1,2]', `fetchTopicOffsets partitions ${JSON.stringify(parts)}, expected [0,1,2]`);
  const dup = await withAdmin(async (a) => {
    try { return await a.createTopics({ topics: [{ topic: T_ADMIN, numPartitions: 1, replicationFactor: 1 }] }); } catch (e) { return e; }
  });
  // kafkajs: createTopics resolves false for an existing topic; librdkafka: an error naming it
  const dupOk = dup === false || (dup instanceof Error && /exist/i.test(`${dup.message} ${dup.type || ''} ${JSON.stringify(dup.topicErrors || dup.errors || '')}`));
  expect(dupOk, `creating it again: ${dup instanceof Error ? dup.message : JSON.stringify(dup)}, expected topic-already-exists`);
  return `listTopics has it, partitions [0,1,2]; creating it again -> ${dup instanceof Error ? 'TOPIC_ALREADY_EXISTS error' : dup}`;
}

async function cDescribeConfigs() {
  const v = await withAdmin((a) => A.describeConfig(a, T_ADMIN, 'retention.ms'));
  expect(v === RETENTION, `retention.ms = ${v}, expected ${RETENTION}`);
  return `retention.ms=${v}`;
}

const PRODUCED = {};
async function cProduceConsume(codec) {
  const topic = `${P}-codec-${codec}`;
  await createTopic(topic);
  const msgs = makeMessages(topic, N_CODEC);
  const p = A.producer({ codec });
  await p.connect();
  let base;
  try { base = await produce(p, topic, msgs); } finally { await p.disconnect(); }
  expect(JSON.stringify(base) === '{"0":0,"1":0,"2":0}', `first base offsets ${JSON.stringify(base)}, expected 0 in each partition`);
  const got = await readAll(topic, msgs.length);
  const n = compare(msgs, got);
  // the codec really used on the wire: semel stores batches as sent
  const stored = Object.values(storedBatches(topic, PARTITIONS)).flat();
  const inCodec = stored.filter((b) => b.codec === CODEC_IDS[codec]).reduce((s, b) => s + b.count, 0);
  const codecsSeen = [...new Set(stored.map((b) => b.codec))];
  expect(inCodec >= 0.9 * msgs.length, `only ${inCodec} of ${msgs.length} records stored in ${codec} batches (codec ids seen ${codecsSeen})`);
  PRODUCED[codec] = msgs;
  return `${n} records read back identical (keys, values, headers, timestamps, offsets); ${stored.length} batches, ${inCodec} records in ${codec} batches`;
}

async function cCreatePartitions() {
  await withAdmin((a) => A.createPartitions(a, T_ADMIN, 4));
  await waitFor(async () => withAdmin(async (a) => (await a.fetchTopicOffsets(T_ADMIN)).length === 4), 60000, '4 partitions in fetchTopicOffsets');
  const p = A.producer();
  await p.connect();
  let md;
  try {
    md = await waitFor(async () => A.send(p, T_ADMIN, [{ partition: 3, key: 'k', value: 'in the new partition' }]), 60000, 'a send to partition 3');
  } finally { await p.disconnect(); }
  expect(md[0].partition === 3 && Number(md[0].baseOffset) === 0, `send to partition 3: ${JSON.stringify(md)}`);
  const got = await readAll(T_ADMIN, 1);
  expect((got[3] || []).length === 1 && got[3][0].value.toString() === 'in the new partition', `read back: ${JSON.stringify(Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v.length])))}`);
  return '3 -> 4 partitions; partition 3 written at offset 0 and read back';
}

async function cDeleteTopics() {
  const t = `${P}-to-delete`;
  await createTopic(t);
  await withAdmin((a) => a.deleteTopics({ topics: [t] }));
  await waitFor(async () => withAdmin(async (a) => !(await a.listTopics()).includes(t)), 60000, `${t} gone from listTopics`);
  return 'gone from listTopics';
}

async function cOffsets() {
  const counts = perPartition(PRODUCED.none || []);
  expect(Object.keys(counts).length === PARTITIONS, 'the compression=none produce check did not run');
  const offs = await withAdmin((a) => a.fetchTopicOffsets(`${P}-codec-none`));
  for (const o of offs) {
    expect(Number(o.high) === counts[o.partition].length && Number(o.low) === 0,
      `partition ${o.partition}: low ${o.low} high ${o.high}, expected 0 and ${counts[o.partition].length}`);
  }
  const ts = Number(PRODUCED.none[300].timestamp);
  const byTs = await withAdmin((a) => a.fetchTopicOffsetsByTimestamp(`${P}-codec-none`, ts));
  for (const o of byTs) {
    const want = counts[o.partition].findIndex((m) => Number(m.timestamp) >= ts);
    expect(Number(o.offset) === want, `fetchTopicOffsetsByTimestamp partition ${o.partition}: ${o.offset}, expected ${want}`);
  }
  return `fetchTopicOffsets low/high and fetchTopicOffsetsByTimestamp exact in ${offs.length} partitions`;
}

// ------------------------------------------------------------------ consumer groups

const T_GROUP = `${P}-group`;
const G = `${P}-group-g1`;
const GROUP = {};

async function cGroupRebalance() {
  await createTopic(T_GROUP, 6);
  const msgs1 = makeMessages(T_GROUP, N_GROUP, 6);
  const pr = A.producer();
  await pr.connect();
  await produce(pr, T_GROUP, msgs1);
  const seen = new Map(); // key -> member
  const members = [];
  for (let i = 0; i < 3; i++) {
    const c = A.consumer({ groupId: G, autoCommit: true });
    c._seen = 0;
    await c.connect();
    await A.subscribeRun(c, T_GROUP, {
      eachMessage: async ({ message: m }) => { c._seen++; const k = `${m.key}`; seen.set(k, (seen.get(k) || []).concat(i)); },
    });
    members.push(c);
  }
  const cover = (cs) => {
    const as = cs.map((c) => A.assignment(c));
    if (as.some((a) => !a || a.length === 0)) return null;
    const all = as.flat().sort((a, b) => a - b);
    return JSON.stringify(all) === '[0,1,2,3,4,5]' ? as : null;
  };
  const as3 = await waitFor(async () => cover(members), 45000, 'three members with disjoint assignments covering partitions 0-5');
  await waitFor(async () => seen.size >= N_GROUP - Math.ceil(N_GROUP / 97), 45000, `all ${N_GROUP} records consumed by the group (have ${seen.size})`);
  GROUP.describe = await describeActive(G, 3);
  // one member leaves: the two others take over its partitions
  const leaving = members.pop();
  await leaving.disconnect();
  const as2 = await waitFor(async () => cover(members) && (cover(members).every((a) => a.length === 3) ? cover(members) : null), 45000, 'the two remaining members covering partitions 0-5 after the third left');
  const msgs2 = makeMessages(`${T_GROUP}-b`, 300, 6);
  const before = seen.size;
  await produce(pr, T_GROUP, msgs2);
  await pr.disconnect();
  await waitFor(async () => seen.size >= before + 300 - Math.ceil(300 / 97), 45000, 'the 300 records produced after the rebalance');
  const lateToLeaver = msgs2.filter((m) => m.key && (seen.get(`${m.key}`) || []).includes(2)).length;
  expect(lateToLeaver === 0, `${lateToLeaver} records produced after the third member left were delivered to it`);
  // committed offsets: auto-commit (waited for while the members run: distinct keys, above,
  // do not count the null-keyed records, so some may still be on their way), then commit on
  // disconnect
  const total = N_GROUP + 300;
  const committedSum = async () => (await withAdmin((a) => a.fetchOffsets({ groupId: G, topics: [T_GROUP] })))[0].partitions.reduce((s, x) => s + Math.max(Number(x.offset), 0), 0);
  await waitFor(async () => (await committedSum()) === total, 60000, `auto-committed offsets summing to ${total}`);
  for (const c of members) await c.disconnect();
  GROUP.total = total;
  const committed = await withAdmin((a) => a.fetchOffsets({ groupId: G, topics: [T_GROUP] }));
  const parts = committed[0].partitions;
  const sum = parts.reduce((s, x) => s + Number(x.offset), 0);
  expect(sum === GROUP.total, `committed offsets ${JSON.stringify(parts.map((x) => [x.partition, x.offset]))} sum to ${sum}, expected ${GROUP.total}`);
  return `3 members: ${JSON.stringify(as3)}; ${GROUP.describe}; after one left: ${JSON.stringify(as2)}; ${seen.size} distinct keys consumed; committed offsets sum ${sum}`;
}

async function cGroupResume() {
  expect(GROUP.total, 'the rebalance check did not complete');
  const pr = A.producer();
  await pr.connect();
  const msgs3 = makeMessages(`${T_GROUP}-c`, 120, 6);
  try { await produce(pr, T_GROUP, msgs3); } finally { await pr.disconnect(); }
  const c = A.consumer({ groupId: G, autoCommit: true });
  const got = [];
  await c.connect();
  try {
    await A.subscribeRun(c, T_GROUP, { eachMessage: async ({ partition, message: m }) => { got.push([partition, Number(m.offset), `${m.value}`]); } });
    await waitFor(async () => got.length >= 120, 45000, `the 120 new records (have ${got.length})`);
    await sleep(1500);
  } finally { await c.disconnect(); }
  const want = new Set(msgs3.map((m) => `${m.value}`));
  const old = got.filter((g) => !want.has(g[2]));
  expect(old.length === 0 && got.length === 120, `a new member of ${G} read ${got.length} records, ${old.length} of them already committed (first: ${JSON.stringify(old.slice(0, 3))})`);
  return 'a new member resumed at the committed offsets: exactly the 120 new records';
}

async function cAdminGroups() {
  expect(GROUP.total, 'the group checks did not run');
  const groups = await withAdmin((a) => a.listGroups());
  const mine = groups.groups.find((g) => g.groupId === G);
  expect(mine, `listGroups: ${G} missing (${groups.groups.map((g) => g.groupId).join(',')})`);
  expect(mine.protocolType === 'consumer', `listGroups protocolType ${mine.protocolType}`);
  const d = await withAdmin((a) => a.describeGroups([G]));
  const dg = d.groups[0];
  dg.state = A.groupState(dg.state);
  expect(dg.groupId === G && /empty/i.test(dg.state) && dg.members.length === 0, `describeGroups: ${JSON.stringify({ id: dg.groupId, state: dg.state, members: dg.members.length })}, expected Empty with no member`);
  const off = await withAdmin((a) => a.fetchOffsets({ groupId: G, topics: [T_GROUP] }));
  const sum = off[0].partitions.reduce((s, x) => s + Number(x.offset), 0);
  expect(sum === GROUP.total + 120, `fetchOffsets sum ${sum}, expected ${GROUP.total + 120}`);
  await withAdmin((a) => a.deleteGroups([G]));
  const after = await withAdmin((a) => a.listGroups());
  expect(!after.groups.some((g) => g.groupId === G), `${G} still listed after deleteGroups`);
  return `listGroups (protocolType consumer), describeGroups (state ${dg.state}, 0 members, protocol ${dg.protocol}), fetchOffsets (sum ${sum}), deleteGroups`;
}

// ------------------------------------------------------------------ idempotence

async function cIdempotent() {
  const topic = `${P}-idempotent`;
  await createTopic(topic);
  const msgs = makeMessages(topic, N_IDEM);
  const p = A.producer({ idempotent: true, codec: 'gzip' });
  await p.connect();
  try { await produce(p, topic, msgs); } finally { await p.disconnect(); }
  const got = await readAll(topic, msgs.length);
  compare(msgs, got);
  const stored = storedBatches(topic, PARTITIONS);
  const ids = [...new Set(Object.values(stored).flat().map((b) => `${b.producerId}/${b.epoch}`))];
  expect(ids.length === 1 && !ids[0].startsWith('-'), `stored (producer id/epoch) pairs ${ids}, expected one, with id >= 0`);
  let nb = 0;
  for (const [p2, bs] of Object.entries(stored)) {
    let seq = 0;
    for (const b of bs) {
      expect(b.baseSequence === seq, `partition ${p2} batch at ${b.baseOffset}: base sequence ${b.baseSequence}, expected ${seq}`);
      seq += b.count; nb++;
    }
  }
  return `${msgs.length} records read back exactly once in order; ${nb} batches with producer id/epoch ${ids[0]}, gapless sequences`;
}

// ------------------------------------------------------------------ transactions

const T_TXN = `${P}-txn`;
const TXN = {};
const txnMessages = (tag, per) => { const o = []; for (let i = 0; i < per; i++) for (let p = 0; p < PARTITIONS; p++) o.push({ partition: p, key: `${tag}-${p}-${i}`, value: `${tag} ${p}/${i}` }); return o; };
const valuesOf = (got) => Object.fromEntries(Object.entries(got).map(([p, rs]) => [p, rs.map((r) => [r.offset, `${r.value}`])]));

async function cTxnCommitAbort() {
  await createTopic(T_TXN);
  const p = A.producer({ transactionalId: `${P}-txn-ca` });
  await p.connect();
  try {
    for (const [tag, n, commit] of [['commit1', 10, true], ['abort', 10, false], ['commit2', 5, true]]) {
      const txn = await p.transaction();
      const msgs = txnMessages(tag, n);
      const base = await produce(txn, T_TXN, msgs);
      TXN[tag] = { msgs, base };
      if (tag === 'abort') {
        // while the transaction is open (its records in the log): read_committed stops at the LSO
        // (bounded well inside the producer's 60 s transaction timeout)
        const rc = await readAll(T_TXN, 30, { timeoutMs: 45000, settleMs: 500 });
        TXN.openCommitted = valuesOf(rc);
        if (A.isolation) {
          const a = A.admin(); await a.connect();
          try {
            TXN.openEnd = { committed: await a.fetchTopicOffsets(T_TXN, { isolationLevel: A.isolation.READ_COMMITTED }), uncommitted: await a.fetchTopicOffsets(T_TXN, { isolationLevel: A.isolation.READ_UNCOMMITTED }) };
          } finally { await a.disconnect(); }
        }
      }
      if (commit) await txn.commit(); else await txn.abort();
    }
  } finally { await p.disconnect(); }
  const want = { commit1: 0, abort: 11, commit2: 22 };
  for (const [tag, o] of Object.entries(want)) {
    expect(JSON.stringify(TXN[tag].base) === JSON.stringify({ 0: o, 1: o, 2: o }), `${tag}: first offsets ${JSON.stringify(TXN[tag].base)}, expected ${o} in each partition (one offset per marker)`);
  }
  for (let q = 0; q < PARTITIONS; q++) {
    const offs = (TXN.openCommitted[q] || []).map((x) => x[0]);
    expect(JSON.stringify(offs) === JSON.stringify([...Array(10).keys()]), `partition ${q} while the abort transaction was open: read_committed read offsets ${JSON.stringify(offs)}, expected 0-9 only`);
  }
  let extra = '';
  if (TXN.openEnd) {
    for (const o of TXN.openEnd.committed) expect(Number(o.offset ?? o.high) === 11, `while open: fetchTopicOffsets READ_COMMITTED partition ${o.partition} = ${JSON.stringify(o)}, expected 11 (LSO)`);
    for (const o of TXN.openEnd.uncommitted) expect(Number(o.offset ?? o.high) === 21, `while open: fetchTopicOffsets READ_UNCOMMITTED partition ${o.partition} = ${JSON.stringify(o)}, expected 21`);
    extra = '; fetchTopicOffsets while open: 11 (READ_COMMITTED) / 21 (READ_UNCOMMITTED)';
  }
  return `3 transactions at offsets 0-9, 11-20, 22-26 per partition; while open, read_committed reads 0-9 only${extra}`;
}

async function cTxnIsolation() {
  expect(TXN.commit2, 'the commit/abort check did not complete');
  const rc = await readAll(T_TXN, 45, { settleMs: 1500 });
  const ru = await readAll(T_TXN, 75, { readUncommitted: true, settleMs: 1500 });
  for (let q = 0; q < PARTITIONS; q++) {
    const mine = (tags) => tags.flatMap((t) => TXN[t].msgs.filter((m) => m.partition === q).map((m) => m.value));
    const wantC = [...Array(10).keys(), 22, 23, 24, 25, 26].map((o, i) => [o, mine(['commit1', 'commit2'])[i]]);
    expect(JSON.stringify(valuesOf(rc)[q]) === JSON.stringify(wantC), `partition ${q}: read_committed read ${JSON.stringify((rc[q] || []).map((r) => r.offset))}, expected the 15 committed records at 0-9, 22-26`);
    const offsU = [...Array(10).keys()].concat([...Array(10).keys()].map((x) => x + 11), [22, 23, 24, 25, 26]);
    const wantU = offsU.map((o, i) => [o, mine(['commit1', 'abort', 'commit2'])[i]]);
    expect(JSON.stringify(valuesOf(ru)[q]) === JSON.stringify(wantU), `partition ${q}: read_uncommitted read ${JSON.stringify((ru[q] || []).map((r) => r.offset))}, expected 25 records at 0-9, 11-20, 22-26`);
  }
  const offs = await withAdmin((a) => a.fetchTopicOffsets(T_TXN));
  expect(offs.every((o) => Number(o.high) === 28), `fetchTopicOffsets high ${JSON.stringify(offs.map((o) => o.high))}, expected 28 (25 records + 3 markers)`);
  return `read_committed: ${countAll(rc)} records (0-9, 22-26 per partition); read_uncommitted: ${countAll(ru)} (aborted ones included); high watermark 28`;
}

const errText = (e) => `${e && (e.type || e.name)}${e && e.code !== undefined ? `(${e.code})` : ''}: ${e && e.message}`;

async function cTxnFencing() {
  const topic = `${P}-txn-fence`;
  await createTopic(topic, 1);
  const tid = `${P}-txn-zombie`;
  const zombie = A.producer({ transactionalId: tid });
  await zombie.connect();
  const zt = await zombie.transaction();
  await produce(zt, topic, [{ partition: 0, key: 'z', value: 'zombie 1' }]);
  // a second producer with the same transactional id: InitProducerId bumps the epoch and
  // aborts the zombie's open transaction
  // (kafkajs sends InitProducerId in transaction(), librdkafka in connect())
  const fresh = A.producer({ transactionalId: tid });
  await fresh.connect();
  const ft = await fresh.transaction();
  let sendErr = null; let commitErr = null;
  try { await produce(zt, topic, [{ partition: 0, key: 'z', value: 'zombie 2' }]); } catch (e) { sendErr = e; }
  try { await zt.commit(); } catch (e) { commitErr = e; }
  await produce(ft, topic, [{ partition: 0, key: 'f', value: 'fresh 1' }]);
  await ft.commit();
  await fresh.disconnect();
  try { await zombie.disconnect(); } catch (e) { /* fenced */ }
  expect(sendErr, `the zombie's send succeeded after a second producer with its transactional id initialized (Kafka: INVALID_PRODUCER_EPOCH)`);
  expect(commitErr, `the zombie's commit succeeded after a second producer with its transactional id initialized (send error: ${sendErr ? errText(sendErr) : 'none'})`);
  const rc = await readAll(topic, 1, { settleMs: 1500 });
  const vals = (rc[0] || []).map((r) => `${r.value}`);
  expect(JSON.stringify(vals) === '["fresh 1"]', `read_committed reads ${JSON.stringify(vals)}, expected only ["fresh 1"]`);
  const ru = await readAll(topic, 1, { readUncommitted: true, settleMs: 1500 });
  const valsU = (ru[0] || []).map((r) => `${r.value}`);
  expect(!valsU.includes('zombie 2'), `the fenced zombie's second send reached the log: read_uncommitted reads ${JSON.stringify(valsU)}`);
  return `zombie fenced: send -> ${sendErr ? errText(sendErr) : 'no error'}; commit -> ${errText(commitErr)}; read_committed reads only the new producer's record (read_uncommitted: ${JSON.stringify(valsU)})`;
}

// consume-transform-produce: input -> upper-cased output, offsets committed with sendOffsets in
// the same transaction. First a run whose transactions are all aborted (offsets must not move),
// then a run that commits; the output must hold exactly one copy of each transformed record.
async function cTxnCtp() {
  const tin = `${P}-ctp-in`; const tout = `${P}-ctp-out`; const group = `${P}-ctp-group`;
  await createTopic(tin); await createTopic(tout);
  const input = []; for (let i = 0; i < N_CTP; i++) input.push({ partition: i % PARTITIONS, key: `k${i}`, value: `v${i}` });
  const pr = A.producer();
  await pr.connect(); await produce(pr, tin, input); await pr.disconnect();
  const producer = A.producer({ transactionalId: `${P}-ctp-txn` });
  await producer.connect();
  const runOnce = async (commit, limit) => {
    const c = A.consumer({ groupId: group, autoCommit: false });
    let done = 0; let failed = null; let busy = Promise.resolve();
    await c.connect();
    try {
      await A.subscribeRun(c, tin, {
        eachMessage: async ({ topic, partition, message: m }) => {
          if (done >= limit || failed) return;
          try {
            const t = await producer.transaction();
            await A.send(t, tout, [{ partition, key: m.key, value: `${m.value}`.toUpperCase() }]);
            await A.sendOffsets(t, c, group, [{ topic, partitions: [{ partition, offset: String(Number(m.offset) + 1) }] }]);
            if (commit) await t.commit(); else await t.abort();
            done++;
          } catch (e) { failed = e; }
        },
      });
      await waitFor(async () => done >= limit || failed, 90000, `${limit} transactions (${done} done)`);
      await busy;
    } finally { await c.disconnect(); }
    if (failed) throw failed;
    return done;
  };
  let aborted; let committedN;
  try {
    aborted = await runOnce(false, Math.min(30, N_CTP));
    const off1 = await withAdmin((a) => a.fetchOffsets({ groupId: group, topics: [tin] }));
    const moved = (off1[0] ? off1[0].partitions : []).filter((x) => Number(x.offset) > 0);
    expect(moved.length === 0, `after ${aborted} aborted transactions the group's offsets moved: ${JSON.stringify(off1)}`);
    committedN = await runOnce(true, N_CTP);
  } finally { await producer.disconnect(); }
  const off2 = await withAdmin((a) => a.fetchOffsets({ groupId: group, topics: [tin] }));
  const sum = off2[0].partitions.reduce((s, x) => s + Number(x.offset), 0);
  expect(sum === N_CTP, `committed offsets of ${group} sum to ${sum}, expected ${N_CTP}: ${JSON.stringify(off2[0].partitions)}`);
  const out = await readAll(tout, N_CTP, { settleMs: 1500 });
  const vals = Object.values(out).flat().map((r) => `${r.value}`);
  const want = input.map((m) => m.value.toUpperCase());
  const counts = {}; for (const v of vals) counts[v] = (counts[v] || 0) + 1;
  const dups = Object.entries(counts).filter(([, n]) => n > 1);
  const missing = want.filter((v) => !counts[v]);
  expect(dups.length === 0 && missing.length === 0 && vals.length === N_CTP, `read_committed output: ${vals.length} records, ${dups.length} duplicated (${JSON.stringify(dups.slice(0, 3))}), ${missing.length} missing`);
  const outU = await readAll(tout, N_CTP + aborted, { readUncommitted: true, settleMs: 1500 });
  return `${aborted} aborted transactions left the offsets at 0; ${committedN} committed: each of the ${N_CTP} outputs exactly once under read_committed (read_uncommitted: ${countAll(outU)}), group offsets sum ${sum}`;
}


// kafkajs: alterConfigs (then describeConfigs shows the new value)
async function cAlterConfigs() {
  const { ConfigResourceTypes } = require('kafkajs');
  await withAdmin((a) => a.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: T_ADMIN, configEntries: [{ name: 'retention.ms', value: '86400000' }] }] }));
  const v = await withAdmin((a) => A.describeConfig(a, T_ADMIN, 'retention.ms'));
  expect(v === '86400000', `after alterConfigs retention.ms = ${v}, expected 86400000`);
  return `retention.ms ${RETENTION} -> ${v}`;
}

// deleteTopicRecords: the low watermark moves, reading from the beginning starts there
async function cDeleteRecords() {
  const t = `${P}-delete-records`;
  await createTopic(t, 1);
  const msgs = makeMessages(t, 100, 1);
  const p = A.producer();
  await p.connect();
  try { await produce(p, t, msgs); } finally { await p.disconnect(); }
  await withAdmin(async (a) => {
    // kafkajs looks the partition leaders up in its metadata cache without loading it first
    // (KafkaJSTopicMetadataNotLoaded on a fresh admin): load it
    await a.fetchTopicMetadata({ topics: [t] });
    await a.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '40' }] });
  });
  const offs = await withAdmin((a) => a.fetchTopicOffsets(t));
  expect(Number(offs[0].low) === 40 && Number(offs[0].high) === 100, `after deleteTopicRecords(40): low ${offs[0].low} high ${offs[0].high}, expected 40 and 100`);
  const got = await readAll(t, 60);
  const o = (got[0] || []).map((r) => r.offset);
  expect(o.length === 60 && o[0] === 40 && o[59] === 99, `reading from the beginning: ${o.length} records from ${o[0]} to ${o[o.length - 1]}, expected 60 from 40 to 99`);
  return 'low watermark 40, high 100; a new group reads 40-99';
}

// kafkajs: admin.setOffsets / resetOffsets on an empty group, then a member starts there
async function cSetOffsets() {
  const t = `${P}-codec-none`;
  expect(PRODUCED.none, 'the compression=none produce check did not run');
  const g = `${P}-setoffsets`;
  const per = perPartition(PRODUCED.none);
  await withAdmin((a) => a.setOffsets({ groupId: g, topic: t, partitions: [0, 1, 2].map((q) => ({ partition: q, offset: String(per[q].length - 5) })) }));
  let off = await withAdmin((a) => a.fetchOffsets({ groupId: g, topics: [t] }));
  const set = off[0].partitions.map((x) => Number(x.offset)).sort((x, y) => x - y);
  const c = A.consumer({ groupId: g, autoCommit: true, fromBeginning: true });
  const got = [];
  await c.connect();
  try {
    await A.subscribeRun(c, t, { eachMessage: async ({ partition, message: m }) => { got.push([partition, Number(m.offset)]); } });
    await waitFor(async () => got.length >= 15, 60000, `15 records from the set offsets (have ${got.length})`);
    await sleep(1000);
  } finally { await c.disconnect(); }
  expect(got.length === 15 && got.every(([q, o]) => o >= per[q].length - 5), `after setOffsets(end - 5) a member read ${got.length} records: ${JSON.stringify(got.slice(0, 5))}...`);
  await withAdmin((a) => a.resetOffsets({ groupId: g, topic: t, earliest: true }));
  off = await withAdmin((a) => a.fetchOffsets({ groupId: g, topics: [t] }));
  // kafkajs commits its EARLIEST sentinel (-2) as the offset, and the broker stores it as given
  // (a kafkajs member then treats the negative offset as none and follows its fromBeginning)
  const reset = off[0].partitions.map((x) => Number(x.offset));
  expect(reset.every((o) => o === -2), `after resetOffsets(earliest): ${JSON.stringify(reset)}, expected -2 (kafkajs commits its EARLIEST sentinel)`);
  return `setOffsets -> fetchOffsets ${JSON.stringify(set)}, a member read exactly the last 15 records; resetOffsets(earliest) -> -2 stored`;
}

// librdkafka's cooperative-sticky assignor (KIP-429 incremental rebalances over the classic
// protocol): three members join one by one, then one leaves; partitions are never owned twice
async function cGroupCooperative() {
  const t = `${P}-coop`;
  const g = `${P}-coop-group`;
  await createTopic(t, 6);
  const msgs = makeMessages(t, 600, 6);
  const pr = A.producer();
  await pr.connect();
  try { await produce(pr, t, msgs); } finally { await pr.disconnect(); }
  const seen = new Map();
  const members = [];
  const snapshots = [];
  const cover = (cs, n) => {
    const as = cs.map((c) => A.assignment(c));
    if (as.some((a) => !a || a.length === 0)) return null;
    const all = as.flat().sort((a, b) => a - b);
    return JSON.stringify(all) === '[0,1,2,3,4,5]' && as.every((a) => a.length === 6 / n) ? as : null;
  };
  try {
    for (let i = 0; i < 3; i++) {
      const c = A.consumer({ groupId: g, autoCommit: true, assignor: A.cooperativeSticky });
      await c.connect();
      await A.subscribeRun(c, t, { eachMessage: async ({ partition, message: m }) => { const k = `${partition}/${m.offset}`; seen.set(k, (seen.get(k) || 0) + 1); } });
      members.push(c);
      snapshots.push(await waitFor(async () => cover(members, members.length), 45000, `${members.length} members sharing partitions 0-5 evenly`));
    }
    expect(members[0].rebalanceProtocol() === 'COOPERATIVE', `rebalance protocol ${members[0].rebalanceProtocol()}, expected COOPERATIVE`);
    const leaving = members.pop();
    await leaving.disconnect();
    snapshots.push(await waitFor(async () => cover(members, 2), 45000, 'the two remaining members sharing partitions 0-5 after one left'));
    await waitFor(async () => seen.size >= 600, 45000, `all 600 records consumed (have ${seen.size})`);
  } finally {
    for (const c of members) await c.disconnect();
  }
  // sticky (the owned partitions travel through JoinGroup / SyncGroup): when a member joins, the
  // others only give partitions away; when one leaves, the others keep theirs and take its own
  for (let i = 1; i < snapshots.length; i++) {
    const prev = snapshots[i - 1]; const cur = snapshots[i];
    const joined = cur.length > prev.length;
    for (let m = 0; m < Math.min(prev.length, cur.length); m++) {
      const [small, big] = joined ? [cur[m], prev[m]] : [prev[m], cur[m]];
      expect(small.every((q) => big.includes(q)), `rebalance ${i} (${joined ? 'join' : 'leave'}): member ${m} went from ${JSON.stringify(prev[m])} to ${JSON.stringify(cur[m])} (not sticky)`);
    }
  }
  return `assignments ${JSON.stringify(snapshots)}, each member keeping its partitions; ${seen.size} records consumed`;
}

// transaction.timeout.ms: the coordinator aborts a transaction left open too long and bumps the
// epoch, so the producer's late commit fails and nothing of it is visible
async function cTxnTimeout() {
  const t = `${P}-txn-timeout`;
  await createTopic(t, 1);
  // 5 s: the transaction's record must be written before it times out, also on a busy machine
  const p = A.producer({ transactionalId: `${P}-txn-timeout`, transactionTimeout: 5000 });
  await p.connect();
  let commitErr = null;
  try {
    const txn = await p.transaction();
    await produce(txn, t, [{ partition: 0, key: 'late', value: 'left open past its timeout' }]);
    await sleep(6000);
    // the commit comes once the coordinator aborted the transaction: its ABORT marker is in the log
    await waitFor(async () => withAdmin(async (a) => Number((await a.fetchTopicOffsets(t))[0].high) >= 2), 60000, 'the ABORT marker of the timed-out transaction');
    try { await txn.commit(); } catch (e) { commitErr = e; }
  } finally { try { await p.disconnect(); } catch (e) { /* fenced */ } }
  expect(commitErr, 'the commit after the broker aborted the transaction (5 s timeout, ABORT marker written) succeeded');
  const offs = await withAdmin((a) => a.fetchTopicOffsets(t));
  expect(Number(offs[0].high) === 2, `high watermark ${offs[0].high}, expected 2 (the record and the ABORT marker)`);
  const rc = await readAll(t, 1, { timeoutMs: 3000, settleMs: 500 });
  expect(countAll(rc) === 0, `read_committed reads ${countAll(rc)} records of the timed-out transaction`);
  return `commit after the timeout -> ${errText(commitErr)}; log: record + ABORT marker; read_committed reads nothing`;
}


// acks=0 and acks=1 produce, then read back
async function cAcks() {
  const out = [];
  for (const acks of [1, 0]) {
    const t = `${P}-acks${acks}`;
    await createTopic(t);
    const msgs = makeMessages(t, 300);
    const p = A.producer({ acks });
    await p.connect();
    try { await produce(p, t, msgs); } finally { await p.disconnect(); }
    const got = await readAll(t, msgs.length);
    out.push(`acks=${acks}: ${compare(msgs, got)} read back`);
  }
  return out.join('; ');
}

// a producer allowed to create topics: the first send to an unknown topic creates it
async function cAutoCreate() {
  const t = `${P}-auto-created-${uid()}`;
  const p = A.producer({ autoCreate: true });
  await p.connect();
  let md;
  try { md = await waitFor(async () => A.send(p, t, [{ key: 'k', value: 'auto' }]), 60000, `a send to the unknown topic ${t}`); } finally { await p.disconnect(); }
  const listed = await withAdmin(async (a) => (await a.listTopics()).includes(t));
  expect(listed, `${t} not in listTopics after the send`);
  return `send -> partition ${md[0].partition} offset ${md[0].baseOffset}; topic listed`;
}

// metadata: the single broker leads every partition; replicas and ISR are [leader]
async function cMetadata() {
  const md = await withAdmin((a) => a.fetchTopicMetadata({ topics: [`${P}-codec-none`] }));
  const parts = (Array.isArray(md) ? md : md.topics)[0].partitions; // confluent: the topics array itself
  const bad = parts.filter((x) => !(x.leader >= 0 && JSON.stringify(x.replicas) === JSON.stringify([x.leader]) && JSON.stringify(x.isr) === JSON.stringify([x.leader])));
  expect(parts.length === PARTITIONS && bad.length === 0, `fetchTopicMetadata partitions ${JSON.stringify(parts)}`);
  let cluster = '';
  if (CLIENT === 'kafkajs') {
    const c = await withAdmin((a) => a.describeCluster());
    expect(c.brokers.length === 1 && c.brokers[0].nodeId === parts[0].leader && c.controller === c.brokers[0].nodeId,
      `describeCluster ${JSON.stringify(c)}: expected one broker, the leader of the partitions and the controller`);
    cluster = `; describeCluster: broker ${c.brokers[0].nodeId} at ${c.brokers[0].host}:${c.brokers[0].port}, controller ${c.controller}, cluster id ${c.clusterId}`;
  }
  return `${parts.length} partitions led by ${parts[0].leader}, replicas = isr = [leader]${cluster}`;
}

// Fetch size limits smaller than one record: the broker still returns the first batch (KIP-74),
// so the consumer makes progress and reads everything
async function cSmallFetch() {
  const t = `${P}-small-fetch`;
  await createTopic(t, 1);
  const msgs = [];
  for (let i = 0; i < 30; i++) msgs.push({ partition: 0, key: `k${i}`, value: crypto.randomBytes(40 * 1024), headers: {}, timestamp: String(NOW + i) });
  const p = A.producer({ codec: 'none' });
  await p.connect();
  try { for (const m of msgs) await produce(p, t, [m]); } finally { await p.disconnect(); } // one batch each
  const c = A.consumer({ groupId: `${P}-small-${uid()}`, autoCommit: false, maxBytes: 4096 });
  const got = {};
  let n = 0;
  await c.connect();
  try {
    await A.subscribeRun(c, t, { eachMessage: async ({ partition, message: m }) => { (got[partition] ||= []).push({ offset: Number(m.offset), key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp }); n++; } });
    await waitFor(async () => n >= 30, 45000, `30 records of 40 KB with maxBytes 4096 (have ${n})`);
    await sleep(500);
  } finally { await c.disconnect(); }
  compare(msgs, got);
  return '30 records of 40 KB read back exactly with maxBytes = maxBytesPerPartition = 4096';
}

// describeGroups while the group is active: Stable, one entry per member, with the assignment
// the leader gave it (kafkajs: decoded from the bytes the broker returns)
async function describeActive(groupId, members) {
  const d = await withAdmin((a) => a.describeGroups([groupId]));
  const g = d.groups[0];
  const state = A.groupState(g.state);
  expect(/stable/i.test(state) && g.members.length === members, `describeGroups while active: state ${state}, ${g.members.length} members, expected Stable with ${members}`);
  let parts = '';
  if (CLIENT === 'kafkajs') {
    const { AssignerProtocol } = require('kafkajs');
    const all = g.members.flatMap((m) => Object.values(AssignerProtocol.MemberAssignment.decode(m.memberAssignment).assignment).flat()).sort((a, b) => a - b);
    expect(JSON.stringify(all) === '[0,1,2,3,4,5]', `describeGroups member assignments cover ${JSON.stringify(all)}, expected 0-5`);
    parts = ', member assignments decode to partitions 0-5';
  } else {
    const all = g.members.flatMap((m) => (m.assignment && m.assignment.topicPartitions ? m.assignment.topicPartitions.map((x) => x.partition) : [])).sort((a, b) => a - b);
    expect(JSON.stringify(all) === '[0,1,2,3,4,5]', `describeGroups member assignments cover ${JSON.stringify(all)}, expected 0-5 (${JSON.stringify(g.members[0])})`);
    parts = ', member assignments cover partitions 0-5';
  }
  return `describeGroups: ${state}, protocol ${g.protocol}, ${g.members.length} members${parts}`;
}

// a member that dies without leaving (a child process, kill -9) is removed when its session
// times out, and the survivor takes its partitions
async function cSessionExpiry() {
  const t = `${P}-session`;
  const g = `${P}-session-group`;
  await createTopic(t, 4);
  const child = spawnMember(t, g);
  const c = A.consumer({ groupId: g, autoCommit: true, sessionTimeout: 6000 });
  try {
    await waitFor(async () => (child.assignment || []).length === 4, 45000, 'the child member owning the 4 partitions');
    await c.connect();
    await A.subscribeRun(c, t, { eachMessage: async () => {} });
    await waitFor(async () => (child.assignment || []).length === 2 && (A.assignment(c) || []).length === 2, 45000, 'the child and this member owning 2 partitions each');
    const before = JSON.stringify(A.assignment(c));
    child.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor(async () => (A.assignment(c) || []).length === 4, 40000, 'this member owning the 4 partitions after the child was killed');
    const secs = (Date.now() - t0) / 1000;
    expect(secs >= 2, `the dead member's partitions moved after ${secs}s, before its 6 s session could time out`);
    return `own ${before} -> [0,1,2,3] ${secs.toFixed(1)}s after the other member was killed (session timeout 6 s)`;
  } finally {
    child.kill('SIGKILL');
    await c.disconnect();
  }
}

// the child process of cSessionExpiry: a member that reports its assignment
async function memberMain(topic, groupId, instanceId) {
  const c = instanceId
    ? A.consumer({ groupId, autoCommit: true, sessionTimeout: 60000, extra: { 'group.instance.id': instanceId } })
    : A.consumer({ groupId, autoCommit: true, sessionTimeout: 6000 });
  await c.connect();
  await A.subscribeRun(c, topic, { eachMessage: async () => {} });
  let last = '';
  for (;;) {
    const a = JSON.stringify(A.assignment(c) || []);
    if (a !== last) { console.log(`ASSIGNED ${a}`); last = a; }
    await sleep(100);
  }
}

// static membership (KIP-345, group.instance.id): a static member whose process dies (a child
// process, kill -9: no LeaveGroup) and is restarted within its session timeout (60 s: a new
// process starts and joins well within it, also on a busy machine) gets its
// partitions back, and the other member sees no rebalance. (The KafkaJS-compatible disconnect()
// unsubscribes first, and librdkafka sends LeaveGroup on unsubscribe even for a static member,
// so a clean close would legitimately rebalance; a crash is the case KIP-345 is about.)
function spawnMember(topic, groupId, instanceId) {
  const { spawn } = require('child_process');
  const child = spawn(process.execPath, [__filename, CLIENT, BOOT, DATA_DIR, '--member', topic, groupId, instanceId || ''], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.assignment = null;
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += String(d);
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); if (l.startsWith('ASSIGNED ')) child.assignment = JSON.parse(l.slice(9)); }
  });
  return child;
}

async function cStaticMembership() {
  const t = `${P}-static`;
  const g = `${P}-static-group`;
  await createTopic(t, 4);
  let events = 0;
  const b = A.consumer({ groupId: g, autoCommit: true, sessionTimeout: 30000, extra: { 'group.instance.id': `${P}-static-b`, rebalance_cb: () => { events++; } } });
  const children = [];
  try {
    await b.connect();
    await A.subscribeRun(b, t, { eachMessage: async () => {} }); // b joins first: the leader
    await waitFor(async () => (A.assignment(b) || []).length === 4, 45000, 'b owning 4 partitions');
    children.push(spawnMember(t, g, `${P}-static-a`));
    await waitFor(async () => (children[0].assignment || []).length === 2 && (A.assignment(b) || []).length === 2, 45000, 'a (child process) and b owning 2 partitions each');
    const asgA = JSON.stringify(children[0].assignment); const asgB = JSON.stringify(A.assignment(b));
    await sleep(1000);
    const eb = events;
    children[0].kill('SIGKILL');
    const t0 = Date.now();
    children.push(spawnMember(t, g, `${P}-static-a`));
    await waitFor(async () => (children[1].assignment || []).length > 0, 50000, 'the restarted static member a getting partitions (session timeout 60 s)');
    const secs = (Date.now() - t0) / 1000;
    await sleep(3000);
    expect(JSON.stringify(children[1].assignment) === asgA, `the restarted static member got ${JSON.stringify(children[1].assignment)}, before ${asgA}`);
    expect(JSON.stringify(A.assignment(b)) === asgB && events === eb, `b: assignment ${asgB} -> ${JSON.stringify(A.assignment(b))}, rebalance callbacks ${eb} -> ${events} (expected no rebalance)`);
    return `a ${asgA} back ${secs.toFixed(1)}s after kill -9 and restart; b kept ${asgB} with no rebalance callback`;
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await b.disconnect();
  }
}


// two transactional producers interleaved on one partition (gzip batches), with plain records
// around them: the LSO stays at the first open transaction's first record even after the other
// commits; once it aborts, read_committed skips exactly its records (the aborted-transaction
// index with two producers) and reads the committed ones behind it
async function cTxnInterleaved() {
  const t = `${P}-txn-interleaved`;
  await createTopic(t, 1);
  const plain = A.producer();
  const p1 = A.producer({ transactionalId: `${P}-il-1`, codec: 'gzip' });
  const p2 = A.producer({ transactionalId: `${P}-il-2`, codec: 'gzip' });
  const m = (v) => [{ partition: 0, key: v, value: v }];
  // compressible values: librdkafka sends a batch uncompressed when gzip would not shrink it
  const ms = (tag) => [0, 1, 2].map((i) => ({ partition: 0, key: `${tag}${i}`, value: `${tag}${i}${'.'.repeat(400)}` }));
  await plain.connect(); await p1.connect(); await p2.connect();
  let open;
  try {
    await produce(plain, t, m('a0')); // 0
    const t1 = await p1.transaction();
    await produce(t1, t, ms('p1-')); // 1-3
    const t2 = await p2.transaction();
    await produce(t2, t, ms('p2-')); // 4-6
    await t2.commit(); // marker 7
    await produce(plain, t, m('a1')); // 8
    // until offset 0 (the only record below the LSO) arrived, then 2 s more for any record past it
    const rcOpen = await readAll(t, 1, { settleMs: 2000 });
    open = (rcOpen[0] || []).map((r) => r.offset);
    await t1.abort(); // marker 9
  } finally { await plain.disconnect(); await p1.disconnect(); await p2.disconnect(); }
  expect(JSON.stringify(open) === '[0]', `with p1's transaction open (p2's committed behind it), read_committed read offsets ${JSON.stringify(open)}, expected [0] (LSO 1)`);
  const rc = await readAll(t, 5, { settleMs: 1500 });
  const got = (rc[0] || []).map((r) => `${r.offset}:${String(r.value).replace(/\.+$/, '')}`);
  const want = ['0:a0', '4:p2-0', '5:p2-1', '6:p2-2', '8:a1'];
  expect(JSON.stringify(got) === JSON.stringify(want), `read_committed after p1 aborted: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  const ru = await readAll(t, 8, { readUncommitted: true, settleMs: 1500 });
  const gotU = (ru[0] || []).map((r) => r.offset);
  expect(JSON.stringify(gotU) === '[0,1,2,3,4,5,6,8]', `read_uncommitted: offsets ${JSON.stringify(gotU)}, expected 0-6 and 8`);
  const stored = storedBatches(t, 1)[0];
  const gz = stored.filter((b) => b.transactional && !b.control && b.codec === CODEC_IDS.gzip).length;
  expect(gz === 2, `${gz} gzip transactional data batches stored, expected 2 (${JSON.stringify(stored.map((b) => [b.baseOffset, b.codec, b.transactional, b.control]))})`);
  return 'while p1 was open (p2 committed behind it): read_committed stopped at offset 1; after p1 aborted: 0, 4-6, 8; read_uncommitted 0-6, 8; gzip transactional batches';
}


// admin errors as Kafka answers them: an invalid topic name, createPartitions to the current
// count, deleteGroups of a group with members (NON_EMPTY_GROUP), describeGroups / fetchOffsets of
// an unknown group (Dead / no offsets)
async function cAdminErrors() {
  const out = [];
  const errOf = async (fn) => { try { await fn(); return null; } catch (e) { return e; } };
  const text = (e) => (e ? `${e.name} ${e.type || ''} ${e.code || ''} ${e.message} ${JSON.stringify(e.errors || e.topicErrors || e.groups || '')}` : 'no error');
  let e = await errOf(() => withAdmin((a) => a.createTopics({ topics: [{ topic: 'bad topic name!', numPartitions: 1, replicationFactor: 1 }] })));
  expect(e && /INVALID_TOPIC|invalid topic|illegal|\b17\b/i.test(text(e)), `createTopics 'bad topic name!': ${text(e)}, expected INVALID_TOPIC_EXCEPTION`);
  const inner = (e.errors && e.errors[0]) || {};
  out.push(`invalid name -> ${inner.type || inner.code || e.type || e.code || e.name}`);
  e = await errOf(() => withAdmin((a) => A.createPartitions(a, `${P}-codec-none`, 3)));
  expect(e && /INVALID_PARTITIONS|partitions|\b37\b/i.test(text(e)), `createPartitions to the current count 3: ${text(e)}, expected INVALID_PARTITIONS`);
  out.push(`createPartitions 3 -> 3: ${e.type || e.code || e.name}`);
  const g = `${P}-nonempty`;
  const c = A.consumer({ groupId: g });
  await c.connect();
  try {
    await A.subscribeRun(c, `${P}-codec-none`, { eachMessage: async () => {} });
    await waitFor(async () => (A.assignment(c) || []).length > 0, 60000, 'a member of the group');
    e = await errOf(() => withAdmin((a) => a.deleteGroups([g])));
  } finally { await c.disconnect(); }
  expect(e && /NON_EMPTY_GROUP|not empty|\b68\b/i.test(text(e)), `deleteGroups of a group with a member: ${text(e)}, expected NON_EMPTY_GROUP`);
  out.push('deleteGroups(active) -> NON_EMPTY_GROUP');
  const d = await withAdmin((a) => a.describeGroups([`${P}-no-such-group`]));
  const st = A.groupState(d.groups[0].state);
  expect(/dead/i.test(st) && d.groups[0].members.length === 0, `describeGroups of an unknown group: ${JSON.stringify(d.groups[0])}, expected Dead`);
  const o = await withAdmin((a) => a.fetchOffsets({ groupId: `${P}-no-such-group`, topics: [`${P}-codec-none`] }));
  const offs = (o[0] ? o[0].partitions : []).map((x) => Number(x.offset));
  expect(offs.every((x) => x === -1), `fetchOffsets of an unknown group: ${JSON.stringify(o)}, expected -1 (none)`);
  out.push(`unknown group: describeGroups ${st}, fetchOffsets ${JSON.stringify(offs)}`);
  return out.join('; ');
}

// kafkajs: describeConfigs of the broker (with synonyms)
async function cBrokerConfigs() {
  const { ConfigResourceTypes } = require('kafkajs');
  const c = await withAdmin((a) => a.describeCluster());
  const r = await withAdmin((a) => a.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: String(c.brokers[0].nodeId) }], includeSynonyms: true }));
  const res = r.resources[0];
  expect(res.errorCode === 0 && res.configEntries.length > 0, `describeConfigs BROKER ${c.brokers[0].nodeId}: error ${res.errorCode}, ${res.configEntries.length} entries`);
  return `${res.configEntries.length} broker configs, e.g. ${res.configEntries.slice(0, 3).map((x) => `${x.configName}=${x.configValue}`).join(', ')}`;
}


// seek below the log start offset (after deleteTopicRecords): the broker answers
// OFFSET_OUT_OF_RANGE and the consumer resets to the earliest offset (fromBeginning)
async function cSeekOutOfRange() {
  const t = `${P}-delete-records`;
  const c = A.consumer({ groupId: `${P}-seek-${uid()}`, autoCommit: false });
  const got = [];
  await c.connect();
  try {
    await A.subscribeRun(c, t, { eachMessage: async ({ message: m }) => { got.push(Number(m.offset)); } });
    await waitFor(async () => got.length >= 60, 60000, `the 60 records 40-99 (have ${got.length})`);
    c.seek({ topic: t, partition: 0, offset: '10' });
    await waitFor(async () => got.length >= 120, 60000, `the 60 records again after seek(10) (have ${got.length})`);
    await sleep(500);
  } finally { await c.disconnect(); }
  const second = got.slice(60);
  expect(second.length === 60 && second[0] === 40 && second[59] === 99, `after seek(10) below the log start 40: read ${second.length} records from ${second[0]} to ${second[second.length - 1]}, expected 40-99`);
  return 'seek(10) with log start 40 -> OFFSET_OUT_OF_RANGE, reset to earliest: 40-99 read again';
}

// ------------------------------------------------------------------ main

// Checks not run (known broker bugs), by name prefix, with the reason; the line printed for such
// a check starts with `#` and counts neither as passed nor as failed. COMPAT_RUN_EXCLUDED=1 runs
// them anyway.
const EXCLUDED = {
  // None at the moment. (The static-membership check was here until semel stopped rebalancing
  // when a static member rejoins a Stable group.)
};

async function check(name, fn, ...args) {
  if (process.env.COMPAT_ONLY && !new RegExp(process.env.COMPAT_ONLY).test(name)) return; // for debugging one check
  const why = Object.entries(EXCLUDED).find(([prefix]) => name.startsWith(prefix));
  if (why && process.env.COMPAT_RUN_EXCLUDED !== '1') {
    console.log(`# excluded: ${CLIENT}: ${name}: ${why[1]}`);
    return;
  }
  const t0 = Date.now();
  const timeoutMs = 180000;
  let timer;
  try {
    log(`check: ${name}`);
    const detail = await Promise.race([fn(...args), new Promise((_, rej) => { timer = setTimeout(() => rej(new CheckFailed(`timed out after ${timeoutMs / 1000}s`)), timeoutMs); })]);
    console.log(`PASS ${CLIENT}: ${name} (${detail}, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  } catch (e) {
    const msg = e instanceof CheckFailed ? e.message : `${errText(e)}${e && e.stack ? ` @ ${String(e.stack).split('\n').slice(1, 3).join(' ').trim()}` : ''}`;
    console.log(`FAIL ${CLIENT}: ${name}: ${String(msg).replace(/\s+/g, ' ').slice(0, 900)}`);
    log(`failed: ${name}: ${e && e.stack}`);
  } finally { clearTimeout(timer); }
}

(async () => {
  if (CLIENT === 'kafkajs') await setupKafkajs(); else await setupConfluent();
  if (process.argv[5] === '--member') { await memberMain(process.argv[6], process.argv[7], process.argv[8]); return; }
  console.log(`# ${A.version}${FULL ? ' (COMPAT_FULL=1)' : ''}`);
  await check('admin.createTopics 3 partitions + retention.ms, listTopics, fetchTopicOffsets, create again fails', cCreateTopics);
  if (A.describeConfig) await check('admin.describeConfigs shows retention.ms', cDescribeConfigs);
  else console.log('# describeConfigs: not in this client\'s KafkaJS-compatible admin API (not a check)');
  for (const codec of A.codecs) await check(`produce ${N_CODEC} acks=-1 + consume (group, fromBeginning) compression=${codec}: exact content, order, codec on disk`, cProduceConsume, codec);
  await check('admin.fetchTopicOffsets / fetchTopicOffsetsByTimestamp', cOffsets);
  await check('metadata: fetchTopicMetadata leader / replicas / isr (kafkajs: describeCluster)', cMetadata);
  await check('produce acks=1 and acks=0, read back', cAcks);
  await check('a producer with allowAutoTopicCreation creates an unknown topic on first send', cAutoCreate);
  await check('consume with maxBytes / maxBytesPerPartition smaller than one record (KIP-74)', cSmallFetch);
  await check('admin.createPartitions 3 -> 4, new partition usable', cCreatePartitions);
  await check('admin.deleteTopics, gone from listTopics', cDeleteTopics);
  if (CLIENT === 'kafkajs') await check('admin.alterConfigs retention.ms, describeConfigs shows it', cAlterConfigs);
  if (CLIENT === 'kafkajs') await check('admin.describeConfigs of the broker, with synonyms', cBrokerConfigs);
  await check('admin errors: invalid topic name, createPartitions to the same count, deleteGroups of an active group, unknown group', cAdminErrors);
  await check('admin.deleteTopicRecords moves the low watermark', cDeleteRecords);
  await check('seek below the log start offset: OFFSET_OUT_OF_RANGE, reset to earliest', cSeekOutOfRange);
  if (CLIENT === 'kafkajs') await check('admin.setOffsets / resetOffsets on an empty group; a member starts there', cSetOffsets);
  await check(`consumer group: 3 members share 6 partitions, rebalance when one leaves, ${N_GROUP}+300 records, committed offsets`, cGroupRebalance);
  await check('consumer group: a new member resumes from the committed offsets', cGroupResume);
  await check('admin.listGroups / describeGroups / fetchOffsets / deleteGroups', cAdminGroups);
  await check('consumer group: a member killed without leaving is expired after its session timeout', cSessionExpiry);
  if (A.staticMembership) await check('consumer group: static membership, a restarted static member gets its partitions back without a rebalance', cStaticMembership);
  if (A.cooperativeSticky) await check('consumer group: cooperative-sticky assignor, 3 members join then one leaves', cGroupCooperative);
  await check(`idempotent producer: ${N_IDEM} records gzip, read back exactly once, one producer id, gapless sequences`, cIdempotent);
  await check('transactions: commit 10 / abort 10 / commit 5 per partition; read_committed stops at the LSO while open', cTxnCommitAbort);
  await check('transactions: read_committed sees only committed records, read_uncommitted all', cTxnIsolation);
  await check('transactions: a second producer with the same transactional.id fences the zombie', cTxnFencing);
  await check('transactions: two transactional producers interleaved on one partition (gzip): LSO, abort of the first, commit of the second', cTxnInterleaved);
  await check('transactions: a transaction left open past transactionTimeout is aborted, the late commit fails', cTxnTimeout);
  await check(`transactions: consume-transform-produce with sendOffsets (${N_CTP} records; aborted run first): exactly one copy`, cTxnCtp);
  process.exit(0);
})().catch((e) => { console.log(`FAIL ${CLIENT}: harness: ${errText(e)}`); log(e && e.stack); process.exit(1); });
