//! The operator (whoever runs roost) on the `/v1/admin` routes: a bearer `rso_` key, looked up
//! on every request so that a revoked key fails on the very next one.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use roost_domain::tokens::{self, OPERATOR_KEY_PREFIX};
use roost_store::{Actor, Ctx, OperatorKey};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientIp;

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator {
    pub key: OperatorKey,
    pub ip: Option<String>,
}

impl Operator {
    /// The audit context of an operator action at `now`: actor `{type: "operator", id}`.
    pub fn ctx(&self, now: i64) -> Ctx {
        Ctx { actor: Actor::operator(&self.key.id), ip: self.ip.clone(), now }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, st).await.unwrap_or_default();
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(ApiError::unauthenticated)?;
        if token.len() > 200 {
            return Err(ApiError::unauthenticated());
        }
        if !token.starts_with(OPERATOR_KEY_PREFIX) {
            // A user or workspace key is known but has no right here; anything else is unknown.
            return Err(if token.starts_with(tokens::USER_TOKEN_PREFIX) || token.starts_with(tokens::API_KEY_PREFIX) {
                ApiError::forbidden("the /v1/admin routes need an operator key (rso_)")
            } else {
                ApiError::unauthenticated()
            });
        }
        let key = st.store.operator_by_hash(&tokens::hash(token)).await?.ok_or_else(ApiError::unauthenticated)?;
        Ok(Operator { key, ip })
    }
}
