//! Bodies cut out before mail-parser reads a message: it decodes every part while it parses
//! (no option to skip), though the metadata only needs an attachment's decoded size and the
//! first 200 characters of the text. A light walk of the multipart structure finds binary
//! base64 parts, sizes them from their encoded text, and finds the first text/plain part; it
//! hands mail-parser a copy without the binary bodies and without that text's tail past a few
//! KB. The walk is strict and bails out on anything odd; the caller checks that mail-parser saw
//! each cut part where it was cut, as the whole message's, and parses the original otherwise.

/// A cut body: where the part's body starts in the copy, and the decoded size of a binary
/// part cut whole (`None`: the tail of the first text/plain part was cut, its start kept for
/// the snippet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cut {
    pub offset: usize,
    pub size: Option<u64>,
}

/// What the walk cuts: the part's body start, the bytes removed, the binary size.
struct Region {
    body: usize,
    start: usize,
    end: usize,
    size: Option<u64>,
}

/// The walk's findings.
#[derive(Default)]
struct Walk {
    regions: Vec<Region>,
    /// Whether a text/plain part was met already (only the first one's tail is cut).
    text_seen: bool,
}

/// How much of a text/plain body is kept: enough for the snippet whatever the encoding (the
/// caller checks the part still decodes to more than the snippet needs).
const TEXT_KEEP: usize = 2048;

/// Deeper nesting than this is left to mail-parser as is.
const MAX_DEPTH: usize = 16;

/// A message with its binary base64 bodies and its long first text's tail cut out, or `None`
/// when there is nothing to cut (or the structure is not plain enough to be sure).
pub(super) fn cut_binary_parts(raw: &[u8]) -> Option<(Vec<u8>, Vec<Cut>)> {
    let mut found = Walk::default();
    walk(raw, 0, raw.len(), 0, &mut found).ok()?;
    if found.regions.is_empty() {
        return None;
    }
    let removed: usize = found.regions.iter().map(|r| r.end - r.start).sum();
    let mut copy = Vec::with_capacity(raw.len() - removed);
    let mut cuts = Vec::with_capacity(found.regions.len());
    let mut at = 0;
    for region in found.regions {
        // The part's body starts at or before the removed bytes, after every earlier region.
        cuts.push(Cut {
            offset: copy.len() + (region.body - at),
            size: region.size,
        });
        copy.extend_from_slice(&raw[at..region.start]);
        at = region.end;
    }
    copy.extend_from_slice(&raw[at..]);
    Some((copy, cuts))
}

/// What the walk needs from a part's headers.
#[derive(Default)]
struct Head {
    /// Lowercase `type/subtype`, when exactly one Content-Type header says it.
    mime: Option<String>,
    boundary: Option<Vec<u8>>,
    /// Lowercase Content-Transfer-Encoding, if any.
    encoding: Option<String>,
    /// Lowercase charset parameter, if any.
    charset: Option<String>,
    content_types: usize,
    encodings: usize,
    /// Where the body starts (after the blank line).
    body: usize,
}

/// The lines of `raw[start..end]`: (line start, line end without its line break, next line).
fn lines(raw: &[u8], start: usize, end: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let line_start = at;
        let (content_end, next) = match raw[at..end].iter().position(|&b| b == b'\n') {
            Some(nl) => (at + nl, at + nl + 1),
            None => (end, end),
        };
        at = next;
        let content_end = if content_end > line_start && raw[content_end - 1] == b'\r' {
            content_end - 1
        } else {
            content_end
        };
        Some((line_start, content_end, next))
    })
}

/// Reads the headers of the part at `raw[start..end]`; `None` when they never end.
fn head(raw: &[u8], start: usize, end: usize) -> Option<Head> {
    let mut head = Head::default();
    // The header being unfolded: its lowercase name and value.
    let mut current: Option<(Vec<u8>, Vec<u8>)> = None;
    for (line, content_end, next) in lines(raw, start, end) {
        let text = &raw[line..content_end];
        if text.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if let Some((_, value)) = &mut current {
                value.extend_from_slice(text);
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            head.take(&name, &value)?;
        }
        if text.is_empty() {
            head.body = next;
            return Some(head);
        }
        let colon = text.iter().position(|&b| b == b':')?;
        let name = text[..colon].to_ascii_lowercase();
        if name == b"content-type" || name == b"content-transfer-encoding" {
            current = Some((name, text[colon + 1..].to_vec()));
        }
    }
    None
}

impl Head {
    fn take(&mut self, name: &[u8], value: &[u8]) -> Option<()> {
        let value = std::str::from_utf8(value).ok()?;
        if name == b"content-transfer-encoding" {
            self.encodings += 1;
            self.encoding = Some(value.trim().to_ascii_lowercase());
            return Some(());
        }
        self.content_types += 1;
        let mut params = value.split(';');
        let mime = params
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !mime.contains('/') {
            return None;
        }
        for param in params {
            let Some((key, val)) = param.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            if key.starts_with("boundary*") {
                return None;
            }
            if key == "charset" {
                self.charset = Some(val.trim().trim_matches('"').to_ascii_lowercase());
            }
            if key == "boundary" {
                let val = val.trim();
                let val = match val.strip_prefix('"') {
                    Some(quoted) => quoted.strip_suffix('"')?,
                    None => val,
                };
                if val.is_empty() || val.contains(['"', '\\']) {
                    return None;
                }
                self.boundary = Some(val.as_bytes().to_vec());
            }
        }
        self.mime = Some(mime);
        Some(())
    }
}

/// Whether `line` delimits parts of `boundary`: `--boundary` or `--boundary--`, then only
/// whitespace. Anything else holding `--boundary` fails the walk (mail-parser finds
/// boundaries anywhere in a line).
fn delimiter(line: &[u8], boundary: &[u8]) -> Result<Option<bool>, ()> {
    let mut from = 0;
    let mut found = None;
    while let Some(dash) = line[from..].windows(2).position(|w| w == b"--") {
        let at = from + dash;
        if line[at + 2..].starts_with(boundary) {
            if at != 0 {
                return Err(());
            }
            let rest = &line[2 + boundary.len()..];
            let (closing, rest) = match rest.strip_prefix(b"--") {
                Some(rest) => (true, rest),
                None => (false, rest),
            };
            if !rest.iter().all(u8::is_ascii_whitespace) {
                return Err(());
            }
            found = Some(closing);
        }
        from = at + 1;
    }
    Ok(found)
}

/// Walks the part at `raw[start..end]`, adding what to cut to `found`.
fn walk(raw: &[u8], start: usize, end: usize, depth: usize, found: &mut Walk) -> Result<(), ()> {
    // Headers that never end: nothing to cut here.
    let Some(head) = head(raw, start, end) else {
        return Ok(());
    };
    if head.content_types > 1 || head.encodings > 1 {
        return Err(());
    }
    // A message without Content-Type is text/plain; a part without one is left alone.
    let mime = match head.mime.as_deref() {
        Some(mime) => mime,
        None if depth == 0 => "text/plain",
        None => return Ok(()),
    };
    if mime.starts_with("multipart/") {
        let Some(boundary) = head.boundary.as_deref() else {
            return Ok(());
        };
        if depth >= MAX_DEPTH {
            return Err(());
        }
        // The part under way: where it starts; it ends at the line break before a delimiter,
        // which belongs to the delimiter.
        let mut part: Option<usize> = None;
        // Only lines holding "--" can delimit (or hide a boundary mid-line): jump from one to
        // the next with memchr, so a base64 body (no '-' at all) is skipped in one search.
        let mut at = head.body;
        while let Some(dash) = find_double_dash(&raw[at..end]) {
            let dash = at + dash;
            let line = raw[at..dash]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(at, |nl| at + nl + 1);
            let (content_end, next) = match raw[dash..end].iter().position(|&b| b == b'\n') {
                Some(nl) => (dash + nl, dash + nl + 1),
                None => (end, end),
            };
            at = next;
            let content_end = if content_end > line && raw[content_end - 1] == b'\r' {
                content_end - 1
            } else {
                content_end
            };
            let text = &raw[line..content_end];
            let Some(closing) = delimiter(text, boundary)? else {
                continue;
            };
            if let Some(part_start) = part.take() {
                let mut part_end = line;
                if part_end > part_start {
                    part_end -= 1;
                    if part_end > part_start && raw[part_end - 1] == b'\r' {
                        part_end -= 1;
                    }
                }
                walk(raw, part_start, part_end, depth + 1, found)?;
            }
            if closing {
                return Ok(());
            }
            part = Some(next);
        }
        // No closing delimiter: the last part is left as it is.
        return Ok(());
    }
    if mime == "text/plain" {
        if !std::mem::replace(&mut found.text_seen, true)
            && let Some(keep) = text_keep(&head, &raw[head.body..end])
        {
            found.regions.push(Region {
                body: head.body,
                start: head.body + keep,
                end,
                size: None,
            });
        }
        return Ok(());
    }
    let binary = !(mime.starts_with("text/") || mime.starts_with("message/"));
    if binary
        && head.encoding.as_deref() == Some("base64")
        && head.body < end
        && let Some(size) = decoded_size(&raw[head.body..end])
    {
        found.regions.push(Region {
            body: head.body,
            start: head.body,
            end,
            size: Some(size),
        });
    }
    Ok(())
}

/// How much of a long text/plain body to keep: up to the first line break past [`TEXT_KEEP`],
/// for encodings and charsets whose decoding of a prefix is the prefix of the decoding (a line
/// break never falls inside a character or a quoted-printable escape there). `None`: keep it.
fn text_keep(head: &Head, body: &[u8]) -> Option<usize> {
    let encoding_ok = matches!(
        head.encoding.as_deref(),
        None | Some("7bit" | "8bit" | "quoted-printable")
    );
    let charset_ok = matches!(
        head.charset.as_deref(),
        None | Some("utf-8" | "us-ascii" | "iso-8859-1" | "windows-1252")
    );
    if !(encoding_ok && charset_ok) || body.len() < 2 * TEXT_KEEP {
        return None;
    }
    let line_end = body[TEXT_KEEP..].iter().position(|&b| b == b'\n')?;
    let keep = TEXT_KEEP + line_end + 1;
    (body.len() - keep >= TEXT_KEEP / 2).then_some(keep)
}

/// Where "--" first occurs in `bytes`. Blocks without a '-' are skipped with `contains`
/// (std's word-at-a-time memchr): a base64 body has none.
fn find_double_dash(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 1024;
    let mut from = 0;
    while from < bytes.len() {
        let block_end = (from + BLOCK).min(bytes.len());
        if !bytes[from..block_end].contains(&b'-') {
            from = block_end;
            continue;
        }
        let Some(dash) = bytes[from..block_end].iter().position(|&b| b == b'-') else {
            from = block_end;
            continue;
        };
        let at = from + dash;
        match bytes.get(at + 1) {
            Some(b'-') => return Some(at),
            Some(_) => from = at + 2,
            None => return None,
        }
    }
    None
}

/// Byte classes for [`decoded_size`]: 1 a base64 letter, 2 whitespace, 0 anything else (a
/// table: the crate is built for size, where range tests do not vectorize and run slower).
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
            1
        } else if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
            2
        } else {
            0
        };
        b += 1;
    }
    table
};

/// The decoded size of a base64 body, when it is plain base64 (letters, line breaks, and at
/// most two `=` of padding at the end) that mail-parser decodes to exactly that many bytes.
pub(super) fn decoded_size(body: &[u8]) -> Option<u64> {
    let mut text = body;
    while let Some((last, rest)) = text.split_last() {
        if !matches!(last, b'\r' | b'\n' | b' ' | b'\t') {
            break;
        }
        text = rest;
    }
    let mut padding = 0;
    while let Some((b'=', rest)) = text.split_last() {
        padding += 1;
        text = rest;
    }
    let (mut letters, mut bad) = (0usize, false);
    for &b in text {
        let class = CLASS[usize::from(b)];
        bad |= class == 0;
        letters += usize::from(class & 1);
    }
    // Only canonical endings: mail-parser drops an unpadded partial group and decodes odd
    // padding its own way.
    let tail = match (letters % 4, padding) {
        (0, 0) => 0,
        (2, 2) => 1,
        (3, 1) => 2,
        _ => return None,
    };
    if bad {
        return None;
    }
    Some((letters / 4 * 3 + tail) as u64)
}
