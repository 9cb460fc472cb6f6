//! The container's mounts: Docker's defaults (/proc, /dev, /sys, …, the bind-mounted
//! resolv.conf, hostname and hosts), then `-v`/`--mount`/`--tmpfs` and the `--init` binary,
//! shallowest first; a user mount over a default one replaces it.

use super::*;
use oci_spec::runtime::{Mount, MountBuilder};

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Every mount of the container, in the order the runtime makes them.
pub(super) fn mounts(host: &HostConfig, ctx: &SpecContext) -> Result<Vec<Mount>> {
    let dir = |name: &str| ctx.container_dir.join(name).to_string_lossy().into_owned();
    let shm_size = if host.shm_size > 0 {
        host.shm_size
    } else {
        64 << 20
    };
    let shm = format!("size={shm_size}");
    let sys_ro = if host.privileged { "rw" } else { "ro" };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_ro],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        )?,
        mount(
            "/etc/resolv.conf",
            "bind",
            &dir("resolv.conf"),
            &["rbind", "rprivate"],
        )?,
        mount(
            "/etc/hostname",
            "bind",
            &dir("hostname"),
            &["rbind", "rprivate"],
        )?,
        mount("/etc/hosts", "bind", &dir("hosts"), &["rbind", "rprivate"])?,
    ];
    let mut user_mounts: Vec<Mount> = Vec::new();
    for m in &host.mounts {
        let rw = if m.read_only { "ro" } else { "rw" };
        user_mounts.push(match m.r#type.as_str() {
            "bind" => mount(&m.target, "bind", &m.source, &["rbind", "rprivate", rw])?,
            "volume" => {
                let source = ctx.volumes_dir.join(&m.source).join("_data");
                mount(
                    &m.target,
                    "bind",
                    &source.to_string_lossy(),
                    &["rbind", "rprivate", rw],
                )?
            }
            _ => mount(
                &m.target,
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "noexec", rw],
            )?,
        });
    }
    for (target, opts) in &host.tmpfs {
        let mut options = vec!["nosuid", "nodev", "noexec"];
        options.extend(opts.split(',').filter(|o| !o.is_empty()));
        user_mounts.push(mount(target, "tmpfs", "tmpfs", &options)?);
    }
    if let Some(init) = &ctx.init_binary {
        user_mounts.push(mount(
            "/sbin/docker-init",
            "bind",
            &init.to_string_lossy(),
            &["bind", "ro"],
        )?);
    }
    user_mounts.sort_by_key(|m| m.destination().to_string_lossy().matches('/').count());
    // A user mount over a default one (e.g. -v …:/etc/hosts) replaces it.
    mounts.retain(|d| {
        !user_mounts
            .iter()
            .any(|u| u.destination() == d.destination())
    });
    mounts.extend(user_mounts);
    Ok(mounts)
}
