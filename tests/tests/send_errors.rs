//! SMTP replies Dovecot cannot produce, from a scripted server over TLS: Microsoft's
//! `535 5.7.139` (SMTP AUTH disabled for the tenant), a 421 at MAIL, recipients refused with
//! 550, and a connection cut after the message data (uncertain, never re-sent); plus the
//! retry rule for a send that failed before any data left.

mod send_support;

use send_support::{Script, ScriptedSmtp, Sender, new_email};
use serde_json::{Value, json};

fn body(to: &str) -> Value {
    json!({"to": [to], "subject": "scripted", "text": "hello"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_disabled_for_the_tenant_names_the_admin_fix() {
    let server = ScriptedSmtp::start(Script {
        auth: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
        ..Script::default()
    })
    .await;
    let sender = Sender::create(Some(server.endpoint.clone()), None, &[]).await;
    let tokens_before = sender.account().await.tokens.access_token;
    let response = sender.send(Some("tenant-1"), &body(&new_email())).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:smtp-auth-disabled");
    let fix = problem["fix"].as_str().unwrap();
    assert!(
        fix.contains("Set-TransportConfig -SmtpClientAuthenticationDisabled $false"),
        "{fix}"
    );
    assert!(fix.contains("Set-CASMailbox"), "{fix}");
    assert!(
        problem["server_reply"]
            .as_str()
            .unwrap()
            .contains("5.7.139")
    );
    // The token was not the problem: no refresh, no second login, and nothing was sent.
    let auths = server
        .commands()
        .iter()
        .filter(|c| c.starts_with("AUTH"))
        .count();
    assert_eq!(auths, 1);
    assert!(!server.saw("MAIL"));
    // The token is kept (not refreshed) and the account shows the problem with its fix at once.
    use secrecy::ExposeSecret;
    let account = sender.account().await;
    assert_eq!(
        account.tokens.access_token.expose_secret(),
        tokens_before.expose_secret()
    );
    assert_eq!(account.status, mailroom_core::domain::AccountStatus::Active);
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
    assert_eq!(
        shown["preflight"]["smtp"], "auth_disabled_for_tenant",
        "{shown}"
    );
    assert!(
        shown["preflight"]["fix"]
            .as_str()
            .unwrap()
            .contains("Set-CASMailbox")
    );
    let (_, record) = sender.record("tenant-1").await;
    assert_eq!(record["status"], "failed");

    // The preflight finds the same before any send: IMAP (Dovecot) fine, SMTP disabled.
    let report: Value = sender
        .app
        .authed(
            reqwest::Method::POST,
            &format!("/v1/accounts/{}/verify", sender.account_id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["preflight"]["imap"], "ok", "{report}");
    assert_eq!(
        report["preflight"]["smtp"], "auth_disabled_for_tenant",
        "{report}"
    );
    assert!(
        report["preflight"]["fix"]
            .as_str()
            .unwrap()
            .contains("Set-TransportConfig")
    );
    let stored = &sender.account().await.extra["preflight"];
    assert_eq!(stored["smtp"], "auth_disabled_for_tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_refusal_is_retryable_and_a_retry_may_send() {
    let busy = ScriptedSmtp::start(Script {
        mail: "421 4.3.2 Service not available, closing transmission channel",
        ..Script::default()
    })
    .await;
    let sender = Sender::create(Some(busy.endpoint.clone()), None, &[]).await;
    let to = new_email();
    let response = sender.send(Some("busy-1"), &body(&to)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "60");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["server_code"], 421);
    assert_eq!(problem["send_status"], "failed");
    assert_eq!(*busy.messages.lock().unwrap(), 0);

    // Failed before any data: the same key may send once the server is back.
    let fine = ScriptedSmtp::start(Script::default()).await;
    let mut provider = sender
        .app
        .services
        .repo
        .get_provider(&sender.account().await.provider_id)
        .await
        .unwrap()
        .unwrap();
    let expected = provider.version;
    provider.smtp = fine.endpoint.clone();
    provider.version += 1;
    sender
        .app
        .services
        .repo
        .put_provider(&provider, Some(expected))
        .await
        .unwrap();
    let response = sender.send(Some("busy-1"), &body(&to)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("idempotent-replay").is_none());
    assert_eq!(*fine.messages.lock().unwrap(), 1);
    // Now it is sent: a third request is a replay and sends nothing.
    let response = sender.send(Some("busy-1"), &body(&to)).await;
    assert_eq!(response.headers()["idempotent-replay"], "true");
    assert_eq!(*fine.messages.lock().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_recipients_are_reported_with_the_servers_text() {
    let server = ScriptedSmtp::start(Script {
        rcpt: "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown",
        ..Script::default()
    })
    .await;
    let sender = Sender::create(Some(server.endpoint.clone()), None, &[]).await;
    let response = sender
        .send(Some("rcpt-1"), &body("nobody@example.test"))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:recipients-rejected");
    assert_eq!(problem["server_code"], 550);
    assert!(
        problem["server_reply"]
            .as_str()
            .unwrap()
            .contains("User unknown"),
        "{problem}"
    );
    assert!(
        !server.saw("DATA"),
        "no data for a message without recipients"
    );
    let (_, record) = sender.record("rcpt-1").await;
    assert_eq!(record["status"], "failed");
    assert!(
        record["rejected"][0]
            .as_str()
            .unwrap()
            .contains("nobody@example.test")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_after_the_data_is_uncertain_and_never_resent() {
    let server = ScriptedSmtp::start(Script {
        data_end: None,
        ..Script::default()
    })
    .await;
    let sender = Sender::create(Some(server.endpoint.clone()), None, &[]).await;
    let to = new_email();
    let response = sender.send(Some("cut-1"), &body(&to)).await;
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["status"], "uncertain");
    assert!(
        result["detail"]
            .as_str()
            .unwrap()
            .contains("will not be sent again")
    );
    assert_eq!(*server.messages.lock().unwrap(), 1);

    let response = sender.send(Some("cut-1"), &body(&to)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["idempotent-replay"], "true");
    let replay: Value = response.json().await.unwrap();
    assert_eq!(replay["status"], "uncertain");
    assert_eq!(replay["message_id"], result["message_id"]);
    assert_eq!(*server.messages.lock().unwrap(), 1, "never re-sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_even_fresh_marks_the_account_for_reauth() {
    use base64::Engine as _;
    // Gmail's way: an error challenge, an empty answer, then 535 5.7.8.
    let challenge = base64::engine::general_purpose::STANDARD
        .encode(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
    let server = ScriptedSmtp::start(Script {
        auth_challenge: Some(Box::leak(challenge.into_boxed_str())),
        auth: "535 5.7.8 Username and Password not accepted",
        ..Script::default()
    })
    .await;
    let sender = Sender::create(Some(server.endpoint.clone()), None, &[]).await;
    let before = sender.account().await;
    let response = sender.send(Some("gmail-1"), &body(&new_email())).await;
    assert_eq!(response.status(), 409);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mailroom:problem:reauth-required");
    // One login with the stored token, one with a refreshed one, each challenge answered empty.
    let commands = server.commands();
    assert_eq!(commands.iter().filter(|c| c.starts_with("AUTH")).count(), 2);
    assert_eq!(
        commands
            .iter()
            .filter(|c| *c == "challenge answer \"\\r\\n\"")
            .count(),
        2,
        "{commands:?}"
    );
    assert!(!server.saw("MAIL"));
    let after = sender.account().await;
    assert_eq!(
        after.status,
        mailroom_core::domain::AccountStatus::ReauthRequired
    );
    assert!(after.status_reason.unwrap().contains("5.7.8"));
    use secrecy::ExposeSecret;
    assert_ne!(
        after.tokens.access_token.expose_secret(),
        before.tokens.access_token.expose_secret(),
        "the token was refreshed before giving up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_never_sees_the_token() {
    use mailroom_core::domain::{MailEndpoint, TlsMode};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    // A plain-text server that does not offer STARTTLS (or a downgrade by someone in between).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut io = BufReader::new(tcp);
                let _ = io.get_mut().write_all(b"220 plain ESMTP\r\n").await;
                let mut line = String::new();
                while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                    log.lock().unwrap().push(line.trim_end().to_owned());
                    let reply: &[u8] = if line.to_ascii_uppercase().starts_with("EHLO") {
                        b"250-plain\r\n250 AUTH XOAUTH2\r\n"
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = io.get_mut().write_all(reply).await;
                    line.clear();
                }
            });
        }
    });
    let endpoint = MailEndpoint {
        host: "localhost".into(),
        port,
        tls: TlsMode::Starttls,
    };
    let sender = Sender::create(Some(endpoint), None, &[]).await;
    let response = sender.send(Some("plain-1"), &body(&new_email())).await;
    assert_eq!(response.status(), 502);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("STARTTLS"),
        "{problem}"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|l| !l.to_ascii_uppercase().starts_with("AUTH")),
        "{seen:?}"
    );
    assert_eq!(sender.record("plain-1").await.1["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_the_one_line_login_gets_the_two_step_form() {
    let server = ScriptedSmtp::start(Script {
        refuse_initial_response: true,
        ..Script::default()
    })
    .await;
    let sender = Sender::create(Some(server.endpoint.clone()), None, &[]).await;
    let response = sender.send(Some("form-1"), &body(&new_email())).await;
    assert_eq!(response.status(), 200);
    let auths: Vec<String> = server
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("AUTH"))
        .collect();
    assert_eq!(auths, vec!["AUTH XOAUTH2 ***", "AUTH XOAUTH2"]);
    assert_eq!(*server.messages.lock().unwrap(), 1);
}
