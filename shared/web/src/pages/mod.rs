//! The web pages (server-rendered HTML, no front-end build): login with the API key, provider
//! settings, accounts, mailbox, message view and compose. They call the same library functions
//! as the JSON API; every value is HTML-escaped; responses carry a strict CSP; forms carry a
//! CSRF token bound to the session. In AWS the `api` function serves them.

mod accounts;
mod compose;
mod html;
mod login;
mod mailbox;
mod session;
mod settings;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::AppState;
use crate::problem::Problem;
use crate::routes::{Access, Function, Route, route};
pub use session::require_session;

/// The session of a request that passed [`require_session`].
pub struct Page(pub session::Session);

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<session::Session>()
            .cloned()
            .map(Page)
            .ok_or_else(|| StatusCode::UNAUTHORIZED.into_response())
    }
}

/// A failure shown as a page: the problem's title and detail (which never hold secrets).
pub struct PageError(pub Problem);

impl<E: Into<Problem>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let p = self.0;
        let body = format!(
            "{}<p><a href=\"/ui/accounts\">Back to the accounts</a></p>",
            html::notice("error", &p.detail)
        );
        html::page(p.status, p.title, None, &body)
    }
}

fn page_route(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    route(
        Function::Api,
        method,
        path,
        access,
        handler.layer(middleware::from_fn(html::security_headers)),
    )
}

/// The pages' rows of the routing table.
pub(crate) fn routes() -> Vec<Route> {
    use Access::{Public, Session};
    let msg = "/ui/accounts/{id}/messages/{message_id}";
    vec![
        page_route("GET", "/ui", Public, get(login::home)),
        page_route("GET", "/ui/style.css", Public, get(login::style)),
        page_route("GET", "/ui/login", Public, get(login::show)),
        page_route("POST", "/ui/login", Public, post(login::submit)),
        page_route("POST", "/ui/logout", Session, post(login::logout)),
        page_route("GET", "/ui/settings", Session, get(settings::list)),
        page_route("POST", "/ui/settings", Session, post(settings::save)),
        page_route("GET", "/ui/settings/{id}", Session, get(settings::edit)),
        page_route(
            "POST",
            "/ui/settings/{id}/delete",
            Session,
            post(settings::remove),
        ),
        page_route("GET", "/ui/accounts", Session, get(accounts::list)),
        page_route(
            "POST",
            "/ui/accounts/connect",
            Session,
            post(accounts::connect),
        ),
        page_route(
            "POST",
            "/ui/accounts/{id}/sync",
            Session,
            post(accounts::sync_now),
        ),
        page_route(
            "POST",
            "/ui/accounts/{id}/verify",
            Session,
            post(accounts::verify),
        ),
        page_route(
            "POST",
            "/ui/accounts/{id}/delete",
            Session,
            post(accounts::disconnect),
        ),
        page_route(
            "GET",
            "/ui/accounts/{id}/messages",
            Session,
            get(mailbox::list),
        ),
        page_route("GET", msg, Session, get(mailbox::show)),
        page_route(
            "GET",
            "/ui/accounts/{id}/messages/{message_id}/body",
            Session,
            get(mailbox::body),
        ),
        page_route(
            "GET",
            "/ui/accounts/{id}/compose",
            Session,
            get(compose::form),
        ),
        page_route(
            "POST",
            "/ui/accounts/{id}/send",
            Session,
            post(compose::send),
        ),
    ]
}
