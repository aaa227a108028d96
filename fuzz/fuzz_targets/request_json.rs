//! Request bodies as callers send them: the send request (then its validation, which must never
//! panic whatever the JSON held), provider settings (then their validation) and the OAuth start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_mail::compose::{Limits, SendRequest, validate};
use mailroom_oauth::{ProviderSettingsInput, StartRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<SendRequest>(data) {
        let _ = request.canonical_hash();
        let _ = validate(
            &request,
            &Limits {
                max_attachment_bytes: 64 * 1024,
                max_recipients: 100,
            },
        );
    }
    if let Ok(input) = serde_json::from_slice::<ProviderSettingsInput>(data) {
        let _ = mailroom_oauth::validate("fuzz", input, None, 0);
    }
    let _ = serde_json::from_slice::<StartRequest>(data);
});
