//! Gmail (`X-GM-EXT-1`), against a small stand-in server since Gmail cannot run on loopback:
//! a message under two labels is downloaded and stored once, and both folders list it; threads
//! come from `X-GM-THRID`.

mod sync_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use mailroom_mail::sync::{SyncOutcome, SyncSettings};
use serde_json::json;
use sync_support::gmail::{FakeGmail, GmailFolder, GmailMessage};
use sync_support::{Mailbox, message};
use tokio::time::Instant;

fn gm(uid: u32, msgid: u64, tag: &str) -> GmailMessage {
    GmailMessage {
        uid,
        msgid,
        thrid: 7_000 + msgid,
        raw: message(tag, uid as usize, 2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_under_two_labels_is_downloaded_and_stored_once() {
    let tls_dir = format!(
        "{}/tls",
        mailroom_tests::app::server_env("MAILROOM_TEST_DOVECOT_DIR")
    );
    let shared = gm(3, 1003, "shared");
    let server = FakeGmail::start(
        &tls_dir,
        vec![
            GmailFolder {
                name: "INBOX".into(),
                uid_validity: 11,
                sent: false,
                messages: vec![gm(1, 1001, "inbox"), gm(2, 1002, "inbox"), shared.clone()],
            },
            GmailFolder {
                name: "[Gmail]/Sent Mail".into(),
                uid_validity: 12,
                sent: true,
                messages: vec![GmailMessage { uid: 1, ..shared }, gm(2, 1004, "sent")],
            },
        ],
    )
    .await;
    let mbox = Mailbox::create(Some(server.port), None, json!({})).await;
    let engine = mbox.engine(SyncSettings::default(), None);
    let outcome = engine
        .sync_account(&mbox.account_id, Instant::now() + Duration::from_secs(60))
        .await
        .expect("sync");
    let SyncOutcome::Synced(report) = outcome else {
        panic!("expected a successful sync, got {outcome:?}");
    };
    assert_eq!(report.new_messages(), 5);
    assert_eq!(
        server.bodies_served.load(Ordering::SeqCst),
        4,
        "one body per X-GM-MSGID"
    );
    let sent = report
        .folders
        .iter()
        .find(|f| f.folder == "[Gmail]/Sent Mail")
        .expect("Sent synced");
    assert_eq!(sent.reused, 1);

    let inbox = mbox.stored("INBOX").await;
    let sent = mbox.stored("[Gmail]/Sent Mail").await;
    assert_eq!((inbox.len(), sent.len()), (3, 2));
    let in_inbox = inbox
        .iter()
        .find(|m| m.provider_message_id.as_deref() == Some("1003"))
        .expect("in INBOX");
    let in_sent = sent
        .iter()
        .find(|m| m.provider_message_id.as_deref() == Some("1003"))
        .expect("in Sent");
    assert_eq!(in_inbox.blob_key, in_sent.blob_key, "one raw copy");
    assert_ne!(in_inbox.id, in_sent.id);
    assert_eq!(in_sent.thread_key.as_deref(), Some("gm:8003"));
    let raw = mbox
        .app
        .services
        .blobs
        .get(&in_sent.blob_key)
        .await
        .expect("read")
        .expect("blob");
    assert!(String::from_utf8_lossy(&raw).contains("Message-ID: <shared-3@example.test>"));
}
