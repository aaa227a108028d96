//! Send latency through the local Dovecot submission server: our whole handler
//! (`POST /v1/accounts/{id}/send`: HTTP, account and token reads, validation, MIME build,
//! idempotency claim, SMTP session, record write) against a raw SMTP session doing the same
//! SMTP work (connect, STARTTLS, AUTH XOAUTH2, MAIL/RCPT/DATA) with a pre-built message, and
//! nodemailer (`bench/peers/nodemailer_send.mjs`, a new connection per message) as the peer, all
//! three interleaved message by message against the same server, so they see the same load.
//! The raw and nodemailer samples end when the server has accepted the data (nodemailer does
//! not wait for the QUIT reply; the raw session's QUIT is sent after the clock stops).
//! Needs the test servers (`tests/run`, or `tests/servers/*.sh` and their env file), and node
//! with `npm install` run in `bench/peers` for the peer (skipped, with a note, without it).
//!
//! `cargo bench -p mailroom-tests --bench send_bench [-- <messages>]` (default 200 each).

#[path = "../tests/send_support/mod.rs"]
mod send_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mailroom_mail::compose::{Limits, SendRequest, build, validate};
use mailroom_mail::smtp::{DeliveryOutcome, SmtpConnector};
use secrecy::ExposeSecret;
use send_support::{Sender, new_email};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// nodemailer in its line-driven mode: one message per line written, its latency read back.
struct Nodemailer {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Nodemailer {
    /// Starts the peer, or says why it cannot run (then the run goes on without it).
    async fn start(host: &str, port: u16, user: &str, token: &str) -> Result<Self, String> {
        let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/peers");
        if !peers.join("node_modules/nodemailer").is_dir() {
            return Err(format!("run `npm install` in {}", peers.display()));
        }
        let ca = std::env::var("MAILROOM_TEST_CA").map_err(|_| "MAILROOM_TEST_CA is not set")?;
        let mut child = Command::new("node")
            .arg(peers.join("nodemailer_send.mjs"))
            .args([host, &port.to_string(), &ca, user, "serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("node's pipes are missing".into());
        };
        // The token goes over stdin, never on a command line.
        stdin
            .write_all(format!("{token}\n").as_bytes())
            .await
            .map_err(|e| format!("cannot talk to node: {e}"))?;
        Ok(Self {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    async fn send_one(&mut self) -> Duration {
        self.stdin
            .write_all(b"send\n")
            .await
            .expect("write to node");
        let line = self
            .stdout
            .next_line()
            .await
            .expect("read from node")
            .expect("node answered");
        let ms: f64 = line.trim().parse().expect("a latency in ms");
        Duration::from_secs_f64(ms / 1000.0)
    }
}

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
        let elapsed = started.elapsed();
        session.quit().await;
        assert!(matches!(delivery.outcome, DeliveryOutcome::Sent { .. }));
        elapsed
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

    let grant = services
        .tokens
        .access_token(&sender.account_id, false)
        .await
        .expect("token");
    let mut peer = match Nodemailer::start(
        &provider.smtp.host,
        provider.smtp.port,
        &grant.email,
        grant.access_token.expose_secret(),
    )
    .await
    {
        Ok(peer) => Some(peer),
        Err(why) => {
            eprintln!("nodemailer peer skipped: {why}");
            None
        }
    };

    // Warm up every path (TLS session caches, Dovecot's auth processes, the store file, node).
    for i in 0..10 {
        handler_once(1_000_000 + i).await;
        raw_once().await;
        if let Some(peer) = peer.as_mut() {
            peer.send_one().await;
        }
    }
    let (mut handler, mut raw, mut nodemailer) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    let wall = Instant::now();
    // Interleaved, so all see the same machine load.
    for i in 0..count {
        handler.push(handler_once(i).await);
        raw.push(raw_once().await);
        if let Some(peer) = peer.as_mut() {
            nodemailer.push(peer.send_one().await);
        }
    }
    let wall = wall.elapsed();
    let ratio = |ours: &[Duration], q: f64| {
        let (mut a, mut b) = (ours.to_vec(), nodemailer.clone());
        a.sort();
        b.sort();
        percentile(&a, q).as_secs_f64() / percentile(&b, q).as_secs_f64()
    };
    let ratios = (!nodemailer.is_empty()).then(|| {
        format!(
            "\nvs nodemailer: handler p50 {:.2}x p95 {:.2}x; raw p50 {:.2}x p95 {:.2}x",
            ratio(&handler, 50.0),
            ratio(&handler, 95.0),
            ratio(&raw, 50.0),
            ratio(&raw, 95.0)
        )
    });
    let messages = handler.len() + raw.len() + nodemailer.len();
    println!("| path | messages | p50 ms | p95 ms | mean ms | max ms |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        row("handler (`POST /v1/accounts/{id}/send`)", handler)
    );
    println!("{}", row("raw SMTP session (same SMTP work)", raw));
    if !nodemailer.is_empty() {
        println!(
            "{}",
            row("nodemailer (new connection per message)", nodemailer)
        );
    }
    println!("{}", ratios.unwrap_or_default());
    println!("\n{messages} messages in {:.1} s", wall.as_secs_f64());
}
