//! `kill -9` in the middle of a stream of charges, then a restart on the same database: nothing
//! acknowledged is lost, nothing is doubled, and retrying what got no answer (with its original
//! Idempotency-Key) either replays the charge committed before the crash or applies it now.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use roost::Client;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::common::{Actor, Fire, Tenant, distinct, idem_key, int, tenant};
use crate::support::{expect_status, list_all};
use roost_test_kit::ledger::{OrgLedger, check_org};
use roost_test_kit::process::Roost;

/// Every charge of this scenario.
const AMOUNT: i64 = 3;
/// Concurrent clients.
const CLIENTS: usize = 32;
/// Requests whose answers are never read.
const LOST: usize = 4;

mod kill_9_while_charging {
    use roost_test_kit::{Backend, FreshDatabase, SKIPPED};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let db = FreshDatabase::sqlite();
        super::kill_9(db.url().to_string(), db.admin_url().to_string()).await;
    }

    pg_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match FreshDatabase::create(Backend::Postgres).await {
            Some(db) => super::kill_9(db.url().to_string(), db.admin_url().to_string()).await,
            None => eprintln!("{SKIPPED}"),
        }
    }
    }
}

/// One request a client sent: who sent it and with which Idempotency-Key.
#[derive(Debug, Clone)]
struct Sent {
    actor: usize,
    key: String,
}

/// Charges from every client in `clients` until its first request that gets no answer.
/// Returns the acknowledged `(request, answer)` pairs and the requests without an answer.
async fn charge_until_cut_off(
    clients: Vec<Client>,
    tag: &str,
    kill: impl Future<Output = ()>,
) -> (Vec<(Sent, Value)>, Vec<Sent>) {
    let mut set = JoinSet::new();
    for (i, c) in clients.into_iter().enumerate() {
        let tag = tag.to_string();
        set.spawn(async move {
            let mut acked = Vec::new();
            for n in 0.. {
                let sent = Sent { actor: i, key: format!("{tag}-{i}-{n}") };
                match c.post_idem("/v1/charges", &sent.key, &Fire::charge(AMOUNT).body).await {
                    Ok(r) if r.status == 201 => acked.push((sent, r.body)),
                    Ok(r) => panic!("client {i}: unexpected answer {} {}", r.status, r.body),
                    Err(_) => return (acked, sent),
                }
            }
            unreachable!()
        });
    }
    kill.await;
    let (mut acked, mut unanswered) = (Vec::new(), Vec::new());
    while let Some(done) = set.join_next().await {
        let (a, u) = done.expect("a charging client panicked");
        acked.extend(a);
        unanswered.push(u);
    }
    (acked, unanswered)
}

/// Sends a charge as API key `a` over a bare connection, and leaves the answer unread.
async fn send_and_forget(base: &str, a: &Actor, key: &str) -> TcpStream {
    let Actor::Key { secret, .. } = a else { panic!("a key actor") };
    let addr = base.trim_start_matches("http://");
    let body = Fire::charge(AMOUNT).body.to_string();
    let req = format!(
        "POST /v1/charges HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\nIdempotency-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(req.as_bytes()).await.unwrap();
    conn
}

/// The charge ids in the org journal, checked for duplicates.
async fn listed_charges(t: &Tenant) -> HashSet<String> {
    let journal = list_all(&t.owner, &format!("/v1/orgs/{}/transactions", t.org), 500).await;
    let charges = journal.iter().filter(|e| e["type"] == "charge");
    assert!(journal.iter().filter(|e| e["type"] == "charge").all(|e| e["amount"] == AMOUNT));
    distinct(charges.map(|e| e["id"].as_str().unwrap().to_string()), "charge ids in the journal")
}

/// The stored idempotency records of this scenario's charges: key → charge id.
fn charge_records(db: &OrgLedger, tag: &str) -> HashMap<String, String> {
    db.idempotency
        .iter()
        .filter(|(k, _)| k.starts_with(tag))
        .map(|(k, (status, body))| {
            assert_eq!(*status, 201, "key {k}: stored {status} {body}");
            (k.clone(), body["$entry"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Checks the stored ledger against the journal: the same charges, `charged` = count × amount,
/// one idempotency record per charge naming it. Returns the charge ids.
async fn consistent(
    t: &Tenant,
    url: &str,
    tag: &str,
    charged_before: i64,
) -> (HashSet<String>, HashMap<String, String>) {
    let listed = listed_charges(t).await;
    let db = check_org(url, &t.org).await;
    let stored = distinct(db.charges.iter().map(|c| c.0.clone()), "stored charge ids");
    assert_eq!(stored, listed, "the journal lists what is stored");
    assert!(db.charges.iter().all(|c| c.1 == AMOUNT));
    assert_eq!(db.charged - charged_before, listed.len() as i64 * AMOUNT, "charged = charges × {AMOUNT}");
    let w = t.wallet().await;
    assert_eq!(
        (int(&w, "charged"), int(&w, "balance")),
        (db.charged, db.balance),
        "the API and the database agree: {w}"
    );
    let records = charge_records(&db, tag);
    let named = distinct(records.values().cloned(), "charge ids named by idempotency records");
    assert_eq!(named, listed, "exactly one idempotency record per charge, and no record without its charge");
    (listed, records)
}

/// Retries every request in `sent` with its original key and body, through `anon`'s server; the
/// answers.
async fn retry(actors: &[Actor], anon: &Client, sent: &[Sent]) -> Vec<(Sent, Value)> {
    let mut set = JoinSet::new();
    for chunk in sent.chunks(sent.len().div_ceil(CLIENTS).max(1)) {
        let work: Vec<(Client, Sent)> = chunk.iter().map(|s| (actors[s.actor].client(anon), s.clone())).collect();
        set.spawn(async move {
            let mut out = Vec::new();
            for (c, s) in work {
                let r = c.post_idem("/v1/charges", &s.key, &Fire::charge(AMOUNT).body).await.unwrap();
                expect_status(&r, 201);
                out.push((s, r.body));
            }
            out
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        out.extend(done.expect("a retrying client panicked"));
    }
    out
}

/// `url` is the servers', `admin` the owner's (for reading the tables under the application).
async fn kill_9(url: String, admin: String) {
    let mut first = Roost::start(crate::ROOST, &url).await;
    let mut t = tenant(&first.client, 1).await;
    let r = t
        .owner
        .post_idem(
            &format!("/v1/orgs/{}/wallets/credits/topups", t.org),
            &idem_key("topup"),
            &json!({"amount": 1_000_000}),
        )
        .await
        .unwrap();
    expect_status(&r, 201);
    let wss = [t.ws[0].as_str(), t.ws[1].as_str()];
    let actors = t.actors(&first.client, 24, CLIENTS - 24, &wss).await;
    let charged_before = int(&t.wallet().await, "charged");
    let tag = idem_key("crash");

    // 32 clients charge as fast as they can; after 1.5 s the server gets SIGKILL mid-stream.
    let clients: Vec<Client> = actors.iter().map(|a| a.client(&first.client)).collect();
    // A few more clients send a charge and never read the answer (a response lost on the way): those
    // are committed long before the kill but never acknowledged, so their retries must replay.
    let mut lost = Vec::new();
    let mut lost_conns = Vec::new();
    let (acked, mut unanswered) = charge_until_cut_off(clients, &tag, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (i, a) in actors.iter().enumerate().take(LOST) {
            let sent = Sent { actor: i, key: format!("{tag}-lost-{i}") };
            lost_conns.push(send_and_forget(&first.base, a, &sent.key).await);
            lost.push(sent);
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(first.running(), "the server died before the kill; log: {}", first.log.display());
        first.kill().await;
    })
    .await;
    drop(lost_conns);
    assert!(!first.running());
    assert_eq!(unanswered.len(), CLIENTS, "every client lost exactly one request to the kill");
    unanswered.extend(lost.iter().cloned());
    assert!(acked.len() >= CLIENTS, "the server acknowledged a fair number of charges first ({})", acked.len());
    let acked_ids = distinct(acked.iter().map(|(_, c)| c["id"].as_str().unwrap().to_string()), "acknowledged ids");

    // A new process on the same database.
    let second = Roost::start(crate::ROOST, &url).await;
    t.owner = t.user_client(&second.client, 0);
    let (committed, records) = consistent(&t, &admin, &tag, charged_before).await;
    let missing: Vec<&String> = acked_ids.difference(&committed).collect();
    assert!(missing.is_empty(), "acknowledged charges lost in the crash: {missing:?}");
    for (s, c) in &acked {
        assert_eq!(records.get(&s.key), c["id"].as_str().map(str::to_string).as_ref(), "record of {}", s.key);
    }
    // What is committed beyond the acknowledged ones came from requests cut off by the kill.
    let unacked_committed: HashSet<String> = committed.difference(&acked_ids).cloned().collect();
    assert!(unacked_committed.len() <= unanswered.len(), "{} unacknowledged charges stored", unacked_committed.len());
    let cut_keys: HashSet<&str> = unanswered.iter().map(|s| s.key.as_str()).collect();
    for (k, id) in &records {
        assert!(
            acked_ids.contains(id) || cut_keys.contains(k.as_str()),
            "charge {id} (key {k}) was neither acknowledged nor cut off"
        );
    }

    for s in &lost {
        assert!(records.contains_key(&s.key), "the charge sent 1.2 s before the kill ({}) is committed", s.key);
    }
    eprintln!(
        "{} charges acknowledged before the kill, {} requests cut off, {} of them committed",
        acked.len(),
        unanswered.len(),
        unacked_committed.len()
    );

    // Retry what got no answer: committed ones replay, the others are applied now.
    let retried = retry(&actors, &second.client, &unanswered).await;
    let retried_ids = distinct(retried.iter().map(|(_, c)| c["id"].as_str().unwrap().to_string()), "retried ids");
    let replayed: HashSet<String> = retried_ids.intersection(&committed).cloned().collect();
    assert_eq!(replayed, unacked_committed, "each charge committed before the crash is replayed to its retry");
    for (s, c) in &retried {
        if let Some(stored) = records.get(&s.key) {
            assert_eq!(c["id"].as_str(), Some(stored.as_str()), "key {} replays its stored charge", s.key);
        }
        assert_eq!(int(c, "amount"), AMOUNT);
        assert_eq!(c["workspace_id"], actors[s.actor].ws(), "{c}");
    }

    // Every request ever sent now has exactly one charge.
    let (after, records) = consistent(&t, &admin, &tag, charged_before).await;
    assert_eq!(after.len(), acked.len() + unanswered.len(), "one charge per request, no more");
    let expected: HashSet<String> = acked_ids.union(&retried_ids).cloned().collect();
    assert_eq!(after, expected);
    assert_eq!(records.len(), acked.len() + unanswered.len());

    // The acknowledged requests replay their answers after the restart, and add nothing.
    let again = retry(&actors, &second.client, &acked.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>()).await;
    let answers: HashMap<&str, &Value> = acked.iter().map(|(s, c)| (s.key.as_str(), c)).collect();
    for (s, c) in &again {
        assert_eq!(c, answers[s.key.as_str()], "the replay of {} is the original answer", s.key);
    }
    let (final_ids, _) = consistent(&t, &admin, &tag, charged_before).await;
    assert_eq!(final_ids, after, "replays charged nothing");
}
