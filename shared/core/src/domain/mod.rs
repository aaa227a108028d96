//! Domain types: provider settings, accounts, OAuth state, sync cursors, messages and sends.

mod account;
mod message;
mod oauth_state;
mod provider;
mod send;
mod sync;

pub use account::{Account, AccountStatus, Tokens};
pub use message::{AttachmentInfo, MessageMeta};
pub use oauth_state::OAuthState;
pub use provider::{Cloud, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode};
pub use send::{SendRecord, SendStatus};
pub use sync::FolderCursor;
