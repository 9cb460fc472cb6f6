//! Builds the two small programs `berth` embeds, each as a static binary (std only) with the same
//! rustc: the built-in `hello` image's program (src/hello/main.rs), so `berth run hello` needs no
//! network and no host package, and `docker-init` (src/init/main.rs) for `berth run --init`.
//! When a static build is impossible here, an empty file is embedded and `berth` says the program
//! is unavailable.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    build_static("hello", "src/hello/main.rs", &out_dir.join("hello"));
    build_static(
        "docker_init",
        "src/init/main.rs",
        &out_dir.join("docker-init"),
    );
}

fn build_static(crate_name: &str, src: &str, out: &Path) {
    println!("cargo:rerun-if-changed={src}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args(["--target", &target, "--crate-name", crate_name, "-o"])
        .arg(out)
        .arg(src)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            println!("cargo:warning=could not build the static {crate_name} program ({other:?}); it will be unavailable");
            let _ = std::fs::write(out, b"");
        }
    }
}
