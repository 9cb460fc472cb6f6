//! Berth's container networking: bridge networks with persisted address allocation, per-container
//! network namespaces pinned under the root, veth pairs, Berth's own nftables table `inet berth`
//! (masquerade, published ports, isolation), an embedded resolver per user-defined network, and
//! the `/etc/hosts` / `/etc/resolv.conf` a container gets. It knows nothing of containers beyond
//! their id and name: the engine calls it (create a sandbox, attach, release) and the builder
//! through the engine.
//!
//! Links, addresses and routes go through rtnetlink (`netlink-packet-route` messages on a
//! `netlink-sys` socket); firewall rules through nf_tables netlink in one kernel transaction per
//! change, encoded by libnftnl (Mullvad's `nftnl` crate) and sent through libmnl, with no `nft`
//! program involved.
//! Nothing here spawns a helper on the plain `run` path: the firewall is rewritten only when a
//! network changes or a container publishes ports.
pub mod dns;
pub mod error;
pub mod files;
pub mod firewall;
pub mod model;
pub mod netlink;
pub mod netns;
pub mod nf_tables;
pub mod ports;
pub mod store;

pub use error::{NetError, Result};
pub use model::{EndpointRecord, NetworkRecord, DEFAULT_BRIDGE, DEFAULT_NETWORK};
pub use ports::{PortBinding, Protocol};
pub use store::{AttachRequest, CreateNetwork, NetStore};
