//! `roost operator create-key|revoke-key|list-keys`: operator keys, made against the server's
//! database (like `roost migrate`), so that whoever can reach the database is the operator.

use roost_domain::IdKind;
use roost_domain::tokens::{self, OPERATOR_KEY_PREFIX};
use roost_store::Store;

/// What `roost operator` does.
#[derive(Debug)]
pub enum OperatorCommand {
    /// Make an operator key named so.
    CreateKey { name: String },
    /// Revoke the operator key with this id.
    RevokeKey { id: String },
    /// List the operator keys.
    ListKeys,
}

#[expect(
    clippy::disallowed_methods,
    reason = "a key's creation time is bookkeeping, read where there is no server clock"
)]
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs an operator command against `store` (migrated first); returns what to print.
pub async fn run(store: &Store, cmd: OperatorCommand) -> anyhow::Result<String> {
    store.migrate().await?;
    match cmd {
        OperatorCommand::CreateKey { name } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                anyhow::bail!("the name must be 1–100 characters without control characters");
            }
            let secret = tokens::generate(OPERATOR_KEY_PREFIX);
            let id = IdKind::OperatorKey.generate();
            store.create_operator_key(&id, name, &tokens::hash(&secret), now_ms()).await?;
            Ok(format!("id: {id}\nname: {name}\nsecret: {secret}\n(the secret is shown once: keep it safe)\n"))
        }
        OperatorCommand::RevokeKey { id } => match store.revoke_operator_key(&id, now_ms()).await {
            Ok(()) => Ok(format!("revoked: {id}\n")),
            Err(roost_store::StoreError::NotFound) => anyhow::bail!("no live operator key {id}"),
            Err(e) => Err(e.into()),
        },
        OperatorCommand::ListKeys => {
            let mut out = String::from("ID                              NAME  REVOKED\n");
            for k in store.operator_keys().await? {
                let revoked = k.revoked_at.map_or_else(|| "no".to_string(), roost_domain::time::to_rfc3339);
                out.push_str(&format!("{}  {}  {}\n", k.id, k.name, revoked));
            }
            Ok(out)
        }
    }
}
