//! Property tests: the envelope (any bytes round-trip; any changed byte, other record or other
//! field fails to open), message keys and ids (round-trip, UID order, safe blob keys), folder
//! cursors (one per folder, whatever the name) and message paging (every message of a folder
//! exactly once, newest first, never one of another folder, whatever the page sizes).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use mailroom_core::crypto::Sealer;
use mailroom_core::domain::{FolderCursor, MessageMeta};
use mailroom_core::ports::{KeyContext, validate_blob_key};
use mailroom_core::records::{MessageKey, Repository};
use mailroom_embedded::{KeyFile, RedbStore};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn repository(dir: &std::path::Path) -> Repository {
    let store = RedbStore::open(&dir.join("p.redb")).expect("store");
    let keys = KeyFile::open_or_create(dir).expect("key file");
    Repository::new(
        Arc::new(store),
        Arc::new(Sealer::new(Arc::new(keys), Duration::from_secs(60))),
    )
}

fn sealer(dir: &std::path::Path) -> Sealer {
    let keys = KeyFile::open_or_create(dir).expect("key file");
    Sealer::new(Arc::new(keys), Duration::from_secs(60))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_envelope_round_trips_and_detects_any_change(
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        kind in "[a-z_]{1,12}",
        id in "\\PC{1,40}",
        field in "[a-z_]{1,16}",
        flip_at in any::<prop::sample::Index>(),
        flip_bits in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sealer = sealer(dir.path());
        let rt = runtime();
        let ctx = KeyContext::new(kind.clone(), id.clone());
        let sealed = rt.block_on(sealer.seal(&ctx, &field, &plaintext)).unwrap();
        let opened = rt.block_on(sealer.open(&ctx, &field, &sealed)).unwrap();
        prop_assert_eq!(&opened[..], &plaintext[..]);
        if plaintext.len() >= 8 {
            prop_assert!(!sealed.windows(8).any(|w| w == &plaintext[..8]) || plaintext.iter().all(|b| *b == plaintext[0]));
        }
        let mut tampered = sealed.clone();
        let at = flip_at.index(tampered.len());
        tampered[at] ^= flip_bits;
        prop_assert!(rt.block_on(sealer.open(&ctx, &field, &tampered)).is_err(), "byte {} changed", at);
        let other_record = KeyContext::new(kind.clone(), format!("{}x", id));
        let other_field = format!("{}x", field);
        prop_assert!(rt.block_on(sealer.open(&other_record, &field, &sealed)).is_err());
        prop_assert!(rt.block_on(sealer.open(&ctx, &other_field, &sealed)).is_err());
        prop_assert!(rt.block_on(sealer.open(&ctx, &field, &sealed[..sealed.len() - 1])).is_err());
    }

    #[test]
    fn message_keys_round_trip_order_by_uid_and_make_safe_blob_keys(
        folder in "\\PC{1,60}",
        validity in any::<u32>(),
        a in any::<u32>(),
        b in any::<u32>(),
    ) {
        let ka = MessageKey::new(folder.clone(), validity, a);
        let kb = MessageKey::new(folder.clone(), validity, b);
        prop_assert_eq!(MessageKey::from_message_id(&ka.message_id()), Some(ka.clone()));
        prop_assert_eq!(ka.sort_key() < kb.sort_key(), a < b);
        prop_assert!(validate_blob_key(&ka.blob_key("acc_1")).is_ok());
        prop_assert!(ka.message_id().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn folder_cursors_are_one_per_folder_whatever_the_names(
        folders in proptest::collection::btree_set("[A-Za-z#/. é]{1,12}", 1..8),
        uids in proptest::collection::vec(any::<u32>(), 8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let rt = runtime();
        for (i, folder) in folders.iter().enumerate() {
            let cursor = FolderCursor {
                folder: folder.clone(),
                uid_validity: 7,
                last_uid: uids[i],
                ..FolderCursor::default()
            };
            rt.block_on(repo.put_folder_cursor("acc", &cursor)).unwrap();
            // Written twice: still one cursor (the last write).
            rt.block_on(repo.put_folder_cursor("acc", &cursor)).unwrap();
        }
        let stored = rt.block_on(repo.folder_cursors("acc")).unwrap();
        let names: BTreeSet<String> = stored.iter().map(|c| c.folder.clone()).collect();
        prop_assert_eq!(&names, &folders);
        prop_assert_eq!(stored.len(), folders.len());
        for (i, folder) in folders.iter().enumerate() {
            let c = stored.iter().find(|c| &c.folder == folder).unwrap();
            prop_assert_eq!(c.last_uid, uids[i]);
        }
    }

    #[test]
    fn paging_a_folder_returns_each_of_its_messages_once_newest_first(
        messages in proptest::collection::btree_set((0usize..3, 1u32..3, 1u32..5000), 0..60),
        limit in 1usize..25,
    ) {
        // Folder names chosen so one's encoding is a prefix of another's.
        let folders = ["A", "AB", "A#B"];
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let rt = runtime();
        let metas: Vec<MessageMeta> = messages
            .iter()
            .map(|(f, v, uid)| {
                let key = MessageKey::new(folders[*f], *v, *uid);
                MessageMeta {
                    id: key.message_id(),
                    account_id: "acc".into(),
                    folder: folders[*f].into(),
                    uid_validity: *v,
                    uid: *uid,
                    blob_key: key.blob_key("acc"),
                    ..MessageMeta::default()
                }
            })
            .collect();
        for chunk in metas.chunks(25) {
            rt.block_on(repo.put_messages(chunk)).unwrap();
        }
        for (f, folder) in folders.iter().enumerate() {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = rt.block_on(repo.list_messages("acc", folder, cursor.as_deref(), limit)).unwrap();
                prop_assert!(page.messages.len() <= limit);
                seen.extend(page.messages.iter().map(|m| (m.folder.clone(), m.uid_validity, m.uid)));
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            let mut expected: Vec<_> = messages
                .iter()
                .filter(|(mf, _, _)| *mf == f)
                .map(|(_, v, uid)| (folder.to_string(), *v, *uid))
                .collect();
            expected.sort();
            expected.reverse();
            prop_assert_eq!(seen, expected, "folder {}", folder);
        }
    }
}
