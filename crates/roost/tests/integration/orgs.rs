//! Scenarios: orgs.
