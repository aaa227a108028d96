//! The process-wide TLS client configuration resumes sessions: a warm worker's second connection
//! to the same mail host skips the certificate chain check and most of the handshake (a no-change
//! poll is CPU-bound on Lambda, COST.md). Checked against the real Dovecot over implicit TLS,
//! with the configuration the functions build (`mailroom_runtime::tls::client_config`, trusting
//! `SSL_CERT_FILE`).

use rustls::HandshakeKind;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Connects, reads the greeting (which also takes in the server's session tickets) and says how
/// the handshake went.
async fn connect_once(connector: &TlsConnector, port: u16) -> HandshakeKind {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to Dovecot");
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let kind = tls.get_ref().1.handshake_kind().expect("handshake done");
    let mut greeting = String::new();
    BufReader::new(tls)
        .read_line(&mut greeting)
        .await
        .expect("read the greeting");
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    kind
}

#[tokio::test]
async fn a_second_connection_to_the_same_host_resumes_the_tls_session() {
    let port: u16 = std::env::var("MAILROOM_TEST_IMAP_PORT")
        .expect("MAILROOM_TEST_IMAP_PORT (run through tests/run)")
        .parse()
        .expect("a port");
    let ca = std::env::var("MAILROOM_TEST_CA").expect("MAILROOM_TEST_CA");
    // SAFETY: this test binary has one test and sets the variable before any thread reads it.
    unsafe { std::env::set_var("SSL_CERT_FILE", ca) };
    let config = mailroom_runtime::tls::client_config().expect("TLS config");
    let connector = TlsConnector::from(config);

    assert_eq!(connect_once(&connector, port).await, HandshakeKind::Full);
    for round in 0..3 {
        assert_eq!(
            connect_once(&connector, port).await,
            HandshakeKind::Resumed,
            "connection {} after the first",
            round + 1
        );
    }
    // A configuration of its own (another process) starts with a full handshake again.
    let fresh = TlsConnector::from(mailroom_runtime::tls::client_config().expect("TLS config"));
    assert_eq!(connect_once(&fresh, port).await, HandshakeKind::Full);
}
