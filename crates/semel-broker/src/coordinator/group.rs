//! The classic consumer group coordinator (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with
//! durable offsets, after Kafka's `GroupMetadataManager` / `ClassicGroup` and
//! `OffsetMetadataManager`.
//!
//! Membership state machine (Kafka's states and transitions):
//!
//! ```text
//! Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance ──leader sync──▶ Stable
//!   ▲                    ▲   │ (no member left)                       │                              │
//!   └────────────────────┼───┘                                        └──join, leave, expiry─────────┤
//!                        └───────────────────────────────────────────────────────────────────────────┘
//! Dead: deleted (DeleteGroups).
//! ```
//!
//! Durable state goes through the internal log `__consumer_offsets`: offset commits, and the
//! group's generation, protocol, leader and member assignments after every completed
//! rebalance (so members keep their generation across a broker restart). The log is replayed
//! at start-up through [`GroupCoordinator::replay`], the same function live writes use.
//!
//! Thread-safety: one std mutex over all groups, held only for in-memory work and the append
//! of records (a file write); fsyncs are awaited outside it. Waiting JoinGroup and SyncGroup
//! requests hold a oneshot receiver; the group keeps the sender.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::internal_log::{InternalLog, KeyValue, LogEntry};
use crate::storage::io::LogDirHealth;
use crate::storage::partition::AppendError;

/// Kafka error codes this module answers (mapped once, here, from its decisions).
pub mod errors {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
}
use errors::*;

const LOG_NAME: &str = "__consumer_offsets";

/// Limits and timings of the group coordinator (Kafka's `group.*` and `offsets.*` settings).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
    pub offsets_retention_ms: i64,
    pub offset_metadata_max_bytes: usize,
    /// Bound on the number of groups (every structure is bounded).
    pub max_groups: usize,
    /// Segment size of the offsets log, which the cleaner compacts (Kafka's
    /// `offsets.topic.segment.bytes`).
    pub offsets_segment_bytes: u64,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: 1_000,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offset_metadata_max_bytes: 4096,
            max_groups: 100_000,
            offsets_segment_bytes: 100 * 1024 * 1024,
        }
    }
}

/// The states of a classic group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }

    /// Whether `self` may be entered from `from` (Kafka's `validPreviousStates`).
    fn can_follow(self, from: Self) -> bool {
        use GroupState::*;
        match self {
            Empty => matches!(from, PreparingRebalance),
            PreparingRebalance => matches!(from, Stable | CompletingRebalance | Empty),
            CompletingRebalance => matches!(from, PreparingRebalance),
            Stable => matches!(from, CompletingRebalance),
            Dead => matches!(from, Stable | PreparingRebalance | CompletingRebalance | Empty | Dead),
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, metadata): for the leader only.
    pub members: Vec<(String, Option<String>, Vec<u8>)>,
}

impl JoinResult {
    fn error(error: i16, member_id: &str) -> Self {
        Self { error, generation_id: -1, member_id: member_id.to_string(), ..Default::default() }
    }
}

/// What a SyncGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Vec<u8>,
}

/// A SyncGroup request.
#[derive(Debug)]
pub struct SyncRequest<'a> {
    pub group_id: &'a str,
    pub generation_id: i32,
    pub member_id: &'a str,
    pub instance: Option<&'a str>,
    /// SyncGroup v5+: must match the group's.
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
    /// The leader's assignments (ignored from followers).
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// A JoinGroup request.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Vec<u8>)>,
    /// JoinGroup v4+: a new dynamic member first gets its id with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Debug)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    last_heartbeat: Instant,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Vec<u8> {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug)]
struct Group {
    group_id: String,
    state: GroupState,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation_id: i32,
    leader_id: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED and not used yet, with their expiry.
    pending_members: HashMap<String, Instant>,
    static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group waits this long for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`).
    initial_delay_until: Option<Instant>,
    offsets: HashMap<(String, i32), CommittedOffset>,
    /// Offsets committed inside transactions, per producer id, until the marker (KIP-447).
    pending_txn_offsets: HashMap<i64, HashMap<(String, i32), CommittedOffset>>,
    /// When the group last became empty (offsets expire relative to it).
    empty_since_ms: i64,
}

impl Group {
    fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            offsets: HashMap::new(),
            pending_txn_offsets: HashMap::new(),
            empty_since_ms: crate::now_ms(),
        }
    }

    fn transition(&mut self, to: GroupState) {
        assert!(to.can_follow(self.state), "group {}: illegal transition {:?} -> {:?}", self.group_id, self.state, to);
        self.state = to;
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut iter = self.members.values();
        let Some(first) = iter.next() else { return Vec::new() };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in iter {
            candidates.retain(|c| member.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    /// Each member votes for its most preferred candidate; the most votes wins (ties: the
    /// first candidate in the first member's order), as Kafka's `selectProtocol`.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        candidates
            .iter()
            .max_by_key(|c| (votes.get(c.as_str()).copied().unwrap_or(0), std::cmp::Reverse(candidates.iter().position(|x| x == *c))))
            .cloned()
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type) && {
            let candidates = self.candidate_protocols();
            protocols.iter().any(|(n, _)| candidates.contains(n))
        }
    }

    fn max_rebalance_timeout(&self) -> Duration {
        Duration::from_millis(self.members.values().map(|m| m.rebalance_timeout_ms.max(0) as u64).max().unwrap_or(0))
    }

    fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some()) && self.pending_members.is_empty()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
enum RecordKey {
    #[serde(rename = "offset")]
    Offset { group: String, topic: String, partition: i32 },
    #[serde(rename = "group")]
    Group { group: String },
    /// An offset committed by a transaction, pending until its marker, as semel wrote it
    /// before transactions' offsets became transactional batches with the `offset` key (read
    /// only, for logs written then).
    #[serde(rename = "txn_offset")]
    TxnOffset { group: String, producer_id: i64, topic: String, partition: i32 },
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredMember {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    subscription: Vec<u8>,
    assignment: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredGroup {
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation_id: i32,
    leader_id: Option<String>,
    members: Vec<StoredMember>,
    empty_since_ms: i64,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("coordinator records always serialise")
}

/// The group coordinator. Thread-safe.
#[derive(Debug)]
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    log: InternalLog,
    config: GroupConfig,
}

/// What a write returns: the offset to wait for before answering.
type Durable = Result<i64, AppendError>;

impl GroupCoordinator {
    /// The coordinator's internal log (the cleaner compacts it).
    pub(crate) fn internal_log(&self) -> &InternalLog {
        &self.log
    }

    /// Opens the offsets log and rebuilds every group from it.
    pub fn open(data_dir: &std::path::Path, health: Arc<LogDirHealth>, config: GroupConfig) -> std::io::Result<Self> {
        let (log, records) = InternalLog::open(data_dir, LOG_NAME, health, config.offsets_segment_bytes)?;
        let coordinator = Self { groups: Mutex::new(HashMap::new()), log, config };
        {
            let mut groups = coordinator.lock();
            for entry in &records {
                match entry {
                    LogEntry::Record(record) => Self::replay(&mut groups, record, None),
                    LogEntry::TxnRecord { producer_id, record } => Self::replay(&mut groups, record, Some(*producer_id)),
                    LogEntry::Marker { producer_id, commit } => Self::replay_marker(&mut groups, *producer_id, *commit),
                }
            }
            tracing::info!(groups = groups.len(), records = records.len(), "loaded consumer groups");
        }
        Ok(coordinator)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies one record of the offsets log. Live writes call it too, so loading and
    /// serving share one code path.
    /// `txn_producer`: the record belongs to this producer's transaction (pending until its
    /// marker).
    fn replay(groups: &mut HashMap<String, Group>, record: &KeyValue, txn_producer: Option<i64>) {
        let Ok(key) = serde_json::from_slice::<RecordKey>(&record.key) else {
            tracing::warn!("skipping an unreadable record in the offsets log");
            return;
        };
        match key {
            RecordKey::Offset { group, topic, partition } => {
                let entry = groups.entry(group.clone()).or_insert_with(|| Group::new(&group));
                match record.value.as_deref().map(serde_json::from_slice::<CommittedOffset>) {
                    Some(Ok(offset)) => match txn_producer {
                        Some(producer_id) => {
                            entry.pending_txn_offsets.entry(producer_id).or_default().insert((topic, partition), offset);
                        }
                        None => {
                            entry.offsets.insert((topic, partition), offset);
                        }
                    },
                    Some(Err(_)) => tracing::warn!(group, "skipping an unreadable offset record"),
                    None => {
                        entry.offsets.remove(&(topic, partition));
                    }
                }
            }
            RecordKey::TxnOffset { group, producer_id, topic, partition } => {
                let entry = groups.entry(group.clone()).or_insert_with(|| Group::new(&group));
                if let Some(Ok(offset)) = record.value.as_deref().map(serde_json::from_slice::<CommittedOffset>) {
                    entry.pending_txn_offsets.entry(producer_id).or_default().insert((topic, partition), offset);
                }
            }
            RecordKey::Group { group } => match record.value.as_deref().map(serde_json::from_slice::<StoredGroup>) {
                Some(Ok(stored)) => {
                    let entry = groups.entry(group.clone()).or_insert_with(|| Group::new(&group));
                    // Only the stored view is replaced; live waiters (if any) belong to the
                    // same generation and stay.
                    if entry.state == GroupState::Dead {
                        entry.state = GroupState::Empty;
                    }
                    entry.protocol_type = stored.protocol_type;
                    entry.protocol_name = stored.protocol_name;
                    entry.generation_id = stored.generation_id;
                    entry.leader_id = stored.leader_id;
                    entry.empty_since_ms = stored.empty_since_ms;
                    let now = Instant::now();
                    let mut members = BTreeMap::new();
                    for m in stored.members {
                        let existing = entry.members.remove(&m.member_id);
                        let member = Member {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id,
                            client_host: m.client_host,
                            session_timeout_ms: m.session_timeout_ms,
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            protocols: vec![(entry.protocol_name.clone().unwrap_or_default(), m.subscription)],
                            assignment: m.assignment,
                            join_waiter: None,
                            sync_waiter: None,
                            last_heartbeat: existing.map_or(now, |e| e.last_heartbeat),
                        };
                        members.insert(m.member_id, member);
                    }
                    entry.static_members =
                        members.values().filter_map(|m| m.group_instance_id.clone().map(|i| (i, m.member_id.clone()))).collect();
                    entry.members = members;
                    entry.state = if entry.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
                }
                Some(Err(_)) => tracing::warn!(group, "skipping an unreadable group record"),
                None => {
                    groups.remove(&group);
                }
            },
        }
    }

    /// Applies a transaction marker: the producer's pending offsets, in every group, become
    /// committed or are dropped (one marker in the offsets log covers all of the producer's
    /// groups, as in Kafka's `__consumer_offsets` partition).
    fn replay_marker(groups: &mut HashMap<String, Group>, producer_id: i64, commit: bool) {
        for group in groups.values_mut() {
            if let Some(pending) = group.pending_txn_offsets.remove(&producer_id) {
                if commit {
                    group.offsets.extend(pending);
                }
            }
        }
    }

    fn write(&self, groups: &mut HashMap<String, Group>, records: Vec<KeyValue>) -> Durable {
        let end = self.log.append(&records)?;
        for record in &records {
            Self::replay(groups, record, None);
        }
        Ok(end)
    }

    /// Writes a transaction's offsets as one transactional batch of the producer.
    fn write_transactional(&self, groups: &mut HashMap<String, Group>, records: Vec<KeyValue>, producer_id: i64, epoch: i16) -> Durable {
        let end = self.log.append_transactional(&records, producer_id, epoch)?;
        for record in &records {
            Self::replay(groups, record, Some(producer_id));
        }
        Ok(end)
    }

    fn group_record(group: &Group) -> KeyValue {
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let stored = StoredGroup {
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            generation_id: group.generation_id,
            leader_id: group.leader_id.clone(),
            members: group
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            empty_since_ms: group.empty_since_ms,
        };
        KeyValue { key: encode(&RecordKey::Group { group: group.group_id.clone() }), value: Some(encode(&stored)) }
    }

    /// Makes a write durable (the caller answers after this).
    pub async fn wait_durable(&self, durable: Durable) -> Result<(), AppendError> {
        let end = durable?;
        self.log.flush_to(end).await
    }

    /// JoinGroup. Returns at once for errors and MEMBER_ID_REQUIRED; otherwise a receiver that
    /// completes when the rebalance does.
    pub fn join(&self, request: JoinRequest) -> Result<oneshot::Receiver<JoinResult>, Box<JoinResult>> {
        let member_id = request.member_id.clone();
        if request.group_id.is_empty() {
            return Err(Box::new(JoinResult::error(INVALID_GROUP_ID, &member_id)));
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Err(Box::new(JoinResult::error(INVALID_SESSION_TIMEOUT, &member_id)));
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(Box::new(JoinResult::error(INCONSISTENT_GROUP_PROTOCOL, &member_id)));
        }
        let mut groups = self.lock();
        if !groups.contains_key(&request.group_id) {
            if !member_id.is_empty() {
                return Err(Box::new(JoinResult::error(UNKNOWN_MEMBER_ID, &member_id)));
            }
            if groups.len() >= self.config.max_groups {
                return Err(Box::new(JoinResult::error(COORDINATOR_NOT_AVAILABLE, &member_id)));
            }
            groups.insert(request.group_id.clone(), Group::new(&request.group_id));
        }
        let group = groups.get_mut(&request.group_id).expect("present");
        if group.state == GroupState::Dead {
            return Err(Box::new(JoinResult::error(COORDINATOR_NOT_AVAILABLE, &member_id)));
        }
        if !group.supports(&request.protocol_type, &request.protocols) {
            return Err(Box::new(JoinResult::error(INCONSISTENT_GROUP_PROTOCOL, &member_id)));
        }
        let now = Instant::now();
        let (tx, rx) = oneshot::channel();

        if member_id.is_empty() {
            let new_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
            if let Some(instance) = &request.group_instance_id {
                // A static member coming back takes over its instance id's slot, keeping its
                // assignment; the old member id is fenced from now on (Kafka's
                // `updateStaticMemberAndRebalance`).
                let old_id = group.static_members.get(instance).cloned().filter(|id| group.members.contains_key(id));
                group.static_members.insert(instance.clone(), new_id.clone());
                if let Some(old_id) = old_id {
                    return Ok(self.replace_static_member(group, &request, &old_id, new_id, tx, rx, now));
                }
            } else if request.require_known_member_id {
                if group.members.len() + group.pending_members.len() >= self.config.max_size {
                    return Err(Box::new(JoinResult::error(GROUP_MAX_SIZE_REACHED, "")));
                }
                let expiry = now + Duration::from_millis(request.session_timeout_ms as u64);
                group.pending_members.insert(new_id.clone(), expiry);
                return Err(Box::new(JoinResult::error(MEMBER_ID_REQUIRED, &new_id)));
            }
            if group.members.len() >= self.config.max_size {
                return Err(Box::new(JoinResult::error(GROUP_MAX_SIZE_REACHED, "")));
            }
            Self::add_member(group, &request, new_id, tx, now);
            self.maybe_prepare_rebalance(group, now);
            self.try_complete_join(group, now);
            return Ok(rx);
        }

        if group.pending_members.remove(&member_id).is_some() {
            if group.members.len() >= self.config.max_size {
                return Err(Box::new(JoinResult::error(GROUP_MAX_SIZE_REACHED, &member_id)));
            }
            Self::add_member(group, &request, member_id, tx, now);
            self.maybe_prepare_rebalance(group, now);
            self.try_complete_join(group, now);
            return Ok(rx);
        }
        if let Some(error) = Self::check_member(group, &member_id, request.group_instance_id.as_deref()) {
            return Err(Box::new(JoinResult::error(error, &member_id)));
        }
        let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
        let member = group.members.get_mut(&member_id).expect("checked");
        let protocols_changed = member.protocols != request.protocols;
        member.last_heartbeat = now;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.protocols = request.protocols.clone();
        match group.state {
            GroupState::PreparingRebalance => {
                member.join_waiter = Some(tx);
                self.try_complete_join(group, now);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if !(protocols_changed || group.state == GroupState::Stable && is_leader) =>
            {
                // Nothing changed: answer with the current generation.
                let _ = tx.send(Self::join_result(group, &member_id));
            }
            _ => {
                member.join_waiter = Some(tx);
                self.prepare_rebalance(group, now);
                self.try_complete_join(group, now);
            }
        }
        Ok(rx)
    }

    /// A known static member joins with a new member id: it takes the old member's place and
    /// assignment. In a Stable group whose protocol would not change, nothing is rebalanced: the
    /// member gets the current generation and, as leader id, the leader from before the
    /// replacement (so that a returning leader does not assign again), and SyncGroup gives it
    /// its assignment. Otherwise a rebalance runs, as in Kafka.
    #[allow(clippy::too_many_arguments)]
    fn replace_static_member(
        &self,
        group: &mut Group,
        request: &JoinRequest,
        old_id: &str,
        new_id: String,
        tx: oneshot::Sender<JoinResult>,
        rx: oneshot::Receiver<JoinResult>,
        now: Instant,
    ) -> oneshot::Receiver<JoinResult> {
        let current_leader = group.leader_id.clone();
        let mut member = group.members.remove(old_id).expect("checked by the caller");
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult::error(FENCED_INSTANCE_ID, old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult { error: FENCED_INSTANCE_ID, ..Default::default() });
        }
        if group.leader_id.as_deref() == Some(old_id) {
            group.leader_id = Some(new_id.clone());
        }
        member.member_id = new_id.clone();
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.protocols = request.protocols.clone();
        member.last_heartbeat = now;
        group.members.insert(new_id.clone(), member);
        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol_name => {
                // The new member id is written in the background; were it lost in a crash, the
                // member would get UNKNOWN_MEMBER_ID and join again.
                let record = Self::group_record(group);
                if let Err(e) = self.log.append(&[record]) {
                    tracing::error!(group = %group.group_id, error = %e, "cannot write the group after a static member rejoined");
                }
                let _ = tx.send(JoinResult {
                    error: NONE,
                    generation_id: group.generation_id,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    leader: current_leader.unwrap_or_default(),
                    member_id: new_id,
                    members: Vec::new(),
                });
            }
            _ => {
                group.members.get_mut(&new_id).expect("inserted").join_waiter = Some(tx);
                self.maybe_prepare_rebalance(group, now);
                self.try_complete_join(group, now);
            }
        }
        rx
    }

    fn add_member(group: &mut Group, request: &JoinRequest, member_id: String, waiter: oneshot::Sender<JoinResult>, now: Instant) {
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols.clone(),
            assignment: Vec::new(),
            join_waiter: Some(waiter),
            sync_waiter: None,
            last_heartbeat: now,
        };
        if group.members.is_empty() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        group.members.insert(member_id, member);
    }

    /// UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID when the member may not act.
    fn check_member(group: &Group, member_id: &str, instance: Option<&str>) -> Option<i16> {
        if let Some(instance) = instance {
            match group.static_members.get(instance) {
                Some(current) if current != member_id => return Some(FENCED_INSTANCE_ID),
                None if !group.members.contains_key(member_id) => return Some(UNKNOWN_MEMBER_ID),
                _ => {}
            }
        }
        if !group.members.contains_key(member_id) {
            return Some(UNKNOWN_MEMBER_ID);
        }
        None
    }

    fn join_result(group: &Group, member_id: &str) -> JoinResult {
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let is_leader = group.leader_id.as_deref() == Some(member_id);
        JoinResult {
            error: NONE,
            generation_id: group.generation_id,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                group.members.values().map(|m| (m.member_id.clone(), m.group_instance_id.clone(), m.metadata(&protocol))).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn maybe_prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if matches!(group.state, GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance) {
            self.prepare_rebalance(group, now);
        }
    }

    fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::PreparingRebalance {
            return;
        }
        // Members waiting for SyncGroup of the old generation must rejoin.
        for member in group.members.values_mut() {
            if let Some(w) = member.sync_waiter.take() {
                let _ = w.send(SyncResult { error: REBALANCE_IN_PROGRESS, ..Default::default() });
            }
        }
        let was_empty = group.state == GroupState::Empty;
        group.transition(GroupState::PreparingRebalance);
        let timeout = group.max_rebalance_timeout();
        group.rebalance_deadline = Some(now + timeout);
        group.initial_delay_until =
            was_empty.then(|| now + timeout.min(Duration::from_millis(self.config.initial_rebalance_delay_ms.max(0) as u64)));
    }

    /// Completes the join phase when every member has rejoined (after the initial delay of a
    /// new group) or the rebalance timeout passed: members that did not rejoin are removed.
    fn try_complete_join(&self, group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = group.rebalance_deadline.is_some_and(|d| now >= d);
        let delay_over = group.initial_delay_until.is_none_or(|d| now >= d);
        if !(deadline_passed || (delay_over && group.all_joined())) {
            return;
        }
        group.members.retain(|_, m| m.join_waiter.is_some());
        group.pending_members.clear();
        group.static_members.retain(|_, id| group.members.contains_key(id));
        group.rebalance_deadline = None;
        group.initial_delay_until = None;
        group.generation_id += 1;
        if group.members.is_empty() {
            group.transition(GroupState::Empty);
            group.protocol_name = None;
            group.leader_id = None;
            group.empty_since_ms = crate::now_ms();
            // Made durable in the background: nobody waits for this generation.
            let record = Self::group_record(group);
            if let Err(e) = self.log.append(&[record]) {
                tracing::error!(group = %group.group_id, error = %e, "cannot write the empty group");
            }
            return;
        }
        group.protocol_name = group.select_protocol();
        if group.leader_id.as_ref().is_none_or(|l| !group.members.contains_key(l)) {
            group.leader_id = group.members.keys().next().cloned();
        }
        group.transition(GroupState::CompletingRebalance);
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            let result = Self::join_result(group, &id);
            let member = group.members.get_mut(&id).expect("member");
            member.last_heartbeat = now;
            if let Some(w) = member.join_waiter.take() {
                let _ = w.send(result);
            }
        }
        tracing::info!(group = %group.group_id, generation = group.generation_id, members = group.members.len(), protocol = ?group.protocol_name, "rebalance: join phase complete");
    }

    /// SyncGroup. The leader's call stores the assignments (durably) and answers everyone.
    pub fn sync(&self, request: SyncRequest<'_>) -> (oneshot::Receiver<SyncResult>, Option<Durable>) {
        let SyncRequest { group_id, generation_id, member_id, instance, protocol_type, protocol_name, assignments } = request;
        let (tx, rx) = oneshot::channel();
        let fail = |error: i16| {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send(SyncResult { error, ..Default::default() });
            (rx, None)
        };
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else { return fail(UNKNOWN_MEMBER_ID) };
        if group.state == GroupState::Dead {
            return fail(COORDINATOR_NOT_AVAILABLE);
        }
        if let Some(error) = Self::check_member(group, member_id, instance) {
            return fail(error);
        }
        if generation_id != group.generation_id {
            return fail(ILLEGAL_GENERATION);
        }
        if protocol_type.is_some_and(|t| Some(t) != group.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != group.protocol_name.as_deref())
        {
            return fail(INCONSISTENT_GROUP_PROTOCOL);
        }
        let result_for = |group: &Group, id: &str| SyncResult {
            error: NONE,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            assignment: group.members.get(id).map(|m| m.assignment.clone()).unwrap_or_default(),
        };
        match group.state {
            GroupState::PreparingRebalance => fail(REBALANCE_IN_PROGRESS),
            GroupState::Stable => {
                let _ = tx.send(result_for(group, member_id));
                (rx, None)
            }
            GroupState::CompletingRebalance => {
                let member = group.members.get_mut(member_id).expect("checked");
                member.sync_waiter = Some(tx);
                member.last_heartbeat = Instant::now();
                if group.leader_id.as_deref() != Some(member_id) {
                    return (rx, None);
                }
                let assigned: HashMap<String, Vec<u8>> = assignments.into_iter().collect();
                for (id, m) in &mut group.members {
                    m.assignment = assigned.get(id).cloned().unwrap_or_default();
                }
                group.transition(GroupState::Stable);
                let record = Self::group_record(group);
                let durable = self.log.append(&[record]);
                // Answer the waiters now; the handler of this request waits for durability,
                // the followers' answers carry what the leader's write will make durable.
                let ids: Vec<String> = group.members.keys().cloned().collect();
                for id in ids {
                    let result = result_for(group, &id);
                    if let Some(w) = group.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                        let _ = w.send(result);
                    }
                }
                tracing::info!(group = %group_id, generation = group.generation_id, "rebalance: assignments synced");
                (rx, Some(durable))
            }
            GroupState::Empty | GroupState::Dead => fail(UNKNOWN_MEMBER_ID),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(&self, group_id: &str, generation_id: i32, member_id: &str, instance: Option<&str>) -> i16 {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else { return UNKNOWN_MEMBER_ID };
        if group.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Some(error) = Self::check_member(group, member_id, instance) {
            return error;
        }
        if generation_id != group.generation_id {
            return ILLEGAL_GENERATION;
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.last_heartbeat = Instant::now();
        }
        match group.state {
            GroupState::PreparingRebalance => REBALANCE_IN_PROGRESS,
            GroupState::Empty => UNKNOWN_MEMBER_ID,
            _ => NONE,
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id with an unknown member id).
    pub fn leave(&self, group_id: &str, member_id: &str, instance: Option<&str>) -> i16 {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else { return UNKNOWN_MEMBER_ID };
        let id = match (instance, member_id.is_empty()) {
            (Some(instance), true) => match group.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return UNKNOWN_MEMBER_ID,
            },
            _ => member_id.to_string(),
        };
        if group.pending_members.remove(&id).is_some() {
            return NONE;
        }
        if let Some(error) = Self::check_member(group, &id, instance) {
            return error;
        }
        self.remove_member(group, &id, Instant::now(), "left the group");
        NONE
    }

    fn remove_member(&self, group: &mut Group, member_id: &str, now: Instant, why: &str) {
        let Some(mut member) = group.members.remove(member_id) else { return };
        tracing::info!(group = %group.group_id, member = member_id, why, "member removed");
        if let Some(instance) = &member.group_instance_id {
            if group.static_members.get(instance).map(String::as_str) == Some(member_id) {
                group.static_members.remove(instance);
            }
        }
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult::error(UNKNOWN_MEMBER_ID, member_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult { error: UNKNOWN_MEMBER_ID, ..Default::default() });
        }
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(group, now),
            _ => {}
        }
        self.try_complete_join(group, now);
    }

    /// Expires members whose session timed out, completes rebalances whose timeout passed,
    /// and expires offsets of groups empty for longer than the retention. Called periodically.
    pub fn tick(&self) {
        let now = Instant::now();
        let now_ms = crate::now_ms();
        let mut groups = self.lock();
        let mut expired_offsets = Vec::new();
        for group in groups.values_mut() {
            group.pending_members.retain(|_, expiry| *expiry > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    m.join_waiter.is_none()
                        && m.sync_waiter.is_none()
                        && now.duration_since(m.last_heartbeat) > Duration::from_millis(m.session_timeout_ms.max(0) as u64)
                })
                .map(|m| m.member_id.clone())
                .collect();
            for id in expired {
                self.remove_member(group, &id, now, "session timeout");
            }
            self.try_complete_join(group, now);
            if group.state == GroupState::Empty {
                for ((topic, partition), offset) in &group.offsets {
                    if now_ms - offset.commit_timestamp_ms.max(group.empty_since_ms) > self.config.offsets_retention_ms {
                        expired_offsets.push(KeyValue {
                            key: encode(&RecordKey::Offset { group: group.group_id.clone(), topic: topic.clone(), partition: *partition }),
                            value: None,
                        });
                    }
                }
            }
        }
        if !expired_offsets.is_empty() {
            let count = expired_offsets.len();
            if let Err(e) = self.write(&mut groups, expired_offsets) {
                tracing::error!(error = %e, "cannot expire offsets");
            } else {
                tracing::info!(count, "expired committed offsets of empty groups");
            }
        }
    }

    /// Validates an offset commit (Kafka's `ClassicGroup.validateOffsetCommit`).
    fn validate_commit(group: Option<&Group>, generation_id: i32, member_id: &str, instance: Option<&str>, transactional: bool) -> i16 {
        let Some(group) = group else {
            // No such group: generation -1 stores offsets for a "simple" consumer (assign()).
            return if generation_id >= 0 { ILLEGAL_GENERATION } else { NONE };
        };
        if group.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if generation_id < 0 && group.state == GroupState::Empty {
            return NONE;
        }
        // KIP-447: transactional commits without member and generation (TxnOffsetCommit v0-2,
        // used by aiokafka and kafkajs) are accepted whatever the group's state.
        if transactional && generation_id < 0 && member_id.is_empty() {
            return NONE;
        }
        if generation_id >= 0 || !member_id.is_empty() || instance.is_some() {
            if let Some(error) = Self::check_member(group, member_id, instance) {
                return error;
            }
            if generation_id != group.generation_id {
                return ILLEGAL_GENERATION;
            }
        } else if group.state != GroupState::Empty {
            return UNKNOWN_MEMBER_ID;
        }
        if !transactional && group.state == GroupState::CompletingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        NONE
    }

    /// OffsetCommit (`producer` None) and TxnOffsetCommit (the producer id): validates, writes
    /// the offsets (pending until the transaction's marker for TxnOffsetCommit), returns
    /// per-partition errors (by request order) and the write to wait for.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_offsets(
        &self,
        producer: Option<(i64, i16)>,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        offsets: Vec<(String, i32, CommittedOffset)>,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> (Vec<i16>, Option<Durable>) {
        if group_id.is_empty() {
            return (vec![INVALID_GROUP_ID; offsets.len()], None);
        }
        let mut groups = self.lock();
        let error = Self::validate_commit(groups.get(group_id), generation_id, member_id, instance, producer.is_some());
        if error != NONE {
            return (vec![error; offsets.len()], None);
        }
        if !groups.contains_key(group_id) && groups.len() >= self.config.max_groups {
            return (vec![COORDINATOR_NOT_AVAILABLE; offsets.len()], None);
        }
        if let Some(m) = groups.get_mut(group_id).and_then(|g| g.members.get_mut(member_id)) {
            m.last_heartbeat = Instant::now();
        }
        let mut errors = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        for (topic, partition, offset) in offsets {
            if offset.metadata.len() > self.config.offset_metadata_max_bytes {
                errors.push(OFFSET_METADATA_TOO_LARGE);
            } else if !partition_exists(&topic, partition) {
                errors.push(UNKNOWN_TOPIC_OR_PARTITION);
            } else {
                errors.push(NONE);
                let key = RecordKey::Offset { group: group_id.to_string(), topic, partition };
                records.push(KeyValue { key: encode(&key), value: Some(encode(&offset)) });
            }
        }
        if records.is_empty() {
            return (errors, None);
        }
        let durable = match producer {
            Some((producer_id, epoch)) => self.write_transactional(&mut groups, records, producer_id, epoch),
            None => self.write(&mut groups, records),
        };
        (errors, Some(durable))
    }

    /// Writes a transaction's outcome to the offsets log as a COMMIT or ABORT control batch:
    /// the producer's pending offsets become committed, or are dropped. Returns the write to
    /// wait for.
    pub fn complete_txn(&self, producer_id: i64, producer_epoch: i16, commit: bool) -> Durable {
        let mut groups = self.lock();
        let end = self.log.append_marker(producer_id, producer_epoch, commit)?;
        Self::replay_marker(&mut groups, producer_id, commit);
        Ok(end)
    }

    /// Whether a transaction's offsets for the partition await their marker (OffsetFetch
    /// require_stable answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        self.lock().get(group_id).is_some_and(|g| g.pending_txn_offsets.values().any(|p| p.contains_key(&key)))
    }

    /// Committed offsets of a group: all, or those of the given topics and partitions.
    pub fn fetch_offsets(&self, group_id: &str) -> HashMap<(String, i32), CommittedOffset> {
        self.lock().get(group_id).map(|g| g.offsets.clone()).unwrap_or_default()
    }

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.lock();
        let mut list: Vec<_> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| (g.group_id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state.name()))
            .collect();
        list.sort();
        list
    }

    /// DescribeGroups of one group: (state, protocol type, protocol, members) or None.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.lock();
        let group = groups.get(group_id)?;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let stable = group.state == GroupState::Stable;
        Some(GroupDescription {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if stable { protocol.clone() } else { String::new() },
            members: group
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable { m.metadata(&protocol) } else { Vec::new() },
                    assignment: if stable { m.assignment.clone() } else { Vec::new() },
                })
                .collect(),
        })
    }

    /// DeleteGroups: only empty groups; their offsets go too.
    pub fn delete_group(&self, group_id: &str) -> (i16, Option<Durable>) {
        let mut groups = self.lock();
        let Some(group) = groups.get(group_id) else { return (GROUP_ID_NOT_FOUND, None) };
        if group.state == GroupState::Dead {
            return (GROUP_ID_NOT_FOUND, None);
        }
        if group.state != GroupState::Empty {
            return (NON_EMPTY_GROUP, None);
        }
        let mut records: Vec<KeyValue> = group
            .offsets
            .keys()
            .map(|(topic, partition)| KeyValue {
                key: encode(&RecordKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition }),
                value: None,
            })
            .collect();
        records.push(KeyValue { key: encode(&RecordKey::Group { group: group_id.to_string() }), value: None });
        let durable = self.write(&mut groups, records);
        (NONE, Some(durable))
    }

    /// OffsetDelete: refused for topics the group is subscribed to while it has members.
    /// Returns (group error, per-partition errors, write).
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: impl Fn(&[u8], &str) -> bool,
    ) -> (i16, Vec<i16>, Option<Durable>) {
        let mut groups = self.lock();
        let Some(group) = groups.get(group_id) else { return (GROUP_ID_NOT_FOUND, Vec::new(), None) };
        if group.state == GroupState::Dead {
            return (GROUP_ID_NOT_FOUND, Vec::new(), None);
        }
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let consumer = group.protocol_type.as_deref() == Some("consumer");
        let subscribed_topics: HashSet<&str> = partitions
            .iter()
            .map(|(t, _)| t.as_str())
            .filter(|t| {
                group.state != GroupState::Empty && (!consumer || group.members.values().any(|m| subscribed(&m.metadata(&protocol), t)))
            })
            .collect();
        let mut errors = Vec::with_capacity(partitions.len());
        let mut records = Vec::new();
        for (topic, partition) in partitions {
            if subscribed_topics.contains(topic.as_str()) {
                errors.push(GROUP_SUBSCRIBED_TO_TOPIC);
            } else {
                errors.push(NONE);
                if group.offsets.contains_key(&(topic.clone(), *partition)) {
                    records.push(KeyValue {
                        key: encode(&RecordKey::Offset { group: group_id.to_string(), topic: topic.clone(), partition: *partition }),
                        value: None,
                    });
                }
            }
        }
        let durable = (!records.is_empty()).then(|| self.write(&mut groups, records));
        (NONE, errors, durable)
    }

    /// Flushes the offsets log (clean shutdown).
    pub async fn close(&self) {
        self.log.close().await;
    }

    /// Storage error code for a failed write.
    pub fn storage_error() -> i16 {
        KAFKA_STORAGE_ERROR
    }
}

/// DescribeGroups' view of a group.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(o: i64) -> CommittedOffset {
        CommittedOffset { offset: o, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: crate::now_ms() }
    }

    #[test]
    fn transactional_offsets_wait_for_their_marker() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = GroupCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), GroupConfig::default()).expect("open");
        let (errors, _) = c.commit_offsets(Some((7, 0)), "g", -1, "", None, vec![("t".into(), 0, offset(5))], |_, _| true);
        assert_eq!(errors, [NONE]);
        assert!(c.fetch_offsets("g").is_empty(), "pending until the marker");
        assert!(c.has_pending("g", "t", 0));
        c.complete_txn(7, 0, false).expect("written");
        assert!(c.fetch_offsets("g").is_empty(), "an abort drops them");
        assert!(!c.has_pending("g", "t", 0), "and leaves nothing pending");
        c.commit_offsets(Some((7, 0)), "g", -1, "", None, vec![("t".into(), 0, offset(9))], |_, _| true);
        c.complete_txn(7, 0, true).expect("written");
        assert_eq!(c.fetch_offsets("g").get(&("t".to_string(), 0)).map(|o| o.offset), Some(9));
        // The outcomes are control batches in Kafka's format in the offsets log.
        let segment = std::fs::read(dir.path().join("internal/__consumer_offsets-0/00000000000000000000.log")).expect("segment");
        let mut markers = Vec::new();
        let mut at = 0;
        while at + crate::storage::batch::HEADER_SIZE <= segment.len() {
            let header = crate::storage::batch::BatchHeader::parse(&segment[at..]).expect("header");
            if header.is_control() {
                markers.push((
                    header.producer_id,
                    crate::storage::batch::parse_marker(&segment[at..at + header.total_size()]).map(|m| m.commit),
                ));
            }
            at += header.total_size();
        }
        assert_eq!(markers, [(7, Some(false)), (7, Some(true))]);
        drop(c);
        let reopened = GroupCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), GroupConfig::default()).expect("reopen");
        assert_eq!(reopened.fetch_offsets("g").get(&("t".to_string(), 0)).map(|o| o.offset), Some(9), "replayed");
    }

    #[test]
    fn a_compacted_offsets_log_replays_to_the_same_groups() {
        use crate::storage::cleaner::{self, CleanerLimits};
        let dir = tempfile::tempdir().expect("tmp");
        let config = GroupConfig { offsets_segment_bytes: 4096, ..GroupConfig::default() };
        let c = GroupCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("open");
        // Plain commits, transactions that commit and abort (two producers, interleaved), a
        // deleted group, and one transaction left open.
        for i in 0..400i64 {
            c.commit_offsets(None, "plain", -1, "", None, vec![("t".into(), (i % 3) as i32, offset(i))], |_, _| true);
            let producer = 10 + i % 2;
            c.commit_offsets(Some((producer, 0)), "eos", -1, "", None, vec![("t".into(), 0, offset(1_000 + i))], |_, _| true);
            c.complete_txn(producer, 0, i % 5 != 0).expect("marker");
            if i % 50 == 0 {
                c.commit_offsets(None, "gone", -1, "", None, vec![("t".into(), 0, offset(i))], |_, _| true);
                assert_eq!(c.delete_group("gone").0, NONE);
            }
        }
        c.commit_offsets(Some((12, 0)), "eos", -1, "", None, vec![("t".into(), 1, offset(77))], |_, _| true);
        let snapshot = |c: &GroupCoordinator| -> Vec<_> {
            ["plain", "eos", "gone"]
                .iter()
                .map(|g| {
                    let offsets: BTreeMap<(String, i32), i64> = c.fetch_offsets(g).into_iter().map(|(k, v)| (k, v.offset)).collect();
                    (offsets, c.has_pending(g, "t", 1))
                })
                .collect()
        };
        let before = snapshot(&c);
        let size_before = c.internal_log().partition().0.lock_log().size_bytes();
        let limits = CleanerLimits { dedupe_buffer_bytes: 1 << 20, io_max_bytes_per_second: 0 };
        let stop = std::sync::atomic::AtomicBool::new(false);
        let clean = |c: &GroupCoordinator, now: i64| {
            let (partition, settings) = c.internal_log().partition();
            partition.lock_log().roll().expect("roll");
            // Every pass runs, however little is dirty.
            let compaction = cleaner::CompactSettings { min_cleanable_dirty_ratio: 0.0, ..settings.compaction.expect("compacted") };
            cleaner::clean(partition, &compaction, settings.log.segment_bytes, 4096, &limits, &stop, now).expect("clean").expect("due");
        };
        // The first pass drops superseded offsets and aborted data; it stops at the open
        // transaction, whose offset stays pending across a restart.
        clean(&c, crate::now_ms());
        drop(c);
        let c = GroupCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("reopen");
        assert_eq!(snapshot(&c), before, "the groups replayed from the compacted log");
        assert_eq!(before[1].0.get(&("t".to_string(), 0)), Some(&1_399), "the last committed transaction's offset");
        assert!(before[1].1, "the open transaction's offset is pending");
        // Once it commits, two more passes a while apart: the second stamps the markers left
        // without data, the third (past delete.retention.ms) drops them and the tombstones.
        c.complete_txn(12, 0, true).expect("marker");
        let before = snapshot(&c);
        let day = 86_400_000;
        for now in [crate::now_ms() + 2 * day, crate::now_ms() + 4 * day] {
            c.commit_offsets(None, "plain", -1, "", None, vec![("t".into(), 0, offset(399))], |_, _| true);
            clean(&c, now);
        }
        let size_after = c.internal_log().partition().0.lock_log().size_bytes();
        assert!(size_after * 20 < size_before, "compacted from {size_before} to {size_after} bytes");
        drop(c);
        let reopened = GroupCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("reopen");
        assert_eq!(snapshot(&reopened), before, "the groups replayed from the compacted log");
        assert_eq!(before[1].0.get(&("t".to_string(), 1)), Some(&77));
    }
}
