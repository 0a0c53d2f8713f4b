//! A real DNS server (Debian's dnsmasq) on 127.0.0.1: tests point `dns_resolver` at it and change
//! the TXT records it serves (each change restarts it on the same port).

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Where dnsmasq is looked for.
const DNSMASQ: &[&str] = &["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"];

/// A running dnsmasq, authoritative (`--local`) for `zone`; stopped when dropped.
pub struct DnsServer {
    pub port: u16,
    zone: String,
    bin: &'static str,
    child: Option<Child>,
}

impl DnsServer {
    /// Starts one answering for names under `zone` (e.g. `test`), with no records yet. `Err` is a
    /// `SKIPPED: …` line to print when dnsmasq is not installed.
    pub async fn start(zone: &str) -> Result<Self, String> {
        let bin = DNSMASQ.iter().copied().find(|p| std::path::Path::new(p).exists()).ok_or_else(|| {
            super::skipped(
                "dnsmasq is not installed (the DNS server of the domain tests): apt-get install dnsmasq-base",
            )
        })?;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let mut s = Self { port, zone: zone.to_string(), bin, child: None };
        s.serve(&[]).await?;
        Ok(s)
    }

    /// `dns_resolver` for roost.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Serves exactly these TXT records (`name`, `value`) from now on.
    ///
    /// # Panics
    /// When dnsmasq does not come back up.
    pub async fn set_txt(&mut self, records: &[(&str, &str)]) {
        self.serve(records).await.expect("restart dnsmasq");
    }

    async fn serve(&mut self, records: &[(&str, &str)]) -> Result<(), String> {
        if let Some(mut old) = self.child.take() {
            let _ = old.kill().await;
        }
        let mut cmd = Command::new(self.bin);
        cmd.args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null"])
            .args(["--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=", "--user=root"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--local=/{}/", self.zone));
        for (name, value) in records {
            // No commas in test values: dnsmasq would split there.
            cmd.arg(format!("--txt-record={name},{value}"));
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", self.bin))?;
        self.child = Some(child);
        // Up when it takes TCP connections on its port (it serves UDP and TCP together).
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("dnsmasq did not listen on port {} within 5 s", self.port))
    }
}
