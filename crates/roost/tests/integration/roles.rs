//! Scenarios: roles.
