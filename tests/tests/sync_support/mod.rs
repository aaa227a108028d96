//! Support for the sync tests: the real Dovecot and test OAuth server started by `tests/run`, a
//! mailbox per test (unique user), mail delivered over LMTP or appended over IMAP, a recorder of
//! the IMAP commands Dovecot receives, and a TCP proxy that can cut or hold a connection.

#![allow(dead_code)]

pub mod gmail;
mod net;
mod store;
pub mod throttling;

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::domain::{
    Account, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
};
use mailroom_core::time::now_unix;
use mailroom_mail::imap::{ImapConnector, StreamWrapper};
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncReport, SyncSettings};
use mailroom_tests::app::{TestApp, server_env};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

// Each test binary uses its own share of the support module.
#[allow(unused_imports)]
pub use net::{CommandLog, Proxy, ProxyMode};
#[allow(unused_imports)]
pub use store::CountingStore;

/// The test servers' coordinates, from the env file `tests/run` sources.
pub struct Servers {
    pub imap_port: u16,
    pub lmtp_port: u16,
    pub oauth_url: String,
    pub ca: String,
}

pub fn servers() -> Servers {
    let port = |name: &str| -> u16 {
        server_env(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a port"))
    };
    Servers {
        imap_port: port("MAILROOM_TEST_IMAP_PORT"),
        lmtp_port: port("MAILROOM_TEST_LMTP_PORT"),
        oauth_url: server_env("MAILROOM_TEST_OAUTH_URL"),
        ca: server_env("MAILROOM_TEST_CA"),
    }
}

/// A client TLS configuration trusting only the test CA.
pub fn test_tls(ca: &str) -> Arc<ClientConfig> {
    mailroom_runtime::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read the test CA") {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("add the test CA");
    }
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

/// Calls the test OAuth server's admin API.
pub async fn oauth_admin(path: &str, body: Value) -> Value {
    let url = format!("{}{path}", servers().oauth_url);
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("reach the test OAuth server");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("admin JSON")
}

/// One test's mailbox: a unique Dovecot user, an app with embedded backends, provider settings
/// pointing at the test servers and an account holding tokens issued for the user.
pub struct Mailbox {
    pub app: TestApp,
    pub email: String,
    pub account_id: String,
    pub provider_id: String,
    pub tls: Arc<ClientConfig>,
}

impl Mailbox {
    /// `imap_port` lets a test route IMAP through a proxy; `token_len` sets the access token size.
    pub async fn create(imap_port: Option<u16>, token_len: Option<usize>, extra: Value) -> Self {
        let s = servers();
        let app = TestApp::spawn().await;
        let email = format!("{}@example.test", unique("user-"));
        let mut issue = json!({"email": email});
        if let Some(len) = token_len {
            issue["access_token_len"] = json!(len);
        }
        let issued = oauth_admin("/admin/issue", issue).await;
        let now = now_unix();
        let provider_id = unique("prov-");
        let provider = ProviderSettings {
            id: provider_id.clone(),
            kind: ProviderKind::OAuth2,
            client_id: "mailroom-sync-tests".into(),
            client_secret: SecretString::from("test-secret"),
            tenant: None,
            cloud: None,
            authorize_url: format!("{}/authorize", s.oauth_url),
            token_url: format!("{}/token", s.oauth_url),
            scopes: vec!["openid".into(), "email".into()],
            imap: MailEndpoint {
                host: "localhost".into(),
                port: imap_port.unwrap_or(s.imap_port),
                tls: TlsMode::Implicit,
            },
            smtp: MailEndpoint {
                host: "localhost".into(),
                port: 587,
                tls: TlsMode::Starttls,
            },
            status: ProviderStatus::Ok,
            status_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        app.services
            .repo
            .put_provider(&provider, None)
            .await
            .expect("store provider settings");
        let account_id = unique("acct-");
        let account = mailroom_tests::fixtures::account_with_issued_tokens(
            account_id.clone(),
            "sync-tests",
            &provider_id,
            &email,
            &issued,
            now,
            extra.as_object().cloned().unwrap_or_default(),
        );
        app.services
            .repo
            .create_account(&account)
            .await
            .expect("create the account");
        Mailbox {
            app,
            email,
            account_id,
            provider_id,
            tls: test_tls(&s.ca),
        }
    }

    /// A sync engine whose store requests go through `store` (a wrapper of the app's store).
    pub fn engine_over(
        &self,
        store: Arc<dyn mailroom_core::ports::ItemStore>,
        settings: SyncSettings,
        wrapper: Option<StreamWrapper>,
    ) -> SyncEngine {
        let repo =
            mailroom_core::records::Repository::new(store, self.app.services.repo.sealer().clone());
        let mut connector = ImapConnector::new(self.tls.clone(), Duration::from_secs(30));
        if let Some(w) = wrapper {
            connector = connector.with_wrapper(w);
        }
        let services = &self.app.services;
        SyncEngine::new(
            repo,
            services.blobs.clone(),
            services.tokens.clone(),
            connector,
            settings,
        )
    }

    /// A sync engine over the app's store and tokens that keeps raw messages in `blobs` (a
    /// decorated or separately opened blob store).
    pub fn engine_with_blobs(
        &self,
        blobs: Arc<dyn mailroom_core::ports::BlobStore>,
        settings: SyncSettings,
    ) -> SyncEngine {
        let services = &self.app.services;
        SyncEngine::new(
            services.repo.clone(),
            blobs,
            services.tokens.clone(),
            ImapConnector::new(self.tls.clone(), Duration::from_secs(30)),
            settings,
        )
    }

    /// A sync engine over the app's services; `wrapper` sees the decrypted IMAP stream.
    pub fn engine(&self, settings: SyncSettings, wrapper: Option<StreamWrapper>) -> SyncEngine {
        let mut connector = ImapConnector::new(self.tls.clone(), Duration::from_secs(30));
        if let Some(w) = wrapper {
            connector = connector.with_wrapper(w);
        }
        let services = &self.app.services;
        SyncEngine::new(
            services.repo.clone(),
            services.blobs.clone(),
            services.tokens.clone(),
            connector,
            settings,
        )
    }

    pub async fn account(&self) -> Account {
        self.app
            .services
            .repo
            .get_account(&self.account_id)
            .await
            .expect("read the account")
            .expect("the account exists")
    }

    /// Every stored message of a folder, newest first.
    pub async fn stored(&self, folder: &str) -> Vec<mailroom_core::domain::MessageMeta> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .app
                .services
                .repo
                .list_messages(&self.account_id, folder, cursor.as_deref(), 200)
                .await
                .expect("list messages");
            out.extend(page.messages);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }

    /// An IMAP session as the mailbox's user, straight to Dovecot (to append, rename…).
    pub async fn admin_session(&self) -> mailroom_mail::imap::ImapSession {
        let s = servers();
        let issued = oauth_admin("/admin/issue", json!({"email": self.email})).await;
        let token = SecretString::from(issued["access_token"].as_str().expect("token").to_owned());
        ImapConnector::new(self.tls.clone(), Duration::from_secs(30))
            .open_session(
                &MailEndpoint {
                    host: "localhost".into(),
                    port: s.imap_port,
                    tls: TlsMode::Implicit,
                },
                &self.email,
                &token,
            )
            .await
            .expect("admin IMAP session")
    }
}

/// A test message with a unique Message-ID.
pub fn message(tag: &str, i: usize, body_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender <sender@example.test>\r\nTo: rcpt@example.test\r\nSubject: {tag} {i}\r\n\
Message-ID: <{tag}-{i}@example.test>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    for line in 0..body_lines {
        m.push_str(&format!(
            "{tag} message {i}, line {line}: lorem ipsum dolor sit amet\r\n"
        ));
    }
    m.into_bytes()
}

async fn lmtp_reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, expect: &str) {
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("LMTP reply");
        assert!(
            line.starts_with(expect),
            "LMTP: expected {expect}, got {line:?}"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    }
}

/// Delivers messages into `to`'s INBOX over Dovecot's LMTP, in one session.
pub async fn deliver(to: &str, messages: &[Vec<u8>]) {
    let stream = TcpStream::connect(("127.0.0.1", servers().lmtp_port))
        .await
        .expect("connect to LMTP");
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    lmtp_reply(&mut reader, "220").await;
    write.write_all(b"LHLO tests\r\n").await.expect("LHLO");
    lmtp_reply(&mut reader, "250").await;
    for m in messages {
        write
            .write_all(
                format!("MAIL FROM:<sender@example.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes(),
            )
            .await
            .expect("envelope");
        lmtp_reply(&mut reader, "250").await;
        lmtp_reply(&mut reader, "250").await;
        lmtp_reply(&mut reader, "354").await;
        let mut data = Vec::with_capacity(m.len() + 8);
        for line in m.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                data.push(b'.');
            }
            data.extend_from_slice(line);
        }
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        data.extend_from_slice(b".\r\n");
        write.write_all(&data).await.expect("message data");
        lmtp_reply(&mut reader, "250").await;
    }
    write.write_all(b"QUIT\r\n").await.expect("QUIT");
}

/// The time limit a test gives one sync: generous, as Dovecot and the tests share two cores
/// with builds; a sync that hangs still fails the test instead of stalling the suite.
pub fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(120)
}

/// The default sync settings with `batch_size` messages per FETCH, so a small mailbox still
/// takes several batches.
pub fn settings(batch_size: usize) -> SyncSettings {
    SyncSettings {
        batch_size,
        ..SyncSettings::default()
    }
}

/// Runs one sync of `account_id` that must succeed (`what` names it in the failure).
pub async fn sync_ok(engine: &SyncEngine, account_id: &str, what: &str) -> SyncReport {
    match engine.sync_account(account_id, deadline()).await {
        Ok(SyncOutcome::Synced(report)) => report,
        other => panic!("{what}: expected a successful sync, got {other:?}"),
    }
}
