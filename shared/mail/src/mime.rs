//! MIME parsing with mail-parser: the metadata kept for every synced message, and the bodies
//! the messages API shows. A message that does not parse is still stored raw; the parser only
//! decides what can be said about it.

mod skip;
#[cfg(test)]
mod skip_tests;

use std::sync::LazyLock;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use mailroom_core::domain::AttachmentInfo;

/// Bounds that keep one metadata item small whatever the message (store items are capped).
const MAX_ADDRESSES: usize = 50;
const MAX_ADDRESS_CHARS: usize = 320;
const MAX_REFERENCES: usize = 50;
const MAX_ATTACHMENTS: usize = 100;
const MAX_HEADER_CHARS: usize = 998;
const SNIPPET_CHARS: usize = 200;

/// The parser for the metadata fields: only the headers the record keeps (and the MIME headers
/// the parts need) are parsed; the others (Received chains, DKIM…) are skipped, which was a
/// visible share of a full sync's CPU. Built once.
static FIELDS_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_minimal_headers()
        .with_message_ids()
        .default_header_ignore()
});

/// What the metadata record says about a message's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFields {
    pub parsed: bool,
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<i64>,
    pub snippet: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
}

impl ParsedFields {
    /// The thread key from the headers: the thread's root (first References entry), else the
    /// parent, else the message itself.
    pub fn thread_key(&self) -> Option<String> {
        self.references
            .first()
            .or(self.in_reply_to.as_ref())
            .or(self.message_id.as_ref())
            .map(|id| format!("<{id}>"))
    }
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

fn addresses(addr: Option<&Address<'_>>) -> Vec<String> {
    addr.map(|a| {
        a.iter()
            .take(MAX_ADDRESSES)
            .map(|one| match (one.name(), one.address()) {
                (Some(name), Some(address)) => format!("{name} <{address}>"),
                (None, Some(address)) => address.to_owned(),
                (Some(name), None) => name.to_owned(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .map(|s| clip(&s, MAX_ADDRESS_CHARS))
            .collect()
    })
    .unwrap_or_default()
}

fn id_list(value: &HeaderValue<'_>, max: usize) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![clip(t, MAX_HEADER_CHARS)],
        HeaderValue::TextList(list) => list
            .iter()
            .take(max)
            .map(|t| clip(t, MAX_HEADER_CHARS))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads the metadata fields of a raw message; `parsed` is false when no header could be read.
/// Binary base64 attachments are sized from their encoded text instead of being decoded (see
/// [`skip`]); the fields are the same as [`parse_fields_whole`]'s.
pub fn parse_fields(raw: &[u8]) -> ParsedFields {
    if let Some((copy, cuts)) = skip::cut_binary_parts(raw) {
        match FIELDS_PARSER.parse(&copy) {
            Some(message) if cuts_agree(&message, &cuts) => return fields_of(&message, &cuts),
            _ => tracing::debug!("the message without its attachment bodies reads differently"),
        }
    }
    parse_fields_whole(raw)
}

/// [`parse_fields`] decoding every part (the reference the cut path must match).
pub fn parse_fields_whole(raw: &[u8]) -> ParsedFields {
    match FIELDS_PARSER.parse(raw) {
        Some(message) => fields_of(&message, &[]),
        None => ParsedFields::default(),
    }
}

fn is_binary(part: &mail_parser::MessagePart<'_>) -> bool {
    matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_))
}

/// The decoded size of a part whose body was cut out, if it was.
fn cut_size(cuts: &[skip::Cut], part: &mail_parser::MessagePart<'_>) -> Option<u64> {
    let offset = part.offset_body as usize;
    cuts.iter()
        .find(|cut| cut.offset == offset && is_binary(part))
        .and_then(|cut| cut.size)
}

/// Whether mail-parser read every cut part where it was cut, as the whole message's: a binary
/// part cut whole as an empty binary part; a text part cut short as the first text body (the
/// snippet's), still longer than the snippet's preview, and not an attachment (whose size
/// would count). Then every field reads as in the whole message.
fn cuts_agree(message: &Message<'_>, cuts: &[skip::Cut]) -> bool {
    let at = |part: &mail_parser::MessagePart<'_>, cut: &skip::Cut| {
        part.offset_body as usize == cut.offset
    };
    cuts.iter().all(|cut| match cut.size {
        Some(_) => message
            .parts
            .iter()
            .any(|part| at(part, cut) && is_binary(part) && part.body.len() == 0),
        None => {
            let first_text = message
                .text_body
                .first()
                .and_then(|id| message.parts.get(*id as usize));
            first_text.is_some_and(|part| {
                at(part, cut)
                    && matches!(&part.body, PartType::Text(text) if text.len() > 2 * SNIPPET_CHARS)
            }) && !message.attachments().any(|part| at(part, cut))
        }
    })
}

fn fields_of(message: &Message<'_>, cuts: &[skip::Cut]) -> ParsedFields {
    // mail-parser reads almost anything; a message counts as parsed when at least one header
    // has a valid RFC 5322 field name.
    let valid_name =
        |name: &str| !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    if !message.headers().iter().any(|h| valid_name(h.name())) {
        return ParsedFields::default();
    }
    let snippet = message.body_preview(SNIPPET_CHARS).map(|p| {
        let collapsed = p.split_whitespace().collect::<Vec<_>>().join(" ");
        clip(&collapsed, SNIPPET_CHARS)
    });
    let attachments = message
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| AttachmentInfo {
            filename: part.attachment_name().map(|n| clip(n, 255)),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            size: cut_size(cuts, part).unwrap_or(part.len() as u64),
        })
        .collect();
    ParsedFields {
        parsed: true,
        message_id: message.message_id().map(|m| clip(m, MAX_HEADER_CHARS)),
        in_reply_to: id_list(message.in_reply_to(), 1).into_iter().next(),
        references: id_list(message.references(), MAX_REFERENCES),
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().map(|s| clip(s, MAX_HEADER_CHARS)),
        date: message.date().map(|d| d.to_timestamp()),
        snippet: snippet.filter(|s| !s.is_empty()),
        attachments,
    }
}

/// The first text and HTML bodies of a raw message, for display.
pub fn parse_bodies(raw: &[u8]) -> (Option<String>, Option<String>) {
    match MessageParser::default().parse(raw) {
        Some(m) => {
            // body_html would render a text-only message as HTML: only a real HTML part counts.
            let html = m
                .html_part(0)
                .filter(|p| p.is_text_html())
                .and_then(|p| p.text_contents())
                .map(str::to_owned);
            (m.body_text(0).map(|t| t.into_owned()), html)
        }
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Ann <ann@example.test>\r\nTo: bob@example.test, Cy <cy@example.test>\r\n\
Subject: =?utf-8?q?Caf=C3=A9?=\r\nMessage-ID: <m2@example.test>\r\nIn-Reply-To: <m1@example.test>\r\n\
References: <m0@example.test> <m1@example.test>\r\nDate: Tue, 1 Jul 2025 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nHello   there\r\nfriend\r\n--b\r\n\
Content-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n";

    #[test]
    fn reads_the_metadata_fields() {
        let f = parse_fields(MAIL);
        assert!(f.parsed);
        assert_eq!(f.message_id.as_deref(), Some("m2@example.test"));
        assert_eq!(f.in_reply_to.as_deref(), Some("m1@example.test"));
        assert_eq!(f.references, vec!["m0@example.test", "m1@example.test"]);
        assert_eq!(f.thread_key().as_deref(), Some("<m0@example.test>"));
        assert_eq!(f.from, vec!["Ann <ann@example.test>"]);
        assert_eq!(f.to, vec!["bob@example.test", "Cy <cy@example.test>"]);
        assert_eq!(f.subject.as_deref(), Some("Café"));
        assert_eq!(f.date, Some(1_751_364_000));
        assert_eq!(f.snippet.as_deref(), Some("Hello there friend"));
        assert_eq!(f.attachments.len(), 1);
        assert_eq!(f.attachments[0].filename.as_deref(), Some("a.pdf"));
        assert_eq!(f.attachments[0].content_type, "application/pdf");
        assert_eq!(f.attachments[0].size, 3);
        let (text, html) = parse_bodies(MAIL);
        assert!(text.is_some_and(|t| t.contains("Hello")));
        assert_eq!(html, None);
    }

    #[test]
    fn garbage_is_not_parsed() {
        assert!(!parse_fields(b"").parsed);
        assert!(!parse_fields(b"\x00\x01\x02 no headers here").parsed);
    }
}
