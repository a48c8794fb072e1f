//! The `semel` binary as a child process, for tests that kill -9 it; and the broker of the
//! toolkit's acceptance tests, semel or Apache Kafka (`SEMEL_TEST_BROKER`).
#![allow(dead_code, unreachable_pub)]

pub mod kafka;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use semel_testkit::free_port;
use semel_testkit::{broker_under_test, ApacheKafka, BrokerUnderTest};

/// A running `semel serve`; killed when dropped, however the test ends.
pub struct Semel(Child);

impl Drop for Semel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `semel serve` on `port` with data in `dir` and waits until it accepts connections.
pub fn start_semel(port: u16, dir: &std::path::Path) -> Semel {
    start_semel_with(port, dir, &[])
}

/// `start_semel` with more arguments (such as `--config FILE`).
pub fn start_semel_with(port: u16, dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Semel {
    start_semel_env(port, dir, extra, &[])
}

/// `start_semel_with` and more environment variables (such as a test crash point).
pub fn start_semel_env(port: u16, dir: &std::path::Path, extra: &[&std::ffi::OsStr], env: &[(&str, &std::ffi::OsStr)]) -> Semel {
    let child = Command::new(env!("CARGO_BIN_EXE_semel"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("SEMEL_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn semel");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "semel did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    Semel(child)
}

/// SIGKILL, as a crash would.
pub fn kill_9(semel: &mut Semel) {
    let status = Command::new("kill").args(["-9", &semel.0.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let _ = semel.0.wait();
}

/// The broker of an acceptance test: `semel serve`, or Apache Kafka with
/// `SEMEL_TEST_BROKER=kafka`. Either can be killed -9 and restarted on the same data.
pub enum TestBroker {
    Semel { port: u16, dir: std::path::PathBuf, semel: Semel },
    Kafka(ApacheKafka),
}

impl TestBroker {
    /// Starts the broker under test with its data in `dir` and waits until it serves.
    pub fn start(dir: &std::path::Path) -> Self {
        match broker_under_test() {
            BrokerUnderTest::Semel => {
                let port = free_port();
                Self::Semel { port, dir: dir.to_path_buf(), semel: start_semel(port, dir) }
            }
            BrokerUnderTest::ApacheKafka => Self::Kafka(ApacheKafka::start(dir)),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Self::Semel { port, .. } => format!("127.0.0.1:{port}"),
            Self::Kafka(kafka) => kafka.bootstrap(),
        }
    }

    /// SIGKILL, then the same broker started again on the same data.
    pub fn kill_9_and_restart(&mut self) {
        match self {
            Self::Semel { port, dir, semel } => {
                kill_9(semel);
                *semel = start_semel(*port, dir);
            }
            Self::Kafka(kafka) => kafka.restart(),
        }
    }
}
