//! Who is calling: user tokens (`rsu_`), workspace API keys (`rsk_`), and password hashing.
//!
//! API keys are looked up in memory after first use. The cache is keyed by the secret's hash and
//! dropped per key on rotation and revocation; with PostgreSQL, other replicas hear of it through
//! `LISTEN/NOTIFY` on the `roost_keys` channel (sent inside the revoking transaction), drop their
//! whole cache when that connection is lost, and trust no entry longer than a minute. Expiry and
//! grace periods are checked against the clock on every request, so a cached key never outlives
//! its validity.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use roost_domain::tokens::{self, API_KEY_PREFIX, USER_TOKEN_PREFIX};
use roost_store::{Actor, ApiKey, Ctx, KeyAuth, Store, User};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientIp;

/// The authenticated principal of a request.
#[derive(Debug, Clone)]
pub enum Who {
    /// A user, through a user token.
    User(User),
    /// A workspace API key (shared with the key cache: no copy per request).
    Key(Arc<ApiKey>),
}

/// The caller of a request: who, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Who,
    pub ip: Option<String>,
    /// The hash of the bearer token, so a session can end itself.
    pub token_hash: String,
    /// The session's id, for a user token.
    pub session_id: Option<String>,
}

/// A session's last use is written at most this often (one write a minute, not one per request).
pub const SESSION_TOUCH_MS: i64 = 60_000;

impl Caller {
    /// The actor recorded on audit events and charges.
    pub fn actor(&self) -> Actor {
        match &self.who {
            Who::User(u) => Actor::user(&u.id),
            Who::Key(k) => Actor::key(&k.id),
        }
    }

    /// The id of [`Caller::actor`], without building the actor.
    pub fn actor_id(&self) -> &str {
        match &self.who {
            Who::User(u) => &u.id,
            Who::Key(k) => &k.id,
        }
    }

    /// The audit context of a change made by this caller at `now`.
    pub fn ctx(&self, now: i64) -> Ctx {
        Ctx { actor: self.actor(), ip: self.ip.clone(), now }
    }

    /// The user, for endpoints that API keys may not use.
    pub fn user(&self) -> ApiResult<&User> {
        match &self.who {
            Who::User(u) => Ok(u),
            Who::Key(_) => Err(ApiError::forbidden("this endpoint needs a user token, not an API key")),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
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
        let hash = tokens::hash(token);
        let now = st.clock.now_ms();
        let mut session_id = None;
        let who = if token.starts_with(USER_TOKEN_PREFIX) {
            let found = st.store.session_by_token(&hash, now, st.settings.session_idle_after(now)).await?;
            let s = found.ok_or_else(ApiError::unauthenticated)?;
            if now - s.last_used_at >= SESSION_TOUCH_MS {
                // Off the request's path: the answer never waits for this write.
                let (store, id) = (st.store.clone(), s.session_id.clone());
                tokio::spawn(async move {
                    if let Err(e) = store.touch_session(&id, now).await {
                        tracing::debug!(error = %e, "recording a session's last use");
                    }
                });
            }
            session_id = Some(s.session_id);
            Who::User(s.user)
        } else if token.starts_with(API_KEY_PREFIX) {
            let key = st.keys.find(&st.store, &hash, now).await?.ok_or_else(ApiError::unauthenticated)?;
            if let Some(d) = st.limiter.check(st, &key).await? {
                if let Some(slot) = parts.extensions.get::<crate::limits::Slot>() {
                    slot.set(d);
                }
                if !d.cell.allows() {
                    return Err(crate::limits::refused(&d));
                }
            }
            Who::Key(key)
        } else if token.starts_with(tokens::OPERATOR_KEY_PREFIX) {
            // Operator keys act on /v1/admin only, never as a user (API.md "Billing").
            return Err(match st.store.operator_by_hash(&hash).await? {
                Some(_) => ApiError::forbidden("an operator key acts only on /v1/admin routes, never as a user"),
                None => ApiError::unauthenticated(),
            });
        } else {
            return Err(ApiError::unauthenticated());
        };
        Ok(Caller { who, ip, token_hash: hash, session_id })
    }
}

/// API keys seen recently, by secret hash.
#[derive(Debug, Default)]
pub struct KeyCache {
    map: RwLock<HashMap<String, Cached>>,
    /// Bumped by every invalidation: a lookup that read the database before an invalidation must
    /// not put what it read into the cache after it.
    generation: AtomicU64,
}

/// The `LISTEN/NOTIFY` channel that carries revoked and rotated key ids between replicas.
pub const KEY_CHANNEL: &str = "roost_keys";

/// A cached key with the validity of the secret it was found by.
#[derive(Debug, Clone)]
struct Cached {
    key: Arc<ApiKey>,
    secret_valid_until: Option<i64>,
    /// When it was read from the store (server clock, ms).
    fetched_at: i64,
}

/// How long a cached key is trusted without asking the store again: a backstop for an
/// invalidation this process did not hear of.
pub const KEY_CACHE_TTL_MS: i64 = 60_000;

fn usable(k: &Cached, now: i64) -> bool {
    k.key.revoked_at.is_none()
        && k.key.expires_at.is_none_or(|e| e > now)
        && k.secret_valid_until.is_none_or(|v| v > now)
}

impl KeyCache {
    /// The live key for a secret hash: from memory, or from the store on first use.
    pub async fn find(&self, store: &Store, hash: &str, now: i64) -> ApiResult<Option<Arc<ApiKey>>> {
        {
            let map = self.map.read().map_err(ApiError::internal)?;
            if let Some((stored, k)) = map.get_key_value(hash).filter(|(_, k)| now - k.fetched_at < KEY_CACHE_TTL_MS) {
                // The map found the entry by hash; the final equality check does not leak timing.
                return Ok((tokens::ct_eq(stored, hash) && usable(k, now)).then(|| k.key.clone()));
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some(KeyAuth { key, secret_valid_until }) = store.key_by_secret(hash, now).await? else { return Ok(None) };
        let found = Cached { key: Arc::new(key), secret_valid_until, fetched_at: now };
        let ok = usable(&found, now);
        let key = found.key.clone();
        let mut map = self.map.write().map_err(ApiError::internal)?;
        if self.generation.load(Ordering::SeqCst) == generation {
            map.insert(hash.to_string(), found);
        }
        Ok(ok.then_some(key))
    }

    /// Forgets every secret of these keys in this process.
    pub fn forget(&self, key_ids: &[String]) {
        if key_ids.is_empty() {
            return;
        }
        if let Ok(mut m) = self.map.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            m.retain(|_, k| !key_ids.contains(&k.key.id));
        }
    }

    /// Forgets every key in this process.
    fn clear(&self) {
        if let Ok(mut m) = self.map.write() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            m.clear();
        }
    }
}

/// Runs a change that may revoke or rotate keys, then forgets those keys in this process. The
/// change runs in its own task: if the client goes away mid-request, the change still completes
/// and the cache still hears of it. (Other processes hear of it from the store, which sends
/// `NOTIFY roost_keys` inside the change's transaction.)
pub async fn revoking<T, F, Fut>(st: &AppState, change: F) -> ApiResult<T>
where
    T: RevokedKeys + Send + 'static,
    F: FnOnce(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = roost_store::Result<T>> + Send,
{
    let st = st.clone();
    let task = tokio::spawn(async move {
        let result = change(st.clone()).await;
        if let Ok(done) = &result {
            st.keys.forget(done.revoked_keys());
        }
        result
    });
    Ok(task.await.map_err(ApiError::internal)??)
}

/// The outcome of a change that may have revoked keys.
pub trait RevokedKeys {
    /// The ids of the keys the change revoked or rotated.
    fn revoked_keys(&self) -> &[String];
}

impl RevokedKeys for Vec<String> {
    fn revoked_keys(&self) -> &[String] {
        self
    }
}

impl RevokedKeys for roost_store::Accepted {
    fn revoked_keys(&self) -> &[String] {
        &self.revoked_keys
    }
}

/// Listens for key changes made by other processes and forgets those keys here. Whenever the
/// connection drops, what was said meanwhile is lost, so the whole cache is dropped.
pub fn spawn_key_listener(database_url: String, cache: Arc<KeyCache>) {
    tokio::spawn(async move {
        loop {
            match sqlx::postgres::PgListener::connect(&database_url).await {
                Ok(mut l) => {
                    if l.listen(KEY_CHANNEL).await.is_ok() {
                        cache.clear();
                        loop {
                            match l.try_recv().await {
                                Ok(Some(n)) => cache.forget(&[n.payload().to_string()]),
                                // The connection was lost and is re-established by the listener.
                                Ok(None) => {
                                    tracing::warn!("key listener reconnected; dropping the key cache");
                                    cache.clear();
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "key listener failed; reconnecting");
                                    cache.clear();
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "key listener cannot connect; retrying"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

/// Argon2id password hashing, run off the async threads.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password, verified against when an email is unknown, so that a login
    /// takes the same time whether or not the account exists.
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    /// Hashing with the given memory (KiB) and iteration costs.
    pub fn new(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params =
            Params::new(memory_kib, iterations, 1, None).map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy = hash_with(&params, &tokens::generate("dummy_"))?;
        Ok(Self { params, dummy: dummy.into() })
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Checks a password against a stored hash (or against the dummy when `hash` is `None`).
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
        .unwrap_or(false);
        ok && known
    }
}

fn hash_with(params: &Params, password: &str) -> anyhow::Result<String> {
    let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    Ok(a.hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("argon2: {e}"))?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_their_own_hash() {
        let p = Passwords::new(64, 1).expect("params");
        let h = p.hash("correct horse battery".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!p.verify("wrong horse battery".into(), Some(h)).await);
        assert!(!p.verify("correct horse battery".into(), None).await);
    }
}
