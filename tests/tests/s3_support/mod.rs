//! Support for the S3 client tests: a recording HTTP server (retries and signatures on the
//! wire), an independent SigV4 check, and a private moto server that verifies signatures.

#![allow(dead_code)]

pub mod moto_auth;
pub mod recorder;
pub mod sigv4;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use mailroom_aws::{AwsClients, S3Blobs};

/// An SDK configuration for `endpoint` with static credentials (a session token when given).
pub fn config(
    endpoint: &str,
    region: &str,
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key,
            secret,
            token.map(str::to_owned),
            None,
            "s3-tests",
        )))
        .build()
}

/// Mailroom's blob store on `bucket` through `config` (path-style).
pub fn blobs(config: &SdkConfig, bucket: &str) -> S3Blobs {
    S3Blobs::new(AwsClients::new(config, true).s3, bucket)
}
