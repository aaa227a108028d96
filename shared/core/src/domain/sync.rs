//! Per-folder sync cursors.

use serde::{Deserialize, Serialize};

/// Where the sync of one folder stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FolderCursor {
    pub folder: String,
    pub uid_validity: u32,
    /// The highest UID stored so far for new mail (incremental sync starts above it).
    pub last_uid: u32,
    /// The lowest UID stored by the backfill (the first sync walks down from the top); 0 when the
    /// backfill has finished.
    #[serde(default)]
    pub backfill_below: u32,
    /// The lowest UID the backfill may reach (the backfill limit, fixed when it starts); 0 when
    /// no floor applies.
    #[serde(default)]
    pub backfill_floor: u32,
    /// After a UIDVALIDITY change: the old validity whose stored messages are matched against
    /// the re-synced ones (so none is reported as new twice) until the backfill ends.
    #[serde(default)]
    pub reconcile_validity: Option<u32>,
    #[serde(default)]
    pub highest_modseq: Option<u64>,
    #[serde(default)]
    pub message_count: u64,
    #[serde(default)]
    pub updated_at: i64,
    /// The SPECIAL-USE role this folder was synced for (`\Sent`), so later syncs find the
    /// folder without a LIST; cleared when the folder disappears under that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_use: Option<String>,
}
