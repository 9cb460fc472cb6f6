#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = berth_image::reference::Reference::parse(text);
    let _ = berth_image::reference::Reference::parse_tagged(text);
});
