//! The administrative commands of the `roost` CLI, run as a real process against a test server:
//! the plan catalog, org rename / plan change / delete (with confirmation), roles, invitations,
//! workspaces named `ORG/WORKSPACE`, resources, holds, adjustments and shell completions.

use serde_json::Value;

use crate::cli_credits::{Cli, num, pair, row};
use roost_test_kit::TestServer;

both_backends!(cli_manage);

/// The id in a line like `created … (res_…)`.
fn paren_id(s: &str) -> String {
    s.rsplit_once('(').and_then(|(_, r)| r.strip_suffix(')')).unwrap_or_else(|| panic!("no (id) in `{s}`")).to_string()
}

async fn cli_manage(s: TestServer) {
    let alice = Cli::new(&s);
    alice.signup("Alice").await;

    // The catalog, without logging in being needed for it.
    let plans = alice.run(&["plans"]).await;
    assert_eq!(row(plans.ok(), "business")[1..3], ["Business", "true"], "{plans:?}");
    assert_eq!(row(plans.ok(), "free")[8], "60", "the free plan's rpm: {plans:?}");
    let listed = alice.run(&["plans", "--json"]).await.json();
    let business = listed.as_array().expect("a list").iter().find(|p| p["id"] == "business").cloned();
    assert_eq!(business.map(|p| p["rpm"].clone()), Some(Value::from(3_000)), "{listed}");

    // An org renamed and moved between plans.
    let created = alice.run(&["orgs", "create", "Acme", "--plan", "business", "--json"]).await.json();
    let org = created["org"]["id"].as_str().expect("org id").to_string();
    let renamed = alice.run(&["orgs", "rename", "Acme", "Acme Two"]).await;
    assert_eq!(renamed.ok(), format!("renamed {org} to Acme Two\n"));
    let line = alice.run(&["orgs", "plan", &org, "no-such-plan"]).await.failed().to_string();
    assert!(line.contains("HTTP 4"), "{line}");

    // Two orgs with a `Default` workspace: the bare name is ambiguous, ORG/NAME is not. (Beta
    // changes plan: a plan change starts a new cycle, which would move Acme's balance below.)
    alice.run(&["orgs", "create", "Beta", "--plan", "business"]).await.ok();
    let moved = alice.run(&["orgs", "plan", "Beta", "team"]).await;
    assert_eq!(pair(moved.ok(), "plan"), "team", "{moved:?}");
    let listed = alice.run(&["orgs", "list"]).await;
    assert_eq!(row(listed.ok(), &org)[1..], ["Acme", "Two", "org", "business", "owner"], "{listed:?}");
    let line = alice.run(&["ws", "members", "Default"]).await.failed().to_string();
    assert!(line.contains("ORG/WORKSPACE"), "{line}");
    let members = alice.run(&["ws", "members", "Acme Two/Default"]).await;
    assert!(members.ok().contains("alice-"), "{members:?}");
    let jobs = alice.run(&["ws", "create", "Acme Two", "Jobs", "--json"]).await.json();
    let jobs_id = jobs["id"].as_str().expect("ws id").to_string();

    // Invitations: listed, one revoked; Bob joins and changes roles.
    let bob = Cli::new(&s);
    let (bob_id, bob_email) = bob.signup("Bob").await;
    let inv = alice.run(&["orgs", "invite", &org, &bob_email, "--json"]).await.json();
    let carol = alice.run(&["orgs", "invite", &org, "carol@example.com", "--json"]).await.json();
    let carol_inv = carol["id"].as_str().expect("invitation id");
    let list = alice.run(&["invitations", "list", "Acme Two"]).await;
    assert_eq!(row(list.ok(), carol_inv)[1..3], ["carol@example.com", "member"], "{list:?}");
    let revoked = alice.run(&["invitations", "revoke", &org, carol_inv]).await;
    assert_eq!(revoked.ok(), format!("revoked invitation {carol_inv}\n"));
    let list = alice.run(&["invitations", "list", &org, "--json"]).await.json();
    let ids: Vec<&str> = list["items"].as_array().expect("items").iter().filter_map(|i| i["id"].as_str()).collect();
    assert_eq!(ids, [inv["id"].as_str().expect("id")], "{list}");
    bob.run(&["invitations", "accept", inv["token"].as_str().expect("token")]).await.ok();
    let role = alice.run(&["orgs", "role", "Acme Two", &bob_email, "billing"]).await;
    assert!(role.ok().contains(&format!("({bob_id}) is now billing")), "{role:?}");
    assert_eq!(alice.run(&["orgs", "role", "Acme Two", &bob_email, "owner"]).await.code, 2, "owner moves by transfer");
    let ws_role = alice.run(&["ws", "role", "Acme Two/Jobs", &bob_email, "viewer"]).await;
    assert_eq!(ws_role.ok(), format!("{bob_id} is now viewer in Jobs ({jobs_id})\n"));
    let members = alice.run(&["ws", "members", &jobs_id]).await;
    assert_eq!(row(members.ok(), &bob_id)[2..], ["Bob", "viewer"], "{members:?}");
    let removed = alice.run(&["ws", "remove", "Acme Two/Jobs", &bob_email]).await;
    assert!(removed.ok().starts_with(&format!("removed {bob_id} from Jobs")), "{removed:?}");
    assert!(!alice.run(&["ws", "members", &jobs_id]).await.ok().contains(&bob_id));
    // Billing may not delete the org.
    let line = bob.run(&["orgs", "delete", &org, "--yes"]).await.failed().to_string();
    assert!(line.contains("HTTP 403"), "{line}");

    // Resources in a workspace named within its org.
    let made = alice.run(&["resources", "create", "postgres", "db1", "--workspace", "Acme Two/Jobs"]).await;
    let res = paren_id(pair(made.ok(), "created"));
    assert_eq!(pair(made.ok(), "workspace"), jobs_id);
    let list = alice.run(&["resources", "list", "--workspace", &jobs_id]).await;
    assert_eq!(row(list.ok(), &res)[1..3], ["postgres", "db1"], "{list:?}");
    let moved = alice.run(&["resources", "transfer", &res, "Acme Two/Default"]).await;
    assert!(moved.ok().starts_with(&format!("moved {res} to ws_")), "{moved:?}");
    assert_eq!(
        alice.run(&["resources", "list", "--workspace", &jobs_id]).await.ok(),
        "no resources in this workspace\n"
    );
    assert_eq!(alice.run(&["resources", "delete", &res]).await.ok(), format!("deleted {res}\n"));

    // Holds and adjustments: 5,000 of allocation, then +700, then -200.
    let h = alice.run(&["holds", "create", "500", "--action", "job", "--workspace", "Acme Two/Jobs"]).await;
    let hold = pair(h.ok(), "hold").to_string();
    assert_eq!((pair(h.ok(), "status"), pair(h.ok(), "workspace")), ("open", jobs_id.as_str()), "{h:?}");
    assert!(pair(h.ok(), "idempotency key").starts_with("cli_"), "{h:?}");
    let settled = alice.run(&["holds", "settle", &hold, "200"]).await;
    assert_eq!((pair(settled.ok(), "released"), pair(settled.ok(), "balance after")), ("300", "4800"), "{settled:?}");
    assert_eq!(pair(alice.run(&["holds", "show", &hold]).await.ok(), "status"), "settled");
    let line = alice.run(&["holds", "release", &hold]).await.failed().to_string();
    assert!(line.contains("hold_closed"), "{line}");
    let h2 = alice.run(&["holds", "create", "50", "--action", "job", "--workspace", &jobs_id, "--json"]).await.json();
    assert!(h2["idempotency_key"].as_str().is_some_and(|k| k.starts_with("cli_")), "{h2}");
    let released = alice.run(&["holds", "release", h2["id"].as_str().expect("hold id")]).await;
    assert_eq!(pair(released.ok(), "status"), "released");
    let added = alice.run(&["credits", "adjust", "700", "--reason", "goodwill", "--org", "Acme Two"]).await;
    assert!(pair(added.ok(), "adjusted").starts_with("added 700 (grt_"), "{added:?}");
    assert_eq!(pair(added.ok(), "reason"), "goodwill");
    let taken = alice.run(&["credits", "adjust", "-200", "--reason", "fix", "--org", &org, "--json"]).await.json();
    assert!(taken["idempotency_key"].as_str().is_some_and(|k| k.starts_with("cli_")), "{taken}");
    assert_eq!(num(&taken["adjustment"]["amount"]), 200, "{taken}");
    let balance = alice.run(&["credits", "balance", "--org", &org, "--json"]).await.json();
    assert_eq!(num(&balance["items"][0]["balance"]), 5_000 - 200 + 700 - 200, "{balance}");
    let topped = alice.run(&["credits", "topup", "10", "--org", &org, "--json"]).await.json();
    assert!(
        topped["idempotency_key"].as_str().is_some_and(|k| k.starts_with("cli_")),
        "--json keeps the key: {topped}"
    );

    // Deleting asks for confirmation: without a terminal, --yes is needed.
    alice.run(&["ws", "rename", "Acme Two/Jobs", "Batch"]).await.ok();
    let line = alice.run(&["ws", "delete", "Acme Two/Batch"]).await.failed().to_string();
    assert!(line.contains("--yes"), "{line}");
    let gone = alice.run(&["ws", "delete", "Acme Two/Batch", "--yes"]).await;
    assert!(gone.ok().starts_with(&format!("deleted workspace Batch ({jobs_id})")), "{gone:?}");
    let line = alice.run(&["orgs", "delete", "Beta"]).await.failed().to_string();
    assert!(line.contains("--yes"), "{line}");
    assert!(alice.run(&["orgs", "delete", "Beta", "--yes"]).await.ok().starts_with("deleted organization Beta"));
    let orgs = alice.run(&["orgs", "list"]).await;
    assert!(!orgs.ok().contains("Beta") && orgs.ok().contains("Acme Two"), "{orgs:?}");

    // Shell completions.
    let bash = alice.run(&["completions", "bash"]).await;
    assert!(
        bash.ok().contains("_roost()") && bash.ok().contains("holds"),
        "{}",
        &bash.stdout[..200.min(bash.stdout.len())]
    );
    assert_eq!(alice.run(&["completions", "tcsh"]).await.code, 2);
}
