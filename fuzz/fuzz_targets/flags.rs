#![no_main]
//! `-v`, `--mount` and `-p` values.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(m) = berth_engine::options::parse_volume(text) {
        assert!(m.target.starts_with('/'));
    }
    let _ = berth_engine::options::parse_mount(text);
    let _ = berth_engine::network::publish_to_port_bindings(&[text.to_string()]);
});
