//! Bounded property runs (issue 14): the `-p`, `-v` and `--mount` parsers and the run checks take
//! any text without panicking; what they accept has an absolute container path.
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn volume_and_mount_parsers(text in "(/|:|,|=|ro|rw|z|type|bind|volume|tmpfs|source|target|src|dst|readonly|[a-z0-9]){0,40}") {
        if let Ok(m) = berth_engine::options::parse_volume(&text) {
            prop_assert!(m.target.starts_with('/'));
        }
        let _ = berth_engine::options::parse_mount(&text);
        let _ = berth_engine::run_checks::volume_flag(&text);
        let _ = berth_engine::run_checks::env_flag(&text);
    }

    #[test]
    fn publish_parser(specs in prop::collection::vec("([0-9]{0,6}|:|-|/|tcp|udp|sctp|\\.|\\[|\\]|::1|127\\.0\\.0\\.1){0,8}", 0..3)) {
        let _ = berth_engine::network::publish_to_port_bindings(&specs);
    }
}
