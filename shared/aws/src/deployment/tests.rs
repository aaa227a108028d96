//! Checks that [`super::CALLS`] follows the adapters' sources, and the actions it yields.

use super::*;
use std::collections::BTreeSet;

/// The adapters' sources, each with the adapter whose calls it makes (`None`: provisioning).
const SOURCES: &[(&str, Option<Adapter>, &str)] = &[
    (
        "dynamo/mod.rs",
        Some(Adapter::Store),
        include_str!("../dynamo/mod.rs"),
    ),
    (
        "dynamo/read.rs",
        Some(Adapter::Store),
        include_str!("../dynamo/read.rs"),
    ),
    (
        "dynamo/batch.rs",
        Some(Adapter::Store),
        include_str!("../dynamo/batch.rs"),
    ),
    (
        "dynamo/transact.rs",
        Some(Adapter::Store),
        include_str!("../dynamo/transact.rs"),
    ),
    (
        "dynamo/expr.rs",
        Some(Adapter::Store),
        include_str!("../dynamo/expr.rs"),
    ),
    (
        "dynamo/convert.rs",
        Some(Adapter::Store),
        include_str!("../dynamo/convert.rs"),
    ),
    ("kms.rs", Some(Adapter::Keys), include_str!("../kms.rs")),
    (
        "s3/mod.rs",
        Some(Adapter::Blobs),
        include_str!("../s3/mod.rs"),
    ),
    (
        "s3/client.rs",
        Some(Adapter::Blobs),
        include_str!("../s3/client.rs"),
    ),
    (
        "s3/endpoint.rs",
        Some(Adapter::Blobs),
        include_str!("../s3/endpoint.rs"),
    ),
    (
        "s3/error.rs",
        Some(Adapter::Blobs),
        include_str!("../s3/error.rs"),
    ),
    (
        "s3/sign.rs",
        Some(Adapter::Blobs),
        include_str!("../s3/sign.rs"),
    ),
    (
        "s3/xml.rs",
        Some(Adapter::Blobs),
        include_str!("../s3/xml.rs"),
    ),
    ("sqs.rs", Some(Adapter::Queue), include_str!("../sqs.rs")),
    ("lib.rs", None, include_str!("../lib.rs")),
    ("error.rs", None, include_str!("../error.rs")),
    (
        "provision/mod.rs",
        None,
        include_str!("../provision/mod.rs"),
    ),
    (
        "provision/storage.rs",
        None,
        include_str!("../provision/storage.rs"),
    ),
];

/// Client methods that are not AWS operations.
const NOT_OPERATIONS: &[&str] = &["config", "clone", "region"];

/// The operations called on an SDK client in `source`: `client.<op>()`, `clients.<svc>.<op>()`,
/// `self.client.<op>()`, across line breaks; and the S3 client's requests, each of which
/// names its `Operation::<Name>` (as `<name>` in snake case). Unit tests (from
/// `#[cfg(test)]` items) are not read: only calls the adapters make count.
fn operations(source: &str) -> BTreeSet<String> {
    let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let compact = without_test_items(&compact);
    let mut compact = compact;
    for service in ["dynamodb", "kms", "s3", "sqs"] {
        compact = compact.replace(&format!("clients.{service}."), "client.");
    }
    let mut found = BTreeSet::new();
    for (at, _) in compact.match_indices("client.") {
        let rest = &compact[at + "client.".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty()
            && rest[name.len()..].starts_with("()")
            && !NOT_OPERATIONS.contains(&name.as_str())
        {
            found.insert(name);
        }
    }
    for (at, _) in compact.match_indices("Operation::") {
        let name: String = compact[at + "Operation::".len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let mut snake = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        if !snake.is_empty() {
            found.insert(snake);
        }
    }
    found
}

/// `source` without the items marked `#[cfg(test)]` (up to the end of their first braced
/// block, or of the statement).
fn without_test_items(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_adapter_source_is_read() {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    for file in files {
        assert!(
            file.starts_with("deployment") || SOURCES.iter().any(|(listed, _, _)| *listed == file),
            "src/{file} is not in deployment::tests::SOURCES: list it with the adapter whose \
             calls it makes, so its AWS calls are checked for IAM actions"
        );
    }
}

#[test]
fn every_sdk_call_in_the_adapters_is_listed_and_every_listed_call_is_made() {
    let mut made = BTreeSet::new();
    for (file, adapter, source) in SOURCES {
        for op in operations(source) {
            match adapter {
                Some(adapter) => assert!(
                    CALLS
                        .iter()
                        .any(|c| c.adapter == *adapter && c.operation == op),
                    "{file} calls `{op}`: add it to deployment::CALLS with its IAM actions \
                     (and grant them in infra/template.yaml)"
                ),
                None => assert!(
                    PROVISIONING_OPERATIONS.contains(&op.as_str())
                        || CALLS.iter().any(|c| c.operation == op),
                    "{file} calls `{op}`: list it in deployment::PROVISIONING_OPERATIONS \
                     or CALLS"
                ),
            }
            made.insert(op);
        }
    }
    for c in CALLS {
        assert!(
            made.contains(c.operation),
            "deployment::CALLS lists `{}`, which no adapter calls any more",
            c.operation
        );
    }
}

#[test]
fn the_scanner_sees_calls_across_lines_and_through_the_clients_struct() {
    let source = "self\n    .client\n    .get_item()\n .table_name(t);\n\
                  clients\n.kms\n.create_key()\n client.config().region()\n\
                  Request::new(Operation::ListObjectsV2, Method::GET, b)\n\
                  #[cfg(test)] mod tests { fn t() { client.delete_item(); } }\n\
                  Operation::PutObject";
    let found: Vec<String> = operations(source).into_iter().collect();
    assert_eq!(
        found,
        ["create_key", "get_item", "list_objects_v2", "put_object"]
    );
}

#[test]
fn actions_per_resource_follow_the_calls() {
    assert_eq!(actions(Adapter::Store, Resource::Index), ["dynamodb:Query"]);
    assert_eq!(
        actions(Adapter::Store, Resource::Table),
        [
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query"
        ]
    );
    assert_eq!(actions(Adapter::Queue, Resource::Key), Vec::<&str>::new());
    assert_eq!(TABLE.pk, "pk");
    assert_eq!(TABLE.index, "gsi1");
}
