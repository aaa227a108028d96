//! Creating the DynamoDB table (key schema, `gsi1` projecting keys, `ttl` and `version`, TTL
//! on `ttl`) and the S3 bucket.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
#[cfg(feature = "s3")]
use bytes::Bytes;
#[cfg(feature = "s3")]
use reqwest::Method;

#[cfg(feature = "s3")]
use crate::s3::{Operation, Request, S3Client, create_bucket_body};

use super::ProvisionError;
use crate::dynamo::{GSI1, GSI1PK, GSI1SK, PK, SK, TTL, VERSION};
use crate::error::{code, describe};

/// How long to wait for a new table to become active.
const TABLE_WAIT: Duration = Duration::from_secs(120);

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| e.to_string())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), String> {
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash)?)
        .key_schema(key(GSI1SK, KeyType::Range)?)
        // Keys, `ttl` and `version` only: the scheduler passes each account's version to the
        // workers (their account cache checks it); no attribute that makes an index copy big.
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes(TTL)
                .non_key_attributes(VERSION)
                .build(),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let result = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .attribute_definitions(string_attribute(GSI1PK)?)
        .attribute_definitions(string_attribute(GSI1SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match result {
        Ok(_) => {
            tracing::info!(table, "created the DynamoDB table");
            Ok(())
        }
        // Created by a concurrent start: fine.
        Err(e) if code(&e) == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(describe(&e)),
    }
}

/// Creates the table when missing, waits until it is active, and turns TTL on.
pub(super) async fn ensure_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), ProvisionError> {
    let err = |reason: String| ProvisionError::Table {
        table: table.to_owned(),
        reason,
    };
    let started = tokio::time::Instant::now();
    loop {
        match client.describe_table().table_name(table).send().await {
            Ok(out) => {
                let status = out.table.and_then(|t| t.table_status);
                if status == Some(TableStatus::Active) {
                    break;
                }
            }
            Err(e) if code(&e) == Some("ResourceNotFoundException") => {
                create_table(client, table).await.map_err(err)?;
            }
            Err(e) => return Err(err(describe(&e))),
        }
        if started.elapsed() > TABLE_WAIT {
            return Err(err("the table did not become active in time".into()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| err(describe(&e)))?;
    let status = ttl
        .time_to_live_description
        .and_then(|d| d.time_to_live_status);
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL)
        .build()
        .map_err(|e| err(e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| err(describe(&e)))?;
    Ok(())
}

/// Creates the bucket when missing (in the client's region).
#[cfg(feature = "s3")]
pub(super) async fn ensure_bucket(client: &S3Client, bucket: &str) -> Result<(), ProvisionError> {
    let err = |reason: String| ProvisionError::Bucket {
        bucket: bucket.to_owned(),
        reason,
    };
    match client
        .send(Request::new(Operation::HeadBucket, Method::HEAD, bucket))
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) if e.status() != Some(404) => return Err(err(e.to_string())),
        Err(_) => {}
    }
    let mut request = Request::new(Operation::CreateBucket, Method::PUT, bucket);
    // us-east-1 is the default location and refuses an explicit constraint.
    if let Some(region) = client.region()
        && region != "us-east-1"
    {
        request = request.body(
            Some("application/xml"),
            Bytes::from(create_bucket_body(region)),
        );
    }
    match client.send(request).await {
        Ok(_) => {
            tracing::info!(bucket, "created the S3 bucket");
            Ok(())
        }
        // Created by a concurrent start: fine.
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) => Err(err(e.to_string())),
    }
}
