//! Items to DynamoDB attribute maps and back: the adapter's own columns (`pk`, `sk`, `version`,
//! `ttl`, `gsi1pk`, `gsi1sk`), plain attributes as native DynamoDB types, sealed fields as binary
//! `enc_<name>` attributes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::ports::{
    IndexKey, Item, ItemKey, RESERVED_ATTRIBUTES, SEALED_PREFIX, StoreError,
};
use serde_json::{Map, Number, Value};

pub(crate) type Attributes = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const VERSION: &str = "version";
pub(crate) const TTL: &str = "ttl";
pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";

/// The primary key attributes of `key`.
pub(crate) fn key_attributes(key: &ItemKey) -> Attributes {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn to_value(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_value).collect()),
        Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect())
        }
    }
}

fn parse_number(text: &str) -> Option<Number> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(u.into());
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

fn from_value(value: &AttributeValue) -> Result<Value, String> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => {
            Value::Number(parse_number(n).ok_or_else(|| format!("number {n:?} is not valid"))?)
        }
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(l) => Value::Array(l.iter().map(from_value).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_value(v)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        _ => return Err("an attribute has a type the item model does not use".into()),
    })
}

/// The full attribute map of an (already validated) item.
pub(crate) fn to_attributes(item: &Item) -> Attributes {
    let mut out = key_attributes(&item.key);
    out.insert(VERSION.into(), AttributeValue::N(item.version.to_string()));
    if let Some(at) = item.expires_at {
        out.insert(TTL.into(), AttributeValue::N(at.to_string()));
    }
    if let Some(IndexKey { pk, sk }) = &item.index {
        out.insert(GSI1PK.into(), AttributeValue::S(pk.clone()));
        out.insert(GSI1SK.into(), AttributeValue::S(sk.clone()));
    }
    for (name, value) in &item.attributes {
        out.insert(name.clone(), to_value(value));
    }
    for (name, bytes) in &item.sealed {
        out.insert(
            format!("{SEALED_PREFIX}{name}"),
            AttributeValue::B(Blob::new(bytes.clone())),
        );
    }
    out
}

fn string<'a>(attrs: &'a Attributes, name: &str) -> Result<&'a str, String> {
    match attrs.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(format!("attribute {name} is missing or not a string")),
    }
}

fn number<T: std::str::FromStr>(attrs: &Attributes, name: &str) -> Result<Option<T>, String> {
    match attrs.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| format!("attribute {name} is not a valid number")),
        Some(_) => Err(format!("attribute {name} is not a number")),
    }
}

/// Rebuilds an item from a DynamoDB attribute map.
pub(crate) fn from_attributes(attrs: &Attributes) -> Result<Item, StoreError> {
    let pk = attrs
        .get(PK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let sk = attrs
        .get(SK)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let corrupt = |reason: String| StoreError::Corrupt {
        pk: pk.clone(),
        sk: sk.clone(),
        reason,
    };
    string(attrs, PK).map_err(corrupt)?;
    string(attrs, SK).map_err(corrupt)?;
    let version = number::<u64>(attrs, VERSION)
        .map_err(corrupt)?
        .ok_or_else(|| corrupt("attribute version is missing".into()))?;
    let expires_at = number::<i64>(attrs, TTL).map_err(corrupt)?;
    let index = match (attrs.get(GSI1PK), attrs.get(GSI1SK)) {
        (None, None) => None,
        _ => Some(IndexKey {
            pk: string(attrs, GSI1PK).map_err(corrupt)?.to_owned(),
            sk: string(attrs, GSI1SK).map_err(corrupt)?.to_owned(),
        }),
    };
    let mut attributes = Map::new();
    let mut sealed = BTreeMap::new();
    for (name, value) in attrs {
        if RESERVED_ATTRIBUTES.contains(&name.as_str()) {
            continue;
        }
        if let Some(field) = name.strip_prefix(SEALED_PREFIX) {
            let AttributeValue::B(blob) = value else {
                return Err(corrupt(format!("sealed attribute {name} is not binary")));
            };
            sealed.insert(field.to_owned(), blob.as_ref().to_vec());
        } else {
            let value = from_value(value).map_err(|e| corrupt(format!("attribute {name}: {e}")))?;
            attributes.insert(name.clone(), value);
        }
    }
    Ok(Item {
        key: ItemKey { pk, sk },
        version,
        expires_at,
        index,
        attributes,
        sealed,
    })
}

/// Rebuilds an index entry as the port defines it (key, index key, expiry, version), whatever
/// else the table's index projects, so every table reads the same way (an older table whose
/// index projects every attribute included; one that does not project the version reads 0).
pub(crate) fn from_index_attributes(attrs: &Attributes) -> Result<Item, StoreError> {
    let mut keys: Attributes = attrs
        .iter()
        .filter(|(name, _)| [PK, SK, GSI1PK, GSI1SK, TTL, VERSION].contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    keys.entry(VERSION.to_owned())
        .or_insert_with(|| AttributeValue::N("0".into()));
    from_attributes(&keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_every_part() {
        let mut item = Item::new(ItemKey::new("P", "S"));
        item.version = u64::MAX;
        item.expires_at = Some(1_700_000_000);
        item.index = Some(IndexKey {
            pk: "DUE".into(),
            sk: "000000000001#a".into(),
        });
        item.attributes = json!({
            "s": "text", "n": -3, "f": 2.5, "b": true, "null": null,
            "list": [1, "two", [3]], "map": {"k": {"deep": false}}
        })
        .as_object()
        .cloned()
        .unwrap();
        item.sealed.insert("secret".into(), vec![1, 2, 3]);
        let attrs = to_attributes(&item);
        assert!(matches!(
            attrs.get("enc_secret"),
            Some(AttributeValue::B(_))
        ));
        assert_eq!(
            attrs.get("ttl"),
            Some(&AttributeValue::N("1700000000".into()))
        );
        assert_eq!(from_attributes(&attrs).unwrap(), item);
    }

    #[test]
    fn reports_malformed_items() {
        let mut attrs = key_attributes(&ItemKey::new("P", "S"));
        assert!(matches!(
            from_attributes(&attrs),
            Err(StoreError::Corrupt { .. })
        ));
        attrs.insert(VERSION.into(), AttributeValue::N("1".into()));
        attrs.insert("enc_x".into(), AttributeValue::S("not binary".into()));
        assert!(matches!(
            from_attributes(&attrs),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
