//! `semel txn`: list, describe and abort transactions on any broker that implements KIP-664
//! (semel or Apache Kafka), like Kafka's `kafka-transactions.sh`.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, Subcommand};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Args)]
pub(crate) struct TxnArgs {
    /// Broker to ask (semel's coordinator is the broker itself).
    #[arg(long, default_value = "127.0.0.1:9092", env = "SEMEL_BOOTSTRAP")]
    bootstrap: String,
    #[command(subcommand)]
    command: TxnCommand,
}

#[derive(Debug, Subcommand)]
enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List {
        /// Only these states (Ongoing, PrepareCommit, CompleteAbort, ...); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only transactions open for longer than this many milliseconds.
        #[arg(long)]
        older_than_ms: Option<i64>,
    },
    /// Describe one transactional id: state, producer, timeout, partitions.
    Describe { transactional_id: String },
    /// Abort a hanging transaction on one partition by writing an ABORT marker, given either
    /// the transaction's start offset there or its producer id and epoch.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The transaction's first offset on the partition (see DescribeProducers).
        #[arg(long, conflicts_with_all = ["producer_id", "producer_epoch"])]
        start_offset: Option<i64>,
        #[arg(long, requires = "producer_epoch")]
        producer_id: Option<i64>,
        #[arg(long, requires = "producer_id")]
        producer_epoch: Option<i16>,
        #[arg(long, default_value_t = 0)]
        coordinator_epoch: i32,
    },
}

/// One connection speaking the Kafka protocol, one request at a time.
struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    async fn connect(bootstrap: &str) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(bootstrap))
            .await
            .with_context(|| format!("connecting to {bootstrap} timed out"))?
            .with_context(|| format!("cannot connect to {bootstrap}"))?;
        Ok(Self { stream, correlation_id: 0 })
    }

    async fn call<Q: Encodable + HeaderVersion, R: Decodable>(&mut self, key: ApiKey, version: i16, request: &Q) -> anyhow::Result<R> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("semel-txn")));
        let mut body = BytesMut::new();
        header.encode(&mut body, Q::header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(i32::try_from(body.len())?);
        frame.put_slice(&body);
        self.stream.write_all(&frame).await.context("sending the request")?;
        let mut size = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(30), self.stream.read_exact(&mut size))
            .await
            .context("no answer within 30 s")?
            .with_context(|| format!("the broker closed the connection: does it support {key:?} v{version}?"))?;
        let size = usize::try_from(i32::from_be_bytes(size)).context("negative frame size")?;
        let mut response = vec![0u8; size];
        self.stream.read_exact(&mut response).await.context("reading the answer")?;
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!("answer to another request (correlation id {})", header.correlation_id);
        }
        R::decode(&mut response, version).with_context(|| format!("cannot decode the {key:?} answer"))
    }
}

fn error_name(code: i16) -> String {
    kafka_protocol::error::ResponseError::try_from_code(code).map_or_else(|| format!("error {code}"), |e| format!("{e:?} ({code})"))
}

pub(crate) async fn run(args: TxnArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap).await?;
    match args.command {
        TxnCommand::List { states, older_than_ms } => {
            let request = ListTransactionsRequest::default()
                .with_state_filters(states.into_iter().map(StrBytes::from_string).collect())
                .with_duration_filter(older_than_ms.unwrap_or(-1));
            let response: ListTransactionsResponse = client.call(ApiKey::ListTransactions, 1, &request).await?;
            if response.error_code != 0 {
                bail!("ListTransactions failed: {}", error_name(response.error_code));
            }
            for unknown in &response.unknown_state_filters {
                eprintln!("semel: unknown state filter '{}'", unknown.as_str());
            }
            println!("{:<40} {:>12} State", "TransactionalId", "ProducerId");
            for t in &response.transaction_states {
                println!("{:<40} {:>12} {}", t.transactional_id.0.as_str(), t.producer_id.0, t.transaction_state.as_str());
            }
        }
        TxnCommand::Describe { transactional_id } => {
            let request = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(transactional_id.clone()))]);
            let response: DescribeTransactionsResponse = client.call(ApiKey::DescribeTransactions, 0, &request).await?;
            let Some(t) = response.transaction_states.first() else { bail!("empty answer") };
            if t.error_code != 0 {
                bail!("transactional id '{transactional_id}': {}", error_name(t.error_code));
            }
            println!("TransactionalId:   {}", t.transactional_id.0.as_str());
            println!("State:             {}", t.transaction_state.as_str());
            println!("ProducerId:        {}", t.producer_id.0);
            println!("ProducerEpoch:     {}", t.producer_epoch);
            println!("TimeoutMs:         {}", t.transaction_timeout_ms);
            println!("StartTimeMs:       {}", t.transaction_start_time_ms);
            let partitions: Vec<String> =
                t.topics.iter().flat_map(|d| d.partitions.iter().map(move |p| format!("{}-{p}", d.topic.0.as_str()))).collect();
            println!("Partitions:        {}", partitions.join(", "));
        }
        TxnCommand::Abort { topic, partition, start_offset, producer_id, producer_epoch, coordinator_epoch } => {
            let (producer_id, producer_epoch) = match (start_offset, producer_id, producer_epoch) {
                (Some(offset), _, _) => {
                    let request = DescribeProducersRequest::default()
                        .with_topics(vec![describe_producers_request::TopicRequest::default()
                            .with_name(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partition_indexes(vec![partition])]);
                    let response: DescribeProducersResponse = client.call(ApiKey::DescribeProducers, 0, &request).await?;
                    let p = response.topics.first().and_then(|t| t.partitions.first()).context("empty answer")?;
                    if p.error_code != 0 {
                        bail!("{topic}-{partition}: {}", error_name(p.error_code));
                    }
                    let producer = p
                        .active_producers
                        .iter()
                        .find(|s| s.current_txn_start_offset == offset)
                        .with_context(|| format!("no open transaction starts at offset {offset} of {topic}-{partition}"))?;
                    (producer.producer_id.0, i16::try_from(producer.producer_epoch)?)
                }
                (None, Some(id), Some(epoch)) => (id, epoch),
                _ => bail!("give --start-offset, or --producer-id and --producer-epoch"),
            };
            let marker = write_txn_markers_request::WritableTxnMarker::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(coordinator_epoch)
                .with_topics(vec![write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_indexes(vec![partition])]);
            let response: WriteTxnMarkersResponse =
                client.call(ApiKey::WriteTxnMarkers, 1, &WriteTxnMarkersRequest::default().with_markers(vec![marker])).await?;
            let code =
                response.markers.first().and_then(|m| m.topics.first()).and_then(|t| t.partitions.first()).map_or(-1, |p| p.error_code);
            if code != 0 {
                bail!("abort of producer {producer_id} epoch {producer_epoch} on {topic}-{partition} failed: {}", error_name(code));
            }
            println!("aborted the transaction of producer {producer_id} (epoch {producer_epoch}) on {topic}-{partition}");
        }
    }
    Ok(())
}
