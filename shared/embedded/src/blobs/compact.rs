//! Rewriting a pack that deletes left mostly dead: its live blobs are copied into a new pack
//! (synced before the index points at it), the index moves to the copies in one commit, and
//! the old pack, with nothing live left, is deleted by the sweep that asked for the rewrite.

use std::fs::File;
use std::io::Write;

use mailroom_core::ports::BlobError;
use redb::{ReadableDatabase, ReadableTable};

use super::packs::{BLOBS, Location, PACKS, Packs, db_err};
use crate::blobs::unavailable;

impl Packs {
    /// Copies the live blobs of pack `id` into a new pack and points the index at them, so the
    /// old pack holds nothing live and the next sweep deletes it.
    pub(super) fn compact(&self, id: u64) -> Result<(), BlobError> {
        let moving: Vec<(String, Location)> = {
            let txn = self.index.begin_read().map_err(db_err)?;
            let table = txn.open_table(BLOBS).map_err(db_err)?;
            let mut out = Vec::new();
            for row in table.iter().map_err(db_err)? {
                let (key, location) = row.map_err(db_err)?;
                let location = Location::from_row(location.value());
                if location.pack == id {
                    out.push((key.value().to_owned(), location));
                }
            }
            out
        };
        let target = {
            let mut state = self.lock();
            let target = state.next_pack;
            state.next_pack += 1;
            state.busy.extend([id, target]);
            target
        };
        let moved = self.copy_into(target, &moving);
        let result = moved.and_then(|moved| {
            let txn = self.index.begin_write().map_err(db_err)?;
            {
                let mut blobs = txn.open_table(BLOBS).map_err(db_err)?;
                let mut live = txn.open_table(PACKS).map_err(db_err)?;
                let mut copied = (0, 0);
                for ((key, old), new) in moving.iter().zip(moved) {
                    // A blob rewritten or deleted meanwhile keeps its newer state.
                    let still = blobs
                        .get(key.as_str())
                        .map_err(db_err)?
                        .is_some_and(|row| Location::from_row(row.value()) == *old);
                    if still {
                        blobs.insert(key.as_str(), new.row()).map_err(db_err)?;
                        copied = (copied.0 + new.len, copied.1 + 1);
                    }
                }
                live.insert(id, (0, 0)).map_err(db_err)?;
                live.insert(target, copied).map_err(db_err)?;
            }
            txn.commit().map_err(db_err)
        });
        let mut state = self.lock();
        state.busy.remove(&id);
        state.busy.remove(&target);
        result
    }

    /// Writes the blobs at `from` into the new pack `target`, durably; returns where they went.
    fn copy_into(
        &self,
        target: u64,
        from: &[(String, Location)],
    ) -> Result<Vec<Location>, BlobError> {
        let fail = |e| unavailable("cannot rewrite a blob pack", e);
        let mut file = File::create_new(self.path(target)).map_err(fail)?;
        let mut offset = 0;
        let mut out = Vec::with_capacity(from.len());
        for (_, location) in from {
            let body = self.read(*location).map_err(fail)?;
            file.write_all(&body).map_err(fail)?;
            out.push(Location {
                pack: target,
                offset,
                len: location.len,
            });
            offset += location.len;
        }
        file.sync_data().map_err(fail)?;
        crate::durable::sync_dir(&self.dir);
        Ok(out)
    }
}
