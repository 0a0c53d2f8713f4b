//! The org's invoices in the dashboard (owner and billing; the API decides): the list, and one
//! invoice with its lines, amounts and what is still due.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{Layout, problem_page};
use crate::AppState;
use crate::app::model::{List, when, when_opt};
use crate::app::session::Session;

/// The invoice routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/app/o/{org}/invoices", get(list)).route("/app/o/{org}/invoices/{id}", get(show))
}

/// One line of an invoice.
#[derive(Debug, Deserialize)]
pub struct InvoiceLine {
    pub kind: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub amount: i64,
}

/// Who an invoice is addressed to.
#[derive(Debug, Deserialize)]
pub struct BilledTo {
    pub name: String,
    pub email: String,
}

/// An invoice as the API answers it.
#[derive(Debug, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub number: Option<i64>,
    #[serde(deserialize_with = "when")]
    pub period_start: String,
    #[serde(deserialize_with = "when")]
    pub period_end: String,
    pub status: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    pub total: i64,
    pub amount_due: i64,
    pub billed_to: BilledTo,
    #[serde(deserialize_with = "when_opt")]
    pub issued_at: Option<String>,
    #[serde(deserialize_with = "when_opt")]
    pub paid_at: Option<String>,
}

/// The list page.
#[derive(Template, WebTemplate)]
#[template(path = "app/invoices.html")]
pub struct InvoicesPage {
    l: Layout,
    org_id: String,
    invoices: Vec<Invoice>,
}

/// One invoice.
#[derive(Template, WebTemplate)]
#[template(path = "app/invoice.html")]
pub struct InvoicePage {
    l: Layout,
    org_id: String,
    i: Invoice,
}

async fn list(State(st): State<AppState>, s: Session, Path(org): Path<String>) -> Response {
    let invoices: List<Invoice> = match s.call().get(&format!("/v1/orgs/{org}/invoices?limit=100")).await {
        Ok(i) => i,
        Err(e) => return problem_page(&e),
    };
    let here = format!("/app/o/{org}/invoices");
    let l = Layout::new(&st, &s, "Invoices", Some(&org), &here);
    InvoicesPage { l, org_id: org, invoices: invoices.items }.into_response()
}

async fn show(State(st): State<AppState>, s: Session, Path((org, id)): Path<(String, String)>) -> Response {
    let i: Invoice = match s.call().get(&format!("/v1/invoices/{id}")).await {
        Ok(i) => i,
        Err(e) => return problem_page(&e),
    };
    let here = format!("/app/o/{org}/invoices");
    let title = i.number.map_or_else(|| "Invoice (draft)".to_string(), |n| format!("Invoice No. {n}"));
    let l = Layout::new(&st, &s, &title, Some(&org), &here);
    InvoicePage { l, org_id: org, i }.into_response()
}
