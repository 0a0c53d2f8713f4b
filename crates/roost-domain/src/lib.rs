#![doc = include_str!("../README.md")]

pub mod billing;
pub mod credits;
pub mod domains;
pub mod ids;
pub mod ledger;
pub mod plans;
pub mod records;
pub mod roles;
pub mod time;
pub mod tokens;
pub mod totp;
pub mod validate;

pub use ids::IdKind;
pub use plans::{Catalog, Plan};
pub use roles::{OrgRole, Permission, WsRole};
