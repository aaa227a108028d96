//! Sending through the real Dovecot submission server and reading the mail back over IMAP:
//! content and encodings, reply threading, expired and long tokens, revoked grants, and the
//! connect-time preflight.

mod send_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_parser::{MessageParser, MimeHeaders};
use mailroom_core::domain::{AccountStatus, MessageMeta};
use mailroom_core::records::MessageKey;
use secrecy::ExposeSecret;
use send_support::{Sender, inbox, inbox_with, new_email, oauth_admin, unique};
use serde_json::{Value, json};

fn simple(to: &str, subject: &str) -> Value {
    json!({"to": [to], "subject": subject, "text": "hello"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rich_message_arrives_intact() {
    let sender = Sender::create(None, None, &[]).await;
    let (bob, carol, dave) = (new_email(), new_email(), new_email());
    let png: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let pdf: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let body = json!({
        "to": [{"address": bob, "name": "Bób Ünïcode"}],
        "cc": [format!("Carol <{carol}>")],
        "bcc": [dave],
        "subject": "Grüße aus Köln – 日本語のテスト",
        "text": "Plain body ✓\nsecond line",
        "html": "<p>HTML body ✓ <img src=\"cid:logo@mailroom\"></p>",
        "reply_to": "replies@example.test",
        "headers": {"X-Campaign": "q4-launch"},
        "attachments": [
            {"filename": "logo.png", "content_type": "image/png",
             "content_base64": STANDARD.encode(&png), "content_id": "logo@mailroom"},
            {"filename": "Bericht für März – 2026.pdf", "content_type": "application/pdf",
             "content_base64": STANDARD.encode(&pdf)}
        ]
    });
    let response = sender.send(Some("rich-1"), &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("idempotent-replay").is_none());
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent["status"], "sent");
    let message_id = sent["message_id"].as_str().unwrap().to_owned();
    assert!(message_id.ends_with("@example.test>"), "{message_id}");
    let mut accepted: Vec<String> = serde_json::from_value(sent["accepted"].clone()).unwrap();
    accepted.sort();
    let mut expected = vec![bob.clone(), carol.clone(), dave.clone()];
    expected.sort();
    assert_eq!(accepted, expected);

    let mail = inbox_with(&bob, 1).await;
    assert_eq!(mail.len(), 1);
    let raw = &mail[0];
    let m = MessageParser::default().parse(raw).unwrap();
    assert_eq!(m.subject(), Some("Grüße aus Köln – 日本語のテスト"));
    assert_eq!(
        Some(format!("<{}>", m.message_id().unwrap())),
        Some(message_id.clone())
    );
    assert_eq!(
        m.from().unwrap().first().unwrap().address(),
        Some(sender.email.as_str())
    );
    let to = m.to().unwrap().first().unwrap();
    assert_eq!(
        (to.name(), to.address()),
        (Some("Bób Ünïcode"), Some(bob.as_str()))
    );
    assert_eq!(
        m.cc().unwrap().first().unwrap().address(),
        Some(carol.as_str())
    );
    assert_eq!(
        m.reply_to().unwrap().first().unwrap().address(),
        Some("replies@example.test")
    );
    assert!(m.date().is_some());
    assert!(m.header("Bcc").is_none(), "Bcc must not reach recipients");
    assert!(
        !String::from_utf8_lossy(raw).contains(&dave),
        "the Bcc address leaked"
    );
    assert_eq!(m.header_raw("X-Campaign").map(str::trim), Some("q4-launch"));
    // Mail bodies travel with CRLF line ends.
    assert_eq!(
        m.body_text(0).map(|t| t.replace("\r\n", "\n")).as_deref(),
        Some("Plain body ✓\nsecond line")
    );
    assert!(m.body_html(0).unwrap().contains("HTML body ✓"));
    let parts: Vec<_> = m.attachments().collect();
    assert_eq!(parts.len(), 2);
    let logo = parts
        .iter()
        .find(|p| p.content_id() == Some("logo@mailroom"))
        .unwrap();
    assert_eq!(logo.contents(), &png[..]);
    let report = parts
        .iter()
        .find(|p| p.attachment_name() == Some("Bericht für März – 2026.pdf"))
        .expect("the non-ASCII filename survives");
    assert_eq!(report.contents(), &pdf[..]);

    // Cc and Bcc recipients got the same message.
    for other in [&carol, &dave] {
        let got = inbox_with(other, 1).await;
        let parsed = MessageParser::default().parse(&got[0]).unwrap();
        assert_eq!(
            Some(format!("<{}>", parsed.message_id().unwrap())),
            Some(message_id.clone())
        );
    }

    let (status, record) = sender.record("rich-1").await;
    assert_eq!(status, 200);
    assert_eq!(record["status"], "sent");
    assert_eq!(record["message_id"], message_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_carries_the_threading_headers() {
    let sender = Sender::create(None, None, &[]).await;
    let bob = new_email();
    let key = MessageKey::new("INBOX", 7, 42);
    let parent = MessageMeta {
        id: key.message_id(),
        account_id: sender.account_id.clone(),
        folder: "INBOX".into(),
        uid_validity: 7,
        uid: 42,
        message_id_header: Some("parent-1@example.test".into()),
        references: vec!["root-1@example.test".into()],
        subject: Some("Quarterly numbers".into()),
        blob_key: key.blob_key(&sender.account_id),
        parsed: true,
        ..Default::default()
    };
    sender
        .app
        .services
        .repo
        .put_messages(&[parent])
        .await
        .unwrap();

    let body =
        json!({"to": [bob], "text": "Looks good", "in_reply_to_message_id": key.message_id()});
    let response = sender.send(Some("reply-1"), &body).await;
    assert_eq!(response.status(), 200);
    let m_raw = inbox_with(&bob, 1).await;
    let m = MessageParser::default().parse(&m_raw[0]).unwrap();
    assert_eq!(m.subject(), Some("Re: Quarterly numbers"));
    assert_eq!(m.in_reply_to().as_text(), Some("parent-1@example.test"));
    let refs: Vec<String> = m
        .references()
        .as_text_list()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(refs, vec!["root-1@example.test", "parent-1@example.test"]);

    // A message that is not stored is refused before anything is sent.
    let missing = MessageKey::new("INBOX", 7, 43).message_id();
    let body = json!({"to": [bob], "text": "x", "in_reply_to_message_id": missing});
    let response = sender.send(Some("reply-2"), &body).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:invalid-reply-target");
    assert_eq!(sender.record("reply-2").await.0, 404);
    assert_eq!(inbox(&bob).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_and_a_long_token_works() {
    // A 5,000-character access token: the AUTH line would be ~6.7 KB, so it goes in two steps.
    let sender = Sender::create(None, Some(5000), &[]).await;
    let before = sender
        .account()
        .await
        .tokens
        .access_token
        .expose_secret()
        .to_owned();
    assert!(before.len() >= 5000);
    let bob = new_email();
    let response = sender
        .send(Some("long-1"), &simple(&bob, "long token"))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(inbox_with(&bob, 1).await.len(), 1);

    // The provider now considers the stored token expired although its expiry is in the future.
    oauth_admin("/admin/expire", json!({"email": sender.email})).await;
    let response = sender
        .send(Some("expired-1"), &simple(&bob, "after expiry"))
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let mail = inbox_with(&bob, 2).await;
    let subjects: Vec<String> = mail
        .iter()
        .map(|raw| {
            MessageParser::default()
                .parse(raw)
                .unwrap()
                .subject()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        subjects.contains(&"after expiry".to_owned()),
        "{subjects:?}"
    );
    let account = sender.account().await;
    assert_ne!(
        account.tokens.access_token.expose_secret(),
        before.as_str(),
        "the token was refreshed"
    );
    assert_eq!(account.status, AccountStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_marks_the_account_and_sends_nothing() {
    let sender = Sender::create(None, None, &[]).await;
    let bob = new_email();
    oauth_admin("/admin/revoke", json!({"email": sender.email})).await;
    let response = sender.send(Some("revoked-1"), &simple(&bob, "never")).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:reauth-required");
    assert_eq!(problem["send_status"], "failed");
    assert_eq!(sender.account().await.status, AccountStatus::ReauthRequired);
    let (_, record) = sender.record("revoked-1").await;
    assert_eq!(record["status"], "failed");
    assert!(inbox(&bob).await.is_empty());

    // The account is now known to be unusable: refused up front, nothing claimed.
    let response = sender.send(Some("revoked-2"), &simple(&bob, "never")).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:account-inactive");
    assert_eq!(sender.record("revoked-2").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preflight_checks_both_logins_and_is_kept_on_the_account() {
    let sender = Sender::create(None, None, &[]).await;
    let response = sender
        .app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/accounts/{}/verify", sender.account_id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["preflight"]["imap"], "ok", "{body}");
    assert_eq!(body["preflight"]["smtp"], "ok", "{body}");
    assert!(body["preflight"].get("fix").is_none());

    let shown: Value = sender
        .app
        .authed(
            reqwest::Method::GET,
            &format!("/v1/accounts/{}", sender.account_id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = shown.get("account").unwrap_or(&shown);
    assert_eq!(account["preflight"]["imap"], "ok", "{shown}");
    assert_eq!(account["preflight"]["smtp"], "ok", "{shown}");
    assert!(account["preflight"]["checked_at"].is_string());

    let unknown = sender
        .app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/accounts/{}/verify", unique("nope-")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_queues_the_preflight_then_the_mailbox_sends() {
    use mailroom_core::ports::JobKind;
    use mailroom_tests::oauth_server::connect::{
        connect_mailbox, provider_settings_at, put_provider,
    };

    send_support::trust_test_ca();
    let mut app = mailroom_tests::app::TestApp::spawn().await;
    let oauth = mailroom_tests::app::server_env("MAILROOM_TEST_OAUTH_URL");
    let settings =
        provider_settings_at(&oauth, send_support::imap_port(), send_support::smtp_port());
    put_provider(&app, "dovecot", &settings).await;
    let email = new_email();
    let account_id = connect_mailbox(&app, "dovecot", "owner-send", &email).await;

    // The callback queued a Verify job; run it as the worker does.
    let jobs = app.jobs.as_mut().expect("in-process queue");
    let job = tokio::time::timeout(std::time::Duration::from_secs(5), jobs.recv())
        .await
        .expect("a job was queued")
        .expect("the queue is open");
    assert_eq!(
        (job.account_id.as_str(), job.kind),
        (account_id.as_str(), JobKind::Verify)
    );
    let services = &app.services;
    let report = mailroom_mail::smtp::preflight(
        &services.repo,
        services.tokens.as_ref(),
        services.tls.clone(),
        &job.account_id,
    )
    .await
    .expect("preflight");
    assert_eq!((report.imap.as_str(), report.smtp.as_str()), ("ok", "ok"));
    let shown: Value = app
        .authed(reqwest::Method::GET, &format!("/v1/accounts/{account_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["preflight"]["smtp"], "ok", "{shown}");

    let bob = new_email();
    let response = app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/accounts/{account_id}/send"),
        )
        .header("Idempotency-Key", unique("k-"))
        .json(&simple(&bob, "from a connected mailbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let m = MessageParser::default()
        .parse(&inbox_with(&bob, 1).await[0])
        .unwrap()
        .subject()
        .map(str::to_owned);
    assert_eq!(m.as_deref(), Some("from a connected mailbox"));
}
