//! The `roost` binary: `serve`, `migrate`, `backup`, `restore`, `config`, and the client commands.

mod backup;
mod operator;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roost::cli::{self, ClientCommand, GlobalOpts};
use roost_server::Settings;

#[derive(Debug, Parser)]
#[command(name = "roost", version, about = "Tenancy and prepaid credits for SaaS products, in one binary.")]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite `roost.db` in the working directory unless told otherwise).
    Serve(ServerArgs),
    /// Apply database migrations and exit.
    Migrate(ServerArgs),
    /// Print (default) or apply the SQL that makes PostgreSQL's application role: a login role
    /// that is neither superuser nor owner (so row-level security binds it), granted what
    /// `roost serve` needs. Migrations stay with the owner (`roost migrate`).
    SetupPostgres(SetupPostgresArgs),
    /// Write a consistent backup of the database to FILE while servers keep running (SQLite:
    /// VACUUM INTO; PostgreSQL: pg_dump's custom format).
    Backup(BackupArgs),
    /// Replace the database with a backup made by `roost backup` (refuses a database that holds
    /// roost data unless --force; stop the servers first).
    Restore(RestoreArgs),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Operator keys (rso_…), made and revoked against the server's database.
    #[command(subcommand)]
    Operator(OperatorArgs),
    /// Print a shell completion script, e.g. `roost completions bash > /etc/bash_completion.d/roost`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented example roost.toml.
    Default,
}

#[derive(Debug, clap::Args)]
struct SetupPostgresArgs {
    /// The application role to make or update.
    #[arg(long, default_value = roost_store::DEFAULT_ROLE)]
    role: String,
    /// A file holding the role's password (its first line); without it the role gets none (for
    /// peer, certificate or trust authentication, or set it yourself).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Apply the SQL (as the owner, given by --database-url) instead of printing it.
    #[arg(long, requires = "database_url")]
    apply: bool,
    /// The OWNER's URL of roost's database (the role that runs `roost migrate`), for --apply.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
struct BackupArgs {
    /// The backup file to write (must not exist).
    file: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Subcommand)]
enum OperatorArgs {
    /// Make an operator key; its secret is printed once (only a hash is stored).
    #[command(name = "create-key")]
    CreateKey {
        /// A name to know the key by (who or what uses it).
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Revoke an operator key: the next request with it is refused.
    #[command(name = "revoke-key")]
    RevokeKey {
        /// The key's id (opk_…).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List the operator keys (never their secrets).
    #[command(name = "list-keys")]
    ListKeys {
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// The backup file to restore.
    file: PathBuf,
    /// Replace a database that already holds roost data.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ROOST_LISTEN")]
    listen: Option<String>,
    /// Database URL: sqlite://FILE or postgres://… [default: sqlite://roost.db].
    #[arg(long, env = "ROOST_DATABASE_URL")]
    database_url: Option<String>,
    /// Configuration file [default: ./roost.toml if present].
    #[arg(long, env = "ROOST_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr: auto (JSON when not a terminal), text or json.
    #[arg(long, env = "ROOST_LOG_FORMAT")]
    log_format: Option<String>,
    /// SMTP server for outgoing mail: smtp://user:pass@host:587?tls=required [default: mail goes to the log].
    #[arg(long, env = "ROOST_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The From: of outgoing mail [default: roost <roost@localhost>].
    #[arg(long, env = "ROOST_MAIL_FROM")]
    mail_from: Option<String>,
    /// The URL people reach this server at; links in mails point here [default: http://127.0.0.1:8080].
    #[arg(long, env = "ROOST_PUBLIC_URL")]
    public_url: Option<String>,
    /// Redis for rate limits shared by every replica, e.g. redis://127.0.0.1:6379.
    #[arg(long, env = "ROOST_REDIS_URL")]
    redis_url: Option<String>,
    /// Billing on: the secret (whsec_…) the payment system signs POST /v1/billing/payments with.
    #[arg(long, env = "ROOST_BILLING_INTAKE_SECRET", hide_env_values = true)]
    billing_intake_secret: Option<String>,
}

impl ServerArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from("roost.toml"), false),
        };
        let mut s = Settings::load(Some(&path), required)?;
        if let Some(l) = &self.listen {
            s.listen.clone_from(l);
        }
        if let Some(d) = &self.database_url {
            s.database_url.clone_from(d);
        }
        if let Some(f) = &self.log_format {
            s.log_format.clone_from(f);
        }
        if let Some(u) = &self.smtp_url {
            s.smtp_url = Some(u.clone());
        }
        if let Some(f) = &self.mail_from {
            s.mail_from.clone_from(f);
        }
        if let Some(u) = &self.public_url {
            s.public_url.clone_from(u);
        }
        if let Some(r) = &self.redis_url {
            s.redis_url = Some(r.clone());
        }
        if let Some(b) = &self.billing_intake_secret {
            s.billing_intake_secret = Some(b.clone());
        }
        s.validate()?;
        Ok(s)
    }
}

/// Logs on stderr, filtered by `ROOST_LOG`: JSON lines (no colour codes) when `format` is `json`,
/// or `auto` and stderr is not a terminal (a file, journald, a container log); text otherwise,
/// coloured only on a terminal.
fn init_logging(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let terminal = std::io::stderr().is_terminal();
    let json = format == "json" || (format == "auto" && !terminal);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).with_span_list(false).init();
    } else {
        builder.with_ansi(terminal).init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    init_logging(&settings.log_format);
    tracing::info!(?settings, "starting");
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    // Connect, migrate and check the catalog before saying "listening": a database that cannot be
    // used ends the process here, with its cause.
    let state = roost_server::AppState::new(settings, std::sync::Arc::new(roost_server::SystemClock)).await?;
    // One line on stdout that scripts (and tests) can read the bound address from.
    println!("roost listening on http://{}", listener.local_addr()?);
    roost_server::serve_state(state, listener, shutdown_signal()).await
}

async fn migrate(args: ServerArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    init_logging(&settings.log_format);
    let store = roost_store::Store::connect_with(&settings.database_url, settings.pool()).await?;
    let applied = store.migrate().await?;
    println!(
        "migrations applied: {}",
        if applied.is_empty() { "none (up to date)".to_string() } else { format!("{applied:?}") }
    );
    store.close().await;
    Ok(())
}

async fn operator_cmd(a: OperatorArgs) -> anyhow::Result<()> {
    let (command, server) = match a {
        OperatorArgs::CreateKey { name, server } => (operator::OperatorCommand::CreateKey { name }, server),
        OperatorArgs::RevokeKey { id, server } => (operator::OperatorCommand::RevokeKey { id }, server),
        OperatorArgs::ListKeys { server } => (operator::OperatorCommand::ListKeys, server),
    };
    let settings = server.settings()?;
    init_logging(&settings.log_format);
    let store = roost_store::Store::connect_with(&settings.database_url, settings.pool()).await?;
    let out = operator::run(&store, command).await;
    store.close().await;
    print!("{}", out?);
    Ok(())
}

async fn setup_postgres(a: SetupPostgresArgs) -> anyhow::Result<()> {
    let password = match &a.password_file {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            let first = text.lines().next().unwrap_or("").to_string();
            anyhow::ensure!(!first.is_empty(), "{} holds no password on its first line", f.display());
            Some(first)
        }
        None => None,
    };
    let sql = roost_store::setup_sql(&a.role, password.as_deref())?;
    let Some(url) = a.database_url.filter(|_| a.apply) else {
        print!("{sql}");
        return Ok(());
    };
    anyhow::ensure!(
        url.starts_with("postgres:") || url.starts_with("postgresql:"),
        "setup-postgres needs the owner's postgres://… URL of roost's database"
    );
    let store = roost_store::Store::connect(&url).await?;
    let versions = store.schema_versions().await.ok();
    store.setup_role(&a.role, password.as_deref()).await?;
    store.close().await;
    println!("role `{}` is ready: NOSUPERUSER NOBYPASSRLS, owns nothing, granted roost's tables and functions", a.role);
    match versions {
        Some((applied, newest)) if applied >= newest => {}
        Some((applied, newest)) => println!(
            "the schema is at version {applied} of {newest}: run `roost migrate` with this owner's URL before starting roost"
        ),
        None => println!("no roost schema yet: run `roost migrate` with this owner's URL before starting roost"),
    }
    println!("start the server with --database-url postgres://{}:…@<host>/<database>", a.role);
    Ok(())
}

async fn backup_cmd(a: BackupArgs) -> anyhow::Result<()> {
    let settings = a.server.settings()?;
    init_logging(&settings.log_format);
    print!("{}", backup::backup(&settings.database_url, &a.file, settings.pool()).await?);
    Ok(())
}

async fn restore_cmd(a: RestoreArgs) -> anyhow::Result<()> {
    let settings = a.server.settings()?;
    init_logging(&settings.log_format);
    print!("{}", backup::restore(&settings.database_url, &a.file, a.force).await?);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve(a).await,
        Command::Migrate(a) => migrate(a).await,
        Command::SetupPostgres(a) => setup_postgres(a).await,
        Command::Backup(a) => backup_cmd(a).await,
        Command::Restore(a) => restore_cmd(a).await,
        Command::Operator(a) => operator_cmd(a).await,
        Command::Config(ConfigCommand::Default) => {
            print!("{}", roost_server::settings::EXAMPLE_CONFIG);
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "roost",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Client(c) => return ExitCode::from(u8::try_from(cli::run(c, cli.global).await).unwrap_or(1)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
