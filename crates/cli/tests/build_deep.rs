//! Images far deeper than Docker's 125 layers, through the built binary: a 300-layer image made
//! by `berth build` runs and reads a file from its first layer, rebuilds entirely from the cache,
//! survives `save` + `load` into a fresh root with the same image ID; building on towards layer
//! 501 stops at the step that would pass the kernel's 500-layer overlay limit, naming it and
//! the image, with nothing mounted or left behind; the 500-layer image itself runs, and a
//! commit on it is refused the same way.
mod cli_common;
use berth_testkit::TempRoot;
use cli_common::{berth, run_ok};
use std::path::Path;

/// `FROM <base>` then `runs` RUN steps, each writing one file (one layer each).
fn write_dockerfile(dir: &Path, base: &str, first: usize, runs: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = format!("FROM {base}\n");
    for i in first..first + runs {
        text.push_str(&format!("RUN echo {i} > /f{i}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), text).unwrap();
}

fn image_id(root: &Path, reference: &str) -> String {
    run_ok(berth(root).args(["image", "inspect", "--format", "{{.Id}}", reference]))
        .trim()
        .to_string()
}

fn layer_count(root: &Path, reference: &str) -> usize {
    run_ok(berth(root).args([
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        reference,
    ]))
    .matches("sha256:")
    .count()
}

#[test]
fn three_hundred_layers_build_run_rebuild_save_load_and_stop_at_the_kernel_limit() {
    let root = TempRoot::new("berth-deep-").unwrap();
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("bb.tar");
    berth_testkit::busybox_rootfs_tar(&tar).unwrap();
    run_ok(berth(root.path()).arg("import").arg(&tar).arg("bb"));

    // 1 imported layer + 299 RUN layers = 300.
    let ctx = work.path().join("deep");
    write_dockerfile(&ctx, "bb", 1, 299);
    run_ok(
        berth(root.path())
            .args(["build", "-q", "-t", "deep"])
            .arg(&ctx),
    );
    assert_eq!(layer_count(root.path(), "deep"), 300);
    let id = image_id(root.path(), "deep");

    // The first layer (busybox's /etc/passwd), the first RUN layer and the top one.
    let out = run_ok(berth(root.path()).args([
        "run",
        "--rm",
        "deep",
        "cat",
        "/etc/passwd",
        "/f1",
        "/f299",
    ]));
    assert!(out.starts_with("root:x:0:0:"), "{out}");
    assert!(out.ends_with("1\n299\n"), "{out}");

    // A cached rebuild: every step from the cache, same image.
    let again = run_ok(berth(root.path()).args(["build", "-t", "deep"]).arg(&ctx));
    assert_eq!(again.matches("Using cache").count(), 299, "{again}");
    assert_eq!(image_id(root.path(), "deep"), id);

    // save + load into a fresh root: the same image ID, and it runs there too.
    let archive = work.path().join("deep.tar");
    run_ok(
        berth(root.path())
            .args(["save", "-o"])
            .arg(&archive)
            .arg("deep"),
    );
    let fresh = TempRoot::new("berth-deep-load-").unwrap();
    run_ok(berth(fresh.path()).args(["load", "-q", "-i"]).arg(&archive));
    assert_eq!(image_id(fresh.path(), "deep"), id);
    let out = run_ok(berth(fresh.path()).args(["run", "--rm", "deep", "cat", "/f150"]));
    assert_eq!(out, "150\n");
    drop(fresh);

    // On to 501 layers: layers 301..=500 build, then the step that would make layer 501 fails
    // before running, naming the limit and the image it would have built on.
    let ctx = work.path().join("deeper");
    write_dockerfile(&ctx, "deep", 300, 201);
    let out = berth(root.path())
        .args(["build", "-t", "deeper"])
        .arg(&ctx)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("Step 202/202 : RUN echo 500"), "{stdout}");
    let last_step = &stdout[stdout.find("Step 202/202").unwrap()..];
    assert!(
        !last_step.contains("Running in"),
        "step 202 ran: {last_step}"
    );
    assert!(stderr.contains("limit of 500 layers"), "{stderr}");
    let last_good = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .rfind(|l| l.len() == 12)
        .unwrap()
        .to_string();
    assert!(stderr.contains(&last_good), "names the image: {stderr}");
    assert_eq!(layer_count(root.path(), &last_good), 500);
    // The 500-layer image runs (its init layer folded into its top layer keeps the stack at
    // 500) and sees its first and last layers; committing on it is refused before anything
    // is written, naming the limit.
    let out = run_ok(berth(root.path()).args([
        "run",
        "--name",
        "at-limit",
        &last_good,
        "cat",
        "/etc/passwd",
        "/f1",
        "/f499",
    ]));
    assert!(
        out.starts_with("root:x:0:0:") && out.ends_with("1\n499\n"),
        "{out}"
    );
    let out = berth(root.path())
        .args(["commit", "at-limit", "past-limit"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("limit of 500 layers"), "{stderr}");
    run_ok(berth(root.path()).args(["rm", "at-limit"]));
    // Nothing half-made: no step layer, no mount below the root.
    let mounts = root.path().join("image/overlay2/layerdb/mounts");
    assert_eq!(
        std::fs::read_dir(&mounts).map(|d| d.count()).unwrap_or(0),
        0
    );
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(&*root.path().to_string_lossy()));
}
