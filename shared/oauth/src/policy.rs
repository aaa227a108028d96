//! How refreshed tokens are handled per provider kind: whether refreshes of one account are
//! serialized across processes with a store lease, and when a rotated refresh token is written.
//!
//! Access tokens live in each process's memory ([`crate::OAuthTokenSource`] caches them until
//! shortly before expiry), so a refresh normally writes nothing. What must reach the store is a
//! refresh token that the provider may stop accepting; how soon that happens is the provider's:
//!
//! | kind | policy | lease | rotated refresh token written |
//! |---|---|---|---|
//! | `microsoft` | [`RefreshPolicy::KeepsOldTokens`] | no | when the stored one is older than [`MICROSOFT_PERSIST_AFTER_SECONDS`] (conditional on the account version; a conflict means someone else wrote: fine) |
//! | `google` | [`RefreshPolicy::RarelyRotates`] | no | when one comes back that differs from the stored one |
//! | `oauth2` | [`RefreshPolicy::Invalidating`] | yes | every refresh, with the access token (waiting processes take it from the store) |
//!
//! Microsoft replaces the refresh token on every use but does not revoke the old ones (they die
//! after 90 days of inactivity): a stored token at most a day old is always valid, and
//! concurrent refreshes from several processes are harmless. Google normally answers without a
//! refresh token. A generic OAuth2 server may rotate with reuse detection (RFC 9700 4.14.2),
//! where using an old refresh token revokes the whole grant: there every refresh is serialized
//! by a lease and every rotation is stored before the lease is released.

use mailroom_core::domain::ProviderKind;

/// Microsoft: a rotated refresh token is stored when the stored one is older than this (a day;
/// Microsoft refresh tokens last 90 days of inactivity, and old ones stay valid).
pub const MICROSOFT_PERSIST_AFTER_SECONDS: i64 = 24 * 3600;

/// What a refresh of one account does besides calling the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPolicy {
    /// Old refresh tokens stay valid after rotation (Microsoft): no lease; a rotated refresh
    /// token is written when the stored one is older than `persist_after_seconds`.
    KeepsOldTokens { persist_after_seconds: i64 },
    /// Refresh tokens are normally not rotated (Google): no lease; a refresh token is written
    /// only when a different one comes back.
    RarelyRotates,
    /// Rotation may invalidate the old refresh token, reuse may revoke the grant (generic
    /// OAuth2): refreshes are serialized across processes by a store lease and every rotation
    /// is written, with the access token, before the lease is released.
    Invalidating,
}

impl RefreshPolicy {
    /// The policy of a provider kind.
    pub fn for_kind(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Microsoft => RefreshPolicy::KeepsOldTokens {
                persist_after_seconds: MICROSOFT_PERSIST_AFTER_SECONDS,
            },
            ProviderKind::Google => RefreshPolicy::RarelyRotates,
            ProviderKind::OAuth2 => RefreshPolicy::Invalidating,
        }
    }

    /// Whether refreshes need the cross-process lease.
    pub fn needs_lease(self) -> bool {
        self == RefreshPolicy::Invalidating
    }

    /// Whether a refresh that answered `rotated` (the new refresh token differs from the stored
    /// one; `false` when none came back) must be written, given the stored one's age.
    pub fn must_store(self, rotated: bool, stored_age_seconds: i64) -> bool {
        match self {
            // Today's safe behaviour: the lease holder's waiters take the new access token
            // from the store, so every refresh is written.
            RefreshPolicy::Invalidating => true,
            RefreshPolicy::RarelyRotates => rotated,
            RefreshPolicy::KeepsOldTokens {
                persist_after_seconds,
            } => rotated && stored_age_seconds >= persist_after_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_policy() {
        assert!(RefreshPolicy::for_kind(ProviderKind::OAuth2).needs_lease());
        assert!(!RefreshPolicy::for_kind(ProviderKind::Microsoft).needs_lease());
        assert!(!RefreshPolicy::for_kind(ProviderKind::Google).needs_lease());
    }

    #[test]
    fn microsoft_stores_a_rotation_once_a_day() {
        let p = RefreshPolicy::for_kind(ProviderKind::Microsoft);
        assert!(!p.must_store(true, 3600));
        assert!(p.must_store(true, MICROSOFT_PERSIST_AFTER_SECONDS));
        assert!(!p.must_store(false, MICROSOFT_PERSIST_AFTER_SECONDS * 2));
    }

    #[test]
    fn google_stores_only_a_new_refresh_token_and_oauth2_every_refresh() {
        let google = RefreshPolicy::for_kind(ProviderKind::Google);
        assert!(google.must_store(true, 0));
        assert!(!google.must_store(false, 0));
        let generic = RefreshPolicy::for_kind(ProviderKind::OAuth2);
        assert!(generic.must_store(true, 0));
        assert!(generic.must_store(false, 0));
    }
}
