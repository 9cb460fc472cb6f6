use super::*;
use oci_spec::runtime::{LinuxSeccompBuilder, LinuxSyscallBuilder};
use std::ffi::CString;

/// Syscalls newer than the profile's highest named one get ENOSYS; older unlisted ones
/// keep the default errno. Checked in a forked child that loads the real program.
#[cfg(target_arch = "x86_64")]
#[test]
fn unknown_newer_syscalls_get_enosys_under_an_errno_default() {
    let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["exit_group", "exit", "getppid"], "action": "SCMP_ACT_ALLOW"}]
    }))
    .unwrap();
    let program = compile(&profile).unwrap();
    // SAFETY: the child only makes raw syscalls (prctl, seccomp, syscall) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls in the forked child, then _exit.
        unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if program.load().is_err() {
                libc::_exit(100);
            }
            let errno = || *libc::__errno_location();
            let mut code = 0;
            if libc::syscall(libc::SYS_getppid) > 0 {
                code |= 1;
            }
            if libc::syscall(libc::SYS_getpid) == -1 && errno() == libc::EPERM {
                code |= 2;
            }
            if libc::syscall(libc::SYS_memfd_create, c"x".as_ptr(), 0) == -1
                && errno() == libc::ENOSYS
            {
                code |= 4;
            }
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child died: {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 7, "bits: allowed, EPERM, ENOSYS");
}
fn errno_profile(names: &[&str], errno: u32) -> LinuxSeccomp {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64])
        .flags(vec![LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow])
        .syscalls(vec![LinuxSyscallBuilder::default()
            .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(errno)
            .build()
            .unwrap()])
        .build()
        .unwrap()
}

#[test]
fn cached_compile_matches_and_rejects_tampered_files() {
    let dir = tempfile::tempdir().unwrap();
    let profile = errno_profile(&["mkdir", "mkdirat", "unshare", "setns"], 1);
    let fresh = compile(&profile).unwrap();
    let first = compile_cached(&profile, dir.path()).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let second = compile_cached(&profile, dir.path()).unwrap();
    let same = |a: &Program, b: &Program| {
        a.len() == b.len()
            && a.flags == b.flags
            && a.filter
                .iter()
                .zip(&b.filter)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
    };
    assert!(same(&fresh, &first) && same(&fresh, &second));
    // A truncated file is ignored and rewritten.
    let path = files[0].path();
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert!(same(&fresh, &compile_cached(&profile, dir.path()).unwrap()));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    // Another profile gets its own entry.
    compile_cached(&errno_profile(&["mkdir"], 1), dir.path()).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn unknown_syscalls_are_skipped_and_reported() {
    let prog = compile(&errno_profile(&["mkdir", "no_such_syscall_xyz"], 1)).unwrap();
    assert_eq!(prog.skipped_syscalls(), ["no_such_syscall_xyz".to_string()]);
    assert_eq!(prog.flags(), SECCOMP_FILTER_FLAG_SPEC_ALLOW);
}

#[test]
fn notify_needs_a_listener_and_is_never_the_default() {
    let p = LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActNotify)
        .build()
        .unwrap();
    assert!(matches!(compile(&p), Err(SeccompError::Unsupported(_))));
    let mut p: LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .unwrap();
    assert!(matches!(compile(&p), Err(SeccompError::Unsupported(_))));
    p.set_listener_path(Some("/run/agent.sock".into()));
    assert!(compile(&p).unwrap().notifies());
}

fn in_filtered_child(prog: &Program, probe: impl Fn() -> i32) -> i32 {
    berth_testkit::forked::in_filtered_child(|| prog.load().is_ok(), probe)
}

use berth_testkit::forked::errno;

#[test]
fn loaded_filter_makes_mkdir_fail_with_the_profile_errno() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("blocked");
    let path = CString::new(target.to_str().unwrap()).unwrap();
    for errno_ret in [libc::EPERM, libc::ENOSYS] {
        let prog = compile(&errno_profile(&["mkdir", "mkdirat"], errno_ret as u32)).unwrap();
        let code = in_filtered_child(&prog, || {
            // SAFETY: mkdir on a NUL-terminated path prepared before fork.
            if unsafe { libc::mkdir(path.as_ptr(), 0o755) } == 0 {
                0
            } else {
                errno()
            }
        });
        assert_eq!(code, errno_ret);
        assert!(!target.exists());
    }
}
