//! A minimal raw Kafka protocol client for tests that need exact requests and answers.
#![allow(dead_code, unreachable_pub)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawClient {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: &str) -> Self {
        Self::from_stream(TcpStream::connect(addr).await.expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        Self { stream, correlation_id: 0 }
    }

    /// Sends a request and decodes the response of type `R`.
    pub async fn call<Q: Encodable + HeaderVersion, R: Decodable>(&mut self, key: ApiKey, version: i16, request: &Q) -> R {
        self.send(key, version, request).await;
        let mut body = self.read_frame().await.expect("response frame");
        let header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(version) };
        let header = ResponseHeader::decode(&mut body, header_version).expect("response header");
        assert_eq!(header.correlation_id, self.correlation_id, "responses come in request order");
        R::decode(&mut body, version).expect("response body")
    }

    pub async fn send<Q: Encodable + HeaderVersion>(&mut self, key: ApiKey, version: i16, request: &Q) {
        self.send_claiming_version(key, version, version, request).await;
    }

    /// Encodes the body at `version` but writes `claimed` as the header's API version.
    pub async fn send_claiming_version<Q: Encodable + HeaderVersion>(&mut self, key: ApiKey, claimed: i16, version: i16, request: &Q) {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(claimed)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, Q::header_version(version)).expect("encode header");
        request.encode(&mut buf, version).expect("encode request");
        self.send_frame(&buf).await;
    }

    pub async fn send_frame(&mut self, body: &[u8]) {
        let mut framed = BytesMut::with_capacity(body.len() + 4);
        framed.put_i32(body.len() as i32);
        framed.put_slice(body);
        self.stream.write_all(&framed).await.expect("write");
    }

    /// Reads one frame; `None` when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        // Generous: an answer normally comes at once, but a loaded machine can be slow.
        let read = tokio::time::timeout(std::time::Duration::from_secs(60), self.stream.read_exact(&mut size))
            .await
            .expect("no answer within 60s");
        read.ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    }

    /// Whether the broker closes the connection (read returns EOF) within 60 s (generous: the
    /// callers expect it closed, and it normally is at once).
    pub async fn is_closed_by_broker(&mut self) -> bool {
        self.is_closed_by_broker_within(std::time::Duration::from_secs(60)).await
    }

    /// Whether the broker closes the connection (read returns EOF) within `timeout`.
    pub async fn is_closed_by_broker_within(&mut self, timeout: std::time::Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(timeout, self.stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
    }
}

/// Reads the i16 error code at the start of an ApiVersions v0 body.
pub fn api_versions_error(mut body: Bytes) -> i16 {
    let _ = ResponseHeader::decode(&mut body, 0).expect("header");
    body.get_i16()
}

/// A batch of keyless records with `values`, timestamps from `timestamp` on, uncompressed: what
/// a plain client sends.
pub fn keyless_batch(values: &[&str], timestamp: i64) -> Bytes {
    let records: Vec<kafka_protocol::records::Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: timestamp + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &kafka_protocol::records::RecordEncodeOptions { version: 2, compression: kafka_protocol::records::Compression::None },
    )
    .expect("encode");
    buf.freeze()
}
