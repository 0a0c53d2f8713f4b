//! Billing (API.md "Billing"): operator keys and the admin routes, billing on/off gating of
//! top-ups and adjustments, purchases released by signed payment reports (once), invoices per
//! cycle on the injected clock, finalized once with gapless numbers, and auto-reload paused by
//! failed payments.

mod cli;
mod common;
mod dashboard;
mod invoices;
mod operator;
mod properties;
mod purchases;
