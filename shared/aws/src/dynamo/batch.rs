//! `put_many` and `delete_many`: BatchWriteItem in chunks of 25, re-sending unprocessed writes
//! with exponential back-off a bounded number of times.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use mailroom_core::ports::{Item, ItemKey, StoreError};

use super::{convert, store_err};

/// BatchWriteItem's limit.
const CHUNK: usize = 25;
/// Sends of one chunk before giving up on what DynamoDB keeps leaving unprocessed.
const MAX_ATTEMPTS: u32 = 8;

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6)))
}

/// Keeps the last occurrence of every key (a batch may not name a key twice), in order.
fn last_per_key<T>(values: Vec<T>, key: impl Fn(&T) -> &ItemKey) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut out: Vec<T> = Vec::with_capacity(values.len());
    for value in values.into_iter().rev() {
        if seen.insert(key(&value).clone()) {
            out.push(value);
        }
    }
    out.reverse();
    out
}

async fn write_chunks(
    client: &Client,
    table: &str,
    requests: Vec<WriteRequest>,
) -> Result<(), StoreError> {
    for chunk in requests.chunks(CHUNK) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        loop {
            let out = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| store_err("BatchWriteItem", &e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut left| left.remove(table))
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            if attempt >= MAX_ATTEMPTS {
                tracing::warn!(
                    unprocessed = pending.len(),
                    "DynamoDB kept batch writes unprocessed"
                );
                return Err(StoreError::Throttled);
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }
    Ok(())
}

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("cannot build the batch: {e}"))
}

pub(crate) async fn put_many(
    client: &Client,
    table: &str,
    items: Vec<Item>,
) -> Result<(), StoreError> {
    let requests = last_per_key(items, |i| &i.key)
        .iter()
        .map(|item| {
            let put = PutRequest::builder()
                .set_item(Some(convert::to_attributes(item)))
                .build()
                .map_err(build_error)?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    write_chunks(client, table, requests).await
}

pub(crate) async fn delete_many(
    client: &Client,
    table: &str,
    keys: Vec<ItemKey>,
) -> Result<(), StoreError> {
    let requests = last_per_key(keys, |k| k)
        .iter()
        .map(|key| {
            let delete = DeleteRequest::builder()
                .set_key(Some(convert::key_attributes(key)))
                .build()
                .map_err(build_error)?;
            Ok(WriteRequest::builder().delete_request(delete).build())
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    write_chunks(client, table, requests).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_write_of_each_key_in_order() {
        let k = |s: &str| ItemKey::new("P", s);
        let got = last_per_key(vec![(k("a"), 1), (k("b"), 2), (k("a"), 3)], |(key, _)| key);
        assert_eq!(got, vec![(k("b"), 2), (k("a"), 3)]);
    }

    #[test]
    fn backs_off_exponentially_with_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(20), Duration::from_millis(3200));
    }
}
