//! SMTP faults between Mailroom and the real Dovecot submission server, through the
//! TLS-terminating fault proxy (Mailroom speaks implicit TLS to it; it speaks STARTTLS to
//! Dovecot): the connection cut before DATA (safe: retried with the same key, sent once), cut
//! after the data before the reply (`uncertain`, never sent twice), `421` (retryable), and one
//! recipient of two refused with `550` (sent to the other, the refusal reported).

mod send_support;

use std::time::Duration;

use mailroom_core::domain::{MailEndpoint, TlsMode};
use mailroom_tests::faults::{Action, FaultProxy, Plan, Rule, Upstream};
use send_support::{Sender, inbox, inbox_with, new_email, smtp_port};
use serde_json::{Value, json};

async fn setup() -> (FaultProxy, Sender) {
    send_support::trust_test_ca();
    let proxy = FaultProxy::start(smtp_port(), Upstream::SmtpStartTls).await;
    let endpoint = MailEndpoint {
        host: "localhost".into(),
        port: proxy.port,
        tls: TlsMode::Implicit,
    };
    let sender = Sender::create(Some(endpoint), None, &[]).await;
    (proxy, sender)
}

/// The recipient's INBOX after the relay had time to deliver anything in flight.
async fn settled_inbox(email: &str) -> Vec<Vec<u8>> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    inbox(email).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_before_data_is_retried_with_the_same_key_and_sent_once() {
    let (proxy, sender) = setup().await;
    let to = new_email();
    let body = json!({"to": [to], "subject": "cut before data", "text": "once"});
    proxy.push(Plan::rule("DATA", Action::Cut));
    let response = sender.send(Some("cut-before"), &body).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:unavailable");
    assert_eq!(problem["send_status"], "failed");
    assert!(settled_inbox(&to).await.is_empty(), "nothing was sent");

    let response = sender.send(Some("cut-before"), &body).await;
    assert_eq!(response.status(), 200);
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent["status"], "sent");
    assert_eq!(inbox_with(&to, 1).await.len(), 1);
    let replay = sender.send(Some("cut-before"), &body).await;
    assert_eq!(replay.headers()["idempotent-replay"], "true");
    assert_eq!(settled_inbox(&to).await.len(), 1, "sent exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_after_the_data_is_uncertain_and_the_message_arrives_once() {
    let (proxy, sender) = setup().await;
    let to = new_email();
    let body = json!({"to": [to], "subject": "cut after data", "text": "maybe"});
    proxy.push(Plan::rule(Rule::END_OF_DATA, Action::ForwardThenCut));
    let response = sender.send(Some("cut-after"), &body).await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["status"], "uncertain", "{first}");
    // Dovecot got the whole message: it arrives, once.
    assert_eq!(inbox_with(&to, 1).await.len(), 1);
    for _ in 0..2 {
        let again = sender.send(Some("cut-after"), &body).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.headers()["idempotent-replay"], "true");
        let replay: Value = again.json().await.unwrap();
        assert_eq!(replay["status"], "uncertain");
        assert_eq!(replay["message_id"], first["message_id"]);
    }
    assert_eq!(settled_inbox(&to).await.len(), 1, "never sent twice");
    assert_eq!(proxy.accepted(), 1, "the replays opened no connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_421_is_retryable_and_one_refused_recipient_does_not_stop_the_others() {
    let (proxy, sender) = setup().await;
    let to = new_email();
    proxy.push(Plan::rule(
        "RCPT TO",
        Action::ReplyThenClose(
            "421 4.3.2 Service shutting down, closing transmission channel".into(),
        ),
    ));
    let response = sender
        .send(Some("busy"), &json!({"to": [to], "text": "x"}))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["server_code"], 421, "{problem}");
    assert_eq!(problem["send_status"], "failed");
    assert!(settled_inbox(&to).await.is_empty());

    // One of two recipients refused by the server: the other gets the message.
    let good = new_email();
    let bad = new_email();
    proxy.push(Plan::rule(
        &format!("RCPT TO:<{bad}>"),
        Action::Reply("550 5.1.1 <bad>: Recipient address rejected: User unknown".into()),
    ));
    let response = sender
        .send(
            Some("partial"),
            &json!({"to": [good, bad], "text": "partial"}),
        )
        .await;
    let status = response.status().as_u16();
    let result: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "sent");
    assert_eq!(result["accepted"], json!([good]));
    assert!(
        result["rejected"][0]
            .as_str()
            .unwrap_or_default()
            .contains(&bad),
        "{result}"
    );
    assert_eq!(inbox_with(&good, 1).await.len(), 1);
    assert!(settled_inbox(&bad).await.is_empty());
}
