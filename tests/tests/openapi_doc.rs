//! docs/openapi.yaml checked against the routing table both ways: every route is documented
//! with the function that serves it and its authentication, and nothing undocumented is served.

use std::collections::BTreeMap;

use mailroom_web::{Access, specs};
use serde_yaml::Value;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml");
    serde_yaml::from_str(&text).expect("docs/openapi.yaml is YAML")
}

/// "METHOD /path" -> (x-function, security scheme or "public") for every documented operation.
fn operations(doc: &Value) -> BTreeMap<String, (String, String)> {
    let default_security = &doc["security"];
    let mut out = BTreeMap::new();
    let paths = doc["paths"].as_mapping().expect("paths");
    for (path, item) in paths {
        let path = path.as_str().expect("a path");
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let function = op["x-function"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} names no x-function"))
                .to_owned();
            let security = op.get("security").unwrap_or(default_security);
            let scheme = security
                .as_sequence()
                .and_then(|list| list.first())
                .and_then(|first| first.as_mapping())
                .and_then(|m| m.keys().next())
                .and_then(|k| k.as_str())
                .unwrap_or("public")
                .to_owned();
            out.insert(
                format!("{} {path}", method.to_uppercase()),
                (function, scheme),
            );
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let mut documented = operations(&doc);
    for spec in specs() {
        let key = format!("{} {}", spec.method, spec.path);
        let (function, scheme) = documented
            .remove(&key)
            .unwrap_or_else(|| panic!("{key} is served but not in docs/openapi.yaml"));
        assert_eq!(function, spec.function.name(), "{key}: x-function");
        let expected = match spec.access {
            Access::Public => "public",
            Access::ApiKey => "apiKey",
            Access::Session => "session",
        };
        assert_eq!(scheme, expected, "{key}: security");
    }
    assert!(
        documented.is_empty(),
        "documented but not served: {:?}",
        documented.keys().collect::<Vec<_>>()
    );
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let text = serde_yaml::to_string(&doc).expect("YAML");
    let mut checked = 0;
    for line in text.lines() {
        let Some(at) = line.find("$ref: ") else {
            continue;
        };
        let target = line[at + 6..]
            .trim()
            .trim_matches(|c| c == '\'' || c == '"');
        let pointer = target.strip_prefix("#/").expect("a local reference");
        let mut node = &doc;
        for part in pointer.split('/') {
            node = node
                .get(part)
                .unwrap_or_else(|| panic!("{target} does not resolve"));
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} references found");
}
