//! Message metadata records: partition `MSGS#<account id>`, sort key
//! `<folder hex>#<UIDVALIDITY, 10 digits>#<UID, 10 digits>`, so one folder reads newest first with
//! a descending query, and a retried write lands on the same item (idempotent on account, folder,
//! UIDVALIDITY and UID). The API's message id is that sort key in URL-safe base64: opaque to
//! callers, and decoded without any lookup.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::codec::corrupt;
use super::keys::hex_encode;
use super::repository::{RecordError, Repository};
use crate::domain::MessageMeta;
use crate::ports::{Condition, Item, ItemKey, QueryRange, StoreError};

const PK_PREFIX: &str = "MSGS#";

/// Where one message lives: folder, UIDVALIDITY and UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    pub folder: String,
    pub uid_validity: u32,
    pub uid: u32,
}

impl MessageKey {
    pub fn new(folder: impl Into<String>, uid_validity: u32, uid: u32) -> Self {
        Self {
            folder: folder.into(),
            uid_validity,
            uid,
        }
    }

    /// The sort key inside the account's message partition.
    pub fn sort_key(&self) -> String {
        format!(
            "{}#{:010}#{:010}",
            hex_encode(&self.folder),
            self.uid_validity,
            self.uid
        )
    }

    /// The opaque, URL-safe id the API shows.
    pub fn message_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sort_key())
    }

    /// Reads a message id back; `None` for anything that is not one of ours.
    pub fn from_message_id(id: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
        let sk = String::from_utf8(bytes).ok()?;
        Self::from_sort_key(&sk)
    }

    fn from_sort_key(sk: &str) -> Option<Self> {
        let mut parts = sk.split('#');
        let (folder_hex, validity, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || validity.len() != 10 || uid.len() != 10 {
            return None;
        }
        Some(Self {
            folder: hex_decode(folder_hex)?,
            uid_validity: validity.parse().ok()?,
            uid: uid.parse().ok()?,
        })
    }

    /// Where the raw source is kept in the blob store.
    pub fn blob_key(&self, account_id: &str) -> String {
        format!(
            "{}{}/{}/{}.eml",
            message_blob_prefix(account_id),
            hex_encode(&self.folder),
            self.uid_validity,
            self.uid
        )
    }
}

/// The blob-store prefix under which all of an account's raw messages live.
pub fn message_blob_prefix(account_id: &str) -> String {
    format!("accounts/{account_id}/")
}

fn hex_decode(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn messages_pk(account_id: &str) -> String {
    format!("{PK_PREFIX}{account_id}")
}

/// Gmail's X-GM-MSGID → first stored copy, one partition per account.
fn gmail_pk(account_id: &str) -> String {
    format!("GMSG#{account_id}")
}

fn folder_prefix(folder: &str) -> String {
    format!("{}#", hex_encode(folder))
}

pub(super) fn meta_to_item(meta: &MessageMeta) -> Result<Item, StoreError> {
    let key = MessageKey::new(&meta.folder, meta.uid_validity, meta.uid);
    let mut item = Item::new(ItemKey::new(messages_pk(&meta.account_id), key.sort_key()));
    match serde_json::to_value(meta) {
        Ok(Value::Object(map)) => {
            item.attributes = map.into_iter().filter(|(_, v)| !v.is_null()).collect();
            Ok(item)
        }
        _ => Err(StoreError::Invalid(format!(
            "the metadata of message {} could not be encoded",
            meta.id
        ))),
    }
}

fn meta_from_item(item: &Item) -> Result<MessageMeta, StoreError> {
    serde_json::from_value(Value::Object(item.attributes.clone()))
        .map_err(|e| corrupt(item, format!("message metadata: {e}")))
}

/// The items saying where each Gmail message (X-GM-MSGID) was stored first.
pub(super) fn gmail_copy_items<'a>(
    account_id: &'a str,
    copies: &'a [(u64, MessageKey)],
) -> impl Iterator<Item = Item> + 'a {
    copies.iter().map(move |(msgid, key)| {
        let mut item = Item::new(ItemKey::new(gmail_pk(account_id), format!("{msgid:020}")));
        item.attributes
            .insert("message".into(), serde_json::json!(key.sort_key()));
        item
    })
}

/// One page of messages, newest first; `next` is the opaque cursor of the following page.
#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    pub messages: Vec<MessageMeta>,
    pub next: Option<String>,
}

impl Repository {
    /// Writes (or rewrites) message metadata; idempotent on the message key.
    pub async fn put_messages(&self, metas: &[MessageMeta]) -> Result<(), RecordError> {
        if metas.is_empty() {
            return Ok(());
        }
        let items = metas
            .iter()
            .map(meta_to_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.put_many(items).await?)
    }

    pub async fn get_message(
        &self,
        account_id: &str,
        key: &MessageKey,
    ) -> Result<Option<MessageMeta>, RecordError> {
        let item_key = ItemKey::new(messages_pk(account_id), key.sort_key());
        match self.store.get(&item_key).await? {
            Some(item) => Ok(Some(meta_from_item(&item)?)),
            None => Ok(None),
        }
    }

    /// Lists one folder newest first; `cursor` is a previous page's `next`.
    pub async fn list_messages(
        &self,
        account_id: &str,
        folder: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, RecordError> {
        let start_after = match cursor {
            Some(c) => match MessageKey::from_message_id(c) {
                Some(key) if key.folder == folder => Some(key.sort_key()),
                _ => {
                    return Err(StoreError::Invalid("the page cursor is not valid".into()).into());
                }
            },
            None => None,
        };
        let page = self
            .store
            .query(
                &messages_pk(account_id),
                QueryRange {
                    sk_prefix: folder_prefix(folder),
                    start_after,
                    descending: true,
                    limit,
                },
            )
            .await?;
        let messages = page
            .items
            .iter()
            .map(meta_from_item)
            .collect::<Result<Vec<_>, _>>()?;
        let next = page.next.map(|sk| URL_SAFE_NO_PAD.encode(sk));
        Ok(MessagePage { messages, next })
    }

    /// Reads the stored messages of one folder and UIDVALIDITY in UID order, a page at a time
    /// (`start_after` is the previous page's last UID).
    pub async fn messages_of_validity(
        &self,
        account_id: &str,
        folder: &str,
        uid_validity: u32,
        start_after: Option<u32>,
        limit: usize,
    ) -> Result<Vec<MessageMeta>, RecordError> {
        let page = self
            .store
            .query(
                &messages_pk(account_id),
                QueryRange {
                    sk_prefix: format!("{}{:010}#", folder_prefix(folder), uid_validity),
                    start_after: start_after
                        .map(|uid| MessageKey::new(folder, uid_validity, uid).sort_key()),
                    descending: false,
                    limit,
                },
            )
            .await?;
        Ok(page
            .items
            .iter()
            .map(meta_from_item)
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes the metadata of the given messages.
    pub async fn delete_messages(
        &self,
        account_id: &str,
        keys: &[MessageKey],
    ) -> Result<(), RecordError> {
        let keys = keys
            .iter()
            .map(|k| ItemKey::new(messages_pk(account_id), k.sort_key()))
            .collect();
        Ok(self.store.delete_many(keys).await?)
    }

    /// Deletes the metadata of every message of an account (and its Gmail copy index); returns
    /// how many messages were deleted.
    pub async fn delete_all_messages(&self, account_id: &str) -> Result<u64, RecordError> {
        let deleted = self.delete_partition(&messages_pk(account_id)).await?;
        self.delete_partition(&gmail_pk(account_id)).await?;
        Ok(deleted)
    }

    async fn delete_partition(&self, pk: &str) -> Result<u64, RecordError> {
        let mut deleted = 0u64;
        loop {
            let page = self
                .store
                .query(
                    pk,
                    QueryRange {
                        limit: 500,
                        ..Default::default()
                    },
                )
                .await?;
            if page.items.is_empty() {
                return Ok(deleted);
            }
            deleted += page.items.len() as u64;
            let keys = page.items.into_iter().map(|i| i.key).collect();
            self.store.delete_many(keys).await?;
        }
    }

    /// Where the first stored copy of a Gmail message (by X-GM-MSGID) lives, if any.
    pub async fn gmail_first_copy(
        &self,
        account_id: &str,
        gmail_msgid: u64,
    ) -> Result<Option<MessageKey>, RecordError> {
        let key = ItemKey::new(gmail_pk(account_id), format!("{gmail_msgid:020}"));
        let Some(item) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let sk: String = super::codec::field(&item, "message")?;
        Ok(MessageKey::from_sort_key(&sk))
    }

    /// Remembers where Gmail messages were first stored, so their other labels reuse them.
    pub async fn put_gmail_first_copies(
        &self,
        account_id: &str,
        copies: &[(u64, MessageKey)],
    ) -> Result<(), RecordError> {
        if copies.is_empty() {
            return Ok(());
        }
        let items = gmail_copy_items(account_id, copies).collect();
        Ok(self.store.put_many(items).await?)
    }

    /// Replaces the flags of one stored message (CONDSTORE flag changes); `false` when the
    /// message is not stored.
    pub async fn set_message_flags(
        &self,
        account_id: &str,
        key: &MessageKey,
        flags: &[String],
    ) -> Result<bool, RecordError> {
        let item_key = ItemKey::new(messages_pk(account_id), key.sort_key());
        let Some(mut item) = self.store.get(&item_key).await? else {
            return Ok(false);
        };
        item.attributes
            .insert("flags".into(), serde_json::json!(flags));
        self.store.put(item, Condition::None).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_reject_garbage() {
        let key = MessageKey::new("Sent Items/2024", 7, 42);
        let id = key.message_id();
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(MessageKey::from_message_id(&id), Some(key.clone()));
        assert_eq!(
            key.blob_key("acc1"),
            "accounts/acc1/53656e74204974656d732f32303234/7/42.eml"
        );
        for bad in [
            "",
            "!!",
            "YWJj",
            &URL_SAFE_NO_PAD.encode("zz#0000000001#0000000001"),
        ] {
            assert_eq!(MessageKey::from_message_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn newer_uids_sort_after_older_ones() {
        let a = MessageKey::new("INBOX", 1, 9).sort_key();
        let b = MessageKey::new("INBOX", 1, 10).sort_key();
        assert!(a < b);
    }
}
