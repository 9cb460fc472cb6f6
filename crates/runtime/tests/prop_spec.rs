//! Bounded property runs (issue 14): berth-runtime's OCI config reader takes any `config.json`
//! (random bytes, or JSON with fields of the wrong shape) and refuses it cleanly, never panics.
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z/.0-9]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "ociVersion",
                    "root",
                    "path",
                    "process",
                    "args",
                    "user",
                    "uid",
                    "gid",
                    "linux",
                    "namespaces",
                    "mounts",
                    "type",
                    "destination",
                    "sysctl",
                    "cwd",
                ])
                .prop_map(str::to_string),
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn config_reader_refuses_cleanly(value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        for content in [serde_json::to_vec(&value).unwrap(), bytes] {
            std::fs::write(dir.path().join("config.json"), &content).unwrap();
            if let Ok(bundle) = berth_runtime::spec::load_bundle(dir.path()) {
                let _ = berth_runtime::validate::check_sysctls(&bundle.spec);
                if let Some(process) = bundle.spec.process() {
                    let _ = berth_runtime::validate::check_user_ids(process);
                }
            }
        }
    }
}
