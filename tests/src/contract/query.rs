//! The item store contract, part two: partition queries (prefix, pages, descending), the
//! secondary index, and batch writes larger than one DynamoDB batch.

use std::sync::Arc;

use mailroom_core::ports::{Condition, IndexKey, Item, ItemKey, ItemStore, QueryRange, StoreError};
use serde_json::json;

use super::fixtures::{expired, item};

fn sort_keys(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key.sk.as_str()).collect()
}

/// Reads every page; returns the sort keys of each page.
async fn all_pages(
    store: &dyn ItemStore,
    pk: &str,
    prefix: &str,
    descending: bool,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut start_after = None;
    loop {
        let range = QueryRange {
            sk_prefix: prefix.into(),
            start_after,
            descending,
            limit: 3,
        };
        let page = store.query(pk, range).await.unwrap();
        pages.push(page.items.iter().map(|i| i.key.sk.clone()).collect());
        match page.next {
            Some(next) => start_after = Some(next),
            None => return pages,
        }
    }
}

pub async fn query_pages(store: Arc<dyn ItemStore>) {
    let mut items: Vec<Item> = ["A#1", "A#2", "A#3", "A#4", "A#5", "A#7", "A$", "B#1", "A"]
        .into_iter()
        .map(|sk| item("Q", sk))
        .collect();
    // Dead items in the middle of the range must not shorten pages.
    items.push(expired("Q", "A#6"));
    items.push(expired("Q", "A#0"));
    // Neighbouring partitions must never leak in.
    items.push(item("Q#", "A#9"));
    items.push(item("Q2", "A#9"));
    items.push(item("P", "A#9"));
    store.put_many(items).await.unwrap();

    let pages = all_pages(store.as_ref(), "Q", "A#", false).await;
    assert_eq!(
        pages,
        vec![vec!["A#1", "A#2", "A#3"], vec!["A#4", "A#5", "A#7"]],
        "ascending pages; `next` is None once no live item follows"
    );
    let pages = all_pages(store.as_ref(), "Q", "A#", true).await;
    assert_eq!(
        pages,
        vec![vec!["A#7", "A#5", "A#4"], vec!["A#3", "A#2", "A#1"]]
    );

    let everything = store
        .query(
            "Q",
            QueryRange {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        sort_keys(&everything.items),
        vec!["A", "A#1", "A#2", "A#3", "A#4", "A#5", "A#7", "A$", "B#1"]
    );
    assert_eq!(everything.next, None);
    // Limit 0 means the store's cap.
    let capped = store.query("Q", QueryRange::default()).await.unwrap();
    assert_eq!(capped.items.len(), 9);

    let partial = store
        .query(
            "Q",
            QueryRange {
                sk_prefix: "A#".into(),
                start_after: Some("A#2".into()),
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(sort_keys(&partial.items), vec!["A#3", "A#4"]);
    assert_eq!(partial.next.as_deref(), Some("A#4"));

    let outside = store
        .query(
            "Q",
            QueryRange {
                sk_prefix: "A#".into(),
                start_after: Some("B#1".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(outside, Err(StoreError::Invalid(_))),
        "{outside:?}"
    );
    // A cursor equal to the prefix: everything after it ascending, nothing before it descending.
    let from_prefix = |descending| QueryRange {
        sk_prefix: "A#".into(),
        start_after: Some("A#".into()),
        descending,
        limit: 100,
    };
    let after = store.query("Q", from_prefix(false)).await.unwrap();
    assert_eq!(
        sort_keys(&after.items),
        vec!["A#1", "A#2", "A#3", "A#4", "A#5", "A#7"]
    );
    let before = store.query("Q", from_prefix(true)).await.unwrap();
    assert!(before.items.is_empty() && before.next.is_none());

    let empty = store.query("NOTHING", QueryRange::default()).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
}

fn indexed(pk: &str, index_pk: &str, index_sk: &str) -> Item {
    let mut i = item(pk, "META");
    i.index = Some(IndexKey {
        pk: index_pk.into(),
        sk: index_sk.into(),
    });
    i
}

pub async fn index_bounds(store: Arc<dyn ItemStore>) {
    let due = "IDX";
    store
        .put_many(vec![
            indexed("acct-c", due, "000000000300#c"),
            indexed("acct-a", due, "000000000100#a"),
            indexed("acct-b", due, "000000000200#b"),
            indexed("acct-d", due, "000000000400#d"),
            indexed("acct-x", "OTHER", "000000000100#x"),
            item("acct-none", "META"),
        ])
        .await
        .unwrap();
    let names = |items: Vec<Item>| -> Vec<String> { items.into_iter().map(|i| i.key.pk).collect() };

    // Inclusive upper bound, ascending, limited, one index partition only.
    let got = store
        .query_index(due, "000000000300#~", None, 10)
        .await
        .unwrap();
    assert_eq!(names(got), vec!["acct-a", "acct-b", "acct-c"]);
    let got = store
        .query_index(due, "000000000200#b", None, 10)
        .await
        .unwrap();
    assert_eq!(names(got), vec!["acct-a", "acct-b"]);
    let got = store
        .query_index(due, "000000000999#~", None, 2)
        .await
        .unwrap();
    assert_eq!(names(got), vec!["acct-a", "acct-b"]);
    assert!(
        store
            .query_index(due, "000000000099", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Re-putting an item moves its index entry; dropping the index key removes it.
    store
        .put(indexed("acct-a", due, "000000000500#a"), Condition::None)
        .await
        .unwrap();
    store
        .put(item("acct-b", "META"), Condition::None)
        .await
        .unwrap();
    store
        .delete(&ItemKey::new("acct-c", "META"), Condition::None)
        .await
        .unwrap();
    let got = store
        .query_index(due, "000000000999#~", None, 10)
        .await
        .unwrap();
    assert_eq!(names(got.clone()), vec!["acct-d", "acct-a"]);
    // The index projects keys only: key, index key and the item's version, no attributes.
    assert_eq!(got[1].key, ItemKey::new("acct-a", "META"));
    assert_eq!(
        got[1].index.as_ref().map(|i| i.sk.as_str()),
        Some("000000000500#a")
    );
    assert!(
        got[1].attributes.is_empty() && got[1].sealed.is_empty(),
        "index reads return keys only"
    );
    // The version is projected (the scheduler hands it to the workers' account cache).
    let stored = store.get(&got[1].key).await.unwrap().map(|i| i.version);
    assert_eq!(Some(got[1].version), stored);
    assert_ne!(got[1].version, 0);

    // Paging: after an index sort key (exclusive), still bounded above.
    let got = store
        .query_index(due, "000000000999#~", Some("000000000400#d"), 10)
        .await
        .unwrap();
    assert_eq!(names(got), vec!["acct-a"]);
    let got = store
        .query_index(due, "000000000450#~", Some("000000000100#a"), 10)
        .await
        .unwrap();
    assert_eq!(names(got), vec!["acct-d"]);
    let got = store
        .query_index(due, "000000000999#~", Some("000000000500#a"), 10)
        .await
        .unwrap();
    assert!(got.is_empty());
    let got = store
        .query_index(due, "000000000300#~", Some("000000000999#~"), 10)
        .await
        .unwrap();
    assert!(
        got.is_empty(),
        "a start above the upper bound reads nothing"
    );
}

pub async fn put_many_and_delete_many(store: Arc<dyn ItemStore>) {
    let mut items: Vec<Item> = (0..60).map(|i| item("MANY", &format!("{i:03}"))).collect();
    // A repeated key: the last one wins.
    let mut again = item("MANY", "007");
    again.attributes.insert("name".into(), json!("second"));
    items.push(again);
    store.put_many(items).await.unwrap();
    let page = store
        .query(
            "MANY",
            QueryRange {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 60);
    assert_eq!(page.items[7].attributes["name"], json!("second"));

    let mut keys: Vec<ItemKey> = (0..55)
        .map(|i| ItemKey::new("MANY", format!("{i:03}")))
        .collect();
    keys.push(ItemKey::new("MANY", "000"));
    keys.push(ItemKey::new("MANY", "absent"));
    store.delete_many(keys).await.unwrap();
    let page = store.query("MANY", QueryRange::default()).await.unwrap();
    assert_eq!(
        sort_keys(&page.items),
        vec!["055", "056", "057", "058", "059"]
    );
    store.put_many(Vec::new()).await.unwrap();
    store.delete_many(Vec::new()).await.unwrap();
}

/// `put_many_then`: the items and then the last item are all stored (a repeated key's last
/// item wins, the last item replaces what was there); when an item is refused, the last item
/// is not written (a cursor never gets ahead of the metadata it covers).
pub async fn put_many_then_writes_the_last_item_after(store: Arc<dyn ItemStore>) {
    let mut cursor = item("THEN", "cursor");
    cursor.attributes.insert("name".into(), json!("old"));
    store.put(cursor, Condition::None).await.unwrap();
    let mut items: Vec<Item> = (0..30).map(|i| item("THEN", &format!("{i:03}"))).collect();
    let mut again = item("THEN", "004");
    again.attributes.insert("name".into(), json!("second"));
    items.push(again);
    let mut cursor = item("THEN", "cursor");
    cursor.attributes.insert("name".into(), json!("new"));
    store.put_many_then(items, cursor).await.unwrap();
    let page = store
        .query(
            "THEN",
            QueryRange {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 31);
    assert_eq!(page.items[4].attributes["name"], json!("second"));
    assert_eq!(page.items[30].key.sk, "cursor");
    assert_eq!(page.items[30].attributes["name"], json!("new"));

    // A reserved attribute name: the item is refused.
    let mut bad = item("THEN", "bad");
    bad.attributes.insert("pk".into(), json!("x"));
    let mut cursor = item("THEN", "cursor");
    cursor.attributes.insert("name".into(), json!("newer"));
    let result = store.put_many_then(vec![bad], cursor).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    let stored = store
        .get(&ItemKey::new("THEN", "cursor"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.attributes["name"], json!("new"));
}
