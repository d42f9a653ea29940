//! Command-line configuration of the emulated cluster.

use std::net::Ipv4Addr;

/// Everything the command line can set.
#[derive(Debug, Clone)]
pub struct Config {
    pub nodes: usize,
    pub shards: u16,
    pub base_ip: Ipv4Addr,
    /// Node N names itself `advertise_base_ip + N` in `system.local`,
    /// `system.peers` and events while it listens on `base_ip + N` (a
    /// cluster behind NAT or in containers); `None`: the listen address.
    pub advertise_base_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub shard_aware_port: u16,
    pub metrics_port: u16,
    pub datacenters: Vec<String>,
    pub racks: usize,
    pub vnodes: usize,
    /// New keyspaces use tablets unless they opt out.
    pub tablets: bool,
    pub initial_tablets: u32,
    pub auth: Option<(String, String)>,
    pub simulate_nat: bool,
    pub shard_aware_port_unreachable: bool,
    pub misroute_node_delay_us: u64,
    pub misroute_shard_delay_us: u64,
    pub ignore_msb: u8,
    pub cluster_name: String,
    /// Writes without a timestamp get the clock plus this (milliseconds).
    pub write_clock_offset_ms: i64,
    pub verbose: bool,
    /// TLS listeners (beside the plain ones), when a certificate is set.
    pub tls: Option<TlsConfig>,
    /// `--tls-generate DIR`: write a test CA and certificates, then exit.
    pub tls_generate: Option<std::path::PathBuf>,
}

/// `--tls-*` flags: Scylla's `client_encryption_options` with separate
/// TLS ports (`native_transport_port_ssl`,
/// `native_shard_aware_transport_port_ssl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<std::path::PathBuf>,
    pub port: u16,
    pub shard_aware_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 3,
            shards: 4,
            base_ip: Ipv4Addr::new(127, 0, 0, 1),
            advertise_base_ip: None,
            port: 9042,
            shard_aware_port: 19042,
            metrics_port: 9180,
            datacenters: vec!["datacenter1".to_owned()],
            racks: 1,
            vnodes: 16,
            tablets: false,
            initial_tablets: 8,
            auth: None,
            simulate_nat: false,
            shard_aware_port_unreachable: false,
            misroute_node_delay_us: 150,
            misroute_shard_delay_us: 25,
            ignore_msb: 12,
            cluster_name: "emulated cluster".to_owned(),
            write_clock_offset_ms: 0,
            verbose: false,
            tls: None,
            tls_generate: None,
        }
    }
}

pub const USAGE: &str = "\
usage: scylla-emulator [options]
  --nodes N                      nodes (default 3)
  --shards S                     shards per node (default 4)
  --base-ip IP                   first node's address (default 127.0.0.1)
  --advertise-base-ip IP         nodes name themselves from IP on (system.local, system.peers,
                                 events) while listening from --base-ip on, as behind NAT
  --port P                       CQL port of every node (default 9042)
  --shard-aware-port P           shard-aware CQL port (default 19042)
  --metrics-port P               Prometheus metrics and admin HTTP port (default 9180)
  --datacenters dc1[,dc2...]     datacenters; nodes are dealt round-robin (default datacenter1)
  --racks R                      racks per datacenter (default 1)
  --vnodes V                     vnode tokens per node (default 16)
  --tablets                      new keyspaces use tablets unless they opt out
  --initial-tablets T            default tablet count per table, a power of two (default 8)
  --auth USER:PASSWORD           require PasswordAuthenticator
  --simulate-nat                 shard-aware port ignores the source port (as behind NAT)
  --shard-aware-port-unreachable advertise the shard-aware port but never listen on it
  --misroute-node-delay-us N     extra latency of a request on a non-replica node (default 150)
  --misroute-shard-delay-us N    extra latency of a request on a wrong shard (default 25)
  --ignore-msb N                 SCYLLA_SHARDING_IGNORE_MSB (default 12)
  --cluster-name NAME            system.local cluster_name
  --write-clock-offset-ms N      writes without a client timestamp get the clock + N ms
  --verbose                      log connections and errors to stderr
  --tls-cert FILE                server certificate chain (PEM): adds TLS listeners
  --tls-key FILE                 its private key (PEM)
  --tls-client-ca FILE           require client certificates from this CA (mutual TLS)
  --tls-port P                   TLS CQL port (default 9142)
  --tls-shard-aware-port P       TLS shard-aware port, SCYLLA_SHARD_AWARE_PORT_SSL (default 19142)
  --tls-generate DIR             write a test CA and certificates for these nodes into DIR, exit";

impl Config {
    /// Parses `args` (without the program name).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, String> {
        let mut config = Config::default();
        let (mut tls_cert, mut tls_key, mut tls_client_ca) = (None, None, None);
        let (mut tls_port, mut tls_shard_aware_port) = (9142, 19142);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (flag.clone(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match name.as_str() {
                "--nodes" => config.nodes = number(&name, &value()?)?,
                "--shards" => config.shards = number(&name, &value()?)?,
                "--base-ip" => {
                    config.base_ip = value()?.parse().map_err(|e| format!("--base-ip: {e}"))?
                }
                "--advertise-base-ip" => {
                    config.advertise_base_ip = Some(
                        value()?
                            .parse()
                            .map_err(|e| format!("--advertise-base-ip: {e}"))?,
                    )
                }
                "--port" => config.port = number(&name, &value()?)?,
                "--shard-aware-port" => config.shard_aware_port = number(&name, &value()?)?,
                "--metrics-port" => config.metrics_port = number(&name, &value()?)?,
                "--datacenters" => {
                    config.datacenters = value()?
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "--racks" => config.racks = number(&name, &value()?)?,
                "--vnodes" => config.vnodes = number(&name, &value()?)?,
                "--tablets" => config.tablets = true,
                "--initial-tablets" => config.initial_tablets = number(&name, &value()?)?,
                "--auth" => {
                    let v = value()?;
                    let (user, password) =
                        v.split_once(':').ok_or("--auth expects USER:PASSWORD")?;
                    config.auth = Some((user.to_owned(), password.to_owned()));
                }
                "--simulate-nat" => config.simulate_nat = true,
                "--shard-aware-port-unreachable" => config.shard_aware_port_unreachable = true,
                "--misroute-node-delay-us" => {
                    config.misroute_node_delay_us = number(&name, &value()?)?
                }
                "--misroute-shard-delay-us" => {
                    config.misroute_shard_delay_us = number(&name, &value()?)?
                }
                "--ignore-msb" => config.ignore_msb = number(&name, &value()?)?,
                "--cluster-name" => config.cluster_name = value()?,
                "--write-clock-offset-ms" => {
                    config.write_clock_offset_ms = number(&name, &value()?)?
                }
                "--verbose" => config.verbose = true,
                "--tls-cert" => tls_cert = Some(value()?.into()),
                "--tls-key" => tls_key = Some(value()?.into()),
                "--tls-client-ca" => tls_client_ca = Some(value()?.into()),
                "--tls-port" => tls_port = number(&name, &value()?)?,
                "--tls-shard-aware-port" => tls_shard_aware_port = number(&name, &value()?)?,
                "--tls-generate" => config.tls_generate = Some(value()?.into()),
                "--help" | "-h" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown option {other}\n{USAGE}")),
            }
        }
        config.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert,
                key,
                client_ca: tls_client_ca,
                port: tls_port,
                shard_aware_port: tls_shard_aware_port,
            }),
            (None, None) if tls_client_ca.is_none() => None,
            _ => {
                return Err(
                    "--tls-cert and --tls-key go together (and --tls-client-ca needs them)".into(),
                )
            }
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 250 {
            return Err("--nodes must be 1..=250".into());
        }
        if self.shards == 0 || self.shards > 256 {
            return Err("--shards must be 1..=256".into());
        }
        if self.datacenters.is_empty() {
            return Err("--datacenters needs at least one name".into());
        }
        if self.racks == 0 {
            return Err("--racks must be at least 1".into());
        }
        if self.vnodes == 0 || self.vnodes > 1024 {
            return Err("--vnodes must be 1..=1024".into());
        }
        if !self.initial_tablets.is_power_of_two() {
            return Err("--initial-tablets must be a power of two".into());
        }
        if self.ignore_msb >= 64 {
            return Err("--ignore-msb must be below 64".into());
        }
        if u32::from(self.base_ip) as u64 + self.nodes as u64 > u32::MAX as u64 {
            return Err("--base-ip too high for that many nodes".into());
        }
        if let Some(ip) = self.advertise_base_ip {
            if u32::from(ip) as u64 + self.nodes as u64 > u32::MAX as u64 {
                return Err("--advertise-base-ip too high for that many nodes".into());
            }
        }
        Ok(())
    }

    /// Address of node `index` (0-based).
    pub fn node_ip(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base_ip) + index as u32)
    }

    /// The address node `index` names itself by (`--advertise-base-ip`,
    /// else where it listens).
    pub fn advertised_ip(&self, index: usize) -> Ipv4Addr {
        match self.advertise_base_ip {
            Some(base) => Ipv4Addr::from(u32::from(base).wrapping_add(index as u32)),
            None => self.node_ip(index),
        }
    }
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| format!("{name} {text}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_flags() {
        let c = Config::from_args(args(
            "--nodes 5 --shards=2 --base-ip 127.0.3.1 --datacenters dc1,dc2 --tablets --auth u:p",
        ))
        .unwrap();
        assert_eq!((c.nodes, c.shards), (5, 2));
        assert_eq!(c.node_ip(4).to_string(), "127.0.3.5");
        assert_eq!(c.datacenters, vec!["dc1", "dc2"]);
        assert!(c.tablets);
        assert_eq!(c.auth, Some(("u".into(), "p".into())));
        assert_eq!(c.advertised_ip(4), c.node_ip(4));
        let c = Config::from_args(args("--nodes 3 --advertise-base-ip 10.255.0.1")).unwrap();
        assert_eq!(c.advertised_ip(2).to_string(), "10.255.0.3");
        assert_eq!(c.node_ip(2).to_string(), "127.0.0.3");
        assert!(Config::from_args(args("--advertise-base-ip nope")).is_err());
    }

    #[test]
    fn rejects_bad_flags() {
        assert!(Config::from_args(args("--nodes 0")).is_err());
        assert!(Config::from_args(args("--initial-tablets 6")).is_err());
        assert!(Config::from_args(args("--bogus")).is_err());
        assert!(Config::from_args(args("--nodes")).is_err());
    }
}
