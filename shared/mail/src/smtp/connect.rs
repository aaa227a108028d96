//! Opening an SMTP session: TCP, then TLS from the first byte (implicit, port 465) or after
//! STARTTLS (port 587), always with the process's rustls configuration (which honours
//! `SSL_CERT_FILE`), then lettre's async SMTP client on the encrypted stream.
//!
//! lettre 0.11 builds its own rustls configuration for STARTTLS and cannot take ours, so the
//! short plain-text prelude (greeting, EHLO, STARTTLS) is spoken here and lettre receives the
//! stream already encrypted. Authentication never happens before TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use mailroom_core::domain::{MailEndpoint, TlsMode};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::{SmtpError, short};
use super::session::SmtpSession;

/// How to reach SMTP servers.
#[derive(Clone)]
pub struct SmtpConnector {
    tls: Arc<ClientConfig>,
    timeout: Duration,
    hello: ClientId,
}

impl std::fmt::Debug for SmtpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConnector")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpConnector {
    /// `tls` is the runtime's client configuration; `timeout` bounds every network step.
    pub fn new(tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        Self {
            tls,
            timeout,
            hello: ClientId::default(),
        }
    }

    pub(crate) async fn within<T, F>(&self, during: &str, fut: F) -> Result<T, SmtpError>
    where
        F: Future<Output = T>,
    {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| SmtpError::Timeout {
                during: during.to_owned(),
            })
    }

    /// Connects, secures the connection and sends EHLO; the session is ready to authenticate.
    pub async fn connect(&self, endpoint: &MailEndpoint) -> Result<SmtpSession, SmtpError> {
        let server = format!("{}:{}", endpoint.host, endpoint.port);
        let connect_err = |reason: String| SmtpError::Connect {
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
        let stream = match endpoint.tls {
            TlsMode::Implicit => {
                let tls = self
                    .within("the TLS handshake", connector.connect(name, tcp))
                    .await?
                    .map_err(|e| connect_err(format!("TLS handshake failed: {e}")))?;
                Greeted::new(tls, None)
            }
            TlsMode::Starttls => {
                let tcp = self
                    .within("STARTTLS", self.starttls_prelude(tcp))
                    .await??;
                let tls = self
                    .within("the TLS handshake", connector.connect(name, tcp))
                    .await?
                    .map_err(|e| connect_err(format!("TLS handshake failed: {e}")))?;
                // The server greeted before STARTTLS; lettre expects a greeting first.
                Greeted::new(tls, Some(b"220 STARTTLS complete\r\n"))
            }
        };
        let conn = self
            .within(
                "the greeting and EHLO",
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
            )
            .await?
            .map_err(|e| SmtpError::from_lettre("the greeting and EHLO", &e))?;
        Ok(SmtpSession::new(conn, self.clone()))
    }

    /// Greeting, EHLO and STARTTLS in plain text; returns the TCP stream ready for the handshake.
    async fn starttls_prelude(&self, tcp: TcpStream) -> Result<TcpStream, SmtpError> {
        let mut reader = BufReader::new(tcp);
        expect_reply(&mut reader, "the greeting", 220).await?;
        let hello = format!("EHLO {}\r\n", self.hello);
        send(&mut reader, hello.as_bytes(), "EHLO").await?;
        let lines = expect_reply(&mut reader, "EHLO", 250).await?;
        let offers_starttls = lines.iter().any(|l| {
            l.get(4..)
                .is_some_and(|kw| kw.trim().eq_ignore_ascii_case("STARTTLS"))
        });
        if !offers_starttls {
            return Err(SmtpError::NoStartTls);
        }
        send(&mut reader, b"STARTTLS\r\n", "STARTTLS").await?;
        expect_reply(&mut reader, "STARTTLS", 220).await?;
        // Anything the server sent after its 220 would be plain text injected into the TLS
        // session (the STARTTLS command-injection attack): refuse rather than read it.
        if !reader.buffer().is_empty() {
            return Err(SmtpError::Protocol {
                during: "STARTTLS".into(),
                reason: "the server sent data before the TLS handshake".into(),
            });
        }
        Ok(reader.into_inner())
    }
}

async fn send(
    stream: &mut BufReader<TcpStream>,
    line: &[u8],
    during: &str,
) -> Result<(), SmtpError> {
    let io = stream.get_mut();
    io.write_all(line)
        .await
        .map_err(|e| SmtpError::Connection {
            during: during.to_owned(),
            reason: e.to_string(),
        })?;
    io.flush().await.map_err(|e| SmtpError::Connection {
        during: during.to_owned(),
        reason: e.to_string(),
    })
}

/// Reads one (possibly multi-line) reply and requires `code`; returns its lines.
async fn expect_reply(
    reader: &mut BufReader<TcpStream>,
    during: &str,
    code: u16,
) -> Result<Vec<String>, SmtpError> {
    const MAX_LINES: usize = 100;
    const MAX_LINE: u64 = 4096;
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = AsyncReadExt::take(&mut *reader, MAX_LINE)
            .read_line(&mut line)
            .await
            .map_err(|e| SmtpError::Connection {
                during: during.to_owned(),
                reason: e.to_string(),
            })?;
        if n == 0 {
            return Err(SmtpError::Connection {
                during: during.to_owned(),
                reason: "the server closed the connection".into(),
            });
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        let got: Option<u16> = line.get(..3).and_then(|c| c.parse().ok());
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if lines.len() > MAX_LINES {
            return Err(SmtpError::Protocol {
                during: during.to_owned(),
                reason: "the reply is too long".into(),
            });
        }
        if last {
            let text = short(
                &lines
                    .iter()
                    .map(|l| l.get(4..).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            return match got {
                Some(c) if c == code => Ok(lines),
                Some(c) if c >= 400 => Err(SmtpError::from_reply(during, c, text)),
                _ => Err(SmtpError::Protocol {
                    during: during.to_owned(),
                    reason: format!("expected {code}, got {}", short(&lines.join(" "))),
                }),
            };
        }
    }
}

/// The TLS stream, replaying a synthetic greeting first when the real one was read before
/// STARTTLS (lettre's client always starts by reading a greeting).
#[derive(Debug)]
struct Greeted {
    inner: TlsStream<TcpStream>,
    pending: &'static [u8],
}

impl Greeted {
    fn new(inner: TlsStream<TcpStream>, greeting: Option<&'static [u8]>) -> Self {
        Self {
            inner,
            pending: greeting.unwrap_or(b""),
        }
    }
}

impl AsyncTokioStream for Greeted {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Greeted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.remaining());
            buf.put_slice(&self.pending[..n]);
            self.pending = &self.pending[n..];
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Greeted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
