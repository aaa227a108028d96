//! No-change sync benchmark (not a test): what one scheduled sync of a mailbox with nothing new
//! costs a warm worker on the AWS adapters (moto): IMAP commands and bytes (counted on the
//! decrypted stream), DynamoDB reads and writes, KMS and S3 calls (counted by decorators around
//! the real adapters), and the scheduler pass that enqueues it. Also the first sync and a
//! no-change sync on a cold process (empty data-key cache) for comparison, and the CPU time of a
//! warm no-change poll as the Lambda worker runs it (a job carrying the account's version, the
//! account cache warm, one thread): process CPU time over many polls.
//!
//! Needs moto, the test OAuth server and Dovecot (`tests/servers/*.sh start`, env sourced).
//! Usage: `cargo run -p mailroom-tests --bin bench-sync-idle [messages] [polls]` (defaults 200
//! and 500; counts do not depend on the build profile, CPU time does: use `--release` for it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailroom_core::crypto::Sealer;
use mailroom_core::domain::{
    Account, AccountStatus, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
    Tokens,
};
use mailroom_core::ports::{BlobStore, ItemStore, KeyService};
use mailroom_core::records::Repository;
use mailroom_core::time::now_unix;
use mailroom_mail::imap::ImapConnector;
use mailroom_mail::jobs::{SchedulerSettings, schedule_due};
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
use mailroom_oauth::OAuthTokenSource;
use mailroom_tests::counting::imap::ImapTally;
use mailroom_tests::counting::{Counters, CountingBlobs, CountingKeys, CountingStore, Counts};
use mailroom_tests::process::cpu_seconds;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn env(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: start the test servers and source $MAILROOM_TEST_STATE/env")
            .into()
    })
}

async fn reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<(), BoxError> {
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        if !(line.starts_with('2') || line.starts_with('3')) {
            return Err(format!("LMTP refused: {line}").into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// Delivers `count` small messages to `to` over LMTP.
async fn deliver(lmtp_port: u16, to: &str, count: usize) -> Result<(), BoxError> {
    let (read, mut write) = TcpStream::connect(("127.0.0.1", lmtp_port))
        .await?
        .into_split();
    let mut reader = BufReader::new(read);
    reply(&mut reader).await?;
    write.write_all(b"LHLO bench\r\n").await?;
    reply(&mut reader).await?;
    for i in 0..count {
        let envelope = format!("MAIL FROM:<bench@example.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        write.write_all(envelope.as_bytes()).await?;
        for _ in 0..3 {
            reply(&mut reader).await?;
        }
        let body = format!(
            "From: Bench <bench@example.test>\r\nTo: {to}\r\nSubject: idle {i}\r\n\
Message-ID: <idle-{i}@example.test>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\n\r\nHello {i}.\r\n.\r\n"
        );
        write.write_all(body.as_bytes()).await?;
        reply(&mut reader).await?;
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

fn line(phase: &str, c: &Counts, tally: &ImapTally, elapsed: Duration) {
    let commands = tally.commands();
    println!(
        "| {phase} | {} ({}) | {} | {} ({} eventually consistent) | {} ({} items) | {} | {} | {:.0} |",
        commands.len(),
        commands.join(", "),
        tally.bytes_in.load(std::sync::atomic::Ordering::Relaxed),
        c.store_reads,
        c.store_stale_reads,
        c.store_writes,
        c.items_written,
        c.kms(),
        c.s3(),
        elapsed.as_secs_f64() * 1000.0
    );
}

// One thread, as the Lambda functions run (the CPU time per poll is measured for them).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200);
    let polls: u32 = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500);
    let imap_port: u16 = env("MAILROOM_TEST_IMAP_PORT")?.parse()?;
    let lmtp_port: u16 = env("MAILROOM_TEST_LMTP_PORT")?.parse()?;
    let oauth = env("MAILROOM_TEST_OAUTH_URL")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(env("MAILROOM_TEST_CA")?)? {
        roots.add(cert?)?;
    }
    let tls = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let http = reqwest::Client::new();
    let email = format!("idle-{count}-{}@example.test", std::process::id());
    let issued: serde_json::Value = http
        .post(format!("{oauth}/admin/issue"))
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await?
        .json()
        .await?;
    let field = |name: &str| -> Result<SecretString, BoxError> {
        Ok(SecretString::from(
            issued[name]
                .as_str()
                .ok_or("the OAuth server issued no token")?
                .to_owned(),
        ))
    };
    deliver(lmtp_port, &email, count).await?;

    let moto = mailroom_tests::contract::backends::moto("idle").await;
    let counters = Arc::new(Counters::default());
    let store: Arc<dyn ItemStore> = Arc::new(CountingStore {
        inner: Arc::new(moto.backends.store.clone()),
        counters: counters.clone(),
    });
    let keys: Arc<dyn KeyService> = Arc::new(CountingKeys {
        inner: Arc::new(moto.backends.keys.clone()),
        counters: counters.clone(),
    });
    let blobs: Arc<dyn BlobStore> = Arc::new(CountingBlobs {
        inner: Arc::new(moto.backends.blobs.clone()),
        counters: counters.clone(),
    });
    let tally = Arc::new(ImapTally::default());
    let connector = ImapConnector::new(tls, Duration::from_secs(60)).with_wrapper(tally.wrapper());
    // A process: its repository (and data-key cache), token source and engine.
    let process = || {
        let repo = Repository::new(
            store.clone(),
            Arc::new(Sealer::new(keys.clone(), Duration::from_secs(600))),
        );
        let tokens = Arc::new(OAuthTokenSource::new(repo.clone(), http.clone()));
        let engine = SyncEngine::new(
            repo.clone(),
            blobs.clone(),
            tokens,
            connector.clone(),
            SyncSettings::default(),
        );
        (repo, engine)
    };
    let (repo, engine) = process();
    let endpoint = MailEndpoint {
        host: "localhost".into(),
        port: imap_port,
        tls: TlsMode::Implicit,
    };
    let now = now_unix();
    repo.put_provider(
        &ProviderSettings {
            id: "bench".into(),
            kind: ProviderKind::OAuth2,
            client_id: "bench".into(),
            client_secret: SecretString::from("test-secret"),
            tenant: None,
            cloud: None,
            authorize_url: format!("{oauth}/authorize"),
            token_url: format!("{oauth}/token"),
            scopes: vec![],
            imap: endpoint.clone(),
            smtp: endpoint,
            status: ProviderStatus::Ok,
            status_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        },
        None,
    )
    .await?;
    repo.create_account(&Account {
        id: "idle".into(),
        owner: "bench".into(),
        provider_id: "bench".into(),
        email: email.clone(),
        identity: email.clone(),
        status: AccountStatus::Active,
        status_reason: None,
        tokens: Tokens {
            access_token: field("access_token")?,
            refresh_token: field("refresh_token")?,
            access_expires_at: now + 3600,
        },
        granted_scopes: vec![],
        created_at: now,
        updated_at: now,
        next_sync_at: now,
        last_sync_at: None,
        last_error: None,
        failure_count: 0,
        extra: serde_json::Map::new(),
        version: 1,
    })
    .await?;

    println!("mailbox: {count} messages; account with the default folders (INBOX and \\Sent)\n");
    println!(
        "| phase | IMAP commands | IMAP bytes received | store reads | store writes | KMS | S3 | ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(600);
    let mut phases: Vec<(&str, &SyncEngine)> = vec![("first sync", &engine)];
    for _ in 0..3 {
        phases.push(("no-change sync, warm process", &engine));
    }
    for (phase, engine) in phases {
        tally.reset();
        let before = counters.snapshot();
        let started = Instant::now();
        let outcome = engine.sync_account("idle", deadline()).await?;
        let elapsed = started.elapsed();
        if !matches!(outcome, SyncOutcome::Synced(_)) {
            return Err(format!("{phase}: {outcome:?}").into());
        }
        line(phase, &counters.snapshot().since(&before), &tally, elapsed);
    }
    // As the worker runs a scheduled job: the version the scheduler read from the due index.
    let version = repo
        .due_accounts_page(now_unix() + 60, None, 10)
        .await?
        .0
        .into_iter()
        .find(|due| due.id == "idle")
        .and_then(|due| due.version);
    for phase in ["no-change sync, warm process, job with the version (account cache)"; 2] {
        tally.reset();
        let before = counters.snapshot();
        let started = Instant::now();
        engine.sync_account_at("idle", version, deadline()).await?;
        line(
            phase,
            &counters.snapshot().since(&before),
            &tally,
            started.elapsed(),
        );
    }
    // CPU time per warm no-change poll: many polls, process CPU time (10 ms ticks) over them;
    // with the version (the account cache) and without (one store read each, as before it).
    let mut summary = String::new();
    for (label, version) in [
        ("job with the version", version),
        ("job without a version", None),
    ] {
        let before = counters.snapshot();
        let cpu = cpu_seconds();
        let started = Instant::now();
        for _ in 0..polls {
            let outcome = engine.sync_account_at("idle", version, deadline()).await?;
            if !matches!(&outcome, SyncOutcome::Synced(r) if r.new_messages() == 0) {
                return Err(format!("a warm poll: {outcome:?}").into());
            }
        }
        let (cpu, wall) = (cpu_seconds() - cpu, started.elapsed().as_secs_f64());
        let used = counters.snapshot().since(&before);
        let polls_f = f64::from(polls.max(1));
        // Printed after the table.
        summary.push_str(&format!(
            "\n{polls} warm no-change polls ({label}): CPU {:.2} ms a poll, wall {:.2} ms a poll \
({:.0} % CPU), {} store reads, {} store writes in all",
            cpu * 1000.0 / polls_f,
            wall * 1000.0 / polls_f,
            100.0 * cpu / wall.max(f64::EPSILON),
            used.store_reads,
            used.store_writes,
        ));
    }
    let (cold_repo, cold_engine) = process();
    tally.reset();
    let before = counters.snapshot();
    let started = Instant::now();
    cold_engine.sync_account("idle", deadline()).await?;
    line(
        "no-change sync, cold process",
        &counters.snapshot().since(&before),
        &tally,
        started.elapsed(),
    );

    // The scheduler's pass that enqueues this account when it is due (one account due).
    tally.reset();
    let before = counters.snapshot();
    let started = Instant::now();
    let due_at = now_unix() + 24 * 3600;
    let report = schedule_due(
        &cold_repo,
        &moto.backends.queue,
        due_at,
        &SchedulerSettings::default(),
    )
    .await?;
    line(
        &format!(
            "scheduler pass ({} due, {} enqueued; + 1 SQS SendMessageBatch)",
            report.due, report.enqueued
        ),
        &counters.snapshot().since(&before),
        &tally,
        started.elapsed(),
    );
    println!("{summary}");
    Ok(())
}
