//! Measures what a container start pays for cgroups on this host: detect, open, create, apply
//! Docker-like limits, join, destroy. Run as root: `cargo run --release -p berth-cgroups
//! --example setup_cost`.

use berth_cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::*;
use std::time::{Duration, Instant};

fn main() -> Result<(), std::boxed::Box<dyn std::error::Error>> {
    let resources = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(256i64 << 20).build()?)
        .pids(LinuxPidsBuilder::default().limit(512i64).build()?)
        .cpu(LinuxCpuBuilder::default().shares(1024u64).build()?)
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?])
        .build()?;
    let rounds = 50u32;
    let (mut detect, mut create, mut apply, mut join, mut destroy) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for i in 0..rounds {
        let t = Instant::now();
        let h = Hierarchy::detect()?;
        let cg = Cgroup::open(&h, &format!("/berth-bench-{}-{i}", std::process::id()))?;
        detect += t.elapsed();
        let t = Instant::now();
        cg.create()?;
        create += t.elapsed();
        let t = Instant::now();
        cg.apply(&resources)?;
        apply += t.elapsed();
        let mut child = std::process::Command::new("true").spawn()?;
        let t = Instant::now();
        let _ = cg.add_pid(child.id() as i32);
        join += t.elapsed();
        child.wait()?;
        let t = Instant::now();
        cg.destroy()?;
        destroy += t.elapsed();
    }
    println!(
        "per container: detect+open {:?}, create {:?}, apply {:?}, add_pid {:?}, destroy {:?}",
        detect / rounds,
        create / rounds,
        apply / rounds,
        join / rounds,
        destroy / rounds
    );
    Ok(())
}
