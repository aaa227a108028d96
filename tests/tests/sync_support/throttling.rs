//! A TLS IMAP server that logs anyone in and then throttles every mailbox command the way
//! Exchange Online does (`BAD Request is throttled. Suggested Backoff Time: N milliseconds`).
//! Dovecot cannot be made to answer that, so this small server stands in for Outlook's reply;
//! it uses the test CA's server certificate, so the client's TLS checks run as usual.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A running throttling server; stops when dropped.
pub struct ThrottlingServer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ThrottlingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ThrottlingServer {
    /// Serves on a free loopback port with Dovecot's test certificate (`tls_dir` holds
    /// `server.crt` and `server.key`), asking clients to back off for `backoff_ms`.
    pub async fn start(tls_dir: &str, backoff_ms: u64) -> Self {
        let acceptor = test_acceptor(tls_dir);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = serve(tls, backoff_ms).await;
                    }
                });
            }
        });
        ThrottlingServer { port, task }
    }
}

/// A TLS acceptor with Dovecot's test certificate (`tls_dir` holds `server.crt` and
/// `server.key`), so clients trusting the test CA connect as to Dovecot.
pub fn test_acceptor(tls_dir: &str) -> TlsAcceptor {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{tls_dir}/server.crt"))
            .expect("read the test certificate")
            .map(|c| c.expect("a PEM certificate"))
            .collect();
    let key =
        PrivateKeyDer::from_pem_file(format!("{tls_dir}/server.key")).expect("read the test key");
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server TLS configuration");
    TlsAcceptor::from(Arc::new(config))
}

async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    backoff_ms: u64,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(tls);
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"* OK Fake Exchange ready\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split(' ');
        let (tag, verb) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\n{tag} OK done\r\n"),
            "AUTHENTICATE" => {
                write.write_all(b"+ \r\n").await?;
                // The XOAUTH2 response: accepted whatever it is.
                lines.next_line().await?;
                format!("{tag} OK AUTHENTICATE completed.\r\n")
            }
            "LOGOUT" => {
                write
                    .write_all(format!("* BYE\r\n{tag} OK LOGOUT completed.\r\n").as_bytes())
                    .await?;
                return Ok(());
            }
            _ => format!(
                "{tag} BAD Request is throttled. Suggested Backoff Time: {backoff_ms} milliseconds\r\n"
            ),
        };
        write.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}
