//! Operations (issue 11): faults the server survives, start-up errors, HTTP connection limits,
//! metrics, readiness, request ids, proxies, the list cursors, and row-level security.

mod audit_chain;
mod backup;
mod cursors;
mod failover;
mod faults;
mod http;
mod kit;
mod observe;
mod pg_tls;
mod row_security;
mod startup;
