//! Which nodes the session uses and how it reaches them: the host filter
//! (allow and deny lists of addresses and datacenters) and address
//! translation (the addresses nodes advertise in `system.local`,
//! `system.peers` and events, mapped to ones the client can reach, for
//! clusters behind NAT or in containers).
//!
//! Both are applied by the cluster worker when it reads the topology, so a
//! filtered-out node gets no pool and never appears in a plan, and every
//! pool (shard-aware port included) connects to the translated address.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Allow and deny lists of node addresses and datacenters. Empty lists
/// do not restrict. A node is used when it passes every non-empty list:
/// its address is in the allow list (if any) and not in the deny list,
/// and likewise its datacenter. Addresses are the ones the driver
/// connects to (after address translation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFilter {
    pub allow_hosts: Vec<IpAddr>,
    pub deny_hosts: Vec<IpAddr>,
    pub allow_dcs: Vec<String>,
    pub deny_dcs: Vec<String>,
}

impl HostFilter {
    /// Whether the filter restricts anything.
    pub fn is_empty(&self) -> bool {
        self.allow_hosts.is_empty()
            && self.deny_hosts.is_empty()
            && self.allow_dcs.is_empty()
            && self.deny_dcs.is_empty()
    }

    /// Whether the address lists let `ip` through (the datacenter may
    /// still exclude it).
    pub fn accepts_address(&self, ip: IpAddr) -> bool {
        (self.allow_hosts.is_empty() || self.allow_hosts.contains(&ip))
            && !self.deny_hosts.contains(&ip)
    }

    /// Whether a node at `ip` in `datacenter` is used.
    pub fn accepts(&self, ip: IpAddr, datacenter: &str) -> bool {
        self.accepts_address(ip)
            && (self.allow_dcs.is_empty() || self.allow_dcs.iter().any(|d| d == datacenter))
            && !self.deny_dcs.iter().any(|d| d == datacenter)
    }

    /// Parses a comma-separated list of IP addresses (the DataStax form;
    /// blanks around entries ignored, empty entries skipped).
    pub fn parse_hosts(list: &str) -> Result<Vec<IpAddr>, String> {
        entries(list)
            .map(|entry| {
                entry
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .map_err(|_| format!("{entry:?} is not an IP address"))
            })
            .collect()
    }

    /// Parses a comma-separated list of datacenter names.
    pub fn parse_dcs(list: &str) -> Vec<String> {
        entries(list).map(str::to_owned).collect()
    }
}

fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|e| !e.is_empty())
}

/// Maps the address a node advertises to the one to connect to. Called by
/// the cluster worker (a runtime thread) for every peer of every topology
/// read and for every status event, so it must be quick and must not
/// block. `None` keeps the advertised address.
pub trait AddressTranslator: Send + Sync + fmt::Debug {
    fn translate(&self, advertised: SocketAddr) -> Option<SocketAddr>;
}

/// A fixed map from advertised IP addresses to reachable ones, with the
/// port kept unless the entry names one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticAddressMap {
    entries: HashMap<IpAddr, Reachable>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reachable {
    Ip(IpAddr),
    Socket(SocketAddr),
}

impl StaticAddressMap {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds (or replaces) one entry: `advertised` is an IP address,
    /// `reachable` an IP address (the port stays the cluster's) or
    /// `ip:port` / `[v6]:port`.
    pub fn insert(&mut self, advertised: &str, reachable: &str) -> Result<(), String> {
        let advertised = advertised.trim();
        let key = advertised
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .map_err(|_| format!("advertised address {advertised:?} is not an IP address"))?;
        let value = parse_reachable(reachable).ok_or_else(|| {
            format!("reachable address {reachable:?} is not an IP address or IP:port")
        })?;
        self.entries.insert(key, value);
        Ok(())
    }
}

/// `ip`, `[v6]`, `ip:port` or `[v6]:port` (port not 0).
pub fn parse_reachable_address(text: &str, port: u16) -> Option<SocketAddr> {
    match parse_reachable(text)? {
        Reachable::Ip(ip) => Some(SocketAddr::new(ip, port)),
        Reachable::Socket(s) => Some(s),
    }
}

fn parse_reachable(text: &str) -> Option<Reachable> {
    let text = text.trim();
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return (socket.port() != 0).then_some(Reachable::Socket(socket));
    }
    text.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .ok()
        .map(Reachable::Ip)
}

impl AddressTranslator for StaticAddressMap {
    fn translate(&self, advertised: SocketAddr) -> Option<SocketAddr> {
        match self.entries.get(&advertised.ip())? {
            Reachable::Ip(ip) => Some(SocketAddr::new(*ip, advertised.port())),
            Reachable::Socket(s) => Some(*s),
        }
    }
}

/// The filter and the translation together, as the cluster layer applies
/// them.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    pub filter: HostFilter,
    /// Asked first.
    pub translator: Option<Arc<dyn AddressTranslator>>,
    /// Applies when there is no translator or it keeps the address.
    pub map: StaticAddressMap,
}

impl HostPolicy {
    /// Whether any address is translated.
    pub fn translates(&self) -> bool {
        self.translator.is_some() || !self.map.is_empty()
    }

    /// Where to connect to a node that advertises `advertised`.
    pub fn reachable(&self, advertised: SocketAddr) -> SocketAddr {
        let translated = self
            .translator
            .as_ref()
            .and_then(|t| t.translate(advertised))
            .or_else(|| self.map.translate(advertised));
        match translated {
            Some(to) => {
                tracing::trace!(%advertised, %to, "address translated");
                to
            }
            None => advertised,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn filter_lists_combine() {
        let mut f = HostFilter::default();
        assert!(f.is_empty() && f.accepts(ip("10.0.0.1"), "dc1"));
        f.deny_hosts = HostFilter::parse_hosts(" 10.0.0.1, ,::1 ").unwrap();
        assert_eq!(f.deny_hosts, vec![ip("10.0.0.1"), ip("::1")]);
        assert!(!f.accepts(ip("10.0.0.1"), "dc1"));
        assert!(f.accepts(ip("10.0.0.2"), "dc1"));
        f.allow_dcs = HostFilter::parse_dcs("dc2");
        assert!(!f.accepts(ip("10.0.0.2"), "dc1"));
        assert!(f.accepts(ip("10.0.0.2"), "dc2"));
        f.deny_dcs = vec!["dc2".into()];
        assert!(!f.accepts(ip("10.0.0.2"), "dc2"));
        f = HostFilter {
            allow_hosts: vec![ip("10.0.0.3")],
            ..HostFilter::default()
        };
        assert!(f.accepts_address(ip("10.0.0.3")) && !f.accepts_address(ip("10.0.0.4")));
        assert!(HostFilter::parse_hosts("10.0.0.1,host.example").is_err());
        assert!(HostFilter::parse_hosts("").unwrap().is_empty());
    }

    #[test]
    fn static_map_translates_ip_and_keeps_or_replaces_the_port() {
        let mut m = StaticAddressMap::default();
        m.insert("10.255.0.1", "127.0.0.1").unwrap();
        m.insert("10.255.0.2", "127.0.0.2:19000").unwrap();
        m.insert("[fd00::1]", "[::1]:9043").unwrap();
        assert!(m.insert("nope", "127.0.0.1").is_err());
        assert!(m.insert("10.0.0.9", "127.0.0.1:0").is_err());
        assert!(m.insert("10.0.0.9", "").is_err());
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            m.translate(at("10.255.0.1:9042")),
            Some(at("127.0.0.1:9042"))
        );
        assert_eq!(
            m.translate(at("10.255.0.2:9042")),
            Some(at("127.0.0.2:19000"))
        );
        assert_eq!(m.translate(at("[fd00::1]:9042")), Some(at("[::1]:9043")));
        assert_eq!(m.translate(at("10.255.0.3:9042")), None);
        let policy = HostPolicy {
            translator: Some(Arc::new(m.clone())),
            ..HostPolicy::default()
        };
        assert_eq!(
            policy.reachable(at("10.255.0.3:9042")),
            at("10.255.0.3:9042")
        );
        assert_eq!(policy.reachable(at("10.255.0.1:1")), at("127.0.0.1:1"));
        assert_eq!(
            parse_reachable_address("127.0.0.5", 7),
            Some(at("127.0.0.5:7"))
        );
        assert_eq!(parse_reachable_address("x", 7), None);
    }
}
