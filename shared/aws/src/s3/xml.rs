//! The XML S3 speaks for the calls this adapter makes: error bodies, `ListObjectsV2` and
//! `DeleteObjects` results read with `aws-smithy-xml` (the SDK's decoder, entities included),
//! and the `Delete` and `CreateBucketConfiguration` bodies written with its encoder.

use aws_smithy_xml::decode::{Document, ScopedDecoder, try_data};
use aws_smithy_xml::encode::XmlWriter;

const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// One page of `ListObjectsV2`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ListPage {
    pub keys: Vec<String>,
    /// The token of the next page, when the listing is truncated.
    pub next: Option<String>,
}

/// A key `DeleteObjects` could not delete, with S3's code and message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DeleteFailure {
    pub key: String,
    pub code: String,
    pub message: String,
}

/// The text of the child elements of `scope` named in `names`, in that order (`None` where
/// absent).
fn children<const N: usize>(
    scope: &mut ScopedDecoder<'_, '_>,
    names: [&str; N],
) -> Result<[Option<String>; N], String> {
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    while let Some(mut tag) = scope.next_tag() {
        if let Some(i) = names.iter().position(|n| tag.start_el().matches(n)) {
            let text = try_data(&mut tag).map_err(|e| e.to_string())?;
            found[i] = Some(text.into_owned());
        }
    }
    Ok(found)
}

fn document(body: &[u8]) -> Result<Document<'_>, String> {
    Document::try_from(body).map_err(|e| e.to_string())
}

/// S3's `<Error><Code>…</Code><Message>…</Message></Error>`, when `body` is one with a code.
pub(crate) fn error_body(body: &[u8]) -> Option<(String, String)> {
    let mut doc = document(body).ok()?;
    let mut root = doc.root_element().ok()?;
    if !root.start_el().matches("Error") {
        return None;
    }
    let [code, message] = children(&mut root, ["Code", "Message"]).ok()?;
    Some((code?, message.unwrap_or_else(|| "no message".to_owned())))
}

/// Reads a `ListBucketResult` page.
pub(crate) fn list_page(body: &[u8]) -> Result<ListPage, String> {
    let mut doc = document(body)?;
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    if !root.start_el().matches("ListBucketResult") {
        return Err("not a ListBucketResult".to_owned());
    }
    let mut page = ListPage::default();
    let mut truncated = false;
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().matches("Contents") {
            let [key] = children(&mut tag, ["Key"])?;
            page.keys
                .push(key.ok_or_else(|| "an object without a Key".to_owned())?);
        } else if tag.start_el().matches("IsTruncated") {
            truncated = try_data(&mut tag).map_err(|e| e.to_string())?.trim() == "true";
        } else if tag.start_el().matches("NextContinuationToken") {
            page.next = Some(try_data(&mut tag).map_err(|e| e.to_string())?.into_owned());
        }
    }
    if !truncated {
        page.next = None;
    } else if page.next.is_none() {
        return Err("a truncated listing without a NextContinuationToken".to_owned());
    }
    Ok(page)
}

/// The failures of a (quiet) `DeleteResult`: quiet mode lists only the keys not deleted.
pub(crate) fn delete_failures(body: &[u8]) -> Result<Vec<DeleteFailure>, String> {
    let mut doc = document(body)?;
    let mut root = doc.root_element().map_err(|e| e.to_string())?;
    if !root.start_el().matches("DeleteResult") {
        return Err("not a DeleteResult".to_owned());
    }
    let mut failures = Vec::new();
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().matches("Error") {
            let [key, code, message] = children(&mut tag, ["Key", "Code", "Message"])?;
            failures.push(DeleteFailure {
                key: key.unwrap_or_default(),
                code: code.unwrap_or_else(|| "unknown".to_owned()),
                message: message.unwrap_or_else(|| "no message".to_owned()),
            });
        }
    }
    Ok(failures)
}

/// The body of a quiet `DeleteObjects` of `keys` (at most 1,000).
pub(crate) fn delete_body(keys: &[String]) -> String {
    let mut out = String::new();
    let mut writer = XmlWriter::new(&mut out);
    let mut delete = writer
        .start_el("Delete")
        .write_ns(S3_NAMESPACE, None)
        .finish();
    for key in keys {
        let mut object = delete.start_el("Object").finish();
        object.start_el("Key").finish().data(key);
        object.finish();
    }
    delete.start_el("Quiet").finish().data("true");
    delete.finish();
    out
}

/// The body of a `CreateBucket` outside us-east-1 (which refuses an explicit constraint).
#[cfg_attr(not(feature = "provision"), allow(dead_code))]
pub(crate) fn create_bucket_body(region: &str) -> String {
    let mut out = String::new();
    let mut writer = XmlWriter::new(&mut out);
    let mut config = writer
        .start_el("CreateBucketConfiguration")
        .write_ns(S3_NAMESPACE, None)
        .finish();
    config.start_el("LocationConstraint").finish().data(region);
    config.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_give_keys_and_the_next_token_only_when_truncated() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>a/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>a/1.eml</Key><Size>3</Size></Contents><Contents><Key>a/x&amp;y.eml</Key></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"#;
        assert_eq!(
            list_page(body).unwrap(),
            ListPage {
                keys: vec!["a/1.eml".into(), "a/x&y.eml".into()],
                next: Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".into()),
            }
        );
        let last = b"<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>";
        assert_eq!(list_page(last).unwrap(), ListPage::default());
        assert!(list_page(b"<Error><Code>X</Code></Error>").is_err());
        assert!(
            list_page(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .is_err()
        );
    }

    #[test]
    fn delete_bodies_and_results() {
        assert_eq!(
            delete_body(&["a/1.eml".into(), "a<&".into()]),
            "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>a/1.eml</Key>\
             </Object><Object><Key>a&lt;&amp;</Key></Object><Quiet>true</Quiet></Delete>"
        );
        let result = b"<DeleteResult><Error><Key>a/1.eml</Key><Code>AccessDenied</Code>\
            <Message>Access Denied</Message></Error></DeleteResult>";
        assert_eq!(
            delete_failures(result).unwrap(),
            vec![DeleteFailure {
                key: "a/1.eml".into(),
                code: "AccessDenied".into(),
                message: "Access Denied".into(),
            }]
        );
        assert_eq!(delete_failures(b"<DeleteResult/>").unwrap(), vec![]);
        assert_eq!(
            create_bucket_body("eu-west-1"),
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
        );
        assert_eq!(
            error_body(b"<Error><Code>NoSuchKey</Code></Error>"),
            Some(("NoSuchKey".into(), "no message".into()))
        );
        assert_eq!(error_body(b"not xml"), None);
    }
}
