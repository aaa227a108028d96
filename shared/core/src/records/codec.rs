//! Reading typed values out of an item's attributes, with errors that name the item and field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ports::{Item, StoreError};

pub(crate) fn corrupt(item: &Item, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        pk: item.key.pk.clone(),
        sk: item.key.sk.clone(),
        reason: reason.into(),
    }
}

/// Reads attribute `name` as `T`; a missing attribute reads as JSON `null`.
pub(crate) fn field<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let value = item.attributes.get(name).cloned().unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| corrupt(item, format!("attribute {name}: {e}")))
}

pub(crate) fn sealed<'a>(item: &'a Item, name: &str) -> Result<&'a [u8], StoreError> {
    item.sealed
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| corrupt(item, format!("sealed field {name} is missing")))
}

/// Builds an attribute map from `(name, value)` pairs, leaving out nulls so they stay absent.
pub(crate) fn attributes<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}
