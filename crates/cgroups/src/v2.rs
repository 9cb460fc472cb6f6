//! cgroup v2 backend (being written).

use crate::{Cgroup, CgroupError, CgroupVersion, Stats};
use oci_spec::runtime::LinuxResources;
#[allow(unused_imports)]
use std::path::Path;

fn todo(what: &str) -> CgroupError {
    CgroupError::Unsupported {
        resource: what.to_string(),
        version: CgroupVersion::V2,
        reason: "not implemented yet".into(),
    }
}

pub(crate) fn apply(_cg: &Cgroup, _r: &LinuxResources) -> Result<(), CgroupError> {
    Err(todo("apply"))
}
pub(crate) fn set_frozen(_cg: &Cgroup, _frozen: bool) -> Result<(), CgroupError> {
    Err(todo("freeze"))
}
pub(crate) fn is_frozen(_cg: &Cgroup) -> Result<bool, CgroupError> {
    Err(todo("freeze"))
}
pub(crate) fn stats(_cg: &Cgroup) -> Result<Stats, CgroupError> {
    Err(todo("stats"))
}
pub(crate) fn oom_kill_count(_cg: &Cgroup) -> Result<u64, CgroupError> {
    Err(todo("oom"))
}
