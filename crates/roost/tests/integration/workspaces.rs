//! Scenarios: workspaces.
