//! Bounded property runs (issue 14): the Dockerfile parser and the variable expander take any
//! text without panicking, and expansion never yields more than its bound.
use berth_build::lex::{expand_vars_only, process_word, process_words, Vars, MAX_EXPANDED};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parser_takes_any_text(text in "(FROM|RUN|ARG|ENV|COPY|ADD|LABEL|#|\\\\|\\n| |\\$\\{|\\}|=|\"|'|<<EOF|EOF|[a-z]){0,60}") {
        let _ = berth_build::parser::parse(&text, "Dockerfile");
    }

    #[test]
    fn expander_is_bounded(word in "(\\$A|\\$\\{A\\}|\\$\\{A:-x\\}|\\$\\{B:\\+\\$A\\$A\\}|\"|'|\\\\|[a-z ]){0,40}", value_len in 0usize..200_000) {
        let mut vars = Vars::new();
        vars.insert("A".into(), "v".repeat(value_len));
        vars.insert("B".into(), "set".into());
        let lens = [process_word(&word, &vars, '\\').map(|s| s.len()),
                    process_words(&word, &vars, '\\').map(|w| w.iter().map(String::len).sum()),
                    expand_vars_only(&word, &vars, '\\').map(|s| s.len())];
        for len in lens.into_iter().flatten() {
            prop_assert!(len <= MAX_EXPANDED);
        }
    }
}
