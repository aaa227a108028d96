//! Counts what an IMAP session costs on the wire: the commands the client sends (their verbs
//! only, never arguments, which hold tokens) and the bytes each way, through the
//! `ImapConnector::with_wrapper` hook on the decrypted stream.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use mailroom_mail::imap::{BoxedIo, StreamWrapper};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the sessions through one wrapper sent and received.
#[derive(Debug, Default)]
pub struct ImapTally {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Verbs of the client's lines in order (`UID FETCH`, `AUTHENTICATE`; `+` for a continuation).
    commands: Mutex<Vec<String>>,
}

impl ImapTally {
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Forgets everything counted so far.
    pub fn reset(&self) {
        self.bytes_in.store(0, Ordering::Relaxed);
        self.bytes_out.store(0, Ordering::Relaxed);
        if let Ok(mut c) = self.commands.lock() {
            c.clear();
        }
    }

    /// The wrapper to give `ImapConnector::with_wrapper`.
    pub fn wrapper(self: &Arc<Self>) -> StreamWrapper {
        let tally = self.clone();
        Arc::new(move |inner| {
            Box::new(CountingIo {
                inner,
                tally: tally.clone(),
                line: Vec::new(),
            }) as BoxedIo
        })
    }

    fn record(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let verb = match (words.next(), words.next(), words.next()) {
            (Some(_tag), Some(v), next) if v.chars().all(|c| c.is_ascii_alphabetic()) => match next
            {
                Some(n) if v.eq_ignore_ascii_case("UID") => format!("UID {n}"),
                _ => v.to_ascii_uppercase(),
            },
            _ => "+".to_owned(),
        };
        if let Ok(mut c) = self.commands.lock() {
            c.push(verb);
        }
    }
}

#[derive(Debug)]
struct CountingIo {
    inner: BoxedIo,
    tally: Arc<ImapTally>,
    /// The start of the line being written (only the first bytes are kept: the verb).
    line: Vec<u8>,
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.tally.bytes_in.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            let n = *n;
            self.tally.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
            for &b in &buf[..n] {
                if b == b'\n' {
                    let line = std::mem::take(&mut self.line);
                    self.tally.record(&line);
                } else if self.line.len() < 48 {
                    self.line.push(b);
                }
            }
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
