//! Server responses as the IMAP client reads them: the bytes go through Mailroom's read guard,
//! then are parsed one response after the other (what async-imap does with them), and XOAUTH2
//! error challenges (base64 JSON from the server) are read for their status.
#![no_main]

use async_imap::imap_proto::Response;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use mailroom_mail::imap::{challenge_status, guard_server_bytes};

fuzz_target!(|data: &[u8]| {
    let guarded = guard_server_bytes(data);
    let mut rest = guarded.as_slice();
    while !rest.is_empty() {
        match Response::parse(rest) {
            Ok((next, _response)) if next.len() < rest.len() => rest = next,
            _ => break,
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = challenge_status(text);
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            let _ = challenge_status(&String::from_utf8_lossy(&decoded));
        }
    }
});
