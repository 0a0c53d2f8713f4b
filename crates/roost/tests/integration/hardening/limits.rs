//! Plan limits under concurrency: one trial per org, downgrades racing workspace creation, and
//! deletion racing resource creation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use roost::Client;
use serde_json::json;

use crate::support::{create_ws, expect_plan_limit, expect_problem, expect_status, list_all};
use roost_test_kit::TestServer;

use super::{expect_clean_refusal, wait_for};

// 4. ------------------------------------------------------------------------------------------------

/// One trial per org, ever, even when several trials are asked for at the same moment.
async fn a_trial_is_taken_once_under_concurrency(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let plans = ["pro", "team", "launch", "business", "pro", "team"];
    for round in 0..3 {
        let (org, _) = s.org(&alice, &format!("Trial {round}"), "scale").await;
        let path = format!("/v1/orgs/{org}/plan");
        let tasks: Vec<_> = plans
            .iter()
            .map(|p| {
                let (c, path, p) = (alice.clone(), path.clone(), (*p).to_string());
                tokio::spawn(async move {
                    let r = c.put(&path, &json!({"plan": p, "trial": true})).await.unwrap();
                    (p, r)
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            let (p, r) = t.await.unwrap();
            if r.status == 200 {
                won.push(p);
            } else {
                expect_problem(&r, 409, "trial_used");
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {} trials granted to one org: {won:?}", won.len());
        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        assert_eq!(got.body["plan"], won[0].as_str(), "{}", got.body);
        assert!(got.body["trial_ends_at"].is_string(), "{}", got.body);
        let again = alice.put(&path, &json!({"plan": "launch", "trial": true})).await.unwrap();
        expect_problem(&again, 409, "trial_used");
    }
}

// 5. ------------------------------------------------------------------------------------------------

/// A downgrade to a plan with one workspace, racing workspace creations: the org never ends up on
/// the small plan with more workspaces than it allows.
async fn downgrade_racing_workspace_creation_keeps_the_limit(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    for round in 0..6 {
        let (org, _) = s.org(&alice, &format!("Race {round}"), "scale").await;
        let spawn_plan = |alice: Client, org: String| {
            tokio::spawn(async move { alice.put(&format!("/v1/orgs/{org}/plan"), &json!({"plan": "build"})).await })
        };
        let mut plan_task = (round % 2 == 0).then(|| spawn_plan(alice.clone(), org.clone()));
        let creates: Vec<_> = (0..3)
            .map(|i| {
                let (c, org) = (alice.clone(), org.clone());
                tokio::spawn(async move {
                    c.post(&format!("/v1/orgs/{org}/workspaces"), &json!({"name": format!("W{i}")})).await
                })
            })
            .collect();
        if plan_task.is_none() {
            plan_task = Some(spawn_plan(alice.clone(), org.clone()));
        }
        let plan = plan_task.expect("plan task").await.unwrap().unwrap();
        let mut made = 0;
        for t in creates {
            let r = t.await.unwrap().unwrap();
            if r.status == 201 {
                made += 1;
            } else {
                expect_plan_limit(&r, 403, "max_workspaces");
            }
        }
        if plan.status != 200 {
            expect_plan_limit(&plan, 409, "max_workspaces");
        }

        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        expect_status(&got, 200);
        let used = got.body["usage"]["workspaces"].as_u64().expect("usage.workspaces");
        let listed = list_all(&alice, &format!("/v1/orgs/{org}/workspaces"), 500).await.len();
        assert_eq!(used, listed as u64, "round {round}: usage.workspaces disagrees with the list: {}", got.body);
        assert_eq!(listed, 1 + made, "round {round}: {made} creations answered 201, {listed} workspaces listed");
        let expected_plan = if plan.status == 200 { "build" } else { "scale" };
        assert_eq!(got.body["plan"], expected_plan, "round {round}: plan change answered {}", plan.status);
        if got.body["plan"] == "build" {
            assert!(used <= 1, "round {round}: the org is on build (max 1 workspace) with {used}: {}", got.body);
        }
    }
}

// 6. ------------------------------------------------------------------------------------------------

/// Resources created while their workspace is being deleted do not survive it: the org's usage
/// counts exactly the resources of the workspaces that remain.
async fn no_resource_lands_in_a_workspace_being_deleted(s: TestServer) {
    let (alice, _) = s.signup("Alice").await;
    let (org, primary) = s.org(&alice, "Acme", "team").await;
    for (i, kind) in ["app", "bucket", "app"].iter().enumerate() {
        let r = alice
            .post(&format!("/v1/workspaces/{primary}/resources"), &json!({"kind": kind, "name": format!("stay {i}")}))
            .await
            .unwrap();
        expect_status(&r, 201);
    }
    for round in 0..3 {
        let doomed = create_ws(&alice, &org, &format!("Doomed {round}")).await;
        let created = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let (c, ws, created) = (alice.clone(), doomed.clone(), created.clone());
                tokio::spawn(async move {
                    for i in 0..200 {
                        let kind = if (t + i) % 2 == 0 { "app" } else { "bucket" };
                        let r = c
                            .post(
                                &format!("/v1/workspaces/{ws}/resources"),
                                &json!({"kind": kind, "name": format!("r{t}-{i}")}),
                            )
                            .await
                            .unwrap();
                        if r.status != 201 {
                            expect_clean_refusal(&r, "resource creation in a deleted workspace");
                            return;
                        }
                        created.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        wait_for(&created, 4, Duration::from_secs(10)).await;
        let r = alice.delete(&format!("/v1/workspaces/{doomed}")).await.unwrap();
        expect_status(&r, 204);
        for t in tasks {
            t.await.unwrap();
        }
        let r = alice
            .post(&format!("/v1/workspaces/{doomed}/resources"), &json!({"kind": "app", "name": "late"}))
            .await
            .unwrap();
        expect_problem(&r, 404, "not_found");

        let got = alice.get(&format!("/v1/orgs/{org}")).await.unwrap();
        expect_status(&got, 200);
        let counted: u64 = got.body["usage"]["resources"]
            .as_object()
            .expect("usage.resources")
            .values()
            .map(|n| n.as_u64().expect("a count"))
            .sum();
        let workspaces = list_all(&alice, &format!("/v1/orgs/{org}/workspaces"), 500).await;
        assert!(!workspaces.iter().any(|w| w["id"] == doomed.as_str()), "the deleted workspace is listed");
        let mut listed = 0u64;
        for w in &workspaces {
            let id = w["id"].as_str().expect("workspace id");
            listed += list_all(&alice, &format!("/v1/workspaces/{id}/resources"), 500).await.len() as u64;
        }
        assert_eq!(
            counted, listed,
            "round {round}: usage.resources counts {counted}, the remaining workspaces hold {listed}: {}",
            got.body["usage"]
        );
    }
}

both_backends!(
    a_trial_is_taken_once_under_concurrency,
    downgrade_racing_workspace_creation_keeps_the_limit,
    no_resource_lands_in_a_workspace_being_deleted,
);
