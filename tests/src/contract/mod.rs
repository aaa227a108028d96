//! The storage contract: suites written once against the ports (`ItemStore`, `KeyService`,
//! `BlobStore`, `JobQueue`) and run against both the embedded adapters and the AWS ones on moto,
//! plus the helpers that open those adapters for a test.

pub mod backends;
pub mod blobs;
pub mod fixtures;
pub mod query;
pub mod records;
pub mod store;
