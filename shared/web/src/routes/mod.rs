//! The one routing table: every endpoint, the function that serves it in AWS and whether it needs
//! the API key. Lambda functions serve their own rows; the local host serves them all.

pub(crate) mod accounts;
mod health;
mod messages;
mod oauth;
mod providers;
pub(crate) mod send;
mod verify;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;

use crate::AppState;
use crate::auth::require_api_key;
use crate::problem::Problem;

/// Largest request body any route accepts (API Gateway's own limit is 10 MB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The HTTP functions (Lambda) that serve routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    OAuthStart,
    OAuthCallback,
    Api,
    SendMail,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::OAuthStart,
        Function::OAuthCallback,
        Function::Api,
        Function::SendMail,
    ];

    /// The function's name: its binary, crate and infra function.
    pub fn name(self) -> &'static str {
        match self {
            Function::OAuthStart => "oauth-start",
            Function::OAuthCallback => "oauth-callback",
            Function::Api => "api",
            Function::SendMail => "send-mail",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    ApiKey,
    /// The web pages: a session cookie from logging in with the API key (public at the gateway).
    Session,
}

/// One row of the routing table, without its handler (for infra checks and documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub function: Function,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// One row of the routing table.
pub(crate) struct Route {
    spec: RouteSpec,
    handler: MethodRouter<AppState>,
}

pub(crate) fn route(
    function: Function,
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        spec: RouteSpec {
            function,
            method,
            path,
            access,
        },
        handler,
    }
}

fn table() -> Vec<Route> {
    let mut rows = Vec::new();
    rows.extend(health::routes());
    rows.extend(providers::routes());
    rows.extend(oauth::routes());
    rows.extend(accounts::routes());
    rows.extend(send::routes());
    rows.extend(verify::routes());
    rows.extend(messages::routes());
    rows.extend(crate::pages::routes());
    rows
}

/// Every row of the routing table.
pub fn specs() -> Vec<RouteSpec> {
    table().into_iter().map(|r| r.spec).collect()
}

/// The router serving the rows of `functions`.
pub fn router(services: AppState, functions: &[Function]) -> Router {
    let mut router = Router::new();
    for row in table()
        .into_iter()
        .filter(|r| functions.contains(&r.spec.function))
    {
        debug_assert!(row.spec.method.parse::<Method>().is_ok());
        let handler = match row.spec.access {
            Access::Public => row.handler,
            Access::ApiKey => row.handler.route_layer(middleware::from_fn_with_state(
                services.clone(),
                require_api_key,
            )),
            Access::Session => row.handler.route_layer(middleware::from_fn_with_state(
                services.clone(),
                crate::pages::require_session,
            )),
        };
        router = router.route(row.spec.path, handler);
    }
    router
        .fallback(|| async { Problem::not_found("no such endpoint").into_response() })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this endpoint does not accept that method",
            )
            .into_response()
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(services)
}
