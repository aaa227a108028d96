//! [`S3Blobs`]: the blob store on one S3 bucket.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use mailroom_core::ports::{BlobError, BlobStore, validate_blob_key};

use crate::error::describe;

/// DeleteObjects' limit.
const DELETE_CHUNK: usize = 1000;

/// The blob store on an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

fn blob_err<E, R>(op: &str, e: &SdkError<E, R>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    BlobError::Unavailable(format!("S3 {op} failed: {}", describe(e)))
}

/// A prefix is a key, optionally ending in `/` (a whole "folder"); the empty prefix is refused
/// so a bug cannot empty the bucket.
fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    validate_blob_key(body).map_err(|_| BlobError::InvalidKey(prefix.to_owned()))
}

impl S3Blobs {
    /// The store on `bucket`, using a client built once at start-up (path-style for moto).
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn delete_keys(&self, keys: Vec<ObjectIdentifier>) -> Result<u64, BlobError> {
        let count = keys.len() as u64;
        let delete = Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|e| BlobError::Unavailable(format!("cannot build the S3 delete: {e}")))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| blob_err("DeleteObjects", &e))?;
        match out.errors().first() {
            Some(first) => Err(BlobError::Unavailable(format!(
                "S3 could not delete {} blobs (first: {}: {})",
                out.errors().len(),
                first.code().unwrap_or("unknown"),
                first.message().unwrap_or("no message")
            ))),
            None => Ok(count),
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_blob_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| blob_err("PutObject", &e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        validate_blob_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(blob_err("GetObject", &e)),
        };
        let body =
            out.body.collect().await.map_err(|e| {
                BlobError::Unavailable(format!("cannot read blob {key} from S3: {e}"))
            })?;
        Ok(Some(body.into_bytes()))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BlobError> {
        validate_prefix(prefix)?;
        let mut deleted = 0;
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| blob_err("ListObjectsV2", &e))?;
            let keys: Vec<ObjectIdentifier> = out
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            for chunk in keys.chunks(DELETE_CHUNK) {
                deleted += self.delete_keys(chunk.to_vec()).await?;
            }
            match out.next_continuation_token {
                Some(next) if out.is_truncated == Some(true) => token = Some(next),
                _ => return Ok(deleted),
            }
        }
    }
}
