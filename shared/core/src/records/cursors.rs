//! Per-folder sync cursors: one item per synced folder in the account's partition
//! (`ACCOUNT#<id>` / `FOLDER#<folder hex>`), read together with one query.

use serde_json::Value;

use super::codec::corrupt;
use super::keys::{account_pk, hex_encode};
use super::messages::MessageKey;
use super::repository::{RecordError, Repository};
use crate::domain::{Account, FolderCursor, MessageMeta};
use crate::ports::{Condition, Item, ItemKey, QueryRange, StoreError};

const PREFIX: &str = "FOLDER#";

fn cursor_key(account_id: &str, folder: &str) -> ItemKey {
    ItemKey::new(
        account_pk(account_id),
        format!("{PREFIX}{}", hex_encode(folder)),
    )
}

fn cursor_to_item(account_id: &str, cursor: &FolderCursor) -> Result<Item, StoreError> {
    let mut item = Item::new(cursor_key(account_id, &cursor.folder));
    match serde_json::to_value(cursor) {
        Ok(Value::Object(map)) => {
            item.attributes = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
            Ok(item)
        }
        _ => Err(StoreError::Invalid(format!(
            "the cursor of folder {:?} could not be encoded",
            cursor.folder
        ))),
    }
}

fn cursor_from_item(item: &Item) -> Result<FolderCursor, StoreError> {
    serde_json::from_value(Value::Object(item.attributes.clone()))
        .map_err(|e| corrupt(item, format!("folder cursor: {e}")))
}

impl Repository {
    /// Every folder cursor of an account (one query, whatever the mailbox size).
    pub async fn folder_cursors(&self, account_id: &str) -> Result<Vec<FolderCursor>, RecordError> {
        self.read_cursors(account_id, true).await
    }

    /// The folder cursors as [`Repository::folder_cursors`] reads them, possibly a moment stale
    /// (half the price on DynamoDB): for a read-only check whose "something changed" is
    /// confirmed by a consistent read before anything is written.
    pub async fn folder_cursors_stale(
        &self,
        account_id: &str,
    ) -> Result<Vec<FolderCursor>, RecordError> {
        self.read_cursors(account_id, false).await
    }

    /// An account and its folder cursors from ONE eventually consistent query of the account's
    /// partition (its item, cursors and leases; messages live elsewhere), for the sync worker's
    /// read-only check: one request billed on the items' total size instead of two. `None` when
    /// the account does not exist.
    pub async fn account_with_cursors_stale(
        &self,
        account_id: &str,
    ) -> Result<Option<(Account, Vec<FolderCursor>)>, RecordError> {
        let pk = account_pk(account_id);
        let account_sk = super::keys::account(account_id).sk;
        let (mut account, mut cursors) = (None, Vec::new());
        let mut start_after = None;
        loop {
            let range = QueryRange {
                sk_prefix: String::new(),
                start_after,
                descending: false,
                limit: 100,
            };
            let page = self.store.query_stale(&pk, range).await?;
            for item in &page.items {
                if item.key.sk == account_sk {
                    account = Some(self.account_from_item(item).await?);
                } else if item.key.sk.starts_with(PREFIX) {
                    cursors.push(cursor_from_item(item)?);
                }
            }
            match page.next {
                Some(next) => start_after = Some(next),
                None => return Ok(account.map(|a| (a, cursors))),
            }
        }
    }

    async fn read_cursors(
        &self,
        account_id: &str,
        consistent: bool,
    ) -> Result<Vec<FolderCursor>, RecordError> {
        let mut out = Vec::new();
        let mut start_after = None;
        loop {
            let range = QueryRange {
                sk_prefix: PREFIX.to_owned(),
                start_after,
                descending: false,
                limit: 100,
            };
            let pk = account_pk(account_id);
            let page = if consistent {
                self.store.query(&pk, range).await?
            } else {
                self.store.query_stale(&pk, range).await?
            };
            for item in &page.items {
                out.push(cursor_from_item(item)?);
            }
            match page.next {
                Some(next) => start_after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Writes one folder's cursor (last writer wins: only the lease holder syncs an account).
    pub async fn put_folder_cursor(
        &self,
        account_id: &str,
        cursor: &FolderCursor,
    ) -> Result<(), RecordError> {
        let item = cursor_to_item(account_id, cursor)?;
        Ok(self.store.put(item, Condition::None).await?)
    }

    /// Writes a sync batch's message metadata (and Gmail first copies), then the folder cursor
    /// that covers them: the cursor is never durable before them (the store may write both in
    /// one commit).
    pub async fn put_messages_then_cursor(
        &self,
        account_id: &str,
        metas: &[MessageMeta],
        gmail_copies: &[(u64, MessageKey)],
        cursor: &FolderCursor,
    ) -> Result<(), RecordError> {
        let mut items = Vec::with_capacity(metas.len() + gmail_copies.len());
        for meta in metas {
            items.push(super::messages::meta_to_item(meta)?);
        }
        items.extend(super::messages::gmail_copy_items(account_id, gmail_copies));
        let last = cursor_to_item(account_id, cursor)?;
        Ok(self.store.put_many_then(items, last).await?)
    }

    /// Forgets one folder's cursor (its next sync starts over as a first sync).
    pub async fn delete_folder_cursor(
        &self,
        account_id: &str,
        folder: &str,
    ) -> Result<(), RecordError> {
        Ok(self
            .store
            .delete(&cursor_key(account_id, folder), Condition::None)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_special_use_role_round_trips_and_older_cursors_read_without_it() {
        let sent = FolderCursor {
            folder: "Sent Items".into(),
            uid_validity: 9,
            last_uid: 4,
            special_use: Some("\\Sent".into()),
            ..FolderCursor::default()
        };
        let item = cursor_to_item("a1", &sent).expect("encode");
        assert_eq!(item.attributes["special_use"], "\\Sent");
        assert_eq!(cursor_from_item(&item).expect("decode"), sent);

        // A cursor without a role writes no attribute for it, and one written before roles
        // existed reads as having none.
        let inbox = FolderCursor {
            folder: "INBOX".into(),
            ..FolderCursor::default()
        };
        let item = cursor_to_item("a1", &inbox).expect("encode");
        assert!(!item.attributes.contains_key("special_use"));
        assert_eq!(cursor_from_item(&item).expect("decode").special_use, None);
    }
}
