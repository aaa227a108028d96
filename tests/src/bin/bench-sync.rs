//! Sync benchmark (not a test): fills a Dovecot mailbox with generated mail (once; later runs
//! reuse it), then measures a raw `UID FETCH 1:* BODY.PEEK[]` over the same TLS connection type
//! (the ceiling) and a full first sync into the embedded store and blob directory. Prints
//! messages/s, MB/s and peak RSS of each phase.
//!
//! Needs the test servers (`tests/servers/oauth.sh start`, `tests/servers/dovecot.sh start`, then
//! source `$MAILROOM_TEST_STATE/env`). Usage: `cargo run --release -p mailroom-tests --bin
//! bench-sync [messages] [phases]` (default 10,000 messages; phases a comma list of `fill`,
//! `raw`, `sync`, default `raw,sync`; the mailbox is always filled first). `MAILROOM_BENCH_BATCH`
//! and `MAILROOM_BENCH_IN_FLIGHT` override the batch size and blob uploads in flight;
//! `MAILROOM_BENCH_JSON=1` adds one JSON line per phase (for `bench/sync-peers.sh`);
//! The sync runs on a current-thread runtime, as in the Lambda functions;
//! `MAILROOM_BENCH_RUNTIME=multi` runs it on tokio's multi-thread one (as `mailroom-local`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mailroom_core::crypto::Sealer;
use mailroom_core::domain::{
    Account, AccountStatus, MailEndpoint, ProviderKind, ProviderSettings, ProviderStatus, TlsMode,
    Tokens,
};
use mailroom_core::ports::{AccessGrant, TokenError, TokenSource};
use mailroom_core::records::Repository;
use mailroom_core::time::now_unix;
use mailroom_embedded::{DirBlobStore, KeyFile, RedbStore};
use mailroom_mail::imap::ImapConnector;
use mailroom_mail::sync::{SyncEngine, SyncOutcome, SyncSettings};
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

/// A tuning knob from the environment (batch size, uploads in flight).
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kilobytes of peak resident memory since the last reset.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak-RSS counter (Linux `clear_refs` 5), so each phase reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn generated(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bench <bench@example.test>\r\nTo: rcpt@example.test\r\nSubject: bench {i}\r\n\
Message-ID: <bench-{i}@example.test>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    );
    let text_lines = 40 + (i * 7919) % 80;
    if i.is_multiple_of(20) {
        m.push_str("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n");
    } else {
        m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    }
    for line in 0..text_lines {
        m.push_str(&format!(
            "Line {line} of message {i}: the quick brown fox jumps over the lazy dog.\r\n"
        ));
    }
    if i.is_multiple_of(20) {
        // A 48 KB attachment, base64 in 76-character lines.
        m.push_str("--b\r\nContent-Type: application/octet-stream; name=data.bin\r\n");
        m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n";
        for _ in 0..(48 * 1024 / 57) {
            m.push_str(line);
        }
        m.push_str("--b--\r\n");
    }
    m.into_bytes()
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

async fn deliver(lmtp_port: u16, to: &str, from: usize, count: usize) -> Result<(), BoxError> {
    let (read, mut write) = TcpStream::connect(("127.0.0.1", lmtp_port))
        .await?
        .into_split();
    let mut reader = BufReader::new(read);
    reply(&mut reader).await?;
    write.write_all(b"LHLO bench\r\n").await?;
    reply(&mut reader).await?;
    for i in from..count {
        let envelope = format!("MAIL FROM:<bench@example.test>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        write.write_all(envelope.as_bytes()).await?;
        for _ in 0..3 {
            reply(&mut reader).await?;
        }
        // Generated lines never start with a dot: no dot-stuffing needed.
        write.write_all(&generated(i)).await?;
        write.write_all(b".\r\n").await?;
        reply(&mut reader).await?;
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

struct StaticToken(AccessGrant);

#[async_trait]
impl TokenSource for StaticToken {
    async fn access_token(&self, _: &str, _: bool) -> Result<AccessGrant, TokenError> {
        Ok(self.0.clone())
    }
}

fn report(phase: &str, messages: u64, bytes: u64, elapsed: Duration, peak_kb: u64, cpu: f64) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    if std::env::var_os("MAILROOM_BENCH_JSON").is_some() {
        println!(
            "{}",
            serde_json::json!({
                "peer": phase, "messages": messages, "bytes": bytes, "seconds": secs,
                "cpu_seconds": cpu, "peak_rss_kb": peak_kb,
            })
        );
    }
    println!(
        "{phase:<28} {messages:>7} msgs {:>8.1} MB {:>8.2} s {:>9.0} msgs/s {:>7.1} MB/s  peak RSS {:>6.1} MB  {:>5.2} CPU-s/GB",
        bytes as f64 / 1e6,
        secs,
        messages as f64 / secs,
        bytes as f64 / 1e6 / secs,
        peak_kb as f64 / 1024.0,
        cpu / (bytes as f64 / 1e9).max(1e-9)
    );
}

/// The default is a current-thread runtime, what the six Lambda functions run (below 1,769 MB a
/// function has less than one vCPU); `MAILROOM_BENCH_RUNTIME=multi` measures tokio's
/// multi-thread runtime instead.
fn main() -> Result<(), BoxError> {
    let runtime = match std::env::var("MAILROOM_BENCH_RUNTIME").as_deref() {
        Ok("multi") => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(run())
}

async fn run() -> Result<(), BoxError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let phases = std::env::args().nth(2).unwrap_or_else(|| "raw,sync".into());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);
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
    let email = format!("bench-{count}@example.test");
    let issued: serde_json::Value = reqwest::Client::new()
        .post(format!("{oauth}/admin/issue"))
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await?
        .json()
        .await?;
    let token = SecretString::from(
        issued["access_token"]
            .as_str()
            .ok_or("no access token issued")?
            .to_owned(),
    );
    let endpoint = MailEndpoint {
        host: "localhost".into(),
        port: imap_port,
        tls: TlsMode::Implicit,
    };
    let connector = ImapConnector::new(tls, Duration::from_secs(120));

    // The mailbox, filled once.
    let mut session = connector.open_session(&endpoint, &email, &token).await?;
    let have = session.status("INBOX").await?.messages as usize;
    session.logout().await;
    if have < count {
        println!("delivering {} messages to {email} over LMTP…", count - have);
        let started = Instant::now();
        deliver(lmtp_port, &email, have, count).await?;
        println!("delivered in {:.1} s", started.elapsed().as_secs_f64());
    }

    if phase("raw") {
        raw(&connector, &endpoint, &email, &token).await?;
    }
    if phase("sync") {
        sync(connector, endpoint, email, token, &oauth).await?;
    }
    Ok(())
}

/// The ceiling: one FETCH of every body over the same TLS connection type.
async fn raw(
    connector: &ImapConnector,
    endpoint: &MailEndpoint,
    email: &str,
    token: &SecretString,
) -> Result<(), BoxError> {
    reset_peak_rss();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut session = connector.open_session(endpoint, email, token).await?;
    session.open("INBOX").await?;
    session.start_fetch("1:*", "(UID BODY.PEEK[])").await?;
    let (mut messages, mut bytes) = (0u64, 0u64);
    while let Some(m) = session.next_fetched().await? {
        messages += 1;
        bytes += m.body.map(|b| b.len() as u64).unwrap_or(0);
    }
    session.logout().await;
    report(
        "raw UID FETCH 1:* BODY[]",
        messages,
        bytes,
        started.elapsed(),
        peak_rss_kb(),
        cpu_seconds() - cpu,
    );
    Ok(())
}

/// The full first sync into the embedded store and blob directory (under `TMPDIR`).
async fn sync(
    connector: ImapConnector,
    endpoint: MailEndpoint,
    email: String,
    token: SecretString,
    oauth: &str,
) -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    // Deleting 10,000 files right before the next run's creates skews it on ext4 without a
    // journal (each create skips every recently deleted inode); a runner can keep the data and
    // delete it after all rounds.
    let (dir, _cleanup) = if std::env::var_os("MAILROOM_BENCH_KEEP").is_some() {
        (dir.keep(), None)
    } else {
        (dir.path().to_path_buf(), Some(dir))
    };
    let store = Arc::new(RedbStore::open(&dir.join("store.redb"))?);
    let keys = Arc::new(KeyFile::open_or_create(&dir)?);
    let blobs = Arc::new(DirBlobStore::open(&dir.join("blobs"))?);
    let repo = Repository::new(store, Arc::new(Sealer::new(keys, Duration::from_secs(300))));
    let now = now_unix();
    repo.put_provider(
        &ProviderSettings {
            id: "bench".into(),
            kind: ProviderKind::OAuth2,
            client_id: "bench".into(),
            client_secret: SecretString::from("unused"),
            tenant: None,
            cloud: None,
            authorize_url: format!("{oauth}/authorize"),
            token_url: format!("{oauth}/token"),
            scopes: vec![],
            imap: endpoint.clone(),
            smtp: endpoint.clone(),
            status: ProviderStatus::Ok,
            status_reason: None,
            created_at: now,
            updated_at: now,
            version: 1,
        },
        None,
    )
    .await?;
    let mut extra = serde_json::Map::new();
    extra.insert("sync_folders".into(), serde_json::json!(["INBOX"]));
    repo.create_account(&Account {
        id: "bench".into(),
        owner: "bench".into(),
        provider_id: "bench".into(),
        email: email.clone(),
        identity: email.clone(),
        status: AccountStatus::Active,
        status_reason: None,
        tokens: Tokens {
            access_token: token.clone(),
            refresh_token: SecretString::from("unused"),
            access_expires_at: now + 3600,
        },
        granted_scopes: vec![],
        created_at: now,
        updated_at: now,
        next_sync_at: now,
        last_sync_at: None,
        last_error: None,
        failure_count: 0,
        extra,
        version: 1,
    })
    .await?;
    let grant = AccessGrant {
        account_id: "bench".into(),
        email: email.clone(),
        access_token: token,
        expires_at: now + 3600,
    };
    let engine = SyncEngine::new(
        repo,
        blobs,
        Arc::new(StaticToken(grant)),
        connector,
        SyncSettings {
            backfill_limit: None,
            batch_size: knob("MAILROOM_BENCH_BATCH", 100),
            max_in_flight: knob("MAILROOM_BENCH_IN_FLIGHT", 8),
            ..SyncSettings::default()
        },
    );
    reset_peak_rss();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let outcome = engine
        .sync_account(
            "bench",
            tokio::time::Instant::now() + Duration::from_secs(3600),
        )
        .await?;
    let elapsed = started.elapsed();
    let SyncOutcome::Synced(sync) = outcome else {
        return Err(format!("the sync did not succeed: {outcome:?}").into());
    };
    let stored: u64 = sync.new_messages();
    let bytes: u64 = sync.folders.iter().map(|f| f.bytes).sum();
    report(
        "Mailroom sync (store + blobs)",
        stored,
        bytes,
        elapsed,
        peak_rss_kb(),
        cpu_seconds() - cpu,
    );
    Ok(())
}
