//! Scenarios: audit.
