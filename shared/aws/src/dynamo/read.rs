//! Queries of a partition and of the `gsi1` index, skipping expired items (which DynamoDB keeps
//! until its sweeper runs) and reading on until a page is full.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::ports::{Item, ItemKey, MAX_PAGE, Page, QueryRange, StoreError};
use mailroom_core::time::now_unix;

use super::convert::{self, Attributes, GSI1PK, GSI1SK, PK, SK};
use super::{GSI1, store_err};

/// A request `Limit`: a small positive count (pages are capped at 1,001 items).
fn request_limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One page of partition `pk` (strongly consistent unless `consistent` is false); reads one live
/// item past the page to know whether more follow, so `next` is `None` exactly when the
/// partition has no further live items in range.
pub(crate) async fn query(
    client: &Client,
    table: &str,
    pk: &str,
    range: &QueryRange,
    consistent: bool,
) -> Result<Page, StoreError> {
    let size = range.page_size();
    let mut names = HashMap::from([("#pk".to_owned(), PK.to_owned())]);
    let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(pk.to_owned()))]);
    let mut key_condition = "#pk = :pk".to_owned();
    // begins_with refuses an empty operand, and an empty prefix matches everything anyway.
    if !range.sk_prefix.is_empty() {
        key_condition.push_str(" AND begins_with(#sk, :prefix)");
        names.insert("#sk".into(), SK.into());
        values.insert(":prefix".into(), AttributeValue::S(range.sk_prefix.clone()));
    }
    let mut start: Option<Attributes> = range
        .start_after
        .as_ref()
        .map(|after| convert::key_attributes(&ItemKey::new(pk, after.as_str())));
    let now = now_unix();
    let mut found: Vec<Item> = Vec::new();
    loop {
        let out = client
            .query()
            .table_name(table)
            .consistent_read(consistent)
            .key_condition_expression(&key_condition)
            .set_expression_attribute_names(Some(names.clone()))
            .set_expression_attribute_values(Some(values.clone()))
            .scan_index_forward(!range.descending)
            .limit(request_limit(size + 1 - found.len()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| store_err("Query", &e))?;
        for attrs in out.items() {
            let item = convert::from_attributes(attrs)?;
            if !item.is_expired(now) {
                found.push(item);
            }
        }
        match out.last_evaluated_key {
            Some(key) if found.len() <= size => start = Some(key),
            _ => break,
        }
    }
    let next = if found.len() > size {
        found.truncate(size);
        found.last().map(|i| i.key.sk.clone())
    } else {
        None
    };
    Ok(Page { items: found, next })
}

/// Which part of an index partition to read.
pub(crate) struct IndexBounds<'a> {
    pub index_pk: &'a str,
    /// Inclusive upper bound of the index sort key.
    pub sk_max: &'a str,
    /// Exclusive lower bound of the index sort key.
    pub start_after: Option<&'a str>,
}

/// Live items of an index partition with index sort key in the bounds, ascending, as the index
/// projects them (keys, index key, expiry and version: see [`convert::from_index_attributes`]).
pub(crate) async fn query_index(
    client: &Client,
    table: &str,
    bounds: &IndexBounds<'_>,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let limit = if limit == 0 {
        MAX_PAGE
    } else {
        limit.min(MAX_PAGE)
    };
    let names = HashMap::from([
        ("#ipk".to_owned(), GSI1PK.to_owned()),
        ("#isk".to_owned(), GSI1SK.to_owned()),
    ]);
    let mut values = HashMap::from([
        (
            ":ipk".to_owned(),
            AttributeValue::S(bounds.index_pk.to_owned()),
        ),
        (
            ":max".to_owned(),
            AttributeValue::S(bounds.sk_max.to_owned()),
        ),
    ]);
    // A key condition has one sort-key comparison: BETWEEN is inclusive, so the item at
    // `start_after` itself is read and skipped below.
    let key_condition = match bounds.start_after {
        Some(after) if after >= bounds.sk_max => return Ok(Vec::new()),
        Some(after) => {
            values.insert(":after".to_owned(), AttributeValue::S(after.to_owned()));
            "#ipk = :ipk AND #isk BETWEEN :after AND :max"
        }
        None => "#ipk = :ipk AND #isk <= :max",
    };
    let now = now_unix();
    let mut found = Vec::new();
    let mut start: Option<Attributes> = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .index_name(GSI1)
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(Some(names.clone()))
            .set_expression_attribute_values(Some(values.clone()))
            .limit(request_limit(limit + 1 - found.len()))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| store_err("Query (gsi1)", &e))?;
        for attrs in out.items() {
            let item = convert::from_index_attributes(attrs)?;
            let at_start = bounds
                .start_after
                .is_some_and(|after| item.index.as_ref().is_some_and(|index| index.sk == after));
            if !at_start && !item.is_expired(now) && found.len() < limit {
                found.push(item);
            }
        }
        match out.last_evaluated_key {
            Some(key) if found.len() < limit => start = Some(key),
            _ => return Ok(found),
        }
    }
}
