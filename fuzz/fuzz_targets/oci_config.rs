#![no_main]
//! Any bytes as a bundle's `config.json` (berth-runtime's OCI config reader): read or refused,
//! and a spec that is read passes through the checks `create` makes (user IDs, sysctls)
//! without a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
    std::fs::write(bundle.path().join("config.json"), data).unwrap();
    if let Ok(b) = berth_runtime::spec::load_bundle(bundle.path()) {
        let _ = berth_runtime::validate::check_sysctls(&b.spec);
        if let Some(process) = b.spec.process() {
            let _ = berth_runtime::validate::check_user_ids(process);
        }
    }
});
