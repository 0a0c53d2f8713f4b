//! `docs/api.md`, the project's contract, against the served OpenAPI, both ways: every route the
//! server serves is written there, and every `METHOD /path` written there is served — unless its
//! section, bullet or table row says *(not served yet)*. A marked route that is served after all
//! (a branch that built it merged) is reported as a notice to remove the marker, not a failure.

use std::collections::BTreeSet;

use roost_test_kit::{Backend, TestServer};

use super::{normalize, operations, served};

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
/// Marks a section, bullet or row whose endpoints are part of the contract but not built yet.
const NOT_SERVED: &str = "not served yet";

/// One `METHOD /path` of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Documented {
    method: String,
    /// As written, without its query string.
    path: String,
    /// Under a *(not served yet)* marker.
    planned: bool,
    line: usize,
}

/// The endpoints written in `md`. A block is a heading, a table row, a bullet with its indented
/// continuation lines, or a paragraph; a marker applies to its block, or in a heading to the
/// whole section.
fn endpoints(md: &str) -> Vec<Documented> {
    let mut out = Vec::new();
    let mut section_planned = false;
    let mut block: Vec<(usize, &str)> = Vec::new();
    let flush = |block: &mut Vec<(usize, &str)>, section_planned: bool, out: &mut Vec<Documented>| {
        let planned = section_planned || block.iter().any(|(_, l)| l.contains(NOT_SERVED));
        for (line, text) in block.drain(..) {
            let cleaned = text.replace('`', " ");
            let words: Vec<&str> = cleaned.split_whitespace().collect();
            for pair in words.windows(2) {
                let methods: Vec<&str> = pair[0].split('|').collect();
                if !methods.iter().all(|m| METHODS.contains(m)) || !pair[1].starts_with('/') {
                    continue;
                }
                let path = pair[1].split('?').next().unwrap_or("").trim_end_matches([',', '.', ';', ':', ')']);
                if path.len() > 1 {
                    for m in methods {
                        out.push(Documented { method: m.to_string(), path: path.to_string(), planned, line });
                    }
                }
            }
        }
    };
    for (i, line) in md.lines().enumerate() {
        let new_block =
            line.trim().is_empty() || line.starts_with('#') || line.starts_with("- ") || line.starts_with('|');
        if new_block {
            flush(&mut block, section_planned, &mut out);
        }
        if line.starts_with('#') {
            section_planned = line.contains(NOT_SERVED);
        }
        if !line.trim().is_empty() {
            block.push((i + 1, line));
        }
    }
    flush(&mut block, section_planned, &mut out);
    out
}

#[test]
fn endpoints_are_read_with_their_markers() {
    let md = "# A\n| `GET /v1/a` · `PATCH /v1/a/{id}` | x |\n- `GET|DELETE /v1/b/{id}` (`PATCH {x}`) and\n  `POST /v1/c?x=1`, done.\n- **d** *(not served yet)*: `PUT /v1/d`\n\n## E *(not served yet)*\n`GET /v1/e`\n# F\nGET /healthz\n";
    let got: Vec<(String, String, bool)> = endpoints(md).into_iter().map(|d| (d.method, d.path, d.planned)).collect();
    let want = [
        ("GET", "/v1/a", false),
        ("PATCH", "/v1/a/{id}", false),
        ("GET", "/v1/b/{id}", false),
        ("DELETE", "/v1/b/{id}", false),
        ("POST", "/v1/c", false),
        ("PUT", "/v1/d", true),
        ("GET", "/v1/e", true),
        ("GET", "/healthz", false),
    ];
    let want: Vec<(String, String, bool)> = want.iter().map(|(m, p, x)| (m.to_string(), p.to_string(), *x)).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_md_matches_the_openapi() {
    let md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).expect("docs/api.md");
    let documented = endpoints(&md);
    assert!(documented.len() > 80, "docs/api.md names only {} endpoints: is the parser broken?", documented.len());
    let s = TestServer::start(Backend::Sqlite).await.expect("server");
    let doc = served(&s).await;
    let served: BTreeSet<(String, String)> = operations(&doc).into_iter().map(|(m, p, _)| (m, normalize(&p))).collect();
    let mut problems = Vec::new();
    for d in &documented {
        let key = (d.method.clone(), normalize(&d.path));
        match (d.planned, served.contains(&key)) {
            (true, true) => println!(
                "NOTICE: docs/api.md:{}: {} {} is served now: remove its (not served yet) marker",
                d.line, d.method, d.path
            ),
            (false, false) => problems.push(format!(
                "docs/api.md:{}: {} {} is not served (not in /v1/openapi.json); mark it (not served yet) or build it",
                d.line, d.method, d.path
            )),
            _ => {}
        }
    }
    for (m, p) in &served {
        if !documented.iter().any(|d| d.method == *m && normalize(&d.path) == *p) {
            problems.push(format!("{m} {p} is served but not in docs/api.md: write it there"));
        }
    }
    assert!(problems.is_empty(), "docs/api.md and the OpenAPI differ:\n{}", problems.join("\n"));
}
