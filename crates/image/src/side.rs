//! A helper thread that takes the per-byte work off the extraction path: it computes the
//! stream's sha256 (the DiffID), each file's CRC-64, and writes the tar-split document (JSON
//! lines, base64, gzip) straight to its file, while the extracting thread parses and writes
//! files. Both threads read the same buffers: the stream is read once into reference-counted
//! [`Chunk`]s, the extracting thread writes file contents straight out of them and hands each
//! chunk to the worker, and the layout of the tar (how many bytes of raw header, of file
//! payload, where each file ends) follows as lengths only, so no byte is copied for the worker.
//! Events are sent before every new chunk, so the worker holds at most a couple of chunks and
//! nothing grows with the number of entries; buffers go back to their pool when the last holder
//! drops them. The extracting thread stays the only one touching the layer's files.
use crate::tarsplit::{Crc64, TarSplitWriter};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::rc::Rc;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The size of the buffers a stream is read into.
pub const CHUNK: usize = 1 << 20;

/// A filled buffer. Shared (as [`SharedChunk`]) between the thread that writes files from it and
/// the one that hashes it; when the last holder drops it, the buffer returns to its pool.
pub struct Chunk {
    data: Vec<u8>,
    len: usize,
    home: Option<Sender<Vec<u8>>>,
}

pub type SharedChunk = Arc<Chunk>;

impl Chunk {
    /// A chunk of `data` that belongs to no pool.
    pub fn from_vec(data: Vec<u8>) -> SharedChunk {
        let len = data.len();
        Arc::new(Chunk {
            data,
            len,
            home: None,
        })
    }

    /// The filled bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            // The pool may be gone already (its owner finished): the buffer is freed then.
            let _ = home.send(std::mem::take(&mut self.data));
        }
    }
}

/// Recycles chunk buffers, so the hot loop neither allocates nor faults in fresh pages. Only
/// as many buffers exist as are in flight at once (bounded by the queues they travel through).
pub struct ChunkPool {
    home: Sender<Vec<u8>>,
    free: Receiver<Vec<u8>>,
}

impl Default for ChunkPool {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkPool {
    pub fn new() -> Self {
        let (home, free) = channel();
        ChunkPool { home, free }
    }

    /// A buffer of [`CHUNK`] bytes (its contents are whatever it last held).
    pub fn buffer(&self) -> Vec<u8> {
        match self.free.try_recv() {
            Ok(b) if b.len() == CHUNK => b,
            _ => vec![0; CHUNK],
        }
    }

    /// Shares the first `len` bytes of `data`, a buffer from [`ChunkPool::buffer`].
    pub fn share(&self, data: Vec<u8>, len: usize) -> SharedChunk {
        Arc::new(Chunk {
            len: len.min(data.len()),
            data,
            home: Some(self.home.clone()),
        })
    }

    /// Reads from `r` until a buffer is full or the stream ends; None at the end.
    pub fn fill_from(&self, r: &mut impl Read) -> std::io::Result<Option<SharedChunk>> {
        let mut buf = self.buffer();
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((filled > 0).then(|| self.share(buf, filled)))
    }
}

/// Where a stream's bytes come from, chunk by chunk.
pub trait ChunkSource {
    /// The next chunk (never empty), or None at the end of the stream.
    fn next_chunk(&mut self) -> std::io::Result<Option<SharedChunk>>;
}

/// Chunks read from any reader into pooled buffers (the one copy a `Read` needs).
pub struct ReadChunks<R> {
    inner: R,
    pool: ChunkPool,
}

impl<R: Read> ReadChunks<R> {
    pub fn new(inner: R) -> Self {
        ReadChunks {
            inner,
            pool: ChunkPool::new(),
        }
    }
}

impl<R: Read> ChunkSource for ReadChunks<R> {
    fn next_chunk(&mut self) -> std::io::Result<Option<SharedChunk>> {
        self.pool.fill_from(&mut self.inner)
    }
}

/// One step of the tar's layout, in stream order: every byte of the stream is either raw (for
/// tar-split's segments) or a file's payload (for its CRC).
enum Event {
    Raw(usize),
    Payload(usize),
    /// The current file ends (its payload may have come in earlier events).
    FileEnd {
        name: Vec<u8>,
        size: u64,
    },
}

enum Job {
    /// The next bytes of the stream.
    Chunk(SharedChunk),
    /// What the bytes given so far are.
    Layout(Vec<Event>),
}

/// Where the worker writes the tar-split document.
pub type SplitOut = Box<dyn Write + Send>;

/// The extracting thread's handle on the worker.
pub struct Side {
    tx: SyncSender<Job>,
    events: RefCell<Vec<Event>>,
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

/// A batch of layout events is sent once this many have gathered, even within one chunk (many
/// small files), so the tar-split lines never wait long in memory.
const MAX_EVENTS: usize = 4096;

impl SideWorker {
    /// Starts the worker; with `split`, it records the tar-split document there.
    pub fn spawn(split: Option<SplitOut>) -> std::io::Result<SideWorker> {
        // At most 8 jobs wait for the worker (chunks of at most CHUNK bytes): the memory a slow
        // worker can pile up is bounded.
        let (tx, rx) = sync_channel::<Job>(8);
        let handle = std::thread::Builder::new()
            .name("layer-hash".into())
            .spawn(move || work(rx, split))?;
        Ok(SideWorker {
            side: Some(Rc::new(Side {
                tx,
                events: RefCell::new(Vec::new()),
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

/// The chunks the worker has hashed but whose layout it has not fully walked yet.
struct Held {
    chunks: VecDeque<SharedChunk>,
    /// Bytes of the front chunk already walked.
    offset: usize,
}

impl Held {
    /// Hands the next `n` bytes of the stream to `each`, piece by piece.
    fn take(
        &mut self,
        mut n: usize,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                return Err(std::io::Error::other("tar layout runs past the bytes read"));
            };
            let k = n.min(front.len() - self.offset);
            each(&front.bytes()[self.offset..self.offset + k])?;
            self.offset += k;
            n -= k;
            if self.offset == front.len() {
                self.chunks.pop_front();
                self.offset = 0;
            }
        }
        Ok(())
    }
}

fn work(rx: Receiver<Job>, split: Option<SplitOut>) -> std::io::Result<SideResult> {
    let mut sha = Sha256::new();
    let mut count = 0u64;
    let mut crc = Crc64::new();
    let mut split = split.map(TarSplitWriter::new);
    let mut held = Held {
        chunks: VecDeque::new(),
        offset: 0,
    };
    // The first error is kept; hashing goes on so the channel never blocks the sender.
    let mut failed: Option<std::io::Error> = None;
    while let Ok(job) = rx.recv() {
        match job {
            Job::Chunk(chunk) => {
                sha.update(chunk.bytes());
                count += chunk.len() as u64;
                held.chunks.push_back(chunk);
            }
            Job::Layout(events) => {
                for event in events {
                    let r = match event {
                        Event::Raw(n) => held.take(n, |piece| match split.as_mut() {
                            Some(s) if failed.is_none() => s.raw(piece),
                            _ => Ok(()),
                        }),
                        Event::Payload(n) => held.take(n, |piece| {
                            crc.update(piece);
                            Ok(())
                        }),
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
    fn send(&self, job: Job) -> std::io::Result<()> {
        self.tx
            .send(job)
            .map_err(|_| std::io::Error::other("hashing thread is gone"))
    }

    /// Hands the next chunk of the stream to the worker (after the layout of the bytes before
    /// it, so the worker can let go of the chunks already walked).
    pub fn stream(&self, chunk: SharedChunk) -> std::io::Result<()> {
        self.flush_layout()?;
        self.send(Job::Chunk(chunk))
    }

    /// Sends the batched layout.
    pub fn flush_layout(&self) -> std::io::Result<()> {
        let events = std::mem::take(&mut *self.events.borrow_mut());
        if events.is_empty() {
            return Ok(());
        }
        self.send(Job::Layout(events))
    }

    fn push(&self, event: Event) -> std::io::Result<()> {
        let full = {
            let mut events = self.events.borrow_mut();
            match (events.last_mut(), &event) {
                (Some(Event::Payload(e)), Event::Payload(n))
                | (Some(Event::Raw(e)), Event::Raw(n)) => *e += n,
                _ => events.push(event),
            }
            events.len() >= MAX_EVENTS
        };
        if full {
            self.flush_layout()?;
        }
        Ok(())
    }

    /// The next `len` bytes of the stream are raw tar bytes (headers, padding, trailing
    /// blocks), recorded in tar-split.
    pub fn raw(&self, len: usize) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.push(Event::Raw(len))
    }

    /// The next `len` bytes of the stream are payload of the current file (for its CRC).
    pub fn file_data(&self, len: usize) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.push(Event::Payload(len))
    }

    /// Ends the current file (`size` bytes of payload, all given to `file_data`).
    pub fn file_end(&self, name: &[u8], size: u64) -> std::io::Result<()> {
        self.push(Event::FileEnd {
            name: name.to_vec(),
            size,
        })
    }
}

/// The extracting thread's view of the stream: a `BufRead` whose buffer is the current chunk,
/// each chunk handed to the worker (for the sha256) as it is taken from the source.
pub struct SharedStream<S> {
    source: S,
    side: Rc<Side>,
    current: Option<SharedChunk>,
    pos: usize,
    ended: bool,
}

impl<S: ChunkSource> SharedStream<S> {
    pub fn new(source: S, side: Rc<Side>) -> Self {
        SharedStream {
            source,
            side,
            current: None,
            pos: 0,
            ended: false,
        }
    }
}

impl<S: ChunkSource> BufRead for SharedStream<S> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let exhausted = self.current.as_ref().is_none_or(|c| self.pos >= c.len());
        if exhausted && !self.ended {
            // Let go of the spent chunk before taking the next, so its buffer can be reused.
            self.current = None;
            match self.source.next_chunk()? {
                Some(chunk) => {
                    self.side.stream(chunk.clone())?;
                    self.current = Some(chunk);
                    self.pos = 0;
                }
                None => self.ended = true,
            }
        }
        Ok(match &self.current {
            Some(c) => &c.bytes()[self.pos..],
            None => &[],
        })
    }

    fn consume(&mut self, amt: usize) {
        self.pos += amt;
    }
}

impl<S: ChunkSource> Read for SharedStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_return_to_their_pool_when_the_last_holder_drops_them() {
        let pool = ChunkPool::new();
        let mut buf = pool.buffer();
        buf[..3].copy_from_slice(b"abc");
        let ptr = buf.as_ptr();
        let chunk = pool.share(buf, 3);
        let other = chunk.clone();
        assert_eq!(other.bytes(), b"abc");
        drop(chunk);
        drop(other);
        let again = pool.buffer();
        assert_eq!(again.as_ptr(), ptr);
    }

    #[test]
    fn the_worker_hashes_the_whole_stream_and_walks_its_layout() {
        let data: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i * 7 % 251) as u8).collect();
        let worker = SideWorker::spawn(None).unwrap();
        let side = worker.handle();
        let mut stream = SharedStream::new(ReadChunks::new(&data[..]), side.clone());
        let mut seen = Vec::new();
        loop {
            let buf = stream.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            let n = buf.len().min(100_003);
            seen.extend_from_slice(&buf[..n]);
            side.raw(n).unwrap();
            stream.consume(n);
        }
        assert_eq!(seen, data);
        drop(stream);
        drop(side);
        let result = worker.finish().unwrap();
        assert_eq!(result.count, data.len() as u64);
        assert_eq!(result.digest, crate::digest::sha256_digest(&data));
    }
}
