//! Network records: choosing subnets (no collision with the host's routes), creating,
//! bringing up, removing and pruning networks.
use super::*;

impl NetStore {
    pub(super) fn host_routes() -> Result<Vec<Ipv4Net>> {
        Rtnl::open()?.ipv4_routes()
    }

    pub(super) fn choose_subnet(&self, taken: &[Ipv4Net]) -> Result<Ipv4Net> {
        let routes = Self::host_routes()?;
        candidate_subnets()
            .find(|c| !routes.iter().chain(taken).any(|r| overlaps(c, r)))
            .ok_or(NetError::NoFreeSubnet)
    }

    /// `network create`: validates, picks a free subnet if none was given, writes the record
    /// and brings the bridge up.
    pub fn create(&self, req: &CreateNetwork) -> Result<NetworkRecord> {
        if !valid_name(&req.name) {
            return Err(NetError::invalid(
                "network name",
                &req.name,
                "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
            ));
        }
        if ["host", "none", DEFAULT_NETWORK].contains(&req.name.as_str()) {
            return Err(NetError::Predefined {
                network: req.name.clone(),
                action: "created".into(),
            });
        }
        let record = {
            let _lock = self.lock()?;
            let existing = self.networks()?;
            if existing.iter().any(|n| n.name == req.name) {
                return Err(NetError::NetworkExists(req.name.clone()));
            }
            let record = self.new_record(req, &existing)?;
            write_atomic(
                &self.network_path(&record.id),
                &serde_json::to_vec_pretty(&record).unwrap_or_default(),
            )?;
            record
        };
        if let Err(e) = Rtnl::open().and_then(|mut rtnl| self.bring_up(&mut rtnl, &record, true)) {
            let _ = self.remove(&record.id);
            return Err(e);
        }
        Ok(record)
    }

    pub(super) fn new_record(
        &self,
        req: &CreateNetwork,
        existing: &[NetworkRecord],
    ) -> Result<NetworkRecord> {
        let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
        let subnet = match &req.subnet {
            Some(s) => {
                let net: Ipv4Net = s
                    .parse()
                    .map_err(|_| NetError::invalid("subnet", s, "not an IPv4 CIDR"))?;
                if net.prefix_len() > 30 {
                    return Err(NetError::invalid("subnet", s, "too small for containers"));
                }
                if let Some(other) = existing.iter().find(|n| overlaps(&n.subnet, &net)) {
                    return Err(NetError::invalid(
                        "subnet",
                        s,
                        format!(
                            "Pool overlaps with other one on this address space ({})",
                            other.name
                        ),
                    ));
                }
                net.trunc()
            }
            None => self.choose_subnet(&taken)?,
        };
        let ip_range = match &req.ip_range {
            Some(r) => {
                let range: Ipv4Net = r
                    .parse()
                    .map_err(|_| NetError::invalid("ip-range", r, "not an IPv4 CIDR"))?;
                if !subnet.contains(&range.network()) || range.prefix_len() < subnet.prefix_len() {
                    return Err(NetError::invalid(
                        "ip-range",
                        r,
                        format!("not inside subnet {subnet}"),
                    ));
                }
                Some(range.trunc())
            }
            None => None,
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let gw: Ipv4Addr = g
                    .parse()
                    .map_err(|_| NetError::invalid("gateway", g, "not an IPv4 address"))?;
                if !subnet.contains(&gw) || gw == subnet.network() || gw == subnet.broadcast() {
                    return Err(NetError::invalid(
                        "gateway",
                        g,
                        format!("not a host address of {subnet}"),
                    ));
                }
                gw
            }
            None => subnet
                .hosts()
                .next()
                .ok_or_else(|| NetError::invalid("subnet", subnet.to_string(), "has no hosts"))?,
        };
        let (subnet6, gateway6) = Self::new_ipv6(req, existing)?;
        let mtu = match req.options.get(MTU_OPTION) {
            Some(m) => Some(
                m.parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| {
                        NetError::invalid("mtu", m, "must be a number from 68 to 65535")
                    })?,
            ),
            None => None,
        };
        let id = random_id();
        let bridge = if req.name == DEFAULT_NETWORK {
            DEFAULT_BRIDGE.to_string()
        } else {
            format!("br-{}", &id[..12])
        };
        Ok(NetworkRecord {
            id,
            name: req.name.clone(),
            created: berth_common::time::now_rfc3339(),
            subnet,
            gateway,
            ip_range,
            internal: req.internal,
            mtu,
            labels: req.labels.clone(),
            options: req.options.clone(),
            bridge,
            subnet6,
            gateway6,
        })
    }

    /// The IPv6 half of `network create --ipv6 [--subnet V6 [--gateway V6]]`.
    pub(super) fn new_ipv6(
        req: &CreateNetwork,
        existing: &[NetworkRecord],
    ) -> Result<(Option<Ipv6Net>, Option<Ipv6Addr>)> {
        if !req.ipv6 {
            if let Some(s) = req.subnet6.as_ref().or(req.gateway6.as_ref()) {
                return Err(NetError::invalid(
                    "subnet",
                    s,
                    "an IPv6 subnet or gateway needs --ipv6",
                ));
            }
            return Ok((None, None));
        }
        let subnet = match &req.subnet6 {
            Some(s) => {
                let net: Ipv6Net = s
                    .parse()
                    .map_err(|_| NetError::invalid("subnet", s, "not an IPv6 CIDR"))?;
                if net.prefix_len() > 126 {
                    return Err(NetError::invalid("subnet", s, "too small for containers"));
                }
                net.trunc()
            }
            None => random_ula(),
        };
        if let Some(other) = existing
            .iter()
            .find(|n| n.subnet6.is_some_and(|o| overlaps6(&o, &subnet)))
        {
            return Err(NetError::invalid(
                "subnet",
                subnet.to_string(),
                format!(
                    "Pool overlaps with other one on this address space ({})",
                    other.name
                ),
            ));
        }
        let gateway = match &req.gateway6 {
            Some(g) => {
                let gw: Ipv6Addr = g
                    .parse()
                    .map_err(|_| NetError::invalid("gateway", g, "not an IPv6 address"))?;
                if !subnet.contains(&gw) || gw == subnet.network() {
                    return Err(NetError::invalid(
                        "gateway",
                        g,
                        format!("not a host address of {subnet}"),
                    ));
                }
                gw
            }
            None => first_host6(&subnet),
        };
        Ok((Some(subnet), Some(gateway)))
    }

    /// The default `bridge` network, made on first use.
    pub fn ensure_default(&self) -> Result<NetworkRecord> {
        if let Ok(found) = self.find(DEFAULT_NETWORK) {
            return Ok(found);
        }
        let record = {
            let _lock = self.lock()?;
            let existing = self.networks()?;
            if let Some(found) = existing.iter().find(|n| n.is_default()) {
                return Ok(found.clone());
            }
            let mut options = BTreeMap::new();
            for (k, v) in [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                ("com.docker.network.bridge.name", DEFAULT_BRIDGE),
                (MTU_OPTION, "1500"),
            ] {
                options.insert(k.to_string(), v.to_string());
            }
            let req = CreateNetwork {
                name: DEFAULT_NETWORK.into(),
                options,
                ..Default::default()
            };
            let record = self.new_record(&req, &existing)?;
            write_atomic(
                &self.network_path(&record.id),
                &serde_json::to_vec_pretty(&record).unwrap_or_default(),
            )?;
            record
        };
        Ok(record)
    }

    /// Makes sure the bridge exists, has its gateway address and is up; `sync_rules` also
    /// rewrites the firewall table (always done when the bridge had to be made). Returns the
    /// bridge's index. An existing bridge costs one lookup: nothing is re-read or re-written.
    pub(super) fn bring_up(
        &self,
        rtnl: &mut Rtnl,
        net: &NetworkRecord,
        sync_rules: bool,
    ) -> Result<u32> {
        let (index, made) = match rtnl.link_index(&net.bridge)? {
            Some(index) => (index, false),
            None => {
                match rtnl.create_bridge(&net.bridge, net.mtu) {
                    Err(NetError::Netlink { source, .. })
                        if source.raw_os_error() == Some(libc::EEXIST) => {}
                    other => other?,
                }
                let index = rtnl.require_link_index(&net.bridge)?;
                rtnl.add_address(index, IpAddr::V4(net.gateway), net.subnet.prefix_len())?;
                if let (Some(subnet6), Some(gateway6)) = (net.subnet6, net.gateway6) {
                    rtnl.add_address(index, IpAddr::V6(gateway6), subnet6.prefix_len())?;
                }
                rtnl.set_up(index, None)?;
                firewall::enable_forwarding(&net.bridge, net.enable_ipv6())?;
                (index, true)
            }
        };
        if made || sync_rules {
            self.sync_firewall()?;
        }
        Ok(index)
    }

    /// Rewrites `inet berth` from the records.
    pub fn sync_firewall(&self) -> Result<()> {
        let nets = self.networks()?;
        let mut eps = Vec::new();
        for n in &nets {
            eps.extend(self.endpoints(&n.id)?);
        }
        firewall::sync(&nets, &eps)
    }

    /// `network rm`: refused while containers use it (naming them); removes bridge and rules.
    pub fn remove(&self, key: &str) -> Result<NetworkRecord> {
        let net = self.find(key)?;
        {
            let _lock = self.lock()?;
            let users = self.endpoints(&net.id)?;
            if !users.is_empty() {
                return Err(NetError::InUse {
                    network: net.name.clone(),
                    id: net.id.clone(),
                    containers: users
                        .iter()
                        .map(|e| e.container_name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let path = self.network_path(&net.id);
            std::fs::remove_file(&path).map_err(|e| NetError::io(&path, e))?;
            let _ = std::fs::remove_dir(self.endpoint_dir(&net.id));
        }
        crate::dns::stop(&self.dir, &net.id);
        Rtnl::open()?.delete_link(&net.bridge)?;
        self.sync_firewall()?;
        Ok(net)
    }

    /// `network prune`: removes every user-defined network no container uses.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for net in self.networks()? {
            if net.is_default() || !self.endpoints(&net.id)?.is_empty() {
                continue;
            }
            match self.remove(&net.id) {
                Ok(n) => removed.push(n.name),
                Err(NetError::InUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}
