//! Sealer tests on an in-memory key service that counts its calls and, like KMS, refuses a
//! wrapped key under any other context.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use super::{CryptoError, Sealer};
use crate::ports::{DataKey, KeyContext, KeyError, KeyService};

struct Keys {
    master: RandomizedNonceKey,
    generated: AtomicU64,
    unwrapped: AtomicU64,
}

fn context_aad(context: &KeyContext) -> Vec<u8> {
    format!("{:?}", context.pairs()).into_bytes()
}

impl Keys {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            master: RandomizedNonceKey::new(&AES_256_GCM, &[42; 32]).unwrap(),
            generated: AtomicU64::new(0),
            unwrapped: AtomicU64::new(0),
        })
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.generated.load(Ordering::SeqCst),
            self.unwrapped.load(Ordering::SeqCst),
        )
    }
}

#[async_trait]
impl KeyService for Keys {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        self.generated.fetch_add(1, Ordering::SeqCst);
        let plaintext = Zeroizing::new(rand::random::<[u8; 32]>().to_vec());
        let mut wrapped = plaintext.to_vec();
        let nonce = self
            .master
            .seal_in_place_append_tag(Aad::from(context_aad(context)), &mut wrapped)
            .unwrap();
        wrapped.splice(0..0, nonce.as_ref().iter().copied());
        Ok(DataKey { plaintext, wrapped })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.unwrapped.fetch_add(1, Ordering::SeqCst);
        let (nonce, body) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Unwrap)?;
        let mut buffer = Zeroizing::new(body.to_vec());
        let len = self
            .master
            .open_in_place(nonce, Aad::from(context_aad(context)), &mut buffer)
            .map_err(|_| KeyError::Unwrap)?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }
}

const DAY: Duration = Duration::from_secs(86_400);

fn account(i: usize) -> KeyContext {
    KeyContext::new("account", format!("acct-{i}"))
}

/// A value in format 1, as the previous code sealed it: a data key bound to the record.
async fn seal_v1(keys: &Keys, context: &KeyContext, field: &str, plaintext: &[u8]) -> Vec<u8> {
    let data_key = keys.generate_data_key(context).await.unwrap();
    let key = RandomizedNonceKey::new(&AES_256_GCM, &data_key.plaintext).unwrap();
    let (kind, id) = context.record().unwrap();
    let aad = format!("mailroom/v1|{kind}|{id}|{field}");
    let mut body = plaintext.to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad.into_bytes()), &mut body)
        .unwrap();
    let mut out = vec![1];
    out.extend_from_slice(&(data_key.wrapped.len() as u16).to_be_bytes());
    out.extend_from_slice(&data_key.wrapped);
    out.extend_from_slice(nonce.as_ref());
    out.extend_from_slice(&body);
    out
}

fn assert_tampered<T: std::fmt::Debug>(result: Result<T, CryptoError>) {
    assert!(
        matches!(result, Err(CryptoError::Tampered { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn one_data_key_seals_a_thousand_records_and_one_unwrap_opens_them() {
    let keys = Keys::new();
    let sealer = Sealer::new(keys.clone(), DAY);
    let mut sealed = Vec::new();
    for i in 0..1000 {
        let secret = format!("token-{i}");
        let context = account(i);
        let value = sealer.seal(&context, "refresh_token", secret.as_bytes());
        let value = value.await.unwrap();
        sealed.push((i, secret, value));
    }
    assert_eq!(
        keys.counts(),
        (1, 0),
        "one GenerateDataKey for 1,000 records"
    );
    // The writer reads its own values without unwrapping.
    let (i, secret, value) = &sealed[7];
    let back = sealer.open(&account(*i), "refresh_token", value).await;
    assert_eq!(&*back.unwrap(), secret.as_bytes());
    assert_eq!(keys.counts(), (1, 0));
    // Another process opens all of them, twice, with one unwrap.
    let fresh = Sealer::new(keys.clone(), DAY);
    for _ in 0..2 {
        for (i, secret, value) in &sealed {
            let back = fresh.open(&account(*i), "refresh_token", value).await;
            assert_eq!(&*back.unwrap(), secret.as_bytes());
        }
    }
    assert_eq!(keys.counts(), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_share_one_call() {
    let keys = Keys::new();
    let writer = Arc::new(Sealer::new(keys.clone(), DAY));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let writer = writer.clone();
        tasks.spawn(async move { (i, writer.seal(&account(i), "f", b"s").await.unwrap()) });
    }
    let sealed = tasks.join_all().await;
    assert_eq!(keys.counts(), (1, 0), "concurrent seals wait for one key");
    let reader = Arc::new(Sealer::new(keys.clone(), DAY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, value) in sealed {
        let reader = reader.clone();
        tasks.spawn(async move { reader.open(&account(i), "f", &value).await.unwrap() });
    }
    assert!(tasks.join_all().await.iter().all(|v| v.as_slice() == b"s"));
    assert_eq!(
        keys.counts(),
        (1, 1),
        "concurrent opens wait for one unwrap"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_record_or_field_is_refused() {
    let keys = Keys::new();
    let sealer = Sealer::new(keys.clone(), DAY);
    let a = sealer
        .seal(&account(1), "access_token", b"a")
        .await
        .unwrap();
    sealer
        .seal(&account(2), "access_token", b"b")
        .await
        .unwrap();
    // Same shared key, so only the associated data tells the records apart.
    assert_tampered(sealer.open(&account(2), "access_token", &a).await);
    assert_tampered(sealer.open(&account(1), "refresh_token", &a).await);
    let other_kind = KeyContext::new("provider", "acct-1");
    assert_tampered(sealer.open(&other_kind, "access_token", &a).await);
    // A fresh process refuses it too.
    let fresh = Sealer::new(keys, DAY);
    assert_tampered(fresh.open(&account(2), "access_token", &a).await);
    assert_eq!(
        &*fresh.open(&account(1), "access_token", &a).await.unwrap(),
        b"a"
    );
}

#[tokio::test]
async fn format_1_values_still_open_and_stay_bound_to_their_record() {
    let keys = Keys::new();
    let v1 = seal_v1(&keys, &account(1), "refresh_token", b"old secret").await;
    let sealer = Sealer::new(keys.clone(), DAY);
    let before = keys.counts();
    for _ in 0..2 {
        let back = sealer
            .open(&account(1), "refresh_token", &v1)
            .await
            .unwrap();
        assert_eq!(&*back, b"old secret");
    }
    assert_eq!(keys.counts().1 - before.1, 1, "cached after one unwrap");
    // Its key is bound to the record at the key service: elsewhere it is refused.
    assert_tampered(sealer.open(&account(2), "refresh_token", &v1).await);
    assert_tampered(sealer.open(&account(1), "access_token", &v1).await);
    // A new value of the same record is sealed in format 2.
    let v2 = sealer
        .seal(&account(1), "refresh_token", b"new")
        .await
        .unwrap();
    assert_eq!(v2[0], 2);
    // Relabelling a format-2 value as format 1 does not open it (other context and data).
    let mut downgraded = v2.clone();
    downgraded[0] = 1;
    assert_tampered(sealer.open(&account(1), "refresh_token", &downgraded).await);
}

#[tokio::test]
async fn a_new_key_is_generated_after_the_usage_bound_or_age() {
    let keys = Keys::new();
    let sealer = Sealer::with_rotation(keys.clone(), DAY, 3);
    let mut wrapped = Vec::new();
    for i in 0..7 {
        let value = sealer.seal(&account(i), "f", b"x").await.unwrap();
        wrapped.push(value[3..3 + 60].to_vec());
        assert_eq!(&*sealer.open(&account(i), "f", &value).await.unwrap(), b"x");
    }
    assert_eq!(keys.counts(), (3, 0), "3 + 3 + 1 seals: three keys");
    assert_eq!(wrapped[0], wrapped[2]);
    assert_ne!(wrapped[2], wrapped[3]);
    assert_ne!(wrapped[5], wrapped[6]);
    // With no reuse period every seal generates (and nothing is served from the cache).
    let keys = Keys::new();
    let sealer = Sealer::new(keys.clone(), Duration::ZERO);
    for i in 0..3 {
        sealer.seal(&account(i), "f", b"x").await.unwrap();
    }
    assert_eq!(keys.counts(), (3, 0));
}

#[tokio::test]
async fn failures_are_clean_errors() {
    let keys = Keys::new();
    let sealer = Sealer::new(keys.clone(), DAY);
    assert!(matches!(
        sealer.seal(&KeyContext::shared(), "f", b"x").await,
        Err(CryptoError::NoRecord)
    ));
    let value = sealer.seal(&account(1), "f", b"x").await.unwrap();
    for bad in [&value[..5], &[9, 0, 1, 2][..], &[][..]] {
        assert_tampered(sealer.open(&account(1), "f", bad).await);
    }
    let mut flipped = value.clone();
    flipped[10] ^= 1;
    let fresh = Sealer::new(keys, DAY);
    assert_tampered(fresh.open(&account(1), "f", &flipped).await);
    let mut body = value;
    let last = body.len() - 1;
    body[last] ^= 1;
    assert_tampered(fresh.open(&account(1), "f", &body).await);
}
