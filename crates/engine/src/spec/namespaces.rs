//! The container's namespaces: its own mount namespace always; pid, ipc, uts and network its
//! own, the host's (`host`: left out) or another container's (`container:X`: joined by path).

use super::*;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

fn namespace(typ: LinuxNamespaceType, path: Option<&String>) -> Result<LinuxNamespace> {
    let ns = LinuxNamespaceBuilder::default().typ(typ);
    Ok(match path {
        Some(p) => ns.path(p).build()?,
        None => ns.build()?,
    })
}

/// The namespaces of `linux.namespaces`.
pub(super) fn namespaces(host: &HostConfig, ctx: &SpecContext) -> Result<Vec<LinuxNamespace>> {
    use LinuxNamespaceType::{Ipc, Mount, Network, Pid, Uts};
    let ns = |typ: LinuxNamespaceType, mode: &str, path: &Option<String>| {
        if let (Some(p), Network) = (path, typ) {
            // A namespace prepared (and pinned) before the container starts.
            Some(namespace(typ, Some(p)))
        } else if mode == "host" {
            None
        } else if mode.starts_with("container:") {
            path.as_ref().map(|p| namespace(typ, Some(p)))
        } else {
            Some(namespace(typ, None))
        }
    };
    let mut out = vec![namespace(Mount, None)?];
    for made in [
        ns(Pid, &host.pid_mode, &ctx.join_pid_ns),
        ns(Ipc, &host.ipc_mode, &ctx.join_ipc_ns),
        ns(Uts, &host.uts_mode, &None),
        ns(Network, &host.network_mode, &ctx.join_net_ns),
    ]
    .into_iter()
    .flatten()
    {
        out.push(made?);
    }
    Ok(out)
}
