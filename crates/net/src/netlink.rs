//! Links, addresses and routes through rtnetlink: one blocking `NETLINK_ROUTE` socket per
//! namespace, messages built with `netlink-packet-route` (no hand encoding), each request
//! acknowledged before the next. The socket belongs to the network namespace of the thread that
//! opened it, which is how the container side is configured without spawning anything.
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{NetError, Result};

/// An EEXIST answer means what was asked for is already there.
pub fn tolerate_exists(result: Result<Vec<RouteNetlinkMessage>>) -> Result<()> {
    match result {
        Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// Sets link `index` up (and into bridge `controller`).
pub fn set_up_request(index: u32, controller: Option<u32>) -> Request {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    if let Some(controller) = controller {
        msg.attributes.push(LinkAttribute::Controller(controller));
    }
    Request {
        op: "set up",
        object: format!("link {index}"),
        message: RouteNetlinkMessage::SetLink(msg),
        flags: NLM_F_ACK,
    }
}

/// Looks link `name` up (its index is in the reply).
pub fn get_link_request(name: &str) -> Request {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    Request {
        op: "get link",
        object: name.to_string(),
        message: RouteNetlinkMessage::GetLink(msg),
        flags: NLM_F_ACK,
    }
}

/// The index in a [`get_link_request`]'s replies.
pub fn link_index_of(replies: &[RouteNetlinkMessage]) -> Option<u32> {
    replies.iter().find_map(|r| match r {
        RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
        _ => None,
    })
}

/// Adds `ip/prefix` to link `index`. IPv6 addresses are added without duplicate address
/// detection (`IFA_F_NODAD`): the address is Berth's own allocation and must work at once.
pub fn address_request(index: u32, ip: IpAddr, prefix: u8) -> Request {
    let mut msg = AddressMessage::default();
    msg.header.prefix_len = prefix;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    match ip {
        IpAddr::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            if prefix < 31 {
                let host_bits = 32 - u32::from(prefix);
                let broadcast = u32::from(v4) | ((1u64 << host_bits) - 1) as u32;
                msg.attributes
                    .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
            }
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    Request {
        op: "add address",
        object: format!("{ip}/{prefix}"),
        message: RouteNetlinkMessage::NewAddress(msg),
        flags: NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    }
}

/// Adds the default route through `gateway`.
pub fn default_route_request(gateway: IpAddr) -> Request {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match gateway {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    let via = match gateway {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    };
    msg.attributes.push(RouteAttribute::Gateway(via));
    Request {
        op: "add default route via",
        object: gateway.to_string(),
        message: RouteNetlinkMessage::NewRoute(msg),
        flags: NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    }
}

/// One request of a [`Rtnl::pipeline`]: what it is (for errors), the message and its flags.
pub struct Request {
    pub op: &'static str,
    pub object: String,
    pub message: RouteNetlinkMessage,
    pub flags: u16,
}

/// The loopback device's index, the same in every network namespace (`LOOPBACK_IFINDEX`).
pub const LOOPBACK_INDEX: u32 = 1;

/// A blocking rtnetlink connection bound to the caller's current network namespace.
pub struct Rtnl {
    socket: Socket,
    sequence: u32,
}

fn nl_err(op: &'static str, object: impl Into<String>, source: std::io::Error) -> NetError {
    NetError::Netlink {
        op,
        object: object.into(),
        source,
    }
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err("open", "socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| nl_err("bind", "socket", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| nl_err("connect", "socket", e))?;
        Ok(Rtnl {
            socket,
            sequence: 0,
        })
    }

    /// Sends one request and collects the replies up to the kernel's ack (or the end of a dump).
    fn request(
        &mut self,
        op: &'static str,
        object: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.pipeline(vec![Request {
            op,
            object: object.to_string(),
            message,
            flags,
        }])
        .pop()
        .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Sends several requests in one write and collects each one's replies and outcome, in order.
    /// The kernel handles them one after the other (rtnetlink is not transactional: a failed
    /// request does not stop the next), so one round trip does the work of several.
    pub fn pipeline(&mut self, requests: Vec<Request>) -> Vec<Result<Vec<RouteNetlinkMessage>>> {
        let first = self.sequence.wrapping_add(1);
        let mut buf = Vec::new();
        let mut labels = Vec::with_capacity(requests.len());
        for req in requests {
            self.sequence = self.sequence.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | req.flags;
            header.sequence_number = self.sequence;
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(req.message));
            packet.finalize();
            let start = buf.len();
            buf.resize(start + packet.buffer_len(), 0);
            packet.serialize(&mut buf[start..]);
            labels.push((req.op, req.object, req.flags & NLM_F_DUMP == NLM_F_DUMP));
        }
        let count = labels.len();
        let mut results: Vec<Option<Result<Vec<RouteNetlinkMessage>>>> =
            (0..count).map(|_| None).collect();
        let mut replies: Vec<Vec<RouteNetlinkMessage>> = (0..count).map(|_| Vec::new()).collect();
        let fail_all = |results: &mut Vec<Option<Result<Vec<RouteNetlinkMessage>>>>,
                        e: &std::io::Error| {
            for (slot, (op, object, _)) in results.iter_mut().zip(&labels) {
                if slot.is_none() {
                    *slot = Some(Err(nl_err(
                        op,
                        object.as_str(),
                        std::io::Error::new(e.kind(), e.to_string()),
                    )));
                }
            }
        };
        if let Err(e) = self.socket.send(&buf, 0) {
            fail_all(&mut results, &e);
            return results.into_iter().flatten().collect();
        }
        while results.iter().any(Option::is_none) {
            let data = match self.socket.recv_from_full() {
                Ok((data, _)) => data,
                Err(e) => {
                    fail_all(&mut results, &e);
                    break;
                }
            };
            let mut offset = 0;
            while offset < data.len() {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                else {
                    break;
                };
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                let index = msg.header.sequence_number.wrapping_sub(first) as usize;
                if index >= count || results[index].is_some() {
                    continue;
                }
                let (op, object, _) = &labels[index];
                match msg.payload {
                    NetlinkPayload::Error(err) => {
                        results[index] = Some(match err.code {
                            None => Ok(std::mem::take(&mut replies[index])),
                            Some(code) => Err(nl_err(
                                op,
                                object.as_str(),
                                std::io::Error::from_raw_os_error(-code.get()),
                            )),
                        });
                    }
                    NetlinkPayload::Done(_) => {
                        results[index] = Some(Ok(std::mem::take(&mut replies[index])));
                    }
                    NetlinkPayload::InnerMessage(inner) => replies[index].push(inner),
                    _ => {}
                }
            }
        }
        results.into_iter().flatten().collect()
    }

    /// The index of the link called `name`, if there is one.
    /// The index of link `name`, which must exist (ENODEV names it otherwise).
    pub fn require_link_index(&mut self, name: &str) -> Result<u32> {
        self.link_index(name)?.ok_or_else(|| {
            nl_err(
                "find",
                name,
                std::io::Error::from_raw_os_error(libc::ENODEV),
            )
        })
    }

    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            "get link",
            name,
            RouteNetlinkMessage::GetLink(msg),
            NLM_F_ACK,
        ) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })),
            Err(NetError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge called `name` (with an MTU if given); fails with EEXIST when it exists.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(
            "create bridge",
            name,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Creates a veth pair: `host_name` stays here, `peer_name` is created directly inside the
    /// network namespace open at `peer_netns` (so no interface ever shows up twice). The host
    /// end comes up and joins `controller` (a bridge) in the same request.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: RawFd,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
        controller: Option<u32>,
    ) -> Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(peer_name.to_string()));
        peer.attributes.push(LinkAttribute::NetNsFd(peer_netns));
        if let Some(mtu) = mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes
            .push(LinkAttribute::IfName(host_name.to_string()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(controller) = controller {
            msg.attributes.push(LinkAttribute::Controller(controller));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(
            "create veth",
            host_name,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Sets a link up, optionally enslaving it to a bridge first (one message).
    pub fn set_up(&mut self, index: u32, controller: Option<u32>) -> Result<()> {
        self.pipeline(vec![set_up_request(index, controller)])
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()))
            .map(|_| ())
    }

    /// Deletes a link by name; a link that is already gone is not an error.
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            "delete link",
            name,
            RouteNetlinkMessage::DelLink(msg),
            NLM_F_ACK,
        ) {
            Err(NetError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Adds `ip/prefix` to a link; an address that is already there is not an error.
    pub fn add_address(&mut self, index: u32, ip: IpAddr, prefix: u8) -> Result<()> {
        let result = self
            .pipeline(vec![address_request(index, ip, prefix)])
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()));
        tolerate_exists(result)
    }

    /// Adds the default route through `gateway` (IPv4 or IPv6).
    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<()> {
        self.pipeline(vec![default_route_request(gateway)])
            .pop()
            .unwrap_or_else(|| Ok(Vec::new()))
            .map(|_| ())
    }

    /// Every IPv4 destination in the main routing table (for choosing a subnet that collides
    /// with none of them). The default route is left out.
    pub fn ipv4_routes(&mut self) -> Result<Vec<ipnet::Ipv4Net>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self.request(
            "dump",
            "routes",
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
        )?;
        let mut nets = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(route) = reply else {
                continue;
            };
            let prefix = route.header.destination_prefix_length;
            if prefix == 0 || route.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            for attr in &route.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(addr)) = attr {
                    if let Ok(net) = ipnet::Ipv4Net::new(*addr, prefix) {
                        nets.push(net.trunc());
                    }
                }
            }
        }
        Ok(nets)
    }
}
