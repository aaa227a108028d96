//! Building the MIME message with lettre's builder: text and html as multipart/alternative,
//! inline images (content ids) in multipart/related, other attachments in multipart/mixed;
//! lettre applies RFC 2047 to non-ASCII headers and RFC 2231 to non-ASCII filenames. We write
//! our own Message-ID under the account's domain and the Date.

use std::time::SystemTime;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use mailroom_core::domain::MessageMeta;

use super::ComposeError;
use super::validate::{Draft, DraftAttachment};

/// How many References a reply carries at most (the root and the most recent ones).
const MAX_REFERENCES: usize = 20;

/// The threading headers of a reply, from the stored message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyContext {
    /// `<id>` of the parent.
    pub in_reply_to: String,
    /// `<id>` list: the parent's References (or its In-Reply-To) followed by the parent.
    pub references: Vec<String>,
    pub parent_subject: Option<String>,
}

/// A message id as a bracketed `<id>`, or `None` when it is not something we can put in a
/// header (stored ids come from other people's mail: never trust them to be clean).
fn bracketed(id: &str) -> Option<String> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let clean = !bare.is_empty()
        && bare.len() <= 250
        && bare
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>'));
    clean.then(|| format!("<{bare}>"))
}

impl ReplyContext {
    /// The reply context of a stored message; `None` when the message has no usable Message-ID.
    pub fn from_parent(parent: &MessageMeta) -> Option<Self> {
        let in_reply_to = bracketed(parent.message_id_header.as_deref()?)?;
        let mut references: Vec<String> = if parent.references.is_empty() {
            parent
                .in_reply_to
                .iter()
                .filter_map(|id| bracketed(id))
                .collect()
        } else {
            parent
                .references
                .iter()
                .filter_map(|id| bracketed(id))
                .collect()
        };
        references.push(in_reply_to.clone());
        if references.len() > MAX_REFERENCES {
            // Keep the thread's root and the most recent ones (RFC 5322 3.6.4 allows trimming).
            let tail = references.split_off(references.len() - (MAX_REFERENCES - 1));
            references.truncate(1);
            references.extend(tail);
        }
        Some(Self {
            in_reply_to,
            references,
            parent_subject: parent.subject.clone(),
        })
    }

    /// `Re: <parent subject>`, without stacking a second `Re:`.
    pub fn reply_subject(&self) -> String {
        let parent = self.parent_subject.as_deref().unwrap_or("").trim();
        let already = parent
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("re:"));
        if already {
            parent.to_owned()
        } else {
            format!("Re: {parent}").trim_end().to_owned()
        }
    }
}

/// A built message: its id, its bytes and its SMTP envelope.
#[derive(Debug, Clone)]
pub struct Composed {
    /// `<random@domain>`.
    pub message_id: String,
    pub bytes: Vec<u8>,
    pub envelope_from: String,
    /// Every recipient once (To, Cc and Bcc; Bcc is not in the headers).
    pub recipients: Vec<String>,
}

/// `<32 hex digits@domain>`; the domain is the sender's when it is plain ASCII.
pub fn new_message_id(sender: &Address) -> String {
    let domain = sender.domain();
    let domain = if !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        domain
    } else {
        "mailroom.invalid"
    };
    format!("<{:032x}@{domain}>", rand::random::<u128>())
}

fn attachment_part(a: &DraftAttachment) -> SinglePart {
    let attachment = match &a.content_id {
        Some(cid) => Attachment::new_inline_with_name(cid.clone(), a.filename.clone()),
        None => Attachment::new(a.filename.clone()),
    };
    attachment.body(a.bytes.clone(), a.content_type.clone())
}

/// The text/html part(s), if any.
fn body_part(draft: &Draft) -> Option<MultiPartOrSingle> {
    match (&draft.text, &draft.html) {
        (Some(text), Some(html)) => Some(MultiPartOrSingle::Multi(
            MultiPart::alternative_plain_html(text.clone(), html.clone()),
        )),
        (Some(text), None) => Some(MultiPartOrSingle::Single(SinglePart::plain(text.clone()))),
        (None, Some(html)) => Some(MultiPartOrSingle::Single(SinglePart::html(html.clone()))),
        (None, None) => None,
    }
}

enum MultiPartOrSingle {
    Single(SinglePart),
    Multi(MultiPart),
}

impl MultiPartOrSingle {
    fn into_multipart_of(self, builder: lettre::message::MultiPartBuilder) -> MultiPart {
        match self {
            MultiPartOrSingle::Single(s) => builder.singlepart(s),
            MultiPartOrSingle::Multi(m) => builder.multipart(m),
        }
    }
}

/// Builds the message `sender` sends.
pub fn build(
    draft: &Draft,
    sender: &Address,
    reply: Option<&ReplyContext>,
    now: SystemTime,
) -> Result<Composed, ComposeError> {
    let message_id = new_message_id(sender);
    let mut builder = Message::builder()
        .from(Mailbox::new(None, sender.clone()))
        .date(now)
        .message_id(Some(message_id.clone()));
    for m in &draft.to {
        builder = builder.to(m.clone());
    }
    for m in &draft.cc {
        builder = builder.cc(m.clone());
    }
    for m in &draft.bcc {
        builder = builder.bcc(m.clone());
    }
    if let Some(r) = &draft.reply_to {
        builder = builder.reply_to(r.clone());
    }
    let subject = match (&draft.subject, reply) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(reply)) => Some(reply.reply_subject()),
        (None, None) => None,
    };
    if let Some(subject) = subject {
        builder = builder.subject(subject);
    }
    if let Some(reply) = reply {
        builder = builder
            .in_reply_to(reply.in_reply_to.clone())
            .references(reply.references.join(" "));
    }
    for (name, value) in &draft.headers {
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| ComposeError::Build(format!("header name {name:?} is not valid")))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }

    let (inline, attached): (Vec<&DraftAttachment>, Vec<&DraftAttachment>) = draft
        .attachments
        .iter()
        .partition(|a| a.content_id.is_some());
    let mut content = body_part(draft);
    if !inline.is_empty() {
        let mut related = match content.take() {
            Some(body) => body.into_multipart_of(MultiPart::related()),
            None => MultiPart::related().singlepart(attachment_part(inline[0])),
        };
        let skip = usize::from(draft.text.is_none() && draft.html.is_none());
        for a in inline.iter().skip(skip) {
            related = related.singlepart(attachment_part(a));
        }
        content = Some(MultiPartOrSingle::Multi(related));
    }
    if !attached.is_empty() {
        let mut mixed = match content.take() {
            Some(body) => body.into_multipart_of(MultiPart::mixed()),
            None => MultiPart::mixed().singlepart(attachment_part(attached[0])),
        };
        let skip = usize::from(draft.text.is_none() && draft.html.is_none() && inline.is_empty());
        for a in attached.iter().skip(skip) {
            mixed = mixed.singlepart(attachment_part(a));
        }
        content = Some(MultiPartOrSingle::Multi(mixed));
    }
    let message = match content {
        Some(MultiPartOrSingle::Multi(m)) => builder.multipart(m),
        Some(MultiPartOrSingle::Single(s)) => builder.singlepart(s),
        // Validation requires text, html or an attachment; an empty body is still well-formed.
        None => builder.body(String::new()),
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;

    let mut recipients: Vec<String> = Vec::new();
    for address in message.envelope().to() {
        let text = address.to_string();
        if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&text)) {
            recipients.push(text);
        }
    }
    Ok(Composed {
        message_id,
        bytes: message.formatted(),
        envelope_from: sender.to_string(),
        recipients,
    })
}
