//! Typed records over the item store: the single-table key patterns, and the mapping of domain
//! types to items with their secret fields sealed.
//!
//! | record | pk | sk | notes |
//! |---|---|---|---|
//! | provider settings | `PROVIDERS` | `<provider id>` | `client_secret` sealed |
//! | account | `ACCOUNT#<id>` | `META` | tokens sealed (the access token only where the refresh policy stores it); `extra.refresh_token_stored_at`; in the due index while active |
//! | account listing | `ACCOUNTS` | `<owner hex>#<id>` | pointer for listing by owner |
//! | identity | `IDENTITY#<provider id>` | `<identity>` | finds an account again on re-connect |
//! | OAuth state | `STATE#<state>` | `STATE` | PKCE verifier sealed; TTL 10 minutes |
//! | lease | `ACCOUNT#<id>` | `LEASE#<purpose>` | TTL = lease expiry |
//! | folder cursor | `ACCOUNT#<id>` | `FOLDER#<folder hex>` | |
//! | send record | `ACCOUNT#<id>` | `SEND#<idempotency key hex>` | |
//! | message metadata | `MSGS#<account id>` | `<folder hex>#<UIDVALIDITY>#<UID>` (10 digits each) | raw source in the blob store |
//! | Gmail first copy | `GMSG#<account id>` | `<X-GM-MSGID, 20 digits>` | where a message seen under several labels was stored |
//!
//! The due index (`gsi1pk`/`gsi1sk`) holds active accounts under `DUE` with sort key
//! `<next_sync_at, 12 digits>#<id>`, so the scheduler reads only what is due.

mod accounts;
mod codec;
mod cursors;
mod keys;
mod leases;
mod messages;
mod providers;
mod repository;
mod sends;
mod states;
mod tokens;

pub use accounts::DueAccount;
pub use keys::{DUE_INDEX_PK, hex_encode};
pub use leases::Lease;
pub use messages::{MessageKey, MessagePage, message_blob_prefix};
pub use repository::{RecordError, Repository};
pub use sends::{SEND_RECORD_TTL_SECONDS, SendClaim, StoredSend};
pub use tokens::{REFRESH_TOKEN_STORED_AT, refresh_token_stored_at, set_refresh_token_stored_at};
