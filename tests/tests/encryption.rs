//! Envelope encryption end to end, through the repository, on both backend pairs: key file +
//! redb, and KMS + DynamoDB on moto. The stored bytes are read back without our code to prove no
//! secret is stored in plaintext. The key-service calls are counted: one shared data key seals
//! many accounts, a new process opens them with one unwrap, and format-1 values (per-record keys,
//! sealed by earlier versions) still open.

mod encryption_support;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::ports::{ItemStore, KeyService};
use mailroom_tests::contract::backends::{self, Moto};
use mailroom_tests::contract::fixtures::{account, provider};
use mailroom_tests::contract::records::{self, account_key, repository};

const SECRETS: [&str; 3] = [
    "needle-access-token-5f2c",
    "needle-refresh-token-9b1d",
    "needle-client-secret-c0de",
];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte DynamoDB holds for an attribute value: names, strings, numbers and binaries.
fn attribute_bytes(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.extend_from_slice(s.as_bytes()),
        AttributeValue::B(b) => out.extend_from_slice(b.as_ref()),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => {
            v.iter().for_each(|s| out.extend_from_slice(s.as_bytes()))
        }
        AttributeValue::Bs(v) => v.iter().for_each(|b| out.extend_from_slice(b.as_ref())),
        AttributeValue::L(v) => v.iter().for_each(|v| attribute_bytes(v, out)),
        AttributeValue::M(m) => m.iter().for_each(|(k, v)| {
            out.extend_from_slice(k.as_bytes());
            attribute_bytes(v, out);
        }),
        _ => {}
    }
}

async fn store_secrets(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store, keys);
    repo.put_provider(&provider("p-secret", SECRETS[2]), None)
        .await
        .unwrap();
    repo.create_account(&account("acct-secret", SECRETS[0], SECRETS[1]))
        .await
        .unwrap();
    // The secrets do come back, so the search below looks for something that was stored.
    let back = repo.get_account("acct-secret").await.unwrap().unwrap();
    use mailroom_core::ExposeSecret;
    assert_eq!(back.tokens.access_token.expose_secret(), SECRETS[0]);
}

/// Runs each repository-level function against key file + redb and KMS + DynamoDB.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod keyfile_redb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let redb = backends::redb();
                    let (keys, _dir) = backends::key_file();
                    records::$name(redb.store.clone(), keys).await;
                }
            )*
        }
        mod kms_dynamodb {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let moto = backends::moto("crypto").await;
                    records::$name(store(&moto), keys(&moto)).await;
                }
            )*
        }
    };
}

fn store(moto: &Moto) -> Arc<dyn ItemStore> {
    Arc::new(moto.backends.store.clone())
}

fn keys(moto: &Moto) -> Arc<dyn KeyService> {
    Arc::new(moto.backends.keys.clone())
}

both_backends!(
    round_trip,
    tampering_is_refused,
    moved_ciphertext_is_refused,
    racing_account_updates,
    data_key_cache,
    leases,
    oauth_states,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_items_hold_no_plaintext_secret() {
    let moto = backends::moto("plain").await;
    store_secrets(store(&moto), keys(&moto)).await;
    // Read the raw items with the SDK, not through our adapter.
    let scan = moto
        .clients
        .dynamodb
        .scan()
        .table_name(&moto.settings.table)
        .send()
        .await
        .unwrap();
    assert!(
        scan.items().len() >= 4,
        "provider, account and its pointers"
    );
    let mut all = Vec::new();
    for item in scan.items() {
        for (name, value) in item {
            all.extend_from_slice(name.as_bytes());
            attribute_bytes(value, &mut all);
        }
    }
    let raw = moto
        .clients
        .dynamodb
        .get_item()
        .table_name(&moto.settings.table)
        .key("pk", AttributeValue::S(account_key("acct-secret").pk))
        .key("sk", AttributeValue::S("META".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(matches!(
        raw.get("enc_access_token"),
        Some(AttributeValue::B(_))
    ));
    assert!(matches!(
        raw.get("enc_refresh_token"),
        Some(AttributeValue::B(_))
    ));
    assert!(
        contains(&all, "acct-secret@example.test"),
        "the search sees plain attributes"
    );
    for secret in SECRETS {
        assert!(!contains(&all, secret), "{secret} is stored in plaintext");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_file_holds_no_plaintext_secret() {
    let redb = backends::redb();
    let (keys, _dir) = backends::key_file();
    store_secrets(redb.store.clone(), keys).await;
    let path = redb.path.clone();
    drop(redb.store);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        contains(&bytes, "acct-secret@example.test"),
        "the search sees plain attributes"
    );
    for secret in SECRETS {
        assert!(!contains(&bytes, secret), "{secret} is stored in plaintext");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_refuses_a_data_key_bound_to_another_record() {
    let moto = backends::moto("kmsctx").await;
    let keys = keys(&moto);
    let context = mailroom_core::ports::KeyContext::new("account", "a1");
    let data_key = keys.generate_data_key(&context).await.unwrap();
    assert_eq!(data_key.plaintext.len(), 32);
    let back = keys
        .unwrap_data_key(&data_key.wrapped, &context)
        .await
        .unwrap();
    assert_eq!(*back, *data_key.plaintext);
    let other = mailroom_core::ports::KeyContext::new("account", "a2");
    let moved = keys.unwrap_data_key(&data_key.wrapped, &other).await;
    assert!(
        matches!(moved, Err(mailroom_core::ports::KeyError::Unwrap)),
        "{moved:?}"
    );
}

/// Runs each shared-key test against the key file (+ redb) and KMS (+ DynamoDB) on moto.
macro_rules! shared_keys_on_both {
    (keys: [$($keys:ident),*], repository: [$($repo:ident),*]) => {
        mod shared_keys_keyfile {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $keys() {
                    let (keys, _dir) = backends::key_file();
                    encryption_support::$keys(keys).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $repo() {
                    let redb = backends::redb();
                    let (keys, _dir) = backends::key_file();
                    encryption_support::$repo(redb.store.clone(), keys).await;
                }
            )*
        }
        mod shared_keys_kms {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $keys() {
                    let moto = backends::moto("shared").await;
                    encryption_support::$keys(keys(&moto)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $repo() {
                    let moto = backends::moto("shared").await;
                    encryption_support::$repo(store(&moto), keys(&moto)).await;
                }
            )*
        }
    };
}

shared_keys_on_both!(
    keys: [thousand_accounts_one_generate_one_decrypt, a_new_key_after_the_usage_bound],
    repository: [format_1_accounts_still_open, repository_counts]
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_format_1_fixture_opens() {
    encryption_support::committed_format_1_fixture_opens().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_binds_shared_keys_to_the_shared_context() {
    use mailroom_core::ports::{KeyContext, KeyError};
    let moto = backends::moto("kmsshared").await;
    let keys = keys(&moto);
    let shared = KeyContext::shared();
    let data_key = keys.generate_data_key(&shared).await.unwrap();
    let back = keys
        .unwrap_data_key(&data_key.wrapped, &shared)
        .await
        .unwrap();
    assert_eq!(*back, *data_key.plaintext);
    let record = KeyContext::new("account", "a1");
    let record_key = keys.generate_data_key(&record).await.unwrap();
    for (wrapped, wrong) in [(&data_key.wrapped, &record), (&record_key.wrapped, &shared)] {
        let refused = keys.unwrap_data_key(wrapped, wrong).await;
        assert!(matches!(refused, Err(KeyError::Unwrap)), "{refused:?}");
    }
}
