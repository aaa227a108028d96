//! Secrets never leak: every flow (provider settings, connect through the test OAuth provider,
//! token refresh, sync from Dovecot, send through Dovecot submission, bad input) runs with every
//! tracing event of the process captured at TRACE level, and no access token, refresh token,
//! client secret, API key or PKCE verifier (nor its base64 form, as in a SASL XOAUTH2 line)
//! appears in a log line, a response body or header, a stored item's plain attributes, a blob or
//! any file of the data directory.

mod sync_support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use mailroom_core::ExposeSecret;
use mailroom_core::ports::KeyContext;
use mailroom_core::records::hex_encode;
use mailroom_mail::sync::SyncOutcome;
use mailroom_tests::app::TestApp;
use mailroom_tests::faults::{JournalStore, blob_files, logs};
use mailroom_tests::oauth_server::admin_client::OAuthAdmin;
use mailroom_tests::oauth_server::connect::{
    authorize, deliver, location, put_provider, query, start,
};
use reqwest::Method;
use serde_json::{Value, json};
use sync_support::{deliver as lmtp_deliver, message, servers, unique};
use tokio::time::Instant;

/// Every answer the flows got, headers and body, for the leak check.
#[derive(Default)]
struct Answers(Vec<String>);

impl Answers {
    async fn keep(&mut self, response: reqwest::Response) -> (u16, String) {
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap_or_default();
        self.0.push(format!("{headers}\n{body}"));
        (status, body)
    }
}

fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        secret.to_owned(),
        b64.encode(secret),
        url.encode(secret),
        hex_encode(secret),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_answers_or_storage() {
    let captured = logs::capture();
    let s = servers();
    // SAFETY: set before any client of this binary is built; this binary has one test.
    unsafe { std::env::set_var("SSL_CERT_FILE", &s.ca) };
    let admin = OAuthAdmin::from_env();
    let client_id = unique("secret-client-");
    let client_secret = format!("cs-{}", unique("very-secret-"));
    admin.register_client(&client_id, &client_secret).await;

    let journal: Arc<OnceLock<JournalStore>> = Arc::default();
    let slot = journal.clone();
    let app = TestApp::spawn_wrapped(&[], move |mut b| {
        let j = JournalStore::new(b.store);
        b.store = Arc::new(j.clone());
        let _ = slot.set(j);
        b
    })
    .await;
    let journal = journal.get().expect("journal").clone();
    let mut answers = Answers::default();

    // Provider settings: saved, read back, listed.
    let smtp_port: u16 = mailroom_tests::app::server_env("MAILROOM_TEST_SMTP_PORT")
        .parse()
        .expect("port");
    let settings = json!({
        "kind": "oauth2", "client_id": client_id, "client_secret": client_secret,
        "authorize_url": format!("{}/authorize", admin.url), "token_url": format!("{}/token", admin.url),
        "scopes": ["openid", "email", "offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send"],
        "imap": {"host": "localhost", "port": s.imap_port, "tls": "implicit"},
        "smtp": {"host": "localhost", "port": smtp_port, "tls": "starttls"},
    });
    put_provider(&app, "sec", &settings).await;
    for path in ["/v1/providers", "/v1/providers/sec"] {
        answers
            .keep(app.authed(Method::GET, path).send().await.unwrap())
            .await;
    }

    // Connect like a browser; read the PKCE verifier out of the stored state before the callback.
    let email = format!("{}@example.test", unique("sec-"));
    let authorize_url = start(&app, "sec", "owner-s", &email).await;
    let state = query(&authorize_url)["state"].clone();
    let state_item = journal
        .snapshot()
        .await
        .into_values()
        .find(|i| i.key.pk == format!("STATE#{state}"))
        .expect("the state is stored");
    let verifier = app
        .services
        .repo
        .sealer()
        .open_secret(
            &KeyContext::new("oauth_state", &state),
            "pkce_verifier",
            &state_item.sealed["pkce_verifier"],
        )
        .await
        .expect("open the verifier");
    let callback = authorize(&app, &authorize_url).await;
    let code = query(&callback)["code"].clone();
    let response = deliver(&app, &callback).await;
    let account_id = query(&location(&response))["account_id"].clone();
    answers.keep(response).await;
    let first = app
        .services
        .repo
        .get_account(&account_id)
        .await
        .unwrap()
        .unwrap();

    // A forced refresh rotates both tokens.
    let refreshed = app
        .services
        .tokens
        .access_token(&account_id, true)
        .await
        .unwrap();
    let second = app
        .services
        .repo
        .get_account(&account_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        first.tokens.refresh_token.expose_secret(),
        second.tokens.refresh_token.expose_secret()
    );

    // Sync from Dovecot and read the messages through the API.
    lmtp_deliver(&email, &[message("secret", 0, 3)]).await;
    let engine = mailroom_runtime::jobs::sync_engine(&app.services);
    let outcome = engine
        .sync_account(&account_id, Instant::now() + Duration::from_secs(60))
        .await
        .expect("sync");
    assert!(matches!(outcome, SyncOutcome::Synced(_)), "{outcome:?}");
    let (_, list) = answers
        .keep(
            app.authed(Method::GET, &format!("/v1/accounts/{account_id}/messages"))
                .send()
                .await
                .unwrap(),
        )
        .await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let message_id = list["messages"][0]["id"]
        .as_str()
        .expect("a message")
        .to_owned();
    for path in [
        format!("/v1/accounts/{account_id}"),
        "/v1/accounts".to_owned(),
        format!("/v1/accounts/{account_id}/messages/{message_id}"),
        format!("/v1/accounts/{account_id}/messages/{message_id}/raw"),
    ] {
        answers
            .keep(app.authed(Method::GET, &path).send().await.unwrap())
            .await;
    }

    // Send through Dovecot submission (XOAUTH2 with the refreshed token), and read the record.
    let to = format!("{}@example.test", unique("sec-to-"));
    let (status, body) = answers
        .keep(
            app.authed(Method::POST, &format!("/v1/accounts/{account_id}/send"))
                .header("Idempotency-Key", "secret-send")
                .json(&json!({"to": [to], "subject": "s", "text": "t"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    answers
        .keep(
            app.authed(
                Method::GET,
                &format!("/v1/accounts/{account_id}/sends/secret-send"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
    answers
        .keep(
            app.authed(Method::POST, &format!("/v1/accounts/{account_id}/verify"))
                .send()
                .await
                .unwrap(),
        )
        .await;

    // Bad input that carries secrets: wrong keys, settings refused, a replayed callback.
    let wrong_key = format!("{}-but-wrong", app.api_key);
    answers
        .keep(
            app.client()
                .get(app.url("/v1/accounts"))
                .bearer_auth(&wrong_key)
                .send()
                .await
                .unwrap(),
        )
        .await;
    let mut bad = settings.clone();
    bad["token_url"] = json!("http://remote.example/token");
    answers
        .keep(
            app.authed(Method::PUT, "/v1/providers/sec")
                .json(&bad)
                .send()
                .await
                .unwrap(),
        )
        .await;
    answers.keep(deliver(&app, &callback).await).await;
    answers
        .keep(
            app.client()
                .get(app.url(&format!("/v1/oauth/sec/callback?code={code}&state=forged")))
                .send()
                .await
                .unwrap(),
        )
        .await;

    // What must never show.
    let mut secrets = vec![
        ("API key", app.api_key.clone()),
        ("client secret", client_secret.clone()),
        ("PKCE verifier", verifier.expose_secret().to_owned()),
        (
            "access token",
            refreshed.access_token.expose_secret().to_owned(),
        ),
    ];
    for (i, account) in [&first, &second].into_iter().enumerate() {
        secrets.push((
            if i == 0 {
                "first access token"
            } else {
                "second access token"
            },
            account.tokens.access_token.expose_secret().to_owned(),
        ));
        secrets.push((
            if i == 0 {
                "first refresh token"
            } else {
                "second refresh token"
            },
            account.tokens.refresh_token.expose_secret().to_owned(),
        ));
    }
    let logs = captured.text();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "the capture works"
    );
    assert!(logs.contains(&account_id), "the flows did log");
    let files = blob_files(app.data_dir.path());
    assert!(
        // The directory blob store packs raw messages (`.pack`); older data is one `.eml` each.
        files
            .keys()
            .any(|f| f.ends_with(".pack") || f.ends_with(".eml")),
        "a raw message is stored"
    );
    let items = journal.snapshot().await;
    assert!(
        items.keys().any(|k| k.pk.starts_with("ACCOUNT#")),
        "an account is stored"
    );
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is long enough to search for");
        for form in forms(secret) {
            assert!(!logs.contains(&form), "{what} appears in the logs");
            for answer in &answers.0 {
                assert!(
                    !answer.contains(&form),
                    "{what} appears in an answer: {answer}"
                );
            }
            for (key, item) in &items {
                let plain = serde_json::to_string(&item.attributes).unwrap();
                assert!(
                    !plain.contains(&form),
                    "{what} in the attributes of {}/{}",
                    key.pk,
                    key.sk
                );
                for sealed in item.sealed.values() {
                    assert!(
                        !contains(sealed, form.as_bytes()),
                        "{what} in plaintext in {}/{}",
                        key.pk,
                        key.sk
                    );
                }
            }
            for (file, bytes) in &files {
                assert!(
                    !contains(bytes, form.as_bytes()),
                    "{what} in the file {file}"
                );
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
