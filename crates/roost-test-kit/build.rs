//! Sets `cfg(roost_test_pg)` when `ROOST_TEST_PG` is set at build time: without it the kit's
//! PostgreSQL tests are built `#[ignore]`d, so nextest reports them as skipped instead of passed
//! (see [`pg_test!`](src/server.rs)). Changing the variable rebuilds the kit and the tests.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(roost_test_pg)");
    println!("cargo::rerun-if-env-changed=ROOST_TEST_PG");
    if std::env::var("ROOST_TEST_PG").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=roost_test_pg");
    }
}
