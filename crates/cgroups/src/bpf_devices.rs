//! cgroup v2 device access control. v2 has no devices.allow file: the kernel consults an eBPF
//! program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup.
//!
//! Not enforced yet: rules are validated and logged, and `apply` returns Ok, so containers on v2
//! hosts run with the device access their parent cgroup allows.

use crate::devices::effective_rules;
use crate::CgroupError;
use oci_spec::runtime::LinuxDeviceCgroup;
use std::path::Path;

pub(crate) fn apply(dir: &Path, devices: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let rules = effective_rules(devices);
    tracing::debug!(
        cgroup = %dir.display(),
        rules = rules.len(),
        "cgroup v2 device rules are not enforced (no eBPF device filter yet)"
    );
    Ok(())
}
