//! The one error type of the HTTP boundary, and the problem responses (RFC 9457) it renders.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roost_domain::ledger::Refusal;
use roost_domain::time::to_rfc3339;
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
    /// Seconds after which a retry may succeed (`Retry-After`), for errors that pass.
    pub retry_after: Option<u32>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// A problem document (RFC 9457), served as `application/problem+json`. `code` is stable and
/// machine-readable; some codes add extension members: `errors` (`invalid_request`), `available`
/// (`insufficient_credits`), `scope`, `limit`, `used`, `resets_at` (`budget_exceeded`), `limit`
/// (`plan_limit`), `limit_source`, `limit`, `reset_seconds` (`rate_limited`), `held`
/// (`settle_exceeds_hold`), `hold_status` (`hold_closed`), `check`, `checks` (`not_ready`).
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
        Self { status, code, detail: detail.into(), ext: Map::new(), retry_after: None }
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.ext.insert(key.into(), value.into());
        self
    }

    /// 503 `code`: nothing happened, and a retry after `seconds` may succeed.
    pub fn unavailable(code: &'static str, detail: impl Into<String>, seconds: u32) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail);
        e.retry_after = Some(seconds);
        e
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

    /// 429 `rate_limited`: too many failed sign-ins for `source` (`account` or `ip`).
    pub fn login_throttled(source: &'static str, seconds: u32) -> Self {
        let mut e =
            Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many failed sign-ins; wait and try again")
                .with("limit_source", source)
                .with("reset_seconds", seconds);
        e.retry_after = Some(seconds);
        e
    }

    /// 403 `two_factor_required`: the org requires two-factor and the caller has not turned it on.
    pub fn two_factor_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "two_factor_required",
            "this organization requires two-factor authentication: turn it on with POST /v1/me/totp",
        )
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
                    Rule::TokenInvalid => (StatusCode::GONE, "token_invalid"),
                    Rule::TotpEnabled => (StatusCode::CONFLICT, "totp_enabled"),
                    Rule::TotpNotStarted => (StatusCode::CONFLICT, "totp_not_started"),
                    Rule::DomainTaken => (StatusCode::CONFLICT, "domain_taken"),
                    Rule::VersionConflict => (StatusCode::PRECONDITION_FAILED, "version_conflict"),
                    Rule::IdempotencyConflict => (StatusCode::CONFLICT, "idempotency_conflict"),
                    // Someone outside the org, or a workspace of another org: like a missing thing.
                    Rule::NotOrgMember | Rule::CrossOrg => return Self::not_found(),
                };
                Self::new(status, code, rule.to_string())
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "the database is unavailable");
                Self::unavailable("database_unavailable", "the database is unavailable; retry shortly", 1)
            }
            StoreError::Db(e) => Self::internal(e),
            StoreError::Writer(e) => Self::internal(e),
            StoreError::Setup(e) => Self::internal(e),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let detail = r.to_string();
        let code = r.code();
        match r {
            Refusal::InsufficientCredits { available, .. } => {
                Self::new(StatusCode::PAYMENT_REQUIRED, code, detail).with("available", available)
            }
            Refusal::BudgetExceeded { scope, limit, used, resets_at } => Self::new(StatusCode::FORBIDDEN, code, detail)
                .with("scope", scope.as_str())
                .with("limit", limit)
                .with("used", used)
                .with("resets_at", to_rfc3339(resets_at)),
            Refusal::HoldClosed { status } => {
                Self::new(StatusCode::CONFLICT, code, detail).with("hold_status", status.as_str())
            }
            Refusal::SettleExceedsHold { held, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).with("held", held)
            }
            Refusal::IdempotencyConflict => Self::new(StatusCode::CONFLICT, code, detail),
            Refusal::NotFound => Self::not_found(),
            Refusal::Forbidden => Self::forbidden(detail),
            Refusal::UnknownWallet => Self::invalid_field("wallet", "no such wallet kind"),
            Refusal::GrantCapExceeded { max } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail).with(
                "errors",
                json!([FieldError {
                    field: "amount".into(),
                    message: format!("a wallet may be granted at most {max} in all")
                }]),
            ),
        }
    }
}

impl From<crate::webhooks::target::TargetError> for ApiError {
    /// A webhook URL that is not `http(s)://` is `invalid_request`; one that leads to a private
    /// address is 422 `webhook_url_private`, one whose host does not resolve 422
    /// `webhook_url_unresolvable`; both name the `url` field in `errors` too.
    fn from(e: crate::webhooks::target::TargetError) -> Self {
        use crate::webhooks::target::TargetError;
        let code = match e {
            TargetError::Invalid(m) => return Self::invalid_field("url", m),
            TargetError::Private(_) => "webhook_url_private",
            TargetError::Unresolvable(_) => "webhook_url_unresolvable",
        };
        let errors = json!([FieldError { field: "url".into(), message: e.to_string() }]);
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()).with("errors", errors)
    }
}

impl ApiError {
    /// The problem document (RFC 9457) this error renders as.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), "about:blank".into());
        body.insert("title".into(), self.status.canonical_reason().unwrap_or("Error").into());
        body.insert("status".into(), self.status.as_u16().into());
        body.insert("code".into(), self.code.into());
        body.insert("detail".into(), self.detail.clone().into());
        body.extend(self.ext.clone());
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body().to_string()).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.code == "database_unavailable" {
            res.extensions_mut().insert(crate::ops::observe::DatabaseDown);
        }
        res
    }
}
