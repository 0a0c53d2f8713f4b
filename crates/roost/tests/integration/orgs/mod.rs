//! Scenarios: organizations — creation and plans, listing, renaming, plan changes, deletion,
//! members and their roles, leaving, and the transfer of ownership.

mod lifecycle;
mod members;
