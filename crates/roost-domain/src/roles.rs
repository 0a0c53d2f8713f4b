//! Org and workspace roles, and the one matrix that says what each may do.
//!
//! The matrix is data: one row per [`Permission`], one column per role, in the same order as the
//! role table of ARCHITECTURE.md. Everything that asks "may this caller …?" reads it through
//! [`OrgRole::allows`] and [`WsRole::allows`]; nothing else in roost encodes a role rule.

use serde::{Deserialize, Serialize};

/// A role in an organization. Exactly one member is the `owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Owner,
    Admin,
    Billing,
    Member,
}

/// A role in one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WsRole {
    Admin,
    Member,
    Viewer,
}

/// Something a caller may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Change the plan, top up, manage payment and auto-reload.
    ManageBilling,
    /// Delete the org.
    DeleteOrg,
    /// Hand ownership to another member.
    TransferOwnership,
    /// Rename the org.
    UpdateOrg,
    /// Invite org members, change their roles, remove them.
    ManageMembers,
    /// Create workspaces.
    CreateWorkspace,
    /// Delete workspaces.
    DeleteWorkspace,
    /// See every workspace of the org, not only the ones the caller belongs to.
    SeeAllWorkspaces,
    /// Manage one workspace: its settings, members, keys and budget.
    ManageWorkspace,
    /// Create API keys and resources, and charge credits.
    UseWorkspace,
    /// Read a workspace, its resources and its transactions.
    ReadWorkspace,
    /// Read the org's usage.
    ReadUsage,
    /// Read the whole audit log, not only one's own actions.
    ReadAllAudit,
    /// Set wallet alerts and read the org's events.
    WatchCredits,
    /// Create, change and delete the org's webhook endpoints.
    ManageWebhooks,
}

const Y: bool = true;
const N: bool = false;

/// The role matrix. Columns: org owner, org admin, org billing, org member, ws admin, ws member,
/// ws viewer.
pub const MATRIX: &[(Permission, [bool; 7])] = &[
    (Permission::ManageBilling, [Y, N, Y, N, N, N, N]),
    (Permission::DeleteOrg, [Y, N, N, N, N, N, N]),
    (Permission::TransferOwnership, [Y, N, N, N, N, N, N]),
    (Permission::UpdateOrg, [Y, Y, N, N, N, N, N]),
    (Permission::ManageMembers, [Y, Y, N, N, N, N, N]),
    (Permission::CreateWorkspace, [Y, Y, N, N, N, N, N]),
    (Permission::DeleteWorkspace, [Y, N, N, N, N, N, N]),
    (Permission::SeeAllWorkspaces, [Y, Y, Y, N, N, N, N]),
    (Permission::ManageWorkspace, [Y, Y, N, N, Y, N, N]),
    (Permission::UseWorkspace, [Y, Y, N, N, Y, Y, N]),
    (Permission::ReadWorkspace, [Y, Y, N, N, Y, Y, Y]),
    (Permission::ReadUsage, [Y, Y, Y, N, N, N, N]),
    (Permission::ReadAllAudit, [Y, Y, N, N, N, N, N]),
    (Permission::WatchCredits, [Y, Y, Y, N, N, N, N]),
    (Permission::ManageWebhooks, [Y, Y, N, N, N, N, N]),
];

fn cell(p: Permission, column: usize) -> bool {
    MATRIX.iter().find(|(q, _)| *q == p).is_some_and(|(_, row)| row[column])
}

impl OrgRole {
    /// Whether this org role may do `p` (anywhere in the org).
    pub fn allows(self, p: Permission) -> bool {
        cell(p, self as usize)
    }

    /// The role's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Owner => "owner",
            OrgRole::Admin => "admin",
            OrgRole::Billing => "billing",
            OrgRole::Member => "member",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [OrgRole::Owner, OrgRole::Admin, OrgRole::Billing, OrgRole::Member].into_iter().find(|r| r.as_str() == s)
    }
}

impl WsRole {
    /// Whether this workspace role may do `p` in its workspace.
    pub fn allows(self, p: Permission) -> bool {
        cell(p, 4 + self as usize)
    }

    /// The role's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WsRole::Admin => "admin",
            WsRole::Member => "member",
            WsRole::Viewer => "viewer",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [WsRole::Admin, WsRole::Member, WsRole::Viewer].into_iter().find(|r| r.as_str() == s)
    }
}

/// What a caller may do in one workspace: the union of its org role and its workspace role.
/// An API key has no org role and acts as a workspace member.
pub fn allows_in_workspace(org: Option<OrgRole>, ws: Option<WsRole>, p: Permission) -> bool {
    org.is_some_and(|r| r.allows(p)) || ws.is_some_and(|r| r.allows(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_has_exactly_one_row() {
        for (p, _) in MATRIX {
            assert_eq!(MATRIX.iter().filter(|(q, _)| q == p).count(), 1, "{p:?}");
        }
    }

    #[test]
    fn roles_round_trip_their_names() {
        for r in [OrgRole::Owner, OrgRole::Admin, OrgRole::Billing, OrgRole::Member] {
            assert_eq!(OrgRole::parse(r.as_str()), Some(r));
        }
        for r in [WsRole::Admin, WsRole::Member, WsRole::Viewer] {
            assert_eq!(WsRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(OrgRole::parse("Owner"), None);
        assert_eq!(WsRole::parse("owner"), None);
    }

    #[test]
    fn org_role_and_workspace_role_combine() {
        use Permission::*;
        assert!(allows_in_workspace(Some(OrgRole::Admin), None, ManageWorkspace));
        assert!(!allows_in_workspace(Some(OrgRole::Member), Some(WsRole::Viewer), UseWorkspace));
        assert!(allows_in_workspace(Some(OrgRole::Member), Some(WsRole::Member), UseWorkspace));
        assert!(!allows_in_workspace(Some(OrgRole::Billing), None, ReadWorkspace));
        assert!(!allows_in_workspace(None, None, ReadWorkspace));
    }
}
