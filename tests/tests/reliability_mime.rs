//! Hostile mail from the IMAP server: unparseable bytes, a 4 MB message, a 2,000-level nested
//! multipart, a header bomb, 5,000 attachments, NUL bytes and broken encodings, between normal
//! messages. Every one is stored raw, byte for byte; the metadata stays within its bounds; the
//! worker does not crash and the rest of the mailbox is synced in the same run.

mod sync_support;

use std::time::Duration;

use mailroom_mail::sync::{SyncOutcome, SyncSettings};
use serde_json::json;
use sync_support::{Mailbox, message};
use tokio::time::Instant;

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut big =
        b"From: big@example.test\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    big.extend(
        std::iter::repeat_n(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n".as_slice(),
            64 * 1024,
        )
        .flatten(),
    );
    let mut nested = b"From: nest@example.test\r\nSubject: nested\r\n".to_vec();
    for depth in 0..2000 {
        nested.extend(
            format!("Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n")
                .as_bytes(),
        );
    }
    nested.extend(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
    let mut bomb = Vec::new();
    for i in 0..20_000 {
        bomb.extend(format!("X-H{i}: {}\r\n", "v".repeat(40)).as_bytes());
    }
    bomb.extend(b"To: ");
    for i in 0..3000 {
        bomb.extend(format!("r{i}@example.test, ").as_bytes());
    }
    bomb.extend(b"x@example.test\r\nSubject: bomb\r\n\r\nbody\r\n");
    let mut many = b"From: att@example.test\r\nSubject: attachments\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n".to_vec();
    for i in 0..5000 {
        many.extend(format!("--z\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\nContent-Disposition: attachment; filename=\"f{i}.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n").as_bytes());
    }
    many.extend(b"--z--\r\n");
    let broken = b"From: =?utf-8?B?!!!not-base64?= <x@example.test>\r\nSubject: =?x-unknown?Q?=FF=FE?=\r\n\
Content-Type: text/plain; charset=\"no-such-charset\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n\x00\x00 nul bytes \xff\xfe\r\n".to_vec();
    vec![
        ("garbage", b"\x00\x01\x02 not mail at all \xff\r\n".to_vec()),
        ("4 MB", big),
        ("nested 2,000 deep", nested),
        ("header bomb", bomb),
        ("5,000 attachments", many),
        ("broken encodings and NUL", broken),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mime_is_stored_raw_and_does_not_block_the_mailbox() {
    let mbox = Mailbox::create(None, None, json!({"sync_folders": ["INBOX"]})).await;
    let hostile = hostile();
    let mut admin = mbox.admin_session().await;
    admin
        .raw()
        .append("INBOX", None, None, message("before", 0, 2))
        .await
        .expect("APPEND");
    for (_, raw) in &hostile {
        admin
            .raw()
            .append("INBOX", None, None, raw)
            .await
            .expect("APPEND hostile");
    }
    admin
        .raw()
        .append("INBOX", None, None, message("after", 0, 2))
        .await
        .expect("APPEND");
    admin.logout().await;

    let engine = mbox.engine(
        SyncSettings {
            batch_size: 3,
            ..SyncSettings::default()
        },
        None,
    );
    let outcome = engine
        .sync_account(&mbox.account_id, Instant::now() + Duration::from_secs(120))
        .await
        .expect("sync");
    assert!(
        matches!(&outcome, SyncOutcome::Synced(r) if r.complete),
        "{outcome:?}"
    );
    let stored = mbox.stored("INBOX").await;
    assert_eq!(
        stored.len(),
        hostile.len() + 2,
        "every message stored, none blocked"
    );
    assert!(
        stored
            .iter()
            .any(|m| m.subject.as_deref() == Some("before 0"))
    );
    assert!(
        stored
            .iter()
            .any(|m| m.subject.as_deref() == Some("after 0"))
    );
    for (what, raw) in &hostile {
        // Dovecot itself replaces NUL bytes with 0x80 when it saves a message: what the server
        // serves is what must be stored.
        let raw: Vec<u8> = raw
            .iter()
            .map(|b| if *b == 0 { 0x80 } else { *b })
            .collect();
        let meta = stored
            .iter()
            .find(|m| m.size == raw.len() as u64)
            .unwrap_or_else(|| panic!("{what}: stored with its size"));
        let blob = mbox
            .app
            .services
            .blobs
            .get(&meta.blob_key)
            .await
            .expect("read")
            .expect("blob");
        assert_eq!(
            blob.as_ref(),
            raw.as_slice(),
            "{what}: stored raw, byte for byte"
        );
        assert!(
            meta.to.len() <= 50 && meta.attachments.len() <= 100,
            "{what}: bounded"
        );
        assert!(
            meta.subject
                .as_ref()
                .is_none_or(|s| s.chars().count() <= 998),
            "{what}"
        );
        let item = serde_json::to_vec(meta).expect("metadata serializes");
        assert!(
            item.len() < 100_000,
            "{what}: the metadata item stays small ({} bytes)",
            item.len()
        );
    }
    // The API still shows them.
    for meta in &stored {
        let r = mbox
            .app
            .authed(
                reqwest::Method::GET,
                &format!("/v1/accounts/{}/messages/{}", mbox.account_id, meta.id),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", meta.subject);
    }
}
