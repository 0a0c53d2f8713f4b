//! Scenarios: cli.
