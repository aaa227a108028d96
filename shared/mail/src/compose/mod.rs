//! Composing outgoing mail: the send request as callers write it, its validation (addresses,
//! header injection, attachments, allow-listed headers) and the MIME message built from it with
//! lettre's builder.

mod build;
mod request;
mod validate;

#[cfg(test)]
mod tests;

pub use build::{Composed, ReplyContext, build, new_message_id};
pub use request::{AddressInput, AddressParts, AttachmentInput, SendRequest};
pub use validate::{ALLOWED_HEADERS, Draft, DraftAttachment, FieldError, Limits, validate};

/// Why a message could not be composed. Nothing has been sent or stored when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// One or more fields are not acceptable.
    #[error("the message is not valid: {}", summary(.0))]
    Invalid(Vec<FieldError>),
    /// The attachments are larger than allowed.
    #[error("the attachments hold {total} bytes, more than the {limit} bytes allowed")]
    TooLarge { total: u64, limit: u64 },
    /// lettre refused to build the message from valid input (a bug or an unusable sender).
    #[error("the message could not be built: {0}")]
    Build(String),
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
