//! Storage that lives as long as the client: `persistence: 'memory'`, and a stand-in where a
//! test wants the storage contract without IndexedDB. Nothing survives a reload.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{
    plan_adoption, Adoption, CacheContents, CacheOp, LocalFuture, LostHandler, Storage, StorageError, StoredTx,
    WriteBatch,
};

#[derive(Default)]
pub struct MemoryStorage {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    outbox: BTreeMap<String, StoredTx>,
    /// Owner group → holder (see `plan_adoption`).
    holders: BTreeMap<String, String>,
    synced: BTreeMap<(String, String), String>,
    positions: BTreeMap<String, String>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored transaction records (for tests and debugging).
    pub fn outbox(&self) -> Vec<StoredTx> {
        self.state.borrow().outbox.values().cloned().collect()
    }
}

impl Storage for MemoryStorage {
    fn load_cache(&self) -> LocalFuture<Result<CacheContents, StorageError>> {
        let state = self.state.borrow();
        let contents = CacheContents {
            records: state.synced.iter().map(|((c, _), json)| (c.clone(), json.clone())).collect(),
            positions: state.positions.iter().map(|(c, p)| (c.clone(), p.clone())).collect(),
        };
        Box::pin(async move { Ok(contents) })
    }

    fn adopt(&self, me: &str, live: &[String], reclaim_own: bool) -> LocalFuture<Result<Adoption, StorageError>> {
        let mut state = self.state.borrow_mut();
        let entries: Vec<(String, String)> = state.holders.iter().map(|(g, h)| (g.clone(), h.clone())).collect();
        let plan = plan_adoption(me, live, &entries, reclaim_own);
        let mut adoption = Adoption { live_owners: plan.live_holders, ..Default::default() };
        for group in plan.adopt {
            let records: Vec<StoredTx> = state.outbox.values().filter(|tx| tx.owner == group).cloned().collect();
            if records.is_empty() {
                state.holders.remove(&group);
            } else {
                state.holders.insert(group, me.to_string());
                adoption.adopted.extend(records);
            }
        }
        Box::pin(async move { Ok(adoption) })
    }

    fn write(&self, batch: WriteBatch) -> LocalFuture<Result<(), StorageError>> {
        let mut state = self.state.borrow_mut();
        for tx in batch.put {
            state.holders.insert(tx.owner.clone(), tx.owner.clone());
            state.outbox.insert(tx.id.clone(), tx);
        }
        for id in batch.erase {
            state.outbox.remove(&id);
        }
        for op in batch.cache.iter().cloned() {
            match op {
                CacheOp::Clear { collection } => state.synced.retain(|(c, _), _| **c != *collection),
                CacheOp::Put { collection, key_field, records } => {
                    for record in records {
                        let Ok(key) = record.key(&key_field) else { continue };
                        let json = tandem_core::protocol::json_text(&*record);
                        state.synced.insert((collection.to_string(), key.to_string()), json);
                    }
                }
                CacheOp::Delete { collection, key } => {
                    state.synced.remove(&(collection.to_string(), key.to_string()));
                }
                CacheOp::Position { collection, position: Some(p) } => {
                    state.positions.insert(collection.to_string(), p);
                }
                CacheOp::Position { collection, position: None } => {
                    state.positions.remove(&*collection);
                }
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn on_lost(&self, _handler: LostHandler) {}

    fn close(&self) {}
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn block_on<T>(future: LocalFuture<T>) -> T {
        // Memory futures are ready at once.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = future;
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("memory storage futures are ready at once"),
        }
    }

    fn tx(id: &str, owner: &str) -> StoredTx {
        StoredTx { id: id.into(), owner: owner.into(), json: "{}".into() }
    }

    #[test]
    fn adopts_only_records_of_owners_that_are_not_live() {
        let storage = MemoryStorage::new();
        let batch = WriteBatch { put: vec![tx("1", "dead"), tx("2", "alive"), tx("3", "me")], ..Default::default() };
        block_on(storage.write(batch)).unwrap();
        let adoption = block_on(storage.adopt("me", &["alive".into(), "me".into()], false)).unwrap();
        assert_eq!(adoption.adopted, vec![tx("1", "dead")], "records keep their group");
        assert_eq!(adoption.live_owners, vec!["alive".to_string()]);
        let again = block_on(storage.adopt("other", &["me".into(), "alive".into()], false)).unwrap();
        assert!(again.adopted.is_empty(), "an adopted group is held by a live instance now");
        let after_me = block_on(storage.adopt("other", &["alive".into()], false)).unwrap();
        let mut ids: Vec<String> = after_me.adopted.into_iter().map(|t| t.id).collect();
        ids.sort();
        assert_eq!(ids, vec!["1".to_string(), "3".to_string()], "when `me` is gone, what it held moves on");
    }

    #[test]
    fn a_snapshot_clears_the_collection_cache_first() {
        let storage = MemoryStorage::new();
        let put = |c: &str, k: &str| {
            let record = tandem_core::Fields::parse(&format!(r#"{{"id":"{k}"}}"#)).unwrap().unwrap();
            CacheOp::Put { collection: c.into(), key_field: "id".into(), records: vec![record.into()] }
        };
        let first = WriteBatch { cache: Rc::new(vec![put("a", "1"), put("a", "2"), put("b", "1")]), ..Default::default() };
        block_on(storage.write(first)).unwrap();
        let snapshot =
            WriteBatch { cache: Rc::new(vec![CacheOp::Clear { collection: "a".into() }, put("a", "3")]), ..Default::default() };
        block_on(storage.write(snapshot)).unwrap();
        let cache = block_on(storage.load_cache()).unwrap();
        let records = vec![("a".into(), r#"{"id":"3"}"#.into()), ("b".into(), r#"{"id":"1"}"#.into())];
        assert_eq!(cache.records, records);
    }
}
