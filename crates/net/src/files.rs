//! `/etc/hosts` and `/etc/resolv.conf` for a container, as Docker writes them.
use std::net::{IpAddr, Ipv4Addr};

/// Docker's `/etc/hosts`: the loopback block, `--add-host` entries, then the container's own
/// addresses with its hostname, IPv4 then IPv6 (omitted when it has none, as with `--network
/// none`).
pub fn hosts(hostname: &str, own_ips: &[IpAddr], extra: &[(String, String)]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    for ip in own_ips {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// What `--dns`, `--dns-search` and `--dns-option` ask for.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Docker's `/etc/resolv.conf`. `embedded` is the network resolver's address on user-defined
/// networks: then it is the only nameserver (it forwards the rest). Otherwise the host's file is
/// taken with loopback nameservers dropped (unreachable from the container), falling back to
/// Google's public resolvers as Docker does. `--dns*` flags replace the matching lines.
pub fn resolv_conf(host: &str, embedded: Option<Ipv4Addr>, dns: &DnsSettings) -> String {
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    for line in host.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    let loopback = ns
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                    if !loopback {
                        servers.push(ns.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = words.map(str::to_string).collect(),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    if !dns.servers.is_empty() {
        servers = dns.servers.clone();
    }
    if !dns.search.is_empty() {
        search = dns
            .search
            .iter()
            .filter(|s| s.as_str() != ".")
            .cloned()
            .collect();
    }
    if !dns.options.is_empty() {
        options = dns.options.clone();
    }
    if let Some(ip) = embedded {
        servers = vec![ip.to_string()];
    } else if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_like_docker() {
        let h = hosts(
            "abc",
            &[IpAddr::V4(Ipv4Addr::new(172, 17, 0, 2))],
            &[("db".into(), "10.0.0.9".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.0.0.9\tdb\n172.17.0.2\tabc\n"));
        assert!(!hosts("abc", &[], &[]).contains("abc"));
        let dual = hosts(
            "abc",
            &[
                IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2)),
                "fd00::2".parse().unwrap(),
            ],
            &[],
        );
        assert!(dual.ends_with("172.18.0.2\tabc\nfd00::2\tabc\n"), "{dual}");
    }

    #[test]
    fn resolv_conf_rules() {
        let host = "nameserver 127.0.0.53\nsearch lan\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, None, &DnsSettings::default()),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\noptions edns0\n"
        );
        let flags = DnsSettings {
            servers: vec!["1.1.1.1".into()],
            search: vec!["example.com".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf(host, None, &flags),
            "nameserver 1.1.1.1\nsearch example.com\noptions ndots:2\n"
        );
        assert!(resolv_conf(host, Some(Ipv4Addr::new(10, 1, 0, 1)), &flags)
            .starts_with("nameserver 10.1.0.1\nsearch example.com\n"));
    }
}
