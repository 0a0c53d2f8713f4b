//! Completes the OpenAPI document from what each operation is, so that it declares every status
//! the server can answer without each of the handlers repeating them: the answers that come from
//! the layers every request passes (authentication and rate limits, the JSON body and query
//! extractors, the idempotency check, the database circuit) are added by the traits of the
//! operation — it needs a bearer token, it takes a body or a query, it has path ids, it takes an
//! `Idempotency-Key` — and every problem response is declared `application/problem+json` with the
//! `Problem` schema. Handlers declare only what is their own (402, 409 `hold_closed`, 410 …).

use utoipa::Modify;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Object, ObjectBuilder, Ref, SchemaType, Type};
use utoipa::openapi::{Content, OpenApi, RefOr, Required, Schema};

use crate::extract::{MAX_BODY, MAX_LIMIT};

/// The media type of every error (RFC 9457).
pub const PROBLEM: &str = "application/problem+json";

/// The [`Modify`] that completes the document (see the module doc).
pub struct Contract;

/// The response headers declared once under `components.headers`: `Retry-After` on answers that
/// pass, and the `RateLimit-*` headers on every answer to an API key.
const HEADERS: [(&str, &str); 4] = [
    ("Retry-After", "Seconds after which a retry may succeed"),
    ("RateLimit-Limit", "With an API key: requests per minute of the tightest limit in force"),
    ("RateLimit-Remaining", "With an API key: requests left under that limit now"),
    ("RateLimit-Reset", "With an API key: seconds until that limit is whole again"),
];

fn header_ref(name: &str) -> RefOr<Header> {
    RefOr::Ref(Ref::new(format!("#/components/headers/{name}")))
}

impl Modify for Contract {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in HEADERS {
            components.headers.insert(name.into(), RefOr::T(seconds_header(what)));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
                item.head.as_mut(),
                item.options.as_mut(),
                item.trace.as_mut(),
            ];
            for op in ops.into_iter().flatten() {
                complete(path, op);
            }
        }
    }
}

/// Where the document itself is served (outside the database circuit).
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// Adds `GET /v1/openapi.json`, which the router serves outside the described routes.
pub fn describe_itself(doc: &mut OpenApi) {
    let mut op = Operation::new();
    op.tags = Some(vec!["operations".into()]);
    op.summary = Some("This document: the API as OpenAPI 3.1. No token needed.".into());
    op.operation_id = Some("openapi".into());
    let body = Content::new(Some(RefOr::T(Schema::Object(Object::with_type(Type::Object)))));
    let mut ok = Response::new("The OpenAPI 3.1 document");
    ok.content.insert("application/json".into(), RefOr::T(body));
    op.responses.responses.insert("200".into(), RefOr::T(ok));
    doc.paths.add_path_operation(OPENAPI_PATH, vec![HttpMethod::Get], op);
}

/// Declares the plans of this server's catalog as the values a `plan` field takes, and its wallet
/// kinds as those a charge's or hold's `wallet` takes.
pub fn name_the_catalog(doc: &mut OpenApi, plans: &[&str], wallet_kinds: &[String]) {
    let Some(components) = doc.components.as_mut() else { return };
    for schema in ["ChargeBody", "HoldBody"] {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(schema)
            && let Some(wallet) = o.properties.get_mut("wallet")
        {
            let kinds = wallet_kinds.iter().map(|k| serde_json::Value::from(k.as_str()));
            *wallet = RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .enum_values(Some(kinds.chain([serde_json::Value::Null])))
                    .description(Some("A wallet kind of this server (default: the first, `credits`)"))
                    .build(),
            ));
        }
    }
    for schema in ["CreateOrg", "ChangePlan"] {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(schema)
            && let Some(plan) = o.properties.get_mut("plan")
        {
            *plan = RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(plans.iter().copied()))
                    .description(Some("A plan of this server's catalog (`GET /v1/plans`)"))
                    .build(),
            ));
        }
    }
}

/// What an operation is, as far as the shared layers care.
#[derive(Debug, Default)]
struct Traits {
    /// Needs a bearer token (user token or API key): 401, 403, 429 and the `RateLimit-*` headers.
    authenticated: bool,
    /// Takes a JSON body: 400 `malformed_json`, 413, 422.
    body: bool,
    /// Takes query parameters: 400 `malformed_query`, 422.
    query: bool,
    /// Names things by id in its path, or a workspace in `Roost-Workspace`: 404.
    ids: bool,
    /// Takes an `Idempotency-Key`: 409 `idempotency_conflict`, 422 when it is missing.
    idempotent: bool,
    /// Reads the database (every `/v1/` route): 503 `database_unavailable` while it is down.
    database: bool,
}

fn traits(path: &str, op: &Operation) -> Traits {
    let params: Vec<&Parameter> = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(p),
            RefOr::Ref(_) => None,
        })
        .collect();
    let header =
        |name: &str| params.iter().any(|p| p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case(name));
    let authenticated = op.security.iter().flatten().any(|req| {
        // A requirement with no scheme (`{}`) means "no authentication needed".
        serde_json::to_value(req).ok().and_then(|v| v.as_object().map(|o| !o.is_empty())).unwrap_or(false)
    });
    Traits {
        authenticated,
        body: op.request_body.is_some(),
        query: params.iter().any(|p| p.parameter_in == ParameterIn::Query),
        ids: path.contains('{') || header("Roost-Workspace"),
        idempotent: header("Idempotency-Key"),
        database: path.starts_with("/v1/") && path != OPENAPI_PATH,
    }
}

fn complete(path: &str, op: &mut Operation) {
    declare_path_params(path, op);
    bound_params(op);
    let t = traits(path, op);
    let responses = &mut op.responses.responses;
    let mut add = |status: u16, description: &str, retry_after: bool| {
        responses.entry(status.to_string()).or_insert_with(|| RefOr::T(problem(description, retry_after)));
    };
    if t.body || t.query {
        add(400, "`malformed_json`: the body is not JSON; `malformed_query`: the query string cannot be read", false);
    }
    if t.authenticated {
        add(401, "`unauthenticated`: the bearer token is missing, unknown, expired or revoked", false);
        add(403, "`forbidden`: the caller's role, or the kind of token, does not allow this", false);
        add(
            429,
            "`rate_limited`: over the org's or the key's requests per minute (`limit_source`, `limit`, `reset_seconds`); retry after `Retry-After` seconds",
            true,
        );
    }
    if t.ids {
        add(404, "`not_found`: no such thing here — also the answer for anything of another tenant", false);
    }
    if t.idempotent {
        add(409, "`idempotency_conflict`: this `Idempotency-Key` was used with a different request", false);
    }
    if t.body {
        add(413, &format!("`payload_too_large`: bodies are limited to {MAX_BODY} bytes"), false);
    }
    if t.body || t.query || t.idempotent {
        add(422, "`invalid_request`: `errors` names each invalid field and why", false);
    }
    if t.database {
        add(503, "`database_unavailable`: nothing happened; retry after `Retry-After` seconds", true);
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(r) = response {
            fix_response(status, r, t.authenticated);
        }
    }
}

/// A problem response with `description`, and `Retry-After` when a retry is expected to succeed.
fn problem(description: &str, retry_after: bool) -> Response {
    let mut r = Response::new(description);
    r.content.insert(PROBLEM.into(), RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))));
    if retry_after {
        r.headers.insert("Retry-After".into(), header_ref("Retry-After"));
    }
    r
}

fn seconds_header(description: &str) -> Header {
    let mut h = Header::new(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build());
    h.description = Some(description.into());
    h
}

/// Gives a response a description when it has none, declares problem bodies as
/// `application/problem+json`, and adds the `RateLimit-*` headers that every answer to an
/// API key carries.
fn fix_response(status: &str, r: &mut Response, authenticated: bool) {
    if r.description.trim().is_empty() {
        r.description = default_description(status);
    }
    let is_problem = |c: &RefOr<Content>| match c {
        RefOr::T(c) => matches!(&c.schema, Some(RefOr::Ref(s)) if s.ref_location.ends_with("/Problem")),
        RefOr::Ref(_) => false,
    };
    if let Some(c) = r.content.shift_remove("application/json") {
        let key = if is_problem(&c) { PROBLEM } else { "application/json" };
        r.content.insert(key.into(), c);
    }
    // Every 429 and 503 of roost says when to retry (`ApiError::unavailable`, the limits).
    if status == "429" || status == "503" {
        r.headers.entry("Retry-After".into()).or_insert_with(|| header_ref("Retry-After"));
    }
    if authenticated {
        for (name, _) in &HEADERS[1..] {
            r.headers.entry((*name).into()).or_insert_with(|| header_ref(name));
        }
    }
}

fn default_description(status: &str) -> String {
    let reason = status
        .parse::<u16>()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("The answer");
    reason.to_string()
}

/// Declares each `{name}` of the path template as a required string path parameter when the
/// handler did not (OpenAPI requires every one to be declared).
fn declare_path_params(path: &str, op: &mut Operation) {
    let names: Vec<&str> = path.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
    let params = op.parameters.get_or_insert_with(Vec::new);
    for name in names {
        let declared =
            params.iter().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path && p.name == name));
        if !declared {
            let mut p = Parameter::new(name);
            p.parameter_in = ParameterIn::Path;
            p.required = Required::True;
            p.schema = Some(RefOr::T(Schema::Object(Object::with_type(Type::String))));
            p.description = Some(path_param_description(name).into());
            params.push(RefOr::T(p));
        }
    }
    if params.is_empty() {
        op.parameters = None;
    }
}

fn path_param_description(name: &str) -> &'static str {
    match name {
        "org" => "An organization id (`org_…`)",
        "ws" => "A workspace id (`ws_…`)",
        "user" => "A user id (`usr_…`), or `me`",
        "wallet" => "A wallet id (`wal_…`)",
        _ => "The id of the thing addressed",
    }
}

/// `?limit=` is 1–500 on every list (see [`crate::extract::Params::limit`]); an
/// `Idempotency-Key` is 1–255 visible characters (see `credits::idem`).
fn bound_params(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        let RefOr::T(p) = p else { continue };
        if p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("Idempotency-Key") {
            p.schema = Some(RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some(r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"))
                    .build(),
            )));
            p.description.get_or_insert_with(|| {
                "Makes a retry safe: the same key and body replay the first answer (kept at least 24 h)".into()
            });
        }
        if p.parameter_in == ParameterIn::Query && p.name == "limit" {
            p.schema = Some(RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(MAX_LIMIT)).build(),
            )));
            if p.description.is_none() {
                p.description = Some(format!("Page size, 1–{MAX_LIMIT} (default 50)"));
            }
        }
    }
}
