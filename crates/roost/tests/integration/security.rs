//! Scenarios: security.
