//! Records tests create directly in the store, bypassing the connect flow.

use mailroom_core::domain::{Account, AccountStatus, Tokens};
use secrecy::SecretString;
use serde_json::{Map, Value};

/// An active account holding the tokens the test OAuth provider's `/admin/issue` returned.
pub fn account_with_issued_tokens(
    id: String,
    owner: &str,
    provider_id: &str,
    email: &str,
    issued: &Value,
    now: i64,
    extra: Map<String, Value>,
) -> Account {
    let token = |name: &str| SecretString::from(issued[name].as_str().expect(name).to_owned());
    Account {
        id,
        owner: owner.into(),
        provider_id: provider_id.into(),
        email: email.into(),
        identity: format!("test|{email}"),
        status: AccountStatus::Active,
        status_reason: None,
        tokens: Tokens {
            access_token: token("access_token"),
            refresh_token: token("refresh_token"),
            access_expires_at: now + issued["expires_in"].as_i64().unwrap_or(3600),
        },
        granted_scopes: vec![],
        created_at: now,
        updated_at: now,
        next_sync_at: now,
        last_sync_at: None,
        last_error: None,
        failure_count: 0,
        extra,
        version: 1,
    }
}
