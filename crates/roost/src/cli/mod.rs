//! The client commands of the `roost` CLI (everything but `serve`, `migrate` and `config`).
//!
//! Each command talks to a roost server through [`crate::Client`] and either prints its result
//! (a table, `key: value` lines, or with `--json` the server's JSON) and exits 0, or prints one
//! `error: …` line on stderr and exits 1. Usage errors are clap's (exit 2).

mod account;
mod alerts;
mod audit;
mod billing;
mod budget;
mod config;
mod credits;
mod ctx;
mod domains;
mod error;
mod holds;
mod keys;
mod limits;
mod manage;
mod orgs;
mod output;
mod password;
mod prompt;
mod records;
mod resources;
mod sso;
mod two_factor;
mod usage;
mod webhooks;
mod ws;

use std::io::Write;

use clap::Subcommand;

pub use account::{LoginArgs, SignupArgs};
pub use audit::AuditArgs;
pub use budget::BudgetCommand;
pub use credits::CreditsCommand;
pub use domains::DomainsCommand;
pub use error::CliError;
pub use holds::HoldsCommand;
pub use keys::KeysCommand;
pub use limits::LimitsArgs;
pub use orgs::{InvitationsCommand, OrgsCommand};
pub use password::{PasswordCommand, SessionsCommand};
pub use records::{HistoryCommand, StateCommand};
pub use resources::ResourcesCommand;
pub use two_factor::TwoFactorCommand;
pub use usage::UsageArgs;
pub use webhooks::{EventsArgs, WebhooksCommand};
pub use ws::WsCommand;

use ctx::Ctx;

/// Client commands; each talks to a roost server over HTTP.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create an account (with its personal workspace) and log in.
    Signup(SignupArgs),
    /// Log in (with a password, or through an identity provider with --sso) and save the session.
    Login(LoginArgs),
    /// End the session on the server and forget it here.
    Logout,
    /// Show who you are logged in as.
    Whoami,
    /// Reset a forgotten password (by mail).
    #[command(subcommand)]
    Password(PasswordCommand),
    /// Your sessions: list them, end one.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Two-factor sign-in with an authenticator app.
    #[command(subcommand, name = "2fa")]
    TwoFactor(TwoFactorCommand),
    /// An organization's verified mail domains (auto-join, suggestions).
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Organizations and their members.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Workspaces.
    #[command(subcommand)]
    Ws(WsCommand),
    /// Invitations to organizations.
    #[command(subcommand)]
    Invitations(InvitationsCommand),
    /// Workspace API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// An organization's audit log, newest first.
    Audit(AuditArgs),
    /// Credit wallets: balance, history, top-ups.
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// What an organization spent this cycle (or in a period), by member, workspace, key or action.
    Usage(UsageArgs),
    /// Per-cycle spend caps of workspaces and members.
    #[command(subcommand)]
    Budget(BudgetCommand),
    /// Webhook endpoints: create, list, deliveries, test, rotate, delete.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// An organization's events (low balance, top-ups, members, keys…), newest first.
    Events(EventsArgs),
    /// Every limit that applies to you in a workspace: budgets, spend limits, the balance.
    Limits(LimitsArgs),
    /// The plan catalog: seats, workspaces, credits, rate limits and trials of each plan.
    Plans,
    /// Resources of a workspace (apps, databases, buckets …).
    #[command(subcommand)]
    Resources(ResourcesCommand),
    /// Holds: reserve credits now, settle what was used later.
    #[command(subcommand)]
    Holds(HoldsCommand),
    /// A workspace's state: JSON documents by key, with versions.
    #[command(subcommand)]
    State(StateCommand),
    /// A workspace's history: an append-only stream of entries.
    #[command(subcommand)]
    History(HistoryCommand),
    /// An organization's invoices: list them, show one.
    #[command(subcommand)]
    Invoices(billing::InvoicesCommand),
    /// The operator's view of every org (needs an operator key: --operator-key or ROOST_OPERATOR_KEY).
    #[command(subcommand)]
    Admin(billing::AdminCommand),
    /// The operator's billing tasks (needs an operator key).
    #[command(subcommand)]
    Billing(billing::BillingCommand),
}

/// Options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// The roost server to talk to [default: the one saved by signup/login, else http://127.0.0.1:8080].
    #[arg(long, global = true, env = "ROOST_SERVER")]
    pub server: Option<String>,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Runs a client command; returns the process exit code.
pub async fn run(cmd: ClientCommand, opts: GlobalOpts) -> i32 {
    match dispatch(cmd, &opts).await {
        Ok(out) => {
            // A closed pipe (`roost orgs list | head -1`) is not worth a panic or an error.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush());
            0
        }
        Err(e) => {
            eprintln!("error: {}", output::clean(&e.to_string()));
            1
        }
    }
}

async fn dispatch(cmd: ClientCommand, opts: &GlobalOpts) -> Result<String, CliError> {
    let mut ctx = Ctx::load(opts)?;
    match cmd {
        ClientCommand::Signup(a) => account::signup(&mut ctx, a).await,
        ClientCommand::Login(a) => account::login(&mut ctx, a).await,
        ClientCommand::Logout => account::logout(&mut ctx).await,
        ClientCommand::Whoami => account::whoami(&ctx).await,
        ClientCommand::Password(c) => password::password(&mut ctx, c).await,
        ClientCommand::Sessions(c) => password::sessions(&mut ctx, c).await,
        ClientCommand::TwoFactor(c) => two_factor::run(&ctx, c).await,
        ClientCommand::Domains(c) => domains::run(&ctx, c).await,
        ClientCommand::Orgs(c) => orgs::run(&ctx, c).await,
        ClientCommand::Ws(c) => ws::run(&ctx, c).await,
        ClientCommand::Invitations(c) => orgs::invitations(&ctx, c).await,
        ClientCommand::Keys(c) => keys::run(&ctx, c).await,
        ClientCommand::Audit(a) => audit::run(&ctx, a).await,
        ClientCommand::Credits(c) => credits::run(&ctx, c).await,
        ClientCommand::Usage(a) => usage::usage(&ctx, a).await,
        ClientCommand::Budget(c) => budget::budget(&ctx, c).await,
        ClientCommand::Webhooks(c) => webhooks::run(&ctx, c).await,
        ClientCommand::Events(a) => webhooks::events(&ctx, a).await,
        ClientCommand::Limits(a) => limits::run(&ctx, a).await,
        ClientCommand::Plans => manage::plans(&ctx).await,
        ClientCommand::Resources(c) => resources::run(&ctx, c).await,
        ClientCommand::Holds(c) => holds::run(&ctx, c).await,
        ClientCommand::State(c) => records::run_state(&ctx, c).await,
        ClientCommand::History(c) => records::run_history(&ctx, c).await,
        ClientCommand::Invoices(c) => billing::invoices(&ctx, c).await,
        ClientCommand::Admin(c) => billing::admin(&ctx, c).await,
        ClientCommand::Billing(c) => billing::billing(&ctx, c).await,
    }
}
