//! Housekeeping verbs: `container prune`, `system df`, `system prune`, `info`, the management
//! forms (`container rm`, `container diff`, …) and `completion`.
mod container_common;
use container_common::*;

#[test]
fn prune_df_info_and_management_forms() {
    let env = Env::new("housekeeping");
    env.ok(&["run", "--name", "done", "-v", "/anon", "busybox", "true"]);
    let done = env.ok(&["inspect", "-f", "{{.Id}}", "done"]);
    let live = env.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "100"]);
    env.ok(&["container", "create", "--name", "made", "busybox", "true"]);
    // The volume's mount point was made in the container's layer, as with Docker.
    assert_eq!(env.ok(&["container", "diff", "done"]), "A /anon");

    // ps filters and --size.
    let q = |filter: &str| env.ok(&["ps", "-aq", "--no-trunc", "-f", filter]);
    let made = env.ok(&["inspect", "-f", "{{.Id}}", "made"]);
    assert_eq!(q("since=done"), format!("{made}\n{live}"));
    assert_eq!(q("before=live"), done);
    assert_eq!(q("volume=/anon"), done);
    assert_eq!(q("health=none").lines().count(), 3);
    let sized = env.ok(&["ps", "-s"]);
    assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");
    assert!(sized.contains("(virtual "), "{sized}");
    // images filters.
    env.ok(&["tag", "busybox", "second:latest"]);
    assert_eq!(env.ok(&["images", "-q", "-f", "label=nope"]), "");
    assert_eq!(
        env.berth(&["images", "-f", "colour=red"]).status.code(),
        Some(1)
    );

    let df = env.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    assert!(
        lines[2].starts_with("Containers") && lines[2].contains(" 3 "),
        "{df}"
    );
    assert!(lines[3].starts_with("Local Volumes"), "{df}");

    let info = env.ok(&["info"]);
    for want in [
        " Containers: 3",
        "  Running: 1",
        "  Stopped: 2",
        " Storage Driver: overlay2",
        " Cgroup Driver: cgroupfs",
    ] {
        assert!(info.lines().any(|l| l == want), "{want:?} in {info}");
    }
    assert_eq!(env.ok(&["info", "--format", "{{.ContainersRunning}}"]), "1");

    let pruned = env.ok(&["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    assert!(
        pruned.contains(&done) && !pruned.contains(&live),
        "{pruned}"
    );
    assert!(
        pruned.ends_with("Total reclaimed space: 0B") || pruned.contains("Total reclaimed space: ")
    );
    assert_eq!(env.ok(&["container", "ls", "-aq", "--no-trunc"]), live);

    // system prune --volumes takes the now unused anonymous volume.
    let out = env.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Deleted Volumes:"), "{out}");
    assert_eq!(env.ok(&["volume", "ls", "-q"]), "");

    env.ok(&["container", "stop", "-t", "1", "live"]);
    env.ok(&["container", "rm", "live"]);
    assert!(env.record_ids().is_empty());

    for shell in ["bash", "zsh", "fish"] {
        let script = env.ok(&["completion", shell]);
        assert!(
            script.contains("volume") && script.contains("prune"),
            "{shell}"
        );
    }
    assert_eq!(env.berth(&["completion", "tcsh"]).status.code(), Some(125));
}

/// A container record that cannot be read is named on stderr by every listing verb, the rest
/// still list, and nothing that depends on knowing every container (prune) deletes around it.
#[test]
fn unreadable_records_are_reported_not_dropped() {
    let env = Env::new("unreadable");
    env.ok(&["create", "--name", "fine", "busybox", "true"]);
    env.ok(&[
        "create", "--name", "broken", "-v", "/anon", "busybox", "true",
    ]);
    let broken = env.ok(&["inspect", "-f", "{{.Id}}", "broken"]);
    let fine = env.ok(&["inspect", "-f", "{{.Id}}", "fine"]);
    std::fs::write(
        env.path()
            .join("containers")
            .join(&broken)
            .join("config.v2.json"),
        b"{half a record",
    )
    .unwrap();
    let warned = |args: &[&str]| {
        let out = env.berth(args);
        let err = stderr(&out);
        assert!(
            err.contains(&format!("WARNING: container {broken}: unreadable record"))
                && err.contains("config.v2.json"),
            "{args:?}: {err}"
        );
        (out.status.code(), stdout(&out))
    };
    let (code, ps) = warned(&["ps", "-aq", "--no-trunc"]);
    assert_eq!((code, ps.trim()), (Some(0), fine.as_str()));
    let (code, _) = warned(&["stats", "--no-stream", "-a"]);
    assert_eq!(code, Some(0));
    warned(&["ns"]);
    let (_, info) = warned(&["info"]);
    assert!(info.contains(" Containers: 2"), "{info}");
    warned(&["system", "df"]);
    let (code, pruned) = warned(&["container", "prune", "-f"]);
    assert_eq!(code, Some(0));
    assert!(
        pruned.contains(&fine) && !pruned.contains(&broken),
        "{pruned}"
    );
    assert!(env.path().join("containers").join(&broken).exists());
    // Whether the anonymous volume is in use cannot be known: prune refuses, naming the record.
    let out = env.berth(&["volume", "prune", "-f"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains(&broken), "{}", stderr(&out));
    assert_eq!(env.ok(&["volume", "ls", "-q"]).lines().count(), 1);
}
