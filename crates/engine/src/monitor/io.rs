//! Supervising one run: pumping the container's stdio into the log and to attach clients,
//! serving those clients, reaping the init.

use super::*;

impl Monitor {
    /// Pumps stdio and serves clients until the init `pid` exits; returns its exit code.
    pub(super) fn supervise(&mut self, pid: i32, mut io: ContainerIo) -> i32 {
        let mut exit_code: Option<i32> = None;
        let mut buf = vec![0u8; 64 * 1024];
        // The init's end is seen on its pidfd, which does not depend on which thread SIGCHLD is
        // delivered to; SIGCHLD still reaps orphans the monitor inherits as subreaper.
        let pidfd = rustix::process::Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        loop {
            if let Some(code) = exit_code {
                self.drain(&mut io, &mut buf);
                return code;
            }
            let mut fds: Vec<libc::pollfd> = Vec::new();
            let mut kinds: Vec<u8> = Vec::new();
            let mut push = |fd: RawFd, kind: u8| {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                kinds.push(kind);
            };
            push(self.signals.as_raw_fd(), b'S');
            if let Some(fd) = &pidfd {
                push(fd.as_raw_fd(), b'P');
            }
            if let Some(l) = &self.listener {
                push(l.as_raw_fd(), b'L');
            }
            if let Some(fd) = &io.stdout {
                push(fd.as_raw_fd(), b'1');
            }
            if let Some(fd) = &io.stderr {
                push(fd.as_raw_fd(), b'2');
            }
            if let Some(fd) = io.pty.as_ref().filter(|_| !io.pty_hangup) {
                push(fd.as_raw_fd(), b'T');
            }
            if let Some(checker) = &self.health {
                for fd in checker.fds() {
                    push(fd, b'H');
                }
            }
            for c in &self.clients {
                push(c.stream.as_raw_fd(), b'C');
            }
            let client_base = fds.len() - self.clients.len();
            let timeout = match &self.health {
                // Rounded up, so a due probe never spins the loop.
                Some(checker) => checker
                    .wait()
                    .as_millis()
                    .saturating_add(1)
                    .min(i32::MAX as u128) as i32,
                None => -1,
            };
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                continue;
            }
            if let Some(checker) = &mut self.health {
                checker.tick(&self.ctx.store, self.ctx.runtime.as_ref(), &self.id);
            }
            let mut dead_clients = Vec::new();
            for (i, pfd) in fds.iter().enumerate() {
                if pfd.revents == 0 {
                    continue;
                }
                match kinds[i] {
                    b'S' => {
                        for sig in crate::sys::read_signals(&self.signals) {
                            if sig == libc::SIGCHLD {
                                if let Some(code) = self.reap(pid) {
                                    exit_code = Some(code);
                                }
                            }
                        }
                    }
                    b'P' | b'H' => {
                        if let Some(checker) = &mut self.health {
                            checker.read_output();
                        }
                        if let Some(code) = self.reap(pid) {
                            exit_code = Some(code);
                        }
                    }
                    b'L' => self.accept_clients(),
                    b'1' | b'2' | b'T' => {
                        let stream = if kinds[i] == b'2' { 2 } else { 1 };
                        let kind = kinds[i];
                        let fd = match kind {
                            b'1' => io.stdout.as_ref(),
                            b'2' => io.stderr.as_ref(),
                            _ => io.pty.as_ref(),
                        }
                        .map(|f| f.as_raw_fd());
                        let closed = match fd.map(|fd| crate::sys::read_fd(fd, &mut buf)) {
                            Some(Ok(0)) | Some(Err(_)) | None => true,
                            Some(Ok(n)) => {
                                let data = buf[..n].to_vec();
                                self.output(stream, &data);
                                false
                            }
                        };
                        if closed {
                            match kind {
                                b'1' => io.stdout = None,
                                b'2' => io.stderr = None,
                                // Keep the master for stdin and resize; stop polling it.
                                _ => io.pty_hangup = true,
                            }
                        }
                    }
                    b'C' => {
                        let ci = i - client_base;
                        if !self.serve_client(ci, pid, &mut io) {
                            dead_clients.push(ci);
                        }
                    }
                    _ => {}
                }
            }
            for ci in dead_clients.into_iter().rev() {
                self.clients.remove(ci);
            }
        }
    }

    /// Reaps every exited child; returns the init's exit code when it was among them. A health
    /// probe's end is handed to the checker.
    pub(super) fn reap(&mut self, init: i32) -> Option<i32> {
        let probe = self.health.as_ref().and_then(|c| c.probe_pid());
        let mut result = None;
        for (pid, code) in reap_children() {
            if pid == init {
                result = Some(code);
            } else if Some(pid) == probe {
                if let Some(checker) = &mut self.health {
                    checker.probe_exited(&self.ctx.store, &self.id, code);
                }
            }
        }
        result
    }

    /// Reads what is left in the output pipes after the init exited.
    pub(super) fn drain(&mut self, io: &mut ContainerIo, buf: &mut [u8]) {
        for (stream, slot) in [(1, &mut io.stdout), (2, &mut io.stderr), (1, &mut io.pty)] {
            if let Some(fd) = slot.take() {
                crate::sys::set_nonblocking(fd.as_raw_fd());
                while let Ok(n) = crate::sys::read_fd(fd.as_raw_fd(), buf) {
                    if n == 0 {
                        break;
                    }
                    let data = buf[..n].to_vec();
                    self.output(stream, &data);
                }
            }
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
    }

    pub(super) fn output(&mut self, stream: usize, data: &[u8]) {
        if let Some(log) = &mut self.log {
            log.write(stream, data);
        }
        let (kind, want) = if stream == 2 {
            (attach::STDERR, attach::WANT_STDERR)
        } else {
            (attach::STDOUT, attach::WANT_STDOUT)
        };
        self.broadcast(kind, data, want);
    }

    pub(super) fn broadcast(&mut self, kind: u8, payload: &[u8], want: u8) {
        self.clients.retain_mut(|c| {
            if want != 0 && c.wants & want == 0 {
                return true;
            }
            let _ = c.stream.set_nonblocking(false);
            let ok = attach::write_frame(&mut c.stream, kind, payload).is_ok();
            let _ = c.stream.set_nonblocking(true);
            ok
        });
    }

    pub(super) fn accept_clients(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((stream, _)) = listener.accept() {
            let _ = stream.set_nonblocking(true);
            self.clients.push(Client {
                stream,
                frames: FrameBuffer::default(),
                wants: 0,
            });
        }
    }

    /// Handles input from client `ci`; false when it went away.
    pub(super) fn serve_client(&mut self, ci: usize, pid: i32, io: &mut ContainerIo) -> bool {
        let mut buf = [0u8; 16 * 1024];
        let alive = match self.clients[ci].stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.clients[ci].frames.push(&buf[..n]);
                true
            }
            Err(e) => {
                e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted
            }
        };
        while let Some((kind, payload)) = self.clients[ci].frames.next_frame() {
            match kind {
                attach::HELLO => self.clients[ci].wants = payload.first().copied().unwrap_or(0),
                attach::STDIN => {
                    let target = io.stdin.as_ref().or(io.pty.as_ref());
                    if let Some(fd) = target {
                        let _ = crate::sys::write_all_fd(fd.as_raw_fd(), &payload);
                    }
                }
                attach::STDIN_EOF if !self.tty => io.stdin = None,
                attach::RESIZE if payload.len() >= 4 => {
                    let (rows, cols) = (
                        u16::from_be_bytes([payload[0], payload[1]]),
                        u16::from_be_bytes([payload[2], payload[3]]),
                    );
                    self.window = Some((rows, cols));
                    if let Some(fd) = io.pty.as_ref().or(io.stdin.as_ref().filter(|_| self.tty)) {
                        crate::sys::set_window_size(fd.as_raw_fd(), rows, cols);
                    }
                }
                attach::SIGNAL => {
                    let sig = attach::payload_i32(&payload);
                    // Between runs (restart backoff) there is no init: `pid` is -1 then, and
                    // kill(-1) would signal every process on the host. Only a real PID.
                    if pid > 0 {
                        // SAFETY: `pid` is our unreaped child, so the PID cannot have been
                        // reused.
                        unsafe { libc::kill(pid, sig) };
                    }
                }
                attach::NO_RESTART => self.manually_stopped = true,
                _ => {}
            }
        }
        alive
    }

    /// Sleeps `delay` (restart backoff) while still accepting stop requests.
    pub(super) fn wait_serving(&mut self, delay: Duration) {
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && !self.manually_stopped {
            let mut fds: Vec<libc::pollfd> = self
                .clients
                .iter()
                .map(|c| libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            if let Some(l) = &self.listener {
                fds.push(libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as i32;
            // SAFETY: valid pollfd array.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, left.max(1)) };
            self.accept_clients();
            let mut io = ContainerIo::default();
            let mut dead = Vec::new();
            for ci in 0..self.clients.len() {
                if !self.serve_client(ci, -1, &mut io) {
                    dead.push(ci);
                }
            }
            for ci in dead.into_iter().rev() {
                self.clients.remove(ci);
            }
        }
    }
}
