//! The stored form of an item: one format byte, then JSON of a private struct (sealed bytes as
//! base64), so the file stays readable by later versions that add fields.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use mailroom_core::ports::{IndexKey, Item, ItemKey, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const FORMAT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "v")]
    version: u64,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    index: Option<(String, String)>,
    #[serde(rename = "a", default)]
    attributes: Map<String, Value>,
    #[serde(rename = "s", default)]
    sealed: BTreeMap<String, String>,
}

/// [`Stored`]'s serialized form, borrowing the item: encoding a message's metadata cloned its
/// whole attribute map first (allocations were a visible share of a first sync's CPU). The
/// field names and order are [`Stored`]'s, so the bytes are the same.
#[derive(Serialize)]
struct StoredRef<'a> {
    #[serde(rename = "v")]
    version: u64,
    #[serde(rename = "x", skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(rename = "i", skip_serializing_if = "Option::is_none")]
    index: Option<(&'a str, &'a str)>,
    #[serde(rename = "a")]
    attributes: &'a Map<String, Value>,
    #[serde(rename = "s")]
    sealed: BTreeMap<&'a str, String>,
}

/// Serializes everything but the key (the table key holds it).
pub(crate) fn encode(item: &Item) -> Result<Vec<u8>, StoreError> {
    let stored = StoredRef {
        version: item.version,
        expires_at: item.expires_at,
        index: item.index.as_ref().map(|i| (i.pk.as_str(), i.sk.as_str())),
        attributes: &item.attributes,
        sealed: item
            .sealed
            .iter()
            .map(|(name, bytes)| (name.as_str(), STANDARD_NO_PAD.encode(bytes)))
            .collect(),
    };
    let mut out = Vec::with_capacity(512);
    out.push(FORMAT);
    serde_json::to_writer(&mut out, &stored).map_err(|e| {
        StoreError::Invalid(format!(
            "item {}/{} cannot be serialized: {e}",
            item.key.pk, item.key.sk
        ))
    })?;
    Ok(out)
}

/// Rebuilds an item from its table key and stored bytes.
pub(crate) fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        reason,
    };
    let body = match bytes.split_first() {
        Some((&FORMAT, body)) => body,
        Some((other, _)) => return Err(corrupt(format!("unknown format {other}"))),
        None => return Err(corrupt("empty value".into())),
    };
    let stored: Stored = serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
    let mut sealed = BTreeMap::new();
    for (name, text) in stored.sealed {
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .map_err(|e| corrupt(format!("sealed field {name}: {e}")))?;
        sealed.insert(name, bytes);
    }
    Ok(Item {
        key: ItemKey::new(pk, sk),
        version: stored.version,
        expires_at: stored.expires_at,
        index: stored.index.map(|(pk, sk)| IndexKey { pk, sk }),
        attributes: stored.attributes,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_part() {
        let mut item = Item::new(ItemKey::new("P", "S"));
        item.version = 7;
        item.expires_at = Some(42);
        item.index = Some(IndexKey {
            pk: "DUE".into(),
            sk: "1#a".into(),
        });
        item.attributes
            .insert("n".into(), serde_json::json!({"x": [1, 2.5, null]}));
        item.sealed.insert("f".into(), vec![0, 1, 255]);
        let bytes = encode(&item).unwrap();
        assert_eq!(decode("P", "S", &bytes).unwrap(), item);
    }

    #[test]
    fn encodes_the_same_bytes_as_the_owned_form() {
        let mut item = Item::new(ItemKey::new("P", "S"));
        item.version = 3;
        item.attributes
            .insert("subject".into(), serde_json::json!("caf\u{e9} \"quoted\""));
        item.sealed.insert("b".into(), vec![1, 2]);
        item.sealed.insert("a".into(), vec![3]);
        let owned = Stored {
            version: item.version,
            expires_at: None,
            index: None,
            attributes: item.attributes.clone(),
            sealed: item
                .sealed
                .iter()
                .map(|(k, v)| (k.clone(), STANDARD_NO_PAD.encode(v)))
                .collect(),
        };
        let mut expected = vec![FORMAT];
        serde_json::to_writer(&mut expected, &owned).unwrap();
        assert_eq!(encode(&item).unwrap(), expected);
    }

    #[test]
    fn refuses_unknown_formats() {
        assert!(matches!(
            decode("P", "S", &[9, b'{', b'}']),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
