#![no_main]
//! Any bytes as a `docker save` archive or an OCI layout/archive (`berth load`): loaded or
//! refused, never a panic, and nothing written outside the store's root.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("root");
    let store = berth_image::Store::open(&root).unwrap();
    let _ = store.load(data, &berth_image::archive::NoProgress);
    let extra = std::fs::read_dir(outer.path()).unwrap().count();
    assert_eq!(extra, 1, "the loader wrote outside its root");
});
