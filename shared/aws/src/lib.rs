//! Mailroom's AWS adapters: a DynamoDB item store, a KMS key service, an S3 blob store and an
//! SQS job queue, with provisioning of the resources they use. Clients are built once from one
//! SDK configuration and shared.

pub mod deployment;
mod dynamo;
mod error;
mod kms;
pub mod provision;
mod s3;
mod sqs;

pub use aws_config::SdkConfig;
pub use dynamo::{DynamoStore, GSI1};
pub use kms::KmsKeys;
pub use provision::{AwsSettings, ProvisionError, Provisioned};
pub use s3::S3Blobs;
pub use sqs::SqsQueue;

use aws_config::BehaviorVersion;

/// Loads the SDK configuration from the environment (credentials, region, and
/// `AWS_ENDPOINT_URL` for local servers such as moto).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The service clients, built once per process.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    pub fn new(config: &SdkConfig, s3_force_path_style: bool) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(s3_force_path_style)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sqs: aws_sdk_sqs::Client::new(config),
        }
    }
}

/// The four adapters, on provisioned resources.
#[derive(Debug, Clone)]
pub struct AwsBackends {
    pub store: DynamoStore,
    pub keys: KmsKeys,
    pub blobs: S3Blobs,
    pub queue: SqsQueue,
    pub provisioned: Provisioned,
}

impl AwsBackends {
    /// Builds the clients from `config`, provisions (or resolves) the resources and returns the
    /// adapters.
    pub async fn connect(
        config: &SdkConfig,
        settings: &AwsSettings,
    ) -> Result<Self, ProvisionError> {
        let clients = AwsClients::new(config, settings.s3_force_path_style);
        let provisioned = provision::provision(&clients, settings).await?;
        Ok(Self {
            store: DynamoStore::new(clients.dynamodb, settings.table.clone()),
            keys: KmsKeys::new(clients.kms, provisioned.kms_key_id.clone()),
            blobs: S3Blobs::new(clients.s3, settings.bucket.clone()),
            queue: SqsQueue::new(clients.sqs, provisioned.queue_url.clone()),
            provisioned,
        })
    }
}
