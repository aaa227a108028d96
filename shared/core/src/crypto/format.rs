//! The sealed-field byte format and its associated data, for both versions.
//!
//! Both versions: `version | u16 BE wrapped-key length | wrapped key | 12-byte nonce |
//! ciphertext | 16-byte tag`.
//! - Version 2 (written today): the wrapped key is a shared data key
//!   ([`KeyContext::shared`]); the associated data is `mailroom/v2` followed by the record kind,
//!   the record id and the field name, each as a u32 BE length and its bytes. The associated data
//!   is now the only thing binding a ciphertext to its record, so it is length-prefixed: no two
//!   (kind, id, field) triples encode alike, whatever characters an id holds.
//! - Version 1 (read only): the wrapped key is bound to the record at the key service
//!   ([`KeyContext::new`]); the associated data is `mailroom/v1|<kind>|<id>|<field>`.

use aws_lc_rs::aead::NONCE_LEN;

use crate::ports::KeyContext;

pub(crate) const TAG_LEN: usize = 16;

/// A format version this code can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// Per-record data keys (sealed before shared keys existed).
    V1 = 1,
    /// Shared data keys.
    V2 = 2,
}

/// The parts of a sealed value, borrowed from it.
pub(crate) struct Parsed<'a> {
    pub(crate) version: Version,
    pub(crate) wrapped: &'a [u8],
    pub(crate) nonce: &'a [u8],
    /// Ciphertext followed by the tag.
    pub(crate) body: &'a [u8],
}

/// Splits a sealed value into its parts; `None` when it is not a well-formed value of a known
/// version.
pub(crate) fn parse(sealed: &[u8]) -> Option<Parsed<'_>> {
    let (&version, rest) = sealed.split_first()?;
    let version = match version {
        1 => Version::V1,
        2 => Version::V2,
        _ => return None,
    };
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let wrapped_len = u16::from_be_bytes(*len) as usize;
    if wrapped_len == 0 || rest.len() < wrapped_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let (wrapped, rest) = rest.split_at(wrapped_len);
    let (nonce, body) = rest.split_at(NONCE_LEN);
    Some(Parsed {
        version,
        wrapped,
        nonce,
        body,
    })
}

/// The header of a version-2 value: version, wrapped-key length, wrapped key. `None` when the
/// wrapped key does not fit the length field.
pub(crate) fn header_v2(wrapped: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(wrapped.len()).ok()?;
    let mut out = Vec::with_capacity(3 + wrapped.len());
    out.push(Version::V2 as u8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wrapped);
    Some(out)
}

/// The associated data binding a value of `version` to field `field` of the record `kind`/`id`.
pub(crate) fn aad(version: Version, kind: &str, id: &str, field: &str) -> Vec<u8> {
    match version {
        Version::V1 => format!("mailroom/v1|{kind}|{id}|{field}").into_bytes(),
        Version::V2 => {
            let mut out = b"mailroom/v2".to_vec();
            for part in [kind, id, field] {
                // Record ids and field names are far below 4 GiB; saturating keeps this total.
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(part.as_bytes());
            }
            out
        }
    }
}

/// The key-service context a value's wrapped key was made under.
pub(crate) fn key_context(version: Version, kind: &str, id: &str) -> KeyContext {
    match version {
        Version::V1 => KeyContext::new(kind, id),
        Version::V2 => KeyContext::shared(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_associated_data_is_unambiguous() {
        // With `|` separators these two would be the same bytes.
        let a = aad(Version::V2, "account", "a|b", "c");
        let b = aad(Version::V2, "account", "a", "b|c");
        assert_ne!(a, b);
        assert_ne!(
            aad(Version::V1, "account", "a", "f"),
            aad(Version::V2, "account", "a", "f")
        );
    }

    #[test]
    fn parses_only_known_well_formed_values() {
        let mut value = header_v2(&[7; 5]).unwrap();
        value.extend_from_slice(&[0; NONCE_LEN + TAG_LEN + 3]);
        let parsed = parse(&value).unwrap();
        assert_eq!(parsed.version, Version::V2);
        assert_eq!(parsed.wrapped, &[7; 5]);
        assert_eq!(parsed.body.len(), TAG_LEN + 3);
        let mut v3 = value.clone();
        v3[0] = 3;
        assert!(parse(&v3).is_none());
        assert!(parse(&value[..3 + 5 + NONCE_LEN + TAG_LEN - 1]).is_none());
        assert!(parse(&[2, 0, 0]).is_none());
        assert!(parse(&[]).is_none());
        assert!(header_v2(&vec![0; 70_000]).is_none());
    }
}
