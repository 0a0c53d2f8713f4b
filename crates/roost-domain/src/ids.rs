//! TypeIDs: a type prefix, `_`, and a UUIDv7 in Crockford base32 (26 lowercase characters).
//! Because UUIDv7 leads with the creation time and the alphabet is in ASCII order, ids of one
//! kind sort by creation time as plain strings; the store paginates on that.

use uuid::Uuid;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The kinds of object that carry a TypeID, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Org,
    Workspace,
    User,
    Key,
    Invitation,
    Resource,
    Wallet,
    Grant,
    Charge,
    Hold,
    Audit,
    Webhook,
    Event,
    /// A mail in the outbox.
    Mail,
    /// A signed-in session (its id, never its token).
    Session,
    /// A mail domain an org claims.
    Domain,
    /// An entry of a workspace's history.
    History,
    /// An invoice (`bill_`: `inv_` names invitations).
    Invoice,
    /// A purchase of credits.
    Purchase,
    /// An operator key.
    OperatorKey,
}

impl IdKind {
    /// The prefix written before the `_`.
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Org => "org",
            IdKind::Workspace => "ws",
            IdKind::User => "usr",
            IdKind::Key => "key",
            IdKind::Invitation => "inv",
            IdKind::Resource => "res",
            IdKind::Wallet => "wal",
            IdKind::Grant => "grt",
            IdKind::Charge => "chg",
            IdKind::Hold => "hold",
            IdKind::Audit => "aud",
            IdKind::Webhook => "whk",
            IdKind::Event => "evt",
            IdKind::Mail => "mail",
            IdKind::Session => "ses",
            IdKind::Domain => "dom",
            IdKind::History => "his",
            IdKind::Invoice => "bill",
            IdKind::Purchase => "pur",
            IdKind::OperatorKey => "opk",
        }
    }

    /// A fresh id of this kind.
    pub fn generate(self) -> String {
        format!("{}_{}", self.prefix(), encode(Uuid::now_v7().as_u128()))
    }

    /// The smallest id of this kind that a process could make `ms_ago` milliseconds before now
    /// (by the clock UUIDv7 reads): every id made earlier sorts below it. The webhook worker reads
    /// only events below such a bound, so that an event whose transaction is still committing
    /// is not passed over by a cursor that moved on to a later id.
    pub fn floor_ms_ago(self, ms_ago: u64) -> String {
        let (secs, nanos) = Uuid::now_v7().get_timestamp().map_or((0, 0), |t| t.to_unix());
        let ms = (u128::from(secs) * 1000 + u128::from(nanos / 1_000_000)).saturating_sub(u128::from(ms_ago));
        format!("{}_{}", self.prefix(), encode(ms << 80))
    }

    /// Whether `s` is well-formed as an id of this kind. Handlers check path ids with this first,
    /// so a malformed id is simply "not found" and never reaches the database.
    pub fn is_valid(self, s: &str) -> bool {
        let Some(rest) = s.strip_prefix(self.prefix()).and_then(|r| r.strip_prefix('_')) else {
            return false;
        };
        rest.len() == 26 && rest.as_bytes()[0] <= b'7' && rest.bytes().all(|b| ALPHABET.contains(&b))
    }
}

fn encode(mut v: u128) -> String {
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_sortable_and_typed() {
        let a = IdKind::Org.generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = IdKind::Org.generate();
        assert!(a.starts_with("org_") && a.len() == 30, "{a}");
        assert!(IdKind::Org.is_valid(&a));
        assert!(!IdKind::Workspace.is_valid(&a));
        assert!(a < b, "v7 ids sort by time: {a} {b}");
        assert!(!IdKind::Org.is_valid("org_"));
        assert!(!IdKind::Org.is_valid("org_8zzzzzzzzzzzzzzzzzzzzzzzzz"));
        assert!(!IdKind::Org.is_valid("org_0000000000000000000000000u"));
        assert!(!IdKind::Org.is_valid("org_00000000000000000000000000' OR 1=1"));
    }

    #[test]
    fn a_floor_sorts_between_older_and_newer_ids() {
        let old = IdKind::Event.generate();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let floor = IdKind::Event.floor_ms_ago(10);
        assert!(old < floor, "{old} < {floor}");
        assert!(floor < IdKind::Event.generate());
        assert!(IdKind::Event.floor_ms_ago(0) > old);
    }

    #[test]
    fn encoding_is_the_typeid_alphabet() {
        assert_eq!(encode(0), "00000000000000000000000000");
        assert_eq!(encode(u128::MAX), "7zzzzzzzzzzzzzzzzzzzzzzzzz");
    }
}
