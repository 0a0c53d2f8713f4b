//! The dashboard at `/app`, through its pages over plain HTTP (cookies, forms, CSRF tokens) on both
//! backends: the whole story of a team, the role matrix through the pages (what each role sees and
//! what a forged post gets), CSRF and session rules, outsiders' 404s, two-factor sign-in, sessions, email
//! verification, alerts, auto-reload, events, webhooks, and snapshots of the pages.

mod account;
mod browser;
mod guards;
mod roles;
mod signals;
mod snapshots;
mod sso_browser;
mod story;
mod two_factor;
pub(crate) mod web;
mod webdriver;
mod webhooks;
mod workspace;
