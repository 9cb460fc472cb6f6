use super::*;
use std::ffi::CString;

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

fn target(caps: Vec<String>) -> DockerTarget {
    DockerTarget {
        capabilities: caps,
        go_arch: "amd64".into(),
        kernel: (6, 1),
    }
}

fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    p.syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

#[test]
fn default_profile_for_default_caps_matches_docker() {
    let default_caps: Vec<String> = DOCKER_DEFAULT_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    let p = docker_default().to_oci(&target(default_caps));
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(1));
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
    );
    let allowed = allowed_syscalls(&p);
    for ok in ["read", "mkdir", "chroot", "arch_prctl", "ptrace", "execve"] {
        assert!(allowed.contains_key(ok), "{ok} should be allowed");
    }
    for denied in [
        "mount",
        "unshare",
        "setns",
        "reboot",
        "open_by_handle_at",
        "cacheflush",
    ] {
        assert!(!allowed.contains_key(denied), "{denied} should be denied");
    }
    // clone only without namespace flags; clone3 answers ENOSYS.
    let clone = rules_for(&p, "clone");
    assert_eq!(clone.len(), 1);
    let a = clone[0].args().as_ref().unwrap()[0];
    assert_eq!((a.index(), a.value()), (0, 0x7E02_0000));
    assert_eq!(a.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    let clone3 = rules_for(&p, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(38));
    assert_eq!(rules_for(&p, "personality").len(), 5);
}

#[test]
fn cap_sys_admin_unlocks_mount_and_plain_clone() {
    let p = docker_default().to_oci(&target(caps(&["CAP_SYS_ADMIN"])));
    let allowed = allowed_syscalls(&p);
    for ok in ["mount", "unshare", "setns", "clone3", "umount2"] {
        assert!(allowed.contains_key(ok), "{ok}");
    }
    assert!(!allowed.contains_key("chroot"), "no CAP_SYS_CHROOT given");
    let clone = rules_for(&p, "clone");
    assert_eq!(clone.len(), 1);
    assert!(clone[0].args().is_none());
    assert!(rules_for(&p, "clone3")
        .iter()
        .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
}

#[test]
fn includes_and_excludes_on_arch_and_kernel() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}],
        "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.2"}},
            {"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.10"}},
            {"names": ["c"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["d"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"name": "e", "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": null},
            {"names": ["f"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "6.0"}}
        ]}"#;
    let p = DockerProfile::from_json(json)
        .unwrap()
        .to_oci(&target(vec![]));
    let names: Vec<&str> = p
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|s| s.names().iter().map(String::as_str))
        .collect();
    assert_eq!(names, vec!["b", "e"]);
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64][..])
    );
    assert!(DockerProfile::from_json("{").is_err());
}

#[test]
fn kernel_versions_parse() {
    assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
    assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
    assert_eq!(parse_kernel_version("x"), None);
}

#[test]
fn default_profile_compiles_for_this_host() {
    let prog = berth_runtime::seccomp::compile(&docker_default_profile()).unwrap();
    assert!(prog.len() > 100 && prog.len() <= 4096, "{}", prog.len());
    assert_eq!(prog.flags(), 0);
    // Only names this libseccomp cannot resolve may be left out.
    assert!(
        prog.skipped_syscalls().len() < 10,
        "{:?}",
        prog.skipped_syscalls()
    );
}

#[test]
fn default_profile_compiles_for_every_capability() {
    let all: Vec<String> = crate::spec::ALL_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(all.iter().any(|c| c == "CAP_SYS_ADMIN"));
    let profile = docker_profile_for_capabilities(&all);
    let allowed = allowed_syscalls(&profile);
    assert!(allowed.contains_key("ptrace") && allowed.contains_key("reboot"));
    berth_runtime::seccomp::compile(&profile).unwrap();
}

fn in_filtered_child(prog: &berth_runtime::seccomp::Program, probe: impl Fn() -> i32) -> i32 {
    berth_testkit::forked::in_filtered_child(|| prog.load().is_ok(), probe)
}

use berth_testkit::forked::errno;

#[test]
fn docker_default_profile_blocks_namespaces_but_not_files() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("allowed");
    let path = CString::new(target.to_str().unwrap()).unwrap();
    let prog = berth_runtime::seccomp::compile(&docker_default_profile()).unwrap();
    let code = in_filtered_child(&prog, || {
        // SAFETY: raw syscalls with valid (or deliberately null) arguments.
        unsafe {
            if libc::mkdir(path.as_ptr(), 0o755) != 0 {
                return 10;
            }
            if libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUTS) == 0 || errno() != libc::EPERM {
                return 11;
            }
            if libc::syscall(libc::SYS_clone3, std::ptr::null_mut::<libc::c_void>(), 0) == 0
                || errno() != libc::ENOSYS
            {
                return 12;
            }
            if libc::getpid() <= 0 {
                return 13;
            }
        }
        0
    });
    assert_eq!(code, 0);
    assert!(target.is_dir());
}
