//! TLS to PostgreSQL: a cluster of the test's own with `ssl = on` and a certificate signed by a CA
//! the test makes (`openssl`), refusing connections without TLS. roost serves on it with
//! `sslmode=verify-full&sslrootcert=CA`; against another CA it refuses to start, naming TLS.

use std::path::Path;
use std::process::Command;

use roost_test_kit::peers::{PgCluster, chown};
use roost_test_kit::{Backend, TestServer};
use serde_json::json;
use sqlx::Connection;

use crate::ROOST;
use crate::credits::common::{api_key, business, charge, topup};

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// A CA (`ca.pem`), a server certificate it signed for 127.0.0.1 (`server.crt`, `server.key`) and
/// an unrelated CA (`other.pem`), in `dir`.
fn make_certs(dir: &Path) -> Result<(), String> {
    let ca = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-sha256"];
    openssl(dir, &[&ca[..], &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=roost test CA"]].concat())?;
    openssl(dir, &[&ca[..], &["-keyout", "other.key", "-out", "other.pem", "-subj", "/CN=another CA"]].concat())?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    )?;
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    )?;
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(|e| e.to_string())?;
    chown(dir)
}

/// A started cluster that only accepts TLS connections, and the directory of its certificates.
fn tls_cluster() -> Result<PgCluster, String> {
    let pg = PgCluster::init("")?;
    let certs = pg.root.join("certs");
    std::fs::create_dir_all(&certs).map_err(|e| e.to_string())?;
    make_certs(&certs)?;
    let conf =
        format!("ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n", certs.display());
    std::fs::OpenOptions::new()
        .append(true)
        .open(pg.data().join("postgresql.conf"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
        .map_err(|e| e.to_string())?;
    pg.set_hba("local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n")?;
    pg.start()?;
    Ok(pg)
}

async fn roost_on_postgres_over_verified_tls_postgres() {
    let pg = match tls_cluster() {
        Ok(pg) => pg,
        Err(why) if why.starts_with("SKIPPED") => return println!("{why}"),
        Err(why) => panic!("cannot start a TLS PostgreSQL cluster: {why}"),
    };
    let certs = pg.root.join("certs");
    let ca = certs.join("ca.pem");
    let url = pg.url("postgres", &format!("sslmode=verify-full&sslrootcert={}", ca.display()));

    // The connection really is TLS, and the cluster refuses any other.
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("a verified TLS connection");
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(ssl, "the connection is not encrypted");
    conn.close().await.unwrap();
    let plain = sqlx::PgConnection::connect(&pg.url("postgres", "sslmode=disable")).await;
    assert!(plain.is_err(), "the cluster must refuse connections without TLS");

    // roost serves on it: accounts, orgs, credits, charges.
    let target = url.clone();
    let s = TestServer::start_with(Backend::Sqlite, move |st| st.database_url = target).await.unwrap();
    let (owner, _, org, ws) = business(&s, "Tls").await;
    topup(&owner, &org, 1_000).await;
    let (_, key) = api_key(&s, &owner, &ws, None).await;
    let r = charge(&key, 250, "job").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = owner.get(&format!("/v1/orgs/{org}/audit/verify")).await.unwrap();
    assert_eq!(r.body["ok"], json!(true), "{:?}", r.body);
    roost_test_kit::ledger::assert_ledger(&url).await;
    drop(s);

    // `sslmode=require` encrypts without checking the certificate.
    let url = pg.url("postgres", "sslmode=require");
    roost_store::Store::connect(&url).await.expect("sslmode=require").close().await;

    // Against another CA: `roost migrate` refuses with one line that names TLS and the settings.
    let wrong = pg.url("postgres", &format!("sslmode=verify-full&sslrootcert={}", certs.join("other.pem").display()));
    let out = tokio::process::Command::new(ROOST)
        .args(["migrate", "--database-url", &wrong])
        .env("ROOST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("TLS to the database") && err.contains("sslrootcert"), "{err}");
    assert!(!err.contains("pool timed out"), "{err}");
}

pg_test! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roost_over_verified_tls_postgres() {
    roost_on_postgres_over_verified_tls_postgres().await;
}
}
