//! The reader behind `logs`, for json-file and local logs: `--tail` from the end, `--since`/
//! `--until`, `-t`, across the rotated files (gzipped ones streamed), and `-f` through rotations
//! until the container stops.

use super::*;

/// `logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Show only the last N lines.
    pub tail: Option<usize>,
    /// Show only entries at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub timestamps: bool,
}

pub(super) fn entry_time(entry: &LogEntry) -> Option<chrono::DateTime<chrono::Utc>> {
    berth_common::time::parse_rfc3339(&entry.time)
}

pub(super) fn keep(entry: &LogEntry, opts: &LogOptions) -> bool {
    match entry_time(entry) {
        Some(t) => opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u),
        None => true,
    }
}

pub(super) fn emit(
    entry: &LogEntry,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) {
    let out: &mut dyn Write = if entry.stream == "stderr" {
        stderr
    } else {
        stdout
    };
    if opts.timestamps {
        let _ = write!(out, "{} ", entry.time);
    }
    let _ = out.write_all(entry.log.as_bytes());
}

/// Reads the complete entries from `reader`'s position on (lines of a json-file log, records of
/// a local one), advancing `offset` past each, and hands every entry that passes the options'
/// filters to `each`. A partial last entry (the monitor is mid-write) is left for the next read.
pub(super) fn read_complete_entries(
    reader: &mut impl BufRead,
    format: LogFormat,
    path: &Path,
    offset: &mut u64,
    opts: &LogOptions,
    mut each: impl FnMut(LogEntry),
) -> Result<()> {
    if format == LogFormat::Local {
        loop {
            match crate::local_log::read_next(reader).map_err(|e| EngineError::io(path, e))? {
                Next::Record(record, n) => {
                    *offset += n;
                    let entry = LogEntry::of_record(&record);
                    if keep(&entry, opts) {
                        each(entry);
                    }
                }
                Next::End => return Ok(()),
            }
        }
    }
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| EngineError::io(path, e))?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(());
        }
        *offset += n as u64;
        if let Ok(entry) = serde_json::from_str::<LogEntry>(&line) {
            if keep(&entry, opts) {
                each(entry);
            }
        }
    }
}

pub(super) fn reader_from(mut file: File, path: &Path, offset: u64) -> Result<BufReader<File>> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| EngineError::io(path, e))?;
    Ok(BufReader::new(file))
}

/// The last `n` entries passing the filters, in order, and the offset just past the last complete
/// entry. The file is read backwards (in chunks of lines, or record by record along the
/// `local` format's trailing lengths); only the entries kept are held in memory.
pub(super) fn tail_entries<R: Read + Seek>(
    file: &mut R,
    format: LogFormat,
    path: &Path,
    opts: &LogOptions,
    n: usize,
) -> Result<(Vec<LogEntry>, u64)> {
    if format == LogFormat::JsonFile {
        return tail_json_entries(file, path, opts, n);
    }
    let io = |e| EngineError::io(path, e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    let end = crate::local_log::complete_end(file, len).map_err(io)?;
    let mut found = Vec::new();
    if n > 0 {
        crate::local_log::read_backwards(file, end, |record| {
            let entry = LogEntry::of_record(&record);
            if keep(&entry, opts) {
                found.push(entry);
            }
            found.len() < n
        })
        .map_err(io)?;
    }
    found.reverse();
    Ok((found, end))
}

/// [`tail_entries`] of a json-file log: backwards in chunks; only the entries kept and one
/// partial line are held in memory.
fn tail_json_entries<R: Read + Seek>(
    file: &mut R,
    path: &Path,
    opts: &LogOptions,
    n: usize,
) -> Result<(Vec<LogEntry>, u64)> {
    const CHUNK: u64 = 64 * 1024;
    let io = |e| EngineError::io(path, e);
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    let mut found: Vec<LogEntry> = Vec::new();
    let mut pos = len;
    let mut carry: Vec<u8> = Vec::new();
    let mut end: Option<u64> = None;
    let take = |line: &[u8], found: &mut Vec<LogEntry>| {
        if let Ok(entry) = serde_json::from_slice::<LogEntry>(line) {
            if keep(&entry, opts) {
                found.push(entry);
            }
        }
    };
    while pos > 0 && found.len() < n {
        let start = pos.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut chunk).map_err(io)?;
        chunk.extend_from_slice(&carry);
        pos = start;
        let mut line_end = chunk.len();
        if end.is_none() {
            // A partial last line (the monitor is mid-write) is not an entry yet.
            match chunk.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    end = Some(start + i as u64 + 1);
                    line_end = i + 1;
                }
                None => {
                    carry = chunk;
                    continue;
                }
            }
        }
        while line_end > 0 && found.len() < n {
            match chunk[..line_end - 1].iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    take(&chunk[i + 1..line_end], &mut found);
                    line_end = i + 1;
                }
                None if pos == 0 => {
                    take(&chunk[..line_end], &mut found);
                    line_end = 0;
                }
                None => break,
            }
        }
        chunk.truncate(line_end);
        carry = chunk;
    }
    found.reverse();
    Ok((found, end.unwrap_or(0)))
}

/// A rotated file of the log: plain or gzipped.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OldFile {
    path: PathBuf,
    gz: bool,
    format: LogFormat,
}

/// The rotated files of `log`, newest (`.1`) first.
pub(super) fn old_files(log: &LogFile) -> Vec<OldFile> {
    let mut out = Vec::new();
    for n in 1.. {
        let plain = rotated(&log.path, n, false);
        let gz = rotated(&log.path, n, true);
        let (path, gz) = if plain.exists() {
            (plain, false)
        } else if gz.exists() {
            (gz, true)
        } else {
            return out;
        };
        out.push(OldFile {
            path,
            gz,
            format: log.format,
        });
    }
    out
}

impl OldFile {
    /// Its content from the start: the file, or its gzip stream decoded as it is read. None
    /// when it was rotated away (beyond max-file) while we looked.
    fn open(&self) -> Result<Option<Box<dyn BufRead>>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io(&self.path, e)),
        };
        Ok(Some(if self.gz {
            Box::new(BufReader::new(flate2::read::GzDecoder::new(file)))
        } else {
            Box::new(BufReader::new(file))
        }))
    }

    /// Every entry passing the filters, in order, to `each`.
    fn stream(&self, opts: &LogOptions, each: impl FnMut(LogEntry)) -> Result<()> {
        let mut offset = 0;
        match self.open()? {
            Some(mut reader) => read_complete_entries(
                &mut reader,
                self.format,
                &self.path,
                &mut offset,
                opts,
                each,
            ),
            None => Ok(()),
        }
    }

    /// Its last `n` entries passing the filters: read backwards from its end, or (gzip reads
    /// only forwards) streamed through a window of `n` entries.
    fn tail(&self, opts: &LogOptions, n: usize) -> Result<Vec<LogEntry>> {
        if self.gz {
            let mut window = std::collections::VecDeque::with_capacity(n.min(4096));
            if n > 0 {
                self.stream(opts, |entry| {
                    if window.len() == n {
                        window.pop_front();
                    }
                    window.push_back(entry);
                })?;
            }
            return Ok(window.into());
        }
        match File::open(&self.path) {
            Ok(mut f) => Ok(tail_entries(&mut f, self.format, &self.path, opts, n)?.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(EngineError::io(&self.path, e)),
        }
    }
}

/// A file of the log's rotation chain, opened: what is read from it no longer depends on the
/// names the writer moves it through.
pub(super) struct HeldFile {
    path: PathBuf,
    file: File,
    gz: bool,
    ino: u64,
    format: LogFormat,
}

impl HeldFile {
    /// Every entry passing the filters, in order, to `each`.
    fn stream(&self, opts: &LogOptions, each: impl FnMut(LogEntry)) -> Result<()> {
        let mut offset = 0;
        let (format, path) = (self.format, &self.path);
        if self.gz {
            let mut reader =
                BufReader::new(flate2::read::GzDecoder::new(ReadAt::start(&self.file)));
            read_complete_entries(&mut reader, format, path, &mut offset, opts, each)
        } else {
            let mut reader = BufReader::new(ReadAt::start(&self.file));
            read_complete_entries(&mut reader, format, path, &mut offset, opts, each)
        }
    }

    /// Its first entry's bytes (decompressed), if it has a complete one.
    fn first_line(&self) -> Option<Vec<u8>> {
        if self.gz {
            let gz = flate2::read::GzDecoder::new(ReadAt::start(&self.file));
            first_line_of(gz, self.format)
        } else {
            first_line_of(ReadAt::start(&self.file), self.format)
        }
    }
}

/// Reads a file from a position of its own (`pread`), leaving the descriptor's offset alone, so
/// one opened file can be read more than once.
pub(super) struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> ReadAt<'a> {
    fn start(file: &'a File) -> Self {
        ReadAt { file, pos: 0 }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The bytes of the first complete entry read from `from`'s start (a line, or a local record
/// with its frames; at most one entry's worth of bytes).
pub(super) fn first_line_of(mut from: impl Read, format: LogFormat) -> Option<Vec<u8>> {
    if format == LogFormat::Local {
        let mut head = [0u8; 4];
        from.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes(head);
        if len > crate::local_log::MAX_MESSAGE {
            return None;
        }
        let mut record = head.to_vec();
        record.resize(len as usize + 8, 0);
        from.read_exact(&mut record[4..]).ok()?;
        return Some(record);
    }
    let mut line = Vec::new();
    let mut limited = BufReader::new(from.take(4 * MAX_LINE as u64));
    limited.read_until(b'\n', &mut line).ok()?;
    line.ends_with(b"\n").then_some(line)
}

/// The rotated files as they are now, `.1` first, opened. A missing number is passed over
/// once (a rotation in progress moves the files up one at a time, oldest first); two in a row
/// end the chain.
pub(super) fn open_chain(log: &LogFile) -> Result<Vec<HeldFile>> {
    let path = log.path.as_path();
    let mut chain = Vec::new();
    let mut missing = 0;
    for n in 1.. {
        let mut found = false;
        for gz in [false, true] {
            let name = rotated(path, n, gz);
            match File::open(&name) {
                Ok(file) => {
                    let ino = file
                        .metadata()
                        .map_err(|e| EngineError::io(&name, e))?
                        .ino();
                    chain.push(HeldFile {
                        path: name,
                        file,
                        gz,
                        ino,
                        format: log.format,
                    });
                    found = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(EngineError::io(&name, e)),
            }
        }
        missing = if found { 0 } else { missing + 1 };
        if missing == 2 {
            break;
        }
    }
    Ok(chain)
}

pub(super) fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// After the file `held` was rotated: the files rotated after it, oldest first, and the new live
/// file, all opened. The writer (another process) may rotate again at any moment, so the chain is
/// opened, then checked name by name, and taken again until nothing moved in between; `held` is
/// found in it by inode, or by its first line once gzipped. When it is not there any more (gone
/// past `max-file`), every rotated file is newer than it.
pub(super) fn files_after(log: &LogFile, held: &File) -> Result<(Vec<HeldFile>, File)> {
    let path = log.path.as_path();
    let held_ino = held.metadata().map_err(|e| EngineError::io(path, e))?.ino();
    let held_first = first_line_of(ReadAt::start(held), log.format);
    for _ in 0..10_000 {
        let live = match File::open(path) {
            Ok(f) => f,
            // Between the rename of the live file and the creation of the next one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            Err(e) => return Err(EngineError::io(path, e)),
        };
        let live_ino = live.metadata().map_err(|e| EngineError::io(path, e))?.ino();
        let mut chain = open_chain(log)?;
        let still = inode_of(path) == Some(live_ino)
            && chain.iter().all(|h| inode_of(&h.path) == Some(h.ino));
        if !still {
            continue;
        }
        let ours = chain.iter().position(|h| {
            h.ino == held_ino || (h.gz && held_first.is_some() && h.first_line() == held_first)
        });
        if let Some(k) = ours {
            chain.truncate(k);
        }
        chain.reverse();
        return Ok((chain, live));
    }
    Err(EngineError::io(
        path,
        std::io::Error::other("the log kept rotating while it was being followed"),
    ))
}

/// Prints the json-file log at `path`; see [`print_log`].
pub fn print_logs(
    path: &Path,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    still_running: impl FnMut() -> bool,
) -> Result<()> {
    print_log(&LogFile::json(path), opts, stdout, stderr, still_running)
}

/// Prints the log `log` (its rotated files first); with `follow`, keeps printing new entries,
/// through rotations, until `still_running` says the container stopped (then prints what is
/// left and returns).
pub fn print_log(
    log: &LogFile,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    mut still_running: impl FnMut() -> bool,
) -> Result<()> {
    let (path, format) = (log.path.as_path(), log.format);
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !opts.follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
            }
            File::create(path).map_err(|e| EngineError::io(path, e))?;
            File::open(path).map_err(|e| EngineError::io(path, e))?
        }
        Err(e) => return Err(EngineError::io(path, e)),
    };
    let mut inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
    let older = old_files(log);
    let mut offset = 0u64;
    let mut reader = match opts.tail {
        // `--tail N` reads backwards from the end, then into older files while it needs
        // more: memory holds N entries, whatever the size.
        Some(n) => {
            let mut file = file;
            let (mut entries, end) = tail_entries(&mut file, format, path, opts, n)?;
            for old in &older {
                if entries.len() >= n {
                    break;
                }
                let mut earlier = old.tail(opts, n - entries.len())?;
                earlier.append(&mut entries);
                entries = earlier;
            }
            for entry in &entries {
                emit(entry, opts, stdout, stderr);
            }
            offset = end;
            reader_from(file, path, offset)?
        }
        // Otherwise entries stream from the oldest file on, one entry in memory at a time.
        None => {
            for old in older.iter().rev() {
                old.stream(opts, |entry| emit(&entry, opts, stdout, stderr))?;
            }
            let mut reader = BufReader::new(file);
            read_complete_entries(&mut reader, format, path, &mut offset, opts, |entry| {
                emit(&entry, opts, stdout, stderr)
            })?;
            reader
        }
    };
    let _ = stdout.flush();
    let _ = stderr.flush();
    if !opts.follow {
        return Ok(());
    }
    loop {
        let running = still_running();
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| EngineError::io(path, e))?;
        read_complete_entries(&mut reader, format, path, &mut offset, opts, |entry| {
            emit(&entry, opts, stdout, stderr)
        })?;
        match std::fs::metadata(path) {
            // Rotated: what we hold is now `.1` (or older) and complete. Read the files
            // rotated after it, then go on with the new live file.
            Ok(meta) if meta.ino() != inode => {
                // The writer may have added entries to our file between our read and its
                // rename; it never writes to it after, so this read finishes it.
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(|e| EngineError::io(path, e))?;
                read_complete_entries(&mut reader, format, path, &mut offset, opts, |entry| {
                    emit(&entry, opts, stdout, stderr)
                })?;
                let (newer, live) = files_after(log, reader.get_ref())?;
                for held in newer {
                    held.stream(opts, |entry| emit(&entry, opts, stdout, stderr))?;
                }
                inode = live.metadata().map(|m| m.ino()).unwrap_or(0);
                offset = 0;
                reader = BufReader::new(live);
                continue;
            }
            // Truncated (`max-file=1`): start over at its beginning.
            Ok(meta) if meta.len() < offset => offset = 0,
            _ => {}
        }
        let _ = stdout.flush();
        let _ = stderr.flush();
        if !running {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The log container `id` keeps, by its log driver (its host config), or Docker's error for a
/// driver that keeps nothing.
pub fn container_log(store: &crate::record::Store, id: &str) -> Result<LogFile> {
    let host = store.load_host_config(id).unwrap_or_default();
    match LogSettings::of(&host.log_config).map(|s| s.format) {
        Ok(Some(format)) => Ok(LogFile::of(store, id, format)),
        _ => Err(EngineError::LogsNotReadable { id: id.to_string() }),
    }
}

/// `logs` of a container, by its log driver: the json-file or local log (rotated files
/// included), or Docker's error for a driver that keeps nothing. The CLI and the API's
/// `/containers/{id}/logs` both call this.
pub fn print_container_logs(
    store: &crate::record::Store,
    record: &crate::record::ContainerRecord,
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    still_running: impl FnMut() -> bool,
) -> Result<()> {
    let log = container_log(store, &record.id)?;
    print_log(&log, opts, stdout, stderr, still_running)
}
