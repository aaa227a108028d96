//! Durable file-system steps shared by the key file and the blob store.

use std::fs;
use std::path::Path;

/// Syncs the folder holding `path`, so a rename survives a crash; best effort (some file systems
/// refuse to sync a directory, and the data itself is already synced).
pub(crate) fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
}

/// Syncs a folder, so the renames into it survive a crash; best effort, as above.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}
