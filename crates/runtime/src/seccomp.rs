//! Seccomp: compiles an OCI `linux.seccomp` profile to a BPF program before fork, and loads it
//! in the container's init just before exec. (Owned by the cgroups/seccomp work; stub for now.)
