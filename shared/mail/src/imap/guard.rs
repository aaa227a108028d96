//! A read-side guard for server bytes: outside message literals, IMAP responses are 7-bit text,
//! yet a broken or hostile server may send 8-bit bytes there. imap-proto 0.17 panics on some of
//! them (a response code followed by a multi-byte character is sliced inside the character), and
//! a panic in the worker aborts the whole process with every job of its batch. The guard passes
//! literals (`{n}` then n bytes: message sources) through untouched and turns every other
//! non-ASCII byte into `?`.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the reader stands in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Response text; `brace` tracks a `{digits[+]}` literal announcement at the line's end.
    Line(Brace),
    /// Inside a literal with this many bytes left.
    Literal(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Brace {
    None,
    Digits(u64),
    Closed(u64),
    Cr(u64),
}

/// Wraps a stream; see the module documentation.
#[derive(Debug)]
pub(crate) struct TextGuard<T> {
    inner: T,
    state: State,
}

impl<T> TextGuard<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            state: State::Line(Brace::None),
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    /// Rewrites freshly read bytes in place.
    fn filter(&mut self, bytes: &mut [u8]) {
        for b in bytes.iter_mut() {
            self.state = match self.state {
                State::Literal(left) => match left.saturating_sub(1) {
                    0 => State::Line(Brace::None),
                    n => State::Literal(n),
                },
                State::Line(brace) => {
                    if !b.is_ascii() {
                        *b = b'?';
                    }
                    let brace = match (brace, *b) {
                        (_, b'{') => Brace::Digits(0),
                        (Brace::Digits(n), d @ b'0'..=b'9') => {
                            Brace::Digits(n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
                        }
                        // LITERAL+ (`{n+}`) announces a literal the same way.
                        (Brace::Digits(n), b'+') => Brace::Digits(n),
                        (Brace::Digits(n), b'}') => Brace::Closed(n),
                        (Brace::Closed(n), b'\r') => Brace::Cr(n),
                        (Brace::Cr(n), b'\n') if n > 0 => {
                            self.state = State::Literal(n);
                            continue;
                        }
                        _ => Brace::None,
                    };
                    State::Line(brace)
                }
            };
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TextGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = &mut buf.filled_mut()[before..];
            self.filter(fresh);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TextGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The bytes a server sent, as the IMAP parser gets them after the guard (fuzzing, tools).
pub fn guard_server_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    TextGuard::new(()).filter(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(chunks: &[&[u8]]) -> Vec<u8> {
        let mut g = TextGuard::new(());
        let mut out = Vec::new();
        for chunk in chunks {
            let mut c = chunk.to_vec();
            g.filter(&mut c);
            out.extend(c);
        }
        out
    }

    #[test]
    fn literals_pass_untouched_and_text_becomes_ascii() {
        let body = "é\u{0}\u{ff}}\r\n{9}\r\n".as_bytes();
        let mut server =
            b"* OK [CAPABILITY IMAP4rev1]\xcd\xcd ready\r\n* 1 FETCH (UID 4 BODY[] {".to_vec();
        server.extend(body.len().to_string().as_bytes());
        server.extend(b"}\r\n");
        server.extend(body);
        server.extend(b" FLAGS (\\Seen \xc3\xa9))\r\nA1 OK done\r\n");
        let whole = guarded(&[&server]);
        // The same bytes split at every point give the same result.
        for split in 0..server.len() {
            assert_eq!(
                guarded(&[&server[..split], &server[split..]]),
                whole,
                "split at {split}"
            );
        }
        let text = String::from_utf8_lossy(&whole);
        assert!(
            text.starts_with("* OK [CAPABILITY IMAP4rev1]?? ready\r\n"),
            "{text}"
        );
        let at = whole.windows(body.len()).position(|w| w == body);
        assert!(at.is_some(), "the literal is byte-exact");
        assert!(
            text.ends_with(" FLAGS (\\Seen ??))\r\nA1 OK done\r\n"),
            "{text}"
        );
    }

    #[test]
    fn the_parser_no_longer_panics_on_8_bit_text_after_a_code() {
        let mut bytes = b"* OK [CAPABILITY IMAP4rev1]\xcd\xcd\xcd ready\r\n".to_vec();
        TextGuard::new(()).filter(&mut bytes);
        let parsed = async_imap::imap_proto::Response::parse(&bytes);
        assert!(parsed.is_ok());
    }
}
