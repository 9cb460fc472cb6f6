//! Bridge networking end to end, each test inside a throwaway network namespace made on its own
//! thread, which plays the host: no rule or interface ever touches the real host's network, and
//! all traffic goes to loopback or to the test's own containers.
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_net::{AttachRequest, CreateNetwork, NetStore, PortBinding, Protocol};

/// Releases every container (endpoints and pinned namespaces) and removes every network of a
/// test's root when dropped, a failed assertion included, then checks no namespace stays pinned
/// under the root.
struct Cleanup {
    root: tempfile::TempDir,
}

impl Cleanup {
    fn new() -> Cleanup {
        Cleanup {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> NetStore {
        NetStore::new(self.root.path())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let store = self.store();
        let _ = store.collect_garbage(&|_| false);
        let _ = store.prune();
        let pinned: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&*self.root.path().to_string_lossy()))
            .map(str::to_string)
            .collect();
        if !pinned.is_empty() && !std::thread::panicking() {
            panic!("namespaces still pinned after the test: {pinned:?}");
        }
    }
}

/// Moves this test's thread into a new network namespace with `lo` up.
fn throwaway_host() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare -n");
    let mut rtnl = berth_net::netlink::Rtnl::open().unwrap();
    let lo = rtnl.link_index("lo").unwrap().unwrap();
    rtnl.set_up(lo, None).unwrap();
}

fn ip_in(netns: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    let out = cmd.args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the host side has no veth left (namespaces die, veths with them, in the kernel's own
/// cleanup work shortly after they are unpinned).
fn no_veth_left() -> bool {
    for _ in 0..200 {
        if !ip_in(None, &["-o", "link"]).contains("veth") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn nft_table() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "inet", "berth"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP echo-once server inside the namespace at `ns`, on `port`.
fn serve_tcp_in(ns: PathBuf, port: u16) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _inside = berth_net::netns::enter(&ns).unwrap();
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap();
        tx.send(()).unwrap();
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let _ = s.write_all(b"hello from the container\n");
        }
    });
    rx.recv().unwrap();
    handle
}

fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

fn attach(
    store: &NetStore,
    id: &str,
    network: &str,
    ports: Vec<PortBinding>,
) -> (PathBuf, berth_net::EndpointRecord) {
    let ns = store.create_sandbox(id).unwrap();
    let ep = store
        .attach(
            &ns,
            &AttachRequest {
                container_id: id.into(),
                container_name: format!("name-{id}"),
                network: network.into(),
                ports,
                ..Default::default()
            },
        )
        .unwrap();
    (ns, ep)
}

#[test]
fn bridge_veth_ports_isolation_and_teardown() {
    std::thread::spawn(|| {
        throwaway_host();
        let cleanup = Cleanup::new();
        let store = cleanup.store();
        let net = store
            .create(&CreateNetwork {
                name: "front".into(),
                subnet: Some("10.123.0.0/24".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(net.gateway, Ipv4Addr::new(10, 123, 0, 1));
        assert!(ip_in(None, &["-o", "addr", "show", &net.bridge]).contains("10.123.0.1/24"));
        // An automatically chosen subnet avoids the one already taken and the host's routes.
        let back = store
            .create(&CreateNetwork {
                name: "back".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(back.subnet.to_string(), "172.17.0.0/16");

        let publish = berth_net::ports::parse_publish("127.0.0.1:18080:80").unwrap();
        let (ns1, ep1) = attach(&store, "c1", "front", publish);
        assert_eq!(ep1.ip, Ipv4Addr::new(10, 123, 0, 2));
        assert_eq!(ep1.mac, "02:42:0a:7b:00:02");
        let inside = ip_in(Some(&ns1), &["-o", "addr"]);
        assert!(
            inside.contains("eth0") && inside.contains("10.123.0.2/24"),
            "{inside}"
        );
        assert!(ip_in(Some(&ns1), &["route"]).contains("default via 10.123.0.1"));
        // The table, written over nf_tables netlink, reads back in `nft`'s words as intended.
        let table = nft_table();
        for line in [
            "fib daddr type local jump ports".to_string(),
            "ip daddr 127.0.0.1 tcp dport 18080 dnat ip to 10.123.0.2:80".to_string(),
            format!(
                "ip saddr 10.123.0.0/24 oifname != \"{}\" masquerade",
                net.bridge
            ),
            format!("oifname \"{}\" ip saddr 127.0.0.0/8 masquerade", net.bridge),
            format!(
                "oifname \"{}\" ip saddr 10.123.0.0/24 ct status dnat masquerade",
                net.bridge
            ),
            format!(
                "iifname \"{}\" oifname \"{}\" drop",
                net.bridge, back.bridge
            ),
        ] {
            assert!(table.contains(&line), "missing {line:?} in\n{table}");
        }

        let server = serve_tcp_in(ns1.clone(), 80);
        // Direct to the container's address, and through the published port on host loopback.
        assert_eq!(
            fetch(SocketAddr::from((ep1.ip, 80))).unwrap(),
            "hello from the container\n"
        );
        assert_eq!(
            fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, 18080))).unwrap(),
            "hello from the container\n"
        );
        server.join().unwrap();

        // A container on the other network cannot reach the first one.
        let (ns2, ep2) = attach(&store, "c2", "back", vec![]);
        assert_eq!(ep2.ip, Ipv4Addr::new(172, 17, 0, 2));
        let blocked = std::thread::spawn(move || {
            let _inside = berth_net::netns::enter(&ns2).unwrap();
            TcpStream::connect_timeout(&SocketAddr::from((ep1.ip, 80)), Duration::from_millis(500))
                .is_err()
        });
        assert!(blocked.join().unwrap());

        // Removing a network in use is refused, naming its containers.
        let err = store.remove("front").unwrap_err().to_string();
        assert!(err.contains("name-c1"), "{err}");

        store.release_container("c1").unwrap();
        store.release_container("c2").unwrap();
        assert!(!nft_table().contains("18080"));
        assert!(!ns1.exists());
        assert!(no_veth_left());
        store.remove("front").unwrap();
        store.remove("back").unwrap();
        assert!(!ip_in(None, &["-o", "link"]).contains("br-"));
        assert_eq!(nft_table(), "");
    })
    .join()
    .unwrap();
}

#[test]
fn udp_published_and_internal_network_has_no_route_out() {
    std::thread::spawn(|| {
        throwaway_host();
        let cleanup = Cleanup::new();
        let store = cleanup.store();
        store
            .create(&CreateNetwork {
                name: "udp".into(),
                subnet: Some("10.124.0.0/24".into()),
                ..Default::default()
            })
            .unwrap();
        let publish = vec![PortBinding {
            host_ip: None,
            host_port: 0,
            container_port: 53,
            protocol: Protocol::Udp,
        }];
        let (ns, ep) = attach(&store, "u1", "udp", publish);
        let host_port = ep.ports[0].host_port;
        assert_ne!(host_port, 0);
        let server = std::thread::spawn(move || {
            let _inside = berth_net::netns::enter(&ns).unwrap();
            let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 53)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 64];
            let (n, peer) = sock.recv_from(&mut buf).unwrap();
            sock.send_to(&buf[..n], peer).unwrap();
        });
        let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        let mut got = None;
        for _ in 0..10 {
            client
                .send_to(b"ping", (Ipv4Addr::LOCALHOST, host_port))
                .unwrap();
            if let Ok((n, _)) = client.recv_from(&mut buf) {
                got = Some(buf[..n].to_vec());
                break;
            }
        }
        assert_eq!(got.as_deref(), Some(&b"ping"[..]));
        server.join().unwrap();

        store
            .create(&CreateNetwork {
                name: "closed".into(),
                subnet: Some("10.125.0.0/24".into()),
                internal: true,
                ..Default::default()
            })
            .unwrap();
        let (ns_int, _) = attach(&store, "i1", "closed", vec![]);
        assert!(!ip_in(Some(&ns_int), &["route"]).contains("default"));
        store.collect_garbage(&|_| false).unwrap();
        assert!(store.container_endpoints("u1").unwrap().is_empty());
        assert_eq!(store.prune().unwrap().len(), 2);
    })
    .join()
    .unwrap();
}

#[test]
fn fifty_concurrent_attachments_get_distinct_addresses_and_leave_nothing() {
    std::thread::spawn(|| {
        throwaway_host();
        let cleanup = Cleanup::new();
        let store = std::sync::Arc::new(cleanup.store());
        store
            .create(&CreateNetwork {
                name: "many".into(),
                subnet: Some("10.126.0.0/24".into()),
                ..Default::default()
            })
            .unwrap();
        let workers: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || attach(&store, &format!("m{i}"), "many", vec![]).1.ip)
            })
            .collect();
        let mut ips: Vec<Ipv4Addr> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 50);
        let releases: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || store.release_container(&format!("m{i}")).unwrap())
            })
            .collect();
        for r in releases {
            r.join().unwrap();
        }
        assert!(no_veth_left());
        assert!(store
            .endpoints(&store.find("many").unwrap().id)
            .unwrap()
            .is_empty());
        store.remove("many").unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn ipv6_dual_stack_addresses_routes_nat_and_reachability() {
    std::thread::spawn(|| {
        throwaway_host();
        let cleanup = Cleanup::new();
        let store = cleanup.store();
        // An IPv6 subnet without --ipv6 is refused and leaves nothing.
        let refused = store.create(&CreateNetwork {
            name: "nov6".into(),
            subnet6: Some("fd00:7c::/64".into()),
            ..Default::default()
        });
        assert!(refused.unwrap_err().to_string().contains("--ipv6"));
        assert!(store.networks().unwrap().is_empty());

        let net = store
            .create(&CreateNetwork {
                name: "dual".into(),
                subnet: Some("10.127.0.0/24".into()),
                ipv6: true,
                subnet6: Some("fd00:7b::/64".into()),
                ..Default::default()
            })
            .unwrap();
        let gw6: Ipv6Addr = "fd00:7b::1".parse().unwrap();
        assert_eq!(net.gateway6, Some(gw6));
        assert!(ip_in(None, &["-o", "-6", "addr", "show", &net.bridge]).contains("fd00:7b::1/64"));
        let inspect = store.inspect("dual").unwrap();
        assert_eq!(inspect["EnableIPv6"], true);
        assert_eq!(inspect["IPAM"]["Config"][1]["Subnet"], "fd00:7b::/64");
        // A second network cannot take an overlapping IPv6 subnet.
        let overlap = store.create(&CreateNetwork {
            name: "dual2".into(),
            ipv6: true,
            subnet6: Some("fd00:7b::/48".into()),
            ..Default::default()
        });
        assert!(overlap.unwrap_err().to_string().contains("overlaps"));

        let publish = berth_net::ports::parse_publish("18090:80").unwrap();
        let (ns1, ep1) = attach(&store, "v1", "dual", publish);
        let (ns2, ep2) = attach(&store, "v2", "dual", vec![]);
        let ip1: Ipv6Addr = "fd00:7b::2".parse().unwrap();
        assert_eq!(ep1.ip6, Some(ip1));
        assert_eq!(ep2.ip6, Some("fd00:7b::3".parse().unwrap()));
        assert_eq!(ep1.gateway6, Some(gw6));
        // --ip6: a fixed address inside the subnet; taken, gateway and outside ones refused,
        // each leaving nothing behind.
        let fixed = |id: &str, ip6: &str, network: &str| {
            let ns = store.create_sandbox(id).unwrap();
            let result = store.attach(
                &ns,
                &AttachRequest {
                    container_id: id.into(),
                    container_name: format!("name-{id}"),
                    network: network.into(),
                    ip6: Some(ip6.parse().unwrap()),
                    ..Default::default()
                },
            );
            if result.is_err() {
                store.release_container(id).unwrap();
            }
            result
        };
        for (ip6, why) in [
            ("fd00:7b::2", "already in use"),
            ("fd00:7b::1", "already in use"),
            ("fd00:7c::5", "not a host address of fd00:7b::/64"),
        ] {
            let err = fixed("v3", ip6, "dual").unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(ip6), "{ip6}: {err}");
        }
        store
            .create(&CreateNetwork {
                name: "v4only".into(),
                subnet: Some("10.126.0.0/24".into()),
                ..Default::default()
            })
            .unwrap();
        let err = fixed("v3", "fd00:7b::9", "v4only").unwrap_err().to_string();
        assert!(err.contains("no IPv6 subnet"), "{err}");
        store.remove("v4only").unwrap();
        let ep3 = fixed("v3", "fd00:7b::99", "dual").unwrap();
        assert_eq!(ep3.ip6, Some("fd00:7b::99".parse().unwrap()));
        let ns3 = store.netns_path("v3");
        assert!(ip_in(Some(&ns3), &["-o", "-6", "addr", "show", "eth0"]).contains("fd00:7b::99/64"));
        store.release_container("v3").unwrap();
        let addrs = ip_in(Some(&ns1), &["-o", "-6", "addr", "show", "eth0"]);
        assert!(addrs.contains("fd00:7b::2/64"), "{addrs}");
        let routes = ip_in(Some(&ns1), &["-6", "route"]);
        assert!(routes.contains("default via fd00:7b::1"), "{routes}");
        assert_eq!(
            store.inspect("dual").unwrap()["Containers"]["v1"]["IPv6Address"],
            "fd00:7b::2/64"
        );

        let table = nft_table();
        for line in [
            format!(
                "ip6 saddr fd00:7b::/64 oifname != \"{}\" masquerade",
                net.bridge
            ),
            format!(
                "oifname \"{}\" ip6 saddr fd00:7b::/64 ct status dnat masquerade",
                net.bridge
            ),
            "tcp dport 18090 dnat ip6 to [fd00:7b::2]:80".to_string(),
            "tcp dport 18090 dnat ip to 10.127.0.2:80".to_string(),
        ] {
            assert!(table.contains(&line), "missing {line:?} in\n{table}");
        }

        // Over IPv6 from the host to the container, and from one container to the other.
        let (tx, rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let _inside = berth_net::netns::enter(&ns1).unwrap();
            let listener = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 80)).unwrap();
            listener.set_nonblocking(false).unwrap();
            tx.send(()).unwrap();
            for _ in 0..2 {
                let Ok((mut s, _)) = listener.accept() else {
                    return;
                };
                let _ = s.write_all(b"hello over ipv6\n");
            }
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            fetch(SocketAddr::from((ip1, 80))).unwrap(),
            "hello over ipv6\n"
        );
        let from_peer = std::thread::spawn(move || {
            let _inside = berth_net::netns::enter(&ns2).unwrap();
            fetch(SocketAddr::from((ip1, 80)))
        });
        assert_eq!(from_peer.join().unwrap().unwrap(), "hello over ipv6\n");
        server.join().unwrap();

        store.release_container("v1").unwrap();
        store.release_container("v2").unwrap();
        assert!(!nft_table().contains("18090"));
        assert!(no_veth_left());
        store.remove("dual").unwrap();
    })
    .join()
    .unwrap();
}
