//! The splits of a charge, hold or expiry: which grants it drew from, and how much from each.

use roost_domain::ledger::Splits;
use serde_json::Value;

/// Decodes splits as the ledger stores them: `grt_…:n,grt_…:m` (empty for none), with the
/// domain's own decoder.
///
/// Strict: a malformed part is an error, never skipped, so a corrupt row cannot pass a check.
pub fn decode(s: &str) -> Result<Vec<(String, i64)>, String> {
    let splits = Splits::decode(s).ok_or_else(|| format!("bad splits {s:?}"))?;
    Ok(splits.0.into_iter().map(|p| (p.grant_id, p.amount)).collect())
}

/// The splits of a charge or hold as the API shows them (`"splits": [{"grant_id", "amount"}]`),
/// as `(grant_id, amount)`; panics when the view has none or one is malformed.
#[track_caller]
pub fn of(view: &Value) -> Vec<(String, i64)> {
    view["splits"]
        .as_array()
        .unwrap_or_else(|| panic!("no splits: {view}"))
        .iter()
        .map(|p| match (p["grant_id"].as_str(), p["amount"].as_i64()) {
            (Some(g), Some(a)) => (g.to_string(), a),
            _ => panic!("malformed split {p} in {view}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_stored_splits_strictly() {
        assert_eq!(decode(""), Ok(vec![]));
        assert_eq!(decode("grt_a:3,grt_b:4"), Ok(vec![("grt_a".into(), 3), ("grt_b".into(), 4)]));
        assert!(decode("grt_a:3,grt_b").is_err());
        assert!(decode("grt_a:x").is_err());
    }
}
