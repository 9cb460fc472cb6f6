//! The layers of one load extracted in parallel: the reading thread feeds each layer member's
//! chunks to a worker (at most one per core), and the results come back in archive order.
use super::*;

/// A layer member's bytes travel to its worker in chunks of [`CHUNK`] bytes, with at most this
/// many chunks queued per layer (bounds memory: a layer bigger than this is fed as fast as its
/// worker extracts it, while earlier layers' workers finish their tails).
pub(super) const LAYER_QUEUE_CHUNKS: usize = 32;

pub(super) enum Piece {
    /// The next bytes of the member, in the buffer the archive was read into.
    Data(SharedChunk),
    /// The member ended; anything else ending the queue is a truncated archive.
    End,
}

/// The worker's side of a layer member's queue: the chunks themselves for a plain layer (its
/// files are written straight from the buffers the archive was read into), or a `Read` over
/// them for a decompressor.
pub(super) struct ChunkReader {
    pub(super) rx: std::sync::mpsc::Receiver<Piece>,
    /// The member's first bytes (as read to tell its kind), then the chunk being read.
    pub(super) current: Option<SharedChunk>,
    pub(super) pos: usize,
    pub(super) ended: bool,
}

impl ChunkReader {
    pub(super) fn receive(&mut self) -> std::io::Result<Option<SharedChunk>> {
        if self.ended {
            return Ok(None);
        }
        match self.rx.recv() {
            Ok(Piece::Data(chunk)) => Ok(Some(chunk)),
            Ok(Piece::End) => {
                self.ended = true;
                Ok(None)
            }
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "archive ended inside a layer",
            )),
        }
    }

    /// The bytes not read yet of the chunk at hand (the member's head before any read).
    pub(super) fn head(&self) -> &[u8] {
        match &self.current {
            Some(c) => &c.bytes()[self.pos.min(c.len())..],
            None => &[],
        }
    }
}

impl ChunkSource for ChunkReader {
    fn next_chunk(&mut self) -> std::io::Result<Option<SharedChunk>> {
        if let Some(c) = self.current.take() {
            if self.pos == 0 && !c.is_empty() {
                return Ok(Some(c));
            }
            if self.pos < c.len() {
                return Ok(Some(Chunk::from_vec(c.bytes()[self.pos..].to_vec())));
            }
        }
        self.receive()
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let available = self.head().len();
            if available > 0 {
                let n = buf.len().min(available);
                buf[..n].copy_from_slice(&self.head()[..n]);
                self.pos += n;
                return Ok(n);
            }
            match self.receive()? {
                Some(next) => {
                    self.current = Some(next);
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
    }
}

/// Extracts one layer member (plain or compressed) from `raw`, whose first bytes are at hand;
/// returns the staged layer and the sha256 of the member's bytes as stored.
pub(super) fn stage_member(store: &Store, raw: ChunkReader, name: &str) -> Result<Staged> {
    let (layer, raw_digest) = if detect(raw.head())? == Compression::None {
        let l = store.stage_layer_chunks(raw, name)?;
        let d = l.applied.diff_id.clone();
        (l, d)
    } else {
        let mut hashing = HashingReader::new(raw);
        let l = store.stage_layer(decompress(&mut hashing)?, name)?;
        // Drain whatever the decompressor left (trailing padding) into the hash.
        if let Err(e) = std::io::copy(&mut hashing, &mut std::io::sink()) {
            store.discard_staged(l);
            return Err(ImageError::io("reading", name)(e));
        }
        (l, hashing.finish().0)
    };
    Ok(Staged {
        layer: Some(layer),
        raw_digest,
        committed_as: None,
    })
}

pub(super) type LayerResult = Result<Staged>;

/// Layer workers of one load: at most one per core at a time, results kept in archive order.
pub(super) struct ParallelLayers<'s, 'scope, 'env> {
    pub(super) scope: &'scope std::thread::Scope<'scope, 'env>,
    pub(super) store: &'s Store,
    pub(super) progress: &'s dyn Progress,
    pub(super) running:
        std::collections::VecDeque<(String, std::thread::ScopedJoinHandle<'scope, LayerResult>)>,
    pub(super) done: Vec<(String, LayerResult)>,
    pub(super) pool: ChunkPool,
    pub(super) max_running: usize,
}

/// The reading thread's side of one layer's queue.
pub(super) struct Feed {
    pub(super) tx: std::sync::mpsc::SyncSender<Piece>,
}

impl<'s: 'scope, 'scope, 'env> ParallelLayers<'s, 'scope, 'env> {
    pub(super) fn new(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &'s Store,
        progress: &'s dyn Progress,
    ) -> Self {
        ParallelLayers {
            scope,
            store,
            progress,
            running: Default::default(),
            done: Vec::new(),
            pool: ChunkPool::new(),
            max_running: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 8),
        }
    }

    /// Starts a worker for member `name` whose first bytes are `head`.
    pub(super) fn spawn(&mut self, name: String, head: Vec<u8>) -> Result<Feed> {
        while self.running.len() >= self.max_running {
            self.join_oldest();
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(LAYER_QUEUE_CHUNKS);
        let reader = ChunkReader {
            rx,
            current: Some(Chunk::from_vec(head)),
            pos: 0,
            ended: false,
        };
        let (store, progress) = (self.store, self.progress);
        let worker_name = name.clone();
        let handle = std::thread::Builder::new()
            .name("layer-extract".into())
            .spawn_scoped(self.scope, move || {
                let r = stage_member(store, reader, &worker_name);
                progress.finish(&worker_name);
                r
            })
            .map_err(ImageError::io("starting layer worker", name.clone()))?;
        self.running.push_back((name, handle));
        Ok(Feed { tx })
    }

    /// Reads the rest of the current member from `tar` into pooled buffers for its worker's
    /// queue (with a plain archive on a file, straight from the kernel into them).
    pub(super) fn feed<R: Read>(
        &mut self,
        feed: Feed,
        tar: &mut TarReader<R>,
        name: &str,
    ) -> Result<()> {
        loop {
            let mut chunk = self.pool.buffer();
            let mut filled = 0;
            while filled < chunk.len() {
                let n = tar
                    .read_payload(&mut chunk[filled..])
                    .map_err(bad_archive)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            self.progress.advance(name, filled as u64);
            let last = filled < CHUNK;
            // A worker that failed has dropped its queue: stop feeding it; its error comes
            // out when it is joined.
            if filled > 0
                && feed
                    .tx
                    .send(Piece::Data(self.pool.share(chunk, filled)))
                    .is_err()
            {
                return Ok(());
            }
            if last {
                let _ = feed.tx.send(Piece::End);
                return Ok(());
            }
        }
    }

    pub(super) fn join_oldest(&mut self) {
        if let Some((name, handle)) = self.running.pop_front() {
            let result = handle.join().unwrap_or_else(|_| {
                Err(ImageError::BadArchive(format!(
                    "extracting layer {name}: worker panicked"
                )))
            });
            self.done.push((name, result));
        }
    }

    /// Waits for every worker; returns the extracted layers in archive order and the first
    /// error, if any (layers that worked are returned either way, for the caller to discard).
    pub(super) fn finish(mut self) -> (Vec<(String, Staged)>, Option<ImageError>) {
        while !self.running.is_empty() {
            self.join_oldest();
        }
        let mut ok = Vec::new();
        let mut first_err = None;
        for (name, r) in self.done {
            match r {
                Ok(s) => ok.push((name, s)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        (ok, first_err)
    }
}
