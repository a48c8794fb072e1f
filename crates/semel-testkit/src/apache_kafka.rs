//! A single-node Apache Kafka (KRaft, broker and controller in one process) as a child process
//! of the test, started by `scripts/kafka.sh` (which fetches the jars from Maven Central once
//! and caches them). The test owns the JVM process: it can kill it -9 and start it again on the
//! same data, as the crash tests do with semel.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// A JVM on a busy 2-core machine can take a while; a healthy start takes seconds.
const START_BOUND: Duration = Duration::from_secs(300);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh")
}

/// A running Apache Kafka broker; killed when dropped, however the test ends.
pub struct ApacheKafka {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl ApacheKafka {
    /// Prepares a fresh broker with its data in `dir` (created), starts it and waits until it
    /// answers metadata requests.
    pub fn start(dir: &Path) -> Self {
        let port = crate::free_port();
        let status =
            Command::new("bash").arg(script()).arg("prepare").arg(dir).arg(port.to_string()).status().expect("run scripts/kafka.sh");
        assert!(status.success(), "scripts/kafka.sh prepare failed (its messages are above)");
        let mut kafka = Self { dir: dir.to_path_buf(), port, child: None };
        kafka.run();
        kafka
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would (the page cache survives, as with any process kill).
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same data (after `kill_9`) and waits until it serves.
    pub fn restart(&mut self) {
        self.kill_9();
        self.run();
    }

    fn run(&mut self) {
        let child = Command::new("bash")
            .arg(script())
            .arg("run")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn scripts/kafka.sh run");
        self.child = Some(child);
        self.wait_until_serving();
    }

    /// Until a metadata request lists this broker. Kafka listens before it has caught up with
    /// its metadata log, so an open port is not enough.
    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + START_BOUND;
        let log = self.dir.join("server.log");
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("Apache Kafka exited ({status}) while starting; its log: {}", tail(&log));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().expect("client");
                if consumer.fetch_metadata(None, Duration::from_secs(10)).is_ok_and(|m| !m.brokers().is_empty()) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "Apache Kafka did not serve within {START_BOUND:?}; its log: {}", tail(&log));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
