//! Where S3 requests go: the endpoint (an override such as moto, or AWS's regional one), the
//! addressing style, request URLs with their path and query encoded as SigV4 expects, and which
//! roots the HTTPS client trusts.

use aws_config::SdkConfig;

/// The endpoint requests are sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// AWS itself: virtual-hosted `https://{bucket}.s3.{region}.amazonaws.com` (`.com.cn` in
    /// China), path-style when the bucket is no valid host name or path-style is forced.
    Aws { force_path_style: bool },
    /// An override (`AWS_ENDPOINT_URL_S3`, the configuration's endpoint, `AWS_ENDPOINT_URL`):
    /// always path-style, `{endpoint}/{bucket}/{key}`; no trailing `/`.
    Custom(String),
}

/// Which roots the HTTPS client trusts: Amazon's five compiled in against AWS (as the SDK
/// clients, see `crate::amazon_https_client`), the system's (or `SSL_CERT_FILE`'s) with an
/// override, which may sit behind another CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    Amazon,
    System,
}

/// A variable's value, when set and not blank.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Endpoint {
    /// Resolves the endpoint as the SDK does: the service's own variable first, then the
    /// configuration's endpoint (which the loaders fill from `AWS_ENDPOINT_URL`), then
    /// `AWS_ENDPOINT_URL`; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` ignores the variables.
    pub(crate) fn resolve(config: &SdkConfig, force_path_style: bool) -> Self {
        let ignore_env = var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let from_env = |name: &str| if ignore_env { None } else { var(name) };
        let custom = from_env("AWS_ENDPOINT_URL_S3")
            .or_else(|| config.endpoint_url().map(str::to_owned))
            .or_else(|| from_env("AWS_ENDPOINT_URL"));
        match custom {
            Some(url) => Self::Custom(url.trim().trim_end_matches('/').to_owned()),
            None => Self::Aws { force_path_style },
        }
    }

    pub(crate) fn trust(&self) -> Trust {
        match self {
            Self::Aws { .. } => Trust::Amazon,
            Self::Custom(_) => Trust::System,
        }
    }

    /// The URL of `key` in `bucket` (the bucket itself when `key` is `None`), with `query`
    /// (already in the order to send; names and values are encoded here).
    pub(crate) fn url(
        &self,
        region: &str,
        bucket: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
    ) -> String {
        // Path-style: `/{bucket}` or `/{bucket}/{key}`; virtual-hosted: `/` or `/{key}`.
        let mut url = match self {
            Self::Custom(base) => format!("{base}/{}", encode(bucket, false)),
            Self::Aws { force_path_style } => {
                let domain = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                if *force_path_style || !virtual_hostable(bucket) {
                    format!("https://s3.{region}.{domain}/{}", encode(bucket, false))
                } else {
                    format!("https://{bucket}.s3.{region}.{domain}/")
                }
            }
        };
        if let Some(key) = key {
            if !url.ends_with('/') {
                url.push('/');
            }
            url.push_str(&encode(key, true));
        }
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(name, false));
            if !value.is_empty() {
                url.push('=');
                url.push_str(&encode(value, false));
            }
        }
        url
    }
}

/// Whether `bucket` can be a host name label under TLS: DNS-compatible and without dots (a
/// dotted name would not match the `*.s3.{region}.amazonaws.com` certificate).
fn virtual_hostable(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` in a key's path),
/// the encoding S3's SigV4 canonical request expects (single encoding).
pub(crate) fn encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(force_path_style: bool) -> Endpoint {
        Endpoint::Aws { force_path_style }
    }

    #[test]
    fn aws_urls_are_virtual_hosted_unless_the_bucket_cannot_be_a_host() {
        assert_eq!(
            aws(false).url("eu-west-1", "mail-raw", Some("a/INBOX/1.eml"), &[]),
            "https://mail-raw.s3.eu-west-1.amazonaws.com/a/INBOX/1.eml"
        );
        assert_eq!(
            aws(false).url("eu-west-1", "mail.raw", Some("k"), &[]),
            "https://s3.eu-west-1.amazonaws.com/mail.raw/k"
        );
        assert_eq!(
            aws(true).url("us-east-1", "mailraw", None, &[]),
            "https://s3.us-east-1.amazonaws.com/mailraw"
        );
        assert_eq!(
            aws(false).url("cn-north-1", "mailraw", None, &[]),
            "https://mailraw.s3.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn custom_endpoints_are_path_style_and_queries_are_encoded() {
        let moto = Endpoint::Custom("http://127.0.0.1:5000".into());
        assert_eq!(
            moto.url(
                "us-east-1",
                "b",
                None,
                &[("list-type", "2"), ("prefix", "a/b c+")]
            ),
            "http://127.0.0.1:5000/b?list-type=2&prefix=a%2Fb%20c%2B"
        );
        assert_eq!(
            moto.url("us-east-1", "b", Some("x=1/y~"), &[("delete", "")]),
            "http://127.0.0.1:5000/b/x%3D1/y~?delete"
        );
        assert_eq!(moto.trust(), Trust::System);
        assert_eq!(aws(false).trust(), Trust::Amazon);
    }
}
