//! Send latency through the local Dovecot submission server: our whole handler
//! (`POST /v1/accounts/{id}/send`: HTTP, account and token reads, validation, MIME build,
//! idempotency claim, SMTP session, record write) against a raw SMTP session doing the same
//! SMTP work (connect, STARTTLS, AUTH XOAUTH2, MAIL/RCPT/DATA, QUIT) with a pre-built message.
//! Needs the test servers (`tests/run`, or `tests/servers/*.sh` and their env file).
//!
//! `cargo bench -p mailroom-tests --bench send_bench [-- <messages>]` (default 200 each).

#[path = "../tests/send_support/mod.rs"]
mod send_support;

use std::time::{Duration, Instant};

use mailroom_mail::compose::{Limits, SendRequest, build, validate};
use mailroom_mail::smtp::{DeliveryOutcome, SmtpConnector};
use send_support::{Sender, new_email};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn row(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 95.0)),
        ms(mean),
        ms(samples[samples.len() - 1]),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let sender = Sender::create(None, None, &[]).await;
    let services = sender.app.services.clone();
    let provider = services
        .repo
        .get_provider(&sender.account().await.provider_id)
        .await
        .expect("provider")
        .expect("provider exists");
    let connector = SmtpConnector::new(services.tls.clone(), Duration::from_secs(20));
    let to = new_email();
    let body =
        json!({"to": [to], "subject": "bench", "text": "A short benchmark message.\n".repeat(20)});
    let request: SendRequest = serde_json::from_value(body.clone()).expect("request");
    let sender_address = sender.email.parse().expect("sender address");
    let composed = build(
        &validate(&request, &Limits::default()).expect("valid"),
        &sender_address,
        None,
        std::time::SystemTime::now(),
    )
    .expect("message");

    let raw_once = || async {
        let grant = services
            .tokens
            .access_token(&sender.account_id, false)
            .await
            .expect("token");
        let started = Instant::now();
        let mut session = connector.connect(&provider.smtp).await.expect("connect");
        session
            .authenticate(&grant.email, &grant.access_token)
            .await
            .expect("auth");
        let delivery = session
            .deliver(
                &composed.envelope_from,
                &composed.recipients,
                &composed.bytes,
            )
            .await;
        session.quit().await;
        assert!(matches!(delivery.outcome, DeliveryOutcome::Sent { .. }));
        started.elapsed()
    };
    // One HTTP client for the whole run, as a real caller keeps one.
    let client = sender.app.client();
    let url = sender
        .app
        .url(&format!("/v1/accounts/{}/send", sender.account_id));
    let handler_once = |i: usize| {
        let (client, url, api_key, body) = (&client, &url, &sender.app.api_key, &body);
        async move {
            let key = format!("bench-{i}");
            let started = Instant::now();
            let response = client
                .post(url)
                .bearer_auth(api_key)
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .await
                .expect("send request");
            let elapsed = started.elapsed();
            assert_eq!(response.status(), 200, "{:?}", response.text().await);
            elapsed
        }
    };

    // Warm up both paths (TLS session caches, Dovecot's auth processes, the store file).
    for i in 0..10 {
        handler_once(1_000_000 + i).await;
        raw_once().await;
    }
    let (mut handler, mut raw) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let wall = Instant::now();
    // Interleaved, so both see the same machine load.
    for i in 0..count {
        handler.push(handler_once(i).await);
        raw.push(raw_once().await);
    }
    let wall = wall.elapsed();
    println!("| path | messages | p50 ms | p95 ms | mean ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        row("handler (`POST /v1/accounts/{id}/send`)", handler)
    );
    println!("{}", row("raw SMTP session (same SMTP work)", raw));
    println!("\n{} messages in {:.1} s", 2 * count, wall.as_secs_f64());
}
