//! Load benchmark (not a test), loopback only and bounded in time and count: N accounts (default
//! 1,000, each its own Dovecot mailbox with one message) all due at once go through the real
//! scheduler into SQS, and worker tasks drain the queue with the real sync engine into DynamoDB,
//! KMS and S3 (moto); then M concurrent sends (default 200) go through Dovecot submission.
//! Reports queue depth, lease conflicts, errors, time to drain, throughput, and checks that
//! nothing was lost (every account synced its message; every send arrived exactly once).
//!
//! Needs the test servers (moto, oauth, dovecot) and `source $MAILROOM_TEST_STATE/env`. Usage:
//! `cargo run --release -p mailroom-tests --bin bench-load [accounts] [sends]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mailroom_core::crypto::Sealer;
use mailroom_core::domain::{
    Account, AccountStatus, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
    Tokens,
};
use mailroom_core::ports::JobMessage;
use mailroom_core::records::Repository;
use mailroom_core::time::now_unix;
use mailroom_mail::compose::{Limits, SendRequest};
use mailroom_mail::imap::ImapConnector;
use mailroom_mail::jobs::{JobResult, SchedulerSettings, run_job, schedule_due};
use mailroom_mail::smtp::{Mailer, SmtpConnector};
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
use mailroom_oauth::OAuthTokenSource;
use mailroom_tests::contract::backends::moto;
use mailroom_tests::oauth_server::admin_client::OAuthAdmin;
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The workers stop after this long, whatever is left in the queue.
const TIME_LIMIT: Duration = Duration::from_secs(600);
const WORKERS: usize = 8;

fn env(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: start the test servers and source $MAILROOM_TEST_STATE/env")
            .into()
    })
}

async fn lmtp_line(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Result<(), BoxError> {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        if !line.starts_with(['2', '3']) {
            return Err(format!("LMTP refused: {line}").into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// One message into each mailbox, over one LMTP session.
async fn deliver_all(port: u16, emails: &[String]) -> Result<(), BoxError> {
    let (read, mut write) = TcpStream::connect(("127.0.0.1", port)).await?.into_split();
    let mut r = BufReader::new(read);
    lmtp_line(&mut r).await?;
    write.write_all(b"LHLO bench\r\n").await?;
    lmtp_line(&mut r).await?;
    for (i, to) in emails.iter().enumerate() {
        write
            .write_all(
                format!("MAIL FROM:<load@example.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes(),
            )
            .await?;
        for _ in 0..3 {
            lmtp_line(&mut r).await?;
        }
        let body = format!(
            "From: load@example.test\r\nTo: {to}\r\nSubject: load {i}\r\nMessage-ID: <load-{i}-{to}>\r\n\r\nhello {i}\r\n.\r\n"
        );
        write.write_all(body.as_bytes()).await?;
        lmtp_line(&mut r).await?;
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

fn tls(ca: &str) -> Result<Arc<rustls::ClientConfig>, BoxError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    mailroom_runtime::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (accounts, sends) = (
        args.first().copied().unwrap_or(1000),
        args.get(1).copied().unwrap_or(200),
    );
    let (imap_port, smtp_port, lmtp_port): (u16, u16, u16) = (
        env("MAILROOM_TEST_IMAP_PORT")?.parse()?,
        env("MAILROOM_TEST_SMTP_PORT")?.parse()?,
        env("MAILROOM_TEST_LMTP_PORT")?.parse()?,
    );
    let oauth_url = env("MAILROOM_TEST_OAUTH_URL")?;
    let tls = tls(&env("MAILROOM_TEST_CA")?)?;
    let started = Instant::now();
    let aws = moto("load").await;
    let repo = Repository::new(
        Arc::new(aws.backends.store.clone()),
        Arc::new(Sealer::new(
            Arc::new(aws.backends.keys.clone()),
            Duration::from_secs(600),
        )),
    );
    let blobs: Arc<dyn mailroom_core::ports::BlobStore> = Arc::new(aws.backends.blobs.clone());
    let queue = aws.backends.queue.clone();
    let http = mailroom_runtime::tls::http_client(&tls)?;
    let tokens = Arc::new(OAuthTokenSource::new(repo.clone(), http));
    let now = now_unix();
    let provider = ProviderSettings {
        id: "load".into(),
        kind: ProviderKind::OAuth2,
        client_id: "mailroom-load".into(),
        client_secret: SecretString::from("test-secret"),
        tenant: None,
        cloud: None,
        authorize_url: format!("{oauth_url}/authorize"),
        token_url: format!("{oauth_url}/token"),
        scopes: vec!["openid".into()],
        imap: MailEndpoint {
            host: "localhost".into(),
            port: imap_port,
            tls: TlsMode::Implicit,
        },
        smtp: MailEndpoint {
            host: "localhost".into(),
            port: smtp_port,
            tls: TlsMode::Starttls,
        },
        status: ProviderStatus::Ok,
        status_reason: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    repo.put_provider(&provider, None).await?;

    // Accounts: one Dovecot user each, with tokens from the test provider, all due now.
    let admin = OAuthAdmin::new(&oauth_url);
    let run = format!("{:08x}", rand::random::<u32>());
    let emails: Vec<String> = (0..accounts)
        .map(|i| format!("load-{run}-{i}@example.test"))
        .collect();
    let setup = Instant::now();
    // Create the accounts 4 at a time (moto serializes much of the work anyway).
    let created = futures::stream::iter(emails.iter().enumerate().map(|(i, email)| {
        let (admin, repo, run) = (admin.clone(), repo.clone(), run.clone());
        async move {
            let issued = admin
                .issue_with(json!({"email": email, "expires_in": 7200}))
                .await;
            let account = Account {
                id: format!("acc-{run}-{i}"),
                owner: "load".into(),
                provider_id: "load".into(),
                email: email.clone(),
                identity: format!("load|{email}"),
                status: AccountStatus::Active,
                status_reason: None,
                tokens: Tokens {
                    access_token: SecretString::from(issued.access_token),
                    refresh_token: SecretString::from(issued.refresh_token),
                    access_expires_at: now + 7200,
                },
                granted_scopes: vec![],
                created_at: now,
                updated_at: now,
                next_sync_at: now - 1,
                last_sync_at: None,
                last_error: None,
                failure_count: 0,
                extra: json!({"sync_folders": ["INBOX"]})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                version: 1,
            };
            // moto's transactions are not thread-safe: it answers some concurrent ones with a
            // 500; try those again (a conflict means an earlier try got through).
            let mut tries = 0;
            loop {
                match repo.create_account(&account).await {
                    Err(e) if e.is_conflict() => return Ok(()),
                    Err(_) if tries < 8 => tries += 1,
                    other => return other,
                }
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
        }
    }))
    .buffer_unordered(4)
    .collect::<Vec<_>>()
    .await;
    for result in created {
        result?;
    }
    deliver_all(lmtp_port, &emails).await?;
    println!(
        "setup: {accounts} accounts and messages in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // Scheduler: every account is due at once.
    let t = Instant::now();
    let mut scheduled = 0;
    loop {
        let report = schedule_due(
            &repo,
            &queue,
            now_unix(),
            &SchedulerSettings {
                spread: Duration::ZERO,
                ..SchedulerSettings::default()
            },
        )
        .await?;
        scheduled += report.enqueued;
        if report.due == 0 || scheduled >= accounts {
            break;
        }
    }
    let schedule_s = t.elapsed().as_secs_f64();
    let depth = aws
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue.queue_url())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .unwrap_or_default();
    println!(
        "scheduler: {scheduled} jobs enqueued in {schedule_s:.1} s ({:.0}/s); queue depth {depth}",
        scheduled as f64 / schedule_s
    );

    // Workers: drain SQS with the real sync engine.
    let engine = Arc::new(SyncEngine::new(
        repo.clone(),
        blobs.clone(),
        tokens.clone(),
        ImapConnector::new(tls.clone(), Duration::from_secs(60)),
        SyncSettings::default(),
    ));
    let counters: Arc<[AtomicU64; 5]> = Arc::new(Default::default()); // synced, busy, failed, retry, messages
    let t = Instant::now();
    let drain_started = t;
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (sqs, url, engine, counters) = (
            aws.clients.sqs.clone(),
            queue.queue_url().to_owned(),
            engine.clone(),
            counters.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 3 && drain_started.elapsed() < TIME_LIMIT {
                let Ok(out) = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                else {
                    idle += 1;
                    continue;
                };
                if out.messages().is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                for m in out.messages() {
                    // A message carries one job or several (the scheduler's packing).
                    let Some(jobs) = m.body().and_then(|b| JobMessage::decode(b).ok()) else {
                        continue;
                    };
                    let mut retry = false;
                    for job in &jobs {
                        let result = run_job(
                            &engine,
                            job,
                            tokio::time::Instant::now() + Duration::from_secs(120),
                        )
                        .await;
                        let slot = match &result {
                            JobResult::Done(Some(SyncOutcome::Synced(r))) => {
                                counters[4].fetch_add(r.new_messages(), Ordering::Relaxed);
                                0
                            }
                            JobResult::Done(Some(SyncOutcome::Busy)) => 1,
                            JobResult::Done(_) => 2,
                            JobResult::Retry(_) => 3,
                        };
                        retry |= slot == 3;
                        counters[slot].fetch_add(1, Ordering::Relaxed);
                    }
                    if !retry && let Some(h) = m.receipt_handle() {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(h)
                            .send()
                            .await;
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let drain_s = t.elapsed().as_secs_f64();
    let c: Vec<u64> = counters.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    println!(
        "workers ({WORKERS}): drained in {drain_s:.1} s: {} synced ({:.1} accounts/s), {} lease conflicts, {} failed, {} to retry; {} messages stored",
        c[0],
        c[0] as f64 / drain_s,
        c[1],
        c[2],
        c[3],
        c[4]
    );
    let lost = accounts as u64 - c[4];
    println!("sync: {lost} of {accounts} accounts' messages not stored");

    // Sends: M at once, each with its own key, from the first accounts, to one recipient.
    let mailer = Mailer::new(
        repo.clone(),
        tokens.clone(),
        SmtpConnector::new(tls.clone(), Duration::from_secs(60)),
        Limits::default(),
    );
    let to = format!("load-rcpt-{run}@example.test");
    let request: SendRequest =
        serde_json::from_value(json!({"to": [to], "subject": "load", "text": "load"}))?;
    let t = Instant::now();
    let results = futures::future::join_all((0..sends).map(|i| {
        let (mailer, request, account) = (
            mailer.clone(),
            request.clone(),
            format!("acc-{run}-{}", i % accounts.clamp(1, 50)),
        );
        async move { mailer.send(&account, &format!("load-{i}"), &request).await }
    }))
    .await;
    let send_s = t.elapsed().as_secs_f64();
    let ok = results
        .iter()
        .filter(
            |r| matches!(r, Ok(s) if s.record.status == mailroom_core::domain::SendStatus::Sent),
        )
        .count();
    let mut errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    errors.sort();
    errors.dedup();
    println!(
        "sends: {ok} of {sends} sent in {send_s:.1} s ({:.1}/s); distinct errors: {errors:?}",
        ok as f64 / send_s
    );
    // What arrived: the recipient's INBOX holds each sent message exactly once.
    let issued = admin.issue(&to).await;
    let endpoint = MailEndpoint {
        host: "localhost".into(),
        port: imap_port,
        tls: TlsMode::Implicit,
    };
    let mut arrived = 0;
    for _ in 0..50 {
        let mut session = ImapConnector::new(tls.clone(), Duration::from_secs(30))
            .open_session(
                &endpoint,
                &to,
                &SecretString::from(issued.access_token.clone()),
            )
            .await?;
        arrived = session.status("INBOX").await?.messages as usize;
        session.logout().await;
        if arrived >= ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "sends: {arrived} arrived for {ok} sent (lost: {}, duplicated: {})",
        ok.saturating_sub(arrived),
        arrived.saturating_sub(ok)
    );
    println!("total: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
