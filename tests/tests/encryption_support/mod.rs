//! Shared data keys on both key services (key file, KMS on moto), counted by a decorator: how
//! many GenerateDataKey and Decrypt calls sealing and opening many accounts make, rotation after
//! the usage bound, format-1 values (per-record keys) opening through the repository, and the
//! committed format-1 fixture made by the code before shared keys.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, RandomizedNonceKey};
use mailroom_core::ExposeSecret;
use mailroom_core::crypto::{CryptoError, Sealer};
use mailroom_core::ports::{Condition, ItemStore, KeyContext, KeyService};
use mailroom_core::records::RecordError;
use mailroom_embedded::KeyFile;
use mailroom_tests::contract::backends::CountingKeys;
use mailroom_tests::contract::fixtures::account;
use mailroom_tests::contract::records::{account_key, repository};

const DAY: Duration = Duration::from_secs(86_400);

fn account_context(i: usize) -> KeyContext {
    KeyContext::new("account", format!("acct-{i}"))
}

#[track_caller]
fn assert_tampered<T: std::fmt::Debug>(result: Result<T, CryptoError>) {
    assert!(
        matches!(result, Err(CryptoError::Tampered { .. })),
        "expected Tampered, got {result:?}"
    );
}

/// 1,000 accounts sealed by one process: one GenerateDataKey. A new process opens all of them
/// (twice) with one Decrypt. A ciphertext swapped between two accounts is refused, by the process
/// that made it and by a new one.
pub async fn thousand_accounts_one_generate_one_decrypt(keys: Arc<dyn KeyService>) {
    let counting = CountingKeys::new(keys);
    let writer = Sealer::new(counting.clone(), DAY);
    let mut sealed = Vec::new();
    for i in 0..1000 {
        let context = account_context(i);
        let secret = format!("refresh-token-of-{i}");
        let value = writer.seal(&context, "refresh_token", secret.as_bytes());
        let value = value.await.unwrap();
        assert!(!value.windows(secret.len()).any(|w| w == secret.as_bytes()));
        sealed.push((context, secret, value));
    }
    assert_eq!((counting.generated(), counting.unwrapped()), (1, 0));

    let reader = Sealer::new(counting.clone(), DAY);
    for _ in 0..2 {
        for (context, secret, value) in &sealed {
            let back = reader.open(context, "refresh_token", value).await.unwrap();
            assert_eq!(&*back, secret.as_bytes());
        }
    }
    assert_eq!((counting.generated(), counting.unwrapped()), (1, 1));

    // Both accounts' values are under the same data key: only the associated data refuses the swap.
    let (a, b) = (&sealed[1], &sealed[2]);
    assert_tampered(reader.open(&b.0, "refresh_token", &a.2).await);
    assert_tampered(writer.open(&a.0, "refresh_token", &b.2).await);
    assert_tampered(reader.open(&a.0, "access_token", &a.2).await);
    let fresh = Sealer::new(counting.clone(), DAY);
    assert_tampered(fresh.open(&b.0, "refresh_token", &a.2).await);
}

/// After the usage bound the next seal generates a new key; a new process needs one unwrap per
/// key, and no more.
pub async fn a_new_key_after_the_usage_bound(keys: Arc<dyn KeyService>) {
    let counting = CountingKeys::new(keys);
    let writer = Sealer::with_rotation(counting.clone(), DAY, 10);
    let mut sealed = Vec::new();
    for i in 0..25 {
        let context = account_context(i);
        let value = writer.seal(&context, "access_token", b"t").await;
        sealed.push(value.unwrap());
    }
    assert_eq!(counting.generated(), 3, "10 + 10 + 5 seals");
    let reader = Sealer::new(counting.clone(), DAY);
    for (i, value) in sealed.iter().enumerate() {
        let back = reader
            .open(&account_context(i), "access_token", value)
            .await;
        assert_eq!(&*back.unwrap(), b"t");
    }
    assert_eq!(counting.unwrapped(), 3);
}

/// A value in format 1, as the code before shared keys sealed it: a data key bound to the record
/// at the key service, and `mailroom/v1|kind|id|field` as associated data.
async fn seal_v1(keys: &dyn KeyService, kind: &str, id: &str, field: &str, text: &str) -> Vec<u8> {
    let data_key = keys
        .generate_data_key(&KeyContext::new(kind, id))
        .await
        .unwrap();
    let key = RandomizedNonceKey::new(&AES_256_GCM, &data_key.plaintext).unwrap();
    let aad = format!("mailroom/v1|{kind}|{id}|{field}").into_bytes();
    let mut body = text.as_bytes().to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad), &mut body)
        .unwrap();
    let mut out = vec![1];
    out.extend_from_slice(&u16::try_from(data_key.wrapped.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&data_key.wrapped);
    out.extend_from_slice(nonce.as_ref());
    out.extend_from_slice(&body);
    out
}

/// Accounts stored with format-1 secrets open through the repository; moved onto another account
/// they are refused; the next write seals them in format 2.
pub async fn format_1_accounts_still_open(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store.clone(), keys.clone());
    for id in ["acct-old", "acct-other"] {
        repo.create_account(&account(id, "new-access", "new-refresh"))
            .await
            .unwrap();
    }
    let mut item = store.get(&account_key("acct-old")).await.unwrap().unwrap();
    for field in ["access_token", "refresh_token"] {
        let old = seal_v1(
            &*keys,
            "account",
            "acct-old",
            field,
            &format!("old-{field}"),
        )
        .await;
        item.sealed.insert(field.into(), old);
    }
    store.put(item.clone(), Condition::None).await.unwrap();

    let fresh = repository(store.clone(), keys.clone());
    let mut old = fresh.get_account("acct-old").await.unwrap().unwrap();
    assert_eq!(old.tokens.access_token.expose_secret(), "old-access_token");
    assert_eq!(
        old.tokens.refresh_token.expose_secret(),
        "old-refresh_token"
    );

    let mut other = store
        .get(&account_key("acct-other"))
        .await
        .unwrap()
        .unwrap();
    other
        .sealed
        .insert("access_token".into(), item.sealed["access_token"].clone());
    store.put(other, Condition::None).await.unwrap();
    assert!(matches!(
        fresh.get_account("acct-other").await,
        Err(RecordError::Crypto(CryptoError::Tampered { .. }))
    ));

    fresh.update_account(&mut old).await.unwrap();
    let rewritten = store.get(&account_key("acct-old")).await.unwrap().unwrap();
    assert_eq!(
        rewritten.sealed["refresh_token"][0], 2,
        "sealed again in format 2"
    );
    let back = repository(store, keys).get_account("acct-old").await;
    let back = back.unwrap().unwrap();
    assert_eq!(
        back.tokens.refresh_token.expose_secret(),
        "old-refresh_token"
    );
}

/// Many accounts created through the repository by one process, read by another: one
/// GenerateDataKey, one Decrypt.
pub async fn repository_counts(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let counting = CountingKeys::new(keys);
    let writer = repository(store.clone(), counting.clone());
    for i in 0..30 {
        let id = format!("acct-n{i}");
        let a = account(&id, &format!("access-{i}"), &format!("refresh-{i}"));
        writer.create_account(&a).await.unwrap();
    }
    assert_eq!((counting.generated(), counting.unwrapped()), (1, 0));
    let reader = repository(store, counting.clone());
    for i in 0..30 {
        let a = reader.get_account(&format!("acct-n{i}")).await.unwrap();
        let a = a.unwrap();
        assert_eq!(
            a.tokens.refresh_token.expose_secret(),
            format!("refresh-{i}")
        );
    }
    assert_eq!((counting.generated(), counting.unwrapped()), (1, 1));
}

/// The master key and two values sealed by the code before shared keys (format 1, key file),
/// committed as they came out, so a data directory written then keeps opening.
const FIXTURE_MASTER: &str = "030a11181f262d343b424950575e656c737a81888f969da4abb2b9c0c7ced5dc";
const FIXTURE_V1: [(&str, &str, &str); 2] = [
    (
        "access_token",
        "v1-access-token-fixture",
        "01003d0161fd8a89603a7f781c22a7ce63ef27e0194834503f6a239b2f37e17f664513b659a68ca684d90225\
         aaa7847d9a9c559f2062b4ad21cb8404791a1e34f438cc138aa23d7eecec98d580eb88e025e24a1916ad3a0d7\
         d92bf038e7ba4795ae675fd920db29f9e2104bf0413f29cb0e48c",
    ),
    (
        "refresh_token",
        "v1-refresh-token-fixture",
        "01003d0161fd8a89603a7f781c22a7ce63ef27e0194834503f6a239b2f37e17f664513b659a68ca684d90225\
         aaa7847d9a9c559f2062b4ad21cb8404791a1e346b3a533b827cdf75c841a3b2f47260a3b7c2e31b34c175d35\
         cb87be73200472b6cf9cd4cc4d32e2af272d523713ca627a47f178c",
    ),
];

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

pub async fn committed_format_1_fixture_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, unhex(FIXTURE_MASTER)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = CountingKeys::new(Arc::new(KeyFile::open_or_create(dir.path()).unwrap()));
    let sealer = Sealer::new(keys.clone(), DAY);
    let owner = KeyContext::new("account", "acct-v1");
    for (field, text, sealed) in FIXTURE_V1 {
        let back = sealer.open(&owner, field, &unhex(sealed)).await.unwrap();
        assert_eq!(&*back, text.as_bytes());
        let elsewhere = KeyContext::new("account", "acct-v2");
        assert_tampered(sealer.open(&elsewhere, field, &unhex(sealed)).await);
    }
    // Both values share their record's key: one unwrap (refused unwraps elsewhere count too).
    assert_eq!((keys.generated(), keys.unwrapped()), (0, 1 + 2));
}
