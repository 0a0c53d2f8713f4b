//! Scenarios: resources.
