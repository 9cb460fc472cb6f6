//! The embedded resolver of a user-defined network, like Podman's aardvark-dns or Docker's
//! 127.0.0.11: one small long-lived process per network, listening on the network's gateway
//! address (port 53, UDP), answering container names, `--network-alias`es and short ids from the
//! endpoint records under the root (read per query, so containers started later resolve at once),
//! and forwarding every other question to the host's resolvers. It runs in the host's network
//! namespace, so even a host resolver on loopback (systemd-resolved) stays reachable.
//!
//! The resolver is the Berth binary itself at a hidden entry point: the program that wants DNS
//! registers it once with [`set_resolver_program`]; without one, no resolver is started.
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::error::{NetError, Result};
use crate::model::{EndpointRecord, NetworkRecord};

/// Docker's TTL for embedded-DNS answers.
const TTL: u32 = 600;
/// The hidden argument the resolver program is started with: `<program> <ARG> <state-dir> <net-id>`.
pub const RESOLVER_ARG: &str = "__berth-network-resolver";

static RESOLVER_PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Names the program that serves [`RESOLVER_ARG`] (normally the running `berth`).
pub fn set_resolver_program(path: PathBuf) {
    let _ = RESOLVER_PROGRAM.set(path);
}

fn pid_path(state_dir: &Path, network_id: &str) -> PathBuf {
    state_dir.join("dns").join(format!("{network_id}.pid"))
}

fn running_pid(state_dir: &Path, network_id: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_path(state_dir, network_id))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&cmdline);
    (text.contains(RESOLVER_ARG) && text.contains(network_id)).then_some(pid)
}

/// Starts the network's resolver unless it already runs (once per network, not per container).
pub fn ensure_running(state_dir: &Path, net: &NetworkRecord) -> Result<()> {
    let Some(program) = RESOLVER_PROGRAM.get() else {
        return Ok(());
    };
    if running_pid(state_dir, &net.id).is_some() {
        return Ok(());
    }
    let err = |reason: String| NetError::Resolver {
        network: net.name.clone(),
        reason,
    };
    let dir = state_dir.join("dns");
    std::fs::create_dir_all(&dir).map_err(|e| NetError::io(&dir, e))?;
    // A fresh session and process group, no inherited stdio: it outlives this command.
    let child = std::process::Command::new(program)
        .arg(RESOLVER_ARG)
        .arg(state_dir)
        .arg(&net.id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| err(format!("starting {}: {e}", program.display())))?;
    let _ = std::fs::write(pid_path(state_dir, &net.id), child.id().to_string());
    Ok(())
}

use std::os::unix::process::CommandExt;

/// Stops the network's resolver, if one runs.
pub fn stop(state_dir: &Path, network_id: &str) {
    if let Some(pid) = running_pid(state_dir, network_id) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = std::fs::remove_file(pid_path(state_dir, network_id));
}

/// The host's resolvers, from `/etc/resolv.conf`.
pub fn host_nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next()?.parse().ok())
                .flatten()
        })
        .collect()
}

/// Which endpoints a question for `name` is about (container name, alias or short id;
/// case-insensitive, a trailing dot ignored).
pub fn lookup<'a>(endpoints: &'a [EndpointRecord], name: &str) -> Vec<&'a EndpointRecord> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Vec::new();
    }
    endpoints
        .iter()
        .filter(|e| e.complete)
        .filter(|e| {
            e.container_name.eq_ignore_ascii_case(&name)
                || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(&name))
                || (name.len() >= 12 && e.container_id.starts_with(&name) && name.len() <= 64)
        })
        .collect()
}

/// The endpoint whose IPv4 or IPv6 address a reverse (`in-addr.arpa` / `ip6.arpa`) name asks
/// about.
pub fn reverse_lookup<'a>(
    endpoints: &'a [EndpointRecord],
    name: &Name,
) -> Option<&'a EndpointRecord> {
    let net = name.parse_arpa_name().ok()?;
    if net.prefix_len() != net.max_prefix_len() {
        return None;
    }
    let ip = net.addr();
    endpoints.iter().filter(|e| e.complete).find(|e| match ip {
        IpAddr::V4(v4) => e.ip == v4,
        IpAddr::V6(v6) => e.ip6 == Some(v6),
    })
}

fn reply_to(query: &Message, q: &Query) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true)
        .set_response_code(ResponseCode::NoError)
        .add_query(q.clone());
    reply
}

/// Builds the answer to `query` from `endpoints`, or None when it must be forwarded: A and AAAA
/// for names on the network (an empty answer for a type the container has no address of), and
/// PTR for the addresses of its containers, named `<container>.<network>.` as Docker does.
pub fn answer(query: &Message, endpoints: &[EndpointRecord]) -> Option<Message> {
    let q = query.queries().first()?;
    if q.query_type() == RecordType::PTR {
        let ep = reverse_lookup(endpoints, q.name())?;
        let target =
            Name::from_ascii(format!("{}.{}.", ep.container_name, ep.network_name)).ok()?;
        let mut reply = reply_to(query, q);
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            TTL,
            RData::PTR(PTR(target)),
        ));
        return Some(reply);
    }
    let found = lookup(endpoints, &q.name().to_ascii());
    if found.is_empty() {
        return None;
    }
    let mut reply = reply_to(query, q);
    for ep in found {
        match q.query_type() {
            RecordType::A => {
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::A(A(ep.ip)),
                ));
            }
            RecordType::AAAA => {
                if let Some(ip6) = ep.ip6 {
                    reply.add_answer(Record::from_rdata(
                        q.name().clone(),
                        TTL,
                        RData::AAAA(AAAA(ip6)),
                    ));
                }
            }
            _ => {}
        }
    }
    Some(reply)
}

fn servfail(query: &Message) -> Option<Vec<u8>> {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(ResponseCode::ServFail);
    for q in query.queries() {
        reply.add_query(q.clone());
    }
    reply.to_vec().ok()
}

/// Relays one question to the first upstream that answers (each tried for 2 s).
fn forward(packet: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    for up in upstreams {
        if socket.send_to(packet, up).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

/// The resolver's main loop (the hidden entry point calls this); returns when the network is gone.
/// It listens on the gateway's IPv4 address and, on a network with IPv6, on the IPv6 gateway too
/// (a second thread, same answers).
pub fn serve(state_dir: &Path, network_id: &str) -> Result<()> {
    let root = state_dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    let store = crate::store::NetStore::new(&root);
    let net = store.find(network_id)?;
    let bind = |ip: IpAddr| {
        UdpSocket::bind((ip, 53)).map_err(|e| NetError::Resolver {
            network: net.name.clone(),
            reason: format!("listening on {}: {e}", SocketAddr::from((ip, 53))),
        })
    };
    let socket = bind(IpAddr::V4(net.gateway))?;
    if let Some(gateway6) = net.gateway6 {
        let socket6 = bind(IpAddr::V6(gateway6))?;
        let net6 = net.clone();
        std::thread::spawn(move || {
            let _ = serve_on(&crate::store::NetStore::new(&root), &net6, socket6);
        });
    }
    serve_on(&store, &net, socket)
}

/// Serves on an already bound socket (tests bind loopback ports).
pub fn serve_on(
    store: &crate::store::NetStore,
    net: &NetworkRecord,
    socket: UdpSocket,
) -> Result<()> {
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    let upstreams: Vec<SocketAddr> =
        host_nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
            .into_iter()
            .filter(|ip| *ip != net.gateway)
            .map(|ip| SocketAddr::from((ip, 53)))
            .collect();
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer): (usize, SocketAddr) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if store.find(&net.id).is_err() {
                    return Ok(());
                }
                continue;
            }
            Err(e) => {
                return Err(NetError::Resolver {
                    network: net.name.clone(),
                    reason: e.to_string(),
                })
            }
        };
        let packet = buf[..n].to_vec();
        let Ok(query) = Message::from_vec(&packet) else {
            continue;
        };
        let endpoints = store.endpoints(&net.id).unwrap_or_default();
        if let Some(reply) = answer(&query, &endpoints).and_then(|r| r.to_vec().ok()) {
            let _ = socket.send_to(&reply, peer);
            continue;
        }
        // Forwarding may take a while; one short-lived thread per question keeps answering.
        let (socket2, upstreams) = (socket.try_clone(), upstreams.clone());
        std::thread::spawn(move || {
            let reply = forward(&packet, &upstreams).or_else(|| servfail(&query));
            if let (Ok(sock), Some(reply)) = (socket2, reply) {
                let _ = sock.send_to(&reply, peer);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;
    use std::str::FromStr;

    fn ep(name: &str, id: &str, alias: &str, ip: [u8; 4]) -> EndpointRecord {
        EndpointRecord {
            container_id: id.into(),
            container_name: name.into(),
            network_id: "n".into(),
            network_name: "net".into(),
            endpoint_id: "e".into(),
            ip: Ipv4Addr::from(ip),
            prefix_len: 16,
            gateway: None,
            mac: String::new(),
            host_veth: String::new(),
            ifname: "eth0".into(),
            aliases: vec![alias.into()],
            ports: vec![],
            complete: true,
            ip6: None,
            prefix_len6: 0,
            gateway6: None,
        }
    }

    #[test]
    fn names_aliases_and_short_ids_resolve() {
        let eps = [
            ep("web", "0123456789abcdef0123", "www", [10, 0, 0, 2]),
            ep("db", "fedcba9876543210fedc", "store", [10, 0, 0, 3]),
        ];
        let ips = |name: &str| lookup(&eps, name).iter().map(|e| e.ip).collect::<Vec<_>>();
        assert_eq!(ips("web."), vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(ips("WWW"), vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(ips("fedcba987654"), vec![Ipv4Addr::new(10, 0, 0, 3)]);
        assert!(lookup(&eps, "fedc").is_empty());
        assert!(lookup(&eps, "example.com").is_empty());

        let mut q = Message::new();
        q.set_id(7).add_query(Query::query(
            Name::from_str("store.").unwrap(),
            RecordType::A,
        ));
        let reply = answer(&q, &eps).unwrap();
        assert_eq!(reply.id(), 7);
        assert_eq!(reply.answers().len(), 1);
        let mut q = Message::new();
        q.add_query(Query::query(
            Name::from_str("example.com.").unwrap(),
            RecordType::A,
        ));
        assert!(answer(&q, &eps).is_none());
    }

    fn ask(name: &str, kind: RecordType, eps: &[EndpointRecord]) -> Option<Vec<RData>> {
        let mut q = Message::new();
        q.set_id(9)
            .add_query(Query::query(Name::from_str(name).unwrap(), kind));
        answer(&q, eps).map(|r| r.answers().iter().map(|a| a.data().clone()).collect())
    }

    #[test]
    fn aaaa_and_reverse_lookups_of_container_addresses() {
        let v6: Ipv6Addr = "fd00:1:2::2".parse().unwrap();
        let mut web = ep("web", "0123456789abcdef0123", "www", [10, 0, 0, 2]);
        web.ip6 = Some(v6);
        web.prefix_len6 = 64;
        let eps = [
            web,
            ep("db", "fedcba9876543210fedc", "store", [10, 0, 0, 3]),
        ];

        assert_eq!(
            ask("www.", RecordType::AAAA, &eps),
            Some(vec![RData::AAAA(AAAA(v6))])
        );
        // A container without IPv6 has an empty AAAA answer (not forwarded).
        assert_eq!(ask("db.", RecordType::AAAA, &eps), Some(vec![]));
        assert_eq!(
            ask("db.", RecordType::A, &eps),
            Some(vec![RData::A(A(Ipv4Addr::new(10, 0, 0, 3)))])
        );

        let ptr = |name: &str| RData::PTR(PTR(Name::from_str(name).unwrap()));
        assert_eq!(
            ask("3.0.0.10.in-addr.arpa.", RecordType::PTR, &eps),
            Some(vec![ptr("db.net.")])
        );
        let v6_arpa = Name::from(IpAddr::V6(v6)).to_ascii();
        assert!(v6_arpa.ends_with("ip6.arpa."), "{v6_arpa}");
        assert_eq!(
            ask(&v6_arpa, RecordType::PTR, &eps),
            Some(vec![ptr("web.net.")])
        );
        // Addresses that are not a container's go to the upstream resolvers.
        assert_eq!(ask("9.0.0.10.in-addr.arpa.", RecordType::PTR, &eps), None);
    }

    #[test]
    fn unknown_names_are_relayed_to_an_upstream() {
        let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = upstream.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, peer) = upstream.recv_from(&mut buf).unwrap();
            let mut reply = Message::from_vec(&buf[..n]).unwrap();
            reply.set_message_type(MessageType::Response);
            upstream.send_to(&reply.to_vec().unwrap(), peer).unwrap();
        });
        let mut q = Message::new();
        q.set_id(42).add_query(Query::query(
            Name::from_str("example.com.").unwrap(),
            RecordType::A,
        ));
        let answer = forward(&q.to_vec().unwrap(), &[addr]).unwrap();
        let answer = Message::from_vec(&answer).unwrap();
        assert_eq!(answer.id(), 42);
        assert_eq!(answer.message_type(), MessageType::Response);
        echo.join().unwrap();
        assert_eq!(
            Message::from_vec(&servfail(&q).unwrap())
                .unwrap()
                .response_code(),
            ResponseCode::ServFail
        );
    }

    #[test]
    fn host_nameservers_from_resolv_conf() {
        let conf = "# x\nnameserver 127.0.0.53\nnameserver ::1\nsearch a\nnameserver 10.0.0.1\n";
        assert_eq!(
            host_nameservers(conf),
            vec![Ipv4Addr::new(127, 0, 0, 53), Ipv4Addr::new(10, 0, 0, 1)]
        );
    }
}
