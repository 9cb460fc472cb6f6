//! `berth update`: changes a container's resource limits and restart policy. The new values are
//! kept in `hostconfig.json` and in the bundle's `config.json` (so the next start gets them), and
//! applied live to a running container's cgroup through berth-cgroups, the way `runc update`
//! (and `berth-runtime update`) applies them: only the fields given are written, v1 or v2.
//! Validation follows Docker's daemon and happens before anything is written.
use crate::error::{EngineError, Result};
use crate::lifecycle::Engine;
use crate::options::{HostConfig, RestartPolicy};
use serde_json::Value;

/// What `update` was asked; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<RestartPolicy>,
}

impl UpdateRequest {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_swap.is_none()
            && self.memory_reservation.is_none()
            && self.nano_cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpu_quota.is_none()
            && self.cpu_period.is_none()
            && self.cpuset_cpus.is_none()
            && self.cpuset_mems.is_none()
            && self.pids_limit.is_none()
            && self.blkio_weight.is_none()
            && self.restart_policy.is_none()
    }
}

fn refuse(id: &str, reason: impl Into<String>) -> EngineError {
    EngineError::UpdateRefused {
        id: id.to_string(),
        reason: reason.into(),
    }
}

/// The host config after `req`, or Docker's refusal.
pub fn updated_host_config(id: &str, old: &HostConfig, req: &UpdateRequest) -> Result<HostConfig> {
    let mut host = old.clone();
    if let Some(m) = req.memory {
        if m != 0 && m < 6 << 20 {
            return Err(refuse(id, "Minimum memory limit allowed is 6MB"));
        }
        if req.memory_swap.is_none() && host.memory_swap > 0 && m > host.memory_swap {
            return Err(refuse(id, "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"));
        }
        host.memory = m;
    }
    if let Some(s) = req.memory_swap {
        if host.memory == 0 && s > 0 {
            return Err(refuse(
                id,
                "You should always set the Memory limit when using Memoryswap limit",
            ));
        }
        if s > 0 && s < host.memory {
            return Err(refuse(
                id,
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
        host.memory_swap = s;
    }
    if let Some(r) = req.memory_reservation {
        if host.memory > 0 && r > host.memory {
            return Err(refuse(
                id,
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
        host.memory_reservation = r;
    }
    if req.nano_cpus.is_some() && (req.cpu_quota.is_some() || req.cpu_period.is_some()) {
        return Err(refuse(
            id,
            "Conflicting options: Nano CPUs and CPU Period (or Quota) cannot both be set",
        ));
    }
    if let Some(n) = req.nano_cpus {
        host.nano_cpus = n;
        host.cpu_quota = 0;
    }
    if let Some(q) = req.cpu_quota {
        host.cpu_quota = q;
        host.nano_cpus = 0;
    }
    if let Some(p) = req.cpu_period {
        if p != 0 && !(1000..=1_000_000).contains(&p) {
            return Err(refuse(
                id,
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ));
        }
        host.cpu_period = p;
    }
    if let Some(s) = req.cpu_shares {
        host.cpu_shares = s;
    }
    if let Some(c) = &req.cpuset_cpus {
        host.cpuset_cpus = c.clone();
    }
    if let Some(m) = &req.cpuset_mems {
        host.cpuset_mems = m.clone();
    }
    if let Some(p) = req.pids_limit {
        host.pids_limit = Some(if p <= 0 { -1 } else { p });
    }
    if let Some(w) = req.blkio_weight {
        if w != 0 && !(10..=1000).contains(&w) {
            return Err(refuse(id, "Range of blkio weight is from 10 to 1000"));
        }
        host.blkio_weight = w;
    }
    if let Some(policy) = &req.restart_policy {
        if host.auto_remove && policy.name != "no" {
            return Err(refuse(
                id,
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        host.restart_policy = policy.clone();
    }
    Ok(host)
}

/// `berth update CONTAINER`: validates, applies to the live cgroup when running, then records.
pub fn update(engine: &Engine, id: &str, req: &UpdateRequest) -> Result<()> {
    let record = engine.store.load(id)?;
    let old = engine.store.load_host_config(id)?;
    let host = updated_host_config(id, &old, req)?;
    let limits = crate::spec::resource_limits(&host)?;
    if record.is_running() && !record.berth_cgroups_path.is_empty() {
        apply_live(id, &record.berth_cgroups_path, &limits)?;
    }
    rewrite_bundle_limits(engine, id, &limits)?;
    engine.store.save_host_config(id, &host)?;
    crate::events::container(engine.root(), &record, "update", &[]);
    Ok(())
}

/// Writes `limits` to the container's cgroup (only the controllers they name).
fn apply_live(
    id: &str,
    cgroups_path: &str,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<()> {
    let hierarchy = berth_cgroups::Hierarchy::detect()
        .map_err(|e| refuse(id, format!("cgroup {cgroups_path}: {e}")))?;
    let cgroup = berth_cgroups::Cgroup::open(&hierarchy, cgroups_path)
        .map_err(|e| refuse(id, format!("cgroup {cgroups_path}: {e}")))?;
    cgroup
        .apply(resources)
        .map_err(|e| refuse(id, format!("cgroup {cgroups_path}: {e}")))
}

/// Replaces the limit sections of `linux.resources` in the bundle's `config.json`.
fn rewrite_bundle_limits(
    engine: &Engine,
    id: &str,
    limits: &oci_spec::runtime::LinuxResources,
) -> Result<()> {
    let path = engine.store.container_dir(id).join("config.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io(&path, e)),
    };
    let mut spec: Value = serde_json::from_slice(&bytes).map_err(|source| EngineError::Json {
        path: path.clone(),
        source,
    })?;
    if let Some(resources) = spec
        .pointer_mut("/linux/resources")
        .and_then(Value::as_object_mut)
    {
        for key in ["memory", "cpu", "pids", "blockIO"] {
            resources.remove(key);
        }
        let limits = serde_json::to_value(limits).map_err(|source| EngineError::Json {
            path: path.clone(),
            source,
        })?;
        if let Value::Object(limits) = limits {
            resources.extend(limits);
        }
    }
    let json = serde_json::to_vec(&spec).map_err(|source| EngineError::Json {
        path: path.clone(),
        source,
    })?;
    crate::record::write_atomic(&path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules_for_updates() {
        let old = HostConfig::default();
        let host = updated_host_config(
            "c",
            &old,
            &UpdateRequest {
                memory: Some(64 << 20),
                cpu_shares: Some(512),
                pids_limit: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(host.memory, 64 << 20);
        assert_eq!(host.pids_limit, Some(-1));
        let limits = crate::spec::resource_limits(&host).unwrap();
        assert_eq!(limits.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(limits.cpu().as_ref().unwrap().shares(), Some(512));
        let too_small = UpdateRequest {
            memory: Some(1 << 20),
            ..Default::default()
        };
        assert!(updated_host_config("c", &old, &too_small).is_err());
        let swap_only = UpdateRequest {
            memory_swap: Some(128 << 20),
            ..Default::default()
        };
        assert!(updated_host_config("c", &old, &swap_only).is_err());
        let both = UpdateRequest {
            nano_cpus: Some(1_000_000_000),
            cpu_quota: Some(50_000),
            ..Default::default()
        };
        assert!(updated_host_config("c", &old, &both).is_err());
        let rm = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        let restart = UpdateRequest {
            restart_policy: Some(crate::options::parse_restart("always").unwrap()),
            ..Default::default()
        };
        assert!(updated_host_config("c", &rm, &restart).is_err());
        let w = UpdateRequest {
            blkio_weight: Some(5),
            ..Default::default()
        };
        assert!(updated_host_config("c", &old, &w).is_err());
    }
}
