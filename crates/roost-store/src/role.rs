//! The PostgreSQL role roost's server connects as: neither superuser nor the tables' owner, so
//! that row-level security binds it (`roost setup-postgres` prints or applies [`setup_sql`]).

use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store, StoreError};

/// The role `roost setup-postgres` makes when no `--role` is given.
pub const DEFAULT_ROLE: &str = "roost_app";

/// Whether `name` is a role name roost will write into SQL: lowercase letters, digits and `_`,
/// starting with a letter or `_`, at most 63 characters.
pub fn valid_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
}

/// The SQL that creates (if missing) the login role `role` — NOSUPERUSER, NOBYPASSRLS, owning
/// nothing — and grants it what the server needs in the current database and schema: USAGE on
/// the schema, SELECT/INSERT/UPDATE/DELETE on the tables (on the migrations' record only
/// SELECT), USAGE on sequences, EXECUTE on the `roost_*` functions,
/// and the same on what later migrations create (default privileges of the role that runs this,
/// which must be the role that runs `roost migrate`, the owner). Idempotent. `password`, if
/// given, is set as the role's password.
pub fn setup_sql(role: &str, password: Option<&str>) -> Result<String> {
    if !valid_role_name(role) {
        return Err(StoreError::Setup(format!(
            "`{role}` is not a usable role name: use lowercase letters, digits and _ (not starting with pg_)"
        )));
    }
    let password = match password {
        Some(p) if p.contains('\0') || p.contains("$roost$") => {
            return Err(StoreError::Setup("the password contains a NUL byte or `$roost$`".into()));
        }
        Some(p) => format!("EXECUTE format('ALTER ROLE %I PASSWORD %L', r, '{}');\n    ", p.replace('\'', "''")),
        None => String::new(),
    };
    Ok(format!(
        r#"-- roost's application role: row-level security binds it (it is neither superuser nor owner).
-- Run as the owner of roost's tables (the role that runs `roost migrate`), in roost's database,
-- with roost's schema first on the search_path.
DO $roost$
DECLARE
    r text := '{role}';
    s text := current_schema();
BEGIN
    IF r = current_user THEN
        RAISE EXCEPTION 'the application role must not be the owner (%) that runs this', current_user;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', r);
    END IF;
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION', r);
    {password}EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', s, r);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', s, r);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', s, r);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', s, r);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I', s, r);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT EXECUTE ON FUNCTIONS TO %I', s, r);
    -- Only the owner records migrations.
    IF to_regclass(format('%I.roost_migrations', s)) IS NOT NULL THEN
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.roost_migrations FROM %I', s, r);
    END IF;
END
$roost$;
"#
    ))
}

/// Who the store is connected as, on PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbRole {
    pub name: String,
    pub superuser: bool,
    pub bypass_rls: bool,
    /// Whether the role owns (or is a member of the owner of) roost's tables.
    pub owner: bool,
}

impl DbRole {
    /// Why row-level security does not bind this role, if it does not.
    pub fn unbound_reason(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.superuser {
            why.push("is a superuser");
        }
        if self.bypass_rls {
            why.push("has BYPASSRLS");
        }
        if self.owner {
            why.push("owns roost's tables");
        }
        (!why.is_empty()).then(|| {
            format!(
                "the database role `{}` {}: row-level security does not bind it. Run the server as the role `roost setup-postgres` makes (the owner only runs `roost migrate`)",
                self.name,
                why.join(" and ")
            )
        })
    }
}

impl Store {
    /// Applies [`setup_sql`] (connected as the owner). PostgreSQL only.
    pub async fn setup_role(&self, role: &str, password: Option<&str>) -> Result<()> {
        if !self.dialect.row_security() {
            return Err(StoreError::Setup("setup-postgres needs a postgres:// database URL".into()));
        }
        let sql = setup_sql(role, password)?;
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&self.pool).await?;
        Ok(())
    }

    /// The role the store is connected as (PostgreSQL; `None` elsewhere).
    pub async fn db_role(&self) -> Result<Option<DbRole>> {
        if !self.dialect.row_security() {
            return Ok(None);
        }
        let r = sqlx::query(
            "SELECT current_user::TEXT AS name, CAST(r.rolsuper AS INT) AS su, CAST(r.rolbypassrls AS INT) AS bypass, \
             CAST(COALESCE((SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c \
             WHERE c.oid = to_regclass('roost_migrations')), false) AS INT) AS owner \
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(DbRole {
            name: r.try_get("name")?,
            superuser: r.try_get::<i32, _>("su")? != 0,
            bypass_rls: r.try_get::<i32, _>("bypass")? != 0,
            owner: r.try_get::<i32, _>("owner")? != 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_and_passwords_cannot_break_out() {
        assert!(valid_role_name("roost_app"));
        for bad in ["", "Roost", "a-b", "x; DROP", "pg_monitor", "1abc", "a'b"] {
            assert!(!valid_role_name(bad), "{bad}");
            assert!(setup_sql(bad, None).is_err());
        }
        let sql = setup_sql("roost_app", Some("it's")).expect("a valid role");
        assert!(sql.contains("'it''s'"), "{sql}");
        assert!(sql.contains("NOSUPERUSER NOBYPASSRLS"));
    }

    #[test]
    fn a_role_rls_does_not_bind_is_named_at_start() {
        let app = DbRole { name: "roost_app".into(), superuser: false, bypass_rls: false, owner: false };
        assert_eq!(app.unbound_reason(), None);
        let owner = DbRole { name: "postgres".into(), superuser: true, bypass_rls: true, owner: true };
        let why = owner.unbound_reason().expect("a warning");
        assert!(why.contains("`postgres` is a superuser and has BYPASSRLS and owns roost's tables"), "{why}");
        assert!(why.contains("roost setup-postgres"), "{why}");
    }
}
