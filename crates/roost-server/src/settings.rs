//! Over 400 lines on purpose, for now: each setting is a field, a default, a `roost.toml` key, a
//! merge, a check and a redacted `Debug` line, kept in one file so that none of the six can be
//! forgotten when a setting is added. Splitting it by feature area (database, HTTP, mail, webhooks,
//! limits, dashboard) is the next step, once the features stop adding settings weekly.
//!
//! Configuration in layers: built-in defaults, then `roost.toml`, then `ROOST_*` environment
//! variables and command-line flags (the binary applies those two through clap).

use std::path::Path;

use roost_domain::{Catalog, Plan};
use serde::Deserialize;

/// Everything the server needs to run.
#[derive(Clone)]
pub struct Settings {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// `sqlite://roost.db` or `postgres://…`.
    pub database_url: String,
    /// The plans on offer.
    pub catalog: Catalog,
    /// The plan of every personal org at signup.
    pub personal_plan: String,
    /// How long a user token lives.
    pub session_ttl_days: u32,
    /// A session unused for this long ends (0: never for idleness, only at `session_ttl_days`).
    pub session_idle_minutes: u32,
    /// Failed sign-ins per account in 15 minutes before further tries wait (429).
    pub login_failures_per_account: u32,
    /// Failed sign-ins per client IP in 15 minutes before further tries wait (429).
    pub login_failures_per_ip: u32,
    /// How long an invitation can be accepted.
    pub invitation_ttl_days: u32,
    /// Argon2id memory cost in KiB (19456 is OWASP's minimum recommendation).
    pub password_hash_memory_kib: u32,
    /// Argon2id iterations.
    pub password_hash_iterations: u32,
    /// Wallet kinds every org has; the first is the default, and `credits` receives the plan's
    /// monthly allocation.
    pub wallet_kinds: Vec<String>,
    /// Ledger writers working in parallel on PostgreSQL (SQLite always uses one).
    pub ledger_shards: usize,
    /// Most ledger commands in one transaction.
    pub ledger_batch_max: usize,
    /// How often the background job turns cycles and expires grants and holds that fell due.
    pub ledger_tick_ms: u64,
    /// Most database connections this process opens (`None`: SQLite 8, PostgreSQL 16).
    pub db_max_connections: Option<u32>,
    /// How long a request waits for a database connection before it is answered 503.
    pub db_acquire_timeout_ms: u64,
    /// Whether `GET /metrics` serves Prometheus metrics.
    pub metrics: bool,
    /// `auto` (JSON when stderr is not a terminal), `text` or `json`.
    pub log_format: String,
    /// Proxies (CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<crate::ops::proxy::Cidr>,
    /// Origins (`https://app.example.com`, or `*`) whose pages may call the API from a browser
    /// (CORS); empty: none, the default.
    pub cors_origins: Vec<String>,
    /// How long a client has to send a request's headers (and, on a kept-alive connection, to
    /// begin its next request).
    pub http_header_timeout_ms: u64,
    /// A connection on which no byte moves either way for this long is closed.
    pub http_idle_timeout_ms: u64,
    /// Most HTTP connections open at once; more wait to be accepted.
    pub http_max_connections: usize,
    /// The dashboard at `/app`: branding and cookies (`[dashboard]` in `roost.toml`).
    pub dashboard: DashboardSettings,
    /// The product's name in mail subjects and bodies.
    pub product_name: String,
    /// Where people reach this server (links in mails point here), without a trailing `/`.
    pub public_url: String,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://…`; `None` writes mail to the log.
    pub smtp_url: Option<String>,
    /// The `From:` of every mail, e.g. `roost <roost@example.com>`.
    pub mail_from: String,
    /// How often the mail sender looks for due mail (it also wakes when a request queues one).
    pub mail_poll_ms: u64,
    /// The DNS server (`ip:port`) that domain verification asks; `None`: the system's resolver.
    pub dns_resolver: Option<String>,
    /// Whether webhook URLs may point at private, loopback and link-local addresses.
    pub webhooks_allow_private: bool,
    /// The waits (ms) before each retry of a failed delivery; after the last, the endpoint is disabled.
    pub webhooks_retry_schedule_ms: Vec<u64>,
    /// How often the delivery worker looks for endpoints with events to deliver.
    pub webhooks_poll_ms: u64,
    /// How long a replica holds an endpoint's lease (renewed with each event delivered).
    pub webhooks_lease_ms: u64,
    /// How old an event must be before it is delivered, or mailed as an alert (covers transactions
    /// still committing).
    pub webhooks_settle_ms: u64,
    /// The longest a delivery may take, connecting included; slower is a failure.
    pub webhooks_timeout_ms: u64,
    /// Whether API-key traffic is rate-limited (the plans' and keys' `rpm`).
    pub rate_limits: bool,
    /// Redis shared by every replica for rate limits (`None`: each process limits alone).
    pub redis_url: Option<String>,
    /// The prefix of every Redis key roost writes.
    pub redis_key_prefix: String,
    /// Single sign-on providers (`[[oidc]]` in `roost.toml`).
    pub oidc: Vec<crate::oidc::ProviderSettings>,
    /// Billing (API.md "Billing"): the Standard Webhooks secret (`whsec_…`) the operator's payment
    /// system signs `POST /v1/billing/payments` with. Set, billing is on: top-ups become purchases
    /// paid before their credits arrive, and only the operator adjusts wallets.
    pub billing_intake_secret: Option<String>,
    /// How long an invoice or an auto-reload may stay unpaid before the org is `past_due` (and
    /// auto-reload pauses).
    pub payment_grace_hours: u32,
}

/// The dashboard's branding and cookie policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// The name shown in the topbar and page titles.
    pub product_name: String,
    /// The accent colour of buttons and links, `#rgb` or `#rrggbb`.
    pub accent_color: String,
    /// A logo shown in the topbar (`https://…` or a path on this server).
    pub logo_url: Option<String>,
    /// `Secure` on the session cookie: `true`, `false`, or unset to follow the request (TLS, or a
    /// proxy's `X-Forwarded-Proto: https`).
    pub secure_cookies: Option<bool>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self { product_name: "roost".into(), accent_color: "#2f5bd3".into(), logo_url: None, secure_cookies: None }
    }
}

impl DashboardSettings {
    /// Checks values that end up in CSS and HTML attributes.
    fn validate(&self) -> Result<(), ConfigError> {
        let hex = self.accent_color.strip_prefix('#').unwrap_or("");
        if !matches!(hex.len(), 3 | 6) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::Invalid("dashboard.accent_color must be #rgb or #rrggbb".into()));
        }
        let name = self.product_name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            return Err(ConfigError::Invalid("dashboard.product_name must be 1–60 characters".into()));
        }
        if let Some(u) = &self.logo_url {
            let ok = (u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/'))
                && !u.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '<');
            if !ok {
                return Err(ConfigError::Invalid("dashboard.logo_url must be an http(s) URL or a path".into()));
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &roost_store::redact(&self.database_url))
            .field("plans", &self.catalog.all().iter().map(|p| p.id.as_str()).collect::<Vec<_>>())
            .field("personal_plan", &self.personal_plan)
            .field("session_ttl_days", &self.session_ttl_days)
            .field("session_idle_minutes", &self.session_idle_minutes)
            .field("login_failures_per_account", &self.login_failures_per_account)
            .field("login_failures_per_ip", &self.login_failures_per_ip)
            .field("invitation_ttl_days", &self.invitation_ttl_days)
            .field("password_hash_memory_kib", &self.password_hash_memory_kib)
            .field("password_hash_iterations", &self.password_hash_iterations)
            .field("wallet_kinds", &self.wallet_kinds)
            .field("ledger_shards", &self.ledger_shards)
            .field("ledger_batch_max", &self.ledger_batch_max)
            .field("ledger_tick_ms", &self.ledger_tick_ms)
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field("metrics", &self.metrics)
            .field("log_format", &self.log_format)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cors_origins", &self.cors_origins)
            .field("http_header_timeout_ms", &self.http_header_timeout_ms)
            .field("http_idle_timeout_ms", &self.http_idle_timeout_ms)
            .field("http_max_connections", &self.http_max_connections)
            .field("dashboard", &self.dashboard)
            .field("product_name", &self.product_name)
            .field("public_url", &self.public_url)
            .field("smtp_url", &self.smtp_url.as_deref().map(roost_store::redact))
            .field("mail_from", &self.mail_from)
            .field("mail_poll_ms", &self.mail_poll_ms)
            .field("dns_resolver", &self.dns_resolver)
            .field("webhooks_allow_private", &self.webhooks_allow_private)
            .field("webhooks_retry_schedule_ms", &self.webhooks_retry_schedule_ms)
            .field("webhooks_poll_ms", &self.webhooks_poll_ms)
            .field("webhooks_lease_ms", &self.webhooks_lease_ms)
            .field("webhooks_settle_ms", &self.webhooks_settle_ms)
            .field("webhooks_timeout_ms", &self.webhooks_timeout_ms)
            .field("rate_limits", &self.rate_limits)
            .field("redis_url", &self.redis_url.as_deref().map(roost_store::redact))
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("oidc", &self.oidc)
            .field("billing_intake_secret", &self.billing_intake_secret.as_ref().map(|_| "***"))
            .field("payment_grace_hours", &self.payment_grace_hours)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://roost.db".into(),
            catalog: Catalog::builtin(),
            personal_plan: "free".into(),
            session_ttl_days: 30,
            session_idle_minutes: 0,
            login_failures_per_account: 10,
            login_failures_per_ip: 100,
            invitation_ttl_days: 7,
            password_hash_memory_kib: 19_456,
            password_hash_iterations: 2,
            wallet_kinds: vec!["credits".into()],
            ledger_shards: 4,
            ledger_batch_max: 1024,
            ledger_tick_ms: 30_000,
            db_max_connections: None,
            db_acquire_timeout_ms: 1500,
            metrics: true,
            log_format: "auto".into(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            http_header_timeout_ms: 10_000,
            http_idle_timeout_ms: 60_000,
            http_max_connections: 1024,
            dashboard: DashboardSettings::default(),
            product_name: "roost".into(),
            public_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            mail_from: "roost <roost@localhost>".into(),
            mail_poll_ms: 5_000,
            dns_resolver: None,
            webhooks_allow_private: false,
            // About 5 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h (API.md).
            webhooks_retry_schedule_ms: vec![5_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000, 86_400_000],
            webhooks_poll_ms: 1_000,
            webhooks_lease_ms: 60_000,
            webhooks_settle_ms: 2_000,
            webhooks_timeout_ms: 10_000,
            rate_limits: true,
            redis_url: None,
            redis_key_prefix: "roost:".into(),
            oidc: Vec::new(),
            billing_intake_secret: None,
            payment_grace_hours: 72,
        }
    }
}

/// The `roost.toml` file. Every key is optional; an unknown key is an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub personal_plan: Option<String>,
    pub session_ttl_days: Option<u32>,
    pub session_idle_minutes: Option<u32>,
    pub login_failures_per_account: Option<u32>,
    pub login_failures_per_ip: Option<u32>,
    pub invitation_ttl_days: Option<u32>,
    pub password_hash_memory_kib: Option<u32>,
    pub password_hash_iterations: Option<u32>,
    pub wallet_kinds: Option<Vec<String>>,
    pub ledger_shards: Option<usize>,
    pub ledger_batch_max: Option<usize>,
    pub ledger_tick_ms: Option<u64>,
    pub db_max_connections: Option<u32>,
    pub db_acquire_timeout_ms: Option<u64>,
    pub metrics: Option<bool>,
    pub log_format: Option<String>,
    pub rate_limits: Option<bool>,
    pub redis_url: Option<String>,
    pub redis_key_prefix: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub cors_origins: Option<Vec<String>>,
    pub http_header_timeout_ms: Option<u64>,
    pub http_idle_timeout_ms: Option<u64>,
    pub http_max_connections: Option<usize>,
    pub product_name: Option<String>,
    pub public_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub mail_poll_ms: Option<u64>,
    pub dns_resolver: Option<String>,
    /// Replaces the built-in plan catalog when present.
    pub plans: Option<Vec<Plan>>,
    /// The dashboard's branding and cookies.
    pub dashboard: Option<DashboardSettings>,
    pub webhooks_allow_private: Option<bool>,
    pub webhooks_retry_schedule_ms: Option<Vec<u64>>,
    pub webhooks_poll_ms: Option<u64>,
    pub webhooks_lease_ms: Option<u64>,
    pub webhooks_settle_ms: Option<u64>,
    pub webhooks_timeout_ms: Option<u64>,
    /// Single sign-on providers; replaces the (empty) default list when present.
    pub oidc: Option<Vec<crate::oidc::ProviderSettings>>,
    pub billing_intake_secret: Option<String>,
    pub payment_grace_hours: Option<u32>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid {path}: {source}")]
    Parse { path: String, source: Box<toml::de::Error> },
    #[error("invalid plan catalog: {0}")]
    Catalog(#[from] roost_domain::plans::CatalogError),
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults overlaid with the file at `path` (if given; a missing default file is fine).
    pub fn load(path: Option<&Path>, required: bool) -> Result<Self, ConfigError> {
        let mut s = Settings::default();
        let Some(path) = path else { return Ok(s) };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(s),
            Err(source) => return Err(ConfigError::Read { path: path.display().to_string(), source }),
        };
        let file: FileConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.display().to_string(), source: Box::new(e) })?;
        s.apply(file)?;
        Ok(s)
    }

    /// Overlays a parsed file on these settings.
    pub fn apply(&mut self, f: FileConfig) -> Result<(), ConfigError> {
        self.apply_webhooks(&f);
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.database_url {
            self.database_url = v;
        }
        if let Some(v) = f.personal_plan {
            self.personal_plan = v;
        }
        if let Some(v) = f.session_ttl_days {
            self.session_ttl_days = v;
        }
        self.session_idle_minutes = f.session_idle_minutes.unwrap_or(self.session_idle_minutes);
        self.login_failures_per_account = f.login_failures_per_account.unwrap_or(self.login_failures_per_account);
        self.login_failures_per_ip = f.login_failures_per_ip.unwrap_or(self.login_failures_per_ip);
        if let Some(v) = f.invitation_ttl_days {
            self.invitation_ttl_days = v;
        }
        if let Some(v) = f.password_hash_memory_kib {
            self.password_hash_memory_kib = v;
        }
        if let Some(v) = f.password_hash_iterations {
            self.password_hash_iterations = v;
        }
        if let Some(v) = f.wallet_kinds {
            self.wallet_kinds = v;
        }
        if let Some(v) = f.ledger_shards {
            self.ledger_shards = v;
        }
        if let Some(v) = f.ledger_batch_max {
            self.ledger_batch_max = v;
        }
        if let Some(v) = f.ledger_tick_ms {
            self.ledger_tick_ms = v;
        }
        if f.db_max_connections.is_some() {
            self.db_max_connections = f.db_max_connections;
        }
        if let Some(v) = f.db_acquire_timeout_ms {
            self.db_acquire_timeout_ms = v;
        }
        if let Some(v) = f.metrics {
            self.metrics = v;
        }
        if let Some(v) = f.log_format {
            self.log_format = v;
        }
        if let Some(v) = f.trusted_proxies {
            self.trusted_proxies = v
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()
                .map_err(|e| ConfigError::Invalid(format!("trusted_proxies: {e}")))?;
        }
        if let Some(v) = f.cors_origins {
            self.cors_origins = v;
        }
        if let Some(v) = f.http_header_timeout_ms {
            self.http_header_timeout_ms = v;
        }
        if let Some(v) = f.http_idle_timeout_ms {
            self.http_idle_timeout_ms = v;
        }
        if let Some(v) = f.http_max_connections {
            self.http_max_connections = v;
        }
        if let Some(v) = f.dashboard {
            self.dashboard = v;
        }
        self.product_name = f.product_name.unwrap_or(std::mem::take(&mut self.product_name));
        self.public_url = f.public_url.unwrap_or(std::mem::take(&mut self.public_url));
        self.smtp_url = f.smtp_url.or(self.smtp_url.take());
        self.mail_from = f.mail_from.unwrap_or(std::mem::take(&mut self.mail_from));
        self.mail_poll_ms = f.mail_poll_ms.unwrap_or(self.mail_poll_ms);
        self.dns_resolver = f.dns_resolver.or(self.dns_resolver.take());
        if let Some(v) = f.rate_limits {
            self.rate_limits = v;
        }
        if f.redis_url.is_some() {
            self.redis_url = f.redis_url;
        }
        if let Some(v) = f.redis_key_prefix {
            self.redis_key_prefix = v;
        }
        if let Some(v) = f.oidc {
            self.oidc = v;
        }
        self.billing_intake_secret = f.billing_intake_secret.or(self.billing_intake_secret.take());
        self.payment_grace_hours = f.payment_grace_hours.unwrap_or(self.payment_grace_hours);
        let plans = f.plans.unwrap_or_else(|| self.catalog.all().to_vec());
        self.catalog = Catalog::new(plans, &self.personal_plan)?;
        self.validate()
    }

    /// The last use before which a session counts as idle at `now` (`i64::MIN` without a timeout).
    pub fn session_idle_after(&self, now: i64) -> i64 {
        match self.session_idle_minutes {
            0 => i64::MIN,
            m => now - i64::from(m) * 60_000,
        }
    }

    /// Checks values that are in range for their type but not for roost.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.session_ttl_days == 0 || self.invitation_ttl_days == 0 {
            return Err(ConfigError::Invalid("session_ttl_days and invitation_ttl_days must be at least 1".into()));
        }
        if self.password_hash_memory_kib < 8 || self.password_hash_iterations == 0 {
            return Err(ConfigError::Invalid(
                "password_hash_memory_kib must be ≥ 8 and password_hash_iterations ≥ 1".into(),
            ));
        }
        let kind_ok = |k: &String| {
            !k.is_empty()
                && k.len() <= 32
                && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if self.wallet_kinds.is_empty() || !self.wallet_kinds.iter().all(kind_ok) {
            return Err(ConfigError::Invalid(
                "wallet_kinds must list at least one kind of 1–32 of a-z, 0-9, _ (e.g. [\"credits\", \"ai\"])".into(),
            ));
        }
        if !(1..=64).contains(&self.ledger_shards) || !(1..=10_000).contains(&self.ledger_batch_max) {
            return Err(ConfigError::Invalid("ledger_shards must be 1–64 and ledger_batch_max 1–10000".into()));
        }
        if self.ledger_tick_ms < 10 {
            return Err(ConfigError::Invalid("ledger_tick_ms must be at least 10".into()));
        }
        if self.db_max_connections.is_some_and(|n| !(1..=1000).contains(&n))
            || !(100..=60_000).contains(&self.db_acquire_timeout_ms)
        {
            return Err(ConfigError::Invalid(
                "db_max_connections must be 1–1000 and db_acquire_timeout_ms 100–60000".into(),
            ));
        }
        if !["auto", "text", "json"].contains(&self.log_format.as_str()) {
            return Err(ConfigError::Invalid("log_format must be \"auto\", \"text\" or \"json\"".into()));
        }
        if self.http_header_timeout_ms < 100 || self.http_idle_timeout_ms < 100 || self.http_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http_header_timeout_ms and http_idle_timeout_ms must be at least 100 and http_max_connections at least 1"
                    .into(),
            ));
        }
        for o in &self.cors_origins {
            crate::ops::cors::check_origin(o).map_err(ConfigError::Invalid)?;
        }
        self.dashboard.validate()?;
        self.validate_mail()?;
        self.validate_webhooks()?;
        crate::oidc::validate(&self.oidc).map_err(ConfigError::Invalid)?;
        self.validate_billing()?;
        Catalog::new(self.catalog.all().to_vec(), &self.personal_plan)?;
        Ok(())
    }

    /// Whether billing is on: a payment system (or the operator by hand) settles purchases.
    pub fn billing_on(&self) -> bool {
        self.billing_intake_secret.is_some()
    }

    /// The grace period in milliseconds.
    pub fn payment_grace_ms(&self) -> i64 {
        i64::from(self.payment_grace_hours) * 3_600_000
    }

    fn validate_billing(&self) -> Result<(), ConfigError> {
        if let Some(s) = &self.billing_intake_secret
            && crate::webhooks::sign::sign(s, "check", 0, "").is_none()
        {
            return Err(ConfigError::Invalid(
                "billing_intake_secret must be `whsec_` and base64, e.g. \"whsec_$(openssl rand -base64 32)\"".into(),
            ));
        }
        if self.payment_grace_hours == 0 || self.payment_grace_hours > 24 * 365 {
            return Err(ConfigError::Invalid("payment_grace_hours must be 1–8760".into()));
        }
        Ok(())
    }

    fn apply_webhooks(&mut self, f: &FileConfig) {
        if let Some(v) = f.webhooks_allow_private {
            self.webhooks_allow_private = v;
        }
        if let Some(v) = &f.webhooks_retry_schedule_ms {
            self.webhooks_retry_schedule_ms.clone_from(v);
        }
        for (from, to) in [
            (f.webhooks_poll_ms, &mut self.webhooks_poll_ms),
            (f.webhooks_lease_ms, &mut self.webhooks_lease_ms),
            (f.webhooks_settle_ms, &mut self.webhooks_settle_ms),
            (f.webhooks_timeout_ms, &mut self.webhooks_timeout_ms),
        ] {
            if let Some(v) = from {
                *to = v;
            }
        }
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        if self.webhooks_poll_ms < 10 || !(100..=60_000).contains(&self.webhooks_timeout_ms) {
            return Err(ConfigError::Invalid(
                "webhooks_poll_ms must be at least 10 and webhooks_timeout_ms 100–60000".into(),
            ));
        }
        // A lease shorter than one delivery could let a second replica deliver the same event.
        if self.webhooks_lease_ms < self.webhooks_timeout_ms + 1_000 {
            return Err(ConfigError::Invalid("webhooks_lease_ms must be at least webhooks_timeout_ms + 1000".into()));
        }
        if self.webhooks_retry_schedule_ms.len() > 50 {
            return Err(ConfigError::Invalid("webhooks_retry_schedule_ms may list at most 50 waits".into()));
        }
        Ok(())
    }

    /// The database pool's size and timeout.
    pub fn pool(&self) -> roost_store::PoolSettings {
        roost_store::PoolSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: std::time::Duration::from_millis(self.db_acquire_timeout_ms),
        }
    }

    /// Checks the mail settings: a usable sender address, a base URL for links, an SMTP URL.
    fn validate_mail(&self) -> Result<(), ConfigError> {
        if self.product_name.trim().is_empty() || self.product_name.chars().any(char::is_control) {
            return Err(ConfigError::Invalid("product_name must be a non-empty line of text".into()));
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://"))
            || self.public_url.ends_with('/')
        {
            return Err(ConfigError::Invalid(
                "public_url must be an http(s) URL without a trailing / (e.g. https://roost.example.com)".into(),
            ));
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "mail_from `{}` is not a mail address (e.g. \"roost <roost@example.com>\")",
                self.mail_from
            )));
        }
        if let Some(u) = &self.smtp_url
            && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
        {
            return Err(ConfigError::Invalid(format!(
                "smtp_url `{}` must start with smtp:// or smtps://",
                roost_store::redact(u)
            )));
        }
        if self.login_failures_per_account == 0 || self.login_failures_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "login_failures_per_account and login_failures_per_ip must be at least 1".into(),
            ));
        }
        if let Some(r) = &self.dns_resolver
            && r.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::Invalid(format!("dns_resolver `{r}` must be ip:port (e.g. 127.0.0.1:53)")));
        }
        if self.mail_poll_ms < 10 {
            return Err(ConfigError::Invalid("mail_poll_ms must be at least 10".into()));
        }
        Ok(())
    }
}

/// A commented example `roost.toml`, printed by `roost config default`.
pub const EXAMPLE_CONFIG: &str = include_str!("roost.example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let mut s = Settings::default();
        let f: FileConfig = toml::from_str("listen = \"0.0.0.0:9000\"\nsession_ttl_days = 2").expect("parses");
        s.apply(f).expect("valid");
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.session_ttl_days, 2);
        assert_eq!(s.database_url, "sqlite://roost.db");
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }

    #[test]
    fn the_example_config_is_valid() {
        let f: FileConfig = toml::from_str(EXAMPLE_CONFIG).expect("example parses");
        Settings::default().apply(f).expect("example is valid");
    }

    #[test]
    fn a_catalog_without_the_personal_plan_is_refused() {
        let f: FileConfig = toml::from_str(
            "[[plans]]\nid = \"x\"\nname = \"X\"\npaid = true\nseats_included = 1\nmax_seats = 1\nextra_seat_price = 0\nmax_workspaces = 1\nmonthly_credits = 1\nrollover_cap = 0\nrpm = 1\ntrial_days = 0\n",
        )
        .expect("parses");
        assert!(matches!(Settings::default().apply(f), Err(ConfigError::Catalog(_))));
    }

    #[test]
    fn dashboard_branding_is_checked() {
        let f: FileConfig =
            toml::from_str("[dashboard]\nproduct_name = \"Acme\"\naccent_color = \"#0a0\"").expect("parses");
        let mut s = Settings::default();
        s.apply(f).expect("valid");
        assert_eq!(s.dashboard.product_name, "Acme");
        assert_eq!(s.dashboard.accent_color, "#0a0");
        for bad in ["accent_color = \"red; x\"", "logo_url = \"javascript:x\"", "product_name = \"\""] {
            let f: FileConfig = toml::from_str(&format!("[dashboard]\n{bad}")).expect("parses");
            assert!(Settings::default().apply(f).is_err(), "{bad} accepted");
        }
        assert!(toml::from_str::<FileConfig>("[dashboard]\ncolour = \"#fff\"").is_err());
    }

    #[test]
    fn cors_origins_are_checked() {
        let f: FileConfig = toml::from_str("cors_origins = [\"https://app.example.com/path\"]").expect("parses");
        assert!(Settings::default().apply(f).is_err(), "an origin with a path was accepted");
        let f: FileConfig =
            toml::from_str("cors_origins = [\"https://app.example.com\", \"http://localhost:5173\"]").expect("parses");
        let mut s = Settings::default();
        s.apply(f).expect("valid origins");
        assert_eq!(s.cors_origins, ["https://app.example.com", "http://localhost:5173"]);
        assert!(Settings::default().cors_origins.is_empty(), "CORS must be off by default");
    }

    #[test]
    fn debug_hides_the_database_password() {
        let s = Settings { database_url: "postgres://u:hunter2@h/db".into(), ..Settings::default() };
        assert!(!format!("{s:?}").contains("hunter2"));
        let s = Settings { smtp_url: Some("smtp://u:mailpass@h:25".into()), ..Settings::default() };
        assert!(!format!("{s:?}").contains("mailpass"));
    }
}
