//! Leases: short-lived exclusive claims on an account (one sync session, one token refresh),
//! taken with a conditional write so they hold across processes.

use serde_json::json;

use super::keys;
use super::repository::{RecordError, Repository};
use crate::ports::{Condition, Item};

/// A held lease; release it with [`Repository::release_lease`].
#[derive(Debug, Clone)]
pub struct Lease {
    pub account_id: String,
    pub purpose: String,
    pub holder: String,
    pub expires_at: i64,
    /// A random version that tells our lease item from a later holder's.
    pub token: u64,
}

impl Repository {
    /// Takes the lease if nobody holds a live one; `Ok(None)` when somebody else does.
    pub async fn try_lease(
        &self,
        account_id: &str,
        purpose: &str,
        holder: &str,
        now: i64,
        seconds: i64,
    ) -> Result<Option<Lease>, RecordError> {
        let token = rand::random::<u64>().max(1);
        let mut item = Item::new(keys::lease(account_id, purpose));
        item.version = token;
        item.expires_at = Some(now + seconds);
        item.attributes.insert("holder".into(), json!(holder));
        match self
            .store
            .put(item, Condition::AbsentOrExpired { now })
            .await
        {
            Ok(()) => Ok(Some(Lease {
                account_id: account_id.to_owned(),
                purpose: purpose.to_owned(),
                holder: holder.to_owned(),
                expires_at: now + seconds,
                token,
            })),
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Releases a lease if it is still ours (a lease that expired and was taken by another holder
    /// is left alone).
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), RecordError> {
        let key = keys::lease(&lease.account_id, &lease.purpose);
        match self
            .store
            .delete(&key, Condition::VersionIs(lease.token))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
