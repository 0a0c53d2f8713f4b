//! The one error type of the HTTP boundary, and the problem responses (RFC 9457) it renders.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roost_domain::validate::FieldError;
use roost_store::{Rule, StoreError};
use serde_json::{Map, Value, json};

/// A failed request: status, stable `code`, a sentence for people, and extension members.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub ext: Map<String, Value>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// A problem document, for the OpenAPI description.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the wire format only")]
pub struct Problem {
    #[schema(example = "about:blank")]
    r#type: String,
    title: String,
    status: u16,
    /// Stable, machine-readable error code.
    code: String,
    detail: String,
    /// Present on `invalid_request`.
    errors: Option<Vec<FieldError>>,
}

impl ApiError {
    /// A problem with no extension members.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), ext: Map::new() }
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.ext.insert(key.into(), value.into());
        self
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "a valid bearer token is required")
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 `not_found`: also the answer for anything in another tenant.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such thing here")
    }

    /// 422 `invalid_request` naming the invalid fields.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", detail).with("errors", json!(errors))
    }

    /// 422 `invalid_request` for one field.
    pub fn invalid_field(field: &str, message: &str) -> Self {
        Self::invalid(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// 403 `personal_org`.
    pub fn personal_org(what: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "personal_org", format!("a personal organization {what}"))
    }

    /// `plan_limit` naming the limit, with the given status (403 when adding, 409 on a downgrade).
    pub fn plan_limit(status: StatusCode, limit: &roost_store::Limit) -> Self {
        Self::new(status, "plan_limit", format!("the plan's limit `{}` is reached", limit.name()))
            .with("limit", limit.name())
    }

    /// 500 `internal`: the cause goes to the log, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Limit(l) => Self::plan_limit(StatusCode::FORBIDDEN, &l),
            StoreError::Rule(rule) => {
                let (status, code) = match rule {
                    Rule::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
                    Rule::OwnerCannotBeRemoved => (StatusCode::CONFLICT, "owner_cannot_be_removed"),
                    Rule::WorkspaceProtected => (StatusCode::CONFLICT, "workspace_protected"),
                    Rule::InvitationInvalid => (StatusCode::GONE, "invitation_invalid"),
                    Rule::InvitationEmailMismatch => (StatusCode::FORBIDDEN, "invitation_email_mismatch"),
                    Rule::NotOwner => (StatusCode::FORBIDDEN, "forbidden"),
                    Rule::TrialUsed => (StatusCode::CONFLICT, "trial_used"),
                    Rule::NotAllowed => (StatusCode::FORBIDDEN, "forbidden"),
                    // Someone outside the org, or a workspace of another org: like a missing thing.
                    Rule::NotOrgMember | Rule::CrossOrg => return Self::not_found(),
                };
                Self::new(status, code, rule.to_string())
            }
            StoreError::Db(e) => Self::internal(e),
            StoreError::Setup(e) => Self::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("type".into(), "about:blank".into());
        body.insert("title".into(), self.status.canonical_reason().unwrap_or("Error").into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("code".into(), self.code.into());
        body.insert("detail".into(), self.detail.into());
        body.extend(self.ext);
        let mut res = (self.status, Value::Object(body).to_string()).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        res
    }
}
