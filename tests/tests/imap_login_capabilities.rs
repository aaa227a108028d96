//! Which commands a session sends around login, against small stand-ins for the servers that
//! cannot run on loopback, counted on the decrypted stream: Gmail announces its capabilities in
//! an untagged CAPABILITY before the AUTHENTICATE OK (so no CAPABILITY command) and gets ID; an
//! Outlook-like server announces none, gets no ID, and STATUS needs no CAPABILITY when the
//! caller hints CONDSTORE from earlier syncs; a hint the server refuses costs one CAPABILITY and
//! a second STATUS, never a failure. (Dovecot's `[CAPABILITY ...]` in the tagged OK is covered
//! against the real server in `sync_imap_commands.rs`.)

mod sync_support;

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::domain::{MailEndpoint, TlsMode};
use mailroom_mail::imap::{ImapConnector, ImapSession};
use mailroom_tests::counting::imap::ImapTally;
use secrecy::SecretString;
use sync_support::throttling::test_acceptor;
use sync_support::{servers, test_tls};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const GMAIL_CAPS: &str = "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 \
UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS \
LITERAL- SPECIAL-USE APPENDLIMIT=35651584";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Untagged CAPABILITY before the tagged OK of AUTHENTICATE; CONDSTORE; answers ID.
    Gmail,
    /// Nothing announced at login; no CONDSTORE (STATUS HIGHESTMODSEQ is a BAD).
    Outlook,
}

/// Serves one kind of server on a loopback port over the test CA's certificate.
async fn start(kind: Server) -> u16 {
    let tls_dir = format!(
        "{}/tls",
        mailroom_tests::app::server_env("MAILROOM_TEST_DOVECOT_DIR")
    );
    let acceptor = test_acceptor(&tls_dir);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = serve(tls, kind).await;
                }
            });
        }
    });
    port
}

async fn serve(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    kind: Server,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(tls);
    let mut lines = BufReader::new(read).lines();
    let caps = match kind {
        Server::Gmail => GMAIL_CAPS,
        Server::Outlook => {
            "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT \
CHILDREN IDLE NAMESPACE LITERAL+"
        }
    };
    write.write_all(b"* OK server ready\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let mut parts = line.splitn(3, ' ');
        let (tag, verb) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let args = parts.next().unwrap_or("");
        let reply = match (verb.to_ascii_uppercase().as_str(), kind) {
            ("AUTHENTICATE", Server::Gmail) => {
                format!("* CAPABILITY {caps}\r\n{tag} OK user authenticated (Success)\r\n")
            }
            ("AUTHENTICATE", Server::Outlook) => format!("{tag} OK AUTHENTICATE completed.\r\n"),
            ("CAPABILITY", _) => format!("* CAPABILITY {caps}\r\n{tag} OK CAPABILITY done\r\n"),
            ("ID", Server::Gmail) => {
                format!(
                    "* ID (\"name\" \"GImap\" \"vendor\" \"Google, Inc.\")\r\n{tag} OK Success\r\n"
                )
            }
            ("STATUS", Server::Outlook) if args.contains("HIGHESTMODSEQ") => {
                format!("{tag} BAD Command Argument Error. 11\r\n")
            }
            ("STATUS", Server::Gmail) => format!(
                "* STATUS \"INBOX\" (UIDNEXT 4 UIDVALIDITY 11 MESSAGES 3 HIGHESTMODSEQ 99)\r\n\
{tag} OK Success\r\n"
            ),
            ("STATUS", Server::Outlook) => format!(
                "* STATUS INBOX (UIDNEXT 4 UIDVALIDITY 11 MESSAGES 3)\r\n{tag} OK STATUS completed.\r\n"
            ),
            ("LOGOUT", _) => {
                write
                    .write_all(format!("* BYE\r\n{tag} OK LOGOUT completed.\r\n").as_bytes())
                    .await?;
                return Ok(());
            }
            _ => format!("{tag} BAD unsupported\r\n"),
        };
        write.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

async fn session(port: u16, tally: &Arc<ImapTally>) -> ImapSession {
    let connector = ImapConnector::new(test_tls(&servers().ca), Duration::from_secs(10))
        .with_wrapper(tally.wrapper());
    connector
        .open_session(
            &MailEndpoint {
                host: "localhost".into(),
                port,
                tls: TlsMode::Implicit,
            },
            "user@example.test",
            &SecretString::from("token"),
        )
        .await
        .expect("log in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_announces_its_capabilities_at_login_and_gets_id() {
    let port = start(Server::Gmail).await;
    let tally = Arc::new(ImapTally::default());
    let mut s = session(port, &tally).await;
    assert!(s.capabilities_known());
    assert!(s.gmail() && s.condstore());
    let status = s.status("INBOX").await.expect("STATUS");
    assert_eq!(status.highest_modseq, Some(99));
    s.logout().await;
    assert_eq!(tally.commands(), ["AUTHENTICATE", "ID", "STATUS", "LOGOUT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_announces_nothing_is_asked_only_when_needed_and_gets_no_id() {
    let port = start(Server::Outlook).await;

    // A sync whose cursors never saw HIGHESTMODSEQ: STATUS needs no capabilities.
    let tally = Arc::new(ImapTally::default());
    let mut s = session(port, &tally).await;
    assert!(!s.capabilities_known());
    s.hint_condstore(false);
    let status = s.status("INBOX").await.expect("STATUS");
    assert_eq!((status.uid_next, status.uid_validity), (4, 11));
    assert_eq!(status.highest_modseq, None);
    s.logout().await;
    assert_eq!(tally.commands(), ["AUTHENTICATE", "STATUS", "LOGOUT"]);

    // Without a hint, STATUS has to know whether CONDSTORE is there.
    let tally = Arc::new(ImapTally::default());
    let mut s = session(port, &tally).await;
    s.status("INBOX").await.expect("STATUS");
    assert!(s.capabilities_known() && !s.condstore() && !s.gmail());
    s.logout().await;
    assert_eq!(
        tally.commands(),
        ["AUTHENTICATE", "CAPABILITY", "STATUS", "LOGOUT"]
    );

    // A wrong hint (the server refuses HIGHESTMODSEQ): asked once more, right this time.
    let tally = Arc::new(ImapTally::default());
    let mut s = session(port, &tally).await;
    s.hint_condstore(true);
    let status = s
        .status("INBOX")
        .await
        .expect("STATUS after a refused hint");
    assert_eq!((status.uid_next, status.highest_modseq), (4, None));
    s.logout().await;
    assert_eq!(
        tally.commands(),
        ["AUTHENTICATE", "STATUS", "CAPABILITY", "STATUS", "LOGOUT"]
    );
}
