//! `semel txn list | describe | abort` against a broker with an open transaction.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{free_port, start_semel};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

fn semel_txn(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let output =
        Command::new(env!("CARGO_BIN_EXE_semel")).args(["txn", "--bootstrap", bootstrap]).args(args).output().expect("run semel txn");
    (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_txn_cli_lists_describes_and_aborts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let _semel = start_semel(port, tmp.path());
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin");
    let topic = rdkafka::admin::NewTopic::new("cli", 1, rdkafka::admin::TopicReplication::Fixed(1));
    for r in admin.create_topics(&[topic], &rdkafka::admin::AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("transactional.id", "cli-txn").create().expect("producer");
    producer.init_transactions(Duration::from_secs(60)).expect("init");
    producer.begin_transaction().expect("begin");
    producer.send(FutureRecord::<str, str>::to("cli").partition(0).payload("open"), Duration::from_secs(10)).await.expect("sent");

    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let (ok, out) = semel_txn(&b, &["list", "--state", "Ongoing"]);
        assert!(ok && out.contains("cli-txn") && out.contains("Ongoing"), "{out}");
        let (ok, out) = semel_txn(&b, &["describe", "cli-txn"]);
        assert!(ok && out.contains("State:             Ongoing") && out.contains("cli-0"), "{out}");
        let (ok, out) = semel_txn(&b, &["describe", "unknown-id"]);
        assert!(!ok && out.contains("TransactionalIdNotFound"), "{out}");
        let (ok, out) = semel_txn(&b, &["abort", "--topic", "cli", "--partition", "0", "--start-offset", "5"]);
        assert!(!ok && out.contains("no open transaction starts at offset 5"), "{out}");
        let (ok, out) = semel_txn(&b, &["abort", "--topic", "cli", "--partition", "0", "--start-offset", "0"]);
        assert!(ok && out.contains("aborted the transaction"), "{out}");
    })
    .await
    .expect("cli");
}
