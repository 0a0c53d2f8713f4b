//! The client commands of the `roost` CLI (everything but `serve`, `migrate` and `config`).

use clap::Subcommand;

/// Client commands; each talks to a roost server over HTTP.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Show who you are logged in as.
    Whoami,
}

/// Options every client command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOpts {
    /// The roost server to talk to (saved by signup/login).
    #[arg(long, global = true, env = "ROOST_SERVER")]
    pub server: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Runs a client command; returns the process exit code.
pub async fn run(cmd: ClientCommand, opts: GlobalOpts) -> i32 {
    let _ = (cmd, opts);
    eprintln!("error: not implemented yet");
    2
}
