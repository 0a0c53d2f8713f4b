//! Holds: reserve, settle (≤ held, the rest returns), release, expiry by ttl, and a settle that
//! charges the hold's own workspace whatever the caller's active workspace is now.

use serde_json::json;

use super::common::*;
use crate::support::{create_ws, expect_about, expect_problem, expect_status, list_all, now_ms, ts_ms};
use roost_test_kit::TestServer;

async fn settle_release_expire(s: TestServer) {
    let (owner, _, org, ws) = business(&s, "Holds").await;
    let w = wallet(&owner, &org).await;
    let alloc = grant_id(&w, "allocation");
    let t0 = now_ms(&s);

    // Reserve: counted in `held`, taken from `available`, reserved on the grant.
    let h = created(hold(&owner, 1_000, None).await);
    assert_eq!(
        (&h["status"], &h["amount"], &h["workspace_id"], &h["org_id"]),
        (&json!("open"), &json!(1_000), &json!(ws), &json!(org))
    );
    assert_eq!(h["wallet_id"], w["id"]);
    assert!(h["charge_id"].is_null());
    expect_about(&h["expires_at"], t0 + 900_000);
    assert_eq!(ts_ms(&h["expires_at"]), t0 + 900_000, "default ttl is 900 s");
    assert_eq!(bha(&owner, &org).await, (5_000, 1_000, 4_000));
    assert_eq!(grants_of(&wallet(&owner, &org).await), vec![("allocation".into(), 4_000, 1_000)]);

    // Settle less than held: exactly that is charged, the rest is available again.
    let hid = h["id"].as_str().unwrap();
    let r = settle(&owner, hid, 600).await;
    expect_status(&r, 200);
    let c = &r.body["charge"];
    assert_eq!(
        (&c["amount"], &c["hold_id"], &c["workspace_id"], &c["action"]),
        (&json!(600), &json!(hid), &json!(ws), &json!("job"))
    );
    assert_eq!(splits(c), vec![(alloc.clone(), 600)]);
    assert_eq!(c["balance_after"], 4_400);
    assert_eq!(r.body["released"], 400);
    assert_eq!((&r.body["hold"]["status"], &r.body["hold"]["charge_id"]), (&json!("settled"), &c["id"]));
    assert_eq!(bha(&owner, &org).await, (4_400, 0, 4_400));
    let g = owner.get(&format!("/v1/holds/{hid}")).await.unwrap();
    assert_eq!((&g.body["status"], &g.body["charge_id"]), (&json!("settled"), &c["id"]));

    // Settle exactly what is held: nothing released.
    let h = created(hold(&owner, 250, None).await);
    let r = settle(&owner, h["id"].as_str().unwrap(), 250).await;
    expect_status(&r, 200);
    assert_eq!((r.body["released"].as_i64(), r.body["charge"]["amount"].as_i64()), (Some(0), Some(250)));
    assert_eq!(bha(&owner, &org).await, (4_150, 0, 4_150));

    // Release returns everything.
    let h = created(hold(&owner, 2_000, None).await);
    assert_eq!(bha(&owner, &org).await, (4_150, 2_000, 2_150));
    let r = owner.post(&format!("/v1/holds/{}/release", h["id"].as_str().unwrap()), &json!({})).await.unwrap();
    expect_status(&r, 200);
    assert_eq!((&r.body["status"], &r.body["id"]), (&json!("released"), &h["id"]));
    assert_eq!(bha(&owner, &org).await, (4_150, 0, 4_150));

    // A ttl that runs out returns everything; a settle then answers hold_closed.
    let h = created(hold(&owner, 700, Some(30)).await);
    let hid = h["id"].as_str().unwrap();
    assert_eq!(ts_ms(&h["expires_at"]), now_ms(&s) + 30_000);
    s.clock.advance(29_000);
    assert_eq!(bha(&owner, &org).await, (4_150, 700, 3_450), "still held a second before its end");
    s.clock.advance(2_000);
    assert_eq!(bha(&owner, &org).await, (4_150, 0, 4_150));
    let g = owner.get(&format!("/v1/holds/{hid}")).await.unwrap();
    assert_eq!(g.body["status"], "expired", "{}", g.body);
    let r = settle(&owner, hid, 700).await;
    expect_problem(&r, 409, "hold_closed");
    assert_eq!(r.body["hold_status"], "expired");
    assert_eq!(grants_of(&wallet(&owner, &org).await), vec![("allocation".into(), 4_150, 0)]);
    s.assert_ledger().await;
}

/// A hold spanning an allocation and a top-up settles from its reserved parts, in draw-down order.
async fn settle_takes_reserved_parts_in_order(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Parts").await;
    let alloc = grant_id(&wallet(&owner, &org).await, "allocation");
    created(charge(&owner, 4_900, "llm").await);
    let top = topup(&owner, &org, 1_000).await;
    let top_id = top["id"].as_str().unwrap().to_string();
    let h = created(hold(&owner, 500, None).await);
    let w = wallet(&owner, &org).await;
    let mut gs = grants_of(&w);
    gs.sort();
    assert_eq!(gs, vec![("allocation".into(), 0, 100), ("topup".into(), 600, 400)]);
    let r = settle(&owner, h["id"].as_str().unwrap(), 300).await;
    expect_status(&r, 200);
    assert_eq!(splits(&r.body["charge"]), vec![(alloc, 100), (top_id, 200)]);
    assert_eq!(r.body["released"], 200);
    let w = wallet(&owner, &org).await;
    assert_eq!(grants_of(&w), vec![("topup".into(), 800, 0)]);
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64()), (Some(800), Some(0)));
    s.assert_ledger().await;
}

/// A settle made while the caller acts in another workspace charges the hold's workspace.
async fn settle_charges_the_hold_workspace(s: TestServer) {
    let (owner, _, org, primary) = business(&s, "Bound").await;
    let w2 = create_ws(&owner, &org, "Jobs").await;
    let h = created(hold(&owner.in_workspace(&w2), 800, None).await);
    assert_eq!(h["workspace_id"], w2.as_str());
    // Now the caller's active workspace is the primary one, and no header names w2.
    let bare = s.client.with_token(owner.token().unwrap());
    let r = bare.put("/v1/me/active-workspace", &json!({"workspace_id": primary})).await.unwrap();
    expect_status(&r, 200);
    let r = settle(&bare, h["id"].as_str().unwrap(), 500).await;
    expect_status(&r, 200);
    assert_eq!(r.body["charge"]["workspace_id"], w2.as_str());
    // Even naming the primary workspace explicitly.
    let h2 = created(hold(&owner.in_workspace(&w2), 100, None).await);
    let r = settle(&owner.in_workspace(&primary), h2["id"].as_str().unwrap(), 100).await;
    expect_status(&r, 200);
    assert_eq!(r.body["charge"]["workspace_id"], w2.as_str());
    let in_w2 = owner.get(&format!("/v1/workspaces/{w2}/transactions")).await.unwrap();
    let amounts: Vec<i64> =
        in_w2.body["items"].as_array().unwrap().iter().map(|e| e["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, vec![100, 500]);
    let in_primary = owner.get(&format!("/v1/workspaces/{primary}/transactions")).await.unwrap();
    assert_eq!(in_primary.body["items"], json!([]));
    let usage = owner.get(&format!("/v1/orgs/{org}/usage?group_by=workspace")).await.unwrap();
    expect_status(&usage, 200);
    assert_eq!(usage.body["groups"], json!([{"key": w2, "amount": 600, "count": 2, "share": 1.0}]));
    assert_eq!(bha(&owner, &org).await, (4_400, 0, 4_400));
    s.assert_ledger().await;
}

/// A hold made from an allocation that ends before the hold does: the settled part is charged,
/// the returned part expires with its grant.
async fn hold_across_a_cycle_turn(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Turning").await;
    let w = wallet(&owner, &org).await;
    let end = ts_ms(&w["cycle_ends_at"]);
    advance_to(&s, end - HOUR);
    let h = created(hold(&owner, 1_000, Some(2 * 3_600)).await);
    advance_to(&s, end + MINUTE);
    // The turn rolled the 4,000 not reserved; the 1,000 is still held from the old allocation.
    assert_eq!(bha(&owner, &org).await, (10_000, 1_000, 9_000));
    let r = settle(&owner, h["id"].as_str().unwrap(), 200).await;
    expect_status(&r, 200);
    assert_eq!(r.body["released"], 800);
    // The 800 returned to an expired grant expire: 4,000 rolled + 5,000 allocated − 0 held.
    let w = wallet(&owner, &org).await;
    assert_eq!((w["balance"].as_i64(), w["held"].as_i64(), w["expired"].as_i64()), (Some(9_000), Some(0), Some(4_800)));
    s.assert_ledger().await;
}

/// Every expiry of credits appears in the org journal as an `expiry` entry, including credits a
/// hold returns to a grant that expired meanwhile, so the journal adds up to the balance and each
/// entry's `balance_after` follows from the one before.
async fn hold_return_expiry_is_journaled(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Journaled").await;
    let end = ts_ms(&wallet(&owner, &org).await["cycle_ends_at"]);
    advance_to(&s, end - HOUR);
    let h = created(hold(&owner, 1_000, Some(2 * 3_600)).await);
    advance_to(&s, end + MINUTE);
    let r = settle(&owner, h["id"].as_str().unwrap(), 200).await;
    expect_status(&r, 200);
    let balance = wallet(&owner, &org).await["balance"].as_i64().unwrap();
    assert_eq!(balance, 9_000);
    let (journaled, expired) = expiries_journaled(&s, &org).await;
    // Oldest first: grants add, charges and expiries take away.
    let mut all = list_all(&owner, &format!("/v1/orgs/{org}/transactions"), 500).await;
    all.reverse();
    let mut running = 0;
    let mut breaks = Vec::new();
    for e in &all {
        let a = e["amount"].as_i64().unwrap();
        running += if e["type"] == "grant" { a } else { -a };
        if e["balance_after"].as_i64() != Some(running) {
            breaks.push(format!(
                "{} {} {a}: balance_after {} but the journal adds up to {running}",
                e["type"], e["action"], e["balance_after"]
            ));
        }
    }
    assert_eq!(
        journaled, expired,
        "Σ expiry entries {journaled} ≠ Σ grants' expired {expired}; journal breaks: {breaks:?}"
    );
    assert!(breaks.is_empty(), "{breaks:?}");
    assert_eq!(running, balance);
}

/// Not generated by the macro: it needs long sessions (a regression test of a fixed bug).
mod hold_return_expiry_is_journaled {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let s = roost_test_kit::TestServer::start_with(roost_test_kit::Backend::Sqlite, super::long_sessions)
            .await
            .expect("sqlite server");
        super::hold_return_expiry_is_journaled(s).await;
    }

    pg_test! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        match roost_test_kit::TestServer::start_with(roost_test_kit::Backend::Postgres, super::long_sessions).await {
            Some(s) => super::hold_return_expiry_is_journaled(s).await,
            None => eprintln!("{}", roost_test_kit::SKIPPED),
        }
    }
    }
}

both_backends!(
    settle_release_expire,
    settle_takes_reserved_parts_in_order,
    settle_charges_the_hold_workspace,
    deleting_a_workspace_releases_its_holds
);
both_backends_with!(hold_across_a_cycle_turn => super::long_sessions);

/// Found by review: deleting a workspace left its open holds reserved until they expired (up to
/// 7 days), unreachable by release (404). Deleting now releases them; other workspaces' holds and
/// settled holds stay as they are.
async fn deleting_a_workspace_releases_its_holds(s: TestServer) {
    let (owner, _, org, primary) = business(&s, "Gone").await;
    let doomed = create_ws(&owner, &org, "Doomed").await;
    let in_doomed = owner.in_workspace(&doomed);
    let a = created(hold(&in_doomed, 700, Some(7 * 86_400)).await);
    let b = created(hold(&in_doomed, 300, None).await);
    let settled = created(hold(&in_doomed, 100, None).await);
    expect_status(&settle(&in_doomed, settled["id"].as_str().unwrap(), 100).await, 200);
    let kept = created(hold(&owner.in_workspace(&primary), 50, None).await);
    assert_eq!(bha(&owner, &org).await, (4_900, 1_050, 3_850));

    expect_status(&owner.delete(&format!("/v1/workspaces/{doomed}")).await.unwrap(), 204);
    assert_eq!(bha(&owner, &org).await, (4_900, 50, 4_850), "the deleted workspace's 1,000 held came back");
    let g = owner.get(&format!("/v1/holds/{}", kept["id"].as_str().unwrap())).await.unwrap();
    assert_eq!(g.body["status"], "open", "{}", g.body);
    // The holds are gone with their workspace (404, like any id one cannot reach); the ledger check
    // below confirms that nothing stays reserved for them on the grants.
    for h in [&a, &b] {
        let r = owner.get(&format!("/v1/holds/{}", h["id"].as_str().unwrap())).await.unwrap();
        expect_problem(&r, 404, "not_found");
    }
    let w = wallet(&owner, &org).await;
    assert_eq!(grants_of(&w), vec![("allocation".into(), 4_850, 50)], "{w}");
    s.assert_ledger().await;
}
