//! DNS TXT lookups, for domain verification: through `dns_resolver` when set (an `ip:port`), else
//! the system's resolver configuration. A fresh resolver per lookup: no cache, so a record just
//! published (or removed) is seen as it is now.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::Settings;

/// The TXT strings published at `name` (each record's strings joined, as RFC 7208 reads them);
/// empty when there are none. `Err` when the DNS could not be asked.
pub async fn txt_values(settings: &Settings, name: &str) -> Result<Vec<String>, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(3);
    opts.attempts = 2;
    opts.cache_size = 0;
    let provider = TokioRuntimeProvider::default();
    let mut builder = match &settings.dns_resolver {
        Some(addr) => {
            let addr: SocketAddr = addr.parse().map_err(|e| format!("dns_resolver `{addr}`: {e}"))?;
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            server.connections = vec![udp, tcp];
            Resolver::builder_with_config(ResolverConfig::from_name_servers(vec![server]), provider)
        }
        None => Resolver::builder(provider).map_err(|e| format!("the system's DNS configuration: {e}"))?,
    };
    *builder.options_mut() = opts;
    let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.txt_lookup(fqdn).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect())
                }
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
        Err(e) => Err(format!("DNS lookup of {name}: {e}")),
    }
}
