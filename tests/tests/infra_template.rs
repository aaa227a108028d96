//! infra/template.yaml checked against the code: functions and crates, the routing table, the
//! environment the code reads, the table schema, the bucket, the KMS key policy and each
//! function's IAM grants (from `mailroom_aws::deployment`). cfn-lint checks the rest in tests/run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mailroom_aws::deployment::{Adapter, TABLE};
use mailroom_web::{Access, specs};
use serde_yaml::Value;

#[path = "infra/cfn.rs"]
mod cfn;
#[path = "infra/security.rs"]
mod security;

use cfn::{at, functions, list, logical, of_type, refs, template, text};

/// The ports each deployed function uses: its role gets those adapters' actions, nothing more.
pub(crate) const FUNCTION_PORTS: &[(&str, &[Adapter])] = &[
    ("oauth-start", &[Adapter::Store, Adapter::Keys]),
    (
        "oauth-callback",
        &[Adapter::Store, Adapter::Keys, Adapter::Queue],
    ),
    (
        "api",
        &[
            Adapter::Store,
            Adapter::Keys,
            Adapter::Blobs,
            Adapter::Queue,
        ],
    ),
    ("send-mail", &[Adapter::Store, Adapter::Keys]),
    // Reads and updates due accounts (their tokens are sealed), then enqueues.
    (
        "sync-scheduler",
        &[Adapter::Store, Adapter::Keys, Adapter::Queue],
    ),
    // Consumes the queue through its event source; never enqueues.
    (
        "sync-worker",
        &[Adapter::Store, Adapter::Keys, Adapter::Blobs],
    ),
];

/// Variables the code reads that the template deliberately leaves unset.
const NOT_DEPLOYED: &[(&str, &str)] = &[
    ("MAILROOM_DATA_DIR", "embedded backends only"),
    ("MAILROOM_LISTEN", "the local host's listener"),
    (
        "MAILROOM_AUTO_CREATE",
        "the template creates every resource; must stay off",
    ),
    (
        "MAILROOM_QUEUE_NAME",
        "auto-create only; the template passes MAILROOM_QUEUE_URL",
    ),
    (
        "MAILROOM_DATA_KEY_CACHE_SECONDS",
        "the default (1 day) fits warm Lambdas",
    ),
    ("MAILROOM_S3_FORCE_PATH_STYLE", "S3 emulators only"),
];

/// Variables only some functions need.
const ONLY_ON: &[(&str, &[&str])] = &[
    ("MAILROOM_BACKFILL_LIMIT", &["sync-worker"]),
    ("MAILROOM_BACKFILL_DAYS", &["sync-worker"]),
    ("MAILROOM_WORKER_CONCURRENCY", &["sync-worker"]),
    ("MAILROOM_SEND_MAX_ATTACHMENT_BYTES", &["send-mail"]),
];

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

#[test]
fn every_function_crate_is_deployed_and_built_with_cargo_lambda() {
    let t = template();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "mailroom-local")
        .collect();
    let deployed: BTreeSet<String> = functions(&t).into_keys().collect();
    assert_eq!(deployed, crates, "template functions vs functions/ crates");
    let ported: BTreeSet<String> = FUNCTION_PORTS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(ported, crates, "FUNCTION_PORTS must name every function");
    for (name, id) in functions(&t) {
        let f = &at(&t, &["Resources"])[id.as_str()];
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        assert_eq!(
            text(&f["Properties"]["CodeUri"]),
            format!("../functions/{name}")
        );
        assert!(
            f["Properties"]["Timeout"].as_u64().is_some(),
            "{name} has a timeout"
        );
        assert!(
            f["Properties"]["MemorySize"].as_u64().is_some(),
            "{name} has a size"
        );
    }
    let globals = at(&t, &["Globals", "Function"]);
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(
        refs(&globals["Architectures"]),
        BTreeSet::from(["Architecture".into()])
    );
    assert_eq!(at(&t, &["Parameters", "Architecture", "Default"]), "arm64");
}

/// "METHOD /path" -> (function, public?) for every route of the template.
fn template_routes(t: &Value) -> BTreeMap<String, (String, bool)> {
    let by_id: BTreeMap<String, String> = functions(t).into_iter().map(|(n, i)| (i, n)).collect();
    let mut routes = BTreeMap::new();
    for (id, route) in of_type(t, "AWS::ApiGatewayV2::Route") {
        let p = &route["Properties"];
        let integration = refs(&p["Target"]).into_iter().next().expect("route target");
        let target = &at(t, &["Resources"])[integration.as_str()]["Properties"];
        assert_eq!(target["IntegrationType"], "AWS_PROXY", "{integration}");
        assert_eq!(
            text(&target["PayloadFormatVersion"]),
            "2.0",
            "{integration}"
        );
        let function = refs(&target["IntegrationUri"])
            .into_iter()
            .next()
            .expect("uri");
        let name = by_id
            .get(&function)
            .cloned()
            .expect("integration of a function");
        let public = p["AuthorizationType"] == "NONE";
        if !public {
            let auth = serde_yaml::to_string(&p["AuthorizationType"]).expect("yaml");
            assert!(
                auth.contains("UseJwt"),
                "{id}: protected routes follow Authorizer"
            );
        }
        let previous = routes.insert(text(&p["RouteKey"]), (name, public));
        assert!(previous.is_none(), "{id}: route key defined twice");
    }
    routes
}

#[test]
fn routes_match_the_routing_table_both_ways() {
    let t = template();
    let mut deployed = template_routes(&t);
    for spec in specs() {
        let key = format!("{} {}", spec.method, spec.path);
        let (function, public) = deployed.remove(&key).unwrap_or_else(|| {
            panic!(
                "{key} ({}) has no route in infra/template.yaml",
                spec.function.name()
            )
        });
        assert_eq!(
            function,
            spec.function.name(),
            "{key}: integrated with the wrong function"
        );
        assert_eq!(
            public,
            // The pages authenticate with their session cookie: public at the gateway.
            spec.access != Access::ApiKey,
            "{key}: authorization differs"
        );
    }
    let extra: Vec<&String> = deployed.keys().collect();
    assert!(
        extra.is_empty(),
        "template routes the code does not serve: {extra:?}"
    );
    for function in mailroom_web::Function::ALL {
        let id = logical(&t, function.name());
        let granted = of_type(&t, "AWS::Lambda::Permission")
            .into_iter()
            .any(|(_, p)| {
                let p = &p["Properties"];
                p["Principal"] == "apigateway.amazonaws.com"
                    && refs(&p["FunctionName"]).contains(&id)
                    && refs(&p["SourceArn"]).contains("HttpApi")
            });
        assert!(granted, "API Gateway may not invoke {}", function.name());
    }
}

/// Every `"MAILROOM_..."` literal in the shipped code (shared crates and functions).
fn variables_read_by_the_code() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir)
            .expect("source dir")
            .map(|e| e.expect("entry"))
        {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).expect("source");
                for part in source.split("\"MAILROOM_").skip(1) {
                    let name: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if part[name.len()..].starts_with('"') && !name.starts_with("TEST_") {
                        found.insert(format!("MAILROOM_{name}"));
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    for top in ["shared", "functions"] {
        walk(&root().join(top), &mut found);
    }
    found
}

/// A function's environment: Globals merged with its own variables (SAM's rule).
fn environment(t: &Value, function: &str) -> BTreeMap<String, Value> {
    let own = &at(t, &["Resources"])[logical(t, function).as_str()]["Properties"];
    let mut env = BTreeMap::new();
    for vars in [
        at(t, &["Globals", "Function", "Environment", "Variables"]),
        at(own, &["Environment", "Variables"]),
    ] {
        for (k, v) in vars.as_mapping().into_iter().flatten() {
            env.insert(text(k), v.clone());
        }
    }
    env
}

#[test]
fn every_variable_the_code_reads_is_set_where_it_is_needed() {
    let t = template();
    let read = variables_read_by_the_code();
    assert!(
        read.contains("MAILROOM_STORE") && read.contains("MAILROOM_API_KEY"),
        "{read:?}"
    );
    for (name, _) in FUNCTION_PORTS {
        let env = environment(&t, name);
        for var in &read {
            if NOT_DEPLOYED.iter().any(|(v, _)| v == var) {
                assert!(
                    !env.contains_key(var),
                    "{name} sets {var}, which stays unset"
                );
                continue;
            }
            let needed = ONLY_ON
                .iter()
                .find(|(v, _)| v == var)
                .is_none_or(|(_, fs)| fs.contains(name));
            assert_eq!(
                env.contains_key(var),
                needed,
                "{name}: {var} {}",
                if needed {
                    "is read by the code but not set"
                } else {
                    "is set but only needed elsewhere"
                }
            );
        }
        for var in env.keys().filter(|v| v.starts_with("MAILROOM_")) {
            assert!(
                read.contains(var),
                "{name} sets {var}, which the code never reads"
            );
        }
        assert_eq!(env["MAILROOM_STORE"], "dynamodb");
        for (var, target) in [
            ("MAILROOM_TABLE", "Table"),
            ("MAILROOM_KMS_KEY_ID", "Key"),
            ("MAILROOM_BUCKET", "RawMailBucket"),
            ("MAILROOM_QUEUE_URL", "SyncQueue"),
            ("MAILROOM_PUBLIC_URL", "HttpApi"),
        ] {
            assert!(
                refs(&env[var]).contains(target),
                "{name}: {var} must refer to {target}"
            );
        }
        let key = serde_yaml::to_string(&env["MAILROOM_API_KEY"]).expect("yaml");
        assert!(
            key.contains("{{resolve:secretsmanager:${ApiKeySecretArn}"),
            "{key}"
        );
    }
}

#[test]
fn the_table_matches_the_store() {
    let t = template();
    let p = &at(&t, &["Resources", "Table", "Properties"]);
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    let keys = |schema: &Value| -> Vec<(String, String)> {
        list(schema)
            .iter()
            .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
            .collect()
    };
    let pair = |a: &str, b: &str| {
        vec![
            (a.to_owned(), "HASH".to_owned()),
            (b.to_owned(), "RANGE".to_owned()),
        ]
    };
    assert_eq!(keys(&p["KeySchema"]), pair(TABLE.pk, TABLE.sk));
    let indexes = list(&p["GlobalSecondaryIndexes"]);
    assert_eq!(indexes.len(), 1);
    assert_eq!(text(&indexes[0]["IndexName"]), TABLE.index, "index name");
    assert_eq!(
        keys(&indexes[0]["KeySchema"]),
        pair(TABLE.index_pk, TABLE.index_sk)
    );
    // Keys, ttl and version, as the provisioner creates it: the scheduler reads the version for
    // the workers' account cache and nothing else (no attribute that makes an index copy big).
    assert_eq!(indexes[0]["Projection"]["ProjectionType"], "INCLUDE");
    let projected: Vec<String> = list(&indexes[0]["Projection"]["NonKeyAttributes"])
        .iter()
        .map(text)
        .collect();
    assert_eq!(projected, vec!["ttl".to_owned(), "version".to_owned()]);
    let attributes: BTreeMap<String, String> = list(&p["AttributeDefinitions"])
        .iter()
        .map(|a| (text(&a["AttributeName"]), text(&a["AttributeType"])))
        .collect();
    let expected = [TABLE.pk, TABLE.sk, TABLE.index_pk, TABLE.index_sk]
        .map(|a| (a.to_owned(), "S".to_owned()));
    assert_eq!(attributes, BTreeMap::from(expected));
    assert_eq!(
        text(&p["TimeToLiveSpecification"]["AttributeName"]),
        TABLE.ttl
    );
    assert_eq!(p["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(p["SSESpecification"]["SSEType"], "KMS");
    assert!(refs(&p["SSESpecification"]["KMSMasterKeyId"]).contains("Key"));
}
#[test]
fn the_worker_consumes_the_queue_and_the_scheduler_runs_on_the_interval() {
    let t = template();
    let worker = logical(&t, "sync-worker");
    let scheduler = logical(&t, "sync-scheduler");
    let r = at(&t, &["Resources"]);
    let (_, mapping) = of_type(&t, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .find(|(_, m)| refs(&m["Properties"]["FunctionName"]).contains(&worker))
        .expect("the worker's SQS event source");
    let m = &mapping["Properties"];
    assert!(refs(&m["EventSourceArn"]).contains("SyncQueue"));
    assert!(list(&m["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures".into()));
    assert!(refs(&m["ScalingConfig"]["MaximumConcurrency"]).contains("SyncWorkerConcurrency"));
    assert!(refs(&m["MaximumBatchingWindowInSeconds"]).contains("SyncWorkerBatchingWindow"));
    let w = &r[worker.as_str()]["Properties"];
    // Syncs at once per invocation are their own knob, not the SQS batch size (a message
    // carries up to JOBS_PER_MESSAGE jobs).
    assert!(
        refs(&w["Environment"]["Variables"]["MAILROOM_WORKER_CONCURRENCY"])
            .contains("SyncWorkerParallelSyncs")
    );
    assert!(refs(&w["ReservedConcurrentExecutions"]).contains("SyncWorkerConcurrency"));
    let timeout = w["Timeout"].as_u64().expect("timeout");
    assert!(
        (840..=900).contains(&timeout),
        "the worker runs near the 15-minute cap"
    );
    let queue = &r["SyncQueue"]["Properties"];
    assert!(queue["VisibilityTimeout"].as_u64().expect("visibility") >= timeout);
    assert!(refs(&queue["RedrivePolicy"]["deadLetterTargetArn"]).contains("SyncDeadLetterQueue"));
    let rule = of_type(&t, "AWS::Events::Rule")
        .into_iter()
        .find(|(_, e)| refs(&e["Properties"]["Targets"]).contains(&scheduler))
        .expect("a schedule for the scheduler");
    assert!(refs(&rule.1["Properties"]["ScheduleExpression"]).contains("SyncIntervalMinutes"));
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(
        alarms
            .iter()
            .any(|(_, a)| refs(&a["Properties"]["Dimensions"]).contains("SyncDeadLetterQueue"))
    );
    for (name, id) in functions(&t) {
        let watched = alarms.iter().any(|(_, a)| {
            a["Properties"]["MetricName"] == "Errors"
                && refs(&a["Properties"]["Dimensions"]).contains(&id)
        });
        assert!(watched, "no error alarm on {name}");
    }
}
