//! Scenarios: invitations.
