//! Provisioning: with auto-create on, creates whatever of the table, bucket, queue (and
//! dead-letter queue) and KMS key is missing; otherwise only resolves the queue URL and requires
//! a key id. Safe to run on every start: existing resources are left as they are.

#[cfg(feature = "provision")]
mod storage;

#[cfg(feature = "provision")]
use aws_sdk_kms::types::KeyMetadata;
#[cfg(all(feature = "provision", feature = "sqs"))]
use aws_sdk_sqs::types::QueueAttributeName;

use crate::AwsClients;
#[cfg(feature = "provision")]
use crate::error::code;
#[cfg(any(feature = "provision", feature = "sqs"))]
use crate::error::describe;

/// The names of the AWS resources Mailroom uses.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub table: String,
    pub bucket: String,
    /// The job queue's name or URL.
    pub queue: String,
    /// Whether auto-create also makes `<queue>-dlq` and redrives to it after five receives.
    pub dead_letter_queue: bool,
    /// KMS key id, ARN or alias; when absent and auto-create is on, the key behind
    /// `alias/mailroom-<table>` is used, created on first run.
    pub kms_key_id: Option<String>,
    pub auto_create: bool,
    /// Path-style S3 addressing (needed by moto and other local S3 servers).
    pub s3_force_path_style: bool,
}

/// What provisioning resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub queue_url: String,
    pub kms_key_id: String,
}

/// Which resource could not be found or created.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot provision the DynamoDB table {table}: {reason}")]
    Table { table: String, reason: String },
    #[error("cannot provision the S3 bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("cannot provision the SQS queue {queue}: {reason}")]
    Queue { queue: String, reason: String },
    #[error("cannot provision the KMS key {key}: {reason}")]
    Key { key: String, reason: String },
    #[error("no KMS key id is configured and auto-create is off")]
    MissingKey,
    #[error(
        "auto-create is not available in this build (mailroom-aws without its `provision` \
         feature): create the table, bucket, queue and key, and configure them"
    )]
    NotBuilt,
}

/// Ensures every resource exists (auto-create) or resolves what the adapters need.
pub async fn provision(
    clients: &AwsClients,
    settings: &AwsSettings,
) -> Result<Provisioned, ProvisionError> {
    if !settings.auto_create {
        let kms_key_id = settings
            .kms_key_id
            .clone()
            .ok_or(ProvisionError::MissingKey)?;
        let queue_url = queue_url(clients, &settings.queue, false).await?;
        return Ok(Provisioned {
            queue_url,
            kms_key_id,
        });
    }
    create_missing(clients, settings).await
}

/// Without the `provision` feature (Lambda builds: the deployment creates the resources) the
/// creation code is left out of the binary.
#[cfg(not(feature = "provision"))]
async fn create_missing(_: &AwsClients, _: &AwsSettings) -> Result<Provisioned, ProvisionError> {
    Err(ProvisionError::NotBuilt)
}

/// Creates whatever is missing (auto-create).
#[cfg(feature = "provision")]
async fn create_missing(
    clients: &AwsClients,
    settings: &AwsSettings,
) -> Result<Provisioned, ProvisionError> {
    storage::ensure_table(&clients.dynamodb, &settings.table).await?;
    #[cfg(feature = "s3")]
    storage::ensure_bucket(&clients.s3, &settings.bucket).await?;
    let queue_url = ensure_queue(clients, settings).await?;
    let kms_key_id = match &settings.kms_key_id {
        Some(id) => id.clone(),
        None => ensure_key(clients, &default_alias(&settings.table)).await?,
    };
    tracing::info!(table = %settings.table, bucket = %settings.bucket, %queue_url, "AWS resources are in place");
    Ok(Provisioned {
        queue_url,
        kms_key_id,
    })
}

/// `alias/mailroom-<table>`, with the characters aliases refuse replaced.
#[cfg(feature = "provision")]
fn default_alias(table: &str) -> String {
    let safe: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("alias/mailroom-{safe}")
}

/// Without the queue adapter (no `sqs` feature) nothing is ever sent: the queue is left as named.
#[cfg(not(feature = "sqs"))]
async fn queue_url(_: &AwsClients, queue: &str, _create: bool) -> Result<String, ProvisionError> {
    Ok(queue.to_owned())
}

#[cfg(all(feature = "provision", not(feature = "sqs")))]
async fn ensure_queue(
    clients: &AwsClients,
    settings: &AwsSettings,
) -> Result<String, ProvisionError> {
    queue_url(clients, &settings.queue, true).await
}

#[cfg(feature = "sqs")]
fn is_url(queue: &str) -> bool {
    queue.starts_with("https://") || queue.starts_with("http://")
}

/// The URL of `queue` (a name or URL), creating the queue when `create` is set.
#[cfg(feature = "sqs")]
async fn queue_url(
    clients: &AwsClients,
    queue: &str,
    create: bool,
) -> Result<String, ProvisionError> {
    let err = |reason: String| ProvisionError::Queue {
        queue: queue.to_owned(),
        reason,
    };
    // Without `provision` the creation below is never reached, and the optimizer leaves it out.
    let create = create && cfg!(feature = "provision");
    if is_url(queue) {
        return Ok(queue.to_owned());
    }
    match clients.sqs.get_queue_url().queue_name(queue).send().await {
        Ok(out) => {
            return out
                .queue_url
                .ok_or_else(|| err("SQS returned no URL".into()));
        }
        Err(e)
            if !(create
                && e.as_service_error()
                    .is_some_and(|s| s.is_queue_does_not_exist())) =>
        {
            return Err(err(describe(&e)));
        }
        Err(_) => {}
    }
    let out = clients
        .sqs
        .create_queue()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| err(describe(&e)))?;
    tracing::info!(queue, "created the SQS queue");
    out.queue_url
        .ok_or_else(|| err("SQS returned no URL".into()))
}

#[cfg(all(feature = "provision", feature = "sqs"))]
async fn ensure_queue(
    clients: &AwsClients,
    settings: &AwsSettings,
) -> Result<String, ProvisionError> {
    let url = queue_url(clients, &settings.queue, true).await?;
    if !settings.dead_letter_queue || is_url(&settings.queue) {
        return Ok(url);
    }
    let dlq = format!("{}-dlq", settings.queue);
    let err = |reason: String| ProvisionError::Queue {
        queue: dlq.clone(),
        reason,
    };
    let dlq_url = queue_url(clients, &dlq, true).await?;
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(describe(&e)))?;
    let arn = attrs
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| err("SQS returned no queue ARN".into()))?;
    let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": "5"});
    clients
        .sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .map_err(|e| ProvisionError::Queue {
            queue: settings.queue.clone(),
            reason: describe(&e),
        })?;
    Ok(url)
}

#[cfg(feature = "provision")]
fn key_id(meta: Option<KeyMetadata>) -> Option<String> {
    meta.map(|m| m.key_id)
}

/// The id of the key behind `alias`, creating key and alias when the alias is missing.
#[cfg(feature = "provision")]
async fn ensure_key(clients: &AwsClients, alias: &str) -> Result<String, ProvisionError> {
    let err = |reason: String| ProvisionError::Key {
        key: alias.to_owned(),
        reason,
    };
    match clients.kms.describe_key().key_id(alias).send().await {
        Ok(out) => {
            return key_id(out.key_metadata).ok_or_else(|| err("KMS returned no key".into()));
        }
        Err(e) if code(&e) != Some("NotFoundException") => return Err(err(describe(&e))),
        Err(_) => {}
    }
    let created = clients
        .kms
        .create_key()
        .description("Mailroom envelope-encryption key")
        .send()
        .await
        .map_err(|e| err(describe(&e)))?;
    let id = key_id(created.key_metadata).ok_or_else(|| err("KMS returned no key".into()))?;
    match clients
        .kms
        .create_alias()
        .alias_name(alias)
        .target_key_id(&id)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(alias, "created the KMS key");
            Ok(id)
        }
        // Another process created the alias first: use its key (ours stays unused).
        Err(e) if code(&e) == Some("AlreadyExistsException") => {
            let out = clients
                .kms
                .describe_key()
                .key_id(alias)
                .send()
                .await
                .map_err(|e| err(describe(&e)))?;
            key_id(out.key_metadata).ok_or_else(|| err("KMS returned no key".into()))
        }
        Err(e) => Err(err(describe(&e))),
    }
}

#[cfg(all(test, feature = "provision"))]
mod tests {
    use super::*;

    #[test]
    fn default_alias_is_a_valid_alias_name() {
        assert_eq!(default_alias("mail.room_1"), "alias/mailroom-mail-room_1");
    }
}
