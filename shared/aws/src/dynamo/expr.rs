//! Write conditions as DynamoDB condition expressions. Expired items count as absent, exactly as
//! in the embedded store, because DynamoDB's TTL sweeper deletes them only eventually.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::ports::Condition;

use super::convert::{PK, TTL, VERSION};

/// A condition expression with its name and value placeholders.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub(crate) text: String,
    pub(crate) names: HashMap<String, String>,
    pub(crate) values: HashMap<String, AttributeValue>,
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn absent_or_expired(now: i64) -> Expr {
    Expr {
        text: "attribute_not_exists(#pk) OR #ttl <= :now".into(),
        names: names(&[("#pk", PK), ("#ttl", TTL)]),
        values: HashMap::from([(":now".to_owned(), AttributeValue::N(now.to_string()))]),
    }
}

/// The expression for `condition` at store time `now`; `None` for an unconditional write.
pub(crate) fn condition(condition: Condition, now: i64) -> Option<Expr> {
    match condition {
        Condition::None => None,
        Condition::NotExists => Some(absent_or_expired(now)),
        Condition::AbsentOrExpired { now } => Some(absent_or_expired(now)),
        Condition::VersionIs(version) => Some(Expr {
            text: "#version = :version AND (attribute_not_exists(#ttl) OR #ttl > :now)".into(),
            names: names(&[("#version", VERSION), ("#ttl", TTL)]),
            values: HashMap::from([
                (
                    ":version".to_owned(),
                    AttributeValue::N(version.to_string()),
                ),
                (":now".to_owned(), AttributeValue::N(now.to_string())),
            ]),
        }),
    }
}

/// Applies an optional condition to an SDK request builder (each request type has the same
/// three setters, so a macro saves three copies).
macro_rules! with_condition {
    ($builder:expr, $expr:expr) => {
        match $expr {
            Some(e) => $builder
                .condition_expression(e.text)
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values)),
            None => $builder,
        }
    };
}
pub(crate) use with_condition;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_names_its_placeholders() {
        assert_eq!(condition(Condition::None, 5), None);
        for c in [
            Condition::NotExists,
            Condition::VersionIs(3),
            Condition::AbsentOrExpired { now: 9 },
        ] {
            let e = condition(c, 5).unwrap();
            for name in e.names.keys() {
                assert!(e.text.contains(name.as_str()), "{name} in {}", e.text);
            }
            for value in e.values.keys() {
                assert!(e.text.contains(value.as_str()), "{value} in {}", e.text);
            }
        }
        let lease = condition(Condition::AbsentOrExpired { now: 9 }, 5).unwrap();
        assert_eq!(lease.values[":now"], AttributeValue::N("9".into()));
    }
}
