//! The two redb tables and the synchronous operations on them: items keyed by `(pk, sk)` (tuple
//! keys order by pk, then sk, so a partition is one contiguous range) and the secondary index
//! keyed by `(index pk, index sk, pk, sk)`, kept in step inside the same write transaction.

use std::collections::HashMap;
use std::ops::Bound;

use mailroom_core::ports::{Condition, Item, ItemKey, Page, QueryRange, StoreError};
use redb::{ReadableTable, Table, TableDefinition};

use super::codec::{decode, encode};

pub(crate) const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");
pub(crate) const INDEX: TableDefinition<(&str, &str, &str, &str), ()> =
    TableDefinition::new("index_gsi1");

/// Maps any redb failure to an unavailable store (the message names redb's reason, never data).
pub(crate) fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("embedded database: {}", e.into()))
}

/// The smallest string greater than every string that starts with `prefix`, if there is one
/// (UTF-8 byte order is code-point order, so incrementing the last char is exact).
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The exclusive upper bound of the keys of partition `pk` whose sort key starts with `prefix`.
fn partition_end(pk: &str, prefix: &str) -> (String, String) {
    match prefix_successor(prefix) {
        Some(sk) => (pk.to_owned(), sk),
        // `pk` followed by NUL is the smallest partition key after `pk`.
        None => (format!("{pk}\0"), String::new()),
    }
}

/// Whether `condition` holds for what is stored (`existing`) at store time `now`.
pub(crate) fn holds(condition: Condition, existing: Option<&Item>, now: i64) -> bool {
    let live = existing.filter(|i| !i.is_expired(now));
    match condition {
        Condition::None => true,
        Condition::NotExists => live.is_none(),
        Condition::VersionIs(v) => live.is_some_and(|i| i.version == v),
        Condition::AbsentOrExpired { now } => existing.is_none_or(|i| i.is_expired(now)),
    }
}

/// Reads one item, expired or not.
pub(crate) fn load(
    items: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    key: &ItemKey,
) -> Result<Option<Item>, StoreError> {
    match items
        .get((key.pk.as_str(), key.sk.as_str()))
        .map_err(db_err)?
    {
        Some(guard) => Ok(Some(decode(&key.pk, &key.sk, guard.value())?)),
        None => Ok(None),
    }
}

/// The tables of one write transaction.
pub(crate) struct Writer<'t> {
    pub(crate) items: Table<'t, (&'static str, &'static str), &'static [u8]>,
    pub(crate) index: Table<'t, (&'static str, &'static str, &'static str, &'static str), ()>,
}

impl Writer<'_> {
    fn unindex(&mut self, old: &Item) -> Result<(), StoreError> {
        if let Some(ix) = &old.index {
            self.index
                .remove((
                    ix.pk.as_str(),
                    ix.sk.as_str(),
                    old.key.pk.as_str(),
                    old.key.sk.as_str(),
                ))
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Fails with `ConditionFailed` unless `condition` holds for the stored item.
    pub(crate) fn check(
        &self,
        key: &ItemKey,
        condition: Condition,
        now: i64,
    ) -> Result<Option<Item>, StoreError> {
        let existing = load(&self.items, key)?;
        if holds(condition, existing.as_ref(), now) {
            Ok(existing)
        } else {
            Err(StoreError::ConditionFailed {
                pk: key.pk.clone(),
                sk: key.sk.clone(),
            })
        }
    }

    /// Writes `item` over `existing` (as read in this transaction), moving its index entry.
    pub(crate) fn put(&mut self, item: &Item, existing: Option<&Item>) -> Result<(), StoreError> {
        if let Some(old) = existing {
            self.unindex(old)?;
        }
        let bytes = encode(item)?;
        let (pk, sk) = (item.key.pk.as_str(), item.key.sk.as_str());
        self.items
            .insert((pk, sk), bytes.as_slice())
            .map_err(db_err)?;
        if let Some(ix) = &item.index {
            self.index
                .insert((ix.pk.as_str(), ix.sk.as_str(), pk, sk), ())
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Writes every item, unconditionally; the last item of a repeated key wins, as in a
    /// sequence of puts. Keys are borrowed, not cloned (a first sync writes thousands).
    pub(crate) fn put_many(&mut self, items: &[Item]) -> Result<(), StoreError> {
        let mut last: HashMap<&ItemKey, usize> = HashMap::with_capacity(items.len());
        for (at, item) in items.iter().enumerate() {
            last.insert(&item.key, at);
        }
        for (at, item) in items.iter().enumerate() {
            if last.get(&item.key) == Some(&at) {
                let existing = load(&self.items, &item.key)?;
                self.put(item, existing.as_ref())?;
            }
        }
        Ok(())
    }

    /// Deletes the item under `key`, returning what it held.
    pub(crate) fn delete(&mut self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let old = load(&self.items, key)?;
        if let Some(old) = &old {
            self.unindex(old)?;
            self.items
                .remove((key.pk.as_str(), key.sk.as_str()))
                .map_err(db_err)?;
        }
        Ok(old)
    }

    /// Deletes every item expired at `now` (the sweeper); returns how many went.
    pub(crate) fn purge_expired(&mut self, now: i64) -> Result<usize, StoreError> {
        let mut dead = Vec::new();
        for entry in self.items.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let (pk, sk) = k.value();
            if decode(pk, sk, v.value())?.is_expired(now) {
                dead.push(ItemKey::new(pk, sk));
            }
        }
        for key in &dead {
            self.delete(key)?;
        }
        Ok(dead.len())
    }
}

/// Reads one page of a partition (see [`mailroom_core::ports::ItemStore::query`]); reads one
/// live item past the page to know whether a next page exists.
pub(crate) fn query(
    items: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    pk: &str,
    range: &QueryRange,
    now: i64,
) -> Result<Page, StoreError> {
    let size = range.page_size();
    let prefix = range.sk_prefix.as_str();
    let end = partition_end(pk, prefix);
    let end = (end.0.as_str(), end.1.as_str());
    let after = range.start_after.as_deref();
    let (lower, upper) = match (range.descending, after) {
        (false, Some(a)) => (Bound::Excluded((pk, a)), Bound::Excluded(end)),
        (true, Some(a)) => (Bound::Included((pk, prefix)), Bound::Excluded((pk, a))),
        (_, None) => (Bound::Included((pk, prefix)), Bound::Excluded(end)),
    };
    let iter = items
        .range::<(&str, &str)>((lower, upper))
        .map_err(db_err)?;
    let iter: Box<dyn Iterator<Item = _>> = if range.descending {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    let mut found = Vec::new();
    for entry in iter {
        let (k, v) = entry.map_err(db_err)?;
        let (item_pk, sk) = k.value();
        // The bounds already keep to the partition and prefix; this guards the invariant.
        if item_pk != pk || !sk.starts_with(prefix) {
            continue;
        }
        let item = decode(item_pk, sk, v.value())?;
        if item.is_expired(now) {
            continue;
        }
        if found.len() == size {
            let next = found.last().map(|i: &Item| i.key.sk.clone());
            return Ok(Page { items: found, next });
        }
        found.push(item);
    }
    Ok(Page {
        items: found,
        next: None,
    })
}

/// Which part of an index partition to read.
pub(crate) struct IndexBounds<'a> {
    pub index_pk: &'a str,
    /// Inclusive upper bound of the index sort key.
    pub sk_max: &'a str,
    /// Exclusive lower bound of the index sort key.
    pub start_after: Option<&'a str>,
}

/// Reads an index partition within the bounds, ascending, live items only, as the DynamoDB
/// index projects them: key, index key, expiry and version, no attributes (so code that wrongly
/// relies on index attributes fails here too, not only on AWS).
pub(crate) fn query_index(
    items: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    index: &impl ReadableTable<(&'static str, &'static str, &'static str, &'static str), ()>,
    bounds: &IndexBounds<'_>,
    limit: usize,
    now: i64,
) -> Result<Vec<Item>, StoreError> {
    // `x` followed by NUL is the smallest index sort key above `x`.
    let above = format!("{}\0", bounds.sk_max);
    let after = bounds
        .start_after
        .map(|a| format!("{a}\0"))
        .unwrap_or_default();
    if !after.is_empty() && after >= above {
        return Ok(Vec::new());
    }
    let lower = (bounds.index_pk, after.as_str(), "", "");
    let upper = (bounds.index_pk, above.as_str(), "", "");
    let mut out = Vec::new();
    for entry in index
        .range::<(&str, &str, &str, &str)>(lower..upper)
        .map_err(db_err)?
    {
        if out.len() >= limit {
            break;
        }
        let (k, _) = entry.map_err(db_err)?;
        let (_, _, pk, sk) = k.value();
        if let Some(item) = load(items, &ItemKey::new(pk, sk))?
            && !item.is_expired(now)
        {
            let mut projected = Item::new(item.key);
            projected.version = item.version;
            projected.expires_at = item.expires_at;
            projected.index = item.index;
            out.push(projected);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_the_prefix_exactly() {
        assert_eq!(prefix_successor("ab"), Some("ac".into()));
        assert_eq!(prefix_successor("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_successor("\u{D7FF}"), Some("\u{E000}".into()));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
    }
}
