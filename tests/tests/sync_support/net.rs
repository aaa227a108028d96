//! Network helpers for the sync tests: a recorder of the IMAP commands the server receives (on the
//! decrypted stream) and a TCP proxy that can cut or hold a connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use mailroom_mail::imap::{BoxedIo, StreamWrapper};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Records what the client writes on the decrypted IMAP stream.
#[derive(Debug)]
struct Recording<T> {
    inner: T,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Recording<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recording<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.sent
                .lock()
                .expect("recording lock")
                .extend_from_slice(&buf[..*n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The IMAP commands the server received, as a wrapper to plug into the connector.
#[derive(Clone, Default)]
pub struct CommandLog {
    sent: Arc<Mutex<Vec<u8>>>,
}

impl CommandLog {
    pub fn wrapper(&self) -> StreamWrapper {
        let sent = self.sent.clone();
        Arc::new(move |io: BoxedIo| -> BoxedIo {
            Box::new(Recording {
                inner: io,
                sent: sent.clone(),
            })
        })
    }

    /// Tagged commands (`UID FETCH`, `SELECT`…) in order; SASL lines carry no tag and are skipped.
    pub fn commands(&self) -> Vec<String> {
        let sent = self.sent.lock().expect("recording lock").clone();
        String::from_utf8_lossy(&sent)
            .split("\r\n")
            .filter_map(|line| {
                let mut words = line.split(' ');
                let tag = words.next()?;
                let verb = words.next()?;
                if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                Some(match verb.to_ascii_uppercase().as_str() {
                    "UID" => format!("UID {}", words.next().unwrap_or("").to_ascii_uppercase()),
                    v => v.to_owned(),
                })
            })
            .collect()
    }

    /// The tagged command lines themselves.
    pub fn lines(&self) -> Vec<String> {
        let sent = self.sent.lock().expect("recording lock").clone();
        String::from_utf8_lossy(&sent)
            .split("\r\n")
            .filter(|line| {
                line.split(' ').next().is_some_and(|tag| {
                    !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric())
                }) && line.contains(' ')
            })
            .map(str::to_owned)
            .collect()
    }

    pub fn clear(&self) {
        self.sent.lock().expect("recording lock").clear();
    }
}

/// What the proxy does to the first connection through it (later ones pass untouched).
pub enum ProxyMode {
    Pass,
    /// Cuts the first connection after this many bytes from the server.
    CutFirstAfter(usize),
    /// Holds the first connection (forwards nothing) until notified.
    HoldFirst(Arc<Notify>),
}

/// A TCP proxy on 127.0.0.1 in front of `target_port`.
pub struct Proxy {
    pub port: u16,
    /// Connections accepted so far.
    pub accepted: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(target_port: u16, mode: ProxyMode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let mode = Arc::new(mode);
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            let mut first = true;
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mode = mode.clone();
                let is_first = std::mem::replace(&mut first, false);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                        return;
                    };
                    let mut cut_after = usize::MAX;
                    if is_first {
                        match &*mode {
                            ProxyMode::Pass => {}
                            ProxyMode::CutFirstAfter(n) => cut_after = *n,
                            ProxyMode::HoldFirst(gate) => gate.notified().await,
                        }
                    }
                    pump(client, server, cut_after).await;
                });
            }
        });
        Proxy {
            port,
            accepted,
            task,
        }
    }
}

async fn pump(client: TcpStream, server: TcpStream, cut_after: usize) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut forwarded = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let n = n.min(cut_after - forwarded);
        if client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
        forwarded += n;
        if forwarded >= cut_after {
            break;
        }
    }
    // Dropping both halves closes the connection in the middle of whatever was in flight.
    upstream.abort();
}
