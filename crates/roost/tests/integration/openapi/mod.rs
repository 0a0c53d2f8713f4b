//! The contract in the repository (issue 11, item 5): `docs/api.md` against the served OpenAPI, the
//! document checked by `openapi-spec-validator`, the statuses each route answers against those it
//! declares, schemathesis against a seeded server, and CORS.

mod api_md;
mod cors;
mod schemathesis;
mod seed;
mod statuses;
mod validator;

use roost_test_kit::TestServer;
use serde_json::Value;

/// Where Python tools are installed when the machine lacks them.
pub(crate) const PEER_CACHE: &str = env!("CARGO_TARGET_TMPDIR");

/// The document the server publishes.
pub(crate) async fn served(s: &TestServer) -> Value {
    let r = s.client.get("/v1/openapi.json").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{:?}", r.body["openapi"]);
    r.body
}

/// Every operation of the document: `(METHOD, path, operation)`.
pub(crate) fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// A path with every `{param}` written `{}`, so that parameter names do not matter.
pub(crate) fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// A scratch folder under the target dir, removed when dropped.
pub(crate) struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub(crate) fn new(what: &str) -> Self {
        let dir = std::path::Path::new(PEER_CACHE).join(format!("{what}-{}", roost_domain::IdKind::Event.generate()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Says plainly, in every run, whether the OpenAPI checkers are on the machine (`.ci/run` installs
/// them; without them the tests install them into the target dir, or say SKIPPED).
#[test]
fn openapi_tools_skipped_notice() {
    for (module, package) in [("openapi_spec_validator", "openapi-spec-validator"), ("schemathesis", "schemathesis")] {
        let found = std::process::Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            println!("{package}: installed, the OpenAPI tests use it");
        } else {
            println!(
                "NOTICE: {package} is not installed (python3 -m pip install {package}): the tests will try to install it into the target dir, or say SKIPPED"
            );
        }
    }
}
