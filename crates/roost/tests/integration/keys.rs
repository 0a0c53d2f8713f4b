//! Scenarios: keys.
