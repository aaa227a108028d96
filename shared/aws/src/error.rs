//! Reading AWS SDK errors: their service code and a description that names no request data.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Service error codes that mean "slow down" across DynamoDB, KMS, S3 and SQS.
const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];

/// The service's error code, when the service answered.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

/// Whether the service asked us to slow down.
pub(crate) fn is_throttling<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    code(e).is_some_and(|c| THROTTLING.contains(&c))
}

/// `code: message` for service errors, else the transport error's chain.
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) if service.code().is_some() => format!(
            "{}: {}",
            service.code().unwrap_or_default(),
            service.message().unwrap_or("no message")
        ),
        _ => DisplayErrorContext(e).to_string(),
    }
}
