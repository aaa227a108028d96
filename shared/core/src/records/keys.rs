//! Key patterns of the single table.

use crate::ports::{IndexKey, ItemKey};

/// The due index partition.
pub const DUE_INDEX_PK: &str = "DUE";

/// Lower-case hex of arbitrary text, so user-supplied values (owners, folder names, idempotency
/// keys) never clash with the `#` separators or sort unexpectedly.
pub fn hex_encode(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn provider(id: &str) -> ItemKey {
    ItemKey::new("PROVIDERS", id)
}

pub(crate) const PROVIDERS_PK: &str = "PROVIDERS";

pub(crate) fn account_pk(id: &str) -> String {
    format!("ACCOUNT#{id}")
}

pub(crate) fn account(id: &str) -> ItemKey {
    ItemKey::new(account_pk(id), "META")
}

/// The account id of an account item's key (`ACCOUNT#<id>` / `META`).
pub(crate) fn account_id_of(key: &ItemKey) -> Option<String> {
    let id = key.pk.strip_prefix("ACCOUNT#")?;
    (key.sk == "META" && !id.is_empty()).then(|| id.to_owned())
}

pub(crate) const ACCOUNTS_PK: &str = "ACCOUNTS";

pub(crate) fn account_listing(owner: &str, id: &str) -> ItemKey {
    ItemKey::new(ACCOUNTS_PK, format!("{}#{id}", hex_encode(owner)))
}

pub(crate) fn owner_prefix(owner: &str) -> String {
    format!("{}#", hex_encode(owner))
}

pub(crate) fn identity(provider_id: &str, identity: &str) -> ItemKey {
    ItemKey::new(format!("IDENTITY#{provider_id}"), hex_encode(identity))
}

pub(crate) fn oauth_state(state: &str) -> ItemKey {
    ItemKey::new(format!("STATE#{state}"), "STATE")
}

pub(crate) fn lease(account_id: &str, purpose: &str) -> ItemKey {
    ItemKey::new(account_pk(account_id), format!("LEASE#{purpose}"))
}

pub(crate) fn due_index(next_sync_at: i64, account_id: &str) -> IndexKey {
    IndexKey {
        pk: DUE_INDEX_PK.to_owned(),
        sk: format!("{:012}#{account_id}", next_sync_at.max(0)),
    }
}
