//! Benchmark: pulling and pushing a ~300 MB, 5-layer image through Debian's `docker-registry`
//! on 127.0.0.1 (started here, storage in a temp dir). Per round, alternating:
//! - pull: `berth pull` into an empty root vs `docker pull` (private dockerd, image removed
//!   between rounds) vs `skopeo copy docker://… oci:DIR` vs the floor: `curl` of each blob piped
//!   through `gzip -d | tar -x` (same bytes fetched and written, nothing verified or recorded);
//! - push: `berth push` to a new repository (distribution metadata dropped first, so every layer
//!   is compressed and uploaded) vs `skopeo copy docker-archive:… docker://…` to a new repository.
//!
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `registry_pull [ROUNDS] [MB] [--berth-only]` (defaults 3 and
//! 300; `--berth-only` times `berth pull` alone). With `$BERTH_BASELINE` set to another build of
//! `berth` (say, the previous commit's), its pull is timed too, alternating with the current
//! one, as a before/after in one run. Run as root.
use anyhow::Context;
use berth_bench::{berth_binary, drop_tree, median, ms, output, sha256_of, timed, write_payload};
use berth_testkit::dockerd::Dockerd;
use berth_testkit::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One layer directory of `files` files of `size` bytes, random or text.
fn make_layer(
    dir: &Path,
    files: usize,
    size: usize,
    random: bool,
    seed: u64,
) -> anyhow::Result<()> {
    write_payload(dir, files, size, random, seed)?;
    Ok(())
}

/// A `docker save` archive of the five layer directories; returns its path.
fn make_archive(w: &Path, dirs: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let stage = w.join("archive");
    std::fs::create_dir_all(&stage)?;
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let tar = w.join(format!("layer{i}.tar"));
        output(
            Command::new("tar")
                .args(["--sort=name", "--numeric-owner", "-C"])
                .arg(d)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        )?;
        let hex = sha256_of(&tar)?;
        std::fs::create_dir_all(stage.join(&hex))?;
        std::fs::rename(&tar, stage.join(&hex).join("layer.tar"))?;
        diff_ids.push(format!("sha256:{hex}"));
        paths.push(format!("{hex}/layer.tar"));
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "created": "2024-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": (0..dirs.len()).map(|i| serde_json::json!({"created_by": format!("layer {i}")})).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&config)?;
    std::fs::write(stage.join("config.json"), &bytes)?;
    let manifest =
        serde_json::json!([{"Config": "config.json", "RepoTags": ["bench:1"], "Layers": paths}]);
    std::fs::write(stage.join("manifest.json"), serde_json::to_vec(&manifest)?)?;
    let archive = w.join("image.tar");
    output(
        Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-cf")
            .arg(&archive)
            .args(&paths)
            .args(["config.json", "manifest.json"]),
    )?;
    std::fs::remove_dir_all(&stage)?;
    Ok(archive)
}

fn main() -> anyhow::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let berth_only = all.iter().any(|a| a == "--berth-only");
    let baseline = std::env::var_os("BERTH_BASELINE").map(PathBuf::from);
    let mut args = all.into_iter().filter(|a| !a.starts_with("--"));
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let total_mb: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let berth = berth_binary();
    anyhow::ensure!(
        berth.exists(),
        "{} missing: build it first",
        berth.display()
    );
    let reg = Registry::start()?.context("docker-registry is not installed")?;
    let host = reg.host();
    let work = tempfile::Builder::new()
        .prefix("berth-bench-reg-")
        .tempdir()?;
    let w = work.path();
    let mb = 1 << 20;
    // Five layers: big random files, medium random files, small text files, big text files,
    // and a mixed one.
    let shapes = [
        (total_mb * 30 / 100 / 5, 5 * mb, true),
        (total_mb * 20 / 100 * 16, 64 * 1024, true),
        (total_mb * 10 / 100 * 256, 4 * 1024, false),
        (total_mb * 25 / 100 / 2, 2 * mb, false),
        (total_mb * 15 / 100, mb, true),
    ];
    let mut dirs = Vec::new();
    for (i, (count, size, random)) in shapes.iter().enumerate() {
        let d = w.join(format!("src{i}"));
        make_layer(&d, (*count).max(1), *size, *random, 0x51ed_2701 + i as u64)?;
        dirs.push(d);
    }
    let archive = make_archive(w, &dirs)?;
    let cfg = w.join("config");
    std::fs::create_dir_all(cfg.join("docker"))?;
    let cmd_of = |binary: &Path, root: &Path| {
        let mut c = Command::new(binary);
        c.arg("--root")
            .arg(root)
            .env("BERTH_CONFIG_DIR", &cfg)
            .env("DOCKER_CONFIG", cfg.join("docker"));
        c
    };
    let berth_cmd = |root: &Path| cmd_of(&berth, root);
    let seed_root = w.join("seed-root");
    output(berth_cmd(&seed_root).arg("load").arg("-i").arg(&archive))?;
    let remote = format!("{host}/bench:1");
    output(berth_cmd(&seed_root).args(["tag", "bench:1", &remote]))?;
    output(berth_cmd(&seed_root).args(["push", &remote]))?;
    let manifest: serde_json::Value = serde_json::from_str(&output(
        Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{remote}")),
    )?)?;
    let blobs: Vec<String> = manifest["layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["digest"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let compressed: u64 = manifest["layers"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["size"].as_u64()).sum())
        .unwrap_or(0);
    println!(
        "image: {} layers, {:.0} MB compressed, {total_mb} MB of files; load average {}",
        blobs.len(),
        compressed as f64 / 1e6,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let dockerd = if berth_only { None } else { Dockerd::start()? };
    let have_skopeo = !berth_only && berth_testkit::have("skopeo");
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };

    let (mut b_pull, mut d_pull, mut s_pull, mut floor) = (vec![], vec![], vec![], vec![]);
    let (mut b_push, mut s_push, mut base_pull) = (vec![], vec![], vec![]);
    for round in 0..=rounds {
        if let Some(base) = &baseline {
            let root = w.join(format!("base-root-{round}"));
            let t = timed(cmd_of(base, &root).args(["pull", "-q", &remote]))?;
            drop_tree(&root);
            if round > 0 {
                base_pull.push(t);
            }
        }
        let root = w.join(format!("pull-root-{round}"));
        let t = timed(berth_cmd(&root).args(["pull", "-q", &remote]))?;
        drop_tree(&root);
        if berth_only {
            if round > 0 {
                b_pull.push(t);
            }
            println!(
                "round {round}: berth pull {:.0} ms (load {})",
                ms(t),
                load()
            );
            continue;
        }
        if let Some(d) = &dockerd {
            let t = timed(d.docker().args(["pull", "-q", &remote]))?;
            let _ = output(d.docker().args(["rmi", "-f", &remote]));
            if round > 0 {
                d_pull.push(t);
            }
        }
        if have_skopeo {
            let dir = w.join(format!("oci-{round}"));
            let t = timed(
                Command::new("skopeo")
                    .args(["copy", "--src-tls-verify=false"])
                    .arg(format!("docker://{remote}"))
                    .arg(format!("oci:{}", dir.display())),
            )?;
            drop_tree(&dir);
            if round > 0 {
                s_pull.push(t);
            }
        }
        let dest = w.join(format!("floor-{round}"));
        std::fs::create_dir_all(&dest)?;
        let start = Instant::now();
        let mut children = Vec::new();
        for b in &blobs {
            let sub = dest.join(b.trim_start_matches("sha256:"));
            std::fs::create_dir_all(&sub)?;
            children.push(
                Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "curl -sf http://{host}/v2/bench/blobs/{b} | gzip -dc | tar -x -C {}",
                        sub.display()
                    ))
                    .spawn()?,
            );
        }
        for mut c in children {
            anyhow::ensure!(c.wait()?.success(), "curl | tar failed");
        }
        let f = start.elapsed();
        drop_tree(&dest);

        // Push: a new repository each round, nothing known about the blobs.
        let _ = std::fs::remove_dir_all(seed_root.join("image/overlay2/distribution"));
        let target = format!("{host}/berth-push-{round}:1");
        output(berth_cmd(&seed_root).args(["tag", "bench:1", &target]))?;
        let tb = timed(berth_cmd(&seed_root).args(["push", &target]))?;
        let ts = if have_skopeo {
            Some(timed(
                Command::new("skopeo")
                    .args(["copy", "--dest-tls-verify=false"])
                    .arg(format!("docker-archive:{}", archive.display()))
                    .arg(format!("docker://{host}/skopeo-push-{round}:1")),
            )?)
        } else {
            None
        };
        if round > 0 {
            b_pull.push(t);
            floor.push(f);
            b_push.push(tb);
            if let Some(ts) = ts {
                s_push.push(ts);
            }
        }
    }
    let bp = median(&mut b_pull);
    println!("pull: berth {:.0} ms", ms(bp));
    if !base_pull.is_empty() {
        let b0 = median(&mut base_pull);
        println!(
            "pull: baseline berth {:.0} ms, ratio now/baseline {:.3}",
            ms(b0),
            ms(bp) / ms(b0)
        );
    }
    println!("load average at the end: {}", load());
    if berth_only {
        return Ok(());
    }
    if !d_pull.is_empty() {
        let dp = median(&mut d_pull);
        println!(
            "pull: docker {:.0} ms, ratio berth/docker {:.3} (goal <= 0.5)",
            ms(dp),
            ms(bp) / ms(dp)
        );
    }
    if !s_pull.is_empty() {
        let sp = median(&mut s_pull);
        println!(
            "pull: skopeo copy to oci dir {:.0} ms, ratio berth/skopeo {:.3}",
            ms(sp),
            ms(bp) / ms(sp)
        );
    }
    let fl = median(&mut floor);
    println!(
        "pull: curl | gzip -d | tar -x floor {:.0} ms, ratio berth/floor {:.3} (goal <= 1.5)",
        ms(fl),
        ms(bp) / ms(fl)
    );
    let bpu = median(&mut b_push);
    println!("push: berth {:.0} ms", ms(bpu));
    if !s_push.is_empty() {
        let spu = median(&mut s_push);
        println!(
            "push: skopeo copy from docker-archive {:.0} ms, ratio berth/skopeo {:.3}",
            ms(spu),
            ms(bpu) / ms(spu)
        );
    }
    drop(dockerd);
    Ok(())
}
