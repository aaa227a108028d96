//! Exactly-once sending and input validation against the real Dovecot submission server: a
//! replay returns the first result, a reused key with another body is refused, concurrent
//! duplicates deliver once, and invalid input (header injection above all) sends and stores
//! nothing.

mod send_support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailroom_core::domain::{SendRecord, SendStatus};
use mailroom_core::records::SendClaim;
use mailroom_core::time::now_unix;
use send_support::{Sender, inbox, inbox_with, new_email};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_returns_the_first_result_and_a_changed_body_is_refused() {
    let sender = Sender::create(None, None, &[]).await;
    let bob = new_email();
    let body = json!({"to": [bob], "subject": "once", "text": "only once"});
    let first = sender.send(Some("same-key"), &body).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();

    // The same request with its keys in another order is the same request.
    let reordered = json!({"text": "only once", "subject": "once", "to": [bob]});
    let again = sender.send(Some("same-key"), &reordered).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replay"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["message_id"], first["message_id"]);
    assert_eq!(again["status"], "sent");

    let changed = json!({"to": [bob], "subject": "once", "text": "something else"});
    let conflict = sender.send(Some("same-key"), &changed).await;
    assert_eq!(conflict.status(), 409);
    let problem: Value = conflict.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "urn:mailroom:problem:idempotency-key-reused"
    );

    // Dovecot answers the data only once the relay delivered it: what was sent is in the box.
    assert_eq!(inbox_with(&bob, 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_deliver_once() {
    let sender = Sender::create(None, None, &[]).await;
    let bob = new_email();
    let body = json!({"to": [bob], "subject": "race", "text": "raced"});
    let attempts = (0..6).map(|_| sender.send(Some("race-key"), &body));
    let responses = futures::future::join_all(attempts).await;
    let mut fresh = 0;
    let mut replays = 0;
    let mut in_progress = 0;
    for r in responses {
        match (
            r.status().as_u16(),
            r.headers().contains_key("idempotent-replay"),
        ) {
            (200, false) => fresh += 1,
            (200, true) => replays += 1,
            (409, _) => {
                let p: Value = r.json().await.unwrap();
                assert_eq!(p["type"], "urn:mailroom:problem:send-in-progress");
                in_progress += 1;
            }
            (other, _) => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(fresh, 1, "exactly one request sends");
    assert_eq!(fresh + replays + in_progress, 6);
    assert_eq!(inbox_with(&bob, 1).await.len(), 1);

    // A key claimed by a request still sending: a duplicate is told so and sends nothing.
    let carol = new_email();
    let body = json!({"to": [carol], "text": "pending"});
    let now = now_unix();
    let claim = SendRecord {
        account_id: sender.account_id.clone(),
        idempotency_key: "held-key".into(),
        request_hash: serde_json::from_value::<mailroom_mail::compose::SendRequest>(body.clone())
            .unwrap()
            .canonical_hash(),
        status: SendStatus::Pending,
        message_id: None,
        accepted: vec![],
        rejected: vec![],
        error: None,
        created_at: now,
        updated_at: now,
    };
    let claimed = sender.app.services.repo.claim_send(&claim).await.unwrap();
    assert!(matches!(claimed, SendClaim::Claimed(_)));
    let r = sender.send(Some("held-key"), &body).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(inbox(&carol).await.is_empty());

    // A claim left pending by a process that died mid-send (older than any Lambda may run)
    // may have sent: it reads as uncertain and is never sent again.
    let old = now - mailroom_mail::smtp::STALE_PENDING_SECONDS - 60;
    let abandoned = SendRecord {
        idempotency_key: "abandoned-key".into(),
        created_at: old,
        updated_at: old,
        ..claim
    };
    sender
        .app
        .services
        .repo
        .claim_send(&abandoned)
        .await
        .unwrap();
    let (status, record) = sender.record("abandoned-key").await;
    assert_eq!(
        (status, record["status"].as_str()),
        (200, Some("uncertain"))
    );
    let r = sender.send(Some("abandoned-key"), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["idempotent-replay"], "true");
    let replay: Value = r.json().await.unwrap();
    assert_eq!(replay["status"], "uncertain");
    assert!(inbox(&carol).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_send_and_store_nothing() {
    let sender = Sender::create(
        None,
        None,
        &[("MAILROOM_SEND_MAX_ATTACHMENT_BYTES", "1024")],
    )
    .await;
    let bob = new_email();
    let attachment = |bytes: usize| {
        json!({"filename": "a.bin", "content_type": "application/octet-stream",
               "content_base64": STANDARD.encode(vec![1u8; bytes])})
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "inject-subject",
            json!({"to": [bob], "subject": "Hi\r\nBcc: evil@example.test", "text": "x"}),
            400,
            "subject",
        ),
        (
            "inject-to",
            json!({"to": [format!("{bob}\r\nBcc: evil@example.test")], "text": "x"}),
            400,
            "to[0]",
        ),
        (
            "inject-name",
            json!({"to": [{"address": bob, "name": "B\nX-Evil: 1"}], "text": "x"}),
            400,
            "to[0].name",
        ),
        (
            "inject-header",
            json!({"to": [bob], "text": "x", "headers": {"X-Note": "a\r\nBcc: e@example.test"}}),
            400,
            "headers.X-Note",
        ),
        (
            "forbidden-header",
            json!({"to": [bob], "text": "x", "headers": {"Return-Path": "<e@example.test>"}}),
            400,
            "headers.Return-Path",
        ),
        ("no-recipients", json!({"to": [], "text": "x"}), 400, "to"),
        (
            "bad-address",
            json!({"to": ["not-an-address"], "text": "x"}),
            400,
            "to[0]",
        ),
        (
            "bad-base64",
            json!({"to": [bob], "attachments": [
            {"filename": "report.pdf", "content_type": "application/pdf", "content_base64": "###"}]}),
            400,
            "attachments[0].content_base64",
        ),
        (
            "too-large",
            json!({"to": [bob], "text": "x", "attachments": [attachment(800), attachment(800)]}),
            413,
            "",
        ),
        (
            "unknown-field",
            json!({"to": [bob], "text": "x", "priority": "high"}),
            422,
            "",
        ),
    ];
    for (key, body, status, field) in cases {
        let response = sender.send(Some(key), &body).await;
        assert_eq!(response.status().as_u16(), status, "{key}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{key}"
        );
        let problem: Value = response.json().await.unwrap();
        if !field.is_empty() {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("{key}: {problem}"))
                .iter()
                .filter_map(|e| e["field"].as_str())
                .collect();
            assert!(fields.contains(&field), "{key}: {problem}");
        }
        if key == "bad-base64" {
            assert!(
                problem["detail"].as_str().unwrap().contains("report.pdf"),
                "{problem}"
            );
        }
        assert_eq!(sender.record(key).await.0, 404, "{key}: nothing stored");
    }
    // A body over API Gateway's 10 MB limit is refused before it is parsed.
    let huge = json!({"to": [bob], "text": "x".repeat(10 * 1024 * 1024 + 1)});
    let response = sender.send(Some("huge"), &huge).await;
    assert_eq!(response.status(), 413);
    assert_eq!(sender.record("huge").await.0, 404);

    // Without an idempotency key nothing happens either.
    let response = sender.send(None, &json!({"to": [bob], "text": "x"})).await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );

    // An unknown account is a 404.
    let response = sender
        .app
        .authed(reqwest::Method::POST, "/v1/accounts/acct-missing/send")
        .header("Idempotency-Key", "k")
        .json(&json!({"to": [bob], "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // A valid message right at the attachment limit goes out, proving the sender works.
    let ok = json!({"to": [bob], "text": "x", "attachments": [attachment(1024)]});
    assert_eq!(sender.send(Some("at-limit"), &ok).await.status(), 200);
    assert_eq!(inbox_with(&bob, 1).await.len(), 1);
}
