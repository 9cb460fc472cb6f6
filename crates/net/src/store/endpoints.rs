//! Endpoints: a container's sandbox, address and port reservation under the lock, the veth
//! plumbing, and their release.
use super::*;

impl NetStore {
    /// Creates container `id`'s network namespace, pinned under the root, before it starts.
    pub fn create_sandbox(&self, container_id: &str) -> Result<PathBuf> {
        let path = self.netns_path(container_id);
        netns::create(&path)?;
        Ok(path)
    }

    /// Connects the container whose namespace is pinned at `netns_path` to a network: reserves an
    /// address, makes the veth pair (container end created directly inside the namespace),
    /// configures address, MTU, `lo`, default route, and the published ports.
    pub fn attach(&self, netns_path: &Path, req: &AttachRequest) -> Result<EndpointRecord> {
        let net = self.find(&req.network)?;
        let record = self.reserve(&net, req)?;
        let marker = self.setup_marker(&net.id, &req.container_id);
        if let Err(e) = self.plumb(&net, netns_path, &record) {
            let _ = Rtnl::open().and_then(|mut r| r.delete_link(&record.host_veth));
            let path = self.endpoint_path(&net.id, &req.container_id);
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(&marker);
            return Err(e);
        }
        std::fs::remove_file(&marker).map_err(|e| NetError::io(&marker, e))?;
        let mut record = record;
        record.complete = true;
        if !record.ports.is_empty() {
            self.sync_firewall()?;
        }
        if net.has_dns() {
            crate::dns::ensure_running(&self.dir, &net)?;
        }
        Ok(record)
    }

    /// Takes an address (and host ports) under the lock and writes the record with its setup
    /// marker (incomplete until [`NetStore::attach`] removes the marker).
    pub(super) fn reserve(
        &self,
        net: &NetworkRecord,
        req: &AttachRequest,
    ) -> Result<EndpointRecord> {
        for alias in &req.aliases {
            if !valid_name(alias) {
                return Err(NetError::invalid(
                    "network alias",
                    alias,
                    "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                ));
            }
        }
        let _lock = self.lock()?;
        let path = self.endpoint_path(&net.id, &req.container_id);
        if path.exists() {
            return Err(NetError::AlreadyConnected {
                container: req.container_name.clone(),
                network: net.name.clone(),
            });
        }
        let all = self.all_endpoints()?;
        let used: BTreeSet<Ipv4Addr> = all
            .iter()
            .filter(|e| e.network_id == net.id)
            .map(|e| e.ip)
            .collect();
        let ip = match req.ip {
            Some(ip) => {
                if net.is_default() {
                    return Err(NetError::invalid(
                        "ip",
                        ip.to_string(),
                        "user specified IP address is supported on user defined networks only",
                    ));
                }
                if !net.subnet.contains(&ip)
                    || ip == net.subnet.network()
                    || ip == net.subnet.broadcast()
                {
                    return Err(NetError::invalid(
                        "ip",
                        ip.to_string(),
                        format!("not a host address of {}", net.subnet),
                    ));
                }
                if ip == net.gateway || used.contains(&ip) {
                    return Err(NetError::AddressInUse {
                        ip: ip.to_string(),
                        network: net.name.clone(),
                    });
                }
                ip
            }
            None => net
                .ip_range
                .unwrap_or(net.subnet)
                .hosts()
                .find(|h| {
                    *h != net.gateway
                        && *h != net.subnet.network()
                        && *h != net.subnet.broadcast()
                        && !used.contains(h)
                })
                .ok_or_else(|| NetError::PoolExhausted(net.name.clone()))?,
        };
        let ip6 = match (net.subnet6, net.gateway6) {
            (Some(subnet6), Some(gateway6)) => {
                let used6: BTreeSet<Ipv6Addr> = all
                    .iter()
                    .filter(|e| e.network_id == net.id)
                    .filter_map(|e| e.ip6)
                    .collect();
                Some(match req.ip6 {
                    Some(ip6) => {
                        if net.is_default() {
                            return Err(NetError::invalid(
                                "ip6",
                                ip6.to_string(),
                                "user specified IP address is supported on user defined networks only",
                            ));
                        }
                        // The subnet's first address is the subnet-router anycast address.
                        if !subnet6.contains(&ip6) || ip6 == subnet6.network() {
                            return Err(NetError::invalid(
                                "ip6",
                                ip6.to_string(),
                                format!("not a host address of {subnet6}"),
                            ));
                        }
                        if ip6 == gateway6 || used6.contains(&ip6) {
                            return Err(NetError::AddressInUse {
                                ip: ip6.to_string(),
                                network: net.name.clone(),
                            });
                        }
                        ip6
                    }
                    None => hosts6(&subnet6)
                        .find(|h| *h != gateway6 && !used6.contains(h))
                        .ok_or_else(|| NetError::PoolExhausted(net.name.clone()))?,
                })
            }
            _ => {
                if let Some(ip6) = req.ip6 {
                    return Err(NetError::invalid(
                        "ip6",
                        ip6.to_string(),
                        format!(
                            "network {} has no IPv6 subnet (create it with --ipv6)",
                            net.name
                        ),
                    ));
                }
                None
            }
        };
        let ports = Self::allocate_ports(&all, &req.ports)?;
        let taken_ifs = all
            .iter()
            .filter(|e| e.container_id == req.container_id)
            .count();
        let record = EndpointRecord {
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            endpoint_id: random_id(),
            ip,
            prefix_len: net.subnet.prefix_len(),
            gateway: (!net.internal).then_some(net.gateway),
            mac: format_mac(req.mac.unwrap_or_else(|| mac_for(ip))),
            host_veth: host_veth_name(&req.container_id, &net.id),
            ifname: format!("eth{taken_ifs}"),
            aliases: req.aliases.clone(),
            ports,
            complete: true,
            ip6,
            prefix_len6: net.subnet6.map_or(0, |s| s.prefix_len()),
            gateway6: net.gateway6.filter(|_| !net.internal && ip6.is_some()),
        };
        let marker = self.setup_marker(&net.id, &req.container_id);
        let dir = self.endpoint_dir(&net.id);
        std::fs::create_dir_all(&dir).map_err(|e| NetError::io(&dir, e))?;
        File::create(&marker).map_err(|e| NetError::io(&marker, e))?;
        write_atomic(
            &path,
            &serde_json::to_vec_pretty(&record).unwrap_or_default(),
        )?;
        Ok(EndpointRecord {
            complete: false,
            ..record
        })
    }

    pub(super) fn allocate_ports(
        all: &[EndpointRecord],
        wanted: &[PortBinding],
    ) -> Result<Vec<PortBinding>> {
        let mut taken: BTreeSet<(u16, ports::Protocol)> = all
            .iter()
            .flat_map(|e| e.ports.iter().map(|b| (b.host_port, b.protocol)))
            .collect();
        let mut out = Vec::new();
        for b in wanted {
            let mut b = b.clone();
            if b.host_port == 0 {
                let (lo, hi) = ports::ephemeral_range();
                let mut rng = rand::rng();
                let start = rng.random_range(lo..=hi);
                let span = u32::from(hi - lo) + 1;
                let found = (0..span)
                    .map(|i| lo + ((u32::from(start - lo) + i) % span) as u16)
                    .find(|p| {
                        !taken.contains(&(*p, b.protocol))
                            && ports::host_port_free(b.host_ip, *p, b.protocol)
                    });
                b.host_port = found.ok_or_else(|| NetError::Port {
                    port: b.container_port.to_string(),
                    reason: "no free host port in the ephemeral range".into(),
                })?;
            } else if taken.contains(&(b.host_port, b.protocol)) {
                return Err(NetError::Port {
                    port: b.host_port.to_string(),
                    reason: format!(
                        "Bind for {}:{} failed: port is already allocated",
                        b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                        b.host_port
                    ),
                });
            }
            taken.insert((b.host_port, b.protocol));
            out.push(b);
        }
        Ok(out)
    }

    /// Two rtnetlink round trips on the host (bridge lookup; veth pair with its host end up and
    /// on the bridge, its peer made inside the namespace) and two inside (loopback up with the
    /// lookup of the new interface; address, link up and default route). (A peer created up
    /// fails with ENOTCONN here, so the container end is set up inside.)
    pub(super) fn plumb(
        &self,
        net: &NetworkRecord,
        netns_path: &Path,
        ep: &EndpointRecord,
    ) -> Result<()> {
        let mut host = Rtnl::open()?;
        let bridge = self.bring_up(&mut host, net, false)?;
        let ns = File::open(netns_path).map_err(|e| NetError::Netns {
            path: netns_path.to_path_buf(),
            source: e,
        })?;
        let mac = crate::model::parse_mac(&ep.mac);
        // The same endpoint's previous veth (this container's, named after it) may still be
        // on its way out: the kernel deletes a veth whose namespace died asynchronously, so a
        // quick restart can find its name taken. It is ours: delete it and create again.
        let mut tries = 0;
        loop {
            match host.create_veth(
                &ep.host_veth,
                &ep.ifname,
                ns.as_raw_fd(),
                net.mtu,
                mac,
                Some(bridge),
            ) {
                Err(NetError::Netlink { source, .. })
                    if source.raw_os_error() == Some(libc::EEXIST) && tries < 5 =>
                {
                    tries += 1;
                    host.delete_link(&ep.host_veth)?;
                    std::thread::sleep(std::time::Duration::from_millis(5 * tries));
                }
                other => break other?,
            }
        }

        let _inside = netns::enter(netns_path)?;
        let mut ctr = Rtnl::open()?;
        let mut first = ctr.pipeline(vec![
            netlink::set_up_request(netlink::LOOPBACK_INDEX, None),
            netlink::get_link_request(&ep.ifname),
        ]);
        let eth = first.pop().unwrap_or_else(|| Ok(Vec::new()))?;
        first.pop().unwrap_or_else(|| Ok(Vec::new()))?;
        let eth = netlink::link_index_of(&eth).ok_or_else(|| NetError::Netlink {
            op: "find",
            object: ep.ifname.clone(),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        })?;
        let mut requests = vec![
            netlink::address_request(eth, IpAddr::V4(ep.ip), ep.prefix_len),
            netlink::set_up_request(eth, None),
        ];
        if let Some(ip6) = ep.ip6 {
            requests.push(netlink::address_request(
                eth,
                IpAddr::V6(ip6),
                ep.prefix_len6,
            ));
        }
        if let Some(gw) = ep.gateway {
            requests.push(netlink::default_route_request(IpAddr::V4(gw)));
        }
        if let Some(gw6) = ep.gateway6 {
            requests.push(netlink::default_route_request(IpAddr::V6(gw6)));
        }
        for result in ctr.pipeline(requests) {
            netlink::tolerate_exists(result)?;
        }
        Ok(())
    }

    /// `network disconnect`: removes one endpoint (its veth and rules with it).
    pub fn detach(&self, container_id: &str, network: &str) -> Result<()> {
        let net = self.find(network)?;
        let path = self.endpoint_path(&net.id, container_id);
        let record: EndpointRecord = match read_json(&path) {
            Ok(r) => r,
            Err(NetError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(NetError::NotConnected {
                    container: container_id.to_string(),
                    network: net.name,
                })
            }
            Err(e) => return Err(e),
        };
        self.drop_endpoint(&record, true, true).map(|_| ())
    }

    /// Forgets one endpoint: its veth (when `delete_link`), its lease, and (when `sync_rules`
    /// and it published ports) its rules. Returns whether this call removed the lease (a
    /// concurrent release may have been first) and whether the endpoint had published ports.
    pub(super) fn drop_endpoint(
        &self,
        record: &EndpointRecord,
        delete_link: bool,
        sync_rules: bool,
    ) -> Result<(bool, bool)> {
        if delete_link {
            Rtnl::open()?.delete_link(&record.host_veth)?;
        }
        let path = self.endpoint_path(&record.network_id, &record.container_id);
        let removed = {
            let _lock = self.lock()?;
            let marker = self.setup_marker(&record.network_id, &record.container_id);
            let mut removed = false;
            for p in [&path, &marker] {
                match std::fs::remove_file(p) {
                    Ok(()) => removed |= p == &path,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(NetError::io(p, e)),
                }
            }
            removed
        };
        let had_ports = !record.ports.is_empty();
        if had_ports && sync_rules {
            self.sync_firewall()?;
        }
        Ok((removed, had_ports))
    }

    /// Frees everything container `id` holds, once its processes are gone: endpoints
    /// (addresses, veths, rules) and its pinned namespace. Safe to call twice and after a crash
    /// at any point.
    ///
    /// The veths are not deleted one by one: unpinning a namespace nothing else holds makes the
    /// kernel destroy it with every interface inside, veth peers included, in its own cleanup
    /// work. An explicit `RTM_DELLINK` waits for an RCU grace period in the caller (about 25 ms
    /// measured on `run --rm`'s path), so it is kept for namespaces that are not pinned here.
    ///
    /// Returns the endpoints this call released (not those a concurrent release took first), so
    /// each disconnection is reported once.
    pub fn release_container(&self, container_id: &str) -> Result<Vec<EndpointRecord>> {
        let netns_path = self.netns_path(container_id);
        let pinned = netns_path.exists();
        let mut first_err = None;
        let mut had_ports = false;
        let mut released = Vec::new();
        for ep in self.container_endpoints(container_id)? {
            match self.drop_endpoint(&ep, !pinned, false) {
                Ok((removed, ports)) => {
                    had_ports |= ports;
                    if removed {
                        released.push(ep);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Err(e) = netns::remove(&netns_path) {
            first_err.get_or_insert(e);
        }
        if had_ports {
            if let Err(e) = self.sync_firewall() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(released), Err)
    }
}
