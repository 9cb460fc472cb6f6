//! Builds the built-in `hello` image's program (src/hello/main.rs, std only) as a static binary
//! with the same rustc, so `berth` can embed it and run `berth run hello` with no network and
//! no host package. When the static build is impossible here, an empty file is embedded and
//! `berth` says the image is unavailable.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "src/hello/main.rs";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let out = out_dir.join("hello");
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
        .args(["--target", &target, "--crate-name", "hello", "-o"])
        .arg(&out)
        .arg(src)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            println!("cargo:warning=could not build the static hello program ({other:?}); the hello image will be unavailable");
            let _ = std::fs::write(&out, b"");
        }
    }
}
