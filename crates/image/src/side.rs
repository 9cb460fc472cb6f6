//! A helper thread that takes the per-byte hashing off the extraction path: it computes the
//! stream's sha256 (the DiffID) and each file's CRC-64 (for tar-split) from copies of the data,
//! while the extracting thread parses and writes. Buffers are recycled so the hot loop does not
//! allocate. The extracting thread stays the only one touching the filesystem.
use crate::tarsplit::Crc64;
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::io::Read;
use std::rc::Rc;
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

enum Job {
    Stream(Vec<u8>),
    /// File payload bytes of one or more files; `ends` are the offsets in `data` where a file
    /// ends (batching keeps small files from costing a thread wake-up each).
    Files {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
}

/// The extracting thread's handle on the worker.
pub struct Side {
    tx: SyncSender<Job>,
    pool: Receiver<Vec<u8>>,
    files: Cell<usize>,
    batch: RefCell<(Vec<u8>, Vec<usize>)>,
}

/// What the worker computed.
pub struct SideResult {
    pub digest: String,
    pub count: u64,
    pub crcs: Vec<u64>,
}

/// Owns the worker thread; `finish` joins it.
pub struct SideWorker {
    side: Option<Rc<Side>>,
    handle: Option<JoinHandle<SideResult>>,
}

const CHUNK: usize = 1 << 20;

impl SideWorker {
    pub fn spawn() -> std::io::Result<SideWorker> {
        let (tx, rx) = sync_channel::<Job>(16);
        let (pool_tx, pool_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let handle = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn(move || work(rx, pool_tx))?;
        Ok(SideWorker {
            side: Some(Rc::new(Side {
                tx,
                pool: pool_rx,
                files: Cell::new(0),
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

    /// Closes the channel and waits for the results. Every other `Rc<Side>` must be gone.
    pub fn finish(mut self) -> std::io::Result<SideResult> {
        if let Some(side) = self.side.take() {
            side.flush_files()?;
        }
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| std::io::Error::other("hashing thread panicked")),
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

fn work(rx: Receiver<Job>, pool: Sender<Vec<u8>>) -> SideResult {
    let mut sha = Sha256::new();
    let mut count = 0u64;
    let mut crc = Crc64::new();
    let mut crcs = Vec::new();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Stream(buf) => {
                sha.update(&buf);
                count += buf.len() as u64;
                let _ = pool.send(buf);
            }
            Job::Files { data, ends } => {
                let mut start = 0;
                for end in ends {
                    crc.update(&data[start..end]);
                    crcs.push(crc.value());
                    crc = Crc64::new();
                    start = end;
                }
                crc.update(&data[start..]);
                let _ = pool.send(data);
            }
        }
    }
    SideResult {
        digest: format!("sha256:{}", hex::encode(sha.finalize())),
        count,
        crcs,
    }
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

    /// Sends the batched file bytes and ends.
    pub fn flush_files(&self) -> std::io::Result<()> {
        let (data, ends) = {
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
        self.send(Job::Files { data, ends })
    }

    /// Feeds a file's payload bytes to its CRC.
    pub fn file_data(&self, data: &[u8]) -> std::io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let full = {
            let mut b = self.batch.borrow_mut();
            b.0.extend_from_slice(data);
            b.0.len() >= CHUNK
        };
        if full {
            self.flush_files()?;
        }
        Ok(())
    }

    /// Ends the current file; returns the index its CRC will have.
    pub fn file_end(&self) -> std::io::Result<usize> {
        {
            let mut b = self.batch.borrow_mut();
            let at = b.0.len();
            b.1.push(at);
        }
        let i = self.files.get();
        self.files.set(i + 1);
        Ok(i)
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
