//! Opens the adapters the configuration asks for: the embedded set (redb, key file, directory,
//! in-process queue) or the AWS set (DynamoDB, KMS, S3, SQS). Each set, and S3 and SQS within
//! the AWS one, is compiled in only with its cargo feature, so a Lambda links just what it uses;
//! asking for a backend this build lacks is a start-up error, never a panic.

#[cfg(feature = "embedded")]
use std::sync::Arc;

#[cfg(feature = "aws")]
use mailroom_aws::{AwsBackends, AwsSettings};
#[cfg(feature = "embedded")]
use mailroom_embedded::{DirBlobStore, InProcessQueue, KeyFile, RedbStore};

use crate::config::{Config, StoreBackend};
use crate::services::{Backends, JobReceiver, StartError};

/// The opened adapters, and the receiving end of the in-process queue when there is one.
pub struct Opened {
    pub backends: Backends,
    pub jobs: Option<JobReceiver>,
}

#[cfg_attr(not(any(feature = "embedded", feature = "aws")), allow(dead_code))]
fn backend_error(backend: &'static str) -> impl Fn(&dyn std::fmt::Display) -> StartError {
    move |e| StartError::Backend {
        backend,
        reason: e.to_string(),
    }
}

/// Opens the configured adapters.
pub async fn open(config: &Config) -> Result<Opened, StartError> {
    match config.store {
        #[cfg(feature = "embedded")]
        StoreBackend::Embedded => open_embedded(config),
        #[cfg(feature = "aws")]
        StoreBackend::Dynamodb => open_aws(config).await,
        #[allow(unreachable_patterns)]
        other => Err(not_built(other)),
    }
}

/// The error for a backend this binary was built without.
fn not_built(store: StoreBackend) -> StartError {
    let (value, feature) = match store {
        StoreBackend::Embedded => ("embedded", "embedded"),
        StoreBackend::Dynamodb => ("dynamodb", "aws"),
    };
    StartError::Backend {
        backend: value,
        reason: format!(
            "MAILROOM_STORE={value} is not available in this build (it was compiled without \
             mailroom-runtime's `{feature}` feature); Lambda functions use MAILROOM_STORE=dynamodb, \
             mailroom-local has both"
        ),
    }
}

#[cfg(feature = "embedded")]
fn open_embedded(config: &Config) -> Result<Opened, StartError> {
    let fail = backend_error("embedded");
    create_private_dir(&config.data_dir).map_err(|e| fail(&e))?;
    let store = RedbStore::open(&config.data_dir.join("mailroom.redb")).map_err(|e| fail(&e))?;
    let keys = KeyFile::open_or_create(&config.data_dir).map_err(|e| fail(&e))?;
    let blobs = DirBlobStore::open(&config.data_dir.join("blobs")).map_err(|e| fail(&e))?;
    let (queue, jobs) = InProcessQueue::new();
    Ok(Opened {
        backends: Backends {
            store: Arc::new(store),
            keys: Arc::new(keys),
            blobs: Arc::new(blobs),
            queue: Arc::new(queue),
        },
        jobs: Some(jobs),
    })
}

/// Creates the data directory owner-only (0700): it holds the master key, the API key and mail.
#[cfg(feature = "embedded")]
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

#[cfg(feature = "aws")]
async fn open_aws(config: &Config) -> Result<Opened, StartError> {
    if config.auto_create && !cfg!(feature = "auto-create") {
        return Err(StartError::Backend {
            backend: "dynamodb",
            reason: "MAILROOM_AUTO_CREATE=1 is not available in this build (compiled without \
                     mailroom-runtime's `auto-create` feature; a deployment creates its resources): \
                     unset it and set MAILROOM_TABLE, MAILROOM_BUCKET, MAILROOM_QUEUE_URL and \
                     MAILROOM_KMS_KEY_ID"
                .into(),
        });
    }
    let sdk = mailroom_aws::load_sdk_config().await;
    let settings = AwsSettings {
        table: config.table.clone(),
        bucket: config.bucket.clone(),
        queue: config
            .queue_url
            .clone()
            .unwrap_or_else(|| config.queue_name.clone()),
        dead_letter_queue: true,
        kms_key_id: config.kms_key_id.clone(),
        auto_create: config.auto_create,
        s3_force_path_style: config.s3_force_path_style,
    };
    let aws = AwsBackends::connect(&sdk, &settings)
        .await
        .map_err(|e| backend_error("dynamodb")(&e))?;
    if config.auto_create && config.kms_key_id.is_none() {
        tracing::info!(kms_key_id = %aws.provisioned.kms_key_id, "using the auto-created KMS key; set MAILROOM_KMS_KEY_ID to pin it");
    }
    Ok(Opened {
        backends: Backends {
            store: std::sync::Arc::new(aws.store),
            keys: std::sync::Arc::new(aws.keys),
            #[cfg(feature = "s3")]
            blobs: std::sync::Arc::new(aws.blobs),
            #[cfg(not(feature = "s3"))]
            blobs: std::sync::Arc::new(absent::Absent("S3 blob store (feature `s3`)")),
            #[cfg(feature = "sqs")]
            queue: std::sync::Arc::new(aws.queue),
            #[cfg(not(feature = "sqs"))]
            queue: std::sync::Arc::new(absent::Absent("SQS job queue (feature `sqs`)")),
        },
        jobs: None,
    })
}

/// Stand-ins for the S3 blob store and the SQS queue in functions built without them: their
/// routes and jobs never reach these ports (nor does their IAM role allow them), so a call means
/// a wiring mistake and fails with an error naming the missing adapter rather than a panic.
#[cfg(all(feature = "aws", not(all(feature = "s3", feature = "sqs"))))]
mod absent {
    use async_trait::async_trait;
    use bytes::Bytes;
    use mailroom_core::ports::{BlobError, BlobStore, Job, JobQueue, QueueError};

    /// An adapter this function was built without; holds what it stands for.
    pub struct Absent(pub &'static str);

    impl Absent {
        fn reason(&self) -> String {
            format!("this function is built without the {}", self.0)
        }
    }

    #[async_trait]
    impl BlobStore for Absent {
        async fn put(&self, _key: &str, _body: Bytes) -> Result<(), BlobError> {
            Err(BlobError::Unavailable(self.reason()))
        }

        async fn get(&self, _key: &str) -> Result<Option<Bytes>, BlobError> {
            Err(BlobError::Unavailable(self.reason()))
        }

        async fn delete_prefix(&self, _prefix: &str) -> Result<u64, BlobError> {
            Err(BlobError::Unavailable(self.reason()))
        }
    }

    #[async_trait]
    impl JobQueue for Absent {
        async fn enqueue(&self, _jobs: &[Job]) -> Result<(), QueueError> {
            Err(QueueError::Unavailable(self.reason()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_backend_names_the_variable_and_the_feature() {
        let e = not_built(StoreBackend::Embedded).to_string();
        assert!(e.contains("MAILROOM_STORE=embedded"), "{e}");
        assert!(e.contains("`embedded` feature"), "{e}");
        let e = not_built(StoreBackend::Dynamodb).to_string();
        assert!(e.contains("MAILROOM_STORE=dynamodb"), "{e}");
        assert!(e.contains("`aws` feature"), "{e}");
    }

    /// A Lambda build (no embedded backends) started without MAILROOM_STORE: a clear error.
    #[cfg(not(feature = "embedded"))]
    #[tokio::test]
    async fn opening_a_backend_left_out_of_the_build_fails_with_its_name() {
        let config = Config::from(&|_: &str| None).expect("the defaults are valid");
        assert_eq!(config.store, StoreBackend::Embedded);
        match open(&config).await {
            Err(StartError::Backend { backend, reason }) => {
                assert_eq!(backend, "embedded");
                assert!(reason.contains("MAILROOM_STORE=embedded"), "{reason}");
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a backend this build lacks was opened"),
        }
    }
}
