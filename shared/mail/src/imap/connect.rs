//! Opening an IMAP connection: TCP, then TLS from the first byte (implicit) or after STARTTLS,
//! with the caller's rustls configuration, and the server's greeting read.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Client;
use async_imap::imap_proto::{Response, Status};
use mailroom_core::domain::{MailEndpoint, TlsMode};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::{ImapError, classify_text, connection};
use super::guard::{CapabilityTap, TextGuard};

/// A connection ready to log in, with what the server announced so far.
pub(crate) struct Connected {
    pub client: Client<BoxedIo>,
    /// Keeps listening for the capabilities the login response announces.
    pub tap: CapabilityTap,
    /// The greeting's capabilities (before login; implicit TLS only, since a greeting read
    /// before STARTTLS cannot be trusted).
    pub greeting: Option<Vec<String>>,
}

/// Any byte stream an IMAP session can run over.
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapIo for T {}

/// The boxed stream under every session.
pub type BoxedIo = Box<dyn ImapIo>;

/// Wraps the decrypted stream (tests count the commands a server receives this way).
pub type StreamWrapper = Arc<dyn Fn(BoxedIo) -> BoxedIo + Send + Sync>;

/// How to reach IMAP servers.
#[derive(Clone)]
pub struct ImapConnector {
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) timeout: Duration,
    pub(crate) wrapper: Option<StreamWrapper>,
}

impl Debug for ImapConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapConnector")
            .field("timeout", &self.timeout)
            .field("wrapped", &self.wrapper.is_some())
            .finish()
    }
}

impl ImapConnector {
    /// `tls` is built once by the runtime (it honours `SSL_CERT_FILE`); `timeout` bounds every
    /// network step.
    pub fn new(tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        Self {
            tls,
            timeout,
            wrapper: None,
        }
    }

    /// Runs every decrypted stream through `wrapper`.
    pub fn with_wrapper(mut self, wrapper: StreamWrapper) -> Self {
        self.wrapper = Some(wrapper);
        self
    }

    pub(crate) async fn within<T, F>(&self, during: &str, fut: F) -> Result<T, ImapError>
    where
        F: Future<Output = T>,
    {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ImapError::Timeout {
                during: during.to_owned(),
            })
    }

    /// Connects, secures the connection and reads the greeting.
    pub async fn connect(&self, endpoint: &MailEndpoint) -> Result<Client<BoxedIo>, ImapError> {
        let connected = self.connect_tapped(endpoint).await?;
        connected.tap.stop();
        Ok(connected.client)
    }

    /// [`ImapConnector::connect`], keeping the capabilities the server announces unasked.
    pub(crate) async fn connect_tapped(
        &self,
        endpoint: &MailEndpoint,
    ) -> Result<Connected, ImapError> {
        let server = format!("{}:{}", endpoint.host, endpoint.port);
        let connect_err = |reason: String| ImapError::Connect {
            server: server.clone(),
            reason,
        };
        let tcp = self
            .within(
                "connect",
                TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
            )
            .await?
            .map_err(|e| connect_err(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|_| connect_err("the host is not a valid TLS server name".into()))?;
        let connector = TlsConnector::from(self.tls.clone());
        let tls = match endpoint.tls {
            TlsMode::Implicit => self
                .within("the TLS handshake", connector.connect(name, buffered(tcp)))
                .await?
                .map_err(|e| connect_err(format!("TLS handshake failed: {e}")))?,
            TlsMode::Starttls => {
                let mut plain = Client::new(TextGuard::new(tcp));
                self.greeting(&mut plain).await?;
                self.within("STARTTLS", plain.run_command_and_check_ok("STARTTLS", None))
                    .await?
                    .map_err(|e| ImapError::from_imap("STARTTLS", e))?;
                let tcp = plain.into_inner().into_inner();
                self.within("the TLS handshake", connector.connect(name, buffered(tcp)))
                    .await?
                    .map_err(|e| connect_err(format!("TLS handshake failed: {e}")))?
            }
        };
        // Server text outside literals is made ASCII before the parser sees it (see `guard`).
        let tap = CapabilityTap::new();
        let mut io: BoxedIo = Box::new(TextGuard::with_tap(tls, tap.clone()));
        if let Some(wrap) = &self.wrapper {
            io = wrap(io);
        }
        let mut client = Client::new(io);
        if endpoint.tls == TlsMode::Implicit {
            self.greeting(&mut client).await?;
        }
        let greeting = tap.take();
        Ok(Connected {
            client,
            tap,
            greeting,
        })
    }

    async fn greeting<T>(&self, client: &mut Client<T>) -> Result<(), ImapError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + Debug,
    {
        let greeting = self
            .within("the greeting", client.read_response())
            .await?
            .map_err(|e| connection("the greeting", e.to_string()))?
            .ok_or_else(|| connection("the greeting", "the server closed the connection".into()))?;
        match greeting.parsed() {
            Response::Data {
                status: Status::Ok | Status::PreAuth,
                ..
            } => Ok(()),
            Response::Data { outcome, .. } => {
                let text = outcome.information.as_deref().unwrap_or("refused");
                Err(match classify_text("the greeting", text) {
                    ImapError::Protocol { reason, .. } => ImapError::Connection {
                        during: "the greeting".into(),
                        reason,
                    },
                    other => other,
                })
            }
            _ => Err(ImapError::Protocol {
                during: "the greeting".into(),
                reason: "the server did not start with a greeting".into(),
            }),
        }
    }
}

/// rustls reads the socket 4 KB at a time; a FETCH of whole mailboxes then costs a system call
/// (and often a wake-up) per 4 KB. A 64 KB buffer under TLS reads what has arrived in one go.
fn buffered(tcp: TcpStream) -> BufReader<TcpStream> {
    BufReader::with_capacity(64 * 1024, tcp)
}
