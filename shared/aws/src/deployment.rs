//! What a deployment must provide for these adapters: the table's schema and the IAM actions of
//! every AWS call they make, with the resource each is made on. The infra template is checked
//! against these (tests/tests/infra_template.rs); a test here reads the adapters' sources and
//! fails when an SDK call (or an S3 `Operation` of the own S3 client) is missing from [`CALLS`],
//! so the list cannot fall behind the code.

use crate::dynamo::{GSI1, GSI1PK, GSI1SK, PK, SK, TTL};

/// The attribute names of the single table the item store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSchema {
    /// Partition key (string).
    pub pk: &'static str,
    /// Sort key (string).
    pub sk: &'static str,
    /// The global secondary index (all attributes projected).
    pub index: &'static str,
    /// The index's partition key (string).
    pub index_pk: &'static str,
    /// The index's sort key (string).
    pub index_sk: &'static str,
    /// The TTL attribute (epoch seconds).
    pub ttl: &'static str,
}

/// The table [`crate::DynamoStore`] reads and writes.
pub const TABLE: TableSchema = TableSchema {
    pk: PK,
    sk: SK,
    index: GSI1,
    index_pk: GSI1PK,
    index_sk: GSI1SK,
    ttl: TTL,
};

/// The adapter (port) that makes a call; a function is granted an adapter's actions when it uses
/// that port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Adapter {
    /// [`crate::DynamoStore`].
    Store,
    /// [`crate::KmsKeys`].
    Keys,
    /// [`crate::S3Blobs`].
    Blobs,
    /// [`crate::SqsQueue`].
    Queue,
}

/// The deployed resource an action is granted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Table,
    /// The table's index ([`TableSchema::index`]).
    Index,
    Key,
    Bucket,
    /// The bucket's objects.
    Objects,
    Queue,
}

/// One SDK operation an adapter calls, and what IAM must allow for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub adapter: Adapter,
    /// The SDK client's method (`client.get_item()`); for S3, the own client's
    /// `Operation::ListObjectsV2` in snake case (`list_objects_v2`).
    pub operation: &'static str,
    /// The IAM actions it needs.
    pub actions: &'static [&'static str],
    /// Where they are needed.
    pub resources: &'static [Resource],
}

const fn call(
    adapter: Adapter,
    operation: &'static str,
    actions: &'static [&'static str],
    resources: &'static [Resource],
) -> Call {
    Call {
        adapter,
        operation,
        actions,
        resources,
    }
}

/// Every AWS call the adapters make while serving (not provisioning).
pub const CALLS: &[Call] = &[
    call(
        Adapter::Store,
        "get_item",
        &["dynamodb:GetItem"],
        &[Resource::Table],
    ),
    call(
        Adapter::Store,
        "put_item",
        &["dynamodb:PutItem"],
        &[Resource::Table],
    ),
    call(
        Adapter::Store,
        "delete_item",
        &["dynamodb:DeleteItem"],
        &[Resource::Table],
    ),
    // Partition range reads on the table, and the due index.
    call(
        Adapter::Store,
        "query",
        &["dynamodb:Query"],
        &[Resource::Table, Resource::Index],
    ),
    call(
        Adapter::Store,
        "batch_write_item",
        &["dynamodb:BatchWriteItem"],
        &[Resource::Table],
    ),
    // IAM has no TransactWriteItems action: each write in it is authorized as itself, and the
    // store only builds Put and Delete writes.
    call(
        Adapter::Store,
        "transact_write_items",
        &["dynamodb:PutItem", "dynamodb:DeleteItem"],
        &[Resource::Table],
    ),
    call(
        Adapter::Keys,
        "generate_data_key",
        &["kms:GenerateDataKey"],
        &[Resource::Key],
    ),
    call(Adapter::Keys, "decrypt", &["kms:Decrypt"], &[Resource::Key]),
    call(
        Adapter::Blobs,
        "put_object",
        &["s3:PutObject"],
        &[Resource::Objects],
    ),
    call(
        Adapter::Blobs,
        "get_object",
        &["s3:GetObject"],
        &[Resource::Objects],
    ),
    call(
        Adapter::Blobs,
        "delete_objects",
        &["s3:DeleteObject"],
        &[Resource::Objects],
    ),
    call(
        Adapter::Blobs,
        "list_objects_v2",
        &["s3:ListBucket"],
        &[Resource::Bucket],
    ),
    call(
        Adapter::Queue,
        "send_message_batch",
        &["sqs:SendMessage"],
        &[Resource::Queue],
    ),
];

/// SDK calls made only by provisioning: with `MAILROOM_AUTO_CREATE=1` (emulators, first-time
/// staging), or `get_queue_url` when the queue is configured by name. A deployment creates the
/// resources itself and passes the queue's URL, so none of these is granted there.
pub const PROVISIONING_OPERATIONS: &[&str] = &[
    "describe_table",
    "create_table",
    "describe_time_to_live",
    "update_time_to_live",
    "head_bucket",
    "create_bucket",
    "get_queue_url",
    "create_queue",
    "get_queue_attributes",
    "set_queue_attributes",
    "describe_key",
    "create_key",
    "create_alias",
];

/// The IAM actions `adapter` needs on `resource`.
pub fn actions(adapter: Adapter, resource: Resource) -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = CALLS
        .iter()
        .filter(|c| c.adapter == adapter && c.resources.contains(&resource))
        .flat_map(|c| c.actions.iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

#[cfg(test)]
mod tests;
