//! Support for the send tests: the real Dovecot submission server (XOAUTH2 checked by the test
//! OAuth server, submitted mail relayed into the recipients' mailboxes), a sending account per
//! test, the recipients' INBOX read back over IMAP, and a scripted SMTP server for the replies
//! Dovecot cannot give (Microsoft's `535 5.7.139`, 421, recipient refusals, a cut after DATA).

#![allow(dead_code)]

mod scripted;

// Not every test binary (nor the bench) uses the scripted server.
#[allow(unused_imports)]
pub use scripted::{Script, ScriptedSmtp};

use std::sync::{Arc, Once};
use std::time::Duration;

use mailroom_core::domain::{
    Account, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
};
use mailroom_core::records::Repository;
use mailroom_core::time::now_unix;
use mailroom_mail::imap::ImapConnector;
use mailroom_tests::app::{TestApp, server_env};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use serde_json::{Value, json};

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

pub fn smtp_port() -> u16 {
    server_env("MAILROOM_TEST_SMTP_PORT")
        .parse()
        .expect("MAILROOM_TEST_SMTP_PORT is a port")
}

pub fn imap_port() -> u16 {
    server_env("MAILROOM_TEST_IMAP_PORT")
        .parse()
        .expect("MAILROOM_TEST_IMAP_PORT is a port")
}

/// Makes the app's TLS trust the test CA the way production trusts a private CA: through
/// `SSL_CERT_FILE`. `tests/run` exports it; when a test runs with only the servers' env file
/// sourced, it is set here once, before any test of the binary builds a client.
pub fn trust_test_ca() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let ca = server_env("MAILROOM_TEST_CA");
        if std::env::var("SSL_CERT_FILE").ok().as_deref() == Some(ca.as_str()) {
            return;
        }
        // SAFETY: every test calls this first and `Once` makes the others wait, so no thread of
        // this binary reads the environment while it is written.
        unsafe { std::env::set_var("SSL_CERT_FILE", ca) };
    });
}

/// A client TLS configuration trusting the test CA (for reading mail back).
pub fn test_tls() -> Arc<ClientConfig> {
    mailroom_runtime::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server_env("MAILROOM_TEST_CA")).expect("test CA") {
        roots.add(cert.expect("a PEM certificate")).expect("add CA");
    }
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Calls the test OAuth server's admin API.
pub async fn oauth_admin(path: &str, body: Value) -> Value {
    let url = format!("{}{path}", server_env("MAILROOM_TEST_OAUTH_URL"));
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

pub fn new_email() -> String {
    format!("{}@example.test", unique("user-"))
}

/// One test's sender: an app, provider settings pointing at the test servers (or at `smtp`) and
/// an account holding tokens issued for a fresh user.
pub struct Sender {
    pub app: TestApp,
    pub email: String,
    pub account_id: String,
}

/// Stores provider settings pointing at the test servers (or at `smtp`) and an account holding
/// tokens issued for a fresh user; returns the user's address and the account id.
pub async fn seed_account(
    repo: &Repository,
    smtp: Option<MailEndpoint>,
    token_len: Option<usize>,
) -> (String, String) {
    let oauth = server_env("MAILROOM_TEST_OAUTH_URL");
    let email = new_email();
    let mut issue = json!({"email": email});
    if let Some(len) = token_len {
        issue["access_token_len"] = json!(len);
    }
    let issued = oauth_admin("/admin/issue", issue).await;
    let now = now_unix();
    let provider = ProviderSettings {
        id: unique("prov-"),
        kind: ProviderKind::OAuth2,
        client_id: "mailroom-send-tests".into(),
        client_secret: SecretString::from("test-secret"),
        tenant: None,
        cloud: None,
        authorize_url: format!("{oauth}/authorize"),
        token_url: format!("{oauth}/token"),
        scopes: vec!["openid".into(), "email".into()],
        imap: MailEndpoint {
            host: "localhost".into(),
            port: imap_port(),
            tls: TlsMode::Implicit,
        },
        smtp: smtp.unwrap_or(MailEndpoint {
            host: "localhost".into(),
            port: smtp_port(),
            tls: TlsMode::Starttls,
        }),
        status: ProviderStatus::Ok,
        status_reason: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    repo.put_provider(&provider, None).await.expect("provider");
    let account = mailroom_tests::fixtures::account_with_issued_tokens(
        unique("acct-"),
        "send-tests",
        &provider.id,
        &email,
        &issued,
        now,
        Default::default(),
    );
    repo.create_account(&account).await.expect("account");
    (email, account.id)
}

impl Sender {
    pub async fn create(
        smtp: Option<MailEndpoint>,
        token_len: Option<usize>,
        vars: &[(&str, &str)],
    ) -> Self {
        trust_test_ca();
        let app = TestApp::spawn_with(vars).await;
        let (email, account_id) = seed_account(&app.services.repo, smtp, token_len).await;
        Sender {
            app,
            email,
            account_id,
        }
    }

    /// `POST /v1/accounts/{id}/send`.
    pub async fn send(&self, key: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self
            .app
            .authed(
                reqwest::Method::POST,
                &format!("/v1/accounts/{}/send", self.account_id),
            )
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("send request")
    }

    /// `GET /v1/accounts/{id}/sends/{key}`: status and body.
    pub async fn record(&self, key: &str) -> (u16, Value) {
        let r = self
            .app
            .authed(
                reqwest::Method::GET,
                &format!("/v1/accounts/{}/sends/{key}", self.account_id),
            )
            .send()
            .await
            .expect("record request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn account(&self) -> Account {
        self.app
            .services
            .repo
            .get_account(&self.account_id)
            .await
            .expect("read account")
            .expect("account exists")
    }
}

/// Every message in `email`'s INBOX, raw, in UID order.
pub async fn inbox(email: &str) -> Vec<Vec<u8>> {
    let issued = oauth_admin("/admin/issue", json!({"email": email})).await;
    let token = SecretString::from(issued["access_token"].as_str().expect("token").to_owned());
    let endpoint = MailEndpoint {
        host: "localhost".into(),
        port: imap_port(),
        tls: TlsMode::Implicit,
    };
    let connector = ImapConnector::new(test_tls(), Duration::from_secs(30));
    let mut session = connector
        .open_session(&endpoint, email, &token)
        .await
        .expect("IMAP login as the recipient");
    session.open("INBOX").await.expect("select INBOX");
    let uids = session.uid_search("ALL").await.expect("search");
    let mut out = Vec::new();
    if !uids.is_empty() {
        session
            .start_fetch("1:*", "(UID BODY.PEEK[])")
            .await
            .expect("fetch");
        while let Some(m) = session.next_fetched().await.expect("fetched") {
            out.push(m.body.expect("body").to_vec());
        }
    }
    session.logout().await;
    out
}

/// `email`'s INBOX once it holds at least `n` messages (delivery is relayed, so it may lag the
/// submission's reply by a moment).
pub async fn inbox_with(email: &str, n: usize) -> Vec<Vec<u8>> {
    for _ in 0..100 {
        let mail = inbox(email).await;
        if mail.len() >= n {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{email} did not receive {n} message(s)");
}
