//! The API key: from `MAILROOM_API_KEY`, or, locally, generated on first run and kept in the data
//! directory with owner-only permissions.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use secrecy::SecretString;

/// What could not be done with the API key.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("could not read or create the API key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the API key file {path} holds a key shorter than 32 characters")]
    TooShort { path: String },
}

/// Where a generated key is kept.
pub const KEY_FILE: &str = "api-key";

/// Returns the key in `<data_dir>/api-key`, creating it (0600) when missing; the flag says
/// whether it was created now, so the caller can show it once.
pub fn load_or_create(data_dir: &Path) -> Result<(SecretString, bool), ApiKeyError> {
    let path = data_dir.join(KEY_FILE);
    let file_error = |source| ApiKeyError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_owned();
            if key.len() < 32 {
                return Err(ApiKeyError::TooShort {
                    path: path.display().to_string(),
                });
            }
            return Ok((SecretString::from(key), false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(e)),
    }
    std::fs::create_dir_all(data_dir).map_err(file_error)?;
    let bytes: [u8; 32] = rand::random();
    let key = format!(
        "mr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(file_error)?;
    file.write_all(key.as_bytes()).map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    Ok((SecretString::from(key), true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn creates_once_with_owner_only_permissions_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (first, created) = load_or_create(dir.path()).unwrap();
        assert!(created);
        assert!(first.expose_secret().len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(first.expose_secret(), second.expose_secret());
    }
}
