//! Request extractors whose rejections are problem+json: JSON bodies and record ids in paths.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// A JSON body; malformed, mistyped, oversized or non-JSON bodies become precise problems.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => {
            Problem::bad_request(format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A field is missing or has the wrong type",
            e.body_text(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "the body is larger than this endpoint accepts",
            )
        }
        other => Problem::bad_request(format!("the body could not be read: {}", other.body_text())),
    }
}

/// Query parameters, with problem+json rejections.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| {
                Problem::bad_request(format!("invalid query parameters: {}", e.body_text()))
            })
    }
}

/// Whether `id` is a well-formed record id: 1 to 64 of `[A-Za-z0-9_-]` (no path tricks).
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Path parameters that are record ids, checked by [`is_valid_id`]; one or two segments.
pub struct Ids<T>(pub T);

impl<S: Send + Sync> FromRequestParts<S> for Ids<String> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(path_problem)?;
        check(&id)?;
        Ok(Self(id))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ids<(String, String)> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(path_problem)?;
        check(&a)?;
        check(&b)?;
        Ok(Self((a, b)))
    }
}

fn check(id: &str) -> Result<(), Problem> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "ids are 1 to 64 characters of letters, digits, `-` and `_`",
        ))
    }
}

fn path_problem(e: PathRejection) -> Problem {
    Problem::bad_request(format!("invalid path: {}", e.body_text()))
}
