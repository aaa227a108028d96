//! The IMAP client: connect over rustls, log in with XOAUTH2, and the commands sync uses.

mod auth;
mod connect;
mod error;
mod guard;
mod session;

pub use auth::challenge_status;
pub use connect::{BoxedIo, ImapConnector, ImapIo, StreamWrapper};
pub use error::{ErrorKind, ImapError};
pub use guard::guard_server_bytes;
pub use session::{FetchedMessage, FolderStatus, ImapSession};

use mailroom_core::domain::MailEndpoint;
use secrecy::SecretString;

impl ImapConnector {
    /// Connects and logs in as `user` with an OAuth access token; reads the capabilities and
    /// sends ID where supported. The caller ends the session with [`ImapSession::logout`].
    pub async fn open_session(
        &self,
        endpoint: &MailEndpoint,
        user: &str,
        token: &SecretString,
    ) -> Result<ImapSession, ImapError> {
        let client = self.connect(endpoint).await?;
        let session = auth::login(self, client, user, token).await?;
        let mut session = ImapSession::start(self.clone(), session).await?;
        if let Err(e) = session.identify().await {
            // ID is a courtesy: a server that fails it still serves mail.
            tracing::debug!(error = %e, "IMAP ID failed");
        }
        Ok(session)
    }
}
