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
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{NetError, Result};

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
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| nl_err(op, object, e))?;

        let mut replies = Vec::new();
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        loop {
            let (data, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| nl_err(op, object, e))?;
            let mut offset = 0;
            while offset < data.len() {
                let bytes = &data[offset..];
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| nl_err(op, object, std::io::Error::other(e.to_string())))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != self.sequence {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(replies),
                            Some(code) => Err(nl_err(
                                op,
                                object,
                                std::io::Error::from_raw_os_error(-code.get()),
                            )),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        if !dump {
                            // A non-dump request with NLM_F_ACK still ends with an ack.
                            continue;
                        }
                    }
                    _ => {}
                }
            }
        }
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
    /// network namespace open at `peer_netns` (so no interface ever shows up twice).
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: RawFd,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
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
        msg.attributes
            .push(LinkAttribute::IfName(host_name.to_string()));
        if let Some(mtu) = mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
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
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        if let Some(controller) = controller {
            msg.attributes.push(LinkAttribute::Controller(controller));
        }
        self.request(
            "set up",
            &format!("link {index}"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )?;
        Ok(())
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
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(ip)));
        let host_bits = 32 - u32::from(prefix);
        if prefix < 31 {
            let broadcast = u32::from(ip) | ((1u64 << host_bits) - 1) as u32;
            msg.attributes
                .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
        }
        match self.request(
            "add address",
            &format!("{ip}/{prefix}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(NetError::Netlink { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Adds the default route through `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(
            "add default route via",
            &gateway.to_string(),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
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
