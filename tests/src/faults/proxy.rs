//! A fault-injecting proxy between Mailroom and a real server (Dovecot IMAP or submission). It
//! terminates TLS on both sides (the test CA's `localhost` certificate towards Mailroom, the test
//! CA as trust towards the server), so it sees the protocol in clear and can act precisely: cut
//! after N bytes from the server, slow every chunk down, or match a client command line and cut
//! before or after forwarding it, or answer it itself (`BAD ... throttled`, `BYE`, `421`, `550`).
//! Each accepted connection takes the next queued [`Plan`]; with none queued it passes through.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::app::server_env;

/// How the proxy reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// TLS from the first byte (IMAP 993).
    ImplicitTls,
    /// Plain greeting, EHLO, STARTTLS, then TLS (submission 587); the proxy greets Mailroom
    /// itself, over implicit TLS.
    SmtpStartTls,
}

/// What to do with a matching client line.
#[derive(Debug, Clone)]
pub enum Action {
    /// Close the connection without forwarding the line.
    Cut,
    /// Forward the line, then close towards Mailroom before any of the answer reaches it (the
    /// server still gets and handles the command).
    ForwardThenCut,
    /// Answer this instead of forwarding (`{tag}` becomes the line's IMAP tag); go on.
    Reply(String),
    /// Answer this instead of forwarding, then close.
    ReplyThenClose(String),
    /// Send this to Mailroom first (an unsolicited server line), then forward the line.
    Inject(String),
}

/// Matches a client line (case-insensitive substring); [`Rule::END_OF_DATA`] matches the end of
/// an SMTP message (the lone `.`). A rule fires once.
#[derive(Debug, Clone)]
pub struct Rule {
    pub when: String,
    pub action: Action,
}

impl Rule {
    pub const END_OF_DATA: &'static str = "<END-OF-DATA>";

    pub fn new(when: &str, action: Action) -> Self {
        Self {
            when: when.to_ascii_uppercase(),
            action,
        }
    }
}

/// The faults of one connection.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Close after this many bytes from the server have reached Mailroom.
    pub cut_down_after: Option<usize>,
    /// Wait this long before each chunk from the server.
    pub delay_per_chunk: Option<Duration>,
    /// Largest chunk forwarded at once (0: whatever one read returns).
    pub chunk: usize,
    pub rules: Vec<Rule>,
}

impl Plan {
    pub fn cut_after(bytes: usize) -> Self {
        Self {
            cut_down_after: Some(bytes),
            ..Self::default()
        }
    }

    pub fn rule(when: &str, action: Action) -> Self {
        Self {
            rules: vec![Rule::new(when, action)],
            ..Self::default()
        }
    }

    pub fn slow(delay: Duration, chunk: usize) -> Self {
        Self {
            delay_per_chunk: Some(delay),
            chunk,
            ..Self::default()
        }
    }
}

/// What one connection carried.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Bytes from the server that reached Mailroom.
    pub down: Vec<u8>,
    /// Client lines, as received.
    pub up: Vec<String>,
}

/// A running proxy on 127.0.0.1.
pub struct FaultProxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    plans: Arc<Mutex<VecDeque<Plan>>>,
    transcripts: Arc<Mutex<Vec<Arc<Mutex<Transcript>>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
}

fn tls() -> Tls {
    mailroom_runtime::tls::install_crypto_provider();
    let dir = server_env("MAILROOM_TEST_DOVECOT_DIR");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/tls/server.crt"))
            .expect("read the test server certificate")
            .map(|c| c.expect("a PEM certificate"))
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/tls/server.key"))
        .expect("read the test server key");
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("proxy TLS server configuration");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server_env("MAILROOM_TEST_CA")).expect("test CA") {
        roots.add(cert.expect("a PEM certificate")).expect("add CA");
    }
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `127.0.0.1:<server_port>`.
    pub async fn start(server_port: u16, upstream: Upstream) -> FaultProxy {
        let tls = Arc::new(tls());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let plans: Arc<Mutex<VecDeque<Plan>>> = Arc::default();
        let transcripts: Arc<Mutex<Vec<Arc<Mutex<Transcript>>>>> = Arc::default();
        let (a, p, t) = (accepted.clone(), plans.clone(), transcripts.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let plan = lock(&p).pop_front().unwrap_or_default();
                let transcript = Arc::new(Mutex::new(Transcript::default()));
                lock(&t).push(transcript.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _ = connection(client, server_port, upstream, tls, plan, transcript).await;
                });
            }
        });
        FaultProxy {
            port,
            accepted,
            plans,
            transcripts,
            task,
        }
    }

    /// Queues the faults of the next connection.
    pub fn push(&self, plan: Plan) {
        lock(&self.plans).push_back(plan);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// What connection `n` (from 0) carried so far.
    pub fn transcript(&self, n: usize) -> Transcript {
        lock(&self.transcripts)
            .get(n)
            .map(|t| lock(t).clone())
            .unwrap_or_default()
    }
}

async fn read_reply<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> std::io::Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(all);
        }
    }
}

type Boxed = Box<dyn IoStream>;
trait IoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> IoStream for T {}

async fn open_server(port: u16, upstream: Upstream, tls: &Tls) -> std::io::Result<Boxed> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").expect("a server name");
    match upstream {
        Upstream::ImplicitTls => Ok(Box::new(tls.connector.connect(name, tcp).await?)),
        Upstream::SmtpStartTls => {
            let mut plain = BufReader::new(tcp);
            read_reply(&mut plain).await?;
            plain.get_mut().write_all(b"EHLO fault-proxy\r\n").await?;
            read_reply(&mut plain).await?;
            plain.get_mut().write_all(b"STARTTLS\r\n").await?;
            read_reply(&mut plain).await?;
            Ok(Box::new(
                tls.connector.connect(name, plain.into_inner()).await?,
            ))
        }
    }
}

async fn connection(
    client: TcpStream,
    server_port: u16,
    upstream: Upstream,
    tls: Arc<Tls>,
    mut plan: Plan,
    transcript: Arc<Mutex<Transcript>>,
) -> std::io::Result<()> {
    let client = tls.acceptor.accept(client).await?;
    let server = open_server(server_port, upstream, &tls).await?;
    let (client_read, client_write) = tokio::io::split(client);
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    if upstream == Upstream::SmtpStartTls {
        client_write
            .lock()
            .await
            .write_all(b"220 localhost ESMTP fault proxy\r\n")
            .await?;
    }
    let frozen = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(Notify::new());

    let down = {
        let (client_write, frozen, cut, transcript) = (
            client_write.clone(),
            frozen.clone(),
            cut.clone(),
            transcript.clone(),
        );
        let (limit, delay, chunk) = (
            plan.cut_down_after.unwrap_or(usize::MAX),
            plan.delay_per_chunk,
            plan.chunk,
        );
        tokio::spawn(async move {
            let mut sent = 0usize;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match server_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let step = if chunk == 0 { n } else { chunk };
                for piece in buf[..n].chunks(step) {
                    if let Some(d) = delay {
                        tokio::time::sleep(d).await;
                    }
                    if frozen.load(Ordering::SeqCst) {
                        return;
                    }
                    let piece = &piece[..piece.len().min(limit - sent)];
                    if client_write.lock().await.write_all(piece).await.is_err() {
                        cut.notify_one();
                        return;
                    }
                    lock(&transcript).down.extend_from_slice(piece);
                    sent += piece.len();
                    if sent >= limit {
                        cut.notify_one();
                        return;
                    }
                }
            }
            // The server closed: close towards Mailroom too.
            let _ = client_write.lock().await.shutdown().await;
        })
    };

    let up = async {
        let mut reader = BufReader::new(client_read);
        let mut data_mode = false;
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                let _ = server_write.shutdown().await;
                return Ok::<Option<Action>, std::io::Error>(None);
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            lock(&transcript).up.push(text.clone());
            let key = if data_mode {
                if text == ".\r\n" {
                    data_mode = false;
                    Rule::END_OF_DATA.to_owned()
                } else {
                    String::new()
                }
            } else {
                text.to_ascii_uppercase()
            };
            let fired = if key.is_empty() {
                None
            } else {
                plan.rules
                    .iter()
                    .position(|r| key.contains(&r.when))
                    .map(|i| plan.rules.remove(i).action)
            };
            let tag = text.split(' ').next().unwrap_or("*").trim().to_owned();
            match fired {
                None => {
                    server_write.write_all(&line).await?;
                    server_write.flush().await?;
                    if !data_mode && text.trim().eq_ignore_ascii_case("DATA") {
                        data_mode = upstream == Upstream::SmtpStartTls;
                    }
                }
                Some(Action::Inject(text)) => {
                    client_write
                        .lock()
                        .await
                        .write_all(format!("{text}\r\n").as_bytes())
                        .await?;
                    server_write.write_all(&line).await?;
                    server_write.flush().await?;
                }
                Some(Action::Reply(reply)) => {
                    let reply = reply.replace("{tag}", &tag);
                    client_write
                        .lock()
                        .await
                        .write_all(format!("{reply}\r\n").as_bytes())
                        .await?;
                }
                Some(Action::ReplyThenClose(reply)) => {
                    frozen.store(true, Ordering::SeqCst);
                    let reply = reply.replace("{tag}", &tag);
                    let mut w = client_write.lock().await;
                    w.write_all(format!("{reply}\r\n").as_bytes()).await?;
                    w.flush().await?;
                    return Ok(Some(Action::Cut));
                }
                Some(Action::ForwardThenCut) => {
                    frozen.store(true, Ordering::SeqCst);
                    server_write.write_all(&line).await?;
                    server_write.flush().await?;
                    return Ok(Some(Action::ForwardThenCut));
                }
                Some(Action::Cut) => {
                    frozen.store(true, Ordering::SeqCst);
                    return Ok(Some(Action::Cut));
                }
            }
        }
    };

    let ended = tokio::select! {
        r = up => r.ok().flatten(),
        () = cut.notified() => Some(Action::Cut),
    };
    if matches!(ended, Some(Action::ForwardThenCut)) {
        // The server goes on handling the command; only its answer is lost. Keep its side
        // open a while so it is not disturbed by a disconnect.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(server_write);
        });
    }
    if ended.is_some() {
        down.abort();
        // Dropping the halves closes the TCP connection under TLS: no close_notify, a real cut.
        drop(client_write);
    } else {
        let _ = down.await;
    }
    Ok(())
}
