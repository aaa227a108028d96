//! Pack files: blobs appended to a few large files (`<root>/packs/<id>.pack`, one being written
//! per key folder), found through an index in a redb database (`<root>/packs.redb`: key → pack,
//! offset, length; pack → live bytes and blobs). A blob written unsynced is only in memory's `pending`
//! map; `commit` syncs its pack file, then writes its index entry in one durable redb commit,
//! so a batch costs a couple of syncs instead of a file creation and an fsync per blob (which
//! dominated a first sync on disk). A blob whose index entry was never committed does not exist
//! after a restart; its bytes are garbage that `sweep` reclaims.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use mailroom_core::ports::BlobError;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use super::unavailable;

/// Blob key → (pack id, offset, length).
pub(super) const BLOBS: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("blobs");
/// Pack id → (bytes, blobs) of it that committed index entries still point at (blobs counted
/// apart: a pack of empty blobs has no live bytes but must stay).
pub(super) const PACKS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("pack_live");

/// A pack being written is closed and a new one started past this size, so a pack that
/// deletes leave mostly dead can be rewritten in bounded time.
const PACK_MAX: u64 = 64 * 1024 * 1024;
/// Packs open for writing at once (one per key folder being synced); the oldest is closed
/// beyond this, which only means its folder's next blob starts a new pack.
const MAX_WRITERS: usize = 32;
/// A pack that is more than half dead and at least this large is rewritten by `sweep`.
const COMPACT_MIN: u64 = 1024 * 1024;

pub(super) fn db_err(e: impl Into<redb::Error>) -> BlobError {
    unavailable("blob index", e.into())
}

/// Adds a blob of `len` bytes to pack `id`'s live totals, or removes it (`sign` -1).
pub(super) fn count(
    live: &mut Table<'_, u64, (u64, u64)>,
    id: u64,
    len: u64,
    sign: i8,
) -> Result<(), BlobError> {
    let (bytes, blobs) = live.get(id).map_err(db_err)?.map_or((0, 0), |v| v.value());
    let next = if sign >= 0 {
        (bytes.saturating_add(len), blobs.saturating_add(1))
    } else {
        (bytes.saturating_sub(len), blobs.saturating_sub(1))
    };
    live.insert(id, next).map_err(db_err)?;
    Ok(())
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Location {
    pub pack: u64,
    pub offset: u64,
    pub len: u64,
}

impl Location {
    pub(super) fn from_row((pack, offset, len): (u64, u64, u64)) -> Self {
        Self { pack, offset, len }
    }

    pub(super) fn row(self) -> (u64, u64, u64) {
        (self.pack, self.offset, self.len)
    }
}

struct Writer {
    id: u64,
    file: File,
    len: u64,
    /// When it was last written to, to close the least recent first.
    used: u64,
}

#[derive(Default)]
pub(super) struct State {
    /// The pack being written for each key folder.
    writers: HashMap<String, Writer>,
    /// Blobs written but not committed to the index yet.
    pending: HashMap<String, Location>,
    /// Packs created since the packs folder was last synced.
    new_packs: HashSet<u64>,
    /// Packs being rewritten by `sweep`.
    pub(super) busy: HashSet<u64>,
    pub(super) next_pack: u64,
    clock: u64,
}

impl State {
    /// Packs that must not be deleted or rewritten: being written, holding uncommitted blobs,
    /// or being compacted.
    fn in_use(&self) -> HashSet<u64> {
        let mut ids: HashSet<u64> = self.writers.values().map(|w| w.id).collect();
        ids.extend(self.pending.values().map(|l| l.pack));
        ids.extend(self.busy.iter().copied());
        ids
    }
}

/// The packed part of the blob store.
pub(super) struct Packs {
    pub(super) dir: PathBuf,
    pub(super) index: Database,
    state: Mutex<State>,
    /// One sweep at a time, so two never rewrite the same pack.
    sweeping: Mutex<()>,
}

impl Packs {
    /// Opens the packs under `root`, deleting what a crash left uncommitted.
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let dir = root.join("packs");
        fs::create_dir_all(&dir)
            .map_err(|e| unavailable(&format!("cannot create {}", dir.display()), e))?;
        let index = Database::create(root.join("packs.redb")).map_err(db_err)?;
        let txn = index.begin_write().map_err(db_err)?;
        txn.open_table(BLOBS).map_err(db_err)?;
        txn.open_table(PACKS).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        let packs = Self {
            dir,
            index,
            state: Mutex::new(State::default()),
            sweeping: Mutex::new(()),
        };
        let mut highest = packs.known_packs()?.keys().max().copied().unwrap_or(0);
        for (id, _) in packs.pack_files()? {
            highest = highest.max(id);
        }
        packs.lock().next_pack = highest + 1;
        packs.sweep()?;
        Ok(packs)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a writer panicked; the maps are still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.pack"))
    }

    /// Pack files on disk with their sizes.
    fn pack_files(&self) -> Result<Vec<(u64, u64)>, BlobError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(|e| unavailable("cannot list packs", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| unavailable("cannot list packs", e))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pack"))
                .and_then(|n| u64::from_str_radix(n, 16).ok())
            else {
                continue;
            };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((id, size));
        }
        Ok(out)
    }

    /// Packs with committed blobs, and their live (bytes, blobs).
    fn known_packs(&self) -> Result<HashMap<u64, (u64, u64)>, BlobError> {
        let txn = self.index.begin_read().map_err(db_err)?;
        let table = txn.open_table(PACKS).map_err(db_err)?;
        let mut out = HashMap::new();
        for row in table.iter().map_err(db_err)? {
            let (id, live) = row.map_err(db_err)?;
            out.insert(id.value(), live.value());
        }
        Ok(out)
    }

    /// Appends `body` to its folder's pack; readable at once, durable after `commit`.
    pub fn append(&self, key: &str, body: &[u8]) -> Result<(), BlobError> {
        let group = key.rsplit_once('/').map_or("", |(folder, _)| folder);
        let fail = |e| unavailable(&format!("cannot write blob {key}"), e);
        let mut state = self.lock();
        state.clock += 1;
        let clock = state.clock;
        let full = state
            .writers
            .get(group)
            .is_some_and(|w| w.len > 0 && w.len + body.len() as u64 > PACK_MAX);
        if full || !state.writers.contains_key(group) {
            if state.writers.len() >= MAX_WRITERS
                && let Some(oldest) = state
                    .writers
                    .iter()
                    .filter(|(g, _)| g.as_str() != group)
                    .min_by_key(|(_, w)| w.used)
                    .map(|(g, _)| g.clone())
            {
                state.writers.remove(&oldest);
            }
            let id = state.next_pack;
            state.next_pack += 1;
            let file = File::create_new(self.path(id)).map_err(fail)?;
            state.new_packs.insert(id);
            let writer = Writer {
                id,
                file,
                len: 0,
                used: clock,
            };
            state.writers.insert(group.to_owned(), writer);
        }
        let Some(writer) = state.writers.get_mut(group) else {
            return Err(unavailable("blob packs", "no pack for the folder"));
        };
        let location = Location {
            pack: writer.id,
            offset: writer.len,
            len: body.len() as u64,
        };
        if let Err(e) = writer.file.write_all(body) {
            // Where the file ends is unknown now: the folder's next blob starts a new pack.
            state.writers.remove(group);
            return Err(fail(e));
        }
        writer.len += location.len;
        writer.used = clock;
        state.pending.insert(key.to_owned(), location);
        Ok(())
    }

    /// Where `key` is: uncommitted first (the newest write), then the index.
    pub fn lookup(&self, key: &str) -> Result<Option<Location>, BlobError> {
        if let Some(location) = self.lock().pending.get(key) {
            return Ok(Some(*location));
        }
        let txn = self.index.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOBS).map_err(db_err)?;
        Ok(table
            .get(key)
            .map_err(db_err)?
            .map(|row| Location::from_row(row.value())))
    }

    /// Reads a blob's bytes (`NotFound` when its pack was rewritten meanwhile: look it up again).
    pub fn read(&self, location: Location) -> std::io::Result<Bytes> {
        let file = File::open(self.path(location.pack))?;
        let len = usize::try_from(location.len).map_err(std::io::Error::other)?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, location.offset)?;
        Ok(Bytes::from(buf))
    }

    /// Makes the uncommitted blobs under `keys` durable: their packs synced, then their index
    /// entries in one commit. Returns the keys that were not written here (already committed
    /// ones count as written).
    pub fn commit(&self, keys: &[String]) -> Result<Vec<String>, BlobError> {
        let mut batch = Vec::with_capacity(keys.len());
        let mut unknown = Vec::new();
        let (packs, sync_dir) = {
            let mut state = self.lock();
            for key in keys {
                match state.pending.get(key) {
                    Some(location) => batch.push((key.as_str(), *location)),
                    None => unknown.push(key.clone()),
                }
            }
            let packs: HashSet<u64> = batch.iter().map(|(_, l)| l.pack).collect();
            let sync_dir = packs.iter().any(|id| state.new_packs.contains(id));
            for id in &packs {
                state.new_packs.remove(id);
            }
            (packs, sync_dir)
        };
        for id in &packs {
            File::open(self.path(*id))
                .and_then(|f| f.sync_data())
                .map_err(|e| unavailable("cannot make a blob pack durable", e))?;
        }
        if sync_dir {
            crate::durable::sync_dir(&self.dir);
        }
        let txn = self.index.begin_write().map_err(db_err)?;
        let mut missing = Vec::new();
        {
            let mut blobs = txn.open_table(BLOBS).map_err(db_err)?;
            let mut live = txn.open_table(PACKS).map_err(db_err)?;
            for (key, location) in &batch {
                let old = blobs
                    .insert(*key, location.row())
                    .map_err(db_err)?
                    .map(|row| Location::from_row(row.value()));
                if let Some(old) = old {
                    count(&mut live, old.pack, old.len, -1)?;
                }
                count(&mut live, location.pack, location.len, 1)?;
            }
            for key in unknown {
                if blobs.get(key.as_str()).map_err(db_err)?.is_none() {
                    missing.push(key);
                }
            }
        }
        txn.commit().map_err(db_err)?;
        let mut state = self.lock();
        for (key, location) in batch {
            // A newer write of the same key stays pending.
            if state.pending.get(key) == Some(&location) {
                state.pending.remove(key);
            }
        }
        Ok(missing)
    }

    /// Removes every blob whose key starts with `prefix`; returns the keys removed. Their
    /// bytes stay in their packs until `sweep`.
    pub fn delete_prefix(&self, prefix: &str) -> Result<HashSet<String>, BlobError> {
        let mut deleted = HashSet::new();
        let txn = self.index.begin_write().map_err(db_err)?;
        {
            let mut blobs = txn.open_table(BLOBS).map_err(db_err)?;
            let mut live = txn.open_table(PACKS).map_err(db_err)?;
            let mut found = Vec::new();
            for row in blobs.range(prefix..).map_err(db_err)? {
                let (key, location) = row.map_err(db_err)?;
                if !key.value().starts_with(prefix) {
                    break;
                }
                found.push((key.value().to_owned(), Location::from_row(location.value())));
            }
            for (key, location) in found {
                blobs.remove(key.as_str()).map_err(db_err)?;
                count(&mut live, location.pack, location.len, -1)?;
                deleted.insert(key);
            }
        }
        txn.commit().map_err(db_err)?;
        self.lock().pending.retain(|key, _| {
            let gone = key.starts_with(prefix);
            if gone {
                deleted.insert(key.clone());
            }
            !gone
        });
        Ok(deleted)
    }

    /// Frees the space of deleted blobs: a pack nothing points at any more is deleted, one that
    /// is mostly dead is rewritten first. Packs in use are left for a later sweep.
    pub fn sweep(&self) -> Result<(), BlobError> {
        let _one_sweep = self.sweeping.lock().unwrap_or_else(|e| e.into_inner());
        // In this order: a pack listed here is either in use below or has all its blobs
        // committed (commits end before their blobs leave `pending`), so `known` is exact.
        let files = self.pack_files()?;
        let in_use = {
            let mut state = self.lock();
            // A pack whose blobs are all committed is closed, so a deleted folder's pack can
            // go; the folder's next blob starts a new one.
            let waiting: HashSet<u64> = state.pending.values().map(|l| l.pack).collect();
            state.writers.retain(|_, w| waiting.contains(&w.id));
            state.in_use()
        };
        let known = self.known_packs()?;
        let mut dead = Vec::new();
        for (id, size) in files {
            if in_use.contains(&id) {
                continue;
            }
            match known.get(&id) {
                // Nothing committed points into it: a crash's leftovers, or all deleted.
                None | Some((_, 0)) => dead.push(id),
                Some(&(live, _)) if size >= COMPACT_MIN && live < size / 2 => {
                    self.compact(id)?;
                    dead.push(id);
                }
                Some(_) => {}
            }
        }
        if dead.is_empty() {
            return Ok(());
        }
        let txn = self.index.begin_write().map_err(db_err)?;
        {
            let mut live = txn.open_table(PACKS).map_err(db_err)?;
            for id in &dead {
                live.remove(*id).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        for id in dead {
            match fs::remove_file(self.path(id)) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(unavailable("cannot delete a blob pack", e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
