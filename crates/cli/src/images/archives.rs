//! `save`, `load` and `import`: image archives in and out, with Docker's progress output.

use super::*;

pub(super) fn save(store: &Store, a: SaveArgs) -> anyhow::Result<i32> {
    match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.berth-save-{}", std::process::id()));
            let written = (|| -> anyhow::Result<()> {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
                berth_engine::image_verbs::save(store, &a.images, &mut w)?;
                w.flush()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(())
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                );
            }
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            berth_engine::image_verbs::save(store, &a.images, &mut w)?;
            w.flush()?;
        }
    }
    Ok(0)
}

/// Per-layer bars on a terminal; silent otherwise (as `docker load` without a TTY).
pub(super) struct Bars {
    multi: indicatif::MultiProgress,
    bars: std::sync::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Progress for Bars {
    fn start(&self, name: &str, total: u64) {
        let bar = self.multi.add(indicatif::ProgressBar::new(total));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:.bold} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(short_id(name.trim_start_matches("blobs/sha256/")));
        if let Ok(mut b) = self.bars.lock() {
            b.insert(name.to_string(), bar);
        }
    }
    fn advance(&self, name: &str, bytes: u64) {
        if let Ok(b) = self.bars.lock() {
            if let Some(bar) = b.get(name) {
                bar.inc(bytes);
            }
        }
    }
    fn finish(&self, name: &str) {
        if let Ok(b) = self.bars.lock() {
            if let Some(bar) = b.get(name) {
                bar.finish();
            }
        }
    }
}

/// One plain line per layer on stderr when it is not a terminal (logs, CI), so long loads still
/// show progress without escape codes; stdout keeps Docker's `Loaded image…` lines only.
pub(super) struct PlainLines;

impl Progress for PlainLines {
    fn start(&self, name: &str, total: u64) {
        eprintln!(
            "Loading layer {} ({})",
            short_id(name.trim_start_matches("blobs/sha256/")),
            human_size(total)
        );
    }
    fn finish(&self, name: &str) {
        eprintln!(
            "Loaded layer {}",
            short_id(name.trim_start_matches("blobs/sha256/"))
        );
    }
}

pub(super) fn load(store: &Store, a: LoadArgs) -> anyhow::Result<i32> {
    let input: Box<dyn Read> = match &a.input {
        Some(p) => {
            Box::new(std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?)
        }
        None => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin().lock())
        }
    };
    let bars = Bars {
        multi: indicatif::MultiProgress::new(),
        bars: Default::default(),
    };
    let progress: &dyn Progress = if a.quiet {
        &berth_image::NoProgress
    } else if std::io::stderr().is_terminal() {
        &bars
    } else {
        &PlainLines
    };
    let loaded = berth_engine::image_verbs::load(store, input, progress)?;
    for img in loaded {
        for (tag, old) in &img.renamed {
            println!("The image {tag} already exists, renaming the old one with ID {old} to empty string");
        }
        if img.tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for t in &img.tags {
            println!("Loaded image: {t}");
        }
    }
    Ok(0)
}

pub(super) fn import(store: &Store, a: ImportArgs) -> anyhow::Result<i32> {
    if let Some(p) = &a.platform {
        let want = format!("linux/{}", berth_image::import::host_architecture());
        if p != &want && p != "linux" {
            anyhow::bail!("platform {p} is not supported here (only {want})");
        }
    }
    let options = ImportOptions {
        reference: a.reference.clone(),
        changes: a.change.clone(),
        message: a.message.clone(),
        source: if a.source.starts_with("http://") || a.source.starts_with("https://") {
            a.source.clone()
        } else {
            "-".into()
        },
    };
    use berth_engine::image_verbs::import as import_image;
    let id = if a.source == "-" {
        import_image(store, std::io::stdin().lock(), &options)?
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        let body = fetch(&a.source)?;
        import_image(store, body, &options)?
    } else {
        let f = std::fs::File::open(&a.source).with_context(|| format!("open {}", a.source))?;
        import_image(store, f, &options)?
    };
    println!("{id}");
    Ok(0)
}

/// A minimal blocking HTTP/1.0 GET for `import URL`: plain http only (no TLS here).
pub(super) fn fetch(url: &str) -> anyhow::Result<Box<dyn Read>> {
    use std::io::BufRead;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("{url}: only http:// URLs are supported for import"))?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    let mut stream =
        std::net::TcpStream::connect(&addr).with_context(|| format!("connecting to {addr}"))?;
    // One write: a request split over several segments may be read only in part by a simple
    // server, which then resets the connection.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host_port}\r\nUser-Agent: berth\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        anyhow::bail!("fetching {url}: server answered {}", status.trim());
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    Ok(Box::new(reader))
}
