//! Issue 8's acceptance through the built `berth`: every test runs on its own thread moved into a
//! throwaway network namespace that plays the host (berth and everything it spawns inherit it),
//! so no interface, route or rule ever touches the machine's own network.
mod container_common;

use container_common::{stderr, stdout, Env};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::process::Command;
use std::time::Duration;

/// Runs `body` on a thread inside a new network namespace with `lo` up and an interface
/// `hostaddr0` (one end of a veth pair; no dummy module here) holding 10.99.0.1/24 (the "host's
/// own address").
fn in_throwaway_host(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare -n");
        for args in [
            &["link", "set", "lo", "up"][..],
            &[
                "link",
                "add",
                "hostaddr0",
                "type",
                "veth",
                "peer",
                "name",
                "hostaddr1",
            ],
            &["addr", "add", "10.99.0.1/24", "dev", "hostaddr0"],
            &["link", "set", "hostaddr1", "up"],
            &["link", "set", "hostaddr0", "up"],
        ] {
            let st = Command::new("ip").args(args).status().expect("ip");
            assert!(st.success(), "ip {args:?}");
        }
        body();
    })
    .join()
    .expect("test thread");
}

/// An [`Env`] that also leaves no network behind: on drop (a failed assertion included) it
/// removes every container, which unpins their namespaces, then prunes the networks.
struct NetEnv(Env);

impl NetEnv {
    fn new(tag: &str) -> NetEnv {
        NetEnv(Env::new(tag))
    }
}

impl Deref for NetEnv {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.0
    }
}

impl Drop for NetEnv {
    fn drop(&mut self) {
        for id in self.0.record_ids() {
            let _ = self.0.berth(&["rm", "-f", &id]);
        }
        let _ = self.0.berth(&["network", "prune", "-f"]);
        let pins: Vec<String> = self
            .0
            .mounts_below()
            .into_iter()
            .filter(|m| m.contains("/network/netns/"))
            .collect();
        if !pins.is_empty() && !std::thread::panicking() {
            panic!("namespaces still pinned after the test: {pins:?}");
        }
    }
}

fn host_links() -> String {
    stdout(&Command::new("ip").args(["-o", "link"]).output().unwrap())
}

fn nft_table() -> String {
    stdout(
        &Command::new("nft")
            .args(["list", "table", "inet", "berth"])
            .output()
            .unwrap(),
    )
}

fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text)
}

/// [`fetch`], retried while the busybox server restarts between connections.
fn fetch_served(addr: SocketAddr) -> String {
    let mut last = None;
    for _ in 0..50 {
        match fetch(addr) {
            Ok(text) if !text.is_empty() => return text,
            Ok(_) => {}
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr}: {last:?}");
}

/// A container serving "hi" on port 80 forever (busybox nc, one connection at a time).
/// A persistent server (`-ll`): a `while nc -l` loop stops listening between connections, so a
/// client's second connection could be refused.
const SERVE: &str = "nc -ll -p 80 -e echo hi";

fn wait_listening(env: &Env, ctr: &str) {
    assert!(berth_testkit::wait_until(Duration::from_secs(10), || {
        env.berth(&["exec", ctr, "sh", "-c", "netstat -ltn | grep -q ':80 '"])
            .status
            .success()
    }));
}

fn nothing_left(env: &Env) {
    // Veths go with their namespace, in the kernel's cleanup work shortly after rm.
    let gone = berth_testkit::wait_until(Duration::from_secs(10), || {
        !host_links().lines().any(|l| l.contains("veth"))
    });
    assert!(gone, "{}", host_links());
    let eps = env.path().join("network/endpoints");
    let left: Vec<_> = std::fs::read_dir(&eps)
        .map(|d| {
            d.flatten()
                .flat_map(|n| std::fs::read_dir(n.path()).into_iter().flatten().flatten())
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "leases left: {left:?}");
    let netns: Vec<_> = std::fs::read_dir(env.path().join("network/netns"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(netns.is_empty(), "namespaces left: {netns:?}");
    assert!(env.mounts_below().iter().all(|m| !m.contains("/network/")));
}

#[test]
fn user_networks_resolve_names_and_aliases_and_stay_isolated() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-dns");
        env.ok(&["network", "create", "front"]);
        env.ok(&["network", "create", "back"]);
        env.ok(&[
            "network",
            "create",
            "--internal",
            "--subnet",
            "10.55.0.0/24",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "--label",
            "team=blue",
            "closed",
        ]);
        let web = env.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "front",
            "--network-alias",
            "www",
            "busybox",
            "sh",
            "-c",
            SERVE,
        ]);
        wait_listening(&env, "web");
        let short = &web[..12];
        // By name, by alias and by short id, from a container started after the server.
        let script =
            format!("nc web 80 </dev/null && nc www 80 </dev/null && nc {short} 80 </dev/null");
        let out = env.ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(out, "hi\nhi\nhi");
        let conf = env.ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ]);
        let gateway = env.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
            "front",
        ]);
        assert!(
            conf.starts_with(&format!("nameserver {gateway}\n")),
            "{conf}"
        );

        // Another network cannot reach it, by address either.
        let web_ip = env.inspect("web", "{{.NetworkSettings.Networks.front.IPAddress}}");
        let out = env.berth(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "sh",
            "-c",
            &format!("nc -w 1 {web_ip} 80 </dev/null"),
        ]);
        assert!(!stdout(&out).contains("hi"), "{}", stdout(&out));
        let out = env.berth(&[
            "run",
            "--rm",
            "--network",
            "back",
            "busybox",
            "nslookup",
            "web",
        ]);
        assert!(!out.status.success());

        // An internal network has no route out.
        let routes = env.ok(&[
            "run",
            "--rm",
            "--network",
            "closed",
            "busybox",
            "ip",
            "route",
        ]);
        assert!(!routes.contains("default"), "{routes}");
        assert!(routes.contains("10.55.0.0/24"), "{routes}");
        // --ip on a user network, and the network's MTU on the container's interface.
        let eth0 = env.ok(&[
            "run",
            "--rm",
            "--network",
            "closed",
            "--ip",
            "10.55.0.77",
            "busybox",
            "sh",
            "-c",
            "ip -o -4 addr show eth0; cat /sys/class/net/eth0/mtu",
        ]);
        assert!(
            eth0.contains("10.55.0.77/24") && eth0.ends_with("1400"),
            "{eth0}"
        );
        let closed: serde_json::Value =
            serde_json::from_str(&env.ok(&["network", "inspect", "closed"])).unwrap();
        assert_eq!(closed[0]["Internal"], true);
        assert_eq!(closed[0]["Labels"]["team"], "blue");
        assert_eq!(
            closed[0]["Options"]["com.docker.network.driver.mtu"],
            "1400"
        );
        let out = env.berth(&[
            "run",
            "--rm",
            "--network",
            "bridge",
            "--ip",
            "172.17.0.9",
            "busybox",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
        let out = env.berth(&[
            "run",
            "--rm",
            "--network",
            "closed",
            "busybox",
            "sh",
            "-c",
            "nc -w 1 10.99.0.1 9 </dev/null",
        ]);
        assert!(!out.status.success());

        // Removing a network in use is refused and names the container.
        let out = env.berth(&["network", "rm", "front"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("web"), "{}", stderr(&out));
        env.ok(&["rm", "-f", "web"]);
        let pruned = env.ok(&["network", "prune", "-f"]);
        assert!(pruned.contains("front") && pruned.contains("back") && pruned.contains("closed"));
        nothing_left(&env);
        assert!(!host_links().contains("br-"));
    });
}

#[test]
fn published_ports_from_loopback_and_host_address_and_gone_after_rm() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-ports");
        env.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "bridge",
            "-p",
            "127.0.0.1:18080:80",
            "-p",
            "18081:80",
            "-p",
            "90",
            "busybox",
            "sh",
            "-c",
            SERVE,
        ]);
        wait_listening(&env, "web");
        assert_eq!(
            fetch_served(SocketAddr::from((Ipv4Addr::LOCALHOST, 18080))),
            "hi\n"
        );
        assert_eq!(
            fetch_served(SocketAddr::from((Ipv4Addr::new(10, 99, 0, 1), 18081))),
            "hi\n"
        );
        assert_eq!(
            fetch_served(SocketAddr::from((Ipv4Addr::LOCALHOST, 18081))),
            "hi\n"
        );
        // A 127.0.0.1 binding is not reachable on the host's other addresses.
        assert!(fetch(SocketAddr::from((Ipv4Addr::new(10, 99, 0, 1), 18080))).is_err());

        let ports = env.ok(&["port", "web"]);
        assert!(ports.contains("80/tcp -> 127.0.0.1:18080"), "{ports}");
        assert!(ports.contains("80/tcp -> 0.0.0.0:18081"), "{ports}");
        let random = env.ok(&["port", "web", "90"]);
        assert!(
            random.starts_with("0.0.0.0:") && !random.ends_with(":0"),
            "{random}"
        );
        let ps = env.ok(&["ps", "--format", "{{.Ports}}"]);
        assert!(ps.contains("127.0.0.1:18080->80/tcp"), "{ps}");
        let json = env.inspect("web", "{{json .NetworkSettings.Ports}}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["80/tcp"][0]["HostPort"], "18080");
        assert!(nft_table().contains("dport 18080"));

        // The host port is taken: a second container asking for it is refused, nothing left.
        let out = env.berth(&[
            "run",
            "-d",
            "--network",
            "bridge",
            "-p",
            "18080:80",
            "busybox",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("already allocated"),
            "{}",
            stderr(&out)
        );

        env.ok(&["rm", "-f", "web"]);
        assert!(!nft_table().contains("18080"));
        assert!(fetch(SocketAddr::from((Ipv4Addr::LOCALHOST, 18080))).is_err());
        nothing_left(&env);
    });
}

#[test]
fn none_host_and_container_modes() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-modes");
        let links = env.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ]);
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains("lo:") && links.contains("UP"), "{links}");
        let links = env.ok(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
        ]);
        assert!(links.contains("hostaddr0"), "{links}");

        env.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "bridge",
            "busybox",
            "sleep",
            "60",
        ]);
        let mine = env.ok(&["exec", "web", "readlink", "/proc/self/ns/net"]);
        let theirs = env.ok(&[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "readlink",
            "/proc/self/ns/net",
        ]);
        assert_eq!(mine, theirs);
        let addr = env.ok(&[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(addr.contains("172.17.0.2/16"), "{addr}");
        // Default bridge: Docker's address, MAC, hosts and the default route.
        let hosts = env.ok(&["exec", "web", "cat", "/etc/hosts"]);
        assert!(
            hosts.ends_with(&format!(
                "172.17.0.2\t{}",
                &env.inspect("web", "{{.Id}}")[..12]
            )),
            "{hosts}"
        );
        assert_eq!(
            env.inspect("web", "{{.NetworkSettings.MacAddress}}"),
            "02:42:ac:11:00:02"
        );
        let custom = env.ok(&[
            "run",
            "--rm",
            "--network",
            "bridge",
            "--hostname",
            "box",
            "--add-host",
            "db:10.1.2.3",
            "--dns",
            "10.99.0.53",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:3",
            "--mac-address",
            "02:00:00:00:00:07",
            "busybox",
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf; cat /sys/class/net/eth0/address",
        ]);
        assert!(
            custom.contains("10.1.2.3\tdb\n172.17.0.3\tbox\n"),
            "{custom}"
        );
        assert!(
            custom.contains("nameserver 10.99.0.53\nsearch example.com\noptions ndots:3\n"),
            "{custom}"
        );
        assert!(custom.ends_with("02:00:00:00:00:07"), "{custom}");
        let out = env.berth(&["run", "--rm", "--network", "nosuchnet", "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(
            stderr(&out).contains("network nosuchnet not found"),
            "{}",
            stderr(&out)
        );
        env.ok(&["rm", "-f", "web"]);
        nothing_left(&env);
    });
}

#[test]
fn concurrent_runs_get_distinct_addresses_and_leave_nothing() {
    in_throwaway_host(|| {
        let env = std::sync::Arc::new(NetEnv::new("net-many"));
        env.ok(&[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--ip-range",
            "10.77.0.128/25",
            "many",
        ]);
        let workers: Vec<_> = (0..5)
            .map(|w| {
                let env = env.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .map(|i| {
                            let id = env.ok(&[
                                "run",
                                "-d",
                                "--name",
                                &format!("c{w}-{i}"),
                                "--network",
                                "many",
                                "busybox",
                                "sleep",
                                "60",
                            ]);
                            env.inspect(&id, "{{.NetworkSettings.Networks.many.IPAddress}}")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ips: Vec<String> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert_eq!(ips.len(), 50);
        assert!(ips.iter().all(|ip| ip.starts_with("10.77.0.")
            && ip.rsplit('.').next().unwrap().parse::<u8>().unwrap() >= 128));
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), 50);
        let removers: Vec<_> = (0..5)
            .map(|w| {
                let env = env.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        env.ok(&["rm", "-f", &format!("c{w}-{i}")]);
                    }
                })
            })
            .collect();
        for r in removers {
            r.join().unwrap();
        }
        nothing_left(&env);
        env.ok(&["network", "rm", "many"]);
    });
}

#[test]
fn killed_cli_mid_run_leaves_nothing_after_the_next_command() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-kill");
        env.ok(&["network", "create", "k"]);
        for delay_ms in [0u64, 3, 8, 15, 30, 60] {
            let mut child = env
                .cmd(&[
                    "run",
                    "--rm",
                    "--network",
                    "k",
                    "-p",
                    "19000:80",
                    "busybox",
                    "true",
                ])
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(delay_ms));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            // What survived as a container is the user's to remove, as with Docker.
            for id in env.record_ids() {
                let _ = env.berth(&["rm", "-f", &id]);
            }
        }
        // The next command rolls back whatever a killed setup left behind: no interface,
        // lease, rule or pinned namespace of a container that does not exist.
        env.ok(&["network", "ls"]);
        nothing_left(&env);
        assert!(!nft_table().contains("19000"));
        env.ok(&["network", "rm", "k"]);
    });
}

#[test]
fn build_run_steps_use_the_default_network_unless_none() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-build");
        let listener = TcpListener::bind((Ipv4Addr::new(10, 99, 0, 1), 8099)).unwrap();
        let server = std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.write_all(b"hello from the host\n");
            }
        });
        let ctx = env.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM busybox:latest\nRUN nc 10.99.0.1 8099 </dev/null | grep -q 'hello from the host'\n",
        )
        .unwrap();
        let ctx = ctx.to_str().unwrap();
        let out = env
            .cmd(&["build", "--network", "none", "-t", "t:none", ctx])
            .env("BERTH_DEFAULT_NETWORK", "bridge")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", stdout(&out));
        let out = env
            .cmd(&["build", "-t", "t:bridge", ctx])
            .env("BERTH_DEFAULT_NETWORK", "bridge")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        server.join().unwrap();
        nothing_left(&env);
    });
}

#[test]
fn stop_frees_the_network_start_restores_it_and_connect_disconnect() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-stop");
        env.ok(&["network", "create", "a"]);
        env.ok(&["network", "create", "b"]);
        env.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "a",
            "-p",
            "18090:80",
            "busybox",
            "sh",
            "-c",
            SERVE,
        ]);
        wait_listening(&env, "web");
        assert_eq!(
            fetch_served(SocketAddr::from((Ipv4Addr::LOCALHOST, 18090))),
            "hi\n"
        );
        env.ok(&["stop", "-t", "1", "web"]);
        assert!(!nft_table().contains("18090"));
        assert_eq!(env.inspect("web", "{{.NetworkSettings.IPAddress}}"), "");
        nothing_left(&env);
        env.ok(&["start", "web"]);
        wait_listening(&env, "web");
        assert_eq!(
            fetch_served(SocketAddr::from((Ipv4Addr::LOCALHOST, 18090))),
            "hi\n"
        );

        env.ok(&["network", "connect", "--alias", "second", "b", "web"]);
        let links = env.ok(&["exec", "web", "ip", "-o", "-4", "addr"]);
        assert!(links.contains("eth1"), "{links}");
        let out = env.ok(&[
            "run",
            "--rm",
            "--network",
            "b",
            "busybox",
            "sh",
            "-c",
            "nc second 80 </dev/null",
        ]);
        assert_eq!(out, "hi");
        let nets = env.inspect("web", "{{json .NetworkSettings.Networks}}");
        assert!(nets.contains("\"a\"") && nets.contains("\"b\""), "{nets}");
        env.ok(&["network", "disconnect", "b", "web"]);
        let links = env.ok(&["exec", "web", "ip", "-o", "-4", "addr"]);
        assert!(!links.contains("eth1"), "{links}");
        env.ok(&["rm", "-f", "web"]);
        nothing_left(&env);
        let pruned = env.ok(&["system", "prune", "-f"]);
        assert!(pruned.contains("Deleted Networks:\na\nb\n"), "{pruned}");
    });
}

#[test]
fn rm_f_after_the_monitor_was_killed_frees_address_and_rules() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-monkill");
        let id = env.ok(&[
            "run",
            "-d",
            "--network",
            "bridge",
            "-p",
            "18095:80",
            "busybox",
            "sleep",
            "60",
        ]);
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(env.path().join(format!("containers/{id}/config.v2.json"))).unwrap(),
        )
        .unwrap();
        let monitor = record["BerthMonitorPid"].as_i64().unwrap() as i32;
        assert!(monitor > 0);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        assert!(nft_table().contains("18095"));
        env.ok(&["rm", "-f", &id]);
        assert!(!nft_table().contains("18095"));
        nothing_left(&env);
    });
}

#[test]
fn ipv6_network_gives_containers_v6_addresses_routes_and_hosts_entries() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-v6");
        let out = env.berth(&["network", "create", "--subnet", "fd00:5e::/64", "nov6"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("--ipv6"), "{}", stderr(&out));
        env.ok(&[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "10.56.0.0/24",
            "--subnet",
            "fd00:5e::/64",
            "v6net",
        ]);
        let net: serde_json::Value =
            serde_json::from_str(&env.ok(&["network", "inspect", "v6net"])).unwrap();
        assert_eq!(net[0]["EnableIPv6"], true);
        assert_eq!(net[0]["IPAM"]["Config"][1]["Subnet"], "fd00:5e::/64");
        assert_eq!(net[0]["IPAM"]["Config"][1]["Gateway"], "fd00:5e::1");
        let seen = env.ok(&[
            "run",
            "--rm",
            "--network",
            "v6net",
            "--hostname",
            "six",
            "busybox",
            "sh",
            "-c",
            "ip -o -6 addr show eth0; ip -6 route; cat /etc/hosts",
        ]);
        assert!(seen.contains("fd00:5e::2/64"), "{seen}");
        assert!(seen.contains("default via fd00:5e::1"), "{seen}");
        assert!(seen.ends_with("10.56.0.2\tsix\nfd00:5e::2\tsix"), "{seen}");
        let id = env.ok(&[
            "run",
            "-d",
            "--name",
            "six6",
            "--network",
            "v6net",
            "busybox",
            "sleep",
            "60",
        ]);
        let v6 = env.inspect(&id, "{{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}");
        let gw6 = env.inspect(&id, "{{.NetworkSettings.Networks.v6net.IPv6Gateway}}");
        assert_eq!((v6.as_str(), gw6.as_str()), ("fd00:5e::2", "fd00:5e::1"));
        // The embedded resolver answers on the IPv6 gateway too.
        let found = env.ok(&[
            "run",
            "--rm",
            "--network",
            "v6net",
            "busybox",
            "nslookup",
            "six6",
            "fd00:5e::1",
        ]);
        assert!(found.contains("fd00:5e::2"), "{found}");
        // --ip6 picks the container's IPv6 address; a taken one is refused, leaving nothing.
        let eth0 = env.ok(&[
            "run",
            "--rm",
            "--network",
            "v6net",
            "--ip6",
            "fd00:5e::42",
            "busybox",
            "ip",
            "-o",
            "-6",
            "addr",
            "show",
            "eth0",
        ]);
        assert!(eth0.contains("fd00:5e::42/64"), "{eth0}");
        let out = env.berth(&[
            "run",
            "--rm",
            "--network",
            "v6net",
            "--ip6",
            "fd00:5e::2",
            "busybox",
            "true",
        ]);
        assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("fd00:5e::2 is already in use"),
            "{}",
            stderr(&out)
        );
        env.ok(&["rm", "-f", &id]);
        nothing_left(&env);
    });
}

#[test]
fn network_events_are_recorded_in_dockers_shape() {
    in_throwaway_host(|| {
        let env = NetEnv::new("net-events");
        let net_id = env.ok(&["network", "create", "evnet"]);
        let id = env.ok(&["run", "-d", "--network", "evnet", "busybox", "sleep", "60"]);
        env.ok(&["network", "connect", "bridge", &id]);
        env.ok(&["network", "disconnect", "bridge", &id]);
        env.ok(&["rm", "-f", &id]);
        env.ok(&["network", "rm", "evnet"]);
        let seen = env.ok(&[
            "events",
            "--since",
            "5m",
            "--until",
            "0s",
            "-f",
            "network=evnet",
            "--format",
            "{{json .}}",
        ]);
        let events: Vec<serde_json::Value> = seen
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let actions: Vec<&str> = events
            .iter()
            .map(|e| e["Action"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            actions,
            ["create", "connect", "disconnect", "destroy"],
            "{seen}"
        );
        for e in &events {
            assert_eq!(e["Type"], "network", "{e}");
            assert_eq!(e["Actor"]["ID"], net_id.as_str(), "{e}");
            assert_eq!(e["Actor"]["Attributes"]["name"], "evnet", "{e}");
            assert_eq!(e["Actor"]["Attributes"]["type"], "bridge", "{e}");
            assert_eq!(e["scope"], "local", "{e}");
            assert!(e.get("status").is_none(), "{e}");
        }
        for e in &events[1..3] {
            assert_eq!(e["Actor"]["Attributes"]["container"], id.as_str(), "{e}");
        }
        // `network connect`/`disconnect` on the default bridge, each recorded once.
        let bridge = env.ok(&[
            "events",
            "--since",
            "5m",
            "--until",
            "0s",
            "-f",
            "type=network",
            "-f",
            "network=bridge",
            "--format",
            "{{.Action}} {{.Actor.Attributes.container}}",
        ]);
        assert_eq!(bridge, format!("connect {id}\ndisconnect {id}"));
    });
}
