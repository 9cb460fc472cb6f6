//! The crate's one error type; every variant names the object it is about.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("{network} is a pre-defined network and cannot be {action}")]
    Predefined { network: String, action: String },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("error while removing network: network {network} id {id} has active endpoints ({containers})")]
    InUse {
        network: String,
        id: String,
        containers: String,
    },
    #[error("no available IPv4 addresses on network {0}")]
    PoolExhausted(String),
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse { ip: String, network: String },
    #[error("container {container} is already connected to network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreeSubnet,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("netlink {op} {object}: {source}")]
    Netlink {
        op: &'static str,
        object: String,
        source: std::io::Error,
    },
    #[error("network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nftables table inet berth: {0}")]
    Firewall(String),
    #[error("port {port}: {reason}")]
    Port { port: String, reason: String },
    #[error("resolver for network {network}: {reason}")]
    Resolver { network: String, reason: String },
}

impl NetError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> NetError {
        NetError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        NetError::Invalid {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, NetError>;
