#![no_main]
//! Any bytes as a layer: the applier errors or extracts, and nothing appears next to `dest`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let split = tempfile::tempdir().unwrap();
    let _ = berth_image::apply::apply_tar(data, &dest, "fuzz", &split.path().join("tar-split"));
    let extra = std::fs::read_dir(outer.path()).unwrap().count();
    assert_eq!(extra, 1, "the applier wrote outside its destination");
});
