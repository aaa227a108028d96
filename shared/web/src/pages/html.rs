//! HTML building blocks for the pages: escaping (every value goes through [`esc`]), the page
//! layout, and the security headers every page response carries.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

/// The pages' Content-Security-Policy: no inline script or style, nothing from other origins,
/// no framing, forms post only back to us.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'none'; style-src 'self'; \
img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// [`PAGE_CSP`] with more `form-action` targets: browsers apply `form-action` to the redirects
/// that follow a form post, so the connect form needs the providers' authorize origins.
pub fn csp_with_form_targets(origins: &[String]) -> String {
    let extra: String = origins
        .iter()
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
        .map(|o| format!(" {o}"))
        .collect();
    PAGE_CSP.replace("form-action 'self'", &format!("form-action 'self'{extra}"))
}

/// Escapes text for an HTML element body or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a value for a URL query or path segment.
pub fn url_part(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Formats Unix seconds for people (UTC).
pub fn when(unix: Option<i64>) -> String {
    unix.map(mailroom_core::time::to_rfc3339)
        .map(|t| t.replace('T', " ").trim_end_matches('Z').to_owned() + " UTC")
        .unwrap_or_else(|| "never".to_owned())
}

/// A hidden CSRF field for a form.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// A one-button POST form (actions such as "Sync now").
pub fn button(action: &str, label: &str, csrf: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button class=\"{}\">{}</button></form>",
        esc(action),
        csrf_field(csrf),
        esc(class),
        esc(label)
    )
}

/// A whole page. `body` is already-escaped HTML; `csrf` is `None` on the login page (no
/// navigation or logout button there).
pub fn layout(title: &str, csrf: Option<&str>, body: &str) -> String {
    let nav = match csrf {
        Some(csrf) => format!(
            "<nav><a href=\"/ui/accounts\">Accounts</a> <a href=\"/ui/settings\">Settings</a> {}</nav>",
            button("/ui/logout", "Log out", csrf, "link")
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Mailroom</title><link rel=\"stylesheet\" href=\"/ui/style.css\"></head>\
         <body><header><strong>Mailroom</strong>{nav}</header><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title),
    )
}

/// A page response.
pub fn page(status: StatusCode, title: &str, csrf: Option<&str>, body: &str) -> Response {
    (status, Html(layout(title, csrf, body))).into_response()
}

/// A notice box; `kind` is `ok` or `error`.
pub fn notice(kind: &str, text: &str) -> String {
    format!("<p class=\"notice {}\">{}</p>", esc(kind), esc(text))
}

/// Adds the pages' security headers to responses that did not set their own.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
