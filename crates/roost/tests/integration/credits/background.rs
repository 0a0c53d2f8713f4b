//! The background job turns cycles for orgs nobody is charging: no HTTP request after the clock
//! moves, and the database shows the next cycle's allocation.

use std::time::{Duration, Instant};

use roost_server::Settings;

use super::common::*;
use crate::support::ts_ms;
use roost_test_kit::TestServer;

pub(crate) fn fast_tick(s: &mut Settings) {
    s.ledger_tick_ms = 50;
    long_sessions(s);
}

async fn background_turns_cycles(s: TestServer) {
    let (owner, _, org, _) = business(&s, "Idle").await;
    created(charge(&owner, 1_200, "llm").await);
    let end = ts_ms(&wallet(&owner, &org).await["cycle_ends_at"]);
    let store = roost_store::Store::connect(&s.admin_url).await.unwrap();
    let (wallets, grants) = store.wallets_of(&org).await.unwrap();
    assert_eq!((wallets.len(), wallets[0].cycle, wallets[0].balance), (1, 0, 3_800));
    assert_eq!(grants.iter().map(|g| g.source.as_str()).collect::<Vec<_>>(), vec!["allocation"]);

    advance_to(&s, end + 1_000);
    // From here on, no request to the server: only the job can turn the cycle.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (wallets, grants) = loop {
        let (w, g) = store.wallets_of(&org).await.unwrap();
        if g.iter().any(|g| g.source.as_str() == "allocation" && g.effective_at == end) {
            break (w, g);
        }
        assert!(Instant::now() < deadline, "the background job did not turn the cycle within 5 s: {w:?} {g:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let w = &wallets[0];
    assert_eq!((w.cycle, w.balance, w.held, w.granted, w.charged, w.expired), (1, 8_800, 0, 13_800, 1_200, 3_800));
    let mut live: Vec<(&str, i64, Option<i64>)> =
        grants.iter().map(|g| (g.source.as_str(), g.remaining, g.expires_at)).collect();
    live.sort();
    let next_end = roost_domain::credits::cycle_start(w.anchor_at, 2);
    assert_eq!(live, vec![("allocation", 5_000, Some(next_end)), ("rollover", 3_800, Some(next_end))]);
    store.close().await;
    s.assert_ledger().await;
}

both_backends_with!(background_turns_cycles => super::fast_tick);
