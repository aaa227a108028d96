//! The one-file-per-blob layout of earlier versions (`<root>/blobs/<key>`): still read, and
//! deleted by prefix, so data stored before the packs keeps working. Nothing new is written here.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use bytes::Bytes;
use mailroom_core::ports::BlobError;

use super::unavailable;

/// Reads the blob under `key`, if stored in this layout.
pub(super) fn get(blobs: &Path, key: &str) -> Result<Option<Bytes>, BlobError> {
    match fs::read(blobs.join(key)) {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        // A "folder" of other keys is not a blob, as in S3.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(unavailable(&format!("cannot read blob {key}"), e)),
    }
}

/// Whether a blob is stored under `key` in this layout.
pub(super) fn exists(blobs: &Path, key: &str) -> bool {
    fs::metadata(blobs.join(key)).is_ok_and(|m| m.is_file())
}

/// Deletes the files whose key starts with `prefix`; returns how many of them were not already
/// counted in `counted` (deleted from the packs under the same key).
pub(super) fn delete_prefix(
    blobs: &Path,
    prefix: &str,
    counted: &HashSet<String>,
) -> Result<u64, BlobError> {
    // Walk only the deepest folder the prefix names completely.
    let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
    let mut deleted = 0;
    let mut stack = vec![(blobs.join(folder), folder.to_owned())];
    while let Some((dir, key)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                continue;
            }
            Err(e) => return Err(unavailable("cannot list blobs", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| unavailable("cannot list blobs", e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let child = if key.is_empty() {
                name.to_owned()
            } else {
                format!("{key}/{name}")
            };
            let file_type = entry
                .file_type()
                .map_err(|e| unavailable("cannot list blobs", e))?;
            if file_type.is_dir() {
                // Descend only where keys under the folder can still match the prefix.
                let as_folder = format!("{child}/");
                if as_folder.starts_with(prefix) || prefix.starts_with(&as_folder) {
                    stack.push((entry.path(), child));
                }
            } else if child.starts_with(prefix) {
                match fs::remove_file(entry.path()) {
                    Ok(()) if !counted.contains(&child) => deleted += 1,
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(unavailable(&format!("cannot delete blob {child}"), e));
                    }
                }
            }
        }
        // Tidy emptied folders; a folder still in use simply stays.
        if dir != blobs {
            let _ = fs::remove_dir(&dir);
        }
    }
    Ok(deleted)
}
