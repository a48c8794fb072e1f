//! Keyed state of each assigned input partition, and the changes since the last commit (what
//! the next commit writes to the changelog). Bounded by the processor's `commit_records`: a
//! commit clears the changes.

use std::collections::{BTreeMap, HashMap};

/// The state of every assigned partition.
#[derive(Debug, Default)]
pub(crate) struct Stores {
    partitions: HashMap<i32, Partition>,
}

/// Changes of one partition's state: `None` is a deletion.
pub(crate) type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[derive(Debug, Default)]
struct Partition {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Changed since the last commit: `None` is a deletion (a tombstone in the changelog).
    changed: Changes,
}

impl Stores {
    pub(crate) fn has(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// Replaces a partition's state with `values` (restored from the changelog).
    pub(crate) fn install(&mut self, partition: i32, values: BTreeMap<Vec<u8>, Vec<u8>>) {
        self.partitions.insert(partition, Partition { values, changed: BTreeMap::new() });
    }

    pub(crate) fn remove(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    pub(crate) fn clear(&mut self) {
        self.partitions.clear();
    }

    /// The handle the transform gets for `key` of `partition` (a stateless handle if the
    /// partition has no store).
    pub(crate) fn key_state<'a>(&'a mut self, partition: i32, key: &'a [u8], enabled: bool) -> KeyState<'a> {
        let partition = if enabled { self.partitions.get_mut(&partition) } else { None };
        KeyState { partition, key }
    }

    /// The changes to write, per partition, and forgets them (the caller writes them into the
    /// transaction that is about to commit; a rollback reloads everything anyway).
    pub(crate) fn take_changes(&mut self) -> Vec<(i32, Changes)> {
        self.partitions
            .iter_mut()
            .filter(|(_, p)| !p.changed.is_empty())
            .map(|(index, p)| (*index, std::mem::take(&mut p.changed)))
            .collect()
    }
}

/// The state of one key, for the transform.
#[derive(Debug)]
pub struct KeyState<'a> {
    partition: Option<&'a mut Partition>,
    key: &'a [u8],
}

/// A stateless processor's transform wrote state.
#[derive(Debug, thiserror::Error)]
#[error("this processor has no state store (set ProcessorConfig::store)")]
pub struct NoStore;

impl KeyState<'_> {
    pub fn key(&self) -> &[u8] {
        self.key
    }

    pub fn get(&self) -> Option<&[u8]> {
        self.partition.as_ref().and_then(|p| p.values.get(self.key)).map(Vec::as_slice)
    }

    pub fn put(&mut self, value: Vec<u8>) -> Result<(), NoStore> {
        let partition = self.partition.as_mut().ok_or(NoStore)?;
        partition.changed.insert(self.key.to_vec(), Some(value.clone()));
        partition.values.insert(self.key.to_vec(), value);
        Ok(())
    }

    pub fn delete(&mut self) -> Result<(), NoStore> {
        let partition = self.partition.as_mut().ok_or(NoStore)?;
        partition.changed.insert(self.key.to_vec(), None);
        partition.values.remove(self.key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_collected_once_and_deletions_kept() {
        let mut stores = Stores::default();
        stores.install(0, BTreeMap::from([(b"a".to_vec(), b"1".to_vec())]));
        {
            let mut a = stores.key_state(0, b"a", true);
            assert_eq!(a.get(), Some(&b"1"[..]));
            a.put(b"2".to_vec()).expect("put");
            a.delete().expect("delete");
        }
        stores.key_state(0, b"b", true).put(b"x".to_vec()).expect("put");
        let changes = stores.take_changes();
        assert_eq!(changes, vec![(0, BTreeMap::from([(b"a".to_vec(), None), (b"b".to_vec(), Some(b"x".to_vec()))]))]);
        assert!(stores.take_changes().is_empty());
        assert!(stores.key_state(1, b"a", true).put(b"1".to_vec()).is_err(), "no store for an unassigned partition");
        assert!(stores.key_state(0, b"a", false).put(b"1".to_vec()).is_err(), "a stateless processor");
    }
}
