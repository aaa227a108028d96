//! What a sync costs on the wire against the real Dovecot (issue 8), counted on the decrypted
//! stream by `counting::imap::ImapTally`: a sync that finds nothing new sends exactly
//! AUTHENTICATE, two STATUS and LOGOUT (the capabilities come with the login response, no ID
//! outside Gmail, the `\Sent` folder remembered on its cursor instead of LIST) and receives at
//! most 2 KB; a remembered `\Sent` folder that disappeared is looked up again with one LIST and
//! the sync goes on. The Gmail stand-in (which announces no capabilities at login) shows the
//! same four commands once its labels are remembered.

mod sync_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mailroom_core::domain::FolderCursor;
use mailroom_core::time::now_unix;
use mailroom_mail::sync::SyncSettings;
use mailroom_tests::counting::imap::ImapTally;
use serde_json::json;
use sync_support::gmail::{FakeGmail, GmailFolder, GmailMessage};
use sync_support::{Mailbox, deliver, message, sync_ok};

async fn cursor(mbox: &Mailbox, folder: &str) -> Option<FolderCursor> {
    mbox.app
        .services
        .repo
        .folder_cursors(&mbox.account_id)
        .await
        .expect("read the folder cursors")
        .into_iter()
        .find(|c| c.folder == folder)
}

const NO_CHANGE: [&str; 4] = ["AUTHENTICATE", "STATUS", "STATUS", "LOGOUT"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_with_nothing_new_sends_authenticate_two_status_and_logout() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    let mail: Vec<_> = (0..5).map(|i| message("idle", i, 3)).collect();
    deliver(&mbox.email, &mail).await;
    let tally = Arc::new(ImapTally::default());
    let engine = mbox.engine(SyncSettings::default(), Some(tally.wrapper()));

    let first = sync_ok(&engine, &mbox.account_id, "first sync").await;
    assert_eq!(first.new_messages(), 5);
    let commands = tally.commands();
    // Dovecot announces its capabilities in the AUTHENTICATE OK; ID is for Gmail only.
    assert!(
        !commands.iter().any(|c| c == "CAPABILITY" || c == "ID"),
        "{commands:?}"
    );
    assert_eq!(
        commands.iter().filter(|c| *c == "LIST").count(),
        1,
        "the first sync looks the Sent folder up: {commands:?}"
    );
    assert_eq!(
        cursor(&mbox, "Sent")
            .await
            .expect("Sent cursor")
            .special_use,
        Some("\\Sent".to_owned()),
        "the Sent folder is remembered on its cursor"
    );
    assert_eq!(
        cursor(&mbox, "INBOX")
            .await
            .expect("INBOX cursor")
            .special_use,
        None
    );

    for round in 0..2 {
        tally.reset();
        let report = sync_ok(&engine, &mbox.account_id, "no-change sync").await;
        assert_eq!(report.new_messages(), 0);
        let folders: Vec<_> = report.folders.iter().map(|f| f.folder.as_str()).collect();
        assert_eq!(folders, ["INBOX", "Sent"], "round {round}");
        assert!(report.folders.iter().all(|f| f.unchanged), "round {round}");
        assert_eq!(tally.commands(), NO_CHANGE, "round {round}");
        let received = tally.bytes_in.load(Ordering::Relaxed);
        assert!(received <= 2048, "round {round}: {received} bytes received");
    }

    // New mail still arrives through the same short path: STATUS sees it, then the fetch.
    deliver(&mbox.email, &[message("later", 0, 3)]).await;
    tally.reset();
    let report = sync_ok(&engine, &mbox.account_id, "sync").await;
    assert_eq!(report.new_messages(), 1);
    let commands = tally.commands();
    assert!(commands.iter().any(|c| c == "UID FETCH"), "{commands:?}");
    assert!(
        !commands.iter().any(|c| c == "LIST" || c == "CAPABILITY"),
        "{commands:?}"
    );
    assert_eq!(mbox.stored("INBOX").await.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_sent_folder_that_was_renamed_is_looked_up_again_once() {
    let mbox = Mailbox::create(None, None, json!({})).await;
    deliver(&mbox.email, &[message("inbox", 0, 3)]).await;
    let tally = Arc::new(ImapTally::default());
    let engine = mbox.engine(SyncSettings::default(), Some(tally.wrapper()));
    sync_ok(&engine, &mbox.account_id, "first sync").await;

    // The account's Sent folder was last seen as "Sent Items"; the user renames it on the
    // server, and the server's `\Sent` folder is now "Sent", where new sent mail lands.
    let repo = &mbox.app.services.repo;
    let mut sent = cursor(&mbox, "Sent").await.expect("Sent cursor");
    sent.special_use = None;
    repo.put_folder_cursor(&mbox.account_id, &sent)
        .await
        .expect("write cursor");
    let remembered = FolderCursor {
        folder: "Sent Items".into(),
        uid_validity: 7,
        special_use: Some("\\Sent".into()),
        updated_at: now_unix() + 1,
        ..FolderCursor::default()
    };
    repo.put_folder_cursor(&mbox.account_id, &remembered)
        .await
        .expect("write cursor");
    let mut admin = mbox.admin_session().await;
    admin.raw().create("Sent Items").await.expect("CREATE");
    admin
        .raw()
        .rename("Sent Items", "Old Sent Items")
        .await
        .expect("RENAME");
    admin
        .raw()
        .append("Sent", None, None, message("sent", 0, 3))
        .await
        .expect("APPEND");
    admin.logout().await;

    tally.reset();
    let report = sync_ok(&engine, &mbox.account_id, "sync after the rename").await;
    let commands = tally.commands();
    assert_eq!(
        commands[..3],
        ["AUTHENTICATE", "STATUS", "LIST"],
        "STATUS of the remembered folder fails, one LIST finds the new one: {commands:?}"
    );
    assert_eq!(
        commands.iter().filter(|c| *c == "LIST").count(),
        1,
        "{commands:?}"
    );
    let sent_report = report
        .folders
        .iter()
        .find(|f| f.folder == "Sent")
        .unwrap_or_else(|| panic!("Sent synced: {report:?}"));
    assert_eq!(sent_report.new_messages, 1);
    let stored = mbox.stored("Sent").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].subject.as_deref(), Some("sent 0"));
    assert_eq!(
        cursor(&mbox, "Sent")
            .await
            .expect("Sent cursor")
            .special_use,
        Some("\\Sent".to_owned())
    );
    assert_eq!(
        cursor(&mbox, "Sent Items")
            .await
            .expect("the old cursor stays")
            .special_use,
        None,
        "the vanished folder is no longer taken for Sent"
    );

    // From then on the new folder is remembered: back to the short path.
    tally.reset();
    let report = sync_ok(&engine, &mbox.account_id, "no-change sync").await;
    assert!(report.folders.iter().all(|f| f.unchanged), "{report:?}");
    assert_eq!(tally.commands(), NO_CHANGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmail_labels_are_remembered_and_a_sync_with_nothing_new_needs_no_capability() {
    let tls_dir = format!(
        "{}/tls",
        mailroom_tests::app::server_env("MAILROOM_TEST_DOVECOT_DIR")
    );
    let gm = |uid: u32, msgid: u64| GmailMessage {
        uid,
        msgid,
        thrid: msgid,
        raw: message("gm", uid as usize, 2),
    };
    let server = FakeGmail::start(
        &tls_dir,
        vec![
            GmailFolder {
                name: "INBOX".into(),
                uid_validity: 3,
                sent: false,
                messages: vec![gm(1, 501), gm(2, 502)],
            },
            GmailFolder {
                name: "[Gmail]/Sent Mail".into(),
                uid_validity: 4,
                sent: true,
                messages: vec![gm(1, 503)],
            },
        ],
    )
    .await;
    let mbox = Mailbox::create(Some(server.port), None, json!({})).await;
    let tally = Arc::new(ImapTally::default());
    let engine = mbox.engine(SyncSettings::default(), Some(tally.wrapper()));
    let first = sync_ok(&engine, &mbox.account_id, "first sync").await;
    assert_eq!(first.new_messages(), 3);
    // Nothing announced at login: the first SELECT needs the capabilities (X-GM-EXT-1).
    assert_eq!(
        tally
            .commands()
            .iter()
            .filter(|c| *c == "CAPABILITY")
            .count(),
        1
    );
    assert_eq!(
        cursor(&mbox, "[Gmail]/Sent Mail")
            .await
            .expect("Sent cursor")
            .special_use,
        Some("\\Sent".to_owned())
    );

    tally.reset();
    let report = sync_ok(&engine, &mbox.account_id, "no-change sync").await;
    assert!(report.folders.iter().all(|f| f.unchanged), "{report:?}");
    assert_eq!(report.folders.len(), 2);
    // The stand-in asks for a continuation even after a one-line AUTHENTICATE; the client's
    // empty answer to it is a continuation line (`+`), not a command.
    let commands: Vec<String> = tally.commands().into_iter().filter(|c| c != "+").collect();
    assert_eq!(commands, NO_CHANGE);
}
