//! MIME metadata extraction over whatever an IMAP server may hand us: it must never panic, what
//! it keeps stays within the bounds that keep a store item small, and sizing base64 attachments
//! without decoding them reads the same fields as decoding every part.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_mail::mime::{parse_bodies, parse_fields, parse_fields_whole};

fuzz_target!(|data: &[u8]| {
    let fields = parse_fields(data);
    assert_eq!(fields, parse_fields_whole(data));
    assert!(fields.from.len() <= 50 && fields.to.len() <= 50 && fields.cc.len() <= 50);
    assert!(fields.references.len() <= 50 && fields.attachments.len() <= 100);
    assert!(
        fields
            .subject
            .as_ref()
            .is_none_or(|s| s.chars().count() <= 998)
    );
    assert!(
        fields
            .snippet
            .as_ref()
            .is_none_or(|s| s.chars().count() <= 200)
    );
    let _ = fields.thread_key();
    let _ = parse_bodies(data);
});
