//! rdkafka helpers for the tests of `semel process`: topics, read_committed reads, committed
//! offsets, and processor instances as child processes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Generous bound for a wait that normally ends in seconds.
pub const BOUND: Duration = Duration::from_secs(600);

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let new = rdkafka::admin::NewTopic::new(topic, partitions, rdkafka::admin::TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for r in runtime.block_on(admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new())).expect("create") {
        r.expect("created");
    }
}

/// A read_committed consumer of `group` that commits nothing.
pub fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// The group's committed offsets of `topic` (-1 where none; all -1 while the broker is down).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c = consumer(bootstrap, group);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    match c.committed_offsets(tpl, Duration::from_secs(30)) {
        Ok(t) => (0..partitions).map(|p| t.find_partition(topic, p).and_then(|e| e.offset().to_raw()).unwrap_or(-1)).collect(),
        Err(_) => vec![-1; partitions as usize],
    }
}

/// The sum of the group's committed offsets of `topic`.
pub fn committed_sum(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    committed(bootstrap, group, topic, partitions).into_iter().filter(|o| *o > 0).sum()
}

/// The high watermarks of `topic`.
pub fn ends(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("consumer");
    (0..partitions).map(|p| c.fetch_watermarks(topic, p, Duration::from_secs(60)).expect("watermarks").1).collect()
}

/// (partition, key, value) of every record of `topic`, read_committed, partition after partition,
/// once no transaction is open on it.
pub fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<(i32, String, String)> {
    let c = consumer(bootstrap, "test-reader");
    let mut out = Vec::new();
    for p in 0..partitions {
        let end = semel_testkit::stable_end(bootstrap, topic, p, BOUND);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
        c.assign(&tpl).expect("assign");
        let deadline = Instant::now() + BOUND;
        while c.position().expect("position").find_partition(topic, p).and_then(|e| e.offset().to_raw()).unwrap_or(0) < end {
            assert!(Instant::now() < deadline, "{topic}-{p} not read to {end}");
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                let m = m.expect("message");
                let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec()).expect("utf8");
                out.push((p, text(m.key()), text(m.payload())));
            }
        }
    }
    out
}

/// Writes (key, value) records with an idempotent producer and waits for every ack.
pub fn produce(bootstrap: &str, topic: &str, records: impl IntoIterator<Item = (String, String)>) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "600000")
        .create()
        .expect("producer");
    for (key, value) in records {
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(600)).expect("every record acknowledged");
}

/// A `semel process` child, its stderr in `log`.
pub struct Instance {
    pub args: Vec<String>,
    pub log: std::path::PathBuf,
    pub child: Option<Child>,
}

impl Instance {
    pub fn new(args: &[&str], log: std::path::PathBuf) -> Self {
        let mut instance = Self { args: args.iter().map(|s| s.to_string()).collect(), log, child: None };
        instance.start();
        instance
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_semel"))
            .arg("process")
            .args(&self.args)
            .env("SEMEL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn semel process");
        self.child = Some(child);
    }

    pub fn pid(&self) -> String {
        self.child.as_ref().expect("running").id().to_string()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid()]).status().expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts it if it exited (as a supervisor would), printing why; true if it did.
    pub fn revive(&mut self) -> bool {
        let exited = self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_some());
        if exited {
            eprintln!("{} exited; restarting it. Its log ends: {:?}", self.log.display(), self.tail(3));
            self.child = None;
            self.start();
        }
        exited
    }

    /// SIGTERM and wait: true if it exited with status 0.
    pub fn sigterm(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    pub fn tail(&self, lines: usize) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut tail: Vec<String> = text.lines().rev().take(lines).map(str::to_string).collect();
        tail.reverse();
        tail
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The last lines of every instance's log, for a failure message.
pub fn logs(instances: &[Instance]) -> String {
    instances.iter().map(|i| format!("\n--- {}:\n{}", i.log.display(), i.tail(5).join("\n"))).collect()
}
