//! A helper thread that takes the per-byte work off the extraction path: it computes the
//! stream's sha256 (the DiffID), each file's CRC-64, and writes the tar-split document (JSON
//! lines, base64, gzip) straight to its file, from copies of the data, while the extracting
//! thread parses and writes files. The layout (raw header bytes, file payloads, file ends)
//! travels in order in batches, so the worker can write each tar-split line as soon as its CRC
//! is known: nothing grows with the number of entries. Buffers are recycled so the hot loop
//! does not allocate. The extracting thread stays the only one touching the layer's files.
use crate::tarsplit::{Crc64, TarSplitWriter};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// One step of the tar's layout; each ends a run of the batch's bytes at offset `end`.
enum Event {
    /// `data[..end]` since the previous event: raw tar bytes (headers, padding).
    Raw(usize),
    /// `data[..end]` since the previous event: payload bytes of the current file.
    Payload(usize),
    /// The current file ends (its payload may have come in earlier batches).
    FileEnd { name: Vec<u8>, size: u64 },
}

enum Job {
    Stream(Vec<u8>),
    Layout { data: Vec<u8>, events: Vec<Event> },
}

/// Where the worker writes the tar-split document.
pub type SplitOut = Box<dyn Write + Send>;

/// The extracting thread's handle on the worker.
pub struct Side {
    tx: SyncSender<Job>,
    pool: Receiver<Vec<u8>>,
    batch: RefCell<(Vec<u8>, Vec<Event>)>,
}

/// What the worker computed.
pub struct SideResult {
    pub digest: String,
    pub count: u64,
}

/// Owns the worker thread; `finish` joins it.
pub struct SideWorker {
    side: Option<Rc<Side>>,
    handle: Option<JoinHandle<std::io::Result<SideResult>>>,
}

const CHUNK: usize = 1 << 20;
/// A batch of layout events is sent once this many have gathered, even if its bytes are few
/// (many empty files), so the tar-split lines never wait long in memory.
const MAX_EVENTS: usize = 4096;

impl SideWorker {
    /// Starts the worker; with `split`, it records the tar-split document there.
    pub fn spawn(split: Option<SplitOut>) -> std::io::Result<SideWorker> {
        // At most 8 jobs of at most 2 MiB each wait for the worker: the memory a slow worker
        // can pile up is bounded.
        let (tx, rx) = sync_channel::<Job>(8);
        let (pool_tx, pool_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let handle = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn(move || work(rx, pool_tx, split))?;
        Ok(SideWorker {
            side: Some(Rc::new(Side {
                tx,
                pool: pool_rx,
                batch: RefCell::new((Vec::new(), Vec::new())),
            })),
            handle: Some(handle),
        })
    }

    pub fn handle(&self) -> Rc<Side> {
        match &self.side {
            Some(s) => s.clone(),
            None => unreachable_side(),
        }
    }

    /// Closes the channel and waits for the results (the tar-split document is complete and
    /// its writer flushed when this returns). Every other `Rc<Side>` must be gone.
    pub fn finish(mut self) -> std::io::Result<SideResult> {
        if let Some(side) = self.side.take() {
            side.flush_layout()?;
        }
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| std::io::Error::other("hashing thread panicked"))?,
            None => Err(std::io::Error::other("hashing thread already joined")),
        }
    }
}

fn unreachable_side() -> Rc<Side> {
    // `side` is only taken by `finish`, which consumes the worker.
    panic!("SideWorker used after finish")
}

impl Drop for SideWorker {
    /// On an error path the thread is still joined (its channel closes once every handle is
    /// gone), so the process is single-threaded again before anyone forks.
    fn drop(&mut self) {
        self.side.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn work(
    rx: Receiver<Job>,
    pool: Sender<Vec<u8>>,
    split: Option<SplitOut>,
) -> std::io::Result<SideResult> {
    let mut sha = Sha256::new();
    let mut count = 0u64;
    let mut crc = Crc64::new();
    let mut split = split.map(TarSplitWriter::new);
    // The first write error is kept; hashing goes on so the channel never blocks the sender.
    let mut failed: Option<std::io::Error> = None;
    while let Ok(job) = rx.recv() {
        match job {
            Job::Stream(buf) => {
                sha.update(&buf);
                count += buf.len() as u64;
                let _ = pool.send(buf);
            }
            Job::Layout { data, events } => {
                let mut start = 0;
                for event in events {
                    let r = match event {
                        Event::Raw(end) => {
                            let r = match split.as_mut() {
                                Some(s) if failed.is_none() => s.raw(&data[start..end]),
                                _ => Ok(()),
                            };
                            start = end;
                            r
                        }
                        Event::Payload(end) => {
                            crc.update(&data[start..end]);
                            start = end;
                            Ok(())
                        }
                        Event::FileEnd { name, size } => {
                            let value = std::mem::take(&mut crc).value();
                            match split.as_mut() {
                                Some(s) if failed.is_none() => s.file(&name, size, value),
                                _ => Ok(()),
                            }
                        }
                    };
                    if let Err(e) = r {
                        failed.get_or_insert(e);
                    }
                }
                let _ = pool.send(data);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(s) = split {
        s.finish()?.flush()?;
    }
    Ok(SideResult {
        digest: format!("sha256:{}", hex::encode(sha.finalize())),
        count,
    })
}

impl Side {
    fn buffer(&self, data: &[u8]) -> Vec<u8> {
        let mut b = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK.max(data.len())));
        b.clear();
        b.extend_from_slice(data);
        b
    }

    fn send(&self, job: Job) -> std::io::Result<()> {
        self.tx
            .send(job)
            .map_err(|_| std::io::Error::other("hashing thread is gone"))
    }

    /// Feeds raw stream bytes to the sha256.
    pub fn stream(&self, data: &[u8]) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let b = self.buffer(data);
        self.send(Job::Stream(b))
    }

    /// Sends the batched layout.
    pub fn flush_layout(&self) -> std::io::Result<()> {
        let (data, events) = {
            let mut b = self.batch.borrow_mut();
            if b.0.is_empty() && b.1.is_empty() {
                return Ok(());
            }
            let fresh = self
                .pool
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK * 2));
            let data = std::mem::replace(&mut b.0, fresh);
            b.0.clear();
            (data, std::mem::take(&mut b.1))
        };
        self.send(Job::Layout { data, events })
    }

    /// Appends `data` to the batch as a run of the kind `make` builds (merged with the
    /// previous run when it is of the same kind).
    fn append(&self, data: &[u8], payload: bool) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let full = {
            let mut b = self.batch.borrow_mut();
            let (bytes, events) = &mut *b;
            bytes.extend_from_slice(data);
            let end = bytes.len();
            match (events.last_mut(), payload) {
                (Some(Event::Payload(e)), true) | (Some(Event::Raw(e)), false) => *e = end,
                (_, true) => events.push(Event::Payload(end)),
                (_, false) => events.push(Event::Raw(end)),
            }
            bytes.len() >= CHUNK || events.len() >= MAX_EVENTS
        };
        if full {
            self.flush_layout()?;
        }
        Ok(())
    }

    /// Records raw tar bytes (headers, padding, trailing blocks) for tar-split.
    pub fn raw(&self, data: &[u8]) -> std::io::Result<()> {
        self.append(data, false)
    }

    /// Feeds a file's payload bytes to its CRC.
    pub fn file_data(&self, data: &[u8]) -> std::io::Result<()> {
        self.append(data, true)
    }

    /// Ends the current file (`size` bytes of payload, all given to `file_data`).
    pub fn file_end(&self, name: &[u8], size: u64) -> std::io::Result<()> {
        let full = {
            let mut b = self.batch.borrow_mut();
            b.1.push(Event::FileEnd {
                name: name.to_vec(),
                size,
            });
            b.1.len() >= MAX_EVENTS
        };
        if full {
            self.flush_layout()?;
        }
        Ok(())
    }
}

/// A reader that streams what it reads to the worker's sha256.
pub struct SideHashingReader<R> {
    inner: R,
    side: Rc<Side>,
}

impl<R: Read> SideHashingReader<R> {
    pub fn new(inner: R, side: Rc<Side>) -> Self {
        SideHashingReader { inner, side }
    }
}

impl<R: Read> Read for SideHashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.side.stream(&buf[..n])?;
        Ok(n)
    }
}
