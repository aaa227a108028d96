//! The item store contract, part one: single-item reads and writes, every condition, TTL,
//! validation, atomic groups, batches and racing writers. Each function takes a fresh store.

use std::sync::Arc;

use mailroom_core::ports::{
    Condition, IndexKey, Item, ItemKey, ItemStore, QueryRange, StoreError, WriteOp,
};
use mailroom_core::time::now_unix;
use serde_json::json;

use super::fixtures::{expired, item};

/// Asserts a conflict on exactly `pk`/`sk`.
#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, pk: &str, sk: &str) {
    match result {
        Err(StoreError::ConditionFailed { pk: p, sk: s }) => {
            assert_eq!(
                (p.as_str(), s.as_str()),
                (pk, sk),
                "conflict names the item"
            );
        }
        other => panic!("expected ConditionFailed on {pk}/{sk}, got {other:?}"),
    }
}

pub async fn get_put_delete(store: Arc<dyn ItemStore>) {
    let key = ItemKey::new("GPD", "one");
    assert_eq!(store.get(&key).await.unwrap(), None);
    let mut full = item("GPD", "one");
    full.version = 7;
    full.expires_at = Some(now_unix() + 3600);
    full.index = Some(IndexKey {
        pk: "GPD-INDEX".into(),
        sk: "0001#one".into(),
    });
    full.attributes.insert(
        "nested".into(),
        json!({"list": [1, "two", null, true], "big": u64::MAX, "neg": -5, "float": 2.5}),
    );
    full.sealed.insert("secret".into(), vec![0, 1, 2, 254, 255]);
    store.put(full.clone(), Condition::None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(full.clone()));
    // The possibly-stale reads see the same item once it has settled (at once here).
    assert_eq!(store.get_stale(&key).await.unwrap(), Some(full.clone()));
    let page = store
        .query_stale("GPD", QueryRange::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![full.clone()]);

    // An unconditional put replaces the whole item, dropping attributes it no longer has.
    let replacement = item("GPD", "one");
    store
        .put(replacement.clone(), Condition::None)
        .await
        .unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(replacement));

    store.delete(&key, Condition::None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    // Deleting what is not there is fine without a condition.
    store.delete(&key, Condition::None).await.unwrap();
}

pub async fn take_once(store: Arc<dyn ItemStore>) {
    let live = item("TAKE", "live");
    store.put(live.clone(), Condition::None).await.unwrap();
    assert_eq!(store.take(&live.key).await.unwrap(), Some(live.clone()));
    assert_eq!(store.take(&live.key).await.unwrap(), None);
    assert_eq!(store.get(&live.key).await.unwrap(), None);

    // An expired item reads as absent and is deleted: at an earlier `now` it would still be
    // live, so a lease-style put succeeds only because the item is really gone.
    let dead = expired("TAKE", "dead");
    store.put(dead.clone(), Condition::None).await.unwrap();
    assert_eq!(store.take(&dead.key).await.unwrap(), None);
    store
        .put(item("TAKE", "dead"), Condition::AbsentOrExpired { now: 0 })
        .await
        .unwrap();

    // Of two concurrent takers exactly one gets the item.
    let contested = item("TAKE", "contested");
    store.put(contested.clone(), Condition::None).await.unwrap();
    let (a, b) = tokio::join!(store.take(&contested.key), store.take(&contested.key));
    let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(winners, 1);
}

pub async fn conditions(store: Arc<dyn ItemStore>) {
    let pk = "COND";
    // NotExists: absent ok, live refused (nothing changed), expired ok.
    store
        .put(item(pk, "n"), Condition::NotExists)
        .await
        .unwrap();
    let mut changed = item(pk, "n");
    changed.attributes.insert("name".into(), json!("changed"));
    assert_conflict(store.put(changed, Condition::NotExists).await, pk, "n");
    assert_eq!(
        store.get(&ItemKey::new(pk, "n")).await.unwrap(),
        Some(item(pk, "n"))
    );
    store.put(expired(pk, "x"), Condition::None).await.unwrap();
    store
        .put(item(pk, "x"), Condition::NotExists)
        .await
        .unwrap();
    assert_eq!(
        store.get(&ItemKey::new(pk, "x")).await.unwrap(),
        Some(item(pk, "x"))
    );

    // VersionIs: matching ok, other version / absent / expired refused.
    let mut v1 = item(pk, "v");
    v1.version = 1;
    store.put(v1.clone(), Condition::None).await.unwrap();
    let mut v2 = v1.clone();
    v2.version = 2;
    store
        .put(v2.clone(), Condition::VersionIs(1))
        .await
        .unwrap();
    assert_conflict(
        store.put(v1.clone(), Condition::VersionIs(1)).await,
        pk,
        "v",
    );
    assert_eq!(store.get(&v1.key).await.unwrap().unwrap().version, 2);
    assert_conflict(
        store.put(item(pk, "none"), Condition::VersionIs(1)).await,
        pk,
        "none",
    );
    assert_eq!(store.get(&ItemKey::new(pk, "none")).await.unwrap(), None);
    let mut old = expired(pk, "old");
    old.version = 3;
    store.put(old.clone(), Condition::None).await.unwrap();
    assert_conflict(
        store.put(item(pk, "old"), Condition::VersionIs(3)).await,
        pk,
        "old",
    );

    // Deletes honour conditions too.
    assert_conflict(
        store.delete(&v2.key, Condition::VersionIs(1)).await,
        pk,
        "v",
    );
    assert!(store.get(&v2.key).await.unwrap().is_some());
    store
        .delete(&v2.key, Condition::VersionIs(2))
        .await
        .unwrap();
    assert_eq!(store.get(&v2.key).await.unwrap(), None);

    // AbsentOrExpired (leases) uses the caller's clock.
    let now = now_unix();
    let mut lease = item(pk, "lease");
    lease.expires_at = Some(now + 30);
    store
        .put(lease.clone(), Condition::AbsentOrExpired { now })
        .await
        .unwrap();
    assert_conflict(
        store
            .put(lease.clone(), Condition::AbsentOrExpired { now })
            .await,
        pk,
        "lease",
    );
    let mut next = lease.clone();
    next.version = 9;
    store
        .put(next, Condition::AbsentOrExpired { now: now + 30 })
        .await
        .unwrap();
    assert_eq!(store.get(&lease.key).await.unwrap().unwrap().version, 9);
}

pub async fn expired_items_read_as_absent(store: Arc<dyn ItemStore>) {
    let mut dead = expired("TTL", "a-dead");
    dead.index = Some(IndexKey {
        pk: "TTL-INDEX".into(),
        sk: "1".into(),
    });
    let mut alive = item("TTL", "b-alive");
    alive.expires_at = Some(now_unix() + 3600);
    alive.index = Some(IndexKey {
        pk: "TTL-INDEX".into(),
        sk: "2".into(),
    });
    store
        .put_many(vec![dead.clone(), alive.clone()])
        .await
        .unwrap();
    assert_eq!(store.get(&dead.key).await.unwrap(), None);
    assert_eq!(store.get(&alive.key).await.unwrap(), Some(alive.clone()));
    let page = store.query("TTL", Default::default()).await.unwrap();
    assert_eq!(page.items, vec![alive.clone()]);
    let due = store.query_index("TTL-INDEX", "9", None, 10).await.unwrap();
    let keys: Vec<ItemKey> = due.into_iter().map(|i| i.key).collect();
    assert_eq!(keys, vec![alive.key]);
}

pub async fn refuses_invalid_items(store: Arc<dyn ItemStore>) {
    for name in ["pk", "version", "ttl", "gsi1sk", "enc_token"] {
        let mut bad = item("BAD", name);
        bad.attributes.insert(name.into(), json!("x"));
        let result = store.put(bad.clone(), Condition::None).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{name}: {result:?}"
        );
        let result = store.put_many(vec![item("BAD", "ok"), bad]).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{name}: {result:?}"
        );
    }
    let result = store.put(item("BAD", ""), Condition::None).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))));
    // Nothing of a refused batch was written.
    assert!(
        store
            .query("BAD", Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn write_atomic_all_or_nothing(store: Arc<dyn ItemStore>) {
    let pk = "ATOMIC";
    store.put(item(pk, "gone"), Condition::None).await.unwrap();
    store.put(item(pk, "taken"), Condition::None).await.unwrap();
    let put = |sk: &str, condition| WriteOp::Put {
        item: item(pk, sk),
        condition,
    };
    // The last write's condition fails: neither the new item nor the delete happens.
    let result = store
        .write_atomic(vec![
            put("new", Condition::NotExists),
            WriteOp::Delete {
                key: ItemKey::new(pk, "gone"),
                condition: Condition::None,
            },
            put("taken", Condition::NotExists),
        ])
        .await;
    assert_conflict(result, pk, "taken");
    assert_eq!(store.get(&ItemKey::new(pk, "new")).await.unwrap(), None);
    assert!(
        store
            .get(&ItemKey::new(pk, "gone"))
            .await
            .unwrap()
            .is_some()
    );

    store
        .write_atomic(vec![
            put("new", Condition::NotExists),
            WriteOp::Delete {
                key: ItemKey::new(pk, "gone"),
                condition: Condition::VersionIs(1),
            },
        ])
        .await
        .unwrap();
    assert!(store.get(&ItemKey::new(pk, "new")).await.unwrap().is_some());
    assert_eq!(store.get(&ItemKey::new(pk, "gone")).await.unwrap(), None);

    let twice = store
        .write_atomic(vec![put("x", Condition::None), put("x", Condition::None)])
        .await;
    assert!(matches!(twice, Err(StoreError::Invalid(_))), "{twice:?}");
    let too_many = (0..26)
        .map(|i| put(&format!("many{i:02}"), Condition::None))
        .collect();
    let result = store.write_atomic(too_many).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_eq!(store.get(&ItemKey::new(pk, "many00")).await.unwrap(), None);
    store.write_atomic(Vec::new()).await.unwrap();
}

/// Two writers race to update version 1: exactly one wins, the other gets `ConditionFailed`.
pub async fn racing_writers(store: Arc<dyn ItemStore>) {
    for round in 0..5 {
        let sk = format!("race{round}");
        let mut base = item("RACE", &sk);
        base.version = 1;
        store.put(base.clone(), Condition::None).await.unwrap();
        let writer = |who: &str| {
            let store = store.clone();
            let mut next: Item = base.clone();
            next.version = 2;
            next.attributes.insert("writer".into(), json!(who));
            tokio::spawn(async move { store.put(next, Condition::VersionIs(1)).await })
        };
        let (a, b) = tokio::join!(writer("a"), writer("b"));
        let results = [a.unwrap(), b.unwrap()];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let winner = if results[0].is_ok() { "a" } else { "b" };
        let loser = results.into_iter().find(Result::is_err).unwrap();
        assert_conflict(loser, "RACE", &sk);
        let stored = store.get(&base.key).await.unwrap().unwrap();
        assert_eq!(stored.version, 2);
        assert_eq!(
            stored.attributes["writer"],
            json!(winner),
            "the winner's write is kept"
        );
    }
}
