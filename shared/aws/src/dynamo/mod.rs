//! [`DynamoStore`]: the item store on one DynamoDB table (`pk`/`sk` key, `version`, `ttl`, and the
//! `gsi1` index on `gsi1pk`/`gsi1sk`), with the same semantics as the embedded store.

mod batch;
mod convert;
mod expr;
mod read;
mod transact;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::ReturnValue;
use mailroom_core::ports::{
    Condition, Item, ItemKey, ItemStore, Page, QueryRange, StoreError, WriteOp,
};
use mailroom_core::time::now_unix;

use crate::error::{code, describe, is_throttling};
use expr::with_condition;

pub(crate) use convert::{GSI1PK, GSI1SK, PK, SK, TTL};
// Only provisioning names the version (the due index projects it).
#[cfg(feature = "provision")]
pub(crate) use convert::VERSION;

/// The name of the secondary index.
pub const GSI1: &str = "gsi1";

/// The item store on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// Maps an SDK error of operation `op` to the store's error.
pub(crate) fn store_err<E, R>(op: &str, e: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if is_throttling(e) {
        return StoreError::Throttled;
    }
    match code(e) {
        Some("ValidationException") => StoreError::Invalid(format!("{op}: {}", describe(e))),
        _ => StoreError::Unavailable(format!("DynamoDB {op} failed: {}", describe(e))),
    }
}

fn condition_failed(key: &ItemKey) -> StoreError {
    StoreError::ConditionFailed {
        pk: key.pk.clone(),
        sk: key.sk.clone(),
    }
}

/// Whether a single-item write failed on its condition.
fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    code(e) == Some("ConditionalCheckFailedException")
}

/// The item unless it has expired: DynamoDB deletes expired items only eventually.
fn live(item: Item) -> Option<Item> {
    (!item.is_expired(now_unix())).then_some(item)
}

impl DynamoStore {
    /// A store on `table`, using a client built once at start-up.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

impl DynamoStore {
    async fn get_item(&self, key: &ItemKey, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(convert::key_attributes(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| store_err("GetItem", &e))?;
        match out.item {
            Some(attrs) => Ok(live(convert::from_attributes(&attrs)?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl ItemStore for DynamoStore {
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.get_item(key, true).await
    }

    async fn get_stale(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.get_item(key, false).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item.validate()?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(convert::to_attributes(&item)));
        let request = with_condition!(request, expr::condition(condition, now_unix()));
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(condition_failed(&item.key)),
            Err(e) => Err(store_err("PutItem", &e)),
        }
    }

    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(convert::key_attributes(key)));
        let request = with_condition!(request, expr::condition(condition, now_unix()));
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(condition_failed(key)),
            Err(e) => Err(store_err("DeleteItem", &e)),
        }
    }

    async fn take(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(convert::key_attributes(key)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_err("DeleteItem", &e))?;
        match out.attributes {
            Some(attrs) if !attrs.is_empty() => Ok(live(convert::from_attributes(&attrs)?)),
            _ => Ok(None),
        }
    }

    async fn query(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        range.validate()?;
        read::query(&self.client, &self.table, pk, &range, true).await
    }

    async fn query_stale(&self, pk: &str, range: QueryRange) -> Result<Page, StoreError> {
        range.validate()?;
        read::query(&self.client, &self.table, pk, &range, false).await
    }

    async fn query_index(
        &self,
        index_pk: &str,
        sk_max: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let bounds = read::IndexBounds {
            index_pk,
            sk_max,
            start_after,
        };
        read::query_index(&self.client, &self.table, &bounds, limit).await
    }

    async fn write_atomic(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        WriteOp::validate_group(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        transact::write(&self.client, &self.table, ops).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for item in &items {
            item.validate()?;
        }
        batch::put_many(&self.client, &self.table, items).await
    }

    async fn delete_many(&self, keys: Vec<ItemKey>) -> Result<(), StoreError> {
        batch::delete_many(&self.client, &self.table, keys).await
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    use super::*;

    fn service_error(code: &str) -> SdkError<GetItemError, ()> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("details")
            .build();
        SdkError::service_error(GetItemError::generic(meta), ())
    }

    #[test]
    fn maps_service_errors_to_store_errors() {
        for throttled in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "RequestLimitExceeded",
        ] {
            assert!(matches!(
                store_err("GetItem", &service_error(throttled)),
                StoreError::Throttled
            ));
        }
        assert!(matches!(
            store_err("GetItem", &service_error("ValidationException")),
            StoreError::Invalid(m) if m.contains("details")
        ));
        assert!(matches!(
            store_err("GetItem", &service_error("ResourceNotFoundException")),
            StoreError::Unavailable(m) if m.contains("ResourceNotFoundException")
        ));
        assert!(is_condition_failure(&service_error(
            "ConditionalCheckFailedException"
        )));
        let transport: SdkError<GetItemError, ()> = SdkError::timeout_error("slow");
        assert!(matches!(
            store_err("GetItem", &transport),
            StoreError::Unavailable(_)
        ));
    }
}
