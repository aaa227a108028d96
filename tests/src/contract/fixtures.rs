//! Sample records and items for the contract suites.

use mailroom_core::SecretString;
use mailroom_core::domain::{
    Account, AccountStatus, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
    Tokens,
};
use mailroom_core::ports::{Item, ItemKey};
use mailroom_core::time::now_unix;
use serde_json::json;

/// An item with one plain attribute naming its sort key.
pub fn item(pk: &str, sk: &str) -> Item {
    let mut item = Item::new(ItemKey::new(pk, sk));
    item.attributes.insert("name".into(), json!(sk));
    item
}

/// An item whose TTL passed a minute ago.
pub fn expired(pk: &str, sk: &str) -> Item {
    let mut item = item(pk, sk);
    item.expires_at = Some(now_unix() - 60);
    item
}

pub fn provider(id: &str, client_secret: &str) -> ProviderSettings {
    let endpoint = |host: &str, port| MailEndpoint {
        host: host.into(),
        port,
        tls: TlsMode::Implicit,
    };
    ProviderSettings {
        id: id.into(),
        kind: ProviderKind::Microsoft,
        client_id: format!("client-{id}"),
        client_secret: SecretString::from(client_secret.to_owned()),
        tenant: Some("common".into()),
        cloud: None,
        authorize_url: "https://login.example.test/authorize".into(),
        token_url: "https://login.example.test/token".into(),
        scopes: vec!["offline_access".into(), "IMAP.AccessAsUser.All".into()],
        imap: endpoint("imap.example.test", 993),
        smtp: endpoint("smtp.example.test", 465),
        status: ProviderStatus::Ok,
        status_reason: None,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        version: 1,
    }
}

pub fn account(id: &str, access_token: &str, refresh_token: &str) -> Account {
    Account {
        id: id.into(),
        owner: "owner@example.test".into(),
        provider_id: "p1".into(),
        email: format!("{id}@example.test"),
        identity: format!("issuer|{id}"),
        status: AccountStatus::Active,
        status_reason: None,
        tokens: Tokens {
            access_token: SecretString::from(access_token.to_owned()),
            refresh_token: SecretString::from(refresh_token.to_owned()),
            access_expires_at: 1_700_003_600,
        },
        granted_scopes: vec!["IMAP.AccessAsUser.All".into()],
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        next_sync_at: 1_700_000_100,
        last_sync_at: None,
        last_error: None,
        failure_count: 0,
        extra: serde_json::Map::new(),
        version: 1,
    }
}
