//! An independent SigV4 check for recorded S3 requests (written from AWS's SigV4 description,
//! with aws-lc-rs' HMAC and SHA-256; it shares no code with the `aws-sigv4` crate): rebuilds the
//! canonical request from what arrived on the wire and compares the signature.

use aws_lc_rs::{digest, hmac};

use super::recorder::Recorded;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// `Ok` when `request` carries a valid S3 SigV4 signature by `secret` for `region`, and its
/// `x-amz-content-sha256` is the SHA-256 of the body that arrived; else what is wrong.
pub fn verify(request: &Recorded, secret: &str, region: &str) -> Result<(), String> {
    let authorization = request
        .header("authorization")
        .ok_or("no authorization header")?;
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|part| part.strip_prefix(name))
            .ok_or(format!("no {name} in authorization"))
    };
    let credential = field("Credential=")?;
    let signed_headers = field("SignedHeaders=")?;
    let signature = field("Signature=")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [_, date, scope_region, service, terminator] = scope[..] else {
        return Err(format!("bad credential scope {credential}"));
    };
    if scope_region != region || service != "s3" || terminator != "aws4_request" {
        return Err(format!("unexpected scope {credential}"));
    }
    let amz_date = request.header("x-amz-date").ok_or("no x-amz-date")?;
    let payload = request
        .header("x-amz-content-sha256")
        .ok_or("no x-amz-content-sha256")?;
    if payload != sha256_hex(&request.body) {
        return Err("x-amz-content-sha256 is not the SHA-256 of the body".into());
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.contains('=') {
                p.to_owned()
            } else {
                format!("{p}=")
            }
        })
        .collect();
    params.sort();
    let mut canonical = format!("{}\n{path}\n{}\n", request.method, params.join("&"));
    for name in signed_headers.split(';') {
        let value = request
            .header(name)
            .ok_or(format!("signed header {name} not sent"))?;
        canonical.push_str(&format!("{name}:{}\n", value.trim()));
    }
    for required in ["host", "x-amz-content-sha256", "x-amz-date"] {
        if !signed_headers.split(';').any(|h| h == required) {
            return Err(format!("{required} is not signed"));
        }
    }
    canonical.push_str(&format!("\n{signed_headers}\n{payload}"));
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/s3/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = mac(
        &mac(
            &mac(&mac(format!("AWS4{secret}").as_bytes(), date), region),
            "s3",
        ),
        "aws4_request",
    );
    let expected = hex(&mac(&key, &string_to_sign));
    if expected == signature {
        Ok(())
    } else {
        Err(format!(
            "signature mismatch; canonical request:\n{canonical}"
        ))
    }
}
