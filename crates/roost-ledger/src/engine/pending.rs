//! What batches still committing have written, as the preparer must see it: the database does not
//! show it yet, but the next batch is applied on top of it. Books carry most of that state; this
//! carries the rest — holds, idempotency records and the charges replays are rebuilt from.

use std::collections::{HashMap, VecDeque};

use roost_store::{EntryRow, HoldRow, LedgerWrites};

use crate::outcome::Stored;

/// One in-flight batch's writes that books do not hold.
#[derive(Debug, Default)]
struct Layer {
    seq: u64,
    holds: HashMap<String, HoldRow>,
    /// `(org, key)` → `(fingerprint, record)`.
    idem: HashMap<(String, String), (String, Option<Stored>)>,
    /// Charges by id.
    entries: HashMap<String, EntryRow>,
}

/// The writes of the batches prepared but not yet known to be committed, oldest first.
#[derive(Debug, Default)]
pub(super) struct Pending {
    layers: VecDeque<Layer>,
}

impl Pending {
    /// Remembers batch `seq`'s writes.
    pub(super) fn push(&mut self, seq: u64, w: &LedgerWrites) {
        let mut l = Layer { seq, ..Layer::default() };
        for h in &w.holds {
            l.holds.insert(h.id.clone(), h.clone());
        }
        for r in &w.idempotency {
            l.idem.insert((r.org_id.clone(), r.key.clone()), (r.fingerprint.clone(), Stored::decode(&r.record)));
        }
        for e in &w.entries {
            // A charge answered with success keeps its key on its entry, not in `idempotency`.
            if let (Some(key), Some(fp)) = (&e.idem_key, &e.idem_fp) {
                let record = Stored::Entry { entry: e.id.clone() };
                l.idem.insert((e.org_id.clone(), key.clone()), (fp.clone(), Some(record)));
            }
            l.entries.insert(e.id.clone(), e.clone());
        }
        self.layers.push_back(l);
    }

    /// Forgets batches up to `seq`: committed, so the database shows them now.
    pub(super) fn committed(&mut self, seq: u64) {
        while self.layers.front().is_some_and(|l| l.seq <= seq) {
            self.layers.pop_front();
        }
    }

    /// Forgets everything (the books are dropped too, and reloaded from the database).
    pub(super) fn clear(&mut self) {
        self.layers.clear();
    }

    /// The newest in-flight version of hold `id`.
    pub(super) fn hold(&self, id: &str) -> Option<&HoldRow> {
        self.layers.iter().rev().find_map(|l| l.holds.get(id))
    }

    /// The in-flight holds of `org`, newest version of each.
    pub(super) fn holds_of(&self, org: &str) -> HashMap<String, HoldRow> {
        let mut out = HashMap::new();
        for l in &self.layers {
            for h in l.holds.values().filter(|h| h.org_id == org) {
                out.insert(h.id.clone(), h.clone());
            }
        }
        out
    }

    /// An in-flight idempotency record.
    pub(super) fn idem(&self, org: &str, key: &str) -> Option<&(String, Option<Stored>)> {
        let k = (org.to_string(), key.to_string());
        self.layers.iter().rev().find_map(|l| l.idem.get(&k))
    }

    /// An in-flight journal entry.
    pub(super) fn entry(&self, id: &str) -> Option<&EntryRow> {
        self.layers.iter().rev().find_map(|l| l.entries.get(id))
    }
}
