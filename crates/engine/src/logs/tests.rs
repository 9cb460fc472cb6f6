use super::reader::{old_files, tail_entries};
use super::*;

#[test]
fn writes_docker_json_lines_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-json.log");
    let mut w = LogWriter::open(&path).unwrap();
    w.write(1, b"hel");
    w.write(1, b"lo\nwor");
    w.write(2, b"oops\n");
    w.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<LogEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0].log, "hello\n");
    assert_eq!(lines[0].stream, "stdout");
    assert_eq!(lines[1].stream, "stderr");
    assert_eq!(lines[2].log, "wor");
    assert!(lines[0].time.ends_with('Z'));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    print_logs(
        &path,
        &LogOptions {
            tail: Some(2),
            ..Default::default()
        },
        &mut out,
        &mut err,
        || false,
    )
    .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "wor");
    assert_eq!(String::from_utf8(err).unwrap(), "oops\n");
}

#[test]
fn since_accepts_durations_and_timestamps() {
    assert!(parse_since("10m").unwrap() < chrono::Utc::now());
    assert!(parse_since("2026-01-01T00:00:00Z").is_ok());
    assert!(parse_since("1700000000").is_ok());
    assert!(parse_since("soon").is_err());
}

#[test]
fn tail_reads_from_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let mut text = String::new();
    for i in 0..5000 {
        let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
        text.push_str(&format!(
            "{{\"log\":\"line {i}\\n\",\"stream\":\"{stream}\",\"time\":\"2024-01-01T00:00:00.000000000Z\"}}\n"
        ));
    }
    text.push_str("{\"log\":\"partial");
    std::fs::write(&path, &text).unwrap();
    let run = |tail: Option<usize>| {
        let opts = LogOptions {
            tail,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_logs(&path, &opts, &mut out, &mut err, || false).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    };
    let (out, err) = run(Some(3));
    assert_eq!(out, "line 4998\n");
    assert_eq!(err, "line 4997\nline 4999\n");
    let (out, err) = run(Some(0));
    assert!(out.is_empty() && err.is_empty());
    let (out, err) = run(Some(100_000));
    assert_eq!(out.lines().count() + err.lines().count(), 5000);
    assert!(out.starts_with("line 0\n"));
    let (out, _) = run(None);
    assert_eq!(out.lines().count(), 2500);
    let mut file = File::open(&path).unwrap();
    let (_, end) = tail_entries(
        &mut file,
        LogFormat::JsonFile,
        &path,
        &LogOptions::default(),
        1,
    )
    .unwrap();
    assert_eq!(end as usize, text.rfind('\n').unwrap() + 1);
}

fn read_all(path: &Path, tail: Option<usize>) -> Vec<String> {
    let opts = LogOptions {
        tail,
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    print_logs(path, &opts, &mut out, &mut err, || false).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn rotation_keeps_max_file_files_under_max_size_and_reads_across_them() {
    for compress in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: Some(1000),
            max_files: 3,
            compress,
        };
        let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
        for i in 0..100 {
            w.write(1, format!("line {i}\n").as_bytes());
        }
        w.flush();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let want: Vec<String> = if compress {
            vec![
                "c-json.log".into(),
                "c-json.log.1.gz".into(),
                "c-json.log.2.gz".into(),
            ]
        } else {
            vec![
                "c-json.log".into(),
                "c-json.log.1".into(),
                "c-json.log.2".into(),
            ]
        };
        assert_eq!(names, want);
        if !compress {
            for name in &names {
                let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
                assert!(len <= 1000, "{name} is {len} bytes");
            }
        }
        let all = read_all(&path, None);
        assert_eq!(all.last().map(String::as_str), Some("line 99"));
        // Contiguous from wherever the oldest kept file starts.
        let first: usize = all[0].trim_start_matches("line ").parse().unwrap();
        let want: Vec<String> = (first..100).map(|i| format!("line {i}")).collect();
        assert_eq!(all, want);
        // --tail reaches into the rotated files.
        let tail = read_all(&path, Some(all.len() - 1));
        assert_eq!(tail, all[1..].to_vec());
        assert_eq!(read_all(&path, Some(2)), ["line 98", "line 99"]);
    }
}

#[test]
fn one_file_is_truncated_and_options_are_checked_as_docker_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let rotation = Rotation {
        max_size: Some(300),
        max_files: 1,
        compress: false,
    };
    let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
    for i in 0..50 {
        w.write(2, format!("line {i}\n").as_bytes());
    }
    assert!(std::fs::metadata(&path).unwrap().len() <= 300);
    assert_eq!(old_files(&LogFile::json(&path)), Vec::new());

    let settings = |driver: &str, opts: &[(&str, &str)]| {
        LogSettings::of(&crate::options::LogConfig {
            r#type: driver.into(),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    };
    let ok = settings("json-file", &[("max-size", "1m"), ("max-file", "3")]).unwrap();
    assert_eq!(ok.rotation.max_size, Some(1_000_000));
    assert_eq!(ok.rotation.max_files, 3);
    assert!(!settings("none", &[]).unwrap().keeps_logs());
    let err = |driver: &str, opts: &[(&str, &str)]| settings(driver, opts).unwrap_err().to_string();
    assert_eq!(
        err("none", &[("max-size", "1m")]),
        "invalid logging opts for driver none"
    );
    assert_eq!(
        err("json-file", &[("colour", "red")]),
        "unknown log opt 'colour' for json-file log driver"
    );
    assert!(err("json-file", &[("max-size", "0")]).contains("max-size must be a positive number"));
    assert!(err("json-file", &[("max-file", "0")]).contains("max-file cannot be less than 1"));
    assert!(
        err("json-file", &[("max-size", "1m"), ("compress", "true")])
            .contains("compress cannot be true")
    );
    assert!(err("foo", &[]).contains("plugin \"foo\" not found"));
}

/// The writer is another process in real use and rotates whenever it likes, also while the
/// follower is between noticing a rotation and opening the next file: nothing may be skipped
/// or repeated (a full run once lost 40 lines of `logs -f` that way).
#[test]
fn follow_keeps_every_line_while_a_concurrent_writer_rotates() {
    let formats = [LogFormat::JsonFile, LogFormat::Local];
    for (format, compress) in formats.into_iter().flat_map(|f| [(f, false), (f, true)]) {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile {
            path: dir.path().join("c.log"),
            format,
        };
        let rotation = Rotation {
            max_size: Some(1500),
            max_files: 1000,
            compress,
        };
        let mut w = LogWriter::create(&log, rotation).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer_done = done.clone();
        let lines = 6000;
        let writer = std::thread::spawn(move || {
            for i in 0..lines {
                w.write(1, format!("line {i}\n").as_bytes());
                if i % 50 == 0 {
                    w.flush();
                    std::thread::sleep(std::time::Duration::from_micros(100));
                }
            }
            w.flush();
            writer_done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_log(&log, &opts, &mut out, &mut err, || {
            !done.load(std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap();
        writer.join().unwrap();
        let text = String::from_utf8(out).unwrap();
        let want: Vec<String> = (0..lines).map(|i| format!("line {i}")).collect();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), want.len(), "{format:?} compress={compress}");
        assert!(
            got.iter().zip(&want).all(|(a, b)| a == b),
            "{format:?} compress={compress}"
        );
    }
}

#[test]
fn follow_goes_through_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let rotation = Rotation {
        max_size: Some(400),
        max_files: 1000,
        compress: false,
    };
    let mut w = LogWriter::open_rotating(&path, rotation).unwrap();
    w.write(1, b"first\n");
    let opts = LogOptions {
        follow: true,
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // Each poll of the reader writes a burst that rotates the log once or twice.
    let mut polls = 0;
    print_logs(&path, &opts, &mut out, &mut err, || {
        polls += 1;
        if polls <= 20 {
            for i in 0..10 {
                w.write(1, format!("poll {polls} line {i}\n").as_bytes());
            }
        }
        polls <= 20
    })
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 20 * 10, "{text}");
    assert_eq!(lines[0], "first");
    assert_eq!(lines[200], "poll 20 line 9");
    assert!(old_files(&LogFile::json(&path)).len() > 5);
}
fn local_settings(opts: &[(&str, &str)]) -> Result<LogSettings> {
    LogSettings::of(&crate::options::LogConfig {
        r#type: "local".into(),
        config: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn read_log(log: &LogFile, tail: Option<usize>) -> (String, String) {
    let opts = LogOptions {
        tail,
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    print_log(log, &opts, &mut out, &mut err, || false).unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn local_records_round_trip_with_docker_partial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogFile {
        path: dir.path().join("local-logs/container.log"),
        format: LogFormat::Local,
    };
    let mut w = LogWriter::create(&log, Rotation::default()).unwrap();
    w.write(1, b"hel");
    w.write(1, b"lo\nwor");
    w.write(2, b"oops\n");
    let long = "x".repeat(MAX_LINE + 10);
    w.write(1, b"ld\n");
    w.write(2, format!("{long}\n").as_bytes());
    w.write(1, b"no newline");
    w.flush();
    // The records, as Docker's local driver writes them.
    let bytes = std::fs::read(&log.path).unwrap();
    let mut reader = std::io::Cursor::new(&bytes);
    let mut records = Vec::new();
    while let Next::Record(r, _) = crate::local_log::read_next(&mut reader).unwrap() {
        records.push(r);
    }
    let lines: Vec<(&str, &[u8], bool)> = records
        .iter()
        .map(|r| (r.source.as_str(), &r.line[..], r.partial))
        .collect();
    assert_eq!(lines[0], ("stdout", &b"hello"[..], false));
    assert_eq!(lines[1], ("stderr", &b"oops"[..], false));
    assert_eq!(lines[2], ("stdout", &b"world"[..], false));
    // The long line: a first piece of MAX_LINE bytes, then the last piece, one ID.
    let (a, b) = (&records[3], &records[4]);
    assert_eq!(a.line.len(), MAX_LINE);
    let (ma, mb) = (
        a.partial_log_metadata.as_ref().unwrap(),
        b.partial_log_metadata.as_ref().unwrap(),
    );
    assert_eq!(
        (ma.ordinal, ma.last, mb.ordinal, mb.last),
        (1, false, 2, true)
    );
    assert_eq!(ma.id, mb.id);
    assert_eq!(b.line.len(), 10);
    // The unfinished last line is a partial that is not the last piece: no newline.
    assert!(records[5].partial && !records[5].ends_line());
    assert!(records[0].time_nano > 1_700_000_000_000_000_000);

    let (out, err) = read_log(&log, None);
    assert_eq!(out, "hello\nworld\nno newline");
    assert_eq!(
        err,
        format!("oops\n{}{}\n", &long[..MAX_LINE], &long[MAX_LINE..])
    );
    let (out, err) = read_log(&log, Some(2));
    assert_eq!(out, "no newline");
    assert_eq!(err, format!("{}\n", &long[MAX_LINE..]));
    // -t prints each entry's own time.
    let opts = LogOptions {
        timestamps: true,
        tail: Some(1),
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    print_log(&log, &opts, &mut out, &mut err, || false).unwrap();
    let out = String::from_utf8(out).unwrap();
    let (time, text) = out.split_once(' ').unwrap();
    assert_eq!(text, "no newline");
    assert_eq!(
        berth_common::time::parse_rfc3339(time)
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap(),
        records[5].time_nano
    );
}

#[test]
fn local_rotation_keeps_max_file_gzipped_files_and_tails_across_them() {
    for compress in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile {
            path: dir.path().join("container.log"),
            format: LogFormat::Local,
        };
        let rotation = Rotation {
            max_size: Some(1000),
            max_files: 3,
            compress,
        };
        let mut w = LogWriter::create(&log, rotation).unwrap();
        for i in 0..200 {
            w.write(1 + i % 2, format!("line {i}\n").as_bytes());
        }
        w.flush();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let suffix = if compress { ".gz" } else { "" };
        assert_eq!(
            names,
            [
                "container.log".to_string(),
                format!("container.log.1{suffix}"),
                format!("container.log.2{suffix}"),
            ]
        );
        for name in &names {
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            let plain = if name.ends_with(".gz") {
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_end(&mut v)
                    .unwrap();
                v
            } else {
                bytes
            };
            assert!(plain.len() <= 1000, "{name} holds {} bytes", plain.len());
        }
        let (out, err) = read_log(&log, None);
        let mut all: Vec<usize> = out
            .lines()
            .chain(err.lines())
            .map(|l| l.trim_start_matches("line ").parse().unwrap())
            .collect();
        all.sort();
        let first = all[0];
        assert_eq!(all, (first..200).collect::<Vec<_>>());
        // --tail reaches back through both rotated files.
        let n = all.len() - 1;
        let (out, err) = read_log(&log, Some(n));
        assert_eq!(out.lines().count() + err.lines().count(), n);
        assert!(!out.contains(&format!("line {first}\n")));
        assert!(!err.contains(&format!("line {first}\n")));
        assert_eq!(
            read_log(&log, Some(2)),
            ("line 198\n".into(), "line 199\n".into())
        );
    }
}

#[test]
fn local_options_default_and_fail_as_docker() {
    let s = local_settings(&[]).unwrap();
    assert_eq!(s.format, Some(LogFormat::Local));
    assert_eq!(
        s.rotation,
        Rotation {
            max_size: Some(20 * 1024 * 1024),
            max_files: 5,
            compress: true,
        }
    );
    let s =
        local_settings(&[("max-size", "1m"), ("max-file", "3"), ("compress", "false")]).unwrap();
    assert_eq!(s.rotation.max_size, Some(1_000_000));
    assert_eq!((s.rotation.max_files, s.rotation.compress), (3, false));
    let err = |opts: &[(&str, &str)]| local_settings(opts).unwrap_err().to_string();
    assert_eq!(
        err(&[("colour", "red")]),
        "unknown log opt 'colour' for log driver local"
    );
    assert!(err(&[("max-file", "1")])
        .contains("compression cannot be enabled when max file count is 1"));
    assert!(err(&[("max-file", "-1")]).contains("max-file must not be negative"));
    assert!(err(&[("max-size", "huge")]).contains("invalid value for max-size: huge"));
    assert!(err(&[("compress", "maybe")]).contains("invalid boolean value for compress"));
    assert!(local_settings(&[("max-file", "1"), ("compress", "false")]).is_ok());
}

#[test]
fn following_a_local_log_reads_records_as_they_complete() {
    let dir = tempfile::tempdir().unwrap();
    let log = LogFile {
        path: dir.path().join("container.log"),
        format: LogFormat::Local,
    };
    let rotation = Rotation {
        max_size: Some(300),
        max_files: 1000,
        compress: false,
    };
    let mut w = LogWriter::create(&log, rotation).unwrap();
    w.write(1, b"first\n");
    // A torn record at the end (a write in progress) is read once it is whole.
    let mut torn = Vec::new();
    crate::local_log::encode(
        &mut torn,
        &LogRecord {
            source: "stdout".into(),
            time_nano: 1,
            line: b"torn".to_vec(),
            ..Default::default()
        },
    );
    let (half, rest) = torn.split_at(torn.len() / 2);
    let mut raw = std::fs::OpenOptions::new()
        .append(true)
        .open(&log.path)
        .unwrap();
    raw.write_all(half).unwrap();
    let opts = LogOptions {
        follow: true,
        ..Default::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut polls = 0;
    print_log(&log, &opts, &mut out, &mut err, || {
        polls += 1;
        if polls == 2 {
            raw.write_all(rest).unwrap();
        }
        if (3..=12).contains(&polls) {
            for i in 0..10 {
                w.write(1, format!("poll {polls} line {i}\n").as_bytes());
            }
        }
        polls <= 12
    })
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + 10 * 10, "{text}");
    assert_eq!(&lines[..2], ["first", "torn"]);
    assert_eq!(lines[101], "poll 12 line 9");
    assert!(old_files(&log).len() > 3);
}
