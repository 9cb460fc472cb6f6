use super::filter::port_matches;
use super::*;

fn flags(words: &[&str]) -> Result<Filter> {
    Filter::from_flags(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
}

#[test]
fn filters_are_checked_as_docker_checks_them() {
    assert!(flags(&["status=running", "status=exited", "label=a=b"]).is_ok());
    assert!(matches!(
        flags(&["colour=red"]),
        Err(EngineError::InvalidFilter(k)) if k == "colour"
    ));
    assert!(matches!(
        flags(&["status=sleeping"]),
        Err(EngineError::InvalidFilter(k)) if k == "status=sleeping"
    ));
    assert!(flags(&["exited=x"]).is_err());
    assert!(flags(&["health=sick"]).is_err());
    assert!(flags(&["is-task=maybe"]).is_err());
    assert!(matches!(
        flags(&["status"]),
        Err(EngineError::FilterSyntax(_))
    ));
}

#[test]
fn names_and_ids_match_exactly_or_as_regular_expressions() {
    let f = flags(&["name=^web$", "name=db"]).unwrap();
    assert!(f.matches("name", &["web", "/web"]));
    assert!(f.matches("name", &["mydb1"]));
    assert!(!f.matches("name", &["webby"]));
    let f = flags(&["id=abc"]).unwrap();
    assert!(f.matches("id", &["abcdef"]));
    assert!(!f.matches("id", &["fed"]));
    // An invalid expression matches only itself.
    let f = flags(&["name=[x"]).unwrap();
    assert!(f.matches("name", &["[x"]));
    assert!(!f.matches("name", &["x"]));
    assert!(Filter::default().matches("name", &["anything"]));
}

#[test]
fn label_filters_must_all_hold() {
    let f = flags(&["label=a", "label=b=2"]).unwrap();
    let labels: BTreeMap<String, String> =
        [("a".into(), "1".into()), ("b".into(), "2".into())].into();
    assert!(f.labels_match(&labels));
    let f = flags(&["label=a", "label=c"]).unwrap();
    assert!(!f.labels_match(&labels));
}

#[test]
fn port_filters() {
    assert!(port_matches("80", 80, "tcp"));
    assert!(!port_matches("80", 80, "udp"));
    assert!(port_matches("53/udp", 53, "udp"));
    assert!(port_matches("8000-8080", 8042, "tcp"));
    assert!(!port_matches("8000-8080", 9000, "tcp"));
    assert!(!port_matches("x", 1, "tcp"));
}

fn save(engine: &Engine, name: &str, created: &str, running: bool) -> ContainerRecord {
    let id = crate::names::new_id();
    std::fs::create_dir_all(engine.store.container_dir(&id)).unwrap();
    engine.store.reserve_name(name, &id).unwrap();
    let mut record = ContainerRecord {
        id: id.clone(),
        name: format!("/{name}"),
        created: created.into(),
        path: "sh".into(),
        ..Default::default()
    };
    record.config.labels.insert("app".into(), name.into());
    if running {
        // This test process stands in for the container's init.
        record.state.running = true;
        record.state.pid = std::process::id() as i32;
        record.state.started_at = created.into();
        record.berth_pid_start_time =
            crate::procinfo::start_time(record.state.pid).unwrap_or_default();
    } else {
        record.state.started_at = created.into();
        record.state.finished_at = created.into();
        record.state.exit_code = 3;
        record.has_been_started_before = true;
    }
    engine.store.save(&record).unwrap();
    engine
        .store
        .save_host_config(&id, &Default::default())
        .unwrap();
    record
}

#[test]
fn list_applies_docker_rules_and_reports_unreadable_records() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path());
    let old = save(&engine, "old", "2024-01-01T00:00:00.000000000Z", false);
    let mid = save(&engine, "mid", "2024-01-02T00:00:00.000000000Z", true);
    let new = save(&engine, "new", "2024-01-03T00:00:00.000000000Z", false);
    let ids = |opts: ListOptions| -> Vec<String> {
        let listing = engine.list(&opts).unwrap();
        listing.rows.into_iter().map(|r| r.name).collect()
    };
    let with = |all: bool, words: &[&str]| ListOptions {
        all,
        filter: flags(words).unwrap(),
        ..Default::default()
    };
    assert_eq!(ids(with(false, &[])), ["mid"]);
    assert_eq!(ids(with(true, &[])), ["new", "mid", "old"]);
    // A status filter implies --all; exited needs it.
    assert_eq!(ids(with(false, &["status=exited"])), ["new", "old"]);
    assert_eq!(ids(with(true, &["exited=3"])), ["new", "old"]);
    assert!(ids(with(true, &["exited=0"])).is_empty());
    assert_eq!(ids(with(true, &["since=old"])), ["new", "mid"]);
    assert_eq!(ids(with(true, &["before=new", "label=app=old"])), ["old"]);
    assert_eq!(ids(with(true, &["name=^m", "name=new"])), ["new", "mid"]);
    let prefix = format!("id=^{}", &mid.id[..8]);
    assert_eq!(ids(with(true, &[prefix.as_str()])), ["mid"]);
    assert_eq!(
        ids(ListOptions {
            limit: Some(2),
            ..Default::default()
        }),
        ["new", "mid"]
    );
    assert!(matches!(
        engine.list(&with(true, &["before=ghost"])),
        Err(EngineError::NoSuchContainer(_))
    ));
    let listing = engine.list(&with(true, &[])).unwrap();
    assert_eq!(listing.rows.len(), 3);
    let row = &listing.rows[1];
    assert_eq!(row.id, mid.id);
    let cols = row.columns(false);
    assert_eq!(cols.id.len(), 12);
    assert_eq!(cols.command, "\"sh\"");
    assert_eq!(cols.state, "running");
    assert_eq!(cols.labels, "app=mid");
    assert_eq!(cols.created_at, "2024-01-02 00:00:00 +0000 UTC");

    // A corrupt record is reported with its ID and cause, and the rest still list.
    std::fs::write(
        engine.store.container_dir(&old.id).join("config.v2.json"),
        b"{not json",
    )
    .unwrap();
    std::fs::remove_file(engine.store.container_dir(&new.id).join("hostconfig.json")).unwrap();
    let listing = engine.list(&with(true, &[])).unwrap();
    assert_eq!(
        listing
            .rows
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["mid"]
    );
    let mut bad: Vec<&str> = listing.unreadable.iter().map(|u| u.id.as_str()).collect();
    bad.sort();
    let mut want = vec![old.id.as_str(), new.id.as_str()];
    want.sort();
    assert_eq!(bad, want);
    let text = listing
        .unreadable
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(&format!("container {}: unreadable record", old.id)),
        "{text}"
    );
    assert!(text.contains("config.v2.json"), "{text}");
}
