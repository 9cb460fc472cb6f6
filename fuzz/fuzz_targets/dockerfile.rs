#![no_main]
//! Any text as a Dockerfile, and as a word to expand: no panic, expansion stays bounded.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = berth_build::parser::parse(text, "Dockerfile");
    let mut vars = berth_build::lex::Vars::new();
    vars.insert("A".into(), "x".repeat(4096));
    if let Ok(s) = berth_build::lex::process_word(text, &vars, '\\') {
        assert!(s.len() <= berth_build::lex::MAX_EXPANDED);
    }
});
