//! Provider settings records.

use serde_json::json;

use super::codec::{attributes, field, sealed};
use super::keys;
use super::repository::{RecordError, Repository};
use crate::domain::ProviderSettings;
use crate::ports::{Condition, Item, KeyContext, QueryRange};

const KIND: &str = "provider";

fn context(id: &str) -> KeyContext {
    KeyContext::new(KIND, id)
}

impl Repository {
    async fn provider_to_item(&self, p: &ProviderSettings) -> Result<Item, RecordError> {
        let mut item = Item::new(keys::provider(&p.id));
        item.version = p.version;
        item.attributes = attributes([
            ("kind", json!(p.kind)),
            ("client_id", json!(p.client_id)),
            ("tenant", json!(p.tenant)),
            ("cloud", json!(p.cloud)),
            ("authorize_url", json!(p.authorize_url)),
            ("token_url", json!(p.token_url)),
            ("scopes", json!(p.scopes)),
            ("imap", json!(p.imap)),
            ("smtp", json!(p.smtp)),
            ("status", json!(p.status)),
            ("status_reason", json!(p.status_reason)),
            ("created_at", json!(p.created_at)),
            ("updated_at", json!(p.updated_at)),
        ]);
        let secret = self
            .sealer
            .seal_secret(&context(&p.id), "client_secret", &p.client_secret)
            .await?;
        item.sealed.insert("client_secret".into(), secret);
        Ok(item)
    }

    async fn provider_from_item(&self, item: &Item) -> Result<ProviderSettings, RecordError> {
        let id = item.key.sk.clone();
        let client_secret = self
            .sealer
            .open_secret(
                &context(&id),
                "client_secret",
                sealed(item, "client_secret")?,
            )
            .await?;
        Ok(ProviderSettings {
            kind: field(item, "kind")?,
            client_id: field(item, "client_id")?,
            client_secret,
            tenant: field(item, "tenant")?,
            cloud: field(item, "cloud")?,
            authorize_url: field(item, "authorize_url")?,
            token_url: field(item, "token_url")?,
            scopes: field(item, "scopes")?,
            imap: field(item, "imap")?,
            smtp: field(item, "smtp")?,
            status: field(item, "status")?,
            status_reason: field(item, "status_reason")?,
            created_at: field(item, "created_at")?,
            updated_at: field(item, "updated_at")?,
            version: item.version,
            id,
        })
    }

    pub async fn get_provider(&self, id: &str) -> Result<Option<ProviderSettings>, RecordError> {
        match self.store.get(&keys::provider(id)).await? {
            Some(item) => Ok(Some(self.provider_from_item(&item).await?)),
            None => Ok(None),
        }
    }

    /// Writes provider settings: created when `expected_version` is `None`, else only over that version.
    /// The stored version becomes `settings.version`.
    pub async fn put_provider(
        &self,
        settings: &ProviderSettings,
        expected_version: Option<u64>,
    ) -> Result<(), RecordError> {
        let item = self.provider_to_item(settings).await?;
        let condition = expected_version.map_or(Condition::NotExists, Condition::VersionIs);
        Ok(self.store.put(item, condition).await?)
    }

    pub async fn list_providers(&self) -> Result<Vec<ProviderSettings>, RecordError> {
        let mut out = Vec::new();
        let mut start_after = None;
        loop {
            let page = self
                .store
                .query(
                    keys::PROVIDERS_PK,
                    QueryRange {
                        start_after,
                        limit: 100,
                        ..Default::default()
                    },
                )
                .await?;
            for item in &page.items {
                out.push(self.provider_from_item(item).await?);
            }
            match page.next {
                Some(next) => start_after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Deletes provider settings; returns whether they existed.
    pub async fn delete_provider(&self, id: &str) -> Result<bool, RecordError> {
        Ok(self.store.take(&keys::provider(id)).await?.is_some())
    }
}
