//! The classic group protocol over the raw protocol: the MEMBER_ID_REQUIRED round trip,
//! generations, static membership, session expiry, offset commit validation, group admin.

mod common;

use bytes::Bytes;
use common::raw::RawClient;
use common::{config_for, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// Session and rebalance timeout of members that must not expire during a test: far longer than
/// any test step, however slow the machine.
const SESSION_MS: i32 = 60_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn broker() -> TestBroker {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut config = config_for(tmp.path());
    config.groups.initial_rebalance_delay_ms = 0;
    config.groups.min_session_timeout_ms = 500;
    TestBroker::start_with(config, tmp).await
}

fn join(group: &str, member: &str, instance: Option<&str>, session_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(SESSION_MS)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
}

async fn heartbeat(client: &mut RawClient, group: &str, generation: i32, member: &str, instance: Option<&str>) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s));
    let response: HeartbeatResponse = client.call(ApiKey::Heartbeat, 4, &request).await;
    response.error_code
}

async fn commit(client: &mut RawClient, group: &str, generation: i32, member: &str, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default().with_name(TopicName(s("t"))).with_partitions(vec![
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("m"))),
        ])]);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &request).await;
    response.topics[0].partitions[0].error_code
}

async fn committed(client: &mut RawClient, group: &str) -> i64 {
    let request = OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(Some(vec![
        offset_fetch_request::OffsetFetchRequestTopic::default().with_name(TopicName(s("t"))).with_partition_indexes(vec![0]),
    ]));
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 7, &request).await;
    response.topics[0].partitions[0].committed_offset
}

async fn state_of(client: &mut RawClient, group: &str) -> String {
    let response: DescribeGroupsResponse =
        client.call(ApiKey::DescribeGroups, 5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))])).await;
    response.groups[0].group_state.to_string()
}

/// Joins as a new dynamic member (with the MEMBER_ID_REQUIRED round trip) and syncs as leader.
async fn join_and_sync(client: &mut RawClient, group: &str) -> (String, i32) {
    let first: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join(group, "", None, SESSION_MS)).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = first.member_id.to_string();
    assert!(!member.is_empty());
    let joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join(group, &member, None, SESSION_MS)).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader.as_str(), member, "the only member leads");
    assert_eq!(joined.protocol_name.as_ref().map(|p| p.to_string()), Some("range".to_string()));
    assert_eq!(joined.members.len(), 1);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(joined.generation_id)
        .with_member_id(s(&member))
        .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(Bytes::from_static(b"assigned"))]);
    let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!((synced.error_code, &synced.assignment[..]), (0, &b"assigned"[..]));
    (member, joined.generation_id)
}

#[tokio::test]
async fn join_sync_heartbeat_and_generation_checks() {
    let broker = broker().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let (member, generation) = join_and_sync(&mut client, "g").await;
    assert_eq!(state_of(&mut client, "g").await, "Stable");
    assert_eq!(heartbeat(&mut client, "g", generation, &member, None).await, 0);
    assert_eq!(heartbeat(&mut client, "g", generation + 1, &member, None).await, 22, "ILLEGAL_GENERATION");
    assert_eq!(heartbeat(&mut client, "g", generation, "nobody", None).await, 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(heartbeat(&mut client, "unknown-group", 1, &member, None).await, 25);
    let response: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("g2", "made-up", None, SESSION_MS)).await;
    assert_eq!(response.error_code, 25, "a member id the coordinator never gave out");
    let response: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("g2", "", None, 100)).await;
    assert_eq!(response.error_code, 26, "INVALID_SESSION_TIMEOUT");
    let response: JoinGroupResponse =
        client.call(ApiKey::JoinGroup, 5, &join("g", "", None, SESSION_MS).with_protocol_type(s("connect"))).await;
    assert_eq!(response.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
}

#[tokio::test]
async fn offset_commit_validation_follows_kafka() {
    let broker = broker().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    common::create_topic(&broker.bootstrap(), "t", 1, &[]).await;
    // A group unknown to the coordinator: generation -1 (assign()) stores offsets; a
    // generation >= 0 is ILLEGAL_GENERATION.
    assert_eq!(commit(&mut client, "simple", -1, "", 5).await, 0);
    assert_eq!(committed(&mut client, "simple").await, 5);
    assert_eq!(commit(&mut client, "nobody-home", 3, "", 5).await, 22);

    let (member, generation) = join_and_sync(&mut client, "live").await;
    assert_eq!(commit(&mut client, "live", generation, &member, 7).await, 0);
    assert_eq!(committed(&mut client, "live").await, 7);
    assert_eq!(commit(&mut client, "live", -1, "", 8).await, 25, "generation -1 while the group has members");
    assert_eq!(commit(&mut client, "live", generation + 1, &member, 8).await, 22);
    assert_eq!(commit(&mut client, "live", generation, "stranger", 8).await, 25);
    assert_eq!(committed(&mut client, "live").await, 7, "refused commits change nothing");
    assert_eq!(committed(&mut client, "never-committed").await, -1);
    let unknown_topic =
        OffsetCommitRequest::default().with_group_id(GroupId(s("simple"))).with_generation_id_or_member_epoch(-1).with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default().with_name(TopicName(s("no-such-topic"))).with_partitions(vec![
                offset_commit_request::OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1),
            ]),
        ]);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &unknown_topic).await;
    assert_eq!(response.topics[0].partitions[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
}

#[tokio::test]
async fn static_members_fence_their_predecessor() {
    let broker = broker().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let first: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("static", "", Some("instance-1"), SESSION_MS)).await;
    assert_eq!(first.error_code, 0, "static members join without MEMBER_ID_REQUIRED");
    let old = first.member_id.to_string();
    let second: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("static", "", Some("instance-1"), SESSION_MS)).await;
    assert_eq!(second.error_code, 0);
    let new = second.member_id.to_string();
    assert_ne!(old, new);
    assert_eq!(heartbeat(&mut client, "static", second.generation_id, &old, Some("instance-1")).await, 82, "FENCED_INSTANCE_ID");
}

#[tokio::test]
async fn a_returning_static_member_gets_its_assignment_without_a_rebalance() {
    // Both members in one generation, whatever the timing: s1 forms the group, s2's join starts
    // a rebalance, and s1 rejoins once it runs, which completes it with both.
    let broker = broker().await;
    let (mut c1, mut c2) = (RawClient::connect(&broker.bootstrap()).await, RawClient::connect(&broker.bootstrap()).await);
    let alone: JoinGroupResponse = c1.call(ApiKey::JoinGroup, 5, &join("statics", "", Some("s1"), SESSION_MS)).await;
    assert_eq!(alone.error_code, 0);
    let (r1, r2) = (join("statics", alone.member_id.as_str(), Some("s1"), SESSION_MS), join("statics", "", Some("s2"), SESSION_MS));
    let (j1, j2) = tokio::join!(
        async {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while state_of(&mut c1, "statics").await != "PreparingRebalance" {
                assert!(std::time::Instant::now() < deadline, "s2's join never started a rebalance");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            c1.call::<_, JoinGroupResponse>(ApiKey::JoinGroup, 5, &r1).await
        },
        c2.call::<_, JoinGroupResponse>(ApiKey::JoinGroup, 5, &r2),
    );
    assert_eq!((j1.error_code, j2.error_code), (0, 0));
    assert_eq!((j1.generation_id, j2.generation_id), (alone.generation_id + 1, alone.generation_id + 1), "one generation with both");
    let (id1, id2) = (j1.member_id.to_string(), j2.member_id.to_string());
    let generation = j1.generation_id;
    let (leader, follower) =
        if j1.leader.as_str() == id1 { ((&mut c1, &id1), (&mut c2, &id2)) } else { ((&mut c2, &id2), (&mut c1, &id1)) };
    let assignments = vec![
        sync_group_request::SyncGroupRequestAssignment::default().with_member_id(s(&id1)).with_assignment(Bytes::from_static(b"for-s1")),
        sync_group_request::SyncGroupRequestAssignment::default().with_member_id(s(&id2)).with_assignment(Bytes::from_static(b"for-s2")),
    ];
    let sync = |member: &str, assignments: Vec<sync_group_request::SyncGroupRequestAssignment>| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(s("statics")))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_assignments(assignments)
    };
    let (leader_request, follower_request) = (sync(leader.1, assignments), sync(follower.1, Vec::new()));
    let (leader_sync, follower_sync) = tokio::join!(
        leader.0.call::<_, SyncGroupResponse>(ApiKey::SyncGroup, 3, &leader_request),
        follower.0.call::<_, SyncGroupResponse>(ApiKey::SyncGroup, 3, &follower_request),
    );
    assert_eq!((leader_sync.error_code, follower_sync.error_code), (0, 0));
    assert_eq!(state_of(&mut c1, "statics").await, "Stable");

    // s2 restarts (no LeaveGroup) and joins with an empty member id.
    let rejoined: JoinGroupResponse = c2.call(ApiKey::JoinGroup, 5, &join("statics", "", Some("s2"), SESSION_MS)).await;
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, generation, "no new generation");
    let new_id2 = rejoined.member_id.to_string();
    assert_ne!(new_id2, id2);
    let leader_id = if j1.leader.as_str() == id1 { &id1 } else { &id2 };
    assert_eq!(rejoined.leader.as_str(), leader_id, "the leader from before the rejoin");
    assert!(rejoined.members.is_empty(), "nobody is asked to assign");
    assert_eq!(state_of(&mut c1, "statics").await, "Stable");
    let synced: SyncGroupResponse = c2.call(ApiKey::SyncGroup, 3, &sync(&new_id2, Vec::new())).await;
    assert_eq!((synced.error_code, &synced.assignment[..]), (0, &b"for-s2"[..]), "its assignment from before");
    assert_eq!(heartbeat(&mut c1, "statics", generation, &id1, Some("s1")).await, 0, "the other member carries on");
    assert_eq!(heartbeat(&mut c2, "statics", generation, &new_id2, Some("s2")).await, 0);
    assert_eq!(heartbeat(&mut c2, "statics", generation, &id2, Some("s2")).await, 82, "the old member id is fenced");
}

#[tokio::test]
async fn silent_members_expire_and_empty_groups_can_be_deleted() {
    let broker = broker().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    common::create_topic(&broker.bootstrap(), "t", 1, &[]).await;
    // A long session while the member must be there (however slow the machine), then a rejoin
    // with the same protocols (the current generation comes back, nothing rebalances) that
    // shortens it to 800 ms.
    let first: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("quiet", "", None, SESSION_MS)).await;
    let member = first.member_id.to_string();
    let joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("quiet", &member, None, SESSION_MS)).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(commit(&mut client, "quiet", joined.generation_id, &member, 3).await, 27, "REBALANCE_IN_PROGRESS before the sync");
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("quiet"))]);
    let response: DeleteGroupsResponse = client.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(response.results[0].error_code, 68, "NON_EMPTY_GROUP");
    let rejoined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join("quiet", &member, None, 800)).await;
    assert_eq!((rejoined.error_code, rejoined.generation_id), (0, joined.generation_id));
    // No heartbeats: the member is removed after its session timeout (checked every 100 ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while state_of(&mut client, "quiet").await != "Empty" {
        assert!(std::time::Instant::now() < deadline, "member never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(commit(&mut client, "quiet", -1, "", 4).await, 0, "an empty group accepts generation -1");
    let listed: ListGroupsResponse =
        client.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default().with_states_filter(vec![s("Empty")])).await;
    assert!(listed.groups.iter().any(|g| g.group_id.0.as_str() == "quiet"));
    let listed: ListGroupsResponse =
        client.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default().with_states_filter(vec![s("Stable")])).await;
    assert!(listed.groups.iter().all(|g| g.group_id.0.as_str() != "quiet"));
    let response: DeleteGroupsResponse = client.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(response.results[0].error_code, 0);
    assert_eq!(committed(&mut client, "quiet").await, -1, "its offsets went with it");
    let response: DeleteGroupsResponse = client.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(response.results[0].error_code, 69, "GROUP_ID_NOT_FOUND");
}

/// Every advertised version of the group APIs gets an answer that decodes.
#[tokio::test]
async fn every_advertised_group_api_version_answers() {
    let broker = broker().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    common::create_topic(&broker.bootstrap(), "t", 1, &[]).await;
    for version in 0..=9i16 {
        let group = format!("sweep-{version}");
        // v0-3 add a new member at once; v4+ first answer MEMBER_ID_REQUIRED.
        let mut response: JoinGroupResponse = client.call(ApiKey::JoinGroup, version, &join(&group, "", None, SESSION_MS)).await;
        if version >= 4 {
            assert_eq!(response.error_code, 79, "JoinGroup v{version}");
            let member = response.member_id.to_string();
            response = client.call(ApiKey::JoinGroup, version, &join(&group, &member, None, SESSION_MS)).await;
        }
        assert_eq!(response.error_code, 0, "JoinGroup v{version}");
        let member = response.member_id.to_string();
        let generation = response.generation_id;
        let sync_version = version.min(5);
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(generation)
            .with_member_id(s(&member))
            .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(Bytes::from_static(b"a"))]);
        if sync_version >= 5 {
            sync = sync.with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range")));
        }
        let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, sync_version, &sync).await;
        assert_eq!(synced.error_code, 0, "SyncGroup v{sync_version}");
        let hb = HeartbeatRequest::default().with_group_id(GroupId(s(&group))).with_generation_id(generation).with_member_id(s(&member));
        let hb_response: HeartbeatResponse = client.call(ApiKey::Heartbeat, version.min(4), &hb).await;
        assert_eq!(hb_response.error_code, 0, "Heartbeat v{}", version.min(4));
        if (2..=9).contains(&version) {
            let request = OffsetCommitRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(s(&member))
                .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1)])]);
            let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, version, &request).await;
            assert_eq!(response.topics[0].partitions[0].error_code, 0, "OffsetCommit v{version}");
        }
        if (1..=9).contains(&version) {
            let request = if version >= 8 {
                OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_topics(None)])
            } else {
                OffsetFetchRequest::default().with_group_id(GroupId(s(&group))).with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default().with_name(TopicName(s("t"))).with_partition_indexes(vec![0]),
                ]))
            };
            let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, version, &request).await;
            let offset = if version >= 8 {
                response.groups[0].topics[0].partitions[0].committed_offset
            } else {
                response.topics[0].partitions[0].committed_offset
            };
            assert_eq!(offset, if version >= 2 { 1 } else { -1 }, "OffsetFetch v{version}");
        }
        if version <= 5 {
            let response: DescribeGroupsResponse =
                client.call(ApiKey::DescribeGroups, version, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(&group))])).await;
            assert_eq!(response.groups[0].members.len(), 1, "DescribeGroups v{version}");
            let response: ListGroupsResponse = client.call(ApiKey::ListGroups, version, &ListGroupsRequest::default()).await;
            assert!(response.groups.iter().any(|g| g.group_id.0.as_str() == group), "ListGroups v{version}");
            let leave = if version >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s(&member))])
            } else {
                LeaveGroupRequest::default().with_group_id(GroupId(s(&group))).with_member_id(s(&member))
            };
            let response: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, version, &leave).await;
            assert_eq!(response.error_code, 0, "LeaveGroup v{version}");
            if version <= 2 {
                let response: DeleteGroupsResponse = client
                    .call(ApiKey::DeleteGroups, version, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]))
                    .await;
                assert_eq!(response.results[0].error_code, 0, "DeleteGroups v{version}");
            }
        }
    }
}

#[tokio::test]
async fn offsets_of_empty_groups_expire_after_the_retention() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut config = config_for(tmp.path());
    let retention = std::time::Duration::from_millis(300);
    config.groups.offsets_retention_ms = retention.as_millis() as i64;
    let broker = TestBroker::start_with(config, tmp).await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    common::create_topic(&broker.bootstrap(), "t", 1, &[]).await;
    let committing = std::time::Instant::now();
    assert_eq!(commit(&mut client, "short-lived", -1, "", 9).await, 0);
    // Stored; the retention counts from the commit, after `committing`, so the offsets can only
    // be gone already if the machine took longer than the retention since then.
    let read_back = committed(&mut client, "short-lived").await;
    assert!(read_back == 9 || committing.elapsed() > retention, "the commit was stored: {read_back}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while committed(&mut client, "short-lived").await != -1 {
        assert!(std::time::Instant::now() < deadline, "offsets never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
