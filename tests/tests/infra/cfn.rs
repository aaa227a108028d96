//! Reading a CloudFormation/SAM template: YAML with the short-form tags turned into their long
//! forms, and helpers to walk resources and the logical ids a value refers to.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::root;

/// CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) as their long forms.
pub fn long_form(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, inner) = match (name, inner) {
                ("Ref" | "Condition", inner) => (name.to_owned(), inner),
                ("GetAtt", Value::String(s)) => {
                    let (resource, attribute) = s.split_once('.').expect("!GetAtt Resource.Attr");
                    let parts = vec![resource.into(), attribute.into()];
                    ("Fn::GetAtt".to_owned(), Value::Sequence(parts))
                }
                (other, inner) => (format!("Fn::{other}"), inner),
            };
            let mut map = Mapping::new();
            map.insert(Value::String(key), inner);
            Value::Mapping(map)
        }
        Value::Mapping(map) => {
            Value::Mapping(map.into_iter().map(|(k, v)| (k, long_form(v))).collect())
        }
        Value::Sequence(seq) => Value::Sequence(seq.into_iter().map(long_form).collect()),
        other => other,
    }
}

pub fn template() -> Value {
    let path = root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/template.yaml is readable");
    long_form(serde_yaml::from_str(&text).expect("infra/template.yaml is YAML"))
}

pub fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A value that is one item or a list of items, as a list.
pub fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(seq) => seq.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The logical ids a value refers to (`Ref`, `Fn::GetAtt`, `${X}` / `${X.Arn}` in `Fn::Sub`).
pub fn refs(value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                match k.as_str() {
                    Some("Ref") => {
                        found.insert(text(v));
                    }
                    Some("Fn::GetAtt") => {
                        found.insert(text(&list(v)[0]));
                    }
                    Some("Fn::Sub") => {
                        let template = list(v).first().map(text).unwrap_or_default();
                        for part in template.split("${").skip(1) {
                            let name = part.split(['}', '.']).next().unwrap_or_default();
                            found.insert(name.to_owned());
                        }
                    }
                    _ => {}
                }
                found.extend(refs(v));
            }
        }
        Value::Sequence(seq) => seq.iter().for_each(|v| found.extend(refs(v))),
        _ => {}
    }
    found
}

pub fn resources(t: &Value) -> Vec<(String, &Value)> {
    at(t, &["Resources"])
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (text(k), v))
        .collect()
}

pub fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

/// Function name (binary) -> logical id.
pub fn functions(t: &Value) -> BTreeMap<String, String> {
    of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, r)| (text(at(r, &["Metadata", "BuildProperties", "Binary"])), id))
        .collect()
}

pub fn logical(t: &Value, function: &str) -> String {
    functions(t)
        .get(function)
        .cloned()
        .unwrap_or_else(|| panic!("no function {function} in the template"))
}
