//! `start` (detached, attached through the monitor's socket, or with a caller's client), `attach`
//! and `wait`.

use super::*;

impl Engine {
    /// Brings the container's networks up (a stopped container gave them back) under the
    /// container's lock, so two starts, or a start and an `rm`, never set them up or take them
    /// down at once.
    pub(super) fn ensure_network(&self, id: &str) -> Result<()> {
        let _op = self.store.lock_container(id)?;
        crate::network::ensure_ready(&self.root, id)
    }

    /// Starts a created or stopped container in the background; returns once it runs.
    pub fn start_detached(&self, id: &str) -> Result<()> {
        let record = self.store.load(id)?;
        if record.is_running() {
            return Ok(());
        }
        self.ensure_network(id)?;
        let (read, write) = crate::sys::pipe()?;
        keeper::spawn(&self.monitor_context(), id, None, Some(write))?;
        let mut text = String::new();
        let _ = std::fs::File::from(read).read_to_string(&mut text);
        let text = text.trim();
        if text == "0" {
            return Ok(());
        }
        let (code, message) = text
            .split_once(' ')
            .unwrap_or((text, "the container's monitor failed before starting it"));
        Err(EngineError::Command {
            message: message.to_string(),
            exit_code: code.parse().unwrap_or(125),
        })
    }

    /// Starts a container with this process attached; returns the container's exit code.
    pub fn start_attached(&self, id: &str, opts: &AttachOptions) -> Result<i32> {
        self.ensure_network(id)?;
        let (ours, theirs) = crate::sys::socketpair()?;
        let mut stream = UnixStream::from(ours);
        // The monitor reads the greeting before it starts the container.
        crate::terminal_session::send_greeting(&mut stream, opts)?;
        keeper::spawn(&self.monitor_context(), id, Some(theirs), None)?;
        crate::terminal_session::session(stream, opts)
    }

    /// Starts a container and writes its stdout and stderr, interleaved as they come, to
    /// `out` (a build step's output inside a server's stream, where this process's own stdio
    /// is nobody's terminal); returns the exit code. No stdin, no signals proxied.
    pub fn start_collecting(&self, id: &str, out: &mut dyn std::io::Write) -> Result<i32> {
        crate::network::ensure_ready(&self.root, id)?;
        let (ours, theirs) = crate::sys::socketpair()?;
        let mut stream = UnixStream::from(ours);
        let wants = crate::attach::WANT_STDOUT | crate::attach::WANT_STDERR;
        crate::attach::write_frame(&mut stream, crate::attach::HELLO, &[wants])
            .map_err(|e| EngineError::os("attach", e))?;
        keeper::spawn(&self.monitor_context(), id, Some(theirs), None)?;
        loop {
            let frame =
                crate::attach::read_frame(&mut stream).map_err(|e| EngineError::os("attach", e))?;
            match frame {
                Some((crate::attach::STDOUT | crate::attach::STDERR, payload)) => {
                    // A reader that left must not stop the container's run: keep draining.
                    let _ = out.write_all(&payload);
                    let _ = out.flush();
                }
                Some((crate::attach::EXIT, payload)) => {
                    return Ok(crate::attach::payload_i32(&payload))
                }
                Some((crate::attach::ERROR, payload)) => {
                    return Err(EngineError::Command {
                        message: String::from_utf8_lossy(payload.get(4..).unwrap_or_default())
                            .into_owned(),
                        exit_code: crate::attach::payload_i32(&payload),
                    })
                }
                Some(_) => {}
                None => {
                    return Err(EngineError::os(
                        "attach",
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the container's monitor went away",
                        ),
                    ))
                }
            }
        }
    }

    /// Starts a container whose first attach client is `client` (a server's session, which
    /// already sent its greeting): output, STARTED, EXIT and ERROR frames arrive on it. Returns
    /// once the monitor is on its way; the monitor reads the greeting before it starts.
    pub fn start_with_client(&self, id: &str, client: std::os::fd::OwnedFd) -> Result<()> {
        // Like every start: a stopped container gave its networks back.
        self.ensure_network(id)?;
        keeper::spawn(&self.monitor_context(), id, Some(client), None)
    }

    /// Connects to a running container's monitor.
    pub fn connect(&self, id: &str) -> Option<UnixStream> {
        let sock =
            crate::sys::socket_path(&self.store.container_dir(id).join("attach.sock")).ok()?;
        UnixStream::connect(&sock.path).ok()
    }

    /// `berth attach`.
    pub fn attach(&self, id: &str, opts: &AttachOptions) -> Result<i32> {
        let record = self.store.load(id)?;
        if !record.is_running() {
            return Err(EngineError::state(
                id,
                "You cannot attach to a stopped container, start it first",
            ));
        }
        let mut stream = self
            .connect(id)
            .ok_or_else(|| EngineError::state(id, "its monitor is gone"))?;
        crate::terminal_session::send_greeting(&mut stream, opts)?;
        crate::terminal_session::session(stream, opts)
    }

    /// `berth wait`: blocks until the container stops; returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        if let Some(mut stream) = self.connect(id) {
            let _ = attach::write_frame(&mut stream, attach::HELLO, &[0]);
            while let Ok(Some((kind, payload))) = attach::read_frame(&mut stream) {
                if kind == attach::EXIT || kind == attach::ERROR {
                    return Ok(attach::payload_i32(&payload));
                }
            }
        }
        // No monitor to ask: the record (or its absence, after --rm) is the truth once no
        // monitor is about to write it (the monitor clears its PID with the exit code).
        loop {
            let record = self.store.load(id)?;
            // The keeper that took over from a killed monitor counts as its monitor.
            let monitor_busy = (record.berth_monitor_pid != 0
                && crate::procinfo::alive(record.berth_monitor_pid))
                || recovery::supervised(&self.root, id);
            if !monitor_busy && !record.init_alive() {
                // A monitor killed before it recorded the end: reconstruct it first.
                if record.state.running {
                    recovery::recover(self)?;
                    return Ok(self.store.load(id)?.state.exit_code);
                }
                return Ok(record.state.exit_code);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
