//! Opens the adapters the configuration asks for: the embedded set (redb, key file, directory,
//! in-process queue) or the AWS set (DynamoDB, KMS, S3, SQS).

use std::sync::Arc;

use mailroom_aws::{AwsBackends, AwsSettings};
use mailroom_embedded::{DirBlobStore, InProcessQueue, JobReceiver, KeyFile, RedbStore};

use crate::config::{Config, StoreBackend};
use crate::services::{Backends, StartError};

/// The opened adapters, and the receiving end of the in-process queue when there is one.
pub struct Opened {
    pub backends: Backends,
    pub jobs: Option<JobReceiver>,
}

fn backend_error(backend: &'static str) -> impl Fn(&dyn std::fmt::Display) -> StartError {
    move |e| StartError::Backend {
        backend,
        reason: e.to_string(),
    }
}

/// Opens the configured adapters.
pub async fn open(config: &Config) -> Result<Opened, StartError> {
    match config.store {
        StoreBackend::Embedded => open_embedded(config),
        StoreBackend::Dynamodb => open_aws(config).await,
    }
}

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

async fn open_aws(config: &Config) -> Result<Opened, StartError> {
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
            store: Arc::new(aws.store),
            keys: Arc::new(aws.keys),
            blobs: Arc::new(aws.blobs),
            queue: Arc::new(aws.queue),
        },
        jobs: None,
    })
}
