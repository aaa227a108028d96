//! [`S3Blobs`]: the blob store on one S3 bucket, over Mailroom's own small S3 REST client
//! ([`S3Client`]) instead of `aws-sdk-s3`: the SDK crate (endpoint rules, customizations, and
//! flexible checksums through `crc-fast`'s tables) was what kept the api and sync-worker
//! functions over 4 MB zipped. The client makes the few calls listed in [`Operation`], signed
//! with the SDK's own SigV4 signer (`aws-sigv4`) over the body's SHA-256.

mod client;
mod endpoint;
mod error;
mod sign;
mod xml;

use async_trait::async_trait;
use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore, validate_blob_key};
use reqwest::Method;

pub(crate) use client::Request;
pub use client::S3Client;
pub use error::S3Error;
#[cfg(feature = "provision")]
pub(crate) use xml::create_bucket_body;

/// DeleteObjects' limit (and ListObjectsV2's page size).
const DELETE_CHUNK: usize = 1000;

/// The S3 operations Mailroom makes. Every request names one: `deployment.rs` reads the sources
/// for `Operation::<Name>` and fails when one has no IAM action listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    PutObject,
    GetObject,
    ListObjectsV2,
    DeleteObjects,
    /// Provisioning only (`MAILROOM_AUTO_CREATE=1`).
    #[cfg_attr(not(feature = "provision"), allow(dead_code))]
    HeadBucket,
    /// Provisioning only (`MAILROOM_AUTO_CREATE=1`).
    #[cfg_attr(not(feature = "provision"), allow(dead_code))]
    CreateBucket,
}

/// The blob store on an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: S3Client,
    bucket: String,
}

/// A prefix is a key, optionally ending in `/` (a whole "folder"); the empty prefix is refused
/// so a bug cannot empty the bucket.
fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    validate_blob_key(body).map_err(|_| BlobError::InvalidKey(prefix.to_owned()))
}

impl S3Blobs {
    /// The store on `bucket`, using a client built once at start-up.
    pub fn new(client: S3Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// One page of the keys under `prefix`, and the token of the next.
    async fn list(&self, prefix: &str, token: Option<&str>) -> Result<xml::ListPage, BlobError> {
        let mut request = Request::new(Operation::ListObjectsV2, Method::GET, &self.bucket)
            .query("list-type", "2")
            .query("prefix", prefix);
        if let Some(token) = token {
            request = request.query("continuation-token", token);
        }
        let answer = self.client.send(request).await.map_err(|e| {
            BlobError::Unavailable(format!("cannot list the blobs under {prefix}: {e}"))
        })?;
        xml::list_page(&answer.body).map_err(|reason| {
            BlobError::Unavailable(format!(
                "cannot list the blobs under {prefix}: {}",
                S3Error::Response {
                    operation: Operation::ListObjectsV2,
                    reason
                }
            ))
        })
    }

    /// Deletes up to 1,000 keys in one quiet `DeleteObjects`; fails when S3 could not delete
    /// one of them.
    async fn delete_keys(&self, keys: &[String]) -> Result<u64, BlobError> {
        let body = Bytes::from(xml::delete_body(keys));
        // DeleteObjects requires a checksum of its body: SHA-256 here (S3 accepts it in place
        // of Content-MD5, as it does the SDK's CRC32).
        let request = Request::new(Operation::DeleteObjects, Method::POST, &self.bucket)
            .query("delete", "")
            .header("x-amz-sdk-checksum-algorithm", "SHA256".to_owned())
            .header("x-amz-checksum-sha256", sign::sha256_base64(&body))
            .body(Some("application/xml"), body);
        let answer = self.client.send(request).await.map_err(|e| {
            BlobError::Unavailable(format!("cannot delete {} blobs: {e}", keys.len()))
        })?;
        let failures = xml::delete_failures(&answer.body).map_err(|reason| {
            BlobError::Unavailable(format!(
                "cannot tell whether {} blobs were deleted: {}",
                keys.len(),
                S3Error::Response {
                    operation: Operation::DeleteObjects,
                    reason
                }
            ))
        })?;
        match failures.first() {
            Some(first) => Err(BlobError::Unavailable(format!(
                "S3 could not delete {} of {} blobs (first: {}: {}: {})",
                failures.len(),
                keys.len(),
                first.key,
                first.code,
                first.message
            ))),
            None => Ok(keys.len() as u64),
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_blob_key(key)?;
        let request = Request::new(Operation::PutObject, Method::PUT, &self.bucket)
            .key(key)
            .body(None, body);
        self.client
            .send(request)
            .await
            .map_err(|e| BlobError::Unavailable(format!("cannot store blob {key}: {e}")))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        validate_blob_key(key)?;
        let request = Request::new(Operation::GetObject, Method::GET, &self.bucket).key(key);
        match self.client.send(request).await {
            Ok(answer) => Ok(Some(answer.body)),
            // NoSuchKey; a 404 without a body too (not NoSuchBucket: a missing bucket is an error).
            Err(e)
                if e.code() == Some("NoSuchKey")
                    || (e.status() == Some(404) && e.code() == Some("NotFound")) =>
            {
                Ok(None)
            }
            Err(e) => Err(BlobError::Unavailable(format!(
                "cannot read blob {key}: {e}"
            ))),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        validate_prefix(prefix)?;
        let mut deleted = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self.list(prefix, token.as_deref()).await?;
            for chunk in page.keys.chunks(DELETE_CHUNK) {
                deleted += self.delete_keys(chunk).await?;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(deleted),
            }
        }
    }
}
