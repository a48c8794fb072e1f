//! The shape check against `kafka-protocol`'s encoder: whatever it encodes for a supported
//! request and version passes, and hostile counts and lengths do not.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{check_embedded, check_request, Embedded};
use crate::server::versions::{self, PRODUCE_MIN_DECODABLE};

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn encode<R: Encodable>(request: &R, version: i16) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

/// The decodable versions of an API.
fn versions_of(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let range = versions::supported(key).expect("supported");
    let min = if key == ApiKey::Produce { PRODUCE_MIN_DECODABLE } else { range.min };
    min..=range.max
}

/// Every supported version of `request` that the encoder can write: (version, body).
fn bodies<R: Encodable>(key: ApiKey, request: &R) -> Vec<(i16, Bytes)> {
    versions_of(key).filter_map(|v| encode(request, v).map(|b| (v, b))).collect()
}

/// For every API dispatch decodes: `each_default` calls `f(key, bodies)` with its default
/// request encoded in every version, and `decode_any` decodes a body of it.
macro_rules! requests {
    ($($api:ident => $request:ty),* $(,)?) => {
        fn each_default(mut f: impl FnMut(ApiKey, Vec<(i16, Bytes)>)) -> Vec<ApiKey> {
            let mut keys = Vec::new();
            $( f(ApiKey::$api, bodies(ApiKey::$api, &<$request>::default())); keys.push(ApiKey::$api); )*
            keys
        }

        /// Decodes a body that passed the check (the result does not matter, only that it
        /// returns).
        fn decode_any(key: ApiKey, version: i16, mut body: Bytes) {
            match key {
                $(ApiKey::$api => { let _ = <$request>::decode(&mut body, version); })*
                other => panic!("{other:?}: not decoded here"),
            }
        }
    };
}

requests! {
        ApiVersions => ApiVersionsRequest, Metadata => MetadataRequest, Produce => ProduceRequest,
        Fetch => FetchRequest, ListOffsets => ListOffsetsRequest, OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        CreateTopics => CreateTopicsRequest, DeleteTopics => DeleteTopicsRequest, CreatePartitions => CreatePartitionsRequest,
        DeleteRecords => DeleteRecordsRequest, DescribeConfigs => DescribeConfigsRequest, AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest, DescribeCluster => DescribeClusterRequest,
        FindCoordinator => FindCoordinatorRequest, InitProducerId => InitProducerIdRequest, JoinGroup => JoinGroupRequest,
        SyncGroup => SyncGroupRequest, Heartbeat => HeartbeatRequest, LeaveGroup => LeaveGroupRequest,
        OffsetCommit => OffsetCommitRequest, OffsetFetch => OffsetFetchRequest, DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest, DeleteGroups => DeleteGroupsRequest, OffsetDelete => OffsetDeleteRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest, AddOffsetsToTxn => AddOffsetsToTxnRequest, EndTxn => EndTxnRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest, DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest, ListTransactions => ListTransactionsRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest,
}

/// Requests with arrays, nested structs, nulls and tagged fields (known and unknown), at
/// every supported version the encoder writes them in.
fn populated() -> Vec<(ApiKey, i16, Bytes)> {
    let mut out = Vec::new();
    let mut add = |key: ApiKey, list: Vec<(i16, Bytes)>| {
        assert!(!list.is_empty(), "{key:?}: no version encodes the sample");
        out.extend(list.into_iter().map(|(v, b)| (key, v, b)));
    };
    let unknown = std::collections::BTreeMap::from([(99, Bytes::from_static(b"\x01\x02\x03"))]);

    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(s("a").into())),
        metadata_request::MetadataRequestTopic::default().with_name(Some(s("b").into())),
    ]));
    add(ApiKey::Metadata, bodies(ApiKey::Metadata, &metadata));
    add(ApiKey::Metadata, bodies(ApiKey::Metadata, &metadata.clone().with_topics(None).with_unknown_tagged_fields(unknown.clone())));

    let records = Bytes::from_static(&[7u8; 61]);
    let produce =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(s("t").into())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_index(0).with_records(Some(records.clone())),
                produce_request::PartitionProduceData::default().with_index(1).with_records(None),
            ])]);
    add(ApiKey::Produce, bodies(ApiKey::Produce, &produce));
    add(ApiKey::Produce, bodies(ApiKey::Produce, &produce.with_transactional_id(Some(s("txn").into()))));

    let fetch = FetchRequest::default().with_max_wait_ms(500).with_topics(vec![fetch_request::FetchTopic::default()
        .with_topic(s("t").into())
        .with_partitions(vec![
            fetch_request::FetchPartition::default().with_partition(0).with_fetch_offset(5),
            fetch_request::FetchPartition::default().with_partition(1),
        ])]);
    add(ApiKey::Fetch, bodies(ApiKey::Fetch, &fetch));
    // Known tagged fields: ClusterId (v12+) and ReplicaState (v15+).
    let tagged =
        fetch.clone().with_cluster_id(Some(s("cluster"))).with_forgotten_topics_data(vec![fetch_request::ForgottenTopic::default()
            .with_topic(s("old").into())
            .with_partitions(vec![1, 2, 3])]);
    add(ApiKey::Fetch, bodies(ApiKey::Fetch, &tagged));
    add(ApiKey::Fetch, bodies(ApiKey::Fetch, &tagged.with_replica_state(fetch_request::ReplicaState::default().with_replica_epoch(3))));

    let join =
        JoinGroupRequest::default().with_group_id(s("g").into()).with_member_id(s("m")).with_protocol_type(s("consumer")).with_protocols(
            vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"\x00\x01meta"))],
        );
    add(ApiKey::JoinGroup, bodies(ApiKey::JoinGroup, &join));
    let sync = SyncGroupRequest::default().with_group_id(s("g").into()).with_assignments(vec![
        sync_group_request::SyncGroupRequestAssignment::default().with_member_id(s("m")).with_assignment(Bytes::from_static(b"x")),
    ]);
    add(ApiKey::SyncGroup, bodies(ApiKey::SyncGroup, &sync));
    let commit = OffsetCommitRequest::default().with_group_id(s("g").into()).with_topics(vec![
        offset_commit_request::OffsetCommitRequestTopic::default().with_name(s("t").into()).with_partitions(vec![
            offset_commit_request::OffsetCommitRequestPartition::default().with_committed_offset(9).with_committed_metadata(Some(s("md"))),
        ]),
    ]);
    add(ApiKey::OffsetCommit, bodies(ApiKey::OffsetCommit, &commit));
    let create = CreateTopicsRequest::default().with_topics(vec![create_topics_request::CreatableTopic::default()
        .with_name(s("t").into())
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![create_topics_request::CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![1.into()])])
        .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
            .with_name(s("cleanup.policy"))
            .with_value(Some(s("compact")))])]);
    add(ApiKey::CreateTopics, bodies(ApiKey::CreateTopics, &create));
    let txn_commit = TxnOffsetCommitRequest::default().with_transactional_id(s("x").into()).with_topics(vec![
        txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
            .with_name(s("t").into())
            .with_partitions(vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition::default().with_committed_offset(1)]),
    ]);
    add(ApiKey::TxnOffsetCommit, bodies(ApiKey::TxnOffsetCommit, &txn_commit));
    let add_partitions =
        AddPartitionsToTxnRequest::default().with_v3_and_below_transactional_id(s("x").into()).with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default().with_name(s("t").into()).with_partitions(vec![0, 1]),
        ]);
    add(ApiKey::AddPartitionsToTxn, bodies(ApiKey::AddPartitionsToTxn, &add_partitions));
    let offset_fetch = OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(s("g").into())
        .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
            .with_name(s("t").into())
            .with_partition_indexes(vec![0])]))]);
    add(ApiKey::OffsetFetch, bodies(ApiKey::OffsetFetch, &offset_fetch));
    let old_offset_fetch = OffsetFetchRequest::default().with_group_id(s("g").into()).with_topics(Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default().with_name(s("t").into()).with_partition_indexes(vec![0, 1]),
    ]));
    add(ApiKey::OffsetFetch, bodies(ApiKey::OffsetFetch, &old_offset_fetch));
    let configs =
        IncrementalAlterConfigsRequest::default().with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(s("retention.ms"))
                .with_value(None)])]);
    add(ApiKey::IncrementalAlterConfigs, bodies(ApiKey::IncrementalAlterConfigs, &configs));
    let markers = WriteTxnMarkersRequest::default().with_markers(vec![write_txn_markers_request::WritableTxnMarker::default()
        .with_producer_id(7.into())
        .with_topics(vec![write_txn_markers_request::WritableTxnMarkerTopic::default()
            .with_name(s("t").into())
            .with_partition_indexes(vec![0])])]);
    add(ApiKey::WriteTxnMarkers, bodies(ApiKey::WriteTxnMarkers, &markers));
    out
}

#[test]
fn every_supported_request_and_version_has_a_layout() {
    for supported in versions::SUPPORTED {
        for v in versions_of(supported.key) {
            let message = super::schema::request(supported.key as i16).unwrap_or_else(|| panic!("{:?}: no layout", supported.key));
            assert!(message.valid.contains(v), "{:?} v{v}: not in the layout's versions", supported.key);
        }
    }
    let keys = each_default(|_, _| {});
    for supported in versions::SUPPORTED {
        assert!(keys.contains(&supported.key), "{:?}: not in this test's list", supported.key);
    }
}

#[test]
fn what_the_encoder_writes_passes() {
    let mut checked = 0;
    each_default(|key, list| {
        assert!(!list.is_empty(), "{key:?}: the default request encodes in no version");
        for (v, body) in list {
            check_request(key as i16, v, &body).unwrap_or_else(|e| panic!("{key:?} v{v} (default): {e}"));
            checked += 1;
        }
    });
    for (key, v, body) in populated() {
        check_request(key as i16, v, &body).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
        checked += 1;
    }
    assert!(checked > 250, "only {checked} requests checked");
}

#[test]
fn the_18_byte_metadata_request_is_refused() {
    // Metadata v1 claiming 2^31-1 topics: kafka-protocol alone allocates 150 GB for it.
    let body = 0x7fff_ffffi32.to_be_bytes();
    let e = check_request(ApiKey::Metadata as i16, 1, &body).expect_err("refused");
    assert_eq!(e.field, "Topics");
    assert!(e.reason.contains("2147483647 elements"), "{e}");
    // Flexible (v9+): the largest 5-byte unsigned varint.
    let e = check_request(ApiKey::Metadata as i16, 12, &[0xff, 0xff, 0xff, 0xff, 0x0f]).expect_err("refused");
    assert!(e.reason.contains("elements"), "{e}");
    // A 6-byte varint is malformed.
    assert!(check_request(ApiKey::Metadata as i16, 12, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
}

/// Every 4-byte window of every sample set to i32::MAX, -2 and the largest varint: the check
/// refuses it, or it passes and then every count is backed by bytes (decoding succeeds or
/// fails, without allocating from the claim: the decode runs here, in this test process).
#[test]
fn hostile_counts_and_lengths_are_refused_before_decoding() {
    let mut samples: Vec<(ApiKey, i16, Bytes)> = Vec::new();
    each_default(|key, list| samples.extend(list.into_iter().map(|(v, b)| (key, v, b))));
    samples.extend(populated());
    let patterns: [&[u8]; 4] =
        [&[0x7f, 0xff, 0xff, 0xff], &[0xff, 0xff, 0xff, 0xfe], &[0xff, 0xff, 0xff, 0xff, 0x07], &[0xfe, 0xff, 0xff, 0xff, 0x0f]];
    let mut refused = 0;
    let mut mutated = 0;
    for (key, v, body) in &samples {
        for at in 0..body.len() {
            for pattern in patterns {
                let mut hostile = body.to_vec();
                let end = (at + pattern.len()).min(hostile.len());
                hostile[at..end].copy_from_slice(&pattern[..end - at]);
                mutated += 1;
                if check_request(*key as i16, *v, &hostile).is_err() {
                    refused += 1;
                    continue;
                }
                decode_any(*key, *v, Bytes::from(hostile));
            }
        }
    }
    assert!(refused > mutated / 4, "{refused} of {mutated} mutated requests refused");
}

#[test]
fn consumer_subscriptions_are_checked_too() {
    for v in 0..=3 {
        let subscription =
            ConsumerProtocolSubscription::default().with_topics(vec![s("a"), s("b")]).with_user_data(Some(Bytes::from_static(b"u")));
        let body = encode(&subscription, v).expect("encode");
        check_embedded(Embedded::ConsumerProtocolSubscription, v, &body).unwrap_or_else(|e| panic!("v{v}: {e}"));
        let mut hostile = BytesMut::new();
        hostile.put_i32(i32::MAX);
        assert!(check_embedded(Embedded::ConsumerProtocolSubscription, v, &hostile).is_err());
    }
}
