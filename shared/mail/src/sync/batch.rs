//! One FETCH batch: raw sources go to the blob store as they arrive, a few per upload task (a
//! bounded number in flight, so memory stays flat; written with `put_unsynced`), then the
//! batch's blobs are made durable at once (`make_durable`: one parallel sync per batch on a
//! local disk instead of an fsync per message), then its metadata is written in one
//! `put_many`, and only then the folder cursor. Writes are keyed on (account, folder,
//! UIDVALIDITY, UID), so a retried batch rewrites the same items. A batch commits while the
//! next one is fetched; commits stay in order.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mailroom_core::domain::{FolderCursor, MessageMeta};
use mailroom_core::ports::{BlobError, BlobStore};
use mailroom_core::records::{MessageKey, Repository};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::SyncError;
use crate::imap::{FetchedMessage, ImapSession};
use crate::mime::parse_fields;

/// What a FETCH asks for.
pub(crate) fn fetch_items(gmail: bool) -> &'static str {
    if gmail {
        "(UID FLAGS INTERNALDATE RFC822.SIZE X-GM-MSGID X-GM-THRID BODY.PEEK[])"
    } else {
        "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
    }
}

/// A message stored under an older UIDVALIDITY, kept while a re-synced folder is matched up.
#[derive(Debug, Clone)]
pub(crate) struct OldMessage {
    pub key: MessageKey,
    pub blob_key: String,
    pub stored_at: i64,
}

/// Old messages by match key: Message-ID and size, else the content hash.
pub(crate) type ReconcileMap = HashMap<String, OldMessage>;

pub(crate) fn match_key(message_id: Option<&str>, size: u64, sha256: &str) -> String {
    match message_id {
        Some(id) => format!("mid:{id}:{size}"),
        None => format!("sha:{sha256}"),
    }
}

/// Where the batch writes and what it needs to know.
pub(crate) struct BatchTarget<'a> {
    pub repo: &'a Repository,
    pub blobs: &'a Arc<dyn BlobStore>,
    pub account_id: &'a str,
    pub folder: &'a str,
    pub uid_validity: u32,
    pub max_in_flight: usize,
    pub now: i64,
}

/// What one batch stored.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BatchResult {
    pub fetched: u64,
    pub new: u64,
    pub reconciled: u64,
    /// New in this folder, but its body was already stored under another Gmail label.
    pub reused: u64,
    pub bytes: u64,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// What a message's metadata needs to know about where it is stored; shared by the batch's
/// per-message tasks.
struct MetaTarget {
    account_id: String,
    folder: String,
    uid_validity: u32,
    now: i64,
}

fn to_meta(target: &MetaTarget, m: &FetchedMessage, body: &[u8], blob_key: String) -> MessageMeta {
    let fields = parse_fields(body);
    let key = MessageKey::new(&target.folder, target.uid_validity, m.uid);
    let thread_key = match m.gmail_thrid {
        Some(thrid) => Some(format!("gm:{thrid}")),
        None => fields.thread_key(),
    };
    MessageMeta {
        id: key.message_id(),
        account_id: target.account_id.clone(),
        folder: target.folder.clone(),
        uid_validity: target.uid_validity,
        uid: m.uid,
        message_id_header: fields.message_id,
        in_reply_to: fields.in_reply_to,
        references: fields.references,
        thread_key,
        from: fields.from,
        to: fields.to,
        cc: fields.cc,
        subject: fields.subject,
        date: fields.date.or(m.internal_date),
        size: m.size.map(u64::from).unwrap_or(body.len() as u64),
        flags: m.flags.clone(),
        snippet: fields.snippet,
        attachments: fields.attachments,
        provider_message_id: m.gmail_msgid.map(|id| id.to_string()),
        blob_key,
        parsed: fields.parsed,
        content_sha256: Some(hex(&Sha256::digest(body))),
        stored_at: target.now,
    }
}

/// A fetched batch whose raw sources are uploading; [`FetchedBatch::commit`] makes it durable.
pub(crate) struct FetchedBatch {
    pub result: BatchResult,
    metas: Vec<MessageMeta>,
    replaced: Vec<MessageKey>,
    /// Gmail messages stored here first (X-GM-MSGID → where).
    gmail_copies: Vec<(u64, MessageKey)>,
    /// Upload tasks: parse, hash and write raw sources; each gives back the metadata of the
    /// messages whose metadata was not known before the upload.
    uploads: JoinSet<Result<Vec<MessageMeta>, BlobError>>,
    blobs: Arc<dyn BlobStore>,
    /// Blob keys written by this batch, made durable before its metadata.
    written: Vec<String>,
}

impl FetchedBatch {
    /// Waits for the uploads, makes the blobs durable, writes the metadata, then the cursor (in
    /// that order, so a crash at any point loses nothing and the retried batch rewrites the same
    /// items). Owns what it needs, so it can run while the next batch is fetched.
    pub(crate) async fn commit(
        mut self,
        repo: Repository,
        account_id: String,
        cursor: FolderCursor,
    ) -> Result<(), SyncError> {
        while let Some(done) = self.uploads.join_next().await {
            let meta =
                done.map_err(|e| SyncError::Internal(format!("a blob upload task failed: {e}")))??;
            self.metas.extend(meta);
        }
        if !self.written.is_empty() {
            self.blobs.make_durable(&self.written).await?;
        }
        if self.replaced.is_empty() {
            // The usual batch: metadata and cursor in one store call (one commit on redb).
            repo.put_messages_then_cursor(&account_id, &self.metas, &self.gmail_copies, &cursor)
                .await?;
            return Ok(());
        }
        repo.put_messages(&self.metas).await?;
        repo.put_gmail_first_copies(&account_id, &self.gmail_copies)
            .await?;
        // Matched old-validity messages go before the cursor moves past their replacements.
        repo.delete_messages(&account_id, &self.replaced).await?;
        repo.put_folder_cursor(&account_id, &cursor).await?;
        Ok(())
    }
}

/// New messages are handed to upload tasks a few at a time: a task per message cost a thread
/// wake-up per message (a quarter of a full sync's CPU); a few per task keep the reader and the
/// tasks on both cores with far fewer hand-offs. Bounded in bytes too, so memory stays flat.
const CHUNK_MESSAGES: usize = 8;
const CHUNK_BYTES: usize = 256 * 1024;

/// Messages waiting to be handed to an upload task: (message, raw source, blob key).
#[derive(Default)]
struct Chunk {
    messages: Vec<(FetchedMessage, Bytes, String)>,
    bytes: usize,
}

impl Chunk {
    fn full(&self) -> bool {
        self.messages.len() >= CHUNK_MESSAGES || self.bytes >= CHUNK_BYTES
    }

    /// Starts a task that parses, hashes and writes the chunk's messages in order.
    async fn flush(
        &mut self,
        batch: &mut FetchedBatch,
        permits: &Arc<Semaphore>,
        meta_target: &Arc<MetaTarget>,
    ) -> Result<(), SyncError> {
        if self.messages.is_empty() {
            return Ok(());
        }
        let messages = std::mem::take(&mut self.messages);
        self.bytes = 0;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SyncError::Internal("the upload limiter closed".into()))?;
        let (blobs, meta_target) = (batch.blobs.clone(), meta_target.clone());
        batch.uploads.spawn(async move {
            let mut metas = Vec::with_capacity(messages.len());
            for (m, body, blob_key) in messages {
                let meta = to_meta(&meta_target, &m, &body, blob_key);
                blobs.put_unsynced(&meta.blob_key, body).await?;
                metas.push(meta);
            }
            drop(permit);
            Ok(metas)
        });
        Ok(())
    }
}

/// Fetches `set`: every message whose UID passes `wanted` starts uploading as it arrives (at
/// most `max_in_flight` at once); its metadata is kept for [`FetchedBatch::commit`].
pub(crate) async fn fetch_batch(
    session: &mut ImapSession,
    target: &BatchTarget<'_>,
    set: &str,
    wanted: impl Fn(u32) -> bool,
    reconcile: &mut ReconcileMap,
) -> Result<FetchedBatch, SyncError> {
    let mut batch = FetchedBatch {
        result: BatchResult::default(),
        metas: Vec::new(),
        replaced: Vec::new(),
        gmail_copies: Vec::new(),
        uploads: JoinSet::new(),
        blobs: target.blobs.clone(),
        written: Vec::new(),
    };
    let permits = Arc::new(Semaphore::new(target.max_in_flight.max(1)));
    let meta_target = Arc::new(MetaTarget {
        account_id: target.account_id.to_owned(),
        folder: target.folder.to_owned(),
        uid_validity: target.uid_validity,
        now: target.now,
    });
    let mut chunk = Chunk::default();
    let mut set = set.to_owned();
    if session.gmail() {
        match reuse_gmail_copies(session, target, &set, &wanted, &mut batch).await? {
            Some(rest) => set = rest,
            None => return Ok(batch),
        }
    }

    session
        .start_fetch(&set, fetch_items(session.gmail()))
        .await?;
    while let Some(mut m) = session.next_fetched().await? {
        // `UID FETCH n:*` returns the highest message even when its UID is below n.
        if m.uid == 0 || !wanted(m.uid) {
            continue;
        }
        let Some(body) = m.body.take() else {
            tracing::warn!(
                uid = m.uid,
                folder = target.folder,
                "FETCH returned no body"
            );
            continue;
        };
        batch.result.fetched += 1;
        batch.result.bytes += body.len() as u64;
        let key = MessageKey::new(target.folder, target.uid_validity, m.uid);
        // On Gmail one message shows under several labels: one blob per X-GM-MSGID.
        let fresh_blob_key = match m.gmail_msgid {
            Some(id) => format!(
                "{}gm/{id}.eml",
                mailroom_core::records::message_blob_prefix(target.account_id)
            ),
            None => key.blob_key(target.account_id),
        };
        if let Some(id) = m.gmail_msgid {
            batch.gmail_copies.push((id, key.clone()));
        }
        if reconcile.is_empty() {
            // The usual case: parsing, hashing and writing run in upload tasks, on the other
            // core, while this one keeps reading the FETCH response.
            batch.result.new += 1;
            batch.written.push(fresh_blob_key.clone());
            chunk.bytes += body.len();
            chunk.messages.push((m, body, fresh_blob_key));
            if chunk.full() {
                chunk.flush(&mut batch, &permits, &meta_target).await?;
            }
        } else {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| SyncError::Internal("the upload limiter closed".into()))?;
            let mut meta = to_meta(&meta_target, &m, &body, fresh_blob_key);
            let sha = meta.content_sha256.clone().unwrap_or_default();
            match reconcile.remove(&match_key(
                meta.message_id_header.as_deref(),
                meta.size,
                &sha,
            )) {
                Some(old) => {
                    // The same message under a new UIDVALIDITY: keep its blob and first-seen
                    // time.
                    meta.blob_key = old.blob_key;
                    meta.stored_at = old.stored_at;
                    batch.replaced.push(old.key);
                    batch.result.reconciled += 1;
                }
                None => {
                    batch.result.new += 1;
                    batch.written.push(meta.blob_key.clone());
                    let blobs = target.blobs.clone();
                    let blob_key = meta.blob_key.clone();
                    batch.uploads.spawn(async move {
                        let out = blobs.put_unsynced(&blob_key, body).await;
                        drop(permit);
                        out.map(|()| Vec::new())
                    });
                }
            }
            batch.metas.push(meta);
        }
        // Surface upload failures early instead of after the whole batch.
        while let Some(done) = batch.uploads.try_join_next() {
            let meta =
                done.map_err(|e| SyncError::Internal(format!("a blob upload task failed: {e}")))??;
            batch.metas.extend(meta);
        }
    }
    chunk.flush(&mut batch, &permits, &meta_target).await?;
    Ok(batch)
}

/// Gmail shows one message under each of its labels: a body already stored under another label
/// is not downloaded again (Gmail caps IMAP downloads per day); this folder gets a metadata copy
/// that points at the same blob. Returns the UIDs still to fetch, `None` when none are left.
async fn reuse_gmail_copies(
    session: &mut ImapSession,
    target: &BatchTarget<'_>,
    set: &str,
    wanted: &impl Fn(u32) -> bool,
    batch: &mut FetchedBatch,
) -> Result<Option<String>, SyncError> {
    session.start_fetch(set, "(UID X-GM-MSGID FLAGS)").await?;
    let mut listed = Vec::new();
    while let Some(m) = session.next_fetched().await? {
        if m.uid != 0 && wanted(m.uid) {
            listed.push(m);
        }
    }
    let mut rest = Vec::new();
    for m in listed {
        let first = match m.gmail_msgid {
            Some(id) => match target.repo.gmail_first_copy(target.account_id, id).await? {
                // In its own folder (a UIDVALIDITY change) reconciliation matches it instead.
                Some(key) if key.folder != target.folder => {
                    target.repo.get_message(target.account_id, &key).await?
                }
                _ => None,
            },
            None => None,
        };
        match first {
            Some(first) => {
                let key = MessageKey::new(target.folder, target.uid_validity, m.uid);
                batch.metas.push(MessageMeta {
                    id: key.message_id(),
                    folder: target.folder.to_owned(),
                    uid_validity: target.uid_validity,
                    uid: m.uid,
                    flags: m.flags,
                    stored_at: target.now,
                    ..first
                });
                batch.result.new += 1;
                batch.result.reused += 1;
            }
            None => rest.push(m.uid.to_string()),
        }
    }
    Ok((!rest.is_empty()).then(|| rest.join(",")))
}

/// Loads the messages stored under `old_validity` for matching.
pub(crate) async fn load_reconcile_map(
    repo: &Repository,
    account_id: &str,
    folder: &str,
    old_validity: u32,
) -> Result<ReconcileMap, SyncError> {
    let mut map = ReconcileMap::new();
    let mut after = None;
    loop {
        let page = repo
            .messages_of_validity(account_id, folder, old_validity, after, 500)
            .await?;
        let Some(last) = page.last() else {
            return Ok(map);
        };
        after = Some(last.uid);
        for meta in page {
            let sha = meta.content_sha256.clone().unwrap_or_default();
            let k = match_key(meta.message_id_header.as_deref(), meta.size, &sha);
            map.insert(
                k,
                OldMessage {
                    key: MessageKey::new(folder, old_validity, meta.uid),
                    blob_key: meta.blob_key,
                    stored_at: meta.stored_at,
                },
            );
        }
    }
}
