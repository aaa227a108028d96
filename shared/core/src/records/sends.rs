//! Send records: one item per idempotency key in the account's partition
//! (`ACCOUNT#<id>` / `SEND#<idempotency key hex>`). The key is claimed with a conditional write
//! before anything is sent, and every later change is conditional on the version read, so two
//! requests with the same key can never both send.

use serde_json::Value;

use super::codec::corrupt;
use super::keys::{account_pk, hex_encode};
use super::repository::{RecordError, Repository};
use crate::domain::SendRecord;
use crate::ports::{Condition, Item, ItemKey, StoreError};

const PREFIX: &str = "SEND#";

/// How long a send record is kept for replay; a key reused after that is a new send.
pub const SEND_RECORD_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// A send record and the version it was read or written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSend {
    pub record: SendRecord,
    pub version: u64,
}

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendClaim {
    /// The key was free and is now ours (the record is stored as given).
    Claimed(StoredSend),
    /// The key is already taken; this is the stored record.
    Taken(StoredSend),
}

fn send_key(account_id: &str, idempotency_key: &str) -> ItemKey {
    ItemKey::new(
        account_pk(account_id),
        format!("{PREFIX}{}", hex_encode(idempotency_key)),
    )
}

fn send_to_item(record: &SendRecord, version: u64) -> Result<Item, StoreError> {
    let mut item = Item::new(send_key(&record.account_id, &record.idempotency_key));
    item.version = version;
    item.expires_at = Some(record.created_at + SEND_RECORD_TTL_SECONDS);
    match serde_json::to_value(record) {
        Ok(Value::Object(map)) => {
            item.attributes = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
            Ok(item)
        }
        _ => Err(StoreError::Invalid(format!(
            "the send record {:?} could not be encoded",
            record.idempotency_key
        ))),
    }
}

fn send_from_item(item: &Item) -> Result<StoredSend, StoreError> {
    let record = serde_json::from_value(Value::Object(item.attributes.clone()))
        .map_err(|e| corrupt(item, format!("send record: {e}")))?;
    Ok(StoredSend {
        record,
        version: item.version,
    })
}

impl Repository {
    /// Claims `record.idempotency_key` for a new send: stores the record only if no live record
    /// has that key; otherwise returns the stored one untouched.
    pub async fn claim_send(&self, record: &SendRecord) -> Result<SendClaim, RecordError> {
        let item = send_to_item(record, 1)?;
        match self.store.put(item, Condition::NotExists).await {
            Ok(()) => Ok(SendClaim::Claimed(StoredSend {
                record: record.clone(),
                version: 1,
            })),
            Err(e) if e.is_conflict() => {
                match self
                    .get_send(&record.account_id, &record.idempotency_key)
                    .await?
                {
                    Some(stored) => Ok(SendClaim::Taken(stored)),
                    // It expired or was deleted between our write and our read: the caller
                    // may simply try again; report it as a conflict meanwhile.
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the record stored at `previous.version` with `record`; `Ok(None)` when another
    /// writer changed it first (the caller lost the race and must not send).
    pub async fn replace_send(
        &self,
        previous: &StoredSend,
        record: &SendRecord,
    ) -> Result<Option<StoredSend>, RecordError> {
        let version = previous.version + 1;
        let item = send_to_item(record, version)?;
        match self
            .store
            .put(item, Condition::VersionIs(previous.version))
            .await
        {
            Ok(()) => Ok(Some(StoredSend {
                record: record.clone(),
                version,
            })),
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the record of one idempotency key.
    pub async fn get_send(
        &self,
        account_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<StoredSend>, RecordError> {
        match self
            .store
            .get(&send_key(account_id, idempotency_key))
            .await?
        {
            Some(item) => Ok(Some(send_from_item(&item)?)),
            None => Ok(None),
        }
    }
}
