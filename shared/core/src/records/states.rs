//! OAuth state records: written by the start function, consumed once by the callback.

use serde_json::json;

use super::codec::{attributes, field, sealed};
use super::keys;
use super::repository::{RecordError, Repository};
use crate::domain::OAuthState;
use crate::ports::{Condition, Item, KeyContext};

const KIND: &str = "oauth_state";

impl Repository {
    /// Stores a new state; fails with a conflict if the same state value exists.
    pub async fn put_oauth_state(&self, s: &OAuthState) -> Result<(), RecordError> {
        let context = KeyContext::new(KIND, &s.state);
        let mut item = Item::new(keys::oauth_state(&s.state));
        item.expires_at = Some(s.expires_at);
        item.attributes = attributes([
            ("provider_id", json!(s.provider_id)),
            ("owner", json!(s.owner)),
            ("return_to", json!(s.return_to)),
            ("login_hint", json!(s.login_hint)),
            ("redirect_uri", json!(s.redirect_uri)),
            ("created_at", json!(s.created_at)),
        ]);
        let verifier = self
            .sealer
            .seal_secret(&context, "pkce_verifier", &s.pkce_verifier)
            .await?;
        item.sealed.insert("pkce_verifier".into(), verifier);
        Ok(self.store.put(item, Condition::NotExists).await?)
    }

    /// Consumes a state atomically: of two concurrent callbacks with the same state, only one
    /// gets it. Unknown and expired states read as `None`.
    pub async fn take_oauth_state(&self, state: &str) -> Result<Option<OAuthState>, RecordError> {
        let Some(item) = self.store.take(&keys::oauth_state(state)).await? else {
            return Ok(None);
        };
        let context = KeyContext::new(KIND, state);
        let pkce_verifier = self
            .sealer
            .open_secret(&context, "pkce_verifier", sealed(&item, "pkce_verifier")?)
            .await?;
        Ok(Some(OAuthState {
            state: state.to_owned(),
            provider_id: field(&item, "provider_id")?,
            owner: field(&item, "owner")?,
            return_to: field(&item, "return_to")?,
            login_hint: field(&item, "login_hint")?,
            redirect_uri: field(&item, "redirect_uri")?,
            created_at: field(&item, "created_at")?,
            expires_at: item.expires_at.unwrap_or_default(),
            pkce_verifier,
        }))
    }
}
