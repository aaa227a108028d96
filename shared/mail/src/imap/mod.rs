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
    /// Connects and logs in as `user` with an OAuth access token, keeping the capabilities the
    /// login response announces (no CAPABILITY command unless a later command needs them and
    /// the server did not announce them), and sends ID to Gmail. The caller ends the session
    /// with [`ImapSession::logout`].
    pub async fn open_session(
        &self,
        endpoint: &MailEndpoint,
        user: &str,
        token: &SecretString,
    ) -> Result<ImapSession, ImapError> {
        let connected = self.connect_tapped(endpoint).await?;
        let session = auth::login(
            self,
            connected.client,
            user,
            token,
            connected.greeting.as_deref(),
        )
        .await?;
        // What the login exchange announced (Dovecot: the tagged OK's code; Gmail: an untagged
        // CAPABILITY before it). Greeting capabilities were taken before login and are not used.
        let announced = connected.tap.take();
        connected.tap.stop();
        let mut session = ImapSession::start(self.clone(), session, announced, &endpoint.host);
        if let Err(e) = session.identify().await {
            // ID is a courtesy: a server that fails it still serves mail.
            tracing::debug!(error = %e, "IMAP ID failed");
        }
        Ok(session)
    }
}
