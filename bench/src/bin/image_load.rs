//! Benchmark: `berth load` vs `docker load` (and `podman load` when installed) of one large
//! `docker save` archive, alternated, medians and ratios printed; and `berth load` vs plain
//! `tar -x` of the same layer tars (the floor: same bytes written, no hashing, no metadata).
//! The archive (several layers of random and compressible files, a few hundred MB) is generated
//! here in `docker save` layout, so Docker is needed only for the comparison.
//! Build first: `cargo build --release -p berth-cli`. The binary is `$BERTH` or
//! `target/release/berth`. Usage: `image_load [ROUNDS] [MB]` (defaults 5 and 300). Run as root.
use anyhow::Context;
use berth_bench::{berth_binary, drop_tree, output, require_built, sha256_of, write_payload};
use berth_testkit::dockerd::Dockerd;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes one layer's files into `dir` and tars them (sorted, numeric owners) to `tar`.
fn make_layer(
    dir: &Path,
    tar: &Path,
    files: usize,
    size: usize,
    random: bool,
    seed: u64,
) -> anyhow::Result<()> {
    write_payload(dir, files, size, random, seed)?;
    output(
        Command::new("tar")
            .arg("--sort=name")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(dir)
            .arg("-cf")
            .arg(tar)
            .arg("."),
    )?;
    Ok(())
}

/// Builds a `docker save` archive with the given layer tars; returns the image ID.
fn make_archive(work: &Path, layers: &[PathBuf], out: &Path) -> anyhow::Result<String> {
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(format!("sha256:{}", sha256_of(l)?));
    }
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "created": "2024-01-01T00:00:00Z",
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config)?;
    let config_path = work.join("config.json");
    std::fs::write(&config_path, &config_bytes)?;
    let id = sha256_of(&config_path)?;
    let stage = work.join("archive");
    std::fs::create_dir_all(&stage)?;
    std::fs::write(stage.join(format!("{id}.json")), &config_bytes)?;
    let mut layer_paths = Vec::new();
    for (l, d) in layers.iter().zip(&diff_ids) {
        let dir = stage.join(d.trim_start_matches("sha256:"));
        std::fs::create_dir_all(&dir)?;
        std::fs::hard_link(l, dir.join("layer.tar"))
            .or_else(|_| std::fs::copy(l, dir.join("layer.tar")).map(|_| ()))?;
        layer_paths.push(format!("{}/layer.tar", d.trim_start_matches("sha256:")));
    }
    // manifest.json last, as it often comes: the loader must not need it first.
    let manifest = serde_json::json!([{"Config": format!("{id}.json"), "RepoTags": ["bench:big"], "Layers": layer_paths}]);
    std::fs::write(stage.join("manifest.json"), serde_json::to_vec(&manifest)?)?;
    let mut names: Vec<String> = layer_paths.clone();
    names.push(format!("{id}.json"));
    names.push("manifest.json".into());
    output(
        Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-cf")
            .arg(out)
            .args(&names),
    )?;
    Ok(format!("sha256:{id}"))
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// Generates the layer tars and the archive; returns (layers, archive, image id, file count).
fn generate(
    w: &Path,
    total_mb: usize,
    base: PathBuf,
) -> anyhow::Result<(Vec<PathBuf>, PathBuf, String, usize)> {
    let mb = 1 << 20;
    // Shares of the payload: big random files, many medium random files, many small text files,
    // big compressible files.
    let plan = [
        (total_mb * 35 / 100 / 5).max(1),   // 5 MB random files
        (total_mb * 25 / 100 * 16).max(1),  // 64 KB random files
        (total_mb * 10 / 100 * 256).max(1), // 4 KB text files
        (total_mb * 30 / 100 / 2).max(1),   // 2 MB text files
    ];
    let shapes = [
        (5 * mb, true),
        (64 * 1024, true),
        (4 * 1024, false),
        (2 * mb, false),
    ];
    let mut layers = vec![base];
    for (i, (count, (size, random))) in plan.iter().zip(shapes).enumerate() {
        let tar = w.join(format!("layer{i}.tar"));
        make_layer(
            &w.join(format!("src{i}")),
            &tar,
            *count,
            size,
            random,
            0x9e37_79b9 + i as u64,
        )?;
        // The sources stay until the end: deleting thousands of files now would slow every
        // file creation on ext4 for minutes (its recently_deleted scan) and skew the timings.
        layers.push(tar);
    }
    let archive = w.join("image.tar");
    let image_id = make_archive(w, &layers, &archive)?;
    let files: usize = plan.iter().sum();
    Ok((layers, archive, image_id, files))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("ROUNDS must be a number")?
        .unwrap_or(5);
    let total_mb: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()
        .context("MB must be a number")?
        .unwrap_or(300);
    let berth = berth_binary();
    require_built(&berth, "berth-cli")?;

    // Where to write: a private tmpfs by default (measures our work, not the disk; ext4 also
    // slows inode allocation for minutes after mass deletion, which skews alternating runs), or
    // BENCH_DIR on disk.
    let (base_dir, tmpfs) = match std::env::var_os("BENCH_DIR") {
        Some(d) => (PathBuf::from(d), None),
        None => {
            let mnt = tempfile::Builder::new()
                .prefix("bench-image-tmpfs-")
                .tempdir_in("/var/tmp")?;
            let st = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=12g", "tmpfs"])
                .arg(mnt.path())
                .status()?;
            anyhow::ensure!(
                st.success(),
                "mounting a tmpfs (run as root, or set BENCH_DIR)"
            );
            (mnt.path().to_path_buf(), Some(mnt))
        }
    };
    let on_tmpfs = tmpfs.is_some();
    println!(
        "writing to {} ({})",
        base_dir.display(),
        if on_tmpfs { "tmpfs" } else { "BENCH_DIR" }
    );
    // dockerd (started later) puts its data root under TMPDIR: the same filesystem as ours.
    std::env::set_var("TMPDIR", &base_dir);
    let work = tempfile::Builder::new()
        .prefix("bench-image-")
        .tempdir_in(&base_dir)?;
    let w = work.path();
    println!("generating a ~{total_mb} MB image in {}", w.display());
    let base = w.join("base.tar");
    berth_testkit::busybox_rootfs_tar(&base)?;
    let (layers, archive, image_id, files) = generate(w, total_mb, base)?;
    let archive_bytes = std::fs::metadata(&archive)?.len();
    println!(
        "archive: {} layers, {:.0} MB, {} files; image {}",
        layers.len(),
        archive_bytes as f64 / 1e6,
        files,
        &image_id[..19]
    );

    let leftovers = std::cell::RefCell::new(Vec::<PathBuf>::new());
    // CPU time (user + system) of each timed run's processes: unlike wall time, it hardly
    // depends on how busy the machine is.
    let berth_cpu = std::cell::RefCell::new(Vec::<Duration>::new());
    let tar_cpu = std::cell::RefCell::new(Vec::<Duration>::new());
    let mut n = 0;
    let mut berth_load = || -> anyhow::Result<Duration> {
        n += 1;
        let root = w.join(format!("berth-root-{n}"));
        sync();
        let cpu = children_cpu();
        let start = Instant::now();
        output(
            Command::new(&berth)
                .arg("--root")
                .arg(&root)
                .args(["load", "-q", "-i"])
                .arg(&archive),
        )?;
        let took = start.elapsed();
        berth_cpu
            .borrow_mut()
            .push(children_cpu().saturating_sub(cpu));
        let id = output(Command::new(&berth).arg("--root").arg(&root).args([
            "image",
            "inspect",
            "-f",
            "{{.Id}}",
            "bench:big",
        ]))?;
        anyhow::ensure!(
            id.trim() == image_id,
            "berth loaded {id} instead of {image_id}"
        );
        // Trees are removed only at the end: freshly freed ext4 inodes make the next creations
        // slow (ext4's recently_deleted scan), which would punish whoever runs next.
        if on_tmpfs {
            drop_tree(&root);
        } else {
            leftovers.borrow_mut().push(root);
        }
        Ok(took)
    };
    let mut m = 0;
    let mut tar_x = || -> anyhow::Result<Duration> {
        m += 1;
        let dest = w.join(format!("tar-x-{m}"));
        sync();
        let cpu = children_cpu();
        let start = Instant::now();
        for (i, l) in layers.iter().enumerate() {
            let d = dest.join(i.to_string());
            std::fs::create_dir_all(&d)?;
            output(Command::new("tar").arg("-xf").arg(l).arg("-C").arg(&d))?;
        }
        let took = start.elapsed();
        tar_cpu
            .borrow_mut()
            .push(children_cpu().saturating_sub(cpu));
        if on_tmpfs {
            drop_tree(&dest);
        } else {
            leftovers.borrow_mut().push(dest);
        }
        Ok(took)
    };
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", loadavg().trim());
    let mb_total = archive_bytes as f64 / 1e6;
    let (ours, floor) =
        berth_bench::compare("berth load vs tar -x", rounds, &mut berth_load, &mut tar_x)?;
    println!(
        "throughput: berth load {:.0} MB/s, tar -x {:.0} MB/s; ratio berth/tar-x {:.3} (goal <= 1.1)",
        mb_total / ours.as_secs_f64(),
        mb_total / floor.as_secs_f64(),
        ours.as_secs_f64() / floor.as_secs_f64()
    );
    let median_cpu = |runs: &std::cell::RefCell<Vec<Duration>>| {
        let mut v = runs.borrow().clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let (our_cpu, tar_cpu_median) = (median_cpu(&berth_cpu), median_cpu(&tar_cpu));
    println!(
        "cpu time (user+sys, median): berth load {:.0} ms, tar -x {:.0} ms; ratio {:.3}",
        our_cpu.as_secs_f64() * 1e3,
        tar_cpu_median.as_secs_f64() * 1e3,
        our_cpu.as_secs_f64() / tar_cpu_median.as_secs_f64()
    );

    match Dockerd::start()? {
        Some(docker) => {
            let mut docker_load = || -> anyhow::Result<Duration> {
                sync();
                let start = Instant::now();
                output(docker.docker().args(["load", "-q", "-i"]).arg(&archive))?;
                let took = start.elapsed();
                let id = output(docker.docker().args([
                    "image",
                    "inspect",
                    "-f",
                    "{{.Id}}",
                    "bench:big",
                ]))?;
                anyhow::ensure!(
                    id.trim() == image_id,
                    "docker loaded {id} instead of {image_id}"
                );
                output(
                    docker
                        .docker()
                        .args(["rmi", "bench:big"])
                        .stdout(Stdio::null()),
                )?;
                Ok(took)
            };
            let (ours, theirs) = berth_bench::compare(
                "berth load vs docker load",
                rounds,
                &mut berth_load,
                &mut docker_load,
            )?;
            println!(
                "throughput: berth load {:.0} MB/s, docker load {:.0} MB/s; ratio berth/docker {:.3} (goal < 1)",
                mb_total / ours.as_secs_f64(),
                mb_total / theirs.as_secs_f64(),
                ours.as_secs_f64() / theirs.as_secs_f64()
            );
        }
        None => println!("dockerd not installed: skipping the docker load comparison"),
    }
    println!("load average after: {}", loadavg().trim());
    if berth_testkit::have("podman") {
        let storage = w.join("podman");
        let mut podman_load = || -> anyhow::Result<Duration> {
            sync();
            let start = Instant::now();
            output(
                Command::new("podman")
                    .arg("--root")
                    .arg(&storage)
                    .args(["load", "-q", "-i"])
                    .arg(&archive),
            )?;
            let took = start.elapsed();
            output(Command::new("podman").arg("--root").arg(&storage).args([
                "rmi",
                "-f",
                "bench:big",
            ]))?;
            Ok(took)
        };
        berth_bench::compare(
            "berth load vs podman load",
            rounds,
            &mut berth_load,
            &mut podman_load,
        )?;
    } else {
        println!("podman not installed: skipping the podman load comparison");
    }
    for p in leftovers.into_inner() {
        drop_tree(&p);
    }
    drop(work);
    if let Some(mnt) = tmpfs {
        berth_testkit::unmount_below(mnt.path());
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// User plus system CPU time of every waited-for child so far.
fn children_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::new(
                    tv.tv_sec().max(0) as u64,
                    (tv.tv_usec().max(0) as u32) * 1000,
                )
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}
