//! Scraping the emulator's Prometheus text endpoint with a plain HTTP/1.0 GET.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// One node's counters: metric name -> shard -> value (summed over the other
/// labels, e.g. `port`).
#[derive(Debug, Default, Clone)]
pub struct Counters {
    values: HashMap<String, HashMap<u16, f64>>,
}

impl Counters {
    /// Value of `name` on `shard` of this node (0 when absent).
    pub fn get(&self, name: &str, _ip: &IpAddr, shard: u16) -> f64 {
        self.values
            .get(name)
            .and_then(|m| m.get(&shard))
            .copied()
            .unwrap_or(0.0)
    }

    /// Sum of `name` over all shards of this node.
    pub fn total(&self, name: &str) -> f64 {
        self.values
            .get(name)
            .map(|m| m.values().sum())
            .unwrap_or(0.0)
    }
}

/// Counters of every node at one instant.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub nodes: HashMap<IpAddr, Counters>,
}

impl Snapshot {
    pub fn get(&self, name: &str, ip: &IpAddr, shard: u16) -> f64 {
        self.nodes
            .get(ip)
            .map(|c| c.get(name, ip, shard))
            .unwrap_or(0.0)
    }

    pub fn total(&self, name: &str) -> f64 {
        self.nodes.values().map(|c| c.total(name)).sum()
    }
}

/// GET http://ip:port/metrics and parse it.
pub fn scrape(ip: IpAddr, port: u16) -> std::io::Result<Counters> {
    let addr = SocketAddr::new(ip, port);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {ip}:{port}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP header end")
    })?;
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad HTTP status: {}", head.lines().next().unwrap_or("")),
        ));
    }
    Ok(parse(body))
}

/// Parses Prometheus text exposition: `name{l="v",...} value [timestamp]`.
pub fn parse(body: &str) -> Counters {
    let mut c = Counters::default();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let Some(close) = line[open..].find('}').map(|x| x + open) else {
                    continue;
                };
                (&line[..open], &line[open + 1..close], &line[close + 1..])
            }
            None => match line.split_once(char::is_whitespace) {
                Some((n, r)) => (n, "", r),
                None => continue,
            },
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let shard = labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| k.trim() == "shard")
            .and_then(|(_, v)| v.trim().trim_matches('"').parse::<u16>().ok())
            .unwrap_or(0);
        *c.values
            .entry(name.to_string())
            .or_default()
            .entry(shard)
            .or_default() += value;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_sums_ports() {
        let body = "# HELP x\n# TYPE emulator_requests_total counter\n\
            emulator_requests_total{shard=\"0\"} 5\n\
            emulator_requests_total{shard=\"1\"} 7\n\
            emulator_connections_accepted_total{port=\"9042\",shard=\"1\"} 2\n\
            emulator_connections_accepted_total{port=\"19042\",shard=\"1\"} 3\n\
            plain_metric 4.5\n";
        let c = parse(body);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(c.get("emulator_requests_total", &ip, 1), 7.0);
        assert_eq!(c.total("emulator_requests_total"), 12.0);
        assert_eq!(c.get("emulator_connections_accepted_total", &ip, 1), 5.0);
        assert_eq!(c.total("plain_metric"), 4.5);
        assert_eq!(c.total("missing"), 0.0);
    }
}
