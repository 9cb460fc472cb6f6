//! Linux capabilities of the container process: the spec's five sets applied in runc's order
//! (bounding dropped first, keep-caps across the uid change, then effective/permitted/
//! inheritable, then ambient). Capabilities the running kernel lacks are skipped.

use crate::init_error::InitError;
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

/// The spec's sets converted to the caps crate, unknown ones dropped.
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub permitted: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert(set: &Option<Capabilities>, known: &CapsHashSet) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| Capability::from_str(&format!("CAP_{c}")).ok())
        .filter(|c| known.contains(c))
        .collect()
}

/// Converts the spec's capabilities (None = no capabilities at all, as runc).
pub fn from_spec(caps: Option<&LinuxCapabilities>) -> CapSets {
    let known = caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all());
    let none = CapsHashSet::new;
    match caps {
        Some(c) => CapSets {
            bounding: convert(c.bounding(), &known),
            effective: convert(c.effective(), &known),
            inheritable: convert(c.inheritable(), &known),
            permitted: convert(c.permitted(), &known),
            ambient: convert(c.ambient(), &known),
        },
        None => CapSets {
            bounding: none(),
            effective: none(),
            inheritable: none(),
            permitted: none(),
            ambient: none(),
        },
    }
}

/// Drops every bounding capability not in the set (needs CAP_SETPCAP, so done before the uid
/// change).
pub fn apply_bounding(sets: &CapSets) -> Result<(), InitError> {
    let current = caps::read(None, CapSet::Bounding)
        .map_err(|e| InitError::caps("reading bounding set", e))?;
    for cap in current.difference(&sets.bounding) {
        caps::drop(None, CapSet::Bounding, *cap)
            .map_err(|e| InitError::caps(format!("dropping {cap} from bounding set"), e))?;
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient (after the uid change).
pub fn apply_sets(sets: &CapSets) -> Result<(), InitError> {
    caps::set(None, CapSet::Effective, &sets.effective)
        .map_err(|e| InitError::caps("setting effective capabilities", e))?;
    caps::set(None, CapSet::Permitted, &sets.permitted)
        .map_err(|e| InitError::caps("setting permitted capabilities", e))?;
    caps::set(None, CapSet::Inheritable, &sets.inheritable)
        .map_err(|e| InitError::caps("setting inheritable capabilities", e))?;
    caps::clear(None, CapSet::Ambient).ok();
    for cap in &sets.ambient {
        // Like runc, an ambient capability that is not permitted+inheritable is skipped.
        if sets.permitted.contains(cap) && sets.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| InitError::caps(format!("raising ambient {cap}"), e))?;
        }
    }
    Ok(())
}
