//! The security half of the template check: the bucket, each role's grants against the
//! adapters' calls, and the KMS key policy.

use std::collections::{BTreeSet, HashSet};

use mailroom_aws::deployment::{self, Adapter, Resource, TABLE};
use serde_yaml::Value;

use super::FUNCTION_PORTS;
use super::cfn::{at, list, logical, of_type, refs, template, text};

/// Actions a role needs besides its adapters': its own logs, and the worker's SQS event source.
const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];
const CONSUME_ACTIONS: &[&str] = &[
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
];

#[test]
fn the_bucket_is_private_encrypted_tls_only_and_purges_deleted_accounts() {
    let t = template();
    let p = &at(&t, &["Resources", "RawMailBucket", "Properties"]);
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(p["PublicAccessBlockConfiguration"][flag], true, "{flag}");
    }
    let sse = &list(&p["BucketEncryption"]["ServerSideEncryptionConfiguration"])[0];
    assert_eq!(
        sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "aws:kms"
    );
    assert!(refs(&sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]).contains("Key"));
    // The lifecycle prefix is where an account's raw mail lives (mailroom-core).
    let account_prefix = mailroom_core::records::message_blob_prefix("ID");
    let root_prefix = account_prefix.strip_suffix("ID/").expect("<root>/<id>/");
    let rule = list(&p["LifecycleConfiguration"]["Rules"])
        .into_iter()
        .find(|r| r["Prefix"].as_str() == Some(root_prefix))
        .unwrap_or_else(|| panic!("no lifecycle rule on {root_prefix}"));
    assert!(
        refs(&rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
            .contains("DeletedMailRetentionDays")
    );
    assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled");
    let policy = at(
        &t,
        &[
            "Resources",
            "RawMailBucketPolicy",
            "Properties",
            "PolicyDocument",
        ],
    );
    assert!(list(&policy["Statement"]).iter().any(|s| {
        s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    }));
}

/// The role of `function` and the Allow statements of the policies attached to it.
fn grants(t: &Value, function: &str) -> (String, Vec<Value>) {
    let f = &at(t, &["Resources"])[logical(t, function).as_str()];
    let role = refs(&f["Properties"]["Role"])
        .into_iter()
        .next()
        .expect("explicit role");
    assert!(
        f["Properties"]["Policies"].is_null(),
        "{function}: no SAM policy templates"
    );
    let statements = of_type(t, "AWS::IAM::Policy")
        .into_iter()
        .filter(|(_, p)| refs(&p["Properties"]["Roles"]).contains(&role))
        .flat_map(|(_, p)| list(&p["Properties"]["PolicyDocument"]["Statement"]))
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    (role, statements)
}

/// Whether a statement's resource is the deployed `resource`.
fn is_resource(value: &Value, resource: Resource) -> bool {
    let sub = |v: &Value| v["Fn::Sub"].as_str().map(str::to_owned);
    let get_att = |v: &Value, id: &str| {
        refs(v) == BTreeSet::from([id.to_owned()]) && !v["Fn::GetAtt"].is_null()
    };
    match resource {
        Resource::Table => get_att(value, "Table"),
        Resource::Index => sub(value) == Some(format!("${{Table.Arn}}/index/{}", TABLE.index)),
        Resource::Bucket => get_att(value, "RawMailBucket"),
        Resource::Objects => sub(value).as_deref() == Some("${RawMailBucket.Arn}/*"),
        Resource::Queue => get_att(value, "SyncQueue"),
        Resource::Key => get_att(value, "Key"),
    }
}

#[test]
fn each_role_grants_exactly_what_its_adapters_call() {
    let t = template();
    for (function, ports) in FUNCTION_PORTS {
        let (_, statements) = grants(&t, function);
        let mut granted: HashSet<(String, Resource)> = HashSet::new();
        let mut all = BTreeSet::new();
        for s in &statements {
            let actions: Vec<String> = list(&s["Action"]).iter().map(text).collect();
            for a in &actions {
                assert!(!a.ends_with('*'), "{function}: wildcard action {a}");
                all.insert(a.clone());
            }
            for r in list(&s["Resource"]) {
                assert_ne!(r, "*", "{function}: a `*` resource");
                for kind in [
                    Resource::Table,
                    Resource::Index,
                    Resource::Bucket,
                    Resource::Objects,
                    Resource::Queue,
                ] {
                    if is_resource(&r, kind) {
                        granted.extend(actions.iter().map(|a| (a.clone(), kind)));
                    }
                }
            }
        }
        let mut needed: BTreeSet<String> = LOG_ACTIONS.iter().map(|a| a.to_string()).collect();
        if *function == "sync-worker" {
            needed.extend(CONSUME_ACTIONS.iter().map(|a| a.to_string()));
        }
        for adapter in ports.iter().filter(|a| **a != Adapter::Keys) {
            for kind in [
                Resource::Table,
                Resource::Index,
                Resource::Bucket,
                Resource::Objects,
                Resource::Queue,
            ] {
                for action in deployment::actions(*adapter, kind) {
                    assert!(
                        granted.contains(&(action.to_owned(), kind)),
                        "{function} uses {adapter:?} but may not {action} on {kind:?}"
                    );
                    needed.insert(action.to_owned());
                }
            }
        }
        assert_eq!(all, needed, "{function}: granted actions vs needed ones");
    }
}

#[test]
fn the_key_rotates_and_only_sealing_functions_use_it_with_our_encryption_context() {
    let t = template();
    let key = &at(&t, &["Resources", "Key", "Properties"]);
    assert_eq!(key["EnableKeyRotation"], true);
    let statements = list(&key["KeyPolicy"]["Statement"]);
    let direct: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            let actions: Vec<String> = list(&s["Action"]).iter().map(text).collect();
            s["Condition"]["StringEquals"]["kms:ViaService"].is_null()
                && actions
                    .iter()
                    .any(|a| a == "kms:Decrypt" || a.starts_with("kms:GenerateDataKey"))
        })
        .collect();
    assert_eq!(
        direct.len(),
        1,
        "one statement for direct use of the key: {direct:?}"
    );
    let sealing = direct[0];
    let principals = refs(&sealing["Principal"]["AWS"]);
    let expected: BTreeSet<String> = FUNCTION_PORTS
        .iter()
        .filter(|(_, ports)| ports.contains(&Adapter::Keys))
        .map(|(f, _)| grants(&t, f).0)
        .collect();
    assert_eq!(principals, expected, "roles allowed to seal and unseal");
    let mut actions: Vec<String> = list(&sealing["Action"]).iter().map(text).collect();
    actions.sort();
    let mut needed: Vec<&str> = [Resource::Key]
        .iter()
        .flat_map(|r| deployment::actions(Adapter::Keys, *r))
        .collect();
    needed.sort();
    assert_eq!(actions, needed);
    let keys: BTreeSet<String> = mailroom_core::ports::KeyContext::all_pair_names()
        .iter()
        .map(|k| k.to_string())
        .collect();
    let condition = &sealing["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"];
    let allowed: BTreeSet<String> = list(condition).iter().map(text).collect();
    assert_eq!(allowed, keys, "the encryption context keys the code sends");
    assert_eq!(
        sealing["Condition"]["Null"]["kms:EncryptionContextKeys"],
        "false"
    );
    // At-rest encryption through the services: every function reads the table; only the blob
    // users go through S3.
    let via = |service: &str| -> BTreeSet<String> {
        let statement = statements
            .iter()
            .find(|s| {
                let v = serde_yaml::to_string(&s["Condition"]["StringEquals"]["kms:ViaService"])
                    .expect("yaml");
                v.contains(&format!("{service}.${{AWS::Region}}"))
                    && s["Principal"]["Service"].is_null()
                    && !refs(&s["Principal"]["AWS"]).is_empty()
            })
            .unwrap_or_else(|| panic!("no key statement for use through {service}"));
        refs(&statement["Principal"]["AWS"])
    };
    let roles_using = |adapter: Option<Adapter>| -> BTreeSet<String> {
        FUNCTION_PORTS
            .iter()
            .filter(|(_, ports)| adapter.is_none_or(|a| ports.contains(&a)))
            .map(|(f, _)| grants(&t, f).0)
            .collect()
    };
    assert_eq!(
        via("dynamodb"),
        roles_using(None),
        "roles using the table's key"
    );
    assert_eq!(
        via("s3"),
        roles_using(Some(Adapter::Blobs)),
        "roles using the bucket's key"
    );
}
