//! The repository over each backend pair (item store + key service): sealed secrets round-trip,
//! tampered or moved ciphertext is refused, racing account updates conflict, and the data-key
//! cache saves key-service calls.

use std::sync::Arc;
use std::time::Duration;

use mailroom_core::ExposeSecret;
use mailroom_core::crypto::{CryptoError, Sealer};
use mailroom_core::domain::{Account, OAuthState};
use mailroom_core::ports::{Condition, ItemKey, ItemStore, KeyService};
use mailroom_core::records::{RecordError, Repository};
use mailroom_core::time::now_unix;

use super::backends::CountingKeys;
use super::fixtures::{account, provider};

pub fn repository(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) -> Repository {
    Repository::new(store, Arc::new(Sealer::new(keys, Duration::from_secs(300))))
}

/// The item key of an account record (see the table in `mailroom_core::records`).
pub fn account_key(id: &str) -> ItemKey {
    ItemKey::new(format!("ACCOUNT#{id}"), "META")
}

#[track_caller]
fn assert_tampered(result: Result<Option<Account>, RecordError>) {
    match result {
        Err(RecordError::Crypto(CryptoError::Tampered { kind, field, .. })) => {
            assert_eq!(kind, "account");
            assert_eq!(field, "access_token");
        }
        other => panic!(
            "expected a Tampered error, got {:?}",
            other.map(|a| a.map(|a| a.id))
        ),
    }
}

pub async fn round_trip(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store, keys);
    let p = provider("p1", "provider-client-secret-123");
    repo.put_provider(&p, None).await.unwrap();
    let got = repo.get_provider("p1").await.unwrap().unwrap();
    assert_eq!(
        got.client_secret.expose_secret(),
        "provider-client-secret-123"
    );
    assert_eq!(
        (got.client_id, got.imap, got.version),
        (p.client_id, p.imap, 1)
    );

    let a = account("acct-rt", "access-token-rt-456", "refresh-token-rt-789");
    repo.create_account(&a).await.unwrap();
    let got = repo.get_account("acct-rt").await.unwrap().unwrap();
    assert_eq!(
        got.tokens.access_token.expose_secret(),
        "access-token-rt-456"
    );
    assert_eq!(
        got.tokens.refresh_token.expose_secret(),
        "refresh-token-rt-789"
    );
    assert_eq!(
        (&got.email, &got.identity, got.version),
        (&a.email, &a.identity, 1)
    );
    let found = repo
        .find_account_by_identity("p1", &a.identity)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "acct-rt");
}

pub async fn tampering_is_refused(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store.clone(), keys);
    repo.create_account(&account("acct-t", "access-t", "refresh-t"))
        .await
        .unwrap();
    let key = account_key("acct-t");
    let original = store.get(&key).await.unwrap().unwrap();
    let sealed = &original.sealed["access_token"];
    // Format: version | u16 wrapped length | wrapped key | nonce | body | tag. Flip the last byte
    // of the wrapped key (its integrity tag), a body byte and a tag byte.
    let wrapped_end = 3 + usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
    for position in [wrapped_end - 1, sealed.len() - 20, sealed.len() - 1] {
        let mut bad = original.clone();
        bad.sealed.get_mut("access_token").unwrap()[position] ^= 0x01;
        store.put(bad, Condition::None).await.unwrap();
        assert_tampered(repo.get_account("acct-t").await);
    }
    store.put(original, Condition::None).await.unwrap();
    assert!(repo.get_account("acct-t").await.unwrap().is_some());
}

pub async fn moved_ciphertext_is_refused(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store.clone(), keys);
    repo.create_account(&account("acct-a", "access-a", "refresh-a"))
        .await
        .unwrap();
    let mut b = account("acct-b", "access-b", "refresh-b");
    b.identity = "issuer|other".into();
    repo.create_account(&b).await.unwrap();

    let a_item = store.get(&account_key("acct-a")).await.unwrap().unwrap();
    let mut b_item = store.get(&account_key("acct-b")).await.unwrap().unwrap();
    b_item
        .sealed
        .insert("access_token".into(), a_item.sealed["access_token"].clone());
    store.put(b_item, Condition::None).await.unwrap();
    assert_tampered(repo.get_account("acct-b").await);

    // Within one record, the refresh token sealed as the access token is refused too.
    let mut a_swapped = a_item.clone();
    a_swapped.sealed.insert(
        "access_token".into(),
        a_item.sealed["refresh_token"].clone(),
    );
    store.put(a_swapped, Condition::None).await.unwrap();
    assert_tampered(repo.get_account("acct-a").await);
}

/// Two updates of the same account version: one wins, the other is a conflict with its version
/// left as it was, and the stored account is the winner's.
pub async fn racing_account_updates(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store, keys);
    repo.create_account(&account("acct-r", "access-r", "refresh-r"))
        .await
        .unwrap();
    let mut first = repo.get_account("acct-r").await.unwrap().unwrap();
    let mut second = first.clone();
    first.last_error = Some("first".into());
    second.last_error = Some("second".into());
    let (r1, r2) = tokio::join!(
        repo.update_account(&mut first),
        repo.update_account(&mut second)
    );
    assert_eq!(r1.is_ok() as u8 + r2.is_ok() as u8, 1, "{r1:?} / {r2:?}");
    let (winner, loser, loser_result) = if r1.is_ok() {
        (first, second, r2)
    } else {
        (second, first, r1)
    };
    assert!(loser_result.unwrap_err().is_conflict());
    assert_eq!((winner.version, loser.version), (2, 1));
    let stored = repo.get_account("acct-r").await.unwrap().unwrap();
    assert_eq!((stored.version, stored.last_error), (2, winner.last_error));
}

/// A fresh sealer reading one account twice unwraps its data key once (both token fields share
/// it, and the second read is served from the cache).
pub async fn data_key_cache(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    repository(store.clone(), keys.clone())
        .create_account(&account("acct-c", "access-c", "refresh-c"))
        .await
        .unwrap();
    let counting = CountingKeys::new(keys);
    let repo = repository(store, counting.clone());
    for _ in 0..2 {
        let got = repo.get_account("acct-c").await.unwrap().unwrap();
        assert_eq!(got.tokens.refresh_token.expose_secret(), "refresh-c");
    }
    assert_eq!((counting.unwrapped(), counting.generated()), (1, 0));
    // Writing through the same sealer reuses a cached sealing key after the first generation.
    let mut a = repo.get_account("acct-c").await.unwrap().unwrap();
    repo.update_account(&mut a).await.unwrap();
    repo.update_account(&mut a).await.unwrap();
    assert_eq!(counting.generated(), 1);
}

/// Leases: one holder at a time, released only by their holder, free again once expired.
pub async fn leases(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store, keys);
    let now = now_unix();
    let held = repo
        .try_lease("acct-l", "sync", "worker-1", now, 60)
        .await
        .unwrap()
        .unwrap();
    assert!(
        repo.try_lease("acct-l", "sync", "worker-2", now, 60)
            .await
            .unwrap()
            .is_none()
    );
    // Another purpose is another lease.
    assert!(
        repo.try_lease("acct-l", "refresh", "worker-2", now, 60)
            .await
            .unwrap()
            .is_some()
    );
    // Once expired (at the caller's clock), another holder takes it; the old holder's release
    // then leaves the new lease alone.
    let later = now + 61;
    let taken = repo
        .try_lease("acct-l", "sync", "worker-2", later, 60)
        .await
        .unwrap()
        .unwrap();
    repo.release_lease(&held).await.unwrap();
    assert!(
        repo.try_lease("acct-l", "sync", "worker-3", later, 60)
            .await
            .unwrap()
            .is_none()
    );
    repo.release_lease(&taken).await.unwrap();
    assert!(
        repo.try_lease("acct-l", "sync", "worker-3", later, 60)
            .await
            .unwrap()
            .is_some()
    );
}

fn state(value: &str, expires_at: i64) -> OAuthState {
    OAuthState {
        state: value.into(),
        provider_id: "p1".into(),
        owner: "owner@example.test".into(),
        return_to: Some("http://app.test/done".into()),
        login_hint: None,
        pkce_verifier: mailroom_core::SecretString::from(format!("verifier-{value}")),
        redirect_uri: "http://127.0.0.1/callback".into(),
        created_at: now_unix(),
        expires_at,
    }
}

/// OAuth states: written once, consumed once (even by racing callbacks), dead once expired.
pub async fn oauth_states(store: Arc<dyn ItemStore>, keys: Arc<dyn KeyService>) {
    let repo = repository(store, keys);
    let live = state("state-live", now_unix() + 600);
    repo.put_oauth_state(&live).await.unwrap();
    assert!(repo.put_oauth_state(&live).await.unwrap_err().is_conflict());
    let (a, b) = tokio::join!(
        repo.take_oauth_state("state-live"),
        repo.take_oauth_state("state-live")
    );
    let taken: Vec<OAuthState> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken.len(), 1, "exactly one callback gets the state");
    assert_eq!(
        taken[0].pkce_verifier.expose_secret(),
        "verifier-state-live"
    );
    assert_eq!(taken[0].return_to.as_deref(), Some("http://app.test/done"));

    repo.put_oauth_state(&state("state-dead", now_unix() - 1))
        .await
        .unwrap();
    assert!(repo.take_oauth_state("state-dead").await.unwrap().is_none());
    assert!(
        repo.take_oauth_state("state-unknown")
            .await
            .unwrap()
            .is_none()
    );
}
