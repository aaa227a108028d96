//! Reading the id_token of a token-endpoint answer. It came straight from the provider over TLS
//! on the back channel, so OpenID Connect Core 3.1.3.7 allows TLS server validation in place of
//! the signature check; the audience is still checked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// What we read from an id_token.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub tid: Option<String>,
    pub oid: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

/// Why an id_token could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the id_token is not a JWT")]
    Malformed,
    #[error("the id_token was issued to another client")]
    WrongAudience,
    #[error("the id_token names no mailbox address (neither email nor preferred_username)")]
    NoAddress,
    #[error("the id_token carries no stable identity (sub or oid)")]
    NoIdentity,
}

impl Claims {
    /// Decodes the claims (no signature check, see the module note) and checks the audience.
    pub fn read(jwt: &str, client_id: &str) -> Result<Self, IdTokenError> {
        let mut parts = jwt.split('.');
        let (Some(_header), Some(body), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdTokenError::Malformed);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(body.trim_end_matches('='))
            .map_err(|_| IdTokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed)?;
        let audience_ok = match &claims.aud {
            Some(serde_json::Value::String(a)) => a == client_id,
            Some(serde_json::Value::Array(list)) => {
                list.iter().any(|a| a.as_str() == Some(client_id))
            }
            _ => false,
        };
        if !audience_ok {
            return Err(IdTokenError::WrongAudience);
        }
        Ok(claims)
    }

    /// The mailbox address: `email`, else `preferred_username` when it looks like an address.
    pub fn address(&self) -> Result<String, IdTokenError> {
        let usable = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| {
                    v.contains('@') && !v.chars().any(|c| c.is_whitespace() || c.is_control())
                })
                .map(str::to_owned)
        };
        usable(&self.email)
            .or_else(|| usable(&self.preferred_username))
            .ok_or(IdTokenError::NoAddress)
    }

    /// The stable identity: `tid` + `oid` (Microsoft), else `iss` + `sub`.
    pub fn identity(&self) -> Result<String, IdTokenError> {
        match (&self.tid, &self.oid, &self.iss, &self.sub) {
            (Some(tid), Some(oid), _, _) => Ok(format!("tid:{tid}/oid:{oid}")),
            (_, _, Some(iss), Some(sub)) => Ok(format!("iss:{iss}/sub:{sub}")),
            _ => Err(IdTokenError::NoIdentity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b(br#"{"alg":"RS256"}"#),
            b(claims.to_string().as_bytes()),
            b(b"sig")
        )
    }

    #[test]
    fn prefers_email_and_microsoft_identity() {
        let c = Claims::read(
            &jwt(
                serde_json::json!({"aud": "app", "iss": "i", "sub": "s", "tid": "t", "oid": "o",
                "email": "a@b.test", "preferred_username": "upn@b.test"}),
            ),
            "app",
        )
        .expect("claims");
        assert_eq!(c.address().as_deref(), Ok("a@b.test"));
        assert_eq!(c.identity().as_deref(), Ok("tid:t/oid:o"));
    }

    #[test]
    fn falls_back_to_preferred_username_and_iss_sub() {
        let c = Claims::read(
            &jwt(serde_json::json!({"aud": ["x", "app"], "iss": "i", "sub": "s", "preferred_username": "u@b.test"})),
            "app",
        )
        .expect("claims");
        assert_eq!(c.address().as_deref(), Ok("u@b.test"));
        assert_eq!(c.identity().as_deref(), Ok("iss:i/sub:s"));
    }

    #[test]
    fn rejects_other_audiences_and_garbage() {
        let token = jwt(serde_json::json!({"aud": "other", "sub": "s"}));
        assert_eq!(
            Claims::read(&token, "app").err(),
            Some(IdTokenError::WrongAudience)
        );
        assert_eq!(
            Claims::read("nope", "app").err(),
            Some(IdTokenError::Malformed)
        );
    }
}
