//! The credit commands of the `roost` CLI (`credits`, `usage`, `budget`), run as a real process
//! against a test server, with charges made over HTTP as a product would make them. Its `Cli`
//! harness is shared with `cli_manage.rs`.
use std::path::PathBuf;
use std::process::Stdio;

use roost::Client;
use serde_json::{Value, json};

use roost_test_kit::{Backend, TestServer};

use crate::support::{expect_problem, expect_status};

const PASSWORD: &str = "correct horse battery";

/// One person's CLI: the binary with their own `ROOST_CONFIG_DIR`.
pub(crate) struct Cli {
    dir: PathBuf,
    base: String,
}

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        &self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the failure shape: exit 1, nothing on stdout, exactly one `error: …` line on stderr.
    #[track_caller]
    pub(crate) fn failed(&self) -> &str {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        assert_eq!(self.stdout, "", "a failing command printed to stdout: {self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "expected one stderr line: {self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
        self.stderr.trim_end()
    }
}

impl Cli {
    pub(crate) fn new(s: &TestServer) -> Self {
        let dir = std::env::temp_dir().join("roost-cli-tests").join(roost_domain::IdKind::User.generate());
        std::fs::create_dir_all(&dir).expect("config dir");
        Self { dir, base: s.base.clone() }
    }

    /// The user token the CLI saved at signup.
    pub(crate) fn token(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("config.json")).expect("read config");
        let config: Value = serde_json::from_str(&text).expect("config is JSON");
        config["token"].as_str().expect("saved token").to_string()
    }

    /// Runs `roost ARGS --server <base>`.
    pub(crate) async fn run(&self, args: &[&str]) -> Out {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_roost"))
            .args(args)
            .args(["--server", &self.base])
            .env("ROOST_CONFIG_DIR", &self.dir)
            .env_remove("ROOST_SERVER")
            .env_remove("ROOST_PASSWORD")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run roost");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }

    /// Signs up through the CLI; returns `(user id, email)`.
    pub(crate) async fn signup(&self, name: &str) -> (String, String) {
        let email = format!("{}-{}@example.com", name.to_lowercase(), roost_domain::IdKind::User.generate());
        let body =
            self.run(&["signup", "--email", &email, "--name", name, "--password", PASSWORD, "--json"]).await.json();
        (body["user"]["id"].as_str().expect("user id").to_string(), email)
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The whitespace-separated cells of the first line of `table` whose first cell is `first`.
#[track_caller]
pub(crate) fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.first().is_some_and(|c| c == first))
        .unwrap_or_else(|| panic!("no row starting with `{first}` in:\n{table}"))
}

/// The value of a `key: value` line.
#[track_caller]
pub(crate) fn pair<'a>(out: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}:");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `{key}:` line in:\n{out}"))
}

pub(crate) fn num(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The `credits` wallet of a `credits balance --json` answer.
#[track_caller]
fn credits_wallet(balance: &Value) -> &Value {
    let wallets = balance["items"].as_array().expect("wallet items");
    assert_eq!(wallets.len(), 1, "{balance}");
    assert_eq!(wallets[0]["kind"], "credits", "{balance}");
    &wallets[0]
}

async fn charge(as_user: &Client, key: &str, amount: i64) -> roost::Response {
    as_user.post_idem("/v1/charges", key, &json!({"amount": amount, "action": "llm.tokens"})).await.unwrap()
}

/// Alice runs a business org's credits from the CLI: balance, top-ups (idempotent), the journal,
/// usage by member, and a workspace budget that stops a charge over HTTP until it is removed.
async fn cli_credits(s: TestServer) {
    let alice = Cli::new(&s);
    let (alice_id, alice_email) = alice.signup("Alice").await;

    // Without --org, the org of the active workspace: still her personal org on `free` (100 a month).
    let personal = alice.run(&["credits", "balance", "--json"]).await.json();
    assert_eq!(num(&credits_wallet(&personal)["balance"]), 100, "{personal}");

    let created = alice.run(&["orgs", "create", "Acme", "--plan", "business", "--json"]).await.json();
    let org = created["org"]["id"].as_str().expect("org id").to_string();
    let ws = created["workspace"]["id"].as_str().expect("workspace id").to_string();

    // The new org's wallet, named by the org's name: this cycle's 5,000 allocation.
    let out = alice.run(&["credits", "balance", "--org", "Acme"]).await;
    let table = out.ok();
    assert!(table.starts_with("KIND  "), "{table}");
    let w = row(table, "credits");
    assert_eq!(&w[2..5], ["5000", "0", "5000"], "balance, held, available: {table}");
    let wallet_id = w[1].clone();
    assert!(wallet_id.starts_with("wal_"), "{table}");
    let balance = alice.run(&["credits", "balance", "--org", &org, "--json"]).await.json();
    let wallet = credits_wallet(&balance);
    assert_eq!(wallet["id"], wallet_id.as_str());
    let grants = wallet["grants"].as_array().expect("grants");
    assert_eq!(grants.len(), 1, "{balance}");
    assert_eq!(grants[0]["source"], "allocation");
    assert_eq!(num(&grants[0]["remaining"]), 5000);
    assert_eq!(grants[0]["expires_at"], wallet["cycle_ends_at"], "the allocation expires at the cycle's end");
    let alloc_id = grants[0]["id"].as_str().expect("grant id").to_string();
    let g = row(table, &alloc_id);
    assert_eq!(g, [alloc_id.as_str(), "credits", "allocation", "5000", "0", wallet["cycle_ends_at"].as_str().unwrap()]);

    // A top-up with a generated key, printed so the command line can be retried safely.
    let out = alice.run(&["credits", "topup", "1000", "--org", "Acme"]).await;
    let topped = out.ok().to_string();
    let key = pair(&topped, "idempotency key").to_string();
    assert!(key.starts_with("cli_") && key.len() > 20, "{topped}");
    assert_eq!(pair(&topped, "wallet"), wallet_id);
    assert_eq!(pair(&topped, "expires"), "never");
    let topup_line = pair(&topped, "topped up");
    assert!(topup_line.starts_with("1000 (grt_"), "{topped}");
    let topup_id = topup_line.trim_start_matches("1000 (").trim_end_matches(')').to_string();

    // The retry with that key replays the same grant; nothing is added twice.
    let again =
        alice.run(&["credits", "topup", "1000", "--org", &org, "--idempotency-key", &key, "--json"]).await.json();
    assert_eq!(again["grant"]["id"], topup_id.as_str(), "{again}");
    assert_eq!(again["grant"]["source"], "topup");
    assert_eq!(num(&again["grant"]["amount"]), 1000);
    assert!(again["grant"]["expires_at"].is_null(), "{again}");
    // The same key for another amount is a conflict: one error line, exit 1.
    let line =
        alice.run(&["credits", "topup", "999", "--org", &org, "--idempotency-key", &key]).await.failed().to_string();
    assert!(line.contains("idempotency_conflict") && line.contains("HTTP 409"), "{line}");

    let out = alice.run(&["credits", "balance", "--org", "Acme"]).await;
    let w = row(out.ok(), "credits");
    assert_eq!(&w[2..5], ["6000", "0", "6000"], "{out:?}");
    assert_eq!(row(out.ok(), &topup_id)[1..], ["credits", "topup", "1000", "0", "never"], "{out:?}");
    let balance = alice.run(&["credits", "balance", "--org", "Acme", "--json"]).await.json();
    let wallet = credits_wallet(&balance);
    assert_eq!((num(&wallet["balance"]), num(&wallet["held"]), num(&wallet["available"])), (6000, 0, 6000));
    assert_eq!((num(&wallet["granted"]), num(&wallet["charged"]), num(&wallet["expired"])), (6000, 0, 0));

    // Alice makes Acme's workspace her active one: commands without --org now mean Acme. A charge
    // over HTTP draws from the allocation (it expires before the top-up, which never does).
    let switched = alice.run(&["ws", "switch", &ws]).await;
    assert!(switched.ok().contains(&ws), "{switched:?}");
    let as_alice = s.client.with_token(&alice.token());
    s.clock.advance(1_000); // the server's clock is a manual one: let the charge come later than the grants
    let c = charge(&as_alice, "charge-1", 300).await;
    expect_status(&c, 201);
    assert_eq!(c.body["workspace_id"], ws.as_str());
    assert_eq!(c.body["splits"], json!([{"grant_id": alloc_id, "amount": 300}]));
    assert_eq!(num(&c.body["balance_after"]), 5700);
    let charge_id = c.str("id").to_string();

    let out = alice.run(&["credits", "history"]).await;
    let table = out.ok();
    assert!(table.starts_with("AT  "), "{table}");
    let line = table.lines().find(|l| l.contains(&charge_id)).unwrap_or_else(|| panic!("charge not listed: {table}"));
    for cell in ["charge", "300", "llm.tokens", &format!("user {alice_id}"), &ws, "5700"] {
        assert!(line.contains(cell), "`{cell}` missing from {line}");
    }
    let line = table.lines().find(|l| l.contains(&topup_id)).unwrap_or_else(|| panic!("top-up not listed: {table}"));
    assert!(line.contains("grant") && line.contains("1000"), "{line}");
    // The org journal (grants included) as JSON, newest first, and one workspace's charges by actor.
    let journal = alice.run(&["credits", "history", "--org", "Acme", "--limit", "2", "--json"]).await.json();
    let entries = journal["items"].as_array().expect("items");
    assert_eq!(entries.len(), 2, "{journal}");
    assert_eq!(entries[0]["id"], charge_id.as_str(), "{journal}");
    assert_eq!(num(&entries[0]["amount"]), 300);
    let mine = alice.run(&["credits", "history", "--workspace", &ws, "--actor", &alice_id, "--json"]).await.json();
    let mine = mine["items"].as_array().expect("items");
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["id"], charge_id.as_str());
    assert_eq!(mine[0]["splits"], json!([{"grant_id": alloc_id, "amount": 300}]));
    // `--org` and `--workspace` together are a usage error (clap's exit 2).
    assert_eq!(alice.run(&["credits", "history", "--org", &org, "--workspace", &ws]).await.code, 2);

    // Usage by member: Alice spent everything, a 100% share.
    let out = alice.run(&["usage", "--by", "member"]).await;
    let table = out.ok();
    assert_eq!(pair(table, "total"), "300 in 1 charges", "{table}");
    assert_eq!(row(table, &alice_id)[1..], [alice_email.as_str(), "300", "1", "100.0%"], "{table}");
    let usage = alice.run(&["usage", "--by", "member", "--org", "Acme", "--json"]).await.json();
    assert_eq!((num(&usage["total"]), num(&usage["count"])), (300, 1), "{usage}");
    assert_eq!(usage["group_by"], "member");
    assert_eq!(usage["groups"], json!([{"key": alice_id, "amount": 300, "count": 1, "share": 1.0}]));
    // A period that ended before anything was charged.
    let empty =
        alice.run(&["usage", "--by", "action", "--from", "2000-01-01T00:00:00Z", "--to", "2000-02-01T00:00:00Z"]).await;
    assert_eq!(pair(empty.ok(), "total"), "0 in 0 charges", "{empty:?}");
    assert!(empty.ok().ends_with("no usage in this period\n"), "{empty:?}");

    // A workspace budget of 500 (300 already drawn this cycle): 201 more is refused over HTTP.
    let ws_name = created["workspace"]["name"].as_str().expect("workspace name");
    let set = alice.run(&["budget", "set", "500", "--workspace", &ws, "--alert", "50,80"]).await;
    let set = set.ok();
    assert_eq!(pair(set, "scope"), "workspace");
    assert_eq!(pair(set, "limit"), "500");
    assert_eq!(pair(set, "used this cycle"), "300");
    // `roost limits` in that workspace: the budget, and the org's available credits.
    let limits = alice.run(&["limits", "--workspace", &ws]).await;
    assert_eq!(row(limits.ok(), "budget")[1..5], ["workspace", "500", "300", "200"], "{limits:?}");
    assert_eq!(row(limits.ok(), "balance")[1..4], ["org", "-", "-"], "{limits:?}");
    let limits = alice.run(&["limits", "--workspace", ws_name, "--json"]).await.json();
    assert_eq!(limits["items"][0]["kind"], "budget", "{limits}");
    assert_eq!(num(&limits["items"][0]["remaining"]), 200, "{limits}");
    assert_eq!(pair(set, "alerts"), "50%, 80%");
    let shown = alice.run(&["budget", "show", "--workspace", ws_name, "--json"]).await.json();
    assert_eq!(shown["limit"], 500, "{shown}");
    assert_eq!(shown["used"], 300);
    assert_eq!(shown["alert_percents"], json!([50, 80]));
    assert_eq!(shown["resets_at"], wallet["cycle_ends_at"]);
    let refused = charge(&as_alice, "charge-2", 201).await;
    expect_problem(&refused, 403, "budget_exceeded");
    assert_eq!(refused.body["scope"], "workspace");
    assert_eq!((num(&refused.body["limit"]), num(&refused.body["used"])), (500, 300), "{}", refused.body);
    // 100 fits and crosses 80% of the limit: a `budget.alert` audit event.
    expect_status(&charge(&as_alice, "charge-3", 100).await, 201);
    let alerts = alice.run(&["audit", &org, "--action", "budget.alert", "--json"]).await.json();
    let alerts = alerts["items"].as_array().expect("audit items");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["workspace_id"], ws.as_str());

    // A member budget, the member named by email.
    let member =
        alice.run(&["budget", "set", "50", "--workspace", &ws, "--member", &alice_email, "--json"]).await.json();
    assert_eq!(member["scope"], "member");
    assert_eq!(member["user_id"], alice_id.as_str());
    assert_eq!((num(&member["limit"]), num(&member["used"])), (50, 400), "{member}");
    let shown = alice.run(&["budget", "show", "--workspace", &ws, "--member", "me"]).await;
    assert_eq!(pair(shown.ok(), "member"), alice_id);
    assert_eq!(pair(shown.ok(), "limit"), "50");
    let refused = charge(&as_alice, "charge-4", 1).await;
    expect_problem(&refused, 403, "budget_exceeded");
    assert_eq!(refused.body["scope"], "member");
    let removed = alice.run(&["budget", "set", "none", "--workspace", &ws, "--member", "me"]).await;
    assert_eq!(pair(removed.ok(), "limit"), "none");

    // `none` removes the workspace budget: the refused charge now goes through.
    let removed = alice.run(&["budget", "set", "none", "--workspace", &ws]).await;
    assert_eq!(pair(removed.ok(), "limit"), "none", "{removed:?}");
    let shown = alice.run(&["budget", "show", "--workspace", &ws, "--json"]).await.json();
    assert!(shown["limit"].is_null(), "{shown}");
    assert_eq!(shown["used"], 400);
    let c = charge(&as_alice, "charge-5", 201).await;
    expect_status(&c, 201);
    assert_eq!(num(&c.body["balance_after"]), 6000 - 300 - 100 - 201);
    let out = alice.run(&["credits", "balance"]).await;
    assert_eq!(row(out.ok(), "credits")[2..5], ["5399", "0", "5399"], "{out:?}");

    // Errors: a plain member may not top up or read usage; a bad limit is a usage error.
    let bob = Cli::new(&s);
    let (_, bob_email) = bob.signup("Bob").await;
    let grant = format!("{ws}:member");
    let inv =
        alice.run(&["orgs", "invite", "Acme", &bob_email, "--role", "member", "--workspace", &grant, "--json"]).await;
    let token = inv.json()["token"].as_str().expect("invitation token").to_string();
    bob.run(&["invitations", "accept", &token]).await.ok();
    let line = bob.run(&["credits", "topup", "1000", "--org", &org]).await.failed().to_string();
    assert!(line.contains("forbidden") && line.contains("HTTP 403"), "{line}");
    let line = bob.run(&["usage", "--by", "member", "--org", "Acme"]).await.failed().to_string();
    assert!(line.contains("forbidden") && line.contains("HTTP 403"), "{line}");
    // He may still read the balance, which the refused top-up did not change.
    let balance = bob.run(&["credits", "balance", "--org", &org, "--json"]).await.json();
    assert_eq!(num(&credits_wallet(&balance)["balance"]), 5399);
    let line = bob.run(&["credits", "balance", "--org", "Nope"]).await.failed().to_string();
    assert_eq!(line, "error: no organization named `Nope` that you can see");
    assert_eq!(alice.run(&["budget", "set", "lots", "--workspace", &ws]).await.code, 2);
    assert_eq!(alice.run(&["usage", "--by", "team"]).await.code, 2);
}

/// Regression: the org journal is "newest first" even for entries made in the same millisecond (one batch);
/// they were once ordered by id, whose prefixes differ by type: a charge (`chg_…`) made
/// after a top-up (`grt_…`) in the same millisecond is listed below it, so `balance_after` reads out
/// of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_lists_same_millisecond_entries_in_order() {
    let s = TestServer::start(Backend::Sqlite).await.expect("sqlite server");
    let (owner, _) = s.signup("Owner").await;
    let (org, ws) = s.org(&owner, "Acme", "business").await;
    let r = owner.post_idem(&format!("/v1/orgs/{org}/wallets/credits/topups"), "t1", &json!({"amount": 1000})).await;
    expect_status(&r.unwrap(), 201);
    // The server's clock is a manual one and has not moved: the charge comes in the same millisecond.
    expect_status(&charge(&owner.in_workspace(&ws), "c1", 300).await, 201);
    let journal = owner.get(&format!("/v1/orgs/{org}/transactions")).await.unwrap();
    let balances: Vec<i64> =
        journal.body["items"].as_array().expect("items").iter().map(|e| num(&e["balance_after"])).collect();
    assert_eq!(balances, [5700, 6000, 5000], "newest first: {}", journal.body);
}

both_backends!(cli_credits, cli_alerts_and_auto_reload);

/// Alice sets a low-balance alert and auto-reload from the CLI; a charge over HTTP crosses both:
/// one alert, one reload, seen through `roost events` and `roost credits auto-reload`. Turning
/// auto-reload off keeps its numbers; a plain member may not read it.
async fn cli_alerts_and_auto_reload(s: TestServer) {
    let alice = Cli::new(&s);
    alice.signup("Alice").await;
    let created = alice.run(&["orgs", "create", "Acme", "--plan", "business", "--json"]).await.json();
    let org = created["org"]["id"].as_str().expect("org id").to_string();
    let ws = created["workspace"]["id"].as_str().expect("workspace id").to_string();
    alice.run(&["ws", "switch", &ws]).await.ok();

    // Never set: shown as off with zeros; `--off` changes nothing; `--on` needs the numbers.
    let shown = alice.run(&["credits", "auto-reload"]).await;
    assert_eq!(pair(shown.ok(), "auto-reload"), "off", "{shown:?}");
    assert_eq!(pair(shown.ok(), "amount"), "0", "{shown:?}");
    let wallet_line = pair(shown.ok(), "wallet").to_string();
    assert!(wallet_line.starts_with("credits (wal_"), "{shown:?}");
    assert_eq!(pair(alice.run(&["credits", "auto-reload", "--off"]).await.ok(), "auto-reload"), "off");
    let line = alice.run(&["credits", "auto-reload", "--on"]).await.failed().to_string();
    assert!(line.contains("--amount"), "{line}");

    let set = alice.run(&["credits", "alerts", "--low-balance", "4000", "--org", "Acme"]).await;
    assert_eq!(pair(set.ok(), "low-balance alert"), "below 4000", "{set:?}");
    assert_eq!(pair(set.ok(), "wallet"), wallet_line);
    let on = alice
        .run(&["credits", "auto-reload", "--on", "--threshold", "3000", "--amount", "1000", "--monthly-max", "2000"])
        .await;
    let on = on.ok();
    assert_eq!(
        [pair(on, "auto-reload"), pair(on, "threshold"), pair(on, "amount"), pair(on, "monthly max")],
        ["on", "3000", "1000", "2000"],
        "{on}"
    );
    assert_eq!(pair(on, "reloaded this month"), "0");

    // 5,000 → 2,500: below the alert and the reload's threshold; the reload brings it to 3,500.
    let as_alice = s.client.with_token(&alice.token());
    s.clock.advance(1_000);
    let c = charge(&as_alice, "cross", 2_500).await;
    expect_status(&c, 201);
    let shown = alice.run(&["credits", "auto-reload", "--org", &org, "--json"]).await.json();
    assert_eq!((num(&shown["reloaded_this_month"]), &shown["enabled"]), (1_000, &json!(true)), "{shown}");
    let balance = alice.run(&["credits", "balance", "--json"]).await.json();
    assert_eq!(num(&credits_wallet(&balance)["available"]), 3_500, "{balance}");
    for kind in ["credits.low_balance", "wallet.auto_reloaded"] {
        let ev = alice.run(&["events", "Acme", "--type", kind, "--json"]).await.json();
        let items = ev["items"].as_array().expect("event items");
        assert_eq!(items.len(), 1, "{kind}: {ev}");
        if kind == "credits.low_balance" {
            assert_eq!((num(&items[0]["data"]["available"]), num(&items[0]["data"]["threshold"])), (3_500, 4_000));
        } else {
            assert_eq!(num(&items[0]["data"]["amount"]), 1_000, "{ev}");
        }
    }

    // Off keeps the numbers; the alert is cleared with `none`.
    let off = alice.run(&["credits", "auto-reload", "--off", "--json"]).await.json();
    assert_eq!(
        (&off["enabled"], num(&off["threshold"]), num(&off["amount"]), num(&off["monthly_max"])),
        (&json!(false), 3_000, 1_000, 2_000),
        "{off}"
    );
    let cleared = alice.run(&["credits", "alerts", "--low-balance", "none", "--json"]).await.json();
    assert!(cleared["low_balance"].is_null(), "{cleared}");
    let c = charge(&as_alice, "below", 1_000).await;
    expect_status(&c, 201);
    assert_eq!(num(&c.body["balance_after"]), 2_500, "no reload once it is off: {}", c.body);
    let ev = alice.run(&["events", &org, "--type", "credits.low_balance", "--json"]).await.json();
    assert_eq!(ev["items"].as_array().map(Vec::len), Some(1), "no alert once it is cleared: {ev}");

    // A plain member may read neither; bad numbers are usage errors.
    let bob = Cli::new(&s);
    let (_, bob_email) = bob.signup("Bob").await;
    let grant = format!("{ws}:member");
    let inv =
        alice.run(&["orgs", "invite", "Acme", &bob_email, "--role", "member", "--workspace", &grant, "--json"]).await;
    let token = inv.json()["token"].as_str().expect("invitation token").to_string();
    bob.run(&["invitations", "accept", &token]).await.ok();
    let line = bob.run(&["credits", "auto-reload", "--org", &org]).await.failed().to_string();
    assert!(line.contains("forbidden") && line.contains("HTTP 403"), "{line}");
    let line = bob.run(&["credits", "alerts", "--low-balance", "10", "--org", &org]).await.failed().to_string();
    assert!(line.contains("forbidden") && line.contains("HTTP 403"), "{line}");
    assert_eq!(alice.run(&["credits", "alerts", "--low-balance", "lots"]).await.code, 2);
    assert_eq!(alice.run(&["credits", "auto-reload", "--amount", "0"]).await.code, 2);
    assert_eq!(alice.run(&["credits", "auto-reload", "--on", "--off"]).await.code, 2);
}
