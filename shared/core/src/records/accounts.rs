//! Account records, with their listing and identity pointers kept in step atomically.

use serde_json::json;

use super::codec::{attributes, field, sealed};
use super::keys;
use super::repository::{RecordError, Repository};
use crate::domain::{Account, AccountStatus, Tokens};
use crate::ports::{Condition, Item, ItemKey, KeyContext, QueryRange, WriteOp};

const KIND: &str = "account";

/// An account the due index lists: its id and, where the index projects it, its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAccount {
    pub id: String,
    pub version: Option<u64>,
}

fn context(id: &str) -> KeyContext {
    KeyContext::new(KIND, id)
}

impl Repository {
    async fn account_to_item(&self, a: &Account) -> Result<Item, RecordError> {
        let mut item = Item::new(keys::account(&a.id));
        item.version = a.version;
        if a.status == AccountStatus::Active || a.status == AccountStatus::Degraded {
            item.index = Some(keys::due_index(a.next_sync_at, &a.id));
        }
        item.attributes = attributes([
            ("id", json!(a.id)),
            ("owner", json!(a.owner)),
            ("provider_id", json!(a.provider_id)),
            ("email", json!(a.email)),
            ("identity", json!(a.identity)),
            ("status", json!(a.status)),
            ("status_reason", json!(a.status_reason)),
            ("access_expires_at", json!(a.tokens.access_expires_at)),
            ("granted_scopes", json!(a.granted_scopes)),
            ("created_at", json!(a.created_at)),
            ("updated_at", json!(a.updated_at)),
            ("next_sync_at", json!(a.next_sync_at)),
            ("last_sync_at", json!(a.last_sync_at)),
            ("last_error", json!(a.last_error)),
            ("failure_count", json!(a.failure_count)),
            ("extra", json!(a.extra)),
        ]);
        let ctx = context(&a.id);
        let access = self
            .sealer
            .seal_secret(&ctx, "access_token", &a.tokens.access_token)
            .await?;
        let refresh = self
            .sealer
            .seal_secret(&ctx, "refresh_token", &a.tokens.refresh_token)
            .await?;
        item.sealed.insert("access_token".into(), access);
        item.sealed.insert("refresh_token".into(), refresh);
        Ok(item)
    }

    pub(super) async fn account_from_item(&self, item: &Item) -> Result<Account, RecordError> {
        let id: String = field(item, "id")?;
        let ctx = context(&id);
        let access_token = self
            .sealer
            .open_secret(&ctx, "access_token", sealed(item, "access_token")?)
            .await?;
        let refresh_token = self
            .sealer
            .open_secret(&ctx, "refresh_token", sealed(item, "refresh_token")?)
            .await?;
        Ok(Account {
            owner: field(item, "owner")?,
            provider_id: field(item, "provider_id")?,
            email: field(item, "email")?,
            identity: field(item, "identity")?,
            status: field(item, "status")?,
            status_reason: field(item, "status_reason")?,
            tokens: Tokens {
                access_token,
                refresh_token,
                access_expires_at: field(item, "access_expires_at")?,
            },
            granted_scopes: field::<Option<Vec<String>>>(item, "granted_scopes")?
                .unwrap_or_default(),
            created_at: field(item, "created_at")?,
            updated_at: field(item, "updated_at")?,
            next_sync_at: field(item, "next_sync_at")?,
            last_sync_at: field(item, "last_sync_at")?,
            last_error: field(item, "last_error")?,
            failure_count: field::<Option<u32>>(item, "failure_count")?.unwrap_or_default(),
            extra: field::<Option<serde_json::Map<String, serde_json::Value>>>(item, "extra")?
                .unwrap_or_default(),
            version: item.version,
            id,
        })
    }

    pub async fn get_account(&self, id: &str) -> Result<Option<Account>, RecordError> {
        match self.store.get(&keys::account(id)).await? {
            Some(item) => Ok(Some(self.account_from_item(&item).await?)),
            None => Ok(None),
        }
    }

    /// The account as [`Repository::get_account`] reads it, possibly a moment stale (half the
    /// price on DynamoDB): for the sync worker's read-only check, which writes nothing on its
    /// strength alone (every write re-reads the account consistently or is conditional on its
    /// version).
    pub async fn get_account_stale(&self, id: &str) -> Result<Option<Account>, RecordError> {
        match self.store.get_stale(&keys::account(id)).await? {
            Some(item) => Ok(Some(self.account_from_item(&item).await?)),
            None => Ok(None),
        }
    }

    /// Finds the account a provider's stable identity was connected as.
    pub async fn find_account_by_identity(
        &self,
        provider_id: &str,
        identity: &str,
    ) -> Result<Option<Account>, RecordError> {
        let Some(pointer) = self
            .store
            .get(&keys::identity(provider_id, identity))
            .await?
        else {
            return Ok(None);
        };
        let account_id: String = field(&pointer, "account_id")?;
        self.get_account(&account_id).await
    }

    /// Creates an account with its listing and identity pointers, all or nothing; a conflict
    /// means the identity is already connected (or the id is taken).
    pub async fn create_account(&self, account: &Account) -> Result<(), RecordError> {
        let item = self.account_to_item(account).await?;
        let mut listing = Item::new(keys::account_listing(&account.owner, &account.id));
        listing.attributes = attributes([
            ("account_id", json!(account.id)),
            ("owner", json!(account.owner)),
        ]);
        let mut identity = Item::new(keys::identity(&account.provider_id, &account.identity));
        identity.attributes = attributes([("account_id", json!(account.id))]);
        self.store
            .write_atomic(vec![
                WriteOp::Put {
                    item,
                    condition: Condition::NotExists,
                },
                WriteOp::Put {
                    item: listing,
                    condition: Condition::NotExists,
                },
                WriteOp::Put {
                    item: identity,
                    condition: Condition::NotExists,
                },
            ])
            .await?;
        Ok(())
    }

    /// Replaces an account if its stored version is still `account.version`; on success the
    /// account's version is advanced.
    pub async fn update_account(&self, account: &mut Account) -> Result<(), RecordError> {
        let expected = account.version;
        account.version = expected + 1;
        let item = match self.account_to_item(account).await {
            Ok(item) => item,
            Err(e) => {
                account.version = expected;
                return Err(e);
            }
        };
        if let Err(e) = self.store.put(item, Condition::VersionIs(expected)).await {
            account.version = expected;
            return Err(e.into());
        }
        Ok(())
    }

    /// Lists accounts, optionally of one owner, a page at a time (`start_after` from the previous
    /// page's `next`).
    pub async fn list_accounts(
        &self,
        owner: Option<&str>,
        start_after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Account>, Option<String>), RecordError> {
        let range = QueryRange {
            sk_prefix: owner.map(keys::owner_prefix).unwrap_or_default(),
            start_after,
            descending: false,
            limit,
        };
        let page = self.store.query(keys::ACCOUNTS_PK, range).await?;
        let mut accounts = Vec::with_capacity(page.items.len());
        for pointer in &page.items {
            let account_id: String = field(pointer, "account_id")?;
            if let Some(account) = self.get_account(&account_id).await? {
                accounts.push(account);
            }
        }
        Ok((accounts, page.next))
    }

    /// Deletes an account's own records: every item in its partition (cursors, leases, sends…),
    /// its pointers and finally the account item. Messages and blobs are removed by their owners.
    pub async fn delete_account_records(&self, account: &Account) -> Result<(), RecordError> {
        let pk = keys::account_pk(&account.id);
        loop {
            let page = self
                .store
                .query(
                    &pk,
                    QueryRange {
                        limit: 500,
                        ..Default::default()
                    },
                )
                .await?;
            let keys: Vec<ItemKey> = page
                .items
                .into_iter()
                .map(|i| i.key)
                .filter(|k| k.sk != "META")
                .collect();
            if keys.is_empty() {
                break;
            }
            self.store.delete_many(keys).await?;
        }
        self.store
            .write_atomic(vec![
                WriteOp::Delete {
                    key: keys::account_listing(&account.owner, &account.id),
                    condition: Condition::None,
                },
                WriteOp::Delete {
                    key: keys::identity(&account.provider_id, &account.identity),
                    condition: Condition::None,
                },
                WriteOp::Delete {
                    key: keys::account(&account.id),
                    condition: Condition::None,
                },
            ])
            .await?;
        Ok(())
    }

    /// Accounts due for sync at `now`, read from the due index (never a scan): the first page.
    pub async fn due_account_ids(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<String>, RecordError> {
        let (due, _) = self.due_accounts_page(now, None, limit).await?;
        Ok(due.into_iter().map(|d| d.id).collect())
    }

    /// One page of the accounts due at `now`, oldest `next_sync_at` first, with the
    /// `start_after` of the next page (`None` after the last). The index projects keys, `ttl`
    /// and the item's version, so ids and versions come from the index entries and nothing else
    /// is read.
    pub async fn due_accounts_page(
        &self,
        now: i64,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DueAccount>, Option<String>), RecordError> {
        let sk_max = format!("{:012}#~", now.max(0));
        let items = self
            .store
            .query_index(keys::DUE_INDEX_PK, &sk_max, start_after, limit)
            .await?;
        let full = limit > 0 && items.len() >= limit;
        let next = full
            .then(|| {
                items
                    .last()
                    .and_then(|i| i.index.as_ref())
                    .map(|x| x.sk.clone())
            })
            .flatten();
        let due = items
            .iter()
            .map(|i| {
                let id = keys::account_id_of(&i.key).ok_or_else(|| {
                    RecordError::from(crate::ports::StoreError::Corrupt {
                        pk: i.key.pk.clone(),
                        sk: i.key.sk.clone(),
                        reason: "a due-index entry is not an account".into(),
                    })
                })?;
                // Version 0: a table whose index does not project it (created before it did).
                let version = (i.version > 0).then_some(i.version);
                Ok(DueAccount { id, version })
            })
            .collect::<Result<Vec<_>, RecordError>>()?;
        Ok((due, next))
    }
}
