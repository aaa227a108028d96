//! A read-side guard for server bytes: outside message literals, IMAP responses are 7-bit text,
//! yet a broken or hostile server may send 8-bit bytes there. imap-proto 0.17 panics on some of
//! them (a response code followed by a multi-byte character is sliced inside the character), and
//! a panic in the worker aborts the whole process with every job of its batch. The guard passes
//! literals (`{n}` then n bytes: message sources) through untouched and turns every other
//! non-ASCII byte into `?`.
//!
//! While told to listen, the guard also keeps the capabilities the server announces on its own
//! (`[CAPABILITY ...]` in the greeting or the login's tagged OK, or an untagged `* CAPABILITY`
//! before it, as Gmail sends): async-imap drops them, and a CAPABILITY command costs a round
//! trip on every sync.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// Lines longer than this are not looked at for capabilities (real lists are under 1 KB).
const MAX_TAPPED_LINE: usize = 8192;

/// The capabilities a server announced unasked, shared between the guard and the session.
#[derive(Debug, Clone)]
pub(crate) struct CapabilityTap(Arc<TapShared>);

#[derive(Debug)]
struct TapShared {
    listening: AtomicBool,
    seen: Mutex<Option<Vec<String>>>,
}

impl CapabilityTap {
    /// A tap that listens until [`CapabilityTap::stop`].
    pub(crate) fn new() -> Self {
        Self(Arc::new(TapShared {
            listening: AtomicBool::new(true),
            seen: Mutex::new(None),
        }))
    }

    /// The capabilities announced since the last call (the latest list wins), upper-cased.
    pub(crate) fn take(&self) -> Option<Vec<String>> {
        self.0.seen.lock().ok().and_then(|mut seen| seen.take())
    }

    /// Stops looking at lines (after login nothing more is needed; FETCH streams stay cheap).
    pub(crate) fn stop(&self) {
        self.0.listening.store(false, Ordering::Relaxed);
    }

    fn listening(&self) -> bool {
        self.0.listening.load(Ordering::Relaxed)
    }

    fn offer(&self, line: &[u8]) {
        if let Some(caps) = announced_capabilities(line)
            && let Ok(mut seen) = self.0.seen.lock()
        {
            *seen = Some(caps);
        }
    }
}

/// The capability list a response line announces: `* CAPABILITY a b`, or an OK/PREAUTH status
/// (greeting or tagged) with a `[CAPABILITY a b]` code.
pub(crate) fn announced_capabilities(line: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let mut words = text.splitn(3, ' ');
    let (tag, status, rest) = (words.next()?, words.next()?, words.next().unwrap_or(""));
    let list = if tag == "*" && status.eq_ignore_ascii_case("CAPABILITY") {
        rest
    } else if status.eq_ignore_ascii_case("OK") || status.eq_ignore_ascii_case("PREAUTH") {
        let code = rest.strip_prefix('[')?;
        let (name, list) = code.split_once(' ')?;
        if !name.eq_ignore_ascii_case("CAPABILITY") {
            return None;
        }
        list.split_once(']')?.0
    } else {
        return None;
    };
    let caps: Vec<String> = list
        .split_ascii_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    (!caps.is_empty()).then_some(caps)
}

/// Wraps a stream; see the module documentation.
#[derive(Debug)]
pub(crate) struct TextGuard<T> {
    inner: T,
    state: State,
    tap: Option<CapabilityTap>,
    /// The response line being read, while the tap listens.
    line: Vec<u8>,
}

impl<T> TextGuard<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            state: State::Line(Brace::None),
            tap: None,
            line: Vec::new(),
        }
    }

    /// Also reports announced capabilities to `tap`.
    pub(crate) fn with_tap(inner: T, tap: CapabilityTap) -> Self {
        Self {
            tap: Some(tap),
            ..Self::new(inner)
        }
    }

    pub(crate) fn into_inner(self) -> T {
        self.inner
    }

    /// Rewrites freshly read bytes in place.
    fn filter(&mut self, bytes: &mut [u8]) {
        let tapping = match &self.tap {
            Some(tap) if tap.listening() => true,
            Some(_) => {
                self.tap = None;
                self.line = Vec::new();
                false
            }
            None => false,
        };
        let mut i = 0;
        while i < bytes.len() {
            // Message sources are literals: skipped in one step, not byte by byte (the guard
            // was 5 % of a full sync's CPU).
            if let State::Literal(left) = self.state {
                let skip = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - i);
                i += skip;
                self.state = match left - skip as u64 {
                    0 => State::Line(Brace::None),
                    n => State::Literal(n),
                };
                continue;
            }
            let b = &mut bytes[i];
            i += 1;
            self.state = match self.state {
                // Handled above; kept for the match to be complete.
                literal @ State::Literal(_) => literal,
                State::Line(brace) => {
                    if !b.is_ascii() {
                        *b = b'?';
                    }
                    if tapping {
                        self.tap_byte(*b, brace);
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

    /// Collects a response line for the tap; a line that announces a literal is never a
    /// capability list, so it is dropped there.
    fn tap_byte(&mut self, b: u8, brace: Brace) {
        if b == b'\n' {
            let line = std::mem::take(&mut self.line);
            if !matches!(brace, Brace::Cr(n) if n > 0)
                && line.len() < MAX_TAPPED_LINE
                && let Some(tap) = &self.tap
            {
                tap.offer(&line);
            }
        } else if self.line.len() < MAX_TAPPED_LINE {
            self.line.push(b);
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
    fn announced_capabilities_are_read_from_codes_and_untagged_lists() {
        let caps = |line: &str| announced_capabilities(line.as_bytes());
        assert_eq!(
            caps("a OK [CAPABILITY IMAP4rev1 SASL-IR condstore] Logged in\r\n"),
            Some(vec![
                "IMAP4REV1".into(),
                "SASL-IR".into(),
                "CONDSTORE".into()
            ])
        );
        assert_eq!(
            caps("* CAPABILITY IMAP4rev1 ID X-GM-EXT-1\r\n"),
            Some(vec!["IMAP4REV1".into(), "ID".into(), "X-GM-EXT-1".into()])
        );
        assert!(caps("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n").is_some());
        assert!(caps("* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n").is_some());
        assert_eq!(caps("a OK AUTHENTICATE completed.\r\n"), None);
        assert_eq!(caps("a NO [CAPABILITY IMAP4rev1] no\r\n"), None);
        assert_eq!(caps("* OK [UIDNEXT 4] next\r\n"), None);
        assert_eq!(caps("a OK [CAPABILITY] empty\r\n"), None);
        assert_eq!(caps("* 1 FETCH (FLAGS (\\Seen))\r\n"), None);
    }

    #[test]
    fn the_tap_sees_lines_split_across_reads_and_stops_when_told() {
        let tap = CapabilityTap::new();
        let mut g = TextGuard::with_tap((), tap.clone());
        let server = b"* OK [CAPABILITY IMAP4rev1 SASL-IR] ready\r\n";
        for chunk in server.chunks(5) {
            g.filter(&mut chunk.to_vec());
        }
        assert_eq!(
            tap.take(),
            Some(vec!["IMAP4REV1".to_owned(), "SASL-IR".to_owned()])
        );
        // A literal's content is never taken for a capability list.
        let mut literal =
            b"* 1 FETCH (BODY[] {30}\r\n* CAPABILITY FAKE IN LITERAL\r\n)\r\n".to_vec();
        g.filter(&mut literal);
        assert_eq!(tap.take(), None);
        g.filter(&mut b"a OK [CAPABILITY IMAP4rev1 CONDSTORE] Logged in\r\n".to_vec());
        assert_eq!(
            tap.take(),
            Some(vec!["IMAP4REV1".to_owned(), "CONDSTORE".to_owned()])
        );
        tap.stop();
        g.filter(&mut b"* CAPABILITY LATER\r\n".to_vec());
        assert_eq!(tap.take(), None);
    }

    #[test]
    fn the_parser_no_longer_panics_on_8_bit_text_after_a_code() {
        let mut bytes = b"* OK [CAPABILITY IMAP4rev1]\xcd\xcd\xcd ready\r\n".to_vec();
        TextGuard::new(()).filter(&mut bytes);
        let parsed = async_imap::imap_proto::Response::parse(&bytes);
        assert!(parsed.is_ok());
    }
}
