//! Human explanations of provider errors: the OAuth `error` decides what we do, Microsoft's
//! `AADSTS` codes only explain it to the user or admin.

/// Known Microsoft error codes and what they mean for Mailroom.
const KNOWN: &[(u64, &str)] = &[
    (
        50020,
        "the account is not in the tenant the app allows (check the provider's tenant)",
    ),
    (
        50076,
        "multi-factor authentication is required: connect the mailbox again",
    ),
    (
        50079,
        "multi-factor authentication enrolment is required: connect the mailbox again",
    ),
    (
        50173,
        "the grant was revoked (password change or reset, or sessions revoked): connect the mailbox again",
    ),
    (53003, "blocked by a Conditional Access policy"),
    (
        65001,
        "the user or an administrator has not consented to the app",
    ),
    (
        70000,
        "the grant is invalid or was already used: connect the mailbox again",
    ),
    (70008, "the grant has expired: connect the mailbox again"),
    (
        700082,
        "the refresh token expired after 90 days of inactivity: connect the mailbox again",
    ),
    (
        700016,
        "the application was not found in the directory (wrong client id or tenant)",
    ),
    (
        7000215,
        "the client secret is wrong: update it in the provider settings",
    ),
    (
        7000222,
        "the client secret has expired: create a new one and update the provider settings",
    ),
    (
        28000,
        "the scopes name more than one resource: keep only Outlook resource scopes",
    ),
];

/// The first line of a provider's error description, bounded, without control characters
/// (Microsoft appends trace and correlation ids on further lines).
pub fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    let clean: String = line.chars().filter(|c| !c.is_control()).take(300).collect();
    clean
}

/// `error: explanation (provider's words)`.
pub fn explain(error: &str, description: Option<&str>, codes: Option<&[u64]>) -> String {
    let mut out = error
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect::<String>();
    let known = codes
        .unwrap_or_default()
        .iter()
        .find_map(|c| KNOWN.iter().find(|(k, _)| k == c))
        .map(|(code, text)| format!("AADSTS{code}: {text}"));
    if let Some(known) = known {
        out.push_str(": ");
        out.push_str(&known);
    }
    if let Some(d) = description.map(first_line).filter(|d| !d.is_empty()) {
        out.push_str(" (");
        out.push_str(&d);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_known_codes_and_keeps_the_first_line() {
        let text = explain(
            "invalid_grant",
            Some("AADSTS50173: The provided grant has expired.\r\nTrace ID: abc"),
            Some(&[50173]),
        );
        assert!(text.starts_with("invalid_grant: AADSTS50173: the grant was revoked"));
        assert!(text.ends_with("(AADSTS50173: The provided grant has expired.)"));
        assert!(!text.contains("Trace ID"));
    }

    #[test]
    fn unknown_codes_keep_the_providers_words() {
        assert_eq!(
            explain("invalid_grant", Some("Bad Request"), None),
            "invalid_grant (Bad Request)"
        );
    }
}
