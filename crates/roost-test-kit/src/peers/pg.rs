//! PostgreSQL clusters of a test's own: `initdb` (Debian's `postgresql-15`, run as the `postgres`
//! user when the tests run as root) into a temporary directory, on a spare port of 127.0.0.1,
//! started and stopped with `pg_ctl`; a standby made from one with `pg_basebackup -R`. The
//! machine's own cluster is never touched. Dropping a cluster stops it and removes its directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where the PostgreSQL server programs are looked for, newest first.
const BIN_DIRS: &[&str] = &["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];

/// A cluster in a directory of its own; stopped (immediately) and removed when dropped.
pub struct PgCluster {
    pub port: u16,
    /// The temporary directory holding the data directory (`data`), the log and any files the
    /// test puts there (certificates).
    pub root: PathBuf,
    bin: PathBuf,
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The directory of `initdb` and `pg_ctl`, or a `SKIPPED: …` line.
pub fn pg_bin_dir() -> Result<PathBuf, String> {
    BIN_DIRS.iter().map(PathBuf::from).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists()).ok_or_else(
        || {
            super::skipped(
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql-15",
            )
        },
    )
}

/// Whether this process runs as root (then the cluster's programs run as `postgres`).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` (in `bin`) as the user that owns the clusters.
fn as_owner(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) -> Result<Output, String> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A port nothing listens on right now.
fn spare_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// A new temporary directory the cluster's owner may write.
fn owned_dir(tag: &str) -> Result<PathBuf, String> {
    let root = std::env::temp_dir().join(format!("roost-pg-{tag}-{}", roost_domain::IdKind::Event.generate()));
    std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    chown(&root)?;
    Ok(root)
}

/// Gives `path` to the cluster's owner (when running as root).
pub fn chown(path: &Path) -> Result<(), String> {
    if is_root() {
        let mut c = Command::new("chown");
        c.args(["-R", "postgres:postgres"]).arg(path);
        run(c, "chown")?;
    }
    Ok(())
}

impl PgCluster {
    /// `initdb` of a new cluster (trusting local and 127.0.0.1 connections, replication too) on a
    /// spare port, with `conf` appended to its `postgresql.conf`. Not started yet.
    pub fn init(conf: &str) -> Result<Self, String> {
        let bin = pg_bin_dir()?;
        let root = owned_dir("primary")?;
        let c = Self { port: spare_port()?, root, bin };
        let mut initdb = as_owner(&c.bin, "initdb");
        initdb
            .args(["--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "-D"])
            .arg(c.data());
        run(initdb, "initdb")?;
        c.configure(conf)?;
        Ok(c)
    }

    /// A standby of `primary` (which must be running): `pg_basebackup -R` streaming from it, on
    /// a port of its own, with `conf` appended. Not started yet.
    pub fn standby_of(primary: &Self, conf: &str) -> Result<Self, String> {
        let root = owned_dir("standby")?;
        let c = Self { port: spare_port()?, root, bin: primary.bin.clone() };
        let mut bb = as_owner(&c.bin, "pg_basebackup");
        bb.args(["-h", "127.0.0.1", "-p", &primary.port.to_string(), "-U", "postgres", "-X", "stream", "-R", "-D"])
            .arg(c.data());
        run(bb, "pg_basebackup")?;
        c.configure(conf)?;
        Ok(c)
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Appends the cluster's own settings (port, loopback only, sockets in its directory, small
    /// and fast) and `conf` to `postgresql.conf`; later lines win.
    fn configure(&self, conf: &str) -> Result<(), String> {
        use std::io::Write;
        let path = self.data().join("postgresql.conf");
        let mut f =
            std::fs::OpenOptions::new().append(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(
            f,
            "\n# roost test cluster\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 40\nshared_buffers = 16MB\nfsync = off\nfull_page_writes = off\n{conf}",
            self.port,
            self.root.display()
        )
        .map_err(|e| e.to_string())
    }

    /// Replaces `pg_hba.conf`.
    pub fn set_hba(&self, hba: &str) -> Result<(), String> {
        let path = self.data().join("pg_hba.conf");
        std::fs::write(&path, hba).map_err(|e| format!("{}: {e}", path.display()))?;
        chown(&path)
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<Output, String> {
        let mut c = as_owner(&self.bin, "pg_ctl");
        c.args(args).arg("-D").arg(self.data());
        run(c, &format!("pg_ctl {}", args.join(" ")))
    }

    /// Starts the cluster and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let log = self.root.join("server.log");
        let started = self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log.to_string_lossy()]);
        started.map(|_| ()).map_err(|e| format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()))
    }

    /// Stops the cluster: `immediate` is a crash (no shutdown checkpoint), `fast` a clean stop.
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        self.pg_ctl(&["stop", "-w", "-m", mode]).map(|_| ())
    }

    /// Promotes a standby to a primary and waits until it accepts writes.
    pub fn promote(&self) -> Result<(), String> {
        self.pg_ctl(&["promote", "-w", "-t", "60"]).map(|_| ())
    }

    /// The URL of database `db` on it, as user `postgres`, with `params` (`a=b&c=d`) if any.
    pub fn url(&self, db: &str, params: &str) -> String {
        let q = if params.is_empty() { String::new() } else { format!("?{params}") };
        format!("postgres://postgres@127.0.0.1:{}/{db}{q}", self.port)
    }
}
