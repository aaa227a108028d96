//! `write_atomic` as one TransactWriteItems call; a cancelled transaction is read back to the
//! write whose condition failed.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use mailroom_core::ports::{ItemKey, StoreError, WriteOp};
use mailroom_core::time::now_unix;

use super::expr::{self, with_condition};
use super::{condition_failed, convert, store_err};

fn build_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("cannot build the transaction: {e}"))
}

fn transact_item(table: &str, op: WriteOp, now: i64) -> Result<TransactWriteItem, StoreError> {
    Ok(match op {
        WriteOp::Put { item, condition } => {
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(convert::to_attributes(&item)));
            let put = with_condition!(put, expr::condition(condition, now));
            TransactWriteItem::builder()
                .put(put.build().map_err(build_error)?)
                .build()
        }
        WriteOp::Delete { key, condition } => {
            let delete = Delete::builder()
                .table_name(table)
                .set_key(Some(convert::key_attributes(&key)));
            let delete = with_condition!(delete, expr::condition(condition, now));
            TransactWriteItem::builder()
                .delete(delete.build().map_err(build_error)?)
                .build()
        }
    })
}

/// The per-write cancellation codes: the structured reasons when the service sent them, else
/// the bracketed list DynamoDB puts in the message (`... [None, ConditionalCheckFailed]`).
fn reason_codes(e: &aws_sdk_dynamodb::types::error::TransactionCanceledException) -> Vec<String> {
    let structured: Vec<String> = e
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None").to_owned())
        .collect();
    if !structured.is_empty() {
        return structured;
    }
    let message = e.message().unwrap_or_default();
    match (message.rfind('['), message.rfind(']')) {
        (Some(open), Some(close)) if open < close => message[open + 1..close]
            .split(',')
            .map(|c| c.trim().to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// Applies `ops` (validated, non-empty) all-or-nothing.
pub(crate) async fn write(
    client: &Client,
    table: &str,
    ops: Vec<WriteOp>,
) -> Result<(), StoreError> {
    let now = now_unix();
    let keys: Vec<ItemKey> = ops.iter().map(|op| op.key().clone()).collect();
    let items = ops
        .into_iter()
        .map(|op| transact_item(table, op, now))
        .collect::<Result<Vec<_>, _>>()?;
    let err = match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    {
        let codes = reason_codes(cancelled);
        if let Some(i) = codes.iter().position(|c| c == "ConditionalCheckFailed")
            && let Some(key) = keys.get(i)
        {
            return Err(condition_failed(key));
        }
        if codes
            .iter()
            .any(|c| c == "TransactionConflict" || c == "ThrottlingError")
        {
            // Another transaction held one of the items: retrying later is the remedy.
            return Err(StoreError::Throttled);
        }
        let codes = codes.join(", ");
        return Err(StoreError::Unavailable(format!(
            "DynamoDB cancelled the transaction: [{codes}]"
        )));
    }
    Err(store_err("TransactWriteItems", &err))
}
