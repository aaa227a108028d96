//! Validation of a send request into a [`Draft`]: every address parsed with lettre, every header
//! value free of line breaks and control characters (no header injection), attachments decoded
//! and within the size limit, custom headers only from the allow-list. All field errors are
//! reported together; nothing is sent unless the whole request is valid.

use std::collections::HashSet;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{Address, message::header::HeaderName};

use super::ComposeError;
use super::request::{AddressInput, AttachmentInput, SendRequest};

/// Headers callers may set themselves (besides any `X-` header). Everything structural (From,
/// To, Subject, Date, Message-ID, MIME and routing headers) is ours to write.
pub const ALLOWED_HEADERS: &[&str] = &[
    "Auto-Submitted",
    "Comments",
    "Importance",
    "Keywords",
    "List-Help",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Organization",
    "Precedence",
    "Priority",
    "Sensitivity",
];

/// RFC 5322's line limit, applied to every single header value we accept.
const MAX_HEADER_CHARS: usize = 998;
const MAX_NAME_CHARS: usize = 256;
const MAX_FILENAME_CHARS: usize = 255;
const MAX_CUSTOM_HEADERS: usize = 20;

/// What a request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total decoded size of all attachments.
    pub max_attachment_bytes: u64,
    /// To, Cc and Bcc together (Gmail and Exchange cap recipients per message too).
    pub max_recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
        }
    }
}

/// One field that is not acceptable, named as the caller wrote it (`to[1]`,
/// `attachments[0].content_base64`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// A decoded attachment.
#[derive(Debug, Clone)]
pub struct DraftAttachment {
    pub filename: String,
    pub content_type: ContentType,
    pub bytes: Vec<u8>,
    /// Without angle brackets.
    pub content_id: Option<String>,
}

/// A valid message, ready to be built.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<DraftAttachment>,
    /// Allow-listed headers, names as given.
    pub headers: Vec<(String, String)>,
}

impl Draft {
    /// Every envelope recipient, lower-cased for reporting.
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }
}

struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Refuses CR, LF, NUL and other control characters (tab aside) in text that ends up in a
    /// header, and over-long values. Returns whether the text is fine.
    fn header_text(&mut self, field: &str, text: &str, max: usize) -> bool {
        if text.contains(['\r', '\n']) {
            self.fail(
                field,
                "contains a line break; header values must be one line (header injection is refused)",
            );
            return false;
        }
        if text.chars().any(|c| c.is_control() && c != '\t') {
            self.fail(field, "contains a NUL or another control character");
            return false;
        }
        if text.chars().count() > max {
            self.fail(field, format!("is longer than {max} characters"));
            return false;
        }
        true
    }

    fn mailbox(&mut self, field: &str, input: &AddressInput) -> Option<Mailbox> {
        match input {
            AddressInput::Text(text) => {
                if !self.header_text(field, text, MAX_HEADER_CHARS) {
                    return None;
                }
                match Mailbox::from_str(text.trim()) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        self.fail(field, format!("{text:?} is not a valid address: {e}"));
                        None
                    }
                }
            }
            AddressInput::Parts(parts) => {
                let address_ok = self.header_text(&format!("{field}.address"), &parts.address, 320);
                let name_ok = match &parts.name {
                    Some(name) => self.header_text(&format!("{field}.name"), name, MAX_NAME_CHARS),
                    None => true,
                };
                if !(address_ok && name_ok) {
                    return None;
                }
                match Address::from_str(parts.address.trim()) {
                    Ok(address) => Some(Mailbox::new(
                        parts.name.clone().filter(|n| !n.trim().is_empty()),
                        address,
                    )),
                    Err(e) => {
                        self.fail(
                            format!("{field}.address"),
                            format!("{:?} is not a valid address: {e}", parts.address),
                        );
                        None
                    }
                }
            }
        }
    }

    fn mailboxes(&mut self, field: &str, inputs: &[AddressInput]) -> Vec<Mailbox> {
        inputs
            .iter()
            .enumerate()
            .filter_map(|(i, input)| self.mailbox(&format!("{field}[{i}]"), input))
            .collect()
    }

    fn attachment(&mut self, i: usize, a: &AttachmentInput) -> Option<DraftAttachment> {
        let field = format!("attachments[{i}]");
        let name = &a.filename;
        let mut ok = true;
        if name.trim().is_empty() {
            self.fail(format!("{field}.filename"), "must not be empty");
            ok = false;
        } else {
            ok &= self.header_text(&format!("{field}.filename"), name, MAX_FILENAME_CHARS);
        }
        let content_type = match ContentType::parse(a.content_type.trim()) {
            Ok(ct) if !a.content_type.contains(['\r', '\n']) => Some(ct),
            _ => {
                self.fail(
                    format!("{field}.content_type"),
                    format!(
                        "attachment {name:?}: {:?} is not a media type",
                        a.content_type
                    ),
                );
                None
            }
        };
        let content_id = match &a.content_id {
            None => None,
            Some(cid) => {
                let bare = cid.trim().trim_start_matches('<').trim_end_matches('>');
                let valid = !bare.is_empty()
                    && bare.len() <= 250
                    && bare
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'));
                if !valid {
                    self.fail(
                        format!("{field}.content_id"),
                        format!(
                            "attachment {name:?}: a content id is 1 to 250 printable ASCII characters without spaces, quotes or angle brackets"
                        ),
                    );
                    ok = false;
                }
                Some(bare.to_owned())
            }
        };
        // Callers often wrap base64 at 76 columns: line breaks and spaces are not data.
        let compact: String = a
            .content_base64
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = match STANDARD.decode(compact.as_bytes()) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.fail(
                    format!("{field}.content_base64"),
                    format!("attachment {name:?}: the content is not valid base64 ({e})"),
                );
                None
            }
        };
        match (ok, content_type, bytes) {
            (true, Some(content_type), Some(bytes)) => Some(DraftAttachment {
                filename: name.clone(),
                content_type,
                bytes,
                content_id,
            }),
            _ => None,
        }
    }

    fn custom_header(&mut self, name: &str, value: &str) -> Option<(String, String)> {
        let field = format!("headers.{name}");
        let well_formed = !name.is_empty()
            && name.len() <= 76
            && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !well_formed || HeaderName::new_from_ascii(name.to_owned()).is_err() {
            self.fail(field, "is not a valid header name");
            return None;
        }
        let lower = name.to_ascii_lowercase();
        let allowed = (lower.starts_with("x-") && name.len() > 2)
            || ALLOWED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name));
        if !allowed {
            self.fail(
                field,
                format!(
                    "this header cannot be set; allowed are X-* and {}",
                    ALLOWED_HEADERS.join(", ")
                ),
            );
            return None;
        }
        if !self.header_text(&field, value, MAX_HEADER_CHARS) {
            return None;
        }
        Some((name.to_owned(), value.to_owned()))
    }
}

/// The least number of bytes `base64` can decode to (whitespace aside): enough to refuse an
/// oversized request before decoding anything.
fn decoded_lower_bound(base64: &str) -> u64 {
    let chars = base64.bytes().filter(|b| !b.is_ascii_whitespace()).count() as u64;
    (chars / 4 * 3).saturating_sub(2)
}

/// Checks a request and turns it into a [`Draft`].
pub fn validate(request: &SendRequest, limits: &Limits) -> Result<Draft, ComposeError> {
    // Refuse oversized attachments before spending time and memory on decoding them.
    let at_least: u64 = request
        .attachments
        .iter()
        .map(|a| decoded_lower_bound(&a.content_base64))
        .sum();
    if at_least > limits.max_attachment_bytes {
        return Err(ComposeError::TooLarge {
            total: at_least,
            limit: limits.max_attachment_bytes,
        });
    }
    let mut c = Checker { errors: Vec::new() };
    let to = c.mailboxes("to", &request.to);
    let cc = c.mailboxes("cc", &request.cc);
    let bcc = c.mailboxes("bcc", &request.bcc);
    let count = request.to.len() + request.cc.len() + request.bcc.len();
    if count == 0 {
        c.fail(
            "to",
            "the message has no recipients (to, cc and bcc are all empty)",
        );
    } else if count > limits.max_recipients {
        c.fail(
            "to",
            format!(
                "the message has {count} recipients; at most {} are allowed",
                limits.max_recipients
            ),
        );
    }
    let reply_to = request
        .reply_to
        .as_ref()
        .and_then(|r| c.mailbox("reply_to", r));
    if let Some(subject) = &request.subject {
        c.header_text("subject", subject, MAX_HEADER_CHARS);
    }
    let has_body = request.text.is_some() || request.html.is_some();
    if !has_body && request.attachments.is_empty() {
        c.fail(
            "text",
            "the message needs text, html or at least one attachment",
        );
    }
    let attachments: Vec<DraftAttachment> = request
        .attachments
        .iter()
        .enumerate()
        .filter_map(|(i, a)| c.attachment(i, a))
        .collect();
    let mut seen = HashSet::new();
    for (i, a) in attachments.iter().enumerate() {
        if let Some(cid) = &a.content_id
            && !seen.insert(cid.to_ascii_lowercase())
        {
            c.fail(
                format!("attachments[{i}].content_id"),
                format!("content id {cid:?} is used twice"),
            );
        }
    }
    if request.headers.len() > MAX_CUSTOM_HEADERS {
        c.fail(
            "headers",
            format!("at most {MAX_CUSTOM_HEADERS} custom headers are allowed"),
        );
    }
    let headers = request
        .headers
        .iter()
        .filter_map(|(name, value)| c.custom_header(name, value))
        .collect();
    if !c.errors.is_empty() {
        return Err(ComposeError::Invalid(c.errors));
    }
    let total: u64 = attachments.iter().map(|a| a.bytes.len() as u64).sum();
    if total > limits.max_attachment_bytes {
        return Err(ComposeError::TooLarge {
            total,
            limit: limits.max_attachment_bytes,
        });
    }
    Ok(Draft {
        to,
        cc,
        bcc,
        reply_to,
        subject: request.subject.clone(),
        text: request.text.clone(),
        html: request.html.clone(),
        attachments,
        headers,
    })
}
