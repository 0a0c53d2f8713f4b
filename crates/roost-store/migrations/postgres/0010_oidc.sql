-- Single sign-on (OpenID Connect). A sign-in started at a provider: its `state` (stored as SHA-256
-- only), the nonce and PKCE verifier the provider's answer must match, and where the one-time code
-- goes afterwards. Single use, expires in minutes.
CREATE TABLE oidc_logins (
    state_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oidc_logins_expires ON oidc_logins (expires_at);

-- The one-time code a finished sign-in hands to its client (the dashboard, the CLI), exchanged
-- once for a session. Stored as SHA-256 only.
CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    provider TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oidc_codes_expires ON oidc_codes (expires_at);
