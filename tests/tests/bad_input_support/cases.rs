//! The bad-input table: generic cases for every route (authentication, malformed and mistyped
//! bodies, path tricks) and the cases particular to each endpoint.

use base64::Engine as _;
use mailroom_web::{Access, specs};
use serde_json::json;

use super::{Auth, Case, Expect, Harness};

const HEALTH: &str = "/v1/health";
const PROVIDERS: &str = "/v1/providers";
const PROVIDER: &str = "/v1/providers/{id}";
const START: &str = "/v1/oauth/{provider_id}/start";
const CALLBACK: &str = "/v1/oauth/{provider_id}/callback";
const ACCOUNTS: &str = "/v1/accounts";
const ACCOUNT: &str = "/v1/accounts/{id}";
const SEND: &str = "/v1/accounts/{id}/send";
const SENDS: &str = "/v1/accounts/{id}/sends/{key}";
const VERIFY: &str = "/v1/accounts/{id}/verify";
const MESSAGES: &str = "/v1/accounts/{id}/messages";
const MESSAGE: &str = "/v1/accounts/{id}/messages/{message_id}";
const RAW: &str = "/v1/accounts/{id}/messages/{message_id}/raw";
const SYNC: &str = "/v1/accounts/{id}/sync";

fn p(code: u16, kind: &'static str) -> Expect {
    Expect::Problem(code, kind)
}
fn bad() -> Expect {
    p(400, "invalid-request")
}
fn field() -> Expect {
    p(422, "invalid-field")
}
fn missing() -> Expect {
    p(404, "not-found")
}

/// A concrete path for a route template, with every parameter set to `value`.
fn fill(template: &str, value: &str, h: &Harness) -> String {
    template
        .replace("{provider_id}", "test")
        .replace("{message_id}", &h.message_id)
        .replace("{key}", "sent-key")
        .replace(
            "{id}",
            if template.contains("/accounts/") {
                &h.account_id
            } else {
                "test"
            },
        )
        .replace("\u{0}", value)
}

/// Authentication cases for every route that needs the API key.
fn auth_cases(h: &Harness, out: &mut Vec<Case>) {
    for spec in specs().into_iter().filter(|s| s.access == Access::ApiKey) {
        let path = fill(spec.path, "", h);
        for (auth, name) in [
            (Auth::None, "no API key"),
            (Auth::Wrong, "wrong API key"),
            (Auth::Basic, "API key in Basic auth"),
        ] {
            out.push(
                Case::new(spec.method, spec.path, path.clone(), p(401, "unauthorized"))
                    .auth(auth)
                    .json(json!({}))
                    .named(format!("{} {}: {name}", spec.method, spec.path)),
            );
        }
    }
}

/// Ids that must never reach the store: traversal, encoded slashes, NUL, too long, non-ASCII.
const BAD_IDS: &[&str] = &[
    "..%2F..%2Fetc%2Fpasswd",
    "%2E%2E%2Fx",
    "a%2Fb",
    "a%5Cb",
    "x%00y",
    "%C3%A9t%C3%A9",
    "a%20b",
    "a.b",
];

fn id_cases(h: &Harness, out: &mut Vec<Case>) {
    let long = "a".repeat(65);
    let rows: [(&str, &'static str, Option<serde_json::Value>); 11] = [
        ("GET", PROVIDER, None),
        (
            "PUT",
            PROVIDER,
            Some(json!({"kind": "google", "client_id": "c", "client_secret": "s"})),
        ),
        ("DELETE", PROVIDER, None),
        ("POST", START, Some(json!({"owner": "o"}))),
        ("GET", ACCOUNT, None),
        ("DELETE", ACCOUNT, None),
        (
            "POST",
            SEND,
            Some(json!({"to": ["b@example.test"], "text": "x"})),
        ),
        ("GET", SENDS, None),
        ("POST", VERIFY, None),
        ("GET", MESSAGES, None),
        ("POST", SYNC, None),
    ];
    for (method, route, body) in rows {
        for id in BAD_IDS.iter().copied().chain([long.as_str()]) {
            let path = match route {
                PROVIDER => format!("/v1/providers/{id}"),
                START => format!("/v1/oauth/{id}/start"),
                SENDS => format!("/v1/accounts/{}/sends/{id}", h.account_id),
                _ => route.replace("{id}", id),
            };
            let mut case = Case::new(method, route, path, bad())
                .named(format!("{method} {route} with id {id}"))
                .header("idempotency-key", "k1");
            if let Some(b) = &body {
                case = case.json(b.clone());
            }
            out.push(case);
        }
    }
    // Message ids are opaque: anything that is not one of ours is simply not found.
    for id in ["..%2F..%2Fetc%2Fpasswd", "not-base64!", "YWJj", &long] {
        for route in [MESSAGE, RAW] {
            let path = fill(route, "", h).replace(&h.message_id, id);
            out.push(
                Case::new("GET", route, path, missing()).named(format!("GET {route} with {id}")),
            );
        }
    }
    for route in [MESSAGE, RAW] {
        let path = route
            .replace("{id}", "a%2Fb")
            .replace("{message_id}", &h.message_id);
        out.push(Case::new("GET", route, path, bad()).named(format!("GET {route} bad account id")));
    }
}

/// Unknown but well-formed ids.
fn unknown_cases(h: &Harness, out: &mut Vec<Case>) {
    let _ = h;
    for (method, route, body) in [
        ("GET", PROVIDER, None),
        ("DELETE", PROVIDER, None),
        ("POST", START, Some(json!({"owner": "o"}))),
        ("GET", ACCOUNT, None),
        ("DELETE", ACCOUNT, None),
        (
            "POST",
            SEND,
            Some(json!({"to": ["b@example.test"], "text": "x"})),
        ),
        ("GET", SENDS, None),
        ("POST", VERIFY, None),
        ("GET", MESSAGES, None),
        ("GET", MESSAGE, None),
        ("GET", RAW, None),
        ("POST", SYNC, None),
    ] {
        let path = route
            .replace("{provider_id}", "nope")
            .replace("{id}", "nope")
            .replace("{key}", "nope")
            .replace("{message_id}", &h.message_id);
        let mut case = Case::new(method, route, path, missing())
            .named(format!("{method} {route} unknown"))
            .header("idempotency-key", "k2");
        if let Some(b) = body {
            case = case.json(b);
        }
        out.push(case);
    }
    // A known account but a send key never used.
    let path = SENDS
        .replace("{id}", &h.account_id)
        .replace("{key}", "never-used");
    out.push(Case::new("GET", SENDS, path, missing()).named("GET sends: unknown key"));
}

/// Malformed, mistyped, oversized and non-JSON bodies for every JSON endpoint.
fn body_cases(h: &Harness, out: &mut Vec<Case>) {
    let huge = vec![b' '; 11 * 1024 * 1024];
    let nested = "[".repeat(100_000);
    for (method, route, wrong_type) in [
        ("PUT", PROVIDER, json!({"kind": 5, "client_id": ["c"]})),
        ("POST", START, json!({"owner": {"name": "o"}})),
        ("POST", SEND, json!({"to": "b@example.test", "subject": 7})),
    ] {
        let path = fill(route, "", h);
        let row = |expect: Expect, name: &str| {
            Case::new(method, route, path.clone(), expect)
                .named(format!("{method} {route}: {name}"))
                .header("idempotency-key", "body-case")
        };
        out.push(row(bad(), "truncated JSON").raw("application/json", "{"));
        out.push(row(bad(), "empty body").raw("application/json", ""));
        out.push(row(bad(), "not UTF-8").raw("application/json", vec![0xff, 0xfe, 0x00]));
        // Typed bodies fail at the first wrong type; the send body's untagged addresses buffer
        // the value and stop at serde_json's recursion limit. Neither exhausts the stack.
        let deep = if route == SEND { bad() } else { field() };
        out.push(row(deep, "deeply nested").raw("application/json", nested.clone()));
        out.push(row(field(), "an array, not an object").json(json!([1, 2])));
        out.push(row(field(), "wrong types").json(wrong_type));
        out.push(
            row(field(), "unknown field")
                .json(json!({"owner": "o", "kind": "google", "to": [], "surprise": true})),
        );
        out.push(row(p(415, "unsupported-media-type"), "not JSON").raw("text/plain", "owner=o"));
        out.push(
            row(p(413, "payload-too-large"), "over 10 MB").raw("application/json", huge.clone()),
        );
    }
}

fn provider_cases(out: &mut Vec<Case>) {
    let base = json!({"kind": "oauth2", "client_id": "c", "client_secret": "s",
        "authorize_url": "https://idp.example/authorize", "token_url": "https://idp.example/token",
        "scopes": ["openid"], "imap": {"host": "imap.example", "port": 993, "tls": "implicit"},
        "smtp": {"host": "smtp.example", "port": 587, "tls": "starttls"}});
    let with = |patch: serde_json::Value| {
        let mut b = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let rows = [
        (
            "CR/LF in client_id",
            with(json!({"client_id": "c\r\nX-Evil: 1"})),
        ),
        ("NUL in client_id", with(json!({"client_id": "c\u{0}d"}))),
        (
            "javascript token_url",
            with(json!({"token_url": "javascript:alert(1)"})),
        ),
        (
            "plain http to a remote host",
            with(json!({"token_url": "http://idp.example/token"})),
        ),
        (
            "credentials in a URL",
            with(json!({"authorize_url": "https://u:p@idp.example/a"})),
        ),
        (
            "port out of range",
            with(json!({"imap": {"host": "imap.example", "port": 70000, "tls": "implicit"}})),
        ),
        (
            "unknown TLS mode",
            with(json!({"smtp": {"host": "smtp.example", "port": 25, "tls": "none"}})),
        ),
        (
            "host with a slash",
            with(json!({"imap": {"host": "imap.example/x", "port": 993, "tls": "implicit"}})),
        ),
        (
            "enormous secret",
            with(json!({"client_secret": "s".repeat(5000)})),
        ),
        ("empty secret", with(json!({"client_secret": "  "}))),
        ("no scopes", with(json!({"scopes": []}))),
        ("unknown kind", with(json!({"kind": "yahoo"}))),
        (
            "tenant for google",
            json!({"kind": "google", "client_id": "c", "client_secret": "s", "tenant": "common"}),
        ),
        (
            "unknown endpoint field",
            with(json!({"imap": {"host": "h", "port": 1, "tls": "implicit", "user": "x"}})),
        ),
    ];
    for (name, body) in rows {
        out.push(
            Case::new("PUT", PROVIDER, "/v1/providers/new-one", field())
                .named(format!("PUT provider: {name}"))
                .json(body),
        );
    }
    // Updating the existing provider with a bad value changes nothing either.
    out.push(
        Case::new("PUT", PROVIDER, "/v1/providers/test", field())
            .named("PUT provider: bad update of an existing one")
            .json(json!({"kind": "oauth2", "client_id": "c", "token_url": "ftp://x"})),
    );
}

fn start_cases(out: &mut Vec<Case>) {
    let path = "/v1/oauth/test/start";
    let rows = [
        (
            "return_to elsewhere",
            json!({"owner": "o", "return_to": "https://evil.test/x"}),
        ),
        (
            "return_to look-alike host",
            json!({"owner": "o", "return_to": "http://app.test.evil.test/x"}),
        ),
        (
            "return_to with userinfo",
            json!({"owner": "o", "return_to": "http://app.test@evil.test/x"}),
        ),
        (
            "return_to scheme-relative",
            json!({"owner": "o", "return_to": "//evil.test/x"}),
        ),
        (
            "return_to javascript",
            json!({"owner": "o", "return_to": "javascript:alert(1)"}),
        ),
        (
            "return_to other port",
            json!({"owner": "o", "return_to": "http://app.test:8080/x"}),
        ),
        (
            "return_to other scheme",
            json!({"owner": "o", "return_to": "https://app.test/x"}),
        ),
        ("no owner", json!({"login_hint": "a@example.test"})),
        ("empty owner", json!({"owner": "  "})),
        ("owner too long", json!({"owner": "o".repeat(257)})),
        ("NUL in owner", json!({"owner": "o\u{0}p"})),
        (
            "CR/LF in login_hint",
            json!({"owner": "o", "login_hint": "a@x.test\r\nX: y"}),
        ),
        (
            "return_to too long",
            json!({"owner": "o", "return_to": format!("http://app.test/{}", "a".repeat(2100))}),
        ),
    ];
    for (name, body) in rows {
        out.push(
            Case::new("POST", START, path, bad())
                .named(format!("start: {name}"))
                .json(body),
        );
    }
}

fn callback_cases(h: &Harness, out: &mut Vec<Case>) {
    let cb = |provider: &str, query: &str| format!("/v1/oauth/{provider}/callback?{query}");
    let page = |name: &str, path: String| {
        Case::new("GET", CALLBACK, path, Expect::Page(400))
            .auth(Auth::None)
            .named(format!("callback: {name}"))
    };
    out.push(page("no state", cb("test", "code=abc")));
    out.push(page("empty state", cb("test", "code=abc&state=")));
    out.push(page(
        "forged state",
        cb("test", "code=abc&state=forged-state-value"),
    ));
    out.push(page(
        "state too long",
        cb("test", &format!("code=abc&state={}", "s".repeat(300))),
    ));
    out.push(page(
        "expired state",
        cb("test", "code=abc&state=expired-state"),
    ));
    out.push(page(
        "script in a forged state",
        cb("test", "state=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
    ));
    let replay = h
        .spent_callback
        .trim_start_matches(&h.app.base_url)
        .to_owned();
    out.push(page("replayed state", replay));
    out.push(
        Case::new(
            "GET",
            CALLBACK,
            "/v1/oauth/test/callback?code=a&code=b&state=x",
            bad(),
        )
        .auth(Auth::None)
        .named("callback: repeated parameters"),
    );
    let redirect = |name: &str, state: &str, path: String, error: &'static str| {
        Case::new("GET", CALLBACK, path, Expect::Redirect(error))
            .auth(Auth::None)
            .spending(state)
            .named(format!("callback: {name}"))
    };
    out.push(redirect(
        "state of another provider",
        "cross-provider-state",
        cb("other", "code=abc&state=cross-provider-state"),
        "invalid_state",
    ));
    out.push(redirect(
        "provider error",
        "denied-state",
        cb(
            "test",
            "error=access_denied&error_description=AADSTS65004%3A+declined&state=denied-state",
        ),
        "access_denied",
    ));
    out.push(redirect(
        "provider error with markup",
        "markup-state",
        cb("test", "error=%3Cscript%3E&error_description=%3Cb%3Ex%3C%2Fb%3E%0D%0ALocation%3A+evil&state=markup-state"),
        "script",
    ));
    out.push(redirect(
        "no code",
        "no-code-state",
        cb("test", "state=no-code-state"),
        "invalid_request",
    ));
}

fn query_cases(h: &Harness, out: &mut Vec<Case>) {
    let msgs = MESSAGES.replace("{id}", &h.account_id);
    let rows = [
        (ACCOUNTS, "/v1/accounts?limit=0".to_owned()),
        (ACCOUNTS, "/v1/accounts?limit=abc".to_owned()),
        (ACCOUNTS, "/v1/accounts?limit=100000".to_owned()),
        (ACCOUNTS, "/v1/accounts?owner=".to_owned()),
        (ACCOUNTS, format!("/v1/accounts?owner={}", "o".repeat(300))),
        (ACCOUNTS, "/v1/accounts?surprise=1".to_owned()),
        (ACCOUNTS, "/v1/accounts?owner=owner-1&cursor=zzz".to_owned()),
        (MESSAGES, format!("{msgs}?limit=0")),
        (MESSAGES, format!("{msgs}?limit=-1")),
        (MESSAGES, format!("{msgs}?folder=")),
        (MESSAGES, format!("{msgs}?folder={}", "f".repeat(600))),
        (MESSAGES, format!("{msgs}?cursor=garbage")),
        (
            MESSAGES,
            format!("{msgs}?folder=Sent&cursor={}", h.message_id),
        ),
        (MESSAGES, format!("{msgs}?surprise=1")),
    ];
    for (route, path) in rows {
        out.push(Case::new("GET", route, path.clone(), bad()).named(format!("GET {path}")));
    }
    out.push(
        Case::new("GET", PROVIDERS, "/v1/providers", Expect::Status(401))
            .auth(Auth::None)
            .named("GET providers: key as a query parameter is not a key")
            .header("x-api-key", h.app.api_key.clone()),
    );
    out.push(
        Case::new("GET", HEALTH, "/v1/health?x=%00", Expect::Status(200))
            .auth(Auth::Wrong)
            .named("health: public, ignores a bad key and odd queries"),
    );
}

fn send_cases(h: &Harness, out: &mut Vec<Case>) {
    let path = SEND.replace("{id}", &h.account_id);
    let b64 = base64::engine::general_purpose::STANDARD;
    let row = |name: &str, expect: Expect, body: serde_json::Value| {
        let key: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let key = if name.starts_with("reused") {
            "sent-key".to_owned()
        } else {
            format!("bad-{key}")
        };
        Case::new("POST", SEND, path.clone(), expect)
            .named(format!("send: {name}"))
            .header("idempotency-key", key)
            .json(body)
    };
    out.push(row(
        "CR/LF in subject",
        bad(),
        json!({"to": ["b@example.test"], "subject": "a\r\nBcc: e@x.test", "text": "x"}),
    ));
    out.push(row(
        "NUL in subject",
        bad(),
        json!({"to": ["b@example.test"], "subject": "a\u{0}b", "text": "x"}),
    ));
    out.push(row(
        "enormous subject",
        bad(),
        json!({"to": ["b@example.test"], "subject": "s".repeat(1_000_000), "text": "x"}),
    ));
    out.push(row(
        "CR/LF in a display name",
        bad(),
        json!({"to": [{"address": "b@example.test", "name": "B\r\nX: 1"}], "text": "x"}),
    ));
    out.push(row(
        "NUL in an address",
        bad(),
        json!({"to": ["b\u{0}@example.test"], "text": "x"}),
    ));
    out.push(row(
        "not an address",
        bad(),
        json!({"to": ["nobody"], "text": "x"}),
    ));
    out.push(row(
        "two at signs",
        bad(),
        json!({"to": ["a@b@example.test"], "text": "x"}),
    ));
    out.push(row(
        "space in an IDN domain",
        bad(),
        json!({"to": ["jos\u{e9}@ex\u{e4}m ple.test"], "text": "x"}),
    ));
    out.push(row("CR/LF in an IDN name", bad(), json!({"to": [{"address": "b@example.test", "name": "J\u{f6}rg\r\nBcc: e@x.test"}], "text": "x"})));
    out.push(row("bad base64", bad(), json!({"to": ["b@example.test"], "attachments": [{"filename": "a.pdf", "content_type": "application/pdf", "content_base64": "%%%="}]})));
    out.push(row("CR/LF in a filename", bad(), json!({"to": ["b@example.test"], "attachments": [{"filename": "a\r\n.pdf", "content_type": "application/pdf", "content_base64": "AAAA"}]})));
    out.push(row("bad content type", bad(), json!({"to": ["b@example.test"], "attachments": [{"filename": "a", "content_type": "not a type", "content_base64": "AAAA"}]})));
    out.push(row("enormous attachment", p(413, "payload-too-large"), json!({"to": ["b@example.test"], "attachments": [{"filename": "a.bin", "content_type": "application/octet-stream", "content_base64": b64.encode(vec![7u8; 4096])}]})));
    out.push(row(
        "structural header",
        bad(),
        json!({"to": ["b@example.test"], "text": "x", "headers": {"From": "ceo@example.test"}}),
    ));
    out.push(row("too many recipients", bad(), json!({"to": (0..101).map(|i| format!("r{i}@example.test")).collect::<Vec<_>>(), "text": "x"})));
    out.push(row(
        "reply to nothing",
        p(422, "invalid-reply-target"),
        json!({"to": ["b@example.test"], "text": "x", "in_reply_to_message_id": "garbage"}),
    ));
    out.push(row(
        "reused key, other body",
        p(409, "idempotency-key-reused"),
        json!({"to": ["b@example.test"], "text": "x"}),
    ));
    for key in ["", "a/b", "..", &"k".repeat(65), "k\u{e9}y"] {
        let mut case = Case::new("POST", SEND, path.clone(), bad())
            .named(format!("send: idempotency key {key:?}"))
            .json(json!({"to": ["b@example.test"], "text": "x"}));
        if !key.is_empty() {
            case = case.header("idempotency-key", key.to_owned());
        }
        out.push(case);
    }
}

/// A page session token as the pages sign it (`expiry.nonce.mac`), valid or already expired.
fn session_token(h: &Harness, expiry: i64) -> String {
    use aws_lc_rs::hmac;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let root = hmac::Key::new(hmac::HMAC_SHA256, h.app.api_key.as_bytes());
    let derived = hmac::sign(&root, b"mailroom pages session v1");
    let key = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
    let nonce = b64.encode([7u8; 18]);
    let tag = b64.encode(hmac::sign(&key, format!("session|{expiry}|{nonce}").as_bytes()).as_ref());
    format!("{expiry}.{nonce}.{tag}")
}

/// The HTML pages (when the routing table has them): no, forged or expired session cookie,
/// cross-site posts and posts without the session's CSRF token; the public login form.
fn page_cases(h: &Harness, out: &mut Vec<Case>) {
    let now = mailroom_core::time::now_unix();
    let valid = format!("mailroom_session={}", session_token(h, now + 3600));
    let expired = format!("mailroom_session={}", session_token(h, now - 10));
    for spec in specs().into_iter().filter(|s| s.path.starts_with("/ui")) {
        let path = fill(spec.path, "", h);
        let named = |what: &str| format!("{} {}: {what}", spec.method, spec.path);
        if spec.access == Access::Public {
            let case = match (spec.method, spec.path) {
                ("POST", "/ui/login") => {
                    Case::new("POST", spec.path, path.clone(), Expect::Page(403))
                        .raw(
                            "application/x-www-form-urlencoded",
                            format!("api_key={}&csrf=x", h.app.api_key),
                        )
                        .named(named("no login cookie"))
                }
                ("GET", "/ui") => Case::new(
                    "GET",
                    spec.path,
                    path.clone(),
                    Expect::SeeOther("/ui/accounts"),
                )
                .named(named("forged cookie is not a session"))
                .header("cookie", "mailroom_session=1.2.3".to_owned()),
                _ => Case::new(spec.method, spec.path, path.clone(), Expect::Status(200))
                    .named(named("public, bad cookie ignored"))
                    .header("cookie", "mailroom_session=%00".to_owned()),
            };
            out.push(case.auth(Auth::None));
            if spec.path == "/ui/login" && spec.method == "POST" {
                out.push(
                    Case::new("POST", spec.path, path.clone(), Expect::Page(401))
                        .auth(Auth::None)
                        .header("cookie", "mailroom_login=tok".to_owned())
                        .raw(
                            "application/x-www-form-urlencoded",
                            "api_key=wrong-key&csrf=tok",
                        )
                        .named(named("wrong API key")),
                );
            }
            continue;
        }
        if spec.access == Access::ApiKey {
            continue;
        }
        let logged_out = |what: &str, cookie: &str| {
            let expect = if spec.method == "GET" {
                Expect::SeeOther("/ui/login")
            } else {
                Expect::Page(401)
            };
            let mut case = Case::new(spec.method, spec.path, path.clone(), expect)
                .auth(Auth::None)
                .named(named(what))
                .raw("application/x-www-form-urlencoded", "csrf=x");
            if !cookie.is_empty() {
                case = case.header("cookie", cookie.to_owned());
            }
            case
        };
        out.push(logged_out("no session", ""));
        out.push(logged_out(
            "forged session",
            "mailroom_session=9999999999.bm9uY2U.Zm9yZ2Vk",
        ));
        out.push(logged_out("expired session", &expired));
        out.push(logged_out(
            "API key as the cookie",
            &format!("mailroom_session={}", h.app.api_key),
        ));
        if spec.method == "POST" {
            let urlencoded = "csrf=wrong&owner=o&to=b%40example.test&text=x&kind=google&client_id=c&client_secret=s";
            let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nwrong\r\n--XyZ\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nb@example.test\r\n--XyZ--\r\n";
            let (content_type, form) = if spec.path.ends_with("/send") {
                ("multipart/form-data; boundary=XyZ", multipart)
            } else {
                ("application/x-www-form-urlencoded", urlencoded)
            };
            out.push(
                Case::new("POST", spec.path, path.clone(), Expect::Page(403))
                    .auth(Auth::None)
                    .header("cookie", valid.clone())
                    .raw(content_type, form)
                    .named(named("wrong CSRF token")),
            );
            out.push(
                Case::new("POST", spec.path, path.clone(), Expect::Page(403))
                    .auth(Auth::None)
                    .header("cookie", valid.clone())
                    .header("sec-fetch-site", "cross-site".to_owned())
                    .raw(content_type, form)
                    .named(named("cross-site form post")),
            );
        }
    }
}

/// Every row of the table.
pub async fn cases(h: &Harness) -> Vec<Case> {
    let mut out = Vec::new();
    auth_cases(h, &mut out);
    id_cases(h, &mut out);
    unknown_cases(h, &mut out);
    body_cases(h, &mut out);
    provider_cases(&mut out);
    start_cases(&mut out);
    callback_cases(h, &mut out);
    query_cases(h, &mut out);
    send_cases(h, &mut out);
    page_cases(h, &mut out);
    for (i, case) in out.iter_mut().enumerate() {
        if case.name.is_empty() {
            case.name = format!("case {i} {} {}", case.method, case.path);
        }
    }
    out
}
